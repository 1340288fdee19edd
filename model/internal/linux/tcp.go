package linux

import "syscall"

// tcp is the model's transport: the operations of net/ipv4/tcp*.c that
// the socket layer, the sk_msg layer (skmsg.go, tcp_bpf.go) and splice
// call. The in-model reference tcp (refTCP) implements it, and the
// bridge (extTCP, tcp_ext*.go) puts an external transport (gVisor
// netstack) behind the same interface.
//
// Contract: the transport owns the per-socket tcp state (sock.tcp), moves
// segments between the two sockets of a connection, and on arrival puts
// in-order data on sock.SkReceiveQueue (as skbs whose pages it
// references) and calls the socket's callbacks (SkDataReady on data or
// FIN, SkStateChange on state changes, SkErrorReport on errors) from
// kernel contexts queued on the scheduler. Every method runs either on a
// task (with the socket lock held where the name says Locked) or in a
// kernel context; none blocks except where it takes a *task and says so.
type tcp interface {
	// Connect makes a an active and b a passive endpoint of one
	// established loopback connection.
	Connect(a, b *sock)
	// SendmsgLocked mirrors tcp_sendmsg_locked() (net/ipv4/tcp.c, v6.18):
	// copy src into the send queue and transmit. It may block
	// (sk_stream_wait_memory).
	SendmsgLocked(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno)
	// SendPageLocked mirrors tcp_sendmsg_locked() (net/ipv4/tcp.c, v6.18)
	// with MSG_SPLICE_PAGES: queue a reference to a page range instead of
	// copying.
	SendPageLocked(t *task, sk *sock, p *page, off, n int, flags int) (int, syscall.Errno)
	// Recvmsg mirrors tcp_recvmsg() (net/ipv4/tcp.c, v6.18). It may block.
	Recvmsg(t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno)
	// ReadSock mirrors tcp_read_sock() (net/ipv4/tcp.c, v6.18): feed queued
	// data to actor (which returns how much it used, or a negative errno,
	// and decrements desc.Count by what it used). With a non-nil seq it
	// mirrors tcp_read_sock_noack() (net/ipv4/tcp.c, v6.18): seq is the
	// reader's own cursor and copied_seq is left alone.
	ReadSock(sk *sock, seq *uint32, desc *readDesc, actor func(desc *readDesc, skb *skBuff, off, n int) int) int
	// ReadSkb mirrors tcp_read_skb() (net/ipv4/tcp.c, v6.18): unlink every
	// queued skb and hand it to actor, which takes ownership.
	ReadSkb(sk *sock, actor func(sk *sock, skb *skBuff) int) int
	// Inq mirrors tcp_inq() (include/net/tcp.h, v6.18): unread bytes by
	// sequence numbers.
	Inq(sk *sock) int
	// EpollinReady mirrors tcp_epollin_ready() (include/net/tcp.h, v6.18).
	EpollinReady(sk *sock, target int) bool
	// StreamIsWriteable mirrors __sk_stream_is_writeable(sk, 1)
	// (include/net/sock.h, v6.18).
	StreamIsWriteable(sk *sock) bool
	// StreamMemoryFree mirrors sk_stream_memory_free() (include/net/sock.h,
	// v6.18).
	StreamMemoryFree(sk *sock) bool
	// EatSkb mirrors the sequence update of tcp_eat_skb()
	// (net/ipv4/tcp_bpf.c, v6.18): count skb as consumed (copied_seq) and
	// let the window open.
	EatSkb(sk *sock, skb *skBuff)
	// AdjustCopiedSeq sets copied_seq (tcp_bpf_recvmsg_parser's write of
	// the sequence it computed, or strparser's).
	CopiedSeq(sk *sock) uint32
	SetCopiedSeq(sk *sock, seq uint32)
	// RcvSpaceAdjust mirrors tcp_rcv_space_adjust() (net/ipv4/tcp_input.c,
	// v6.18): a reader copied bytes; the receive buffer may grow.
	RcvSpaceAdjust(sk *sock)
	// CleanupRbuf mirrors tcp_cleanup_rbuf() (net/ipv4/tcp.c, v6.18): after
	// a read of copied bytes, announce the freed receive space to the peer.
	CleanupRbuf(sk *sock, copied int)
	// DataReady mirrors tcp_data_ready() (net/ipv4/tcp_input.c, v6.18).
	DataReady(sk *sock)
	// Shutdown mirrors tcp_shutdown() (net/ipv4/tcp.c, v6.18).
	Shutdown(t *task, sk *sock, how int)
	// Close mirrors tcp_close() (net/ipv4/tcp.c, v6.18), the base proto's
	// close.
	Close(t *task, sk *sock)
	// ExpireOrphans does what the kernel's TCP timers eventually do to
	// connections nobody holds any more: every orphaned socket (closed by
	// its owner) that is not yet CLOSE is done with and its queues freed,
	// as the zero-window probe's orphan retries (tcp_probe_timer,
	// tcp_orphan_retries), the FIN_WAIT2 timeout and TIME_WAIT expiry
	// would. Teardown calls it after the last descriptor is closed.
	ExpireOrphans()
}

// Constants of the model's loopback TCP.
const (
	// tcpSizeGoal is the payload of a full loopback skb: the MSS once the
	// peer's window no longer bounds it (tcp_send_mss). The bridge to an
	// external transport writes in chunks of it.
	tcpSizeGoal = tcpAdvMSS
	// tcpSndLimit is the send buffer a socket of the bridge to an
	// external transport gets (the transport's own buffer bounds it).
	tcpSndLimit = 3806315
	tcpISN      = 1 // initial sequence number of both directions
)

// readDesc mirrors read_descriptor_t (include/linux/net.h, v6.18): Count is
// what the reader still wants; the actor decrements it.
type readDesc struct {
	Count int
	Error int
}

// skStreamError mirrors sk_stream_error() (net/core/stream.c, v6.18).
func skStreamError(sk *sock, err syscall.Errno) syscall.Errno {
	sk.k.reach(fnSkStreamError)
	if err == errEPIPE {
		if e := sk.sockError(); e != 0 {
			return e
		}
	}
	return err
}

// tcpSendPrologue mirrors the checks at the top of tcp_sendmsg_locked()
// (net/ipv4/tcp.c, v6.18), before any byte is copied, for both TCPs: a
// socket not (yet or any more) able to send waits in
// sk_stream_wait_connect, which reports its error or -EPIPE; an error or a
// send shutdown is -EPIPE.
func (k *kernel) tcpSendPrologue(sk *sock) syscall.Errno {
	k.reach(fnTcpSendPrologue)
	if sk.State != tcpEstablished && sk.State != tcpCloseWait {
		if sk.SkErr != 0 {
			return sk.sockError()
		}
		return errEPIPE
	}
	if sk.SkErr != 0 || sk.SkShutdown&sendShutdown != 0 {
		return errEPIPE
	}
	return errOK
}

// Second bug zoo: the mutations of this file (mutation.go).
var (
	mutCloseUnreadOffByOne = registerMutation("close-unread-off-by-one",
		"__tcp_close tests data_was_unread > 1 for > 0: a close with one unread byte sends a FIN, not a RST")
	mutPollShutdownNoIn = registerMutation("poll-shutdown-no-in",
		"tcp_poll reports EPOLLRDHUP without EPOLLIN for RCV_SHUTDOWN: a poller never sees the EOF as readable")
)

// tcpIoctl mirrors tcp_ioctl() (net/ipv4/tcp.c, v6.18) for SIOCINQ.
func (k *kernel) tcpIoctl(t *task, sk *sock, cmd int) (int, syscall.Errno) {
	k.reach(fnTcpIoctl)
	if cmd != siocinq {
		return 0, errENOPROTOOPT
	}
	if sk.State == tcpListen {
		return 0, errEINVAL
	}
	return k.tcp.Inq(sk), errOK
}

// tcpPoll mirrors tcp_poll() (net/ipv4/tcp.c, v6.18).
func (k *kernel) tcpPoll(sk *sock) uint32 {
	k.reach(fnTcpPoll)
	var mask uint32
	state := sk.State
	shutdown := sk.SkShutdown
	if shutdown == shutdownMask || state == tcpClose {
		mask |= pollHUP
	}
	if shutdown&rcvShutdown != 0 {
		if k.mutated(mutPollShutdownNoIn) {
			mask |= pollRDHUP
		} else {
			mask |= pollIN | pollRDHUP
		}
	}
	if state != tcpSynSent && state != tcpSynRecv {
		if k.tcpStreamIsReadable(sk, sk.SkRcvlowat) {
			mask |= pollIN
		}
		if shutdown&sendShutdown == 0 {
			if k.tcp.StreamIsWriteable(sk) {
				mask |= pollOUT
			} else {
				sk.nospace = true
			}
		} else {
			mask |= pollOUT
		}
	}
	if sk.SkErr != 0 || len(sk.errorQueue) > 0 {
		mask |= pollERR
	}
	return mask
}

// tcpStreamIsReadable mirrors tcp_stream_is_readable() (net/ipv4/tcp.c,
// v6.18).
func (k *kernel) tcpStreamIsReadable(sk *sock, target int) bool {
	k.reach(fnTcpStreamIsReadable)
	if k.tcp.EpollinReady(sk, target) {
		return true
	}
	return sk.SkProt.SockIsReadable != nil && sk.SkProt.SockIsReadable(sk)
}

// tcpProt returns the base TCP proto (tcp_prot).
func (k *kernel) tcpProt() *proto {
	return &proto{
		Name: "tcp",
		Recvmsg: func(t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno) {
			return k.tcp.Recvmsg(t, sk, dst, flags)
		},
		Sendmsg: func(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno) {
			sk.lockSock(t)
			n, err := k.tcp.SendmsgLocked(t, sk, src, flags)
			sk.releaseSock()
			return n, err
		},
		Ioctl:      k.tcpIoctl,
		Close:      func(t *task, sk *sock) { k.tcp.Close(t, sk) },
		SpliceRead: k.tcpSpliceRead,
	}
}
