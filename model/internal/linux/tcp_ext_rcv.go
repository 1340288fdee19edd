package linux

// The bridge's receive side: taking bytes off the endpoint into skbs on
// sk_receive_queue (rx), the FIN, reset and state changes they carry, and
// the read hooks of the TCP interface (see extTCP, "Receive").

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// raiseRx raises the NET_RX context of xs unless one is pending: like
// tcp_v4_rcv, it runs on the socket's backlog while a task owns it.
func (x *extTCP) raiseRx(xs *extSock) {
	if xs.rxQueued {
		return
	}
	xs.rxQueued = true
	sk := xs.sk
	x.k.s.raiseSoftirq("netstack_rcv", func() {
		sk.bhRun(func() {
			xs.rxQueued = false
			x.rx(xs)
		})
	})
}

// extRcvLimit is the receive memory up to which rx takes bytes off the
// endpoint: sk_rcvbuf, which bounds sk_rmem_alloc on Linux
// (tcp_try_rmem_schedule).
func extRcvLimit(sk *sock) int { return sk.SkRcvbuf }

// peerDone reports whether an endpoint in the state named has received
// everything its peer will send: the peer's FIN (CLOSE_WAIT, CLOSING,
// LAST_ACK, TIME_WAIT) or the end of the connection (CLOSE).
func peerDone(state string) bool {
	switch state {
	case "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT", "CLOSE":
		return true
	}
	return false
}

// rx is the bridge's tcp_v4_rcv → tcp_rcv_established for xs, in softirq
// context with the socket not owned: tcp_data_queue (the bytes the
// endpoint made readable become skbs on sk_receive_queue), tcp_fin,
// tcp_reset, the state changes of tcp_rcv_state_process and tcp_done,
// then tcp_data_ready and tcp_check_space.
func (x *extTCP) rx(xs *extSock) { x.rxLimit(xs, false) }

// rxLimit is rx; with all it takes every byte the endpoint holds, whatever
// the receive memory (readers top the queue up: rcvTopUp).
func (x *extTCP) rxLimit(xs *extSock, all bool) {
	sk := xs.sk
	if x.broken || xs.ep == nil || xs.inRx {
		return
	}
	xs.inRx = true
	defer func() { xs.inRx = false }()
	queued, pulled := false, false
	// Once the peer has sent its last byte (its FIN or a reset reached
	// the endpoint), holding bytes back pushes back on no one: Linux has
	// them all queued (they came within a window it advertised, which
	// tcp_select_window never takes back), so rx takes everything.
	state := xs.ep.State()
	// A reader's top-up takes what the endpoint holds now, not what a
	// window it opens brings in while it reads.
	budget := -1
	if all {
		budget = xs.ep.ReadableBytes()
	}
	if peerDone(state) {
		budget = -1
		all = true
	}
	// After the end of the stream only a reset can still come (data
	// sent to a peer that closed draws one): the endpoint tells when it
	// ends.
	for !xs.closed && !xs.reset && (!xs.eof || state == "CLOSE") {
		room := tcpSizeGoal
		if !all && !xs.eof {
			room = min(room, extRcvLimit(sk)-sk.SkRmemAlloc)
		}
		if budget >= 0 {
			room = min(room, budget)
		}
		if room <= 0 && !xs.eof {
			break
		}
		room = max(room, 1) // after the end: one byte, to see a reset
		buf := x.scratch(room)
		n, err := xs.ep.Read(buf, false)
		if n > 0 && sk.SkShutdown&rcvShutdown != 0 && (sk.State == tcpFinWait1 || sk.State == tcpFinWait2) {
			x.abortOnData(xs)
			return
		}
		if n > 0 {
			x.queueData(xs, buf[:n])
			queued, pulled = true, true
			if budget > 0 {
				budget = max(budget-n, 0)
			}
			// The read may have opened the window (a window update
			// goes out): let the transport settle before looking at
			// the endpoint again.
			if serr := x.tr.Settle(); serr != nil {
				x.fail("settle", serr)
				return
			}
			state = xs.ep.State()
		}
		if err == nil {
			if n == 0 {
				break
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			if !xs.eof {
				x.tcpFin(xs)
				queued = true
			}
			break
		}
		e := errnoOf(err)
		if e == errEAGAIN || e == errENOTCONN {
			break
		}
		x.tcpReset(xs, e)
		break
	}
	if state == "CLOSE" && !xs.closed && !xs.reset {
		// An endpoint that ended without a reset error on read may
		// still hold one as its socket error: a reset after the end of
		// the stream was read (gVisor: the RST of a CLOSE_WAIT
		// connection is ErrAborted, EPIPE, as Linux's tcp_reset).
		if err := xs.ep.Err(); err != nil {
			x.tcpReset(xs, errnoOf(err))
		}
	}
	x.syncState(xs)
	if queued && !sk.SockDead {
		x.DataReady(sk)
	}
	// tcp_check_space → tcp_new_space: wake writers waiting for room.
	if sk.nospace && !sk.SockDead && x.StreamIsWriteable(sk) {
		sk.SkWriteSpace(sk)
	}
	if pulled {
		// Taking bytes off the endpoint opened its window: the peer
		// may have sent what it held (the window update of
		// tcp_cleanup_rbuf, on the transport's side); the transport
		// settled after each read.
		for _, o := range x.socks {
			x.raiseRx(o)
		}
	}
}

// abortOnData mirrors step 7 of tcp_rcv_state_process()
// (net/ipv4/tcp_input.c, v6.18) for data reaching a FIN_WAIT1/FIN_WAIT2
// socket shut for reading (RFC 1122; LINUX_MIB_TCPABORTONDATA): the data
// is dropped, the socket reset (tcp_reset) and a RST sent, here by
// aborting the endpoint (SO_LINGER{1,0} close). gVisor applies the same
// rule only to endpoints it was told are shut for reading, which the
// bridge never does (see extTCP).
func (x *extTCP) abortOnData(xs *extSock) {
	x.k.reach(fnExtTCPAbortOnData)
	x.tcpReset(xs, errECONNRESET)
	xs.closed = true
	if err := xs.ep.Close(true); err != nil {
		x.fail("close", fmt.Errorf("%s: %w", xs.sk.Name, err))
		return
	}
	x.step()
}

// queueData mirrors the receive half of tcp_data_queue()
// (net/ipv4/tcp_input.c, v6.18) for the bytes p, which follow rcv_nxt: an
// skb of fresh page fragments (the receive buffer a driver fills, here from
// the kworker's page frag), rx copybreak, then tcp_queue_rcv's coalescing.
func (x *extTCP) queueData(xs *extSock, p []byte) {
	x.k.reach(fnExtTCPQueueData)
	sk := xs.sk
	pf := &x.k.s.kernelTask.frag
	skb := &skBuff{Seq: xs.RcvNxt}
	for len(p) > 0 {
		x.k.pages.refill(pf)
		n := min(len(p), pf.Size-pf.Offset)
		copy(pf.Page.bytes(pf.Offset, n), p[:n])
		if t := pf.Page.tagsAt(pf.Offset, n); t != nil {
			x.popTags(sk, t)
		}
		skb.appendFrag(pf.Page, pf.Offset, n)
		pf.Offset += n
		p = p[n:]
	}
	skb.EndSeq = skb.Seq + uint32(skb.Len)
	xs.RcvNxt = skb.EndSeq
	if skb.Len <= sk.rxCopybreak {
		x.k.rxCopybreak(skb)
	}
	x.k.tcpQueueRcv(sk, skb)
}

// tcpFin mirrors tcp_fin() (net/ipv4/tcp_input.c, v6.18) for the end of
// the stream: the FIN is queued after the data (tcp_queue_rcv coalesces
// it into the tail skb as tcp_try_coalesce does), RCV_SHUTDOWN and
// SOCK_DONE are set; the state is the endpoint's (syncState).
func (x *extTCP) tcpFin(xs *extSock) {
	x.k.reach(fnExtTCPTcpFin)
	sk := xs.sk
	skb := &skBuff{Seq: xs.RcvNxt, EndSeq: xs.RcvNxt + 1, TCPFlags: tcphdrFIN}
	xs.RcvNxt++
	xs.eof = true
	x.k.tcpQueueRcv(sk, skb)
	sk.SkShutdown |= rcvShutdown
	sk.SockDone = true
	x.syncState(xs)
	if !sk.SockDead {
		sk.SkStateChange(sk)
	}
}

// tcpReset mirrors tcp_reset() → tcp_done_with_error()
// (net/ipv4/tcp_input.c, v6.18): sk_err by the state the reset found,
// tcp_done, sk_error_report. Bytes already queued stay readable, as on
// Linux.
func (x *extTCP) tcpReset(xs *extSock, e syscall.Errno) {
	x.k.reach(fnExtTCPTcpReset)
	sk := xs.sk
	xs.reset = true
	if e != errECONNRESET && e != errEPIPE && e != errETIMEDOUT {
		e = errECONNRESET
	}
	err, ok := tcpResetErr(sk.State, e)
	if !ok {
		return
	}
	sk.SkErr = err
	x.tcpDone(xs)
	if !sk.SockDead {
		sk.SkErrorReport(sk)
	}
}

// linuxState is the model state for the endpoint's state name.
//
// Unlike gVisor, whose endpoint stays in TIME_WAIT, Linux hands the
// connection to a timewait socket (tcp_time_wait) and the full socket is
// done (tcp_done: CLOSE); so is an orphan reaching FIN_WAIT2, which
// tcp_rcv_state_process turns into a FIN_WAIT2 timewait socket.
func linuxState(name string, dead bool) (tcpState, bool) {
	for st, n := range tcpStateNames {
		if n != name {
			continue
		}
		switch {
		case st == tcpTimeWait:
			st = tcpClose
		case st == tcpFinWait2 && dead:
			st = tcpClose
		}
		return st, true
	}
	return 0, false
}

// syncState follows the endpoint's state: the transitions of
// tcp_rcv_state_process (FIN_WAIT1 → FIN_WAIT2 on the ACK of the FIN,
// LAST_ACK/CLOSING → CLOSE, tcp_time_wait) with their sk_state_change.
func (x *extTCP) syncState(xs *extSock) {
	sk := xs.sk
	st, ok := linuxState(xs.ep.State(), sk.SockDead)
	if !ok {
		x.fail("state", fmt.Errorf("endpoint of %s in unknown state %q", sk.Name, xs.ep.State()))
		return
	}
	if st == sk.State {
		return
	}
	if st == tcpClose && !xs.eof && !xs.reset && !xs.closed && xs.ep.ReadableBytes() > 0 {
		// The endpoint ended while bytes before its end are not taken
		// off yet; rx turns the end into tcp_fin or tcp_reset in
		// stream order.
		return
	}
	switch st {
	case tcpEstablished, tcpSynSent, tcpSynRecv, tcpListen:
		return // never re-entered: the endpoint only moves forward
	case tcpFinWait2:
		sk.SkShutdown |= sendShutdown
	case tcpClose:
		x.tcpDone(xs)
		return
	}
	sk.State = st
	if !sk.SockDead {
		sk.SkStateChange(sk)
	}
}

// Recvmsg implements TCP (tcp_recvmsg → tcp_recvmsg_locked, v6.18, on the
// shared receive path).
func (x *extTCP) Recvmsg(t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno) {
	sk.lockSock(t)
	x.rcvTopUp(sk)
	n, err := x.k.tcpRecvmsgLocked(x, t, sk, dst, flags)
	sk.releaseSock()
	return n, err
}

// ReadSock implements TCP (tcp_read_sock, v6.18).
func (x *extTCP) ReadSock(sk *sock, cursor *uint32, desc *readDesc, actor func(desc *readDesc, skb *skBuff, off, n int) int) int {
	x.rcvTopUp(sk)
	return x.k.tcpReadSock(x, sk, cursor, desc, actor)
}

// ReadSkb implements TCP (tcp_read_skb, v6.18).
func (x *extTCP) ReadSkb(sk *sock, actor func(sk *sock, skb *skBuff) int) int {
	return x.k.tcpReadSkb(sk, actor)
}

// rcvTopUp runs before a reader looks at the queue: every byte the
// endpoint has received joins it (rx with no limit), so that a read sees
// all that FIONREAD and poll count, as on Linux, where everything
// received is on sk_receive_queue. The limit of rx only keeps bytes in
// the endpoint, so that its window closes, while nobody reads.
func (x *extTCP) rcvTopUp(sk *sock) {
	if xs := extSk(sk); x.pending(xs) > 0 {
		x.rxLimit(xs, true)
	}
}

// copiedSeqPtr implements rcvTransport.
func (x *extTCP) copiedSeqPtr(sk *sock) *uint32 { return &extSk(sk).CopiedSeq }

// pending is what the endpoint holds beyond what rx took off it.
func (x *extTCP) pending(xs *extSock) int {
	if x.broken || xs.ep == nil || xs.closed || xs.eof || xs.reset {
		return 0
	}
	return xs.ep.ReadableBytes()
}

// Inq implements TCP (tcp_inq): the unread bytes of the queue and of the
// endpoint.
func (x *extTCP) Inq(sk *sock) int {
	xs := extSk(sk)
	answ := int(int32(xs.RcvNxt - xs.CopiedSeq))
	if answ != 0 && sk.SockDone {
		answ--
	}
	return answ + x.pending(xs)
}

// EpollinReady implements TCP (tcp_epollin_ready): enough unread bytes,
// or a receive memory so full that no more will come.
func (x *extTCP) EpollinReady(sk *sock, target int) bool {
	xs := extSk(sk)
	avail := int(int32(xs.RcvNxt-xs.CopiedSeq)) + x.pending(xs)
	if avail <= 0 {
		return false
	}
	return avail >= target || sk.SkRmemAlloc >= extRcvLimit(sk)
}

// CopiedSeq implements tcp.
func (x *extTCP) CopiedSeq(sk *sock) uint32 { return extSk(sk).CopiedSeq }

// SetCopiedSeq implements tcp.
func (x *extTCP) SetCopiedSeq(sk *sock, seq uint32) { extSk(sk).CopiedSeq = seq }

// EatSkb implements TCP: it mirrors the copied_seq part of tcp_eat_skb()
// (net/ipv4/tcp_bpf.c, v6.18; since 6.4).
func (x *extTCP) EatSkb(sk *sock, skb *skBuff) {
	x.k.reach(fnExtTCPEatSkb)
	if skb == nil || skb.Len == 0 || skb.BpfStrparser {
		return
	}
	extSk(sk).CopiedSeq += uint32(skb.Len)
	x.CleanupRbuf(sk, skb.Len)
}

// RcvSpaceAdjust implements TCP: the transport tunes its own buffers.
func (x *extTCP) RcvSpaceAdjust(sk *sock) {}

// CleanupRbuf implements TCP: the reader freed receive memory, so rx may
// take more bytes off the endpoint (through the backlog while the reader
// owns the socket, as Linux's next segments arrive).
func (x *extTCP) CleanupRbuf(sk *sock, copied int) {
	xs := extSk(sk)
	if x.pending(xs) > 0 {
		x.raiseRx(xs)
	}
}

// DataReady implements TCP (tcp_data_ready).
func (x *extTCP) DataReady(sk *sock) {
	if x.EpollinReady(sk, sk.SkRcvlowat) || sk.SockDone {
		sk.SkDataReady(sk)
	}
}

// tcpQueueRcv mirrors tcp_queue_rcv() (net/ipv4/tcp_input.c, v6.18):
// coalesce into the tail skb when tcp_try_coalesce allows (contiguous, no
// FIN on the tail, the fragments fit MAX_SKB_FRAGS), else queue the skb.
//
// Unlike Linux, an skb with a slab head (rx copybreak) is never coalesced
// and nothing is coalesced into one: skb_try_coalesce would copy a small
// segment into the tail's linear tailroom, or steal a page-backed head,
// neither of which the model has.
func (k *kernel) tcpQueueRcv(sk *sock, skb *skBuff) {
	k.reach(fnTcpQueueRcv)
	if tail := sk.SkReceiveQueue.peekTail(); tail != nil &&
		tail.EndSeq == skb.Seq && tail.TCPFlags&tcphdrFIN == 0 &&
		!tail.BpfStrparser && !tail.hasLinear() && !skb.hasLinear() &&
		len(tail.Frags)+len(skb.Frags) <= maxSkbFrags {
		tail.Frags = append(tail.Frags, skb.Frags...)
		tail.Len += skb.Len
		tail.Truesize += skb.Truesize
		sk.SkRmemAlloc += skb.Truesize
		tail.EndSeq = skb.EndSeq
		tail.TCPFlags |= skb.TCPFlags
		skb.Frags = nil // the page references moved to the tail
		skb.freed = true
		return
	}
	skSetOwnerR(skb, sk)
	sk.SkReceiveQueue.tail(skb)
}
