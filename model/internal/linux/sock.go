package linux

import (
	"fmt"
	"syscall"

	"github.com/splicecheck/splicecheck/trace"
)

// tcpState is sk_state with the values of include/net/tcp_states.h.
type tcpState uint8

// The TCP states.
const (
	tcpEstablished tcpState = iota + 1
	tcpSynSent
	tcpSynRecv
	tcpFinWait1
	tcpFinWait2
	tcpTimeWait
	tcpClose
	tcpCloseWait
	tcpLastAck
	tcpListen
	tcpClosing
)

var tcpStateNames = map[tcpState]string{
	tcpEstablished: "ESTABLISHED", tcpSynSent: "SYN_SENT", tcpSynRecv: "SYN_RECV",
	tcpFinWait1: "FIN_WAIT1", tcpFinWait2: "FIN_WAIT2", tcpTimeWait: "TIME_WAIT",
	tcpClose: "CLOSE", tcpCloseWait: "CLOSE_WAIT", tcpLastAck: "LAST_ACK",
	tcpListen: "LISTEN", tcpClosing: "CLOSING",
}

// String returns the kernel's name of the state.
func (s tcpState) String() string {
	if n, ok := tcpStateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("STATE_%d", uint8(s))
}

// sk_shutdown bits.
const (
	rcvShutdown  = 1 // RCV_SHUTDOWN
	sendShutdown = 2 // SEND_SHUTDOWN
	shutdownMask = 3 // SHUTDOWN_MASK
)

// msg flags the model honours.
const (
	msgPeek     = 0x2       // MSG_PEEK
	msgDontwait = 0x40      // MSG_DONTWAIT
	msgWaitall  = 0x100     // MSG_WAITALL
	msgNosignal = 0x4000    // MSG_NOSIGNAL
	msgMore     = 0x8000    // MSG_MORE
	msgSplice   = 0x80000   // MSG_SPLICE_PAGES (internal)
	msgZerocopy = 0x4000000 // MSG_ZEROCOPY
)

// kernel is the state of one run: the simulated machine.
type kernel struct {
	s     *sched
	prof  behaviour
	tcp   tcp
	pages pageAlloc
	stats *Stats // copy accounting (stats.go)
	// dispatched is the index of the op the runner dispatched last
	// (SpliceRecord.EndOp).
	dispatched int
	// zcLive counts the MSG_ZEROCOPY ubuf_infos still referenced
	// (zerocopy.go): none may survive teardown.
	zcLive int
	mut    map[*Mutation]bool // planted bugs (mutation.go)

	socks   map[string]*sock
	sockSeq []*sock
	maps    map[string]*bpfMap
	splice  spliceStates // loopback splice states (splice_loopback.go)
	// rendezvous is the sockhash of `conn A B pair`'s sock_ops program
	// (connPair), created by its first pairing; no trace op names it.
	rendezvous *bpfMap
	tsp        tcpSpliceTables // the tcp_splice module's tables (splice_seq.go)
	// strpInitLeaks counts the frames strp_init forgot (Linux leaks
	// their skbs; the model frees them: skPsockInitStrp).
	strpInitLeaks int
}

// sock mirrors struct sock (include/net/sock.h, v6.18) together with the
// struct socket (include/linux/net.h, v6.18) and struct file
// (include/linux/fs.h, v6.18) of its descriptor (the model has one
// descriptor per socket, as the trace language has one name per socket).
//
// Ownership: the trace's descriptor holds one file reference; every
// syscall in flight on the socket holds another (fdget). The socket is
// released (sock_close → sk_prot->close) when the last file reference is
// dropped. sk_refcnt (SkRefcnt) counts struct sock references: the file,
// a psock (sock_hold in sk_psock_init), a psock's sk_redir, in-flight
// skbs' owners are not counted (the model never frees a struct sock).
//
// LOCKING: the model socket lock (lock_sock) is Owned; functions named
// ...Locked require it held by the calling task, and check that first
// (sockOwnedByMe). Kernel contexts that find the socket owned queue
// their work on Backlog, which release_sock runs (tcp_v4_rcv →
// sk_add_backlog).
type sock struct {
	Name string
	k    *kernel
	idx  int // position in the run's connection order (Tag.Sock)

	// struct sock.
	State      tcpState
	SkShutdown uint8
	SkErr      syscall.Errno
	// MSG_ZEROCOPY (zerocopy.go): SOCK_ZEROCOPY, sk_zckey (the id the
	// next zero-copy send gets), and sk_error_queue, whose skbs are the
	// completions not yet read (one sock_extended_err each).
	sockZerocopy bool
	zckey        uint32
	errorQueue   []trace.Notification
	// FreeBSD's SO_SPLICE (sosplice.go, profile freebsd-so-splice):
	// the splice this socket is the source of (so_splice), the one it is
	// the sink of (so_splice_back), and the bytes it moved as a source
	// (so_splice_sent, getsockopt SO_SPLICE).
	soSplice, soSpliceBack *soSplice
	spliceSent             int64
	SockDone               bool // SOCK_DONE
	SockDead               bool // SOCK_DEAD (orphaned)
	SockLinger             bool // SOCK_LINGER
	Lingertime             int

	SkReceiveQueue skbQueue
	SkRcvbuf       int
	SkSndbuf       int
	SkRmemAlloc    int
	SkRcvtimeo     timeo
	SkRcvlowat     int
	SkLlUsec       int // SO_BUSY_POLL (sk_ll_usec), microseconds
	SkRefcnt       int
	nospace        bool // SOCK_NOSPACE
	// userlocks is sk_userlocks: SO_SNDBUF and SO_RCVBUF fixed the
	// buffer (SOCK_SNDBUF_LOCK, SOCK_RCVBUF_LOCK), which autotuning then
	// leaves alone.
	userlocks uint8
	drops     int // sk_drops
	// fwdAlloc is sk_forward_alloc: memory charged to the socket in
	// pages (sk_mem_schedule) and not yet used by its skbs.
	fwdAlloc int

	// Wq is sk_sleep(sk): the wait queue of the socket's readers,
	// writers and pollers.
	Wq waitQueue

	// SkUserData is the psock (sk_psock(sk)).
	SkUserData *psock
	// SkProt is sk->sk_prot: the TCP proto or a tcp_bpf proto.
	SkProt *proto

	// Callbacks (sk_data_ready, sk_state_change, sk_write_space,
	// sk_error_report).
	SkDataReady   func(*sock)
	SkStateChange func(*sock)
	SkWriteSpace  func(*sock)
	SkErrorReport func(*sock)

	Owned   bool
	owner   *task
	Backlog []func()
	// backlogAppends counts what was ever put on Backlog.
	backlogAppends int
	// releaseCb is the transport's work at release_sock (tcp_release_cb
	// and the backlog's ACKs).
	releaseCb func()

	// TCP is the transport's per-socket state (struct tcp_sock for the
	// reference TCP).
	TCP any

	// File and descriptor.
	fdOpen    bool // the trace's descriptor is open
	fileRefs  int
	released  bool
	ONonblock bool
	// goCopies counts the iocopies using the socket; goNonblock is
	// ONonblock from before the first of them (goHold).
	goCopies   int
	goNonblock bool
	rcvtimeo   timeo // for iocopy's read deadline (Go's SetReadDeadline)
	pipe       *pipe // the socket's own splice pipe (kernel backend: one per socket)
	// rxCopybreak: segments of at most this many payload bytes arrive
	// with a slab-backed linear head (`set S rxcopybreak N`; 0: never).
	rxCopybreak int
}

// proto mirrors the struct proto (include/net/sock.h, v6.18) entries the
// model dispatches through sk->sk_prot: the base TCP proto, or one of the
// tcp_bpf_prots that tcp_bpf_update_proto installs.
type proto struct {
	Name           string
	Recvmsg        func(t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno)
	Sendmsg        func(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno)
	Ioctl          func(t *task, sk *sock, cmd int) (int, syscall.Errno)
	Close          func(t *task, sk *sock)
	SockIsReadable func(sk *sock) bool
	// SpliceRead is splice_read: from the socket into pipe, at most
	// length bytes (the caller capped it at the pipe's free slots);
	// nonblock is the file's O_NONBLOCK. tcp_splice_read on mainline,
	// where struct proto has no splice_read (inet_stream_ops calls
	// tcp_splice_read directly, so a psock cannot replace it).
	SpliceRead func(t *task, sk *sock, pipe *pipe, length int, nonblock bool) (int, syscall.Errno)
}

// sk_userlocks bits.
const (
	sockSndbufLock = 1 // SOCK_SNDBUF_LOCK
	sockRcvbufLock = 2 // SOCK_RCVBUF_LOCK
)

// siocinq is SIOCINQ (FIONREAD).
const siocinq = 0x541B

// newSock allocates a socket in state CLOSE with the default callbacks.
func (k *kernel) newSock(name string) *sock {
	sk := &sock{
		Name: name, k: k, State: tcpClose, SkRefcnt: 1,
		SkRcvbuf: k.prof.TCP.Rmem[1], SkSndbuf: tcpSndLimit,
		SkRcvtimeo: maxTimeout, SkRcvlowat: 1,
		fdOpen: true, fileRefs: 1,
	}
	sk.SkDataReady = sockDefReadable
	sk.SkStateChange = sockDefWakeup
	sk.SkWriteSpace = skStreamWriteSpace
	sk.SkErrorReport = sockDefErrorReport
	return sk
}

// peerOf returns the other end of sk's connection, nil if none.
func (k *kernel) peerOf(sk *sock) *sock {
	for i, x := range k.sockSeq {
		if x == sk {
			return k.sockSeq[i^1]
		}
	}
	return nil
}

// sockDefReadable mirrors sock_def_readable() (net/core/sock.c, v6.18):
// wake the readers.
func sockDefReadable(sk *sock) {
	sk.k.reach(fnSockDefReadable)
	sk.Wq.wakeUp()
}

// sockDefWakeup mirrors sock_def_wakeup() (net/core/sock.c, v6.18), the
// default sk_state_change.
func sockDefWakeup(sk *sock) {
	sk.k.reach(fnSockDefWakeup)
	sk.Wq.wakeUp()
}

// sockDefErrorReport mirrors sock_def_error_report() (net/core/sock.c,
// v6.18).
func sockDefErrorReport(sk *sock) {
	sk.k.reach(fnSockDefErrorReport)
	sk.Wq.wakeUp()
}

// skStreamWriteSpace mirrors sk_stream_write_space() (net/core/stream.c,
// v6.18): wake writers when the socket had run out of send space.
func skStreamWriteSpace(sk *sock) {
	sk.k.reach(fnSkStreamWriteSpace)
	if sk.nospace && sk.k.tcp.StreamIsWriteable(sk) {
		sk.nospace = false
		sk.Wq.wakeUp()
	}
}

// lockSock mirrors lock_sock() (include/net/sock.h, v6.18). The model never
// contends: a task takes the lock only while it runs, and it releases it
// before parking.
func (sk *sock) lockSock(t *task) {
	sk.k.reach(fnSockLockSock)
	if sk.Owned {
		panic(fmt.Sprintf("model: lock_sock(%s) by %s while owned by %s", sk.Name, t.Name, sk.owner.Name))
	}
	sk.Owned, sk.owner = true, t
}

// sockOwnedByMe mirrors sock_owned_by_me() (include/net/sock.h, v6.18):
// the caller must own sk (lock_sock). Every ...Locked function checks
// its precondition with it. Unlike Linux, where it is a lockdep warning
// that the socket's spinlock (bh_lock_sock) satisfies as well, the model
// has no spinlock to hold and panics when t does not own sk: the run
// fails with an internal error.
func (sk *sock) sockOwnedByMe(t *task) {
	sk.k.reach(fnSockSockOwnedByMe)
	if sk.Owned && sk.owner == t {
		return
	}
	if !sk.Owned {
		panic(fmt.Sprintf("model: sock_owned_by_me(%s) by %s while not owned", sk.Name, t.Name))
	}
	panic(fmt.Sprintf("model: sock_owned_by_me(%s) by %s while owned by %s", sk.Name, t.Name, sk.owner.Name))
}

// releaseSock mirrors release_sock() (net/core/sock.c, v6.18): run the
// backlog queued while the socket was owned, then, under the socket's
// spinlock (bottom halves off), the transport's release callback and the
// end of ownership: what the callback sends reaches the peer, and the
// peer's answer this socket, only once it is no longer owned.
func (sk *sock) releaseSock() {
	sk.k.reach(fnSockReleaseSock)
	for len(sk.Backlog) > 0 {
		fn := sk.Backlog[0]
		sk.Backlog = sk.Backlog[1:]
		fn()
	}
	sk.k.s.localBhDisable()
	if sk.releaseCb != nil {
		sk.releaseCb()
	}
	sk.Owned, sk.owner = false, nil
	sk.k.s.localBhEnable()
}

// flushBacklog mirrors sk_flush_backlog() (include/net/sock.h, v6.18):
// while keeping the socket, run what its backlog holds, then the
// transport's release callback; report whether there was anything.
func (sk *sock) flushBacklog() bool {
	sk.k.reach(fnSockFlushBacklog)
	if len(sk.Backlog) == 0 {
		return false
	}
	for len(sk.Backlog) > 0 {
		fn := sk.Backlog[0]
		sk.Backlog = sk.Backlog[1:]
		fn()
	}
	if sk.releaseCb != nil {
		sk.releaseCb()
	}
	return true
}

// bhRun runs fn in softirq context on sk: at once if the socket is not
// owned by a task, else on its backlog (bh_lock_sock + sock_owned_by_user).
func (sk *sock) bhRun(fn func()) {
	if sk.Owned {
		sk.backlogAppends++
		sk.Backlog = append(sk.Backlog, fn)
		return
	}
	fn()
}

// sockError mirrors sock_error() (include/net/sock.h, v6.18): return and
// clear sk_err.
func (sk *sock) sockError() syscall.Errno {
	sk.k.reach(fnSockSockError)
	e := sk.SkErr
	sk.SkErr = 0
	return e
}

// sockRcvtimeo mirrors sock_rcvtimeo() (include/net/sock.h, v6.18).
func (sk *sock) sockRcvtimeo(noblock bool) timeo {
	sk.k.reach(fnSockSockRcvtimeo)
	if noblock {
		return 0
	}
	return sk.SkRcvtimeo
}

// skWaitEventLocked mirrors sk_wait_event() (include/net/sock.h, v6.18):
// release the socket lock, sleep on the socket's wait queue once (unless
// cond already holds), re-take the lock and return cond's value. *to is
// updated with the time left. what names the kernel function that waits,
// why (nil: nothing to add) what made cond true, for a lost-wakeup report
// (model.Fault's Site).
//
// Precondition: the caller owns sk.
func (sk *sock) skWaitEventLocked(t *task, to *timeo, what string, why func() string, cond func() bool) bool {
	sk.k.reach(fnSockSkWaitEventLocked)
	sk.sockOwnedByMe(t)
	return sk.skWaitEventLiveLocked(t, to, what, why, cond, cond)
}

// skWaitEventLiveLocked is skWaitEventLocked whose lost-wakeup check
// uses live instead of cond: the condition under which a sleeper has
// something to do, where cond also holds when it has not (sk_wait_data's
// tail != last holds once another reader emptied the queue, and no
// wake-up is owed then).
func (sk *sock) skWaitEventLiveLocked(t *task, to *timeo, what string, why func() string, cond, live func() bool) bool {
	sk.sockOwnedByMe(t)
	sk.releaseSock()
	if !cond() {
		*to = t.waitWokenCond(&sk.Wq, *to, what, why, live)
	}
	sk.lockSock(t)
	return cond()
}

// skWaitDataLocked mirrors sk_wait_data() (net/core/sock.c, v6.18): wait
// until the receive queue's tail is not last. what names the caller, why
// says what made the wait's condition true (skWaitEventLocked). A wake-up
// is owed only for a new skb on a non-empty queue.
func (sk *sock) skWaitDataLocked(t *task, to *timeo, what string, why func() string, last *skBuff) bool {
	sk.k.reach(fnSockSkWaitDataLocked)
	sk.sockOwnedByMe(t)
	cond := func() bool { return sk.SkReceiveQueue.peekTail() != last }
	live := func() bool { return !sk.SkReceiveQueue.empty() && cond() }
	return sk.skWaitEventLiveLocked(t, to, what, why, cond, live)
}

// skSetOwnerR mirrors skb_set_owner_r() (include/net/sock.h, v6.18): charge
// the skb's truesize to the socket's receive memory.
func skSetOwnerR(skb *skBuff, sk *sock) {
	sk.k.reach(fnSkSetOwnerR)
	if skb.Sk == sk && !skb.efree {
		return
	}
	skbOrphan(skb)
	skb.Sk = sk
	sk.SkRmemAlloc += skb.Truesize
	sk.memCharge(skb.Truesize)
}

// memSchedule mirrors __sk_mem_schedule() (net/core/sock.c, v6.18) as
// sk_rmem_schedule(), sk_wmem_schedule() (include/net/sock.h, v6.18) and
// sk_forced_mem_schedule() (net/ipv4/tcp_output.c, v6.18) call it: whole
// pages are charged to sk_forward_alloc for what it lacks of size.
//
// Unlike Linux, the protocol's memory limits (tcp_mem) never refuse.
func (sk *sock) memSchedule(size int) {
	sk.k.reach(fnSockMemSchedule)
	if d := size - sk.fwdAlloc; d > 0 {
		sk.fwdAlloc += (d + pageSize - 1) / pageSize * pageSize
	}
}

// memCharge and memUncharge mirror sk_mem_charge() and sk_mem_uncharge()
// with sk_mem_reclaim() (include/net/sock.h, v6.18): an skb's truesize
// taken from or given back to sk_forward_alloc, of which whole pages
// return to the protocol's pool.
func (sk *sock) memCharge(n int) {
	sk.k.reach(fnSockMemCharge)
	sk.fwdAlloc -= n
}

func (sk *sock) memUncharge(n int) {
	sk.fwdAlloc += n
	if sk.fwdAlloc >= pageSize {
		sk.fwdAlloc %= pageSize
	}
}

// freeSkb mirrors kfree_skb() (include/linux/skbuff.h, v6.18) /
// consume_skb() (net/core/skbuff.c, v6.18): it drops one reference and,
// with the last, uncharges the owner (sock_rfree) and frees the skb.
func (k *kernel) freeSkb(skb *skBuff) {
	k.reach(fnFreeSkb)
	if skb.users > 0 {
		skb.users-- // another reference remains (skb_get)
		return
	}
	skbOrphan(skb)
	k.pages.kfreeSkb(skb)
}

// skbOrphan mirrors skb_orphan() (include/linux/skbuff.h, v6.18): the
// destructor runs and the skb has no owner. sock_rfree gives an skb's
// truesize back to the receive memory of the socket skb_set_owner_r
// charged; sock_efree only drops the reference skb_set_owner_sk_safe
// took (not counted in the model).
func skbOrphan(skb *skBuff) {
	reach(fnSkbOrphan)
	if skb.Sk != nil && !skb.efree {
		skb.Sk.SkRmemAlloc -= skb.Truesize
		skb.Sk.memUncharge(skb.Truesize)
	}
	skb.Sk, skb.efree = nil, false
}

// skbSetOwnerSkSafe mirrors skb_set_owner_sk_safe() (include/net/sock.h,
// v6.18) on a full socket: skb_orphan, then sk owns the skb through
// sock_efree. An skb tcp_read_skb takes off sk_receive_queue stops
// counting in sk_rmem_alloc before its verdict runs, so the window the
// verdict's tcp_eat_skb advertises (__tcp_cleanup_rbuf) no longer
// counts it.
func skbSetOwnerSkSafe(skb *skBuff, sk *sock) {
	sk.k.reach(fnSkbSetOwnerSkSafe)
	skbOrphan(skb)
	skb.Sk, skb.efree = sk, true
}

// sockHold mirrors sock_hold() (include/net/sock.h, v6.18).
func sockHold(sk *sock) {
	sk.k.reach(fnSockHold)
	sk.SkRefcnt++
}

// sockPut mirrors sock_put() (include/net/sock.h, v6.18) without the
// free: the model never frees a struct sock.
func sockPut(sk *sock) {
	sk.k.reach(fnSockPut)
	sk.SkRefcnt--
}

// fget takes a file reference for a syscall on the descriptor (fdget):
// it fails with EBADF once the trace closed the descriptor.
func (sk *sock) fget() syscall.Errno {
	if sk == nil || !sk.fdOpen {
		return errEBADF
	}
	sk.fileRefs++
	return errOK
}

// fput drops a file reference; the last one releases the socket
// (__fput → sock_close → inet_release → sk_prot->close).
func (sk *sock) fput(t *task) {
	sk.fileRefs--
	if sk.fileRefs == 0 && !sk.released {
		sk.released = true
		sk.inetRelease(t)
	}
}

// inetRelease mirrors inet_release() (net/ipv4/af_inet.c, v6.18): with
// SO_LINGER the close timeout is the linger time (zero here), then
// sk_prot->close.
func (sk *sock) inetRelease(t *task) {
	sk.k.reach(fnSockInetRelease)
	if sk.pipe != nil {
		sk.k.pipeRelease(sk.pipe)
		sk.pipe = nil
	}
	sk.SkProt.Close(t, sk)
}

// inetShutdown mirrors inet_shutdown() (net/ipv4/af_inet.c, v6.18): set
// the shutdown bits, let TCP send a FIN for SEND_SHUTDOWN, wake everyone.
func (k *kernel) inetShutdown(t *task, sk *sock, how int) syscall.Errno {
	k.reach(fnInetShutdown)
	how++ // maps 0,1,2 to RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK
	if how&^shutdownMask != 0 || how == 0 {
		return errEINVAL
	}
	sk.lockSock(t)
	var err syscall.Errno
	switch sk.State {
	case tcpClose:
		err = errENOTCONN
		sk.SkShutdown |= uint8(how)
	case tcpListen:
		if how&rcvShutdown == 0 {
			break
		}
		fallthrough
	case tcpSynSent:
		err = errENOTCONN
	default:
		sk.SkShutdown |= uint8(how)
		k.tcp.Shutdown(t, sk, how)
	}
	sk.SkStateChange(sk)
	sk.releaseSock()
	return err
}

// iovIter is the destination of a read: the user's buffer of cap bytes.
// tags, once a tagged source wrote into it, holds the provenance of each
// byte of buf (untagged bytes: zero).
type iovIter struct {
	buf  []byte
	tags []Tag
	cap  int
}

func newIovIter(n int) *iovIter { return &iovIter{cap: n} }

// left returns the room left in the buffer.
func (it *iovIter) left() int { return it.cap - len(it.buf) }

// copyInTagged mirrors copy_to_iter() (include/linux/uio.h, v6.18) /
// copy_page_to_iter() (lib/iov_iter.c, v6.18): append up to left() bytes
// of p, whose tags are t (nil: none), and return how many were copied.
func (it *iovIter) copyInTagged(p []byte, t []Tag) int {
	reach(fnIovIterCopyInTagged)
	if n := it.left(); len(p) > n {
		p = p[:n]
	}
	if t != nil || it.tags != nil {
		it.tags = append(it.tags, make([]Tag, len(it.buf)-len(it.tags))...)
		if t != nil {
			it.tags = append(it.tags, t[:len(p)]...)
		} else {
			it.tags = append(it.tags, make([]Tag, len(p))...)
		}
	}
	it.buf = append(it.buf, p...)
	return len(p)
}

// tagsOf returns the tags of buf[from:to], nil if the buffer has none.
func (it *iovIter) tagsOf(from, to int) []Tag {
	if it.tags == nil {
		return nil
	}
	it.tags = append(it.tags, make([]Tag, len(it.buf)-len(it.tags))...)
	return it.tags[from:to]
}

// actor is iovIter's msgReader actor: copy_page_to_iter.
func (it *iovIter) actor(p *page, off, n int) int {
	b := p.bytes(off, n)
	return it.copyInTagged(b, p.tagsAt(off, n))
}

// srcIter is the source of a write: explicit bytes, or pattern bytes at a
// stream offset (trace.Pattern), generated lazily so that a 1 GiB send
// does not allocate 1 GiB up front.
//
// base is the sender's stream offset of the first byte (the bytes its
// earlier sends were accepted with, as trace.Pattern numbers them), so
// that base+pos is the stream offset of the next byte, whatever the form.
//
// sock is the sender's index (Tag) for a user's send, -1 for the
// kernel's own sends, whose bytes carry the tags they had (tags).
type srcIter struct {
	data    []byte // explicit data; nil for pattern data
	pattern bool
	patOff  int64 // stream offset of the next pattern byte
	base    int64 // stream offset of the first byte
	pos     int   // bytes consumed
	n       int   // total bytes
	sock    int
	tags    []Tag // the kernel's sends: the tags of data
}

func newSrcBytes(off int64, b []byte) *srcIter {
	return &srcIter{data: b, base: off, n: len(b), sock: -1}
}

func newSrcPattern(off int64, n int) *srcIter {
	return &srcIter{pattern: true, patOff: off, base: off, n: n, sock: -1}
}

// newSrcKernel is the source of a send the kernel makes of bytes b that
// carry tags t (nil: none): an egress redirect's skb_send_sock, io.Copy's
// writes.
func newSrcKernel(b []byte, t []Tag) *srcIter {
	return &srcIter{data: b, base: -1, n: len(b), sock: -1, tags: t}
}

// streamOff is the sender's stream offset of the next byte, or -1 for
// bytes that are not a user's send (the kernel's own sends: an egress
// redirect's skb_send_sock, io.Copy's writes), made with base -1.
func (s *srcIter) streamOff() int64 {
	if s.base < 0 {
		return -1
	}
	return s.base + int64(s.pos)
}

// left mirrors msg_data_left() (include/linux/socket.h, v6.18).
func (s *srcIter) left() int {
	reach(fnSrcIterLeft)
	return s.n - s.pos
}

// copyToTagged is copyTo that also fills dt, if not nil, with the
// bytes' tags: a user's send tags each byte with its stream offset.
func (s *srcIter) copyToTagged(dst []byte, dt []Tag) {
	if dt != nil {
		switch {
		case s.tags != nil:
			copy(dt, s.tags[s.pos:s.pos+len(dst)])
		case s.sock >= 0 && s.base >= 0:
			off := s.streamOff()
			for i := range dt {
				dt[i] = makeTag(s.sock, off+int64(i))
			}
		default:
			clear(dt)
		}
	}
	s.copyTo(dst)
}

// copyTo fills dst with the next len(dst) bytes (copy_from_iter).
func (s *srcIter) copyTo(dst []byte) {
	if s.pattern {
		v := s.patOff % 251
		for i := range dst {
			dst[i] = byte(v)
			v++
			if v == 251 {
				v = 0
			}
		}
		s.patOff += int64(len(dst))
	} else {
		copy(dst, s.data[s.pos:s.pos+len(dst)])
	}
	s.pos += len(dst)
}

// revert mirrors iov_iter_revert() (lib/iov_iter.c, v6.18).
func (s *srcIter) revert(n int) {
	reach(fnSrcIterRevert)
	s.pos -= n
	if s.pattern {
		s.patOff -= int64(n)
	}
}

// skStreamWaitMemoryLocked mirrors sk_stream_wait_memory()
// (net/core/stream.c, v6.18): sleep until the send queue has room, an
// error, a shutdown or the timeout.
func (k *kernel) skStreamWaitMemoryLocked(t *task, sk *sock, to *timeo) syscall.Errno {
	k.reach(fnSkStreamWaitMemoryLocked)
	sk.sockOwnedByMe(t)
	for {
		if sk.SkErr != 0 || sk.SkShutdown&sendShutdown != 0 {
			return errEPIPE
		}
		if *to == 0 {
			// do_eagain: SOCK_NOSPACE, so that the ACK that makes
			// room (tcp_check_space → tcp_new_space) wakes a poller.
			sk.nospace = true
			return errEAGAIN
		}
		if k.tcp.StreamMemoryFree(sk) {
			return errOK
		}
		sk.nospace = true
		// sk_wait_event: the backlog release_sock runs may have freed
		// the memory (the ACKs of what this call sent).
		sk.releaseSock()
		if sk.SkErr == 0 && sk.SkShutdown&sendShutdown == 0 && !k.tcp.StreamMemoryFree(sk) {
			*to = t.waitWoken(&sk.Wq, *to)
		}
		sk.lockSock(t)
	}
}
