package model

import "syscall"

// TCP is the model's transport: the operations of net/ipv4/tcp*.c that
// the socket layer, the sk_msg layer (skmsg.go, tcp_bpf.go) and splice
// call. The in-model reference TCP (RefTCP) implements it; issue 8 puts
// gVisor netstack behind the same interface.
//
// Contract: the transport owns the per-socket TCP state (Sock.TCP), moves
// segments between the two sockets of a connection, and on arrival puts
// in-order data on Sock.SkReceiveQueue (as skbs whose pages it
// references) and calls the socket's callbacks (SkDataReady on data or
// FIN, SkStateChange on state changes, SkErrorReport on errors) from
// kernel contexts queued on the scheduler. Every method runs either on a
// task (with the socket lock held where the name says Locked) or in a
// kernel context; none blocks except where it takes a *Task and says so.
type TCP interface {
	// Connect makes a an active and b a passive endpoint of one
	// established loopback connection.
	Connect(a, b *Sock)
	// SendmsgLocked mirrors tcp_sendmsg_locked(): copy src into the send
	// queue and transmit. It may block (sk_stream_wait_memory).
	SendmsgLocked(t *Task, sk *Sock, src *srcIter, flags int) (int, syscall.Errno)
	// SendPageLocked mirrors tcp_sendmsg_locked() with MSG_SPLICE_PAGES:
	// queue a reference to a page range instead of copying.
	SendPageLocked(t *Task, sk *Sock, p *Page, off, n int, flags int) (int, syscall.Errno)
	// Recvmsg mirrors tcp_recvmsg(). It may block.
	Recvmsg(t *Task, sk *Sock, dst *iovIter, flags int) (int, syscall.Errno)
	// ReadSock mirrors tcp_read_sock(): feed queued data to actor (which
	// returns how much it used, or a negative errno, and decrements
	// desc.Count by what it used). With a non-nil seq it mirrors
	// tcp_read_sock_noack(): seq is the reader's own cursor and
	// copied_seq is left alone.
	ReadSock(sk *Sock, seq *uint32, desc *ReadDesc, actor func(desc *ReadDesc, skb *SkBuff, off, n int) int) int
	// ReadSkb mirrors tcp_read_skb(): unlink every queued skb and hand it
	// to actor, which takes ownership.
	ReadSkb(sk *Sock, actor func(sk *Sock, skb *SkBuff) int) int
	// Inq mirrors tcp_inq(): unread bytes by sequence numbers.
	Inq(sk *Sock) int
	// EpollinReady mirrors tcp_epollin_ready().
	EpollinReady(sk *Sock, target int) bool
	// StreamIsWriteable mirrors __sk_stream_is_writeable(sk, 1).
	StreamIsWriteable(sk *Sock) bool
	// StreamMemoryFree mirrors sk_stream_memory_free().
	StreamMemoryFree(sk *Sock) bool
	// EatSkb mirrors the sequence update of tcp_eat_skb(): count skb as
	// consumed (copied_seq) and let the window open.
	EatSkb(sk *Sock, skb *SkBuff)
	// AdjustCopiedSeq sets copied_seq (tcp_bpf_recvmsg_parser's write of
	// the sequence it computed, or strparser's).
	CopiedSeq(sk *Sock) uint32
	SetCopiedSeq(sk *Sock, seq uint32)
	// CleanupRbuf mirrors tcp_cleanup_rbuf(): after a read, announce the
	// freed receive space to the peer.
	CleanupRbuf(sk *Sock)
	// DataReady mirrors tcp_data_ready().
	DataReady(sk *Sock)
	// Shutdown mirrors tcp_shutdown().
	Shutdown(t *Task, sk *Sock, how int)
	// Close mirrors tcp_close() (the base proto's close).
	Close(t *Task, sk *Sock)
	// ExpireOrphans does what the kernel's TCP timers eventually do to
	// connections nobody holds any more: every orphaned socket (closed by
	// its owner) that is not yet CLOSE is done with and its queues freed,
	// as the zero-window probe's orphan retries (tcp_probe_timer,
	// tcp_orphan_retries), the FIN_WAIT2 timeout and TIME_WAIT expiry
	// would. Teardown calls it after the last descriptor is closed.
	ExpireOrphans()
}

// Empirical constants of loopback TCP on the project's 6.18 host (see
// the package documentation, "Unlike Linux"): the receive window a fresh
// connection fills before the sender keeps data queued, the send buffer
// an autotuned socket has (the bytes a sender accepts beyond the window
// before it blocks), and the size_goal of tcp_sendmsg (the payload of one
// loopback skb).
const (
	tcpRcvWindow   = 113152
	tcpSndLimit    = 3806315
	tcpSizeGoal    = 65483
	tcpRmemDefault = 131072 // tcp_rmem[1]
	tcpWmemDefault = 16384  // tcp_wmem[1]
	tcpISN         = 1      // initial sequence number of both directions
)

// RefTCP is the in-model reference TCP: byte streams with explicit
// in-flight segments delivered by kernel contexts, FIN, RST,
// SO_LINGER{1,0} and the socket states, fully deterministic.
type RefTCP struct {
	k *kernel
	// splitDataReady runs tcp_data_ready as its own kernel context after
	// the rest of the segment's processing (as when the receiving task
	// runs on another CPU between tcp_fin's wake-up and sk_data_ready).
	splitDataReady bool
}

// ReadDesc mirrors read_descriptor_t: Count is what the reader still
// wants; the actor decrements it.
type ReadDesc struct {
	Count int
	Error int
}

// tcpSock is the reference TCP's struct tcp_sock.
type tcpSock struct {
	sk   *Sock
	peer *tcpSock

	RcvNxt    uint32
	CopiedSeq uint32
	SndUna    uint32
	SndNxt    uint32
	WriteSeq  uint32

	// writeQueue holds skbs not yet transmitted (tcp_send_head onwards);
	// transmitted data is not retained (the model has no loss, so no
	// retransmission queue is needed). A FIN is the last skb's flag and
	// counts one in WriteSeq, as in the kernel.
	writeQueue []*SkBuff
	finQueued  bool
	// RcvWndEdge is the right edge of the window tp last advertised
	// (rcv_wup + rcv_wnd). tcp_select_window never moves it left (RFC
	// 7323 2.4: a window is not shrunk), so the peer may fill it even
	// after tp's receive memory grew (strparser clones, psock messages).
	RcvWndEdge uint32
	// deferPush: data is held until release_sock (Nagle, autocorking or
	// MSG_MORE); see tcpPush.
	deferPush bool
	// corkHeld: the last push had MSG_MORE with nothing in flight
	// (TCP_NAGLE_CORK): what it left in the write queue waits for a
	// push without MSG_MORE (peerHeld).
	corkHeld bool

	// unhashed: tcp_set_state(TCP_CLOSE) removed the socket from the
	// lookup tables; arriving segments find no socket.
	unhashed bool
	// tw is set when the socket became a timewait socket (tcp_time_wait);
	// twSubstate is FIN_WAIT2 or TIME_WAIT.
	tw         bool
	twSubstate TCPState
}

func tcpSk(sk *Sock) *tcpSock { return sk.TCP.(*tcpSock) }

// segment is one TCP segment in flight.
type segment struct {
	skb *SkBuff // payload and flags; nil for a pure ACK
	seq uint32
	ack uint32
	fin bool
	rst bool
}

// Connect implements TCP.
func (r *RefTCP) Connect(a, b *Sock) {
	ta := &tcpSock{sk: a}
	tb := &tcpSock{sk: b}
	ta.peer, tb.peer = tb, ta
	for _, tp := range []*tcpSock{ta, tb} {
		tp.RcvNxt, tp.CopiedSeq = tcpISN, tcpISN
		tp.RcvWndEdge = tcpISN + tcpRcvWindow
		tp.SndUna, tp.SndNxt, tp.WriteSeq = tcpISN, tcpISN, tcpISN
		tp.sk.TCP = tp
		tp.sk.State = TCPEstablished
		tp := tp
		tp.sk.releaseCb = func() { r.releaseCb(tp) }
	}
}

// releaseCb runs at release_sock: on loopback the ACKs of what the
// syscall sent were queued on the socket's backlog, and processing them
// (tcp_ack → tcp_data_snd_check) sends what Nagle or autocorking held.
func (r *RefTCP) releaseCb(tp *tcpSock) {
	if tp.deferPush {
		tp.deferPush = false
		r.xmitPending(tp)
	}
}

// tcpPush mirrors tcp_push() at the end of tcp_sendmsg_locked on a
// loopback connection. With MSG_MORE (TCP_NAGLE_CORK) and nothing in
// flight, tcp_nagle_check holds a partial segment until a later push
// without MSG_MORE. With MSG_MORE, or when a segment of this syscall is
// already in flight (so Nagle's check and autocorking hold a partial
// segment), the ACK processed at release_sock (tcp_data_snd_check with
// tp->nonagle) sends it; otherwise it goes now.
func (r *RefTCP) tcpPush(tp *tcpSock, flags int) {
	r.k.reach(fnRefTCPTcpPush)
	if len(tp.writeQueue) == 0 {
		return
	}
	tail := tp.writeQueue[len(tp.writeQueue)-1]
	inFlight := tp.SndNxt != tp.SndUna
	tp.corkHeld = flags&msgMore != 0 && !inFlight
	if tp.corkHeld {
		// TCP_NAGLE_CORK with nothing in flight: tcp_nagle_check holds
		// the partial segment and no ACK will come to release it; it
		// waits for a push without MSG_MORE.
		return
	}
	if flags&msgMore != 0 || (inFlight && tail.Len < tcpSizeGoal) {
		tp.deferPush = true
		return
	}
	r.xmitPending(tp)
}

// xmit sends seg from tp to its peer through loopback: the NET_RX softirq
// delivers it (tcp_v4_rcv), inline unless a softirq is already running.
func (r *RefTCP) xmit(tp *tcpSock, seg segment) {
	to := tp.peer
	r.k.s.raiseSoftirq("tcp_v4_rcv", func() { r.rcv(to, seg) })
}

// rcvWindow returns the receive window tp advertises: what fits before
// the receive memory reaches tcpRcvWindow.
func (r *RefTCP) rcvWindow(tp *tcpSock) int {
	w := tcpRcvWindow - tp.sk.SkRmemAlloc
	if w < 0 {
		w = 0
	}
	return w
}

// queuedBytes is the data accepted by sendmsg and not yet acknowledged.
func (tp *tcpSock) queuedBytes() int { return int(tp.WriteSeq - tp.SndUna) }

// xmitPending mirrors __tcp_push_pending_frames / tcp_write_xmit:
// transmit queued skbs while the peer's window allows, splitting the
// first skb that does not fit (tso_fragment), then the FIN.
func (r *RefTCP) xmitPending(tp *tcpSock) {
	r.k.reach(fnRefTCPXmitPending)
	if tp.peer == nil {
		return
	}
	for len(tp.writeQueue) > 0 {
		skb := tp.writeQueue[0]
		win := r.peerWindow(tp)
		if win <= 0 && skb.Len > 0 {
			return
		}
		if skb.Len > win {
			rest := skb.cloneRange(win, skb.Len-win)
			rest.Seq = skb.Seq + uint32(win)
			rest.EndSeq = skb.EndSeq
			rest.TCPFlags = skb.TCPFlags
			head := skb.cloneRange(0, win)
			head.Seq = skb.Seq
			head.EndSeq = skb.Seq + uint32(win)
			r.k.pages.kfreeSkb(skb)
			tp.writeQueue[0] = rest
			skb = head
		} else {
			_, tp.writeQueue = popFront(tp.writeQueue)
		}
		fin := skb.TCPFlags&tcphdrFIN != 0
		tp.SndNxt = skb.EndSeq
		r.xmit(tp, segment{skb: skb, seq: skb.Seq, fin: fin})
	}
}

// peerWindow is the window the peer advertises, less what is in flight.
// The model's ACKs carry no window: the sender reads the peer's receive
// memory directly, which is what the next ACK would say, but never less
// than what the peer already advertised (RcvWndEdge).
func (r *RefTCP) peerWindow(tp *tcpSock) int {
	p := tp.peer
	if p == nil || p.unhashed || p.tw {
		return 1 << 30 // segments to a dead peer draw a RST; window irrelevant
	}
	inflight := int(tp.SndNxt - tp.SndUna)
	return max(r.rcvWindow(p)-inflight, int(int32(p.RcvWndEdge-tp.SndNxt)))
}

// sendAck sends a pure ACK from tp, advertising its window: the right
// edge moves right only (tcp_select_window).
func (r *RefTCP) sendAck(tp *tcpSock) {
	if tp.peer == nil {
		return
	}
	if edge := tp.RcvNxt + uint32(r.rcvWindow(tp)); int32(edge-tp.RcvWndEdge) > 0 {
		tp.RcvWndEdge = edge
	}
	r.xmit(tp, segment{ack: tp.RcvNxt})
}

// sendReset mirrors tcp_send_active_reset(): a RST at snd_nxt.
func (r *RefTCP) sendReset(tp *tcpSock) {
	r.k.reach(fnRefTCPSendReset)
	if tp.peer == nil {
		return
	}
	r.xmit(tp, segment{rst: true, seq: tp.SndNxt})
}

// rcv mirrors tcp_v4_rcv → tcp_v4_do_rcv → tcp_rcv_state_process /
// tcp_rcv_established, in softirq context. A segment for a socket that is
// unhashed draws a RST (tcp_v4_send_reset), unless it is one.
func (r *RefTCP) rcv(tp *tcpSock, seg segment) {
	r.k.reach(fnRefTCPRcv)
	sk := tp.sk
	if tp.unhashed {
		if seg.skb != nil {
			r.k.freeSkb(seg.skb)
		}
		if !seg.rst && tp.peer != nil {
			r.xmit(tp, segment{rst: true, seq: tp.SndNxt})
		}
		return
	}
	if tp.tw {
		r.rcvTimewait(tp, seg)
		return
	}
	if sk.Owned {
		// tcp_add_backlog: the owner processes it at release_sock.
		sk.Backlog = append(sk.Backlog, func() { r.rcvStateProcess(tp, seg) })
		return
	}
	r.rcvStateProcess(tp, seg) // tcp_v4_do_rcv
}

// rcvTimewait mirrors tcp_timewait_state_process().
func (r *RefTCP) rcvTimewait(tp *tcpSock, seg segment) {
	r.k.reach(fnRefTCPRcvTimewait)
	if seg.skb != nil {
		defer r.k.freeSkb(seg.skb)
	}
	if seg.rst {
		tp.unhashed = true // inet_twsk_deschedule_put: the tw socket dies
		return
	}
	if seg.skb == nil {
		return // a pure ACK
	}
	if tp.twSubstate == TCPFinWait2 {
		if seg.skb.Len == 0 && seg.fin && seg.skb.EndSeq == tp.RcvNxt+1 {
			tp.twSubstate = TCPTimeWait
			tp.RcvNxt = seg.skb.EndSeq
			r.sendAck(tp)
			return
		}
		if seg.skb.Len > 0 || seg.fin {
			r.xmit(tp, segment{rst: true, seq: tp.SndNxt}) // TCP_TW_RST
		}
		return
	}
	// TIME_WAIT: a retransmitted FIN is acked; new data draws a RST.
	if seg.skb.Len > 0 {
		r.xmit(tp, segment{rst: true, seq: tp.SndNxt})
		return
	}
	r.sendAck(tp)
}

// rcvStateProcess mirrors the parts of tcp_rcv_state_process() and
// tcp_rcv_established() a loopback connection exercises: RST, ACK
// processing with the FIN_WAIT1/CLOSING/LAST_ACK transitions, then the
// segment text (tcp_data_queue), then the FIN.
func (r *RefTCP) rcvStateProcess(tp *tcpSock, seg segment) {
	r.k.reach(fnRefTCPRcvStateProcess)
	sk := tp.sk
	if seg.rst {
		if sk.State == TCPClose {
			return
		}
		r.tcpReset(tp)
		return
	}
	if seg.skb == nil {
		r.tcpAck(tp, seg.ack)
		return
	}
	skb := seg.skb
	// Step 7 of tcp_rcv_state_process: the segment text.
	switch sk.State {
	case TCPCloseWait, TCPClosing, TCPLastAck:
		// Data after the peer's FIN: not queued.
		r.k.freeSkb(skb)
		return
	case TCPFinWait1, TCPFinWait2:
		if sk.SkShutdown&rcvShutdown != 0 && skb.Len > 0 {
			// RFC 1122: data after a close or shutdown(RD): reset.
			r.k.freeSkb(skb)
			r.tcpReset(tp)
			r.xmit(tp, segment{rst: true, seq: tp.SndNxt})
			return
		}
	case TCPEstablished:
	default:
		r.k.freeSkb(skb)
		return
	}
	r.dataQueue(tp, skb)
	r.sendAck(tp)
}

// dataQueue mirrors tcp_data_queue() for in-order segments:
// tcp_queue_rcv (coalescing with the tail), rcv_nxt, tcp_fin, then
// tcp_data_ready.
func (r *RefTCP) dataQueue(tp *tcpSock, skb *SkBuff) {
	r.k.reach(fnRefTCPDataQueue)
	sk := tp.sk
	if skb.Seq != tp.RcvNxt {
		// Cannot happen on the model's in-order wire.
		r.k.freeSkb(skb)
		return
	}
	fin := skb.TCPFlags&tcphdrFIN != 0
	tp.RcvNxt = skb.EndSeq
	if skb.Len > 0 && skb.Len <= sk.rxCopybreak {
		r.k.rxCopybreak(skb)
	}
	r.k.tcpQueueRcv(sk, skb)
	if fin {
		r.tcpFin(tp)
	}
	if !sk.SockDead {
		if r.splitDataReady {
			r.k.s.queueWork("tcp_data_ready", func() { sk.bhRun(func() { r.DataReady(sk) }) })
		} else {
			r.DataReady(sk)
		}
	}
}

// tcpQueueRcv mirrors tcp_queue_rcv(): coalesce into the tail skb when
// tcp_try_coalesce allows (contiguous, no FIN on the tail, the fragments
// fit MAX_SKB_FRAGS), else queue the skb.
//
// Unlike Linux, an skb with a slab head (rx copybreak) is never coalesced
// and nothing is coalesced into one: skb_try_coalesce would copy a small
// segment into the tail's linear tailroom, or steal a page-backed head,
// neither of which the model has.
func (k *kernel) tcpQueueRcv(sk *Sock, skb *SkBuff) {
	k.reach(fnTcpQueueRcv)
	if tail := sk.SkReceiveQueue.peekTail(); tail != nil &&
		tail.EndSeq == skb.Seq && tail.TCPFlags&tcphdrFIN == 0 &&
		!tail.BpfStrparser && !tail.hasLinear() && !skb.hasLinear() &&
		len(tail.Frags)+len(skb.Frags) <= MaxSkbFrags {
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

// DataReady implements TCP: tcp_data_ready() calls sk_data_ready when
// there is data to read or a FIN.
func (r *RefTCP) DataReady(sk *Sock) {
	if r.EpollinReady(sk, sk.SkRcvlowat) || sk.SockDone {
		sk.SkDataReady(sk)
	}
}

// tcpFin mirrors tcp_fin().
func (r *RefTCP) tcpFin(tp *tcpSock) {
	r.k.reach(fnRefTCPTcpFin)
	sk := tp.sk
	sk.SkShutdown |= rcvShutdown
	sk.SockDone = true
	switch sk.State {
	case TCPSynRecv, TCPEstablished:
		sk.State = TCPCloseWait
	case TCPCloseWait, TCPClosing, TCPLastAck:
	case TCPFinWait1:
		sk.State = TCPClosing
	case TCPFinWait2:
		r.timeWait(tp, TCPTimeWait)
	}
	if !sk.SockDead {
		sk.SkStateChange(sk)
	}
}

// tcpAck mirrors the parts of tcp_ack() and tcp_rcv_state_process()
// step 5 that a loopback connection exercises.
func (r *RefTCP) tcpAck(tp *tcpSock, ack uint32) {
	r.k.reach(fnRefTCPTcpAck)
	sk := tp.sk
	if int32(ack-tp.SndUna) > 0 && int32(ack-tp.SndNxt) <= 0 {
		tp.SndUna = ack
	}
	switch sk.State {
	case TCPFinWait1:
		if tp.finQueued && tp.SndUna == tp.WriteSeq {
			sk.State = TCPFinWait2
			sk.SkShutdown |= sendShutdown
			if !sk.SockDead {
				sk.SkStateChange(sk)
			} else {
				// An orphan: tcp_time_wait(sk, TCP_FIN_WAIT2, tmo).
				r.timeWait(tp, TCPFinWait2)
				return
			}
		}
	case TCPClosing:
		if tp.finQueued && tp.SndUna == tp.WriteSeq {
			r.timeWait(tp, TCPTimeWait)
			return
		}
	case TCPLastAck:
		if tp.finQueued && tp.SndUna == tp.WriteSeq {
			r.tcpDone(tp)
			return
		}
	}
	// The window may have opened: send what is queued (tcp_data_snd_check)
	// and tell writers (tcp_check_space).
	r.xmitPending(tp)
	if sk.nospace {
		sk.SkWriteSpace(sk)
	}
}

// timeWait mirrors tcp_time_wait(): a timewait socket takes over the
// connection and the full socket is done (a user still holding it sees
// CLOSE).
func (r *RefTCP) timeWait(tp *tcpSock, substate TCPState) {
	r.k.reach(fnRefTCPTimeWait)
	tw := &tcpSock{sk: tp.sk, peer: tp.peer, RcvNxt: tp.RcvNxt, SndNxt: tp.SndNxt,
		SndUna: tp.SndUna, WriteSeq: tp.WriteSeq, tw: true, twSubstate: substate}
	if tp.peer != nil {
		tp.peer.peer = tw
	}
	r.tcpDone(tp)
}

// ExpireOrphans implements TCP.
//
// Unlike Linux, which gets there through timers the model lacks, it acts
// at once.
func (r *RefTCP) ExpireOrphans() {
	for _, sk := range r.k.sockSeq {
		if tp, ok := sk.TCP.(*tcpSock); ok && sk.SockDead && sk.State != TCPClose {
			r.tcpDone(tp)
		}
	}
}

// tcpDone mirrors tcp_done(): CLOSE, SHUTDOWN_MASK, wake the user (or
// destroy an orphan).
func (r *RefTCP) tcpDone(tp *tcpSock) {
	r.k.reach(fnRefTCPTcpDone)
	tp.unhashed = true
	if tcpDoneSock(tp.sk) {
		r.destroy(tp)
	}
}

// destroy mirrors inet_csk_destroy_sock(): free what the socket holds.
func (r *RefTCP) destroy(tp *tcpSock) {
	r.k.reach(fnRefTCPDestroy)
	r.k.purgeReceiveQueue(tp.sk)
	r.writeQueuePurge(tp)
}

// tcpReset mirrors tcp_reset() and tcp_done_with_error().
func (r *RefTCP) tcpReset(tp *tcpSock) {
	r.k.reach(fnRefTCPTcpReset)
	sk := tp.sk
	err, ok := tcpResetErr(sk.State, errECONNRESET)
	if !ok {
		return
	}
	sk.SkErr = err
	r.writeQueuePurge(tp)
	r.tcpDone(tp)
	if !sk.SockDead {
		sk.SkErrorReport(sk)
	}
}

// writeQueuePurge mirrors tcp_write_queue_purge().
func (r *RefTCP) writeQueuePurge(tp *tcpSock) {
	r.k.reach(fnRefTCPWriteQueuePurge)
	for _, skb := range tp.writeQueue {
		r.k.pages.kfreeSkb(skb)
	}
	tp.writeQueue = nil
	tp.SndUna, tp.SndNxt = tp.WriteSeq, tp.WriteSeq
}

// EpollinReady implements TCP (tcp_epollin_ready with rcvlowat target).
func (r *RefTCP) EpollinReady(sk *Sock, target int) bool {
	tp := tcpSk(sk)
	avail := int32(tp.RcvNxt - tp.CopiedSeq)
	if avail <= 0 {
		return false
	}
	return int(avail) >= target || r.rcvWindow(tp) == 0
}

// peerHeld returns the bytes sk's peer holds in its write queue since a
// push with MSG_MORE found nothing in flight (tcpPush's TCP_NAGLE_CORK
// hold), with still nothing in flight, no push deferred to its
// release_sock and the window open: bytes only a later send without
// MSG_MORE will transmit. 0 when the peer is gone or owned.
func (r *RefTCP) peerHeld(sk *Sock) int {
	p := tcpSk(sk).peer
	if p == nil || !p.corkHeld || p.sk.Owned || p.deferPush || p.SndNxt != p.SndUna || r.peerWindow(p) <= 0 {
		return 0
	}
	n := 0
	for _, skb := range p.writeQueue {
		n += skb.Len
	}
	return n
}

// Inq implements TCP (tcp_inq).
func (r *RefTCP) Inq(sk *Sock) int {
	tp := tcpSk(sk)
	answ := int(int32(tp.RcvNxt - tp.CopiedSeq))
	if answ != 0 && sk.SockDone {
		answ--
	}
	return answ
}

// StreamMemoryFree implements TCP: sk_wmem_queued < sk_sndbuf, with the
// queue counted in payload bytes accepted and not yet acknowledged.
func (r *RefTCP) StreamMemoryFree(sk *Sock) bool {
	return tcpSk(sk).queuedBytes() < sk.SkSndbuf
}

// StreamIsWriteable implements TCP: sk_stream_wspace >=
// sk_stream_min_wspace and the memory is free.
func (r *RefTCP) StreamIsWriteable(sk *Sock) bool {
	q := tcpSk(sk).queuedBytes()
	return sk.SkSndbuf-q >= q/2 && r.StreamMemoryFree(sk)
}

// CopiedSeq implements TCP.
func (r *RefTCP) CopiedSeq(sk *Sock) uint32 { return tcpSk(sk).CopiedSeq }

// SetCopiedSeq implements TCP.
func (r *RefTCP) SetCopiedSeq(sk *Sock, seq uint32) { tcpSk(sk).CopiedSeq = seq }

// EatSkb implements TCP: the copied_seq part of tcp_eat_skb() (6.4+).
func (r *RefTCP) EatSkb(sk *Sock, skb *SkBuff) {
	if skb == nil || skb.Len == 0 || skb.BpfStrparser {
		return
	}
	tp := tcpSk(sk)
	tp.CopiedSeq += uint32(skb.Len)
	r.CleanupRbuf(sk)
}

// CleanupRbuf implements TCP: after reading, the freed window lets the
// peer send what it has queued (the window update of tcp_cleanup_rbuf).
func (r *RefTCP) CleanupRbuf(sk *Sock) {
	tp := tcpSk(sk)
	if p := tp.peer; p != nil && !p.tw && len(p.writeQueue) > 0 && !tp.unhashed {
		r.sendAck(tp) // the window update
	}
}

// skStreamError mirrors sk_stream_error().
func skStreamError(sk *Sock, err syscall.Errno) syscall.Errno {
	sk.k.reach(fnSkStreamError)
	if err == errEPIPE {
		if e := sk.sockError(); e != 0 {
			return e
		}
	}
	return err
}

// sendPrologue mirrors the checks at the top of tcp_sendmsg_locked():
// sk_stream_wait_connect for states other than ESTABLISHED and
// CLOSE_WAIT, then sk_err and SEND_SHUTDOWN.
func (r *RefTCP) sendPrologue(sk *Sock) syscall.Errno {
	r.k.reach(fnRefTCPSendPrologue)
	if sk.State != TCPEstablished && sk.State != TCPCloseWait {
		// sk_stream_wait_connect.
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

// tailSkb returns the last untransmitted skb if more data may go in it.
func (tp *tcpSock) tailSkb() *SkBuff {
	if n := len(tp.writeQueue); n > 0 {
		skb := tp.writeQueue[n-1]
		if skb.Len < tcpSizeGoal && skb.TCPFlags&tcphdrFIN == 0 {
			return skb
		}
	}
	return nil
}

func (tp *tcpSock) newSkb() *SkBuff {
	skb := &SkBuff{Seq: tp.WriteSeq, EndSeq: tp.WriteSeq}
	tp.writeQueue = append(tp.writeQueue, skb)
	return skb
}

// SendmsgLocked implements TCP (tcp_sendmsg_locked, net/ipv4/tcp.c,
// v6.18): copy into the task's page frag, filling the tail skb up to
// size_goal and MAX_SKB_FRAGS, then push.
func (r *RefTCP) SendmsgLocked(t *Task, sk *Sock, src *srcIter, flags int) (int, syscall.Errno) {
	return r.sendLocked(t, sk, flags, src.left(), func(skb *SkBuff, max int) (int, bool) {
		pf := &t.frag
		r.k.pages.refill(pf)
		if !skb.canAppendFrag(pf.Page, pf.Offset) {
			return 0, false
		}
		n := max
		if room := pf.Size - pf.Offset; room < n {
			n = room
		}
		src.copyToTagged(pf.Page.bytes(pf.Offset, n), pf.Page.tagsAt(pf.Offset, n))
		skb.appendFrag(pf.Page, pf.Offset, n)
		pf.Offset += n
		return n, true
	})
}

// SendPageLocked implements TCP (tcp_sendmsg_locked with
// MSG_SPLICE_PAGES: skb_splice_from_iter takes page references).
func (r *RefTCP) SendPageLocked(t *Task, sk *Sock, p *Page, off, n int, flags int) (int, syscall.Errno) {
	done := 0
	return r.sendLocked(t, sk, flags, n, func(skb *SkBuff, max int) (int, bool) {
		if !skb.canAppendFrag(p, off+done) {
			return 0, false
		}
		skb.appendFrag(p, off+done, max)
		done += max
		return max, true
	})
}

// sendLocked is the loop of tcp_sendmsg_locked with fill as the copy step.
func (r *RefTCP) sendLocked(t *Task, sk *Sock, flags, size int, fill func(skb *SkBuff, max int) (int, bool)) (int, syscall.Errno) {
	tp := tcpSk(sk)
	to := maxTimeout
	if flags&msgDontwait != 0 {
		to = 0
	}
	copied := 0
	var err syscall.Errno
	if err = r.sendPrologue(sk); err != 0 {
		goto doError
	}
	for copied < size {
		if !r.StreamMemoryFree(sk) {
			r.xmitPending(tp)
			if err = r.k.skStreamWaitMemoryLocked(t, sk, &to); err != 0 {
				goto doError
			}
			continue
		}
		skb := tp.tailSkb()
		if skb == nil {
			// A full skb goes out at once (tcp_push_one).
			if n := len(tp.writeQueue); n > 0 && tp.writeQueue[n-1].Len >= tcpSizeGoal {
				r.xmitPending(tp)
			}
			skb = tp.newSkb()
		}
		max := size - copied
		if room := tcpSizeGoal - skb.Len; room < max {
			max = room
		}
		n, ok := fill(skb, max)
		if !ok {
			tp.newSkb()
			continue
		}
		skb.EndSeq += uint32(n)
		tp.WriteSeq += uint32(n)
		copied += n
	}
	r.tcpPush(tp, flags)
	return copied, errOK
doError:
	if copied > 0 {
		r.tcpPush(tp, flags)
		return copied, errOK
	}
	return 0, skStreamError(sk, err)
}

// Recvmsg implements TCP (tcp_recvmsg → tcp_recvmsg_locked, v6.18).
func (r *RefTCP) Recvmsg(t *Task, sk *Sock, dst *iovIter, flags int) (int, syscall.Errno) {
	sk.lockSock(t)
	n, err := r.k.tcpRecvmsgLocked(r, t, sk, dst, flags)
	sk.releaseSock()
	return n, err
}

// ReadSock implements TCP (tcp_read_sock, v6.18).
func (r *RefTCP) ReadSock(sk *Sock, cursor *uint32, desc *ReadDesc, actor func(desc *ReadDesc, skb *SkBuff, off, n int) int) int {
	return r.k.tcpReadSock(r, sk, cursor, desc, actor)
}

// ReadSkb implements TCP (tcp_read_skb, v6.18).
func (r *RefTCP) ReadSkb(sk *Sock, actor func(sk *Sock, skb *SkBuff) int) int {
	return r.k.tcpReadSkb(sk, actor)
}

// copiedSeqPtr implements rcvTransport.
func (r *RefTCP) copiedSeqPtr(sk *Sock) *uint32 { return &tcpSk(sk).CopiedSeq }

// Shutdown implements TCP (tcp_shutdown): send a FIN for SEND_SHUTDOWN in
// the states that allow it.
func (r *RefTCP) Shutdown(t *Task, sk *Sock, how int) {
	if how&sendShutdown == 0 {
		return
	}
	switch sk.State {
	case TCPEstablished, TCPSynSent, TCPSynRecv, TCPCloseWait:
		if r.closeState(sk) {
			r.sendFin(tcpSk(sk))
		}
	}
}

// closeState mirrors tcp_close_state(): the state after a close, and
// whether a FIN must be sent.
func (r *RefTCP) closeState(sk *Sock) bool {
	r.k.reach(fnRefTCPCloseState)
	old := sk.State
	fin := tcpCloseState(sk)
	if sk.State == TCPClose && old != TCPClose {
		tcpSk(sk).unhashed = true
	}
	return fin
}

// sendFin mirrors tcp_send_fin(): the FIN rides on the last untransmitted
// skb, or goes alone.
func (r *RefTCP) sendFin(tp *tcpSock) {
	r.k.reach(fnRefTCPSendFin)
	tp.finQueued = true
	if n := len(tp.writeQueue); n > 0 {
		tail := tp.writeQueue[n-1]
		tail.TCPFlags |= tcphdrFIN
		tail.EndSeq++
	} else {
		tp.writeQueue = append(tp.writeQueue, &SkBuff{Seq: tp.WriteSeq, EndSeq: tp.WriteSeq + 1, TCPFlags: tcphdrFIN})
	}
	tp.WriteSeq++
	r.xmitPending(tp)
}

// Second bug zoo: the mutations of this file (mutation.go).
var (
	mutCloseUnreadOffByOne = registerMutation("close-unread-off-by-one",
		"__tcp_close tests data_was_unread > 1 for > 0: a close with one unread byte sends a FIN, not a RST")
	mutPollShutdownNoIn = registerMutation("poll-shutdown-no-in",
		"tcp_poll reports EPOLLRDHUP without EPOLLIN for RCV_SHUTDOWN: a poller never sees the EOF as readable")
)

// Close implements TCP (tcp_close → __tcp_close, v6.18).
func (r *RefTCP) Close(t *Task, sk *Sock) {
	tp := tcpSk(sk)
	sk.lockSock(t)
	sk.SkShutdown = shutdownMask
	dataWasUnread := r.k.purgeReceiveQueue(sk)
	state := sk.State
	if sk.State != TCPClose {
		switch {
		case dataWasUnread > 1 || dataWasUnread == 1 && !r.k.mutated(mutCloseUnreadOffByOne):
			sk.State = TCPClose
			tp.unhashed = true
			r.sendReset(tp)
			r.writeQueuePurge(tp)
		case sk.SockLinger && sk.Lingertime == 0:
			r.disconnect(tp)
		default:
			if r.closeState(sk) {
				r.sendFin(tp)
			}
		}
	}
	// adjudge_to_death: orphan the socket.
	sk.SockDead = true
	sk.releaseSock()
	if state != TCPClose && sk.State == TCPClose {
		r.destroy(tp)
		return
	}
	if sk.State == TCPFinWait2 {
		r.timeWait(tp, TCPFinWait2)
		return
	}
	if sk.State == TCPClose {
		r.destroy(tp)
	}
}

// disconnect mirrors tcp_disconnect() as SO_LINGER{1,0} close uses it.
func (r *RefTCP) disconnect(tp *tcpSock) {
	r.k.reach(fnRefTCPDisconnect)
	sk := tp.sk
	old := sk.State
	sk.State = TCPClose
	tp.unhashed = true
	switch old {
	case TCPEstablished, TCPCloseWait, TCPFinWait1, TCPFinWait2, TCPSynRecv:
		r.sendReset(tp)
		sk.SkErr = errECONNRESET
	case TCPClosing, TCPLastAck:
		if tp.SndNxt != tp.WriteSeq {
			r.sendReset(tp)
			sk.SkErr = errECONNRESET
		}
	}
	for skb := sk.SkReceiveQueue.dequeue(); skb != nil; skb = sk.SkReceiveQueue.dequeue() {
		r.k.freeSkb(skb)
	}
	tp.CopiedSeq = tp.RcvNxt
	r.writeQueuePurge(tp)
	sk.SkShutdown = 0
	sk.SockDone = false
}

// tcpIoctl mirrors tcp_ioctl() for SIOCINQ.
func (k *kernel) tcpIoctl(t *Task, sk *Sock, cmd int) (int, syscall.Errno) {
	k.reach(fnTcpIoctl)
	if cmd != siocinq {
		return 0, errENOPROTOOPT
	}
	if sk.State == TCPListen {
		return 0, errEINVAL
	}
	return k.tcp.Inq(sk), errOK
}

// tcpPoll mirrors tcp_poll() (net/ipv4/tcp.c, v6.18).
func (k *kernel) tcpPoll(sk *Sock) uint32 {
	k.reach(fnTcpPoll)
	var mask uint32
	state := sk.State
	shutdown := sk.SkShutdown
	if shutdown == shutdownMask || state == TCPClose {
		mask |= pollHUP
	}
	if shutdown&rcvShutdown != 0 {
		if k.mutated(mutPollShutdownNoIn) {
			mask |= pollRDHUP
		} else {
			mask |= pollIN | pollRDHUP
		}
	}
	if state != TCPSynSent && state != TCPSynRecv {
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
	if sk.SkErr != 0 {
		mask |= pollERR
	}
	return mask
}

// tcpStreamIsReadable mirrors tcp_stream_is_readable().
func (k *kernel) tcpStreamIsReadable(sk *Sock, target int) bool {
	k.reach(fnTcpStreamIsReadable)
	if k.tcp.EpollinReady(sk, target) {
		return true
	}
	return sk.SkProt.SockIsReadable != nil && sk.SkProt.SockIsReadable(sk)
}

// tcpProt returns the base TCP proto (tcp_prot).
func (k *kernel) tcpProt() *Proto {
	return &Proto{
		Name: "tcp",
		Recvmsg: func(t *Task, sk *Sock, dst *iovIter, flags int) (int, syscall.Errno) {
			return k.tcp.Recvmsg(t, sk, dst, flags)
		},
		Sendmsg: func(t *Task, sk *Sock, src *srcIter, flags int) (int, syscall.Errno) {
			sk.lockSock(t)
			n, err := k.tcp.SendmsgLocked(t, sk, src, flags)
			sk.releaseSock()
			return n, err
		},
		Ioctl:      k.tcpIoctl,
		Close:      func(t *Task, sk *Sock) { k.tcp.Close(t, sk) },
		SpliceRead: k.tcpSpliceRead,
	}
}
