package linux

import "syscall"

// The reference TCP's receive path: segment arrival (tcp_v4_rcv and the
// state machine), the receive window and ACK policy, receive memory, and
// the reads the socket layer makes of the receive queue.

// rcv mirrors tcp_v4_rcv() → tcp_v4_do_rcv() (net/ipv4/tcp_ipv4.c, v6.18)
// → tcp_rcv_state_process() / tcp_rcv_established() (net/ipv4/tcp_input.c,
// v6.18), in softirq context. A segment for a socket that is unhashed
// draws a RST (tcp_v4_send_reset), unless it is one.
func (r *refTCP) rcv(tp *tcpSock, seg segment) {
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
		r.addBacklog(tp, seg)
		return
	}
	r.rcvStateProcess(tp, seg) // tcp_v4_do_rcv
}

// addBacklog mirrors tcp_add_backlog() (net/ipv4/tcp_ipv4.c, v6.18): the
// owner processes the segment at release_sock; a pure ACK that follows
// one still on the backlog with the same sequence number and options
// (timestamps of the same op) is merged into it, its ACK and window
// taken when not older.
func (r *refTCP) addBacklog(tp *tcpSock, seg segment) {
	r.k.reach(fnRefTCPAddBacklog)
	sk := tp.sk
	pure := seg.skb == nil && seg.dupLen == 0 && !seg.rst
	if last := tp.backlogTail; pure && last != nil && sk.backlogAppends == tp.backlogTailMark &&
		last.seq == seg.seq && last.tsval == seg.tsval && last.tsecr == seg.tsecr {
		if int32(seg.ack-last.ack) >= 0 {
			last.ack, last.win, last.wl = seg.ack, seg.win, seg.wl
		}
		return
	}
	s := &seg
	sk.Backlog = append(sk.Backlog, func() {
		if tp.backlogTail == s {
			tp.backlogTail = nil
		}
		r.rcvStateProcess(tp, *s)
	})
	sk.backlogAppends++
	tp.backlogTail = nil
	if pure {
		tp.backlogTail, tp.backlogTailMark = s, sk.backlogAppends
	}
}

// rcvTimewait mirrors tcp_timewait_state_process()
// (net/ipv4/tcp_minisocks.c, v6.18).
func (r *refTCP) rcvTimewait(tp *tcpSock, seg segment) {
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
	if tp.twSubstate == tcpFinWait2 {
		if seg.skb.Len == 0 && seg.fin && seg.skb.EndSeq == tp.RcvNxt+1 {
			tp.twSubstate = tcpTimeWait
			tp.RcvNxt = seg.skb.EndSeq
			r.twAck(tp)
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
	r.twAck(tp)
}

// twAck is the ACK of a timewait socket (tcp_timewait_state_process →
// tcp_v4_timewait_ack): the window it had when it became one.
func (r *refTCP) twAck(tp *tcpSock) {
	r.xmit(tp, segment{seq: tp.SndNxt, ack: tp.RcvNxt, win: tp.rcvWnd >> tp.rcvWscale << tp.rcvWscale, wl: tp.SndNxt})
}

// rcvStateProcess mirrors the parts of tcp_rcv_state_process() and
// tcp_rcv_established() (net/ipv4/tcp_input.c, v6.18) a loopback connection
// exercises: RST, ACK processing with the FIN_WAIT1/CLOSING/LAST_ACK
// transitions, then the segment text (tcp_data_queue) with the FIN, what
// the ACK lets the socket send and the ACK it owes.
func (r *refTCP) rcvStateProcess(tp *tcpSock, seg segment) {
	r.k.reach(fnRefTCPRcvStateProcess)
	sk := tp.sk
	if seg.rst {
		if seg.skb != nil {
			r.k.freeSkb(seg.skb)
		}
		if sk.State == tcpClose {
			return
		}
		r.tcpReset(tp)
		return
	}
	if seg.skb == nil && seg.dupLen == 0 {
		r.tcpAck(tp, seg)
		if !tp.unhashed && !tp.tw {
			r.dataSndCheck(tp)
		}
		return
	}
	// Step 7 of tcp_rcv_state_process: the segment text.
	switch sk.State {
	case tcpCloseWait, tcpClosing, tcpLastAck:
		// Data after the peer's FIN: not queued.
		r.tcpAck(tp, seg)
		if seg.skb != nil {
			r.k.freeSkb(seg.skb)
		}
		return
	case tcpFinWait1, tcpFinWait2:
		if sk.SkShutdown&rcvShutdown != 0 && (seg.skb != nil && seg.skb.Len > 0 || seg.dupLen > 0) {
			// RFC 1122: data after a close or shutdown(RD): reset.
			if seg.skb != nil {
				r.k.freeSkb(seg.skb)
			}
			r.tcpReset(tp)
			r.xmit(tp, segment{rst: true, seq: tp.SndNxt})
			return
		}
	case tcpEstablished:
	default:
		if seg.skb != nil {
			r.k.freeSkb(seg.skb)
		}
		return
	}
	r.rcvEstablished(tp, seg)
}

// DataReady implements TCP: it mirrors tcp_data_ready()
// (net/ipv4/tcp_input.c, v6.18), which calls sk_data_ready when there
// is data to read or a FIN.
func (r *refTCP) DataReady(sk *sock) {
	r.k.reach(fnRefTCPDataReady)
	if r.EpollinReady(sk, sk.SkRcvlowat) || sk.SockDone {
		sk.SkDataReady(sk)
	}
}

// tcpFin mirrors tcp_fin() (net/ipv4/tcp_input.c, v6.18): an ACK is due
// (delayed: a socket that got the FIN in ESTABLISHED enters ping-pong mode,
// without quick ACKs); in FIN_WAIT1 and FIN_WAIT2 it goes at once.
func (r *refTCP) tcpFin(tp *tcpSock) {
	r.k.reach(fnRefTCPTcpFin)
	sk := tp.sk
	tp.ackPending |= icskAckSched
	sk.SkShutdown |= rcvShutdown
	sk.SockDone = true
	switch sk.State {
	case tcpSynRecv, tcpEstablished:
		sk.State = tcpCloseWait
		tp.pingpong = true
	case tcpCloseWait, tcpClosing, tcpLastAck:
	case tcpFinWait1:
		// A simultaneous close: ACK the FIN, CLOSING.
		r.sendAck(tp)
		sk.State = tcpClosing
	case tcpFinWait2:
		r.sendAck(tp)
		r.timeWait(tp, tcpTimeWait)
	}
	if !sk.SockDead {
		sk.SkStateChange(sk)
	}
}

// EatSkb implements TCP: it mirrors the copied_seq part of tcp_eat_skb()
// (net/ipv4/tcp_bpf.c, v6.18; since 6.4), then the window update of
// __tcp_cleanup_rbuf.
func (r *refTCP) EatSkb(sk *sock, skb *skBuff) {
	r.k.reach(fnRefTCPEatSkb)
	if skb == nil || skb.Len == 0 || skb.BpfStrparser {
		return
	}
	tp := tcpSk(sk)
	tp.CopiedSeq += uint32(skb.Len)
	r.RcvSpaceAdjust(sk)
	r.CleanupRbuf(sk, skb.Len)
}

// CleanupRbuf implements TCP (__tcp_cleanup_rbuf, cleanupRbuf).
func (r *refTCP) CleanupRbuf(sk *sock, copied int) {
	tp := tcpSk(sk)
	if tp.unhashed || tp.tw || tp.peer == nil {
		return
	}
	r.cleanupRbuf(tp, copied)
}

// Recvmsg implements TCP (tcp_recvmsg → tcp_recvmsg_locked, v6.18).
func (r *refTCP) Recvmsg(t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno) {
	sk.lockSock(t)
	n, err := r.k.tcpRecvmsgLocked(r, t, sk, dst, flags)
	sk.releaseSock()
	return n, err
}

// ReadSock implements TCP (tcp_read_sock, v6.18).
func (r *refTCP) ReadSock(sk *sock, cursor *uint32, desc *readDesc, actor func(desc *readDesc, skb *skBuff, off, n int) int) int {
	return r.k.tcpReadSock(r, sk, cursor, desc, actor)
}

// ReadSkb implements TCP (tcp_read_skb, v6.18).
func (r *refTCP) ReadSkb(sk *sock, actor func(sk *sock, skb *skBuff) int) int {
	return r.k.tcpReadSkb(sk, actor)
}

// copiedSeqPtr implements rcvTransport.
func (r *refTCP) copiedSeqPtr(sk *sock) *uint32 { return &tcpSk(sk).CopiedSeq }

// selectWindow mirrors tcp_select_window() (net/ipv4/tcp_output.c,
// v6.18): the window to advertise now, never left of the edge already
// offered (the window is not shrunk: sysctl_tcp_shrink_window is 0), and
// zero after a segment was dropped for lack of memory. It returns the
// window in bytes, as the peer reads it (the header's field scaled back).
func (r *refTCP) selectWindow(tp *tcpSock) int {
	r.k.reach(fnRefTCPSelectWindow)
	if tp.ackPending&icskAckNomem != 0 && r.conf().NomemZeroWindow {
		tp.predWnd = -1
		tp.rcvWnd = 0
		tp.rcvWup = tp.RcvNxt
		return 0
	}
	cur := tp.receiveWindow()
	nw := r.selectWindowRaw(tp)
	if nw < cur {
		unit := 1 << tp.rcvWscale
		nw = (cur + unit - 1) &^ (unit - 1)
	}
	tp.rcvWnd = nw
	tp.rcvWup = tp.RcvNxt
	nw = min(nw, 65535<<tp.rcvWscale)
	if nw>>tp.rcvWscale == 0 {
		tp.predWnd = -1
	}
	return nw >> tp.rcvWscale << tp.rcvWscale
}

// selectWindowRaw mirrors __tcp_select_window() (net/ipv4/tcp_output.c,
// v6.18): the free space, at most rcv_ssthresh, rounded to the window
// scale; zero when the free space is below half the full space and less
// than an MSS or a sixteenth of it.
func (r *refTCP) selectWindowRaw(tp *tcpSock) int {
	r.k.reach(fnRefTCPSelectWindowRaw)
	mss := tp.rcvMss
	free := r.tcpSpace(tp)
	allowed := r.tcpFullSpace(tp)
	full := min(tp.windowClamp, allowed)
	if mss > full {
		mss = full
		if mss <= 0 {
			return 0
		}
	}
	unit := 1 << tp.rcvWscale
	if free < full>>1 {
		tp.ackQuick = 0
		free = free &^ (unit - 1)
		if free < 0 {
			free = -((-free + unit - 1) &^ (unit - 1))
		}
		if free < allowed>>4 || free < mss {
			return 0
		}
	}
	if free > tp.rcvSsthresh {
		free = tp.rcvSsthresh
	}
	if tp.rcvWscale != 0 {
		return (free + unit - 1) &^ (unit - 1)
	}
	window := tp.rcvWnd
	if window <= free-mss || window > free {
		window = free - free%mss
	} else if mss == full && free > window+full>>1 {
		window = free
	}
	return window
}

// eventAckSent mirrors tcp_event_ack_sent() (net/ipv4/tcp_output.c,
// v6.18): an ACK went out (alone or on data): one quick ACK used, the
// delayed ACK cancelled.
func (r *refTCP) eventAckSent(tp *tcpSock) {
	r.k.reach(fnRefTCPEventAckSent)
	if tp.ackQuick > 0 {
		if tp.ackPending&icskAckSched != 0 {
			tp.ackQuick--
		}
	}
	tp.ackPending = 0
	tp.ackDeferred = false
}

// sendAck mirrors tcp_send_ack() (net/ipv4/tcp_output.c, v6.18): a pure
// ACK at snd_nxt with the window of tcp_select_window.
func (r *refTCP) sendAck(tp *tcpSock) {
	r.k.reach(fnRefTCPSendAck)
	if tp.peer == nil || tp.sk.State == tcpClose {
		return
	}
	seg := segment{seq: tp.SndNxt, ack: tp.RcvNxt, win: r.selectWindow(tp), wl: tp.SndNxt}
	r.eventAckSent(tp)
	r.xmit(tp, seg)
}

// sendDelayedAck mirrors tcp_send_delayed_ack() (net/ipv4/tcp_output.c,
// v6.18): arm the delayed ACK timer (fired at the next op boundary,
// tcpTimers).
func (r *refTCP) sendDelayedAck(tp *tcpSock) {
	r.k.reach(fnRefTCPSendDelayedAck)
	tp.ackPending |= icskAckSched | icskAckTimer
	r.armTimers()
}

// inQuickackMode mirrors tcp_in_quickack_mode() (net/ipv4/tcp_input.c,
// v6.18).
func (tp *tcpSock) inQuickackMode() bool {
	reach(fnTcpSockInQuickackMode)
	return tp.ackQuick > 0 && !tp.pingpong
}

// incrQuickack mirrors tcp_incr_quickack() (net/ipv4/tcp_input.c,
// v6.18): quick ACKs for half the window's worth of segments.
func (r *refTCP) incrQuickack(tp *tcpSock, maxQuickacks int) {
	r.k.reach(fnRefTCPIncrQuickack)
	q := tp.rcvWnd / (2 * tp.rcvMss)
	if q == 0 {
		q = 2
	}
	q = min(q, maxQuickacks)
	if q > tp.ackQuick {
		tp.ackQuick = q
	}
}

// ackSndCheck mirrors tcp_ack_snd_check() and __tcp_ack_snd_check()
// (net/ipv4/tcp_input.c, v6.18): ACK now when more than one full segment
// came since the last ACK and the window would grow, in quick ACK mode,
// or when asked (ICSK_ACK_NOW); else delay it. From the owner's backlog
// (tcp_backlog_ack_defer) the ACK waits for tcp_release_cb.
func (r *refTCP) ackSndCheck(tp *tcpSock) {
	r.k.reach(fnRefTCPAckSndCheck)
	if tp.ackPending&icskAckSched == 0 {
		return
	}
	if int(tp.RcvNxt-tp.rcvWup) > tp.rcvMss &&
		(int(tp.RcvNxt-tp.CopiedSeq) < tp.sk.SkRcvlowat || r.selectWindowRaw(tp) >= tp.rcvWnd) ||
		tp.inQuickackMode() || tp.ackPending&icskAckNow != 0 {
		if tp.sk.Owned && r.conf().NomemZeroWindow {
			tp.ackDeferred = true
			return
		}
		r.sendAck(tp)
		return
	}
	r.sendDelayedAck(tp)
}

// measureRcvMSS mirrors tcp_measure_rcv_mss() (net/ipv4/tcp_input.c,
// v6.18): the peer's MSS as the segments show it (a multi-segment skb by
// its gso_size) and, when it changes, the len/truesize ratio the
// windows are computed with (scaling_ratio, with window_clamp following).
func (r *refTCP) measureRcvMSS(tp *tcpSock, skb *skBuff) {
	r.k.reach(fnRefTCPMeasureRcvMSS)
	lss := tp.lastSegSize
	tp.lastSegSize = 0
	length := skb.Len
	if skb.gsoSize != 0 {
		length = skb.gsoSize
	}
	if length >= tp.rcvMss {
		if r.conf().ScalingRatio && length != tp.rcvMss {
			ratio := (skb.Len << tcpRmemToWinScale) / skb.Truesize
			old := tp.scalingRatio
			tp.scalingRatio = max(ratio, 1)
			if old != tp.scalingRatio {
				tp.windowClamp = r.winFromSpace(tp, tp.sk.SkRcvbuf)
				tp.rcvqSpace = min(tp.rcvqSpace, tp.windowClamp)
			}
		}
		tp.rcvMss = min(length, tp.advmss)
		if skb.tcpPSH {
			tp.ackPending |= icskAckPushed
		}
		return
	}
	length += tcpHeaderLen
	if length >= tcpMSSDefault+20 || length >= tcpMinMSS+20 && !skb.tcpPSH && skb.TCPFlags&tcphdrFIN == 0 {
		length -= tcpHeaderLen
		tp.lastSegSize = length
		if length == lss {
			tp.rcvMss = length
			return
		}
	}
	if tp.ackPending&icskAckPushed != 0 {
		tp.ackPending |= icskAckPushed2
	}
	tp.ackPending |= icskAckPushed
}

// growWindow mirrors tcp_grow_window() with truesize_adjust()
// (net/ipv4/tcp_input.c, v6.18): raise rcv_ssthresh, within the window
// clamp and the free space, by twice the segment (or the MSS) when its
// payload fills its truesize well enough (its page fragments: the head is
// not counted), and ask for a quick ACK.
func (r *refTCP) growWindow(tp *tcpSock, skb *skBuff) {
	r.k.reach(fnRefTCPGrowWindow)
	room := min(tp.windowClamp, r.tcpSpace(tp)) - tp.rcvSsthresh
	if room <= 0 {
		return
	}
	truesize := skb.Truesize
	if !skb.hasLinear() && skb.Truesize-r.conf().SkbHeadTruesize >= skb.Len {
		truesize -= r.conf().SkbHeadTruesize
	}
	incr := 0
	if r.winFromSpace(tp, truesize) <= skb.Len {
		incr = 2 * tp.advmss
	} else {
		ts := r.winFromSpace(tp, truesize) >> 1
		window := r.winFromSpace(tp, r.conf().Rmem[2]) >> 1
		for tp.rcvSsthresh <= window {
			if ts <= skb.Len {
				incr = 2 * tp.rcvMss
				break
			}
			ts >>= 1
			window >>= 1
		}
	}
	if incr > 0 {
		incr = max(incr, 2*skb.Len)
		tp.rcvSsthresh += min(room, incr)
		tp.ackQuick |= 1
	}
}

// eventDataRecv mirrors tcp_event_data_recv() (net/ipv4/tcp_input.c,
// v6.18): an ACK is due; the first data starts the quick ACKs; the
// window may grow.
//
// Unlike Linux, the delayed-ACK timeout (ato) is not tracked (the model
// fires a delayed ACK at the next op boundary whatever its timeout), nor
// are the receiver's RTT samples.
func (r *refTCP) eventDataRecv(tp *tcpSock, skb *skBuff) {
	r.k.reach(fnRefTCPEventDataRecv)
	tp.ackPending |= icskAckSched
	r.measureRcvMSS(tp, skb)
	r.rcvRttMeasure(tp)
	if !tp.atoInit {
		tp.atoInit = true
		r.incrQuickack(tp, tcpMaxQuickacks)
	}
	if skb.Len >= 128 {
		r.growWindow(tp, skb)
	}
}

// clampWindow mirrors tcp_clamp_window() (net/ipv4/tcp_input.c, v6.18):
// receive memory hit its bound; an unlocked buffer grows to what is
// used, else rcv_ssthresh drops to two MSS.
func (r *refTCP) clampWindow(tp *tcpSock) {
	r.k.reach(fnRefTCPClampWindow)
	sk := tp.sk
	tp.ackQuick = 0
	if sk.SkRcvbuf < r.conf().Rmem[2] && sk.userlocks&sockRcvbufLock == 0 {
		sk.SkRcvbuf = min(sk.SkRmemAlloc, r.conf().Rmem[2])
	}
	if sk.SkRmemAlloc > sk.SkRcvbuf {
		tp.rcvSsthresh = min(tp.windowClamp, 2*tp.advmss)
	}
}

// pruneQueue mirrors tcp_prune_queue() (net/ipv4/tcp_input.c, v6.18,
// with "tcp: give up on stronger sk_rcvbuf checks (for now)", which
// 6.18.y has): over sk_rcvbuf, clamp the window and collapse the receive
// queue; -1 when that did not bring the memory under sk_rcvbuf. (The
// out-of-order queue is always empty in the model.)
func (r *refTCP) pruneQueue(tp *tcpSock) int {
	r.k.reach(fnRefTCPPruneQueue)
	sk := tp.sk
	if sk.SkRmemAlloc >= sk.SkRcvbuf {
		r.clampWindow(tp)
	}
	if sk.SkRmemAlloc <= sk.SkRcvbuf {
		return 0
	}
	if !sk.SkReceiveQueue.empty() {
		r.collapse(tp, tp.CopiedSeq, tp.RcvNxt)
	}
	if sk.SkRmemAlloc <= sk.SkRcvbuf {
		return 0
	}
	tp.predWnd = -1
	return -1
}

// tryRmemSchedule mirrors tcp_try_rmem_schedule() (net/ipv4/tcp_input.c,
// v6.18): receive memory over sk_rcvbuf must be pruned first.
//
// Unlike Linux, global TCP memory (sk_rmem_schedule against tcp_mem)
// never runs short.
func (r *refTCP) tryRmemSchedule(tp *tcpSock, size int) int {
	r.k.reach(fnRefTCPTryRmemSchedule)
	if tp.sk.SkRmemAlloc > tp.sk.SkRcvbuf {
		if r.pruneQueue(tp) < 0 {
			return -1
		}
	}
	tp.sk.memSchedule(size) // sk_rmem_schedule
	return 0
}

// collapse mirrors tcp_collapse() (net/ipv4/tcp_input.c, v6.18) on the
// receive queue: from the first skb that is bloated (its truesize
// scaled to a window exceeds its payload) or holds bytes already read,
// copy the payload into new page-sized linear skbs and free the old ones,
// stopping at a FIN.
func (r *refTCP) collapse(tp *tcpSock, start, end uint32) {
	r.k.reach(fnRefTCPCollapse)
	sk := tp.sk
	q := &sk.SkReceiveQueue
	i := 0
	for i < q.len() {
		skb := q.at(i)
		if int32(start-skb.EndSeq) >= 0 {
			q.unlink(skb)
			r.k.freeSkb(skb)
			continue
		}
		if skb.TCPFlags&tcphdrFIN == 0 && (r.winFromSpace(tp, skb.Truesize) > skb.Len || int32(skb.Seq-start) < 0) {
			break
		}
		start = skb.EndSeq
		i++
	}
	if i >= q.len() || q.at(i).TCPFlags&tcphdrFIN != 0 {
		return
	}
	var out []*skBuff
	for int32(start-end) < 0 && i < q.len() {
		skb := q.at(i)
		if skb.TCPFlags&tcphdrFIN != 0 {
			break
		}
		n := min(skbMaxOrder0, int(end-start))
		head := r.k.pages.kmalloc(n)
		nskb := &skBuff{Seq: start, EndSeq: start, Truesize: skbAllocTruesize(n)}
		fill := 0
		for fill < n && i < q.len() {
			skb = q.at(i)
			if skb.TCPFlags&tcphdrFIN != 0 && skb.Len == int(skb.EndSeq-skb.Seq)-1 && int(start-skb.Seq) >= skb.Len {
				break
			}
			off := int(start - skb.Seq)
			size := min(n-fill, skb.Len-off)
			if size > 0 {
				var tags []Tag
				if head.Tags != nil {
					tags = head.Tags[fill : fill+size]
				}
				skb.copyBitsInto(off, head.Data[fill:fill+size], tags)
				r.k.stats.Kernel.Copied += int64(size)
				fill += size
				start += uint32(size)
			}
			if int(start-skb.Seq) >= skb.Len {
				if skb.TCPFlags&tcphdrFIN != 0 {
					break
				}
				q.unlink(skb)
				r.k.freeSkb(skb)
			}
		}
		nskb.addFrag(skbFrag{Page: head, Off: 0, Size: fill})
		nskb.Len = fill
		nskb.EndSeq = nskb.Seq + uint32(fill)
		out = append(out, nskb)
		if fill < n {
			break
		}
	}
	// The new skbs go where the collapsed ones were, in order.
	rest := append([]*skBuff(nil), q.skbs[i:]...)
	q.skbs = append(q.skbs[:i], out...)
	q.skbs = append(q.skbs, rest...)
	for _, nskb := range out {
		skSetOwnerR(nskb, sk)
	}
}

// tryCoalesce mirrors tcp_try_coalesce() (net/ipv4/tcp_input.c, v6.18) and
// skb_try_coalesce() (net/core/skbuff.c, v6.18) for the receive queue:
// append from's page fragments to the tail skb, unless the tail's head is
// still shared with its sender (skb_cloned: the sender has not freed its
// original on an ACK) or MAX_SKB_FRAGS would be passed; from's truesize
// less its head is charged.
//
// Unlike Linux, an skb with a slab head (rx copybreak, tcp_collapse) is
// never coalesced and nothing is coalesced into one: skb_try_coalesce
// would copy a small segment into the tail's linear tailroom, or steal
// a page-backed head, neither of which the model has.
func (r *refTCP) tryCoalesce(sk *sock, to, from *skBuff) bool {
	r.k.reach(fnRefTCPTryCoalesce)
	if to.EndSeq != from.Seq || to.TCPFlags&tcphdrFIN != 0 || to.BpfStrparser ||
		to.hasLinear() || from.hasLinear() || skbCloned(to) ||
		len(to.Frags)+len(from.Frags) > maxSkbFrags {
		return false
	}
	delta := from.Truesize - r.conf().SkbHeadTruesize
	to.Frags = append(to.Frags, from.Frags...)
	to.Len += from.Len
	to.Truesize += delta
	sk.SkRmemAlloc += delta
	sk.memCharge(delta)
	to.EndSeq = from.EndSeq
	to.TCPFlags |= from.TCPFlags
	to.tcpPSH = to.tcpPSH || from.tcpPSH
	from.Frags = nil // the page references moved to the tail
	skbHeadRelease(from)
	from.freed = true
	return true
}

// tcpAck mirrors the parts of tcp_ack() (net/ipv4/tcp_input.c, v6.18) a
// loopback connection exercises: newly acknowledged skbs leave the
// retransmission queue (tcp_clean_rtx_queue: their truesize off
// sk_wmem_queued, their heads unshared), the congestion window grows,
// the peer's window is taken (tcp_ack_update_window, with max_window
// and the MSS that follows it), a tail loss probe is answered; then the
// state transitions of tcp_rcv_state_process's step 5.
func (r *refTCP) tcpAck(tp *tcpSock, seg segment) {
	r.k.reach(fnRefTCPTcpAck)
	sk := tp.sk
	ack := seg.ack
	if int32(ack-tp.SndNxt) > 0 {
		return
	}
	priorUna := tp.SndUna
	acked := 0
	if int32(ack-tp.SndUna) > 0 {
		tp.SndUna = ack
		for len(tp.rtxQueue) > 0 && int32(tp.rtxQueue[0].EndSeq-ack) <= 0 {
			var skb *skBuff
			skb, tp.rtxQueue = popFront(tp.rtxQueue)
			acked += skb.pcount
			tp.packetsOut -= skb.pcount
			tp.wmemQueued -= skb.Truesize
			tp.sk.memUncharge(skb.Truesize)
			skbHeadRelease(skb)
			r.k.pages.kfreeSkb(skb)
		}
	}
	// tcp_ack_update_window.
	if r.tcpMayUpdateWindow(tp, ack, priorUna, seg.wl, seg.win) {
		tp.sndWl1 = seg.wl
		if tp.sndWnd != seg.win {
			tp.sndWnd = seg.win
			tp.predWnd = -1
			r.fastPathCheck(tp)
			if seg.win > tp.maxWindow {
				tp.maxWindow = seg.win
				r.syncMSS(tp)
			}
		}
	}
	if tp.tlpHighSeq != 0 && int32(ack-tp.tlpHighSeq) >= 0 {
		tp.tlpHighSeq = 0
	}
	if acked > 0 {
		r.congControl(tp, acked)
		// tcp_set_xmit_timer: the probe is armed again for what is
		// still out, or the timers cleared.
		if tp.packetsOut > 0 {
			r.scheduleLossProbe(tp)
		} else {
			tp.tlpArmed = false
		}
	}
	switch sk.State {
	case tcpFinWait1:
		if tp.finQueued && tp.SndUna == tp.WriteSeq {
			sk.State = tcpFinWait2
			sk.SkShutdown |= sendShutdown
			if !sk.SockDead {
				sk.SkStateChange(sk)
			} else {
				// An orphan: tcp_time_wait(sk, TCP_FIN_WAIT2, tmo).
				r.timeWait(tp, tcpFinWait2)
				return
			}
		}
	case tcpClosing:
		if tp.finQueued && tp.SndUna == tp.WriteSeq {
			r.timeWait(tp, tcpTimeWait)
			return
		}
	case tcpLastAck:
		if tp.finQueued && tp.SndUna == tp.WriteSeq {
			r.tcpDone(tp)
			return
		}
	}
}

// tcpMayUpdateWindow mirrors tcp_may_update_window()
// (net/ipv4/tcp_input.c, v6.18): the ACK is new, or its segment is, or it
// widens the window or (since v6.5, tcpConf.ZeroWindowUpdate) closes it.
func (r *refTCP) tcpMayUpdateWindow(tp *tcpSock, ack, priorUna, wl uint32, win int) bool {
	r.k.reach(fnRefTCPTcpMayUpdateWindow)
	return int32(ack-priorUna) > 0 || int32(wl-tp.sndWl1) > 0 ||
		wl == tp.sndWl1 && (win > tp.sndWnd || win == 0 && r.conf().ZeroWindowUpdate)
}

// congControl mirrors the congestion window growth of tcp_cong_control()
// (net/ipv4/tcp_input.c, v6.18): BBR's startup grows it by every packet
// acknowledged (bbr_set_cwnd), cubic's slow start only when the window
// limited the sender (tcp_is_cwnd_limited).
//
// Unlike Linux, BBR's target window (its bandwidth and RTT estimates) is
// not modelled: the window keeps growing.
func (r *refTCP) congControl(tp *tcpSock, acked int) {
	r.k.reach(fnRefTCPCongControl)
	if r.conf().CwndEveryAck || tp.cwndLimited {
		tp.sndCwnd += acked
	}
}

// dataSndCheck mirrors tcp_data_snd_check() (net/ipv4/tcp_input.c,
// v6.18): after an ACK, send what the window now allows and give
// writers the space freed.
func (r *refTCP) dataSndCheck(tp *tcpSock) {
	r.k.reach(fnRefTCPDataSndCheck)
	r.pushPendingFrames(tp, tp.mssCache, tp.nonagle)
	r.checkSpace(tp)
}

// tcpDataQueue mirrors tcp_data_queue() (net/ipv4/tcp_input.c, v6.18)
// for the segments a loopback connection sees: an in-order one is taken
// if the window is open and the receive memory allows (an empty queue
// always takes it), coalesced with the tail or queued; old data (a loss
// probe's retransmission) and data past the window are dropped with a
// quick ACK; a segment past a hole is dropped.
//
// Unlike Linux, there is no out-of-order queue: a segment that leaves a
// hole (the one before it was dropped for memory) is dropped too, after
// the memory check Linux would make (tcp_data_queue_ofo); Linux would
// keep it if that check passed. No retransmission fills the hole in the
// model anyway.
func (r *refTCP) tcpDataQueue(tp *tcpSock, skb *skBuff) {
	r.k.reach(fnRefTCPTcpDataQueue)
	sk := tp.sk
	if skb.Seq == skb.EndSeq {
		r.k.freeSkb(skb)
		return
	}
	if skb.Seq == tp.RcvNxt {
		if tp.receiveWindow() == 0 && !(skb.Len == 0 && skb.TCPFlags&tcphdrFIN != 0) {
			r.k.freeSkb(skb)
			r.outOfWindow(tp)
			return
		}
		c := r.conf()
		switch {
		case !c.NomemZeroWindow && sk.SkReceiveQueue.empty():
			sk.memSchedule(skb.Truesize) // sk_forced_mem_schedule
		case !c.NomemZeroWindow:
			if r.tryRmemSchedule(tp, skb.Truesize) < 0 {
				sk.SkDataReady(sk)
				r.k.freeSkb(skb)
				sk.drops++
				return
			}
		case r.tryRmemSchedule(tp, skb.Truesize) < 0:
			tp.ackPending |= icskAckNomem | icskAckNow | icskAckSched
			sk.SkDataReady(sk)
			if sk.SkReceiveQueue.len() > 0 && skb.Len > 0 {
				r.k.freeSkb(skb)
				sk.drops++
				return
			}
			sk.memSchedule(skb.Truesize) // sk_forced_mem_schedule
		}
		fin := skb.TCPFlags&tcphdrFIN != 0
		r.tcpQueueRcv(tp, skb)
		if skb.Len > 0 {
			r.eventDataRecv(tp, skb)
		}
		if fin {
			r.tcpFin(tp)
		}
		r.fastPathCheck(tp)
		r.dataReady(tp)
		return
	}
	if int32(skb.EndSeq-tp.RcvNxt) <= 0 {
		// A retransmission of bytes already here.
		r.k.freeSkb(skb)
		sk.drops++
		r.outOfWindow(tp)
		return
	}
	if int32(skb.Seq-(tp.RcvNxt+uint32(tp.receiveWindow()))) >= 0 {
		r.k.freeSkb(skb)
		r.outOfWindow(tp)
		return
	}
	r.tryRmemSchedule(tp, skb.Truesize)
	r.k.freeSkb(skb)
	sk.drops++
}

// fastPathCheck mirrors tcp_fast_path_check() (include/net/tcp.h,
// v6.18): header prediction comes back on (pred_flags, predicting the
// peer's window field as snd_wnd scaled) with the window open and the
// receive memory under sk_rcvbuf.
func (r *refTCP) fastPathCheck(tp *tcpSock) {
	r.k.reach(fnRefTCPFastPathCheck)
	if tp.rcvWnd != 0 && tp.sk.SkRmemAlloc < tp.sk.SkRcvbuf {
		tp.predWnd = tp.sndWnd >> tp.sndWscale
	}
}

// fastPath mirrors the receiver's side of tcp_rcv_established()'s header
// prediction (net/ipv4/tcp_input.c, v6.18): an in-order data segment
// with no flag beyond ACK and PSH and the predicted window whose
// truesize the socket's forward-allocated memory covers is queued at
// once, without tcp_data_queue's memory checks. It reports whether it
// took the segment.
func (r *refTCP) fastPath(tp *tcpSock, seg segment) bool {
	r.k.reach(fnRefTCPFastPath)
	skb := seg.skb
	if tp.predWnd < 0 || skb == nil || seg.dupLen > 0 || seg.fin || skb.TCPFlags&tcphdrFIN != 0 ||
		skb.Len == 0 || seg.seq != tp.RcvNxt || seg.win>>tp.sndWscale != tp.predWnd ||
		int32(seg.ack-tp.SndUna) < 0 || int32(seg.ack-tp.SndNxt) > 0 || skb.Truesize > tp.sk.fwdAlloc {
		return false
	}
	r.rcvRttMeasureTS(tp, seg)
	tp.tsRecent = seg.tsval
	r.tcpQueueRcv(tp, skb)
	r.eventDataRecv(tp, skb)
	if seg.ack != tp.SndUna {
		r.tcpAck(tp, seg)
		r.dataSndCheck(tp)
		if tp.ackPending&icskAckSched == 0 {
			r.dataReady(tp)
			return true
		}
	}
	r.ackSndCheck(tp)
	r.dataReady(tp)
	return true
}

// dataReady calls tcp_data_ready unless the socket is orphaned (as
// its own context with splitDataReady).
func (r *refTCP) dataReady(tp *tcpSock) {
	sk := tp.sk
	if sk.SockDead {
		return
	}
	if r.splitDataReady {
		r.k.s.queueWork("tcp_data_ready", func() { sk.bhRun(func() { r.DataReady(sk) }) })
	} else {
		r.DataReady(sk)
	}
}

// outOfWindow is tcp_data_queue's out_of_window: quick ACKs again
// (tcp_enter_quickack_mode) and an ACK due.
func (r *refTCP) outOfWindow(tp *tcpSock) {
	r.incrQuickack(tp, tcpMaxQuickacks)
	tp.pingpong = false
	tp.ackPending |= icskAckSched
}

// tcpQueueRcv mirrors tcp_queue_rcv() (net/ipv4/tcp_input.c, v6.18):
// coalesce into the tail skb when tcp_try_coalesce allows, else queue
// the skb and charge its truesize; rcv_nxt advances either way.
func (r *refTCP) tcpQueueRcv(tp *tcpSock, skb *skBuff) {
	r.k.reach(fnRefTCPTcpQueueRcv)
	sk := tp.sk
	tp.RcvNxt = skb.EndSeq
	if skb.Len > 0 && skb.Len <= sk.rxCopybreak {
		skbHeadRelease(skb)
		r.k.rxCopybreak(skb)
	}
	if tail := sk.SkReceiveQueue.peekTail(); tail != nil && r.tryCoalesce(sk, tail, skb) {
		return
	}
	skSetOwnerR(skb, sk)
	sk.SkReceiveQueue.tail(skb)
}

// rcvEstablished mirrors tcp_rcv_established() (net/ipv4/tcp_input.c,
// v6.18) past header prediction: the ACK, the segment's text, then what
// the ACK lets the socket send and the ACK it owes.
func (r *refTCP) rcvEstablished(tp *tcpSock, seg segment) {
	r.k.reach(fnRefTCPRcvEstablished)
	if r.fastPath(tp, seg) {
		return
	}
	r.tcpAck(tp, seg)
	r.rcvRttMeasureTS(tp, seg)
	tp.tsRecent = seg.tsval
	if tp.unhashed || tp.tw || tp.sk.TCP != tp {
		if seg.skb != nil {
			r.k.freeSkb(seg.skb)
		}
		return
	}
	if seg.skb == nil && seg.dupLen == 0 {
		r.dataSndCheck(tp)
		return
	}
	if seg.dupLen > 0 {
		// A loss probe's retransmission: old data, dropped.
		tp.sk.drops++
		r.outOfWindow(tp)
	} else {
		r.tcpDataQueue(tp, seg.skb)
	}
	r.dataSndCheck(tp)
	r.ackSndCheck(tp)
}

// cleanupRbuf mirrors __tcp_cleanup_rbuf() (net/ipv4/tcp.c, v6.18): after
// a read of copied bytes, ACK what tcp_input held back, or advertise a
// window the read at least doubled.
func (r *refTCP) cleanupRbuf(tp *tcpSock, copied int) {
	r.k.reach(fnRefTCPCleanupRbuf)
	sk := tp.sk
	timeToAck := false
	if tp.ackPending&icskAckSched != 0 {
		if int(tp.RcvNxt-tp.rcvWup) > tp.rcvMss ||
			copied > 0 && (tp.ackPending&icskAckPushed2 != 0 || tp.ackPending&icskAckPushed != 0 && !tp.pingpong) &&
				sk.SkRmemAlloc == 0 {
			timeToAck = true
		}
	}
	if copied > 0 && !timeToAck && sk.SkShutdown&rcvShutdown == 0 {
		now := tp.receiveWindow()
		if 2*now <= tp.windowClamp {
			if nw := r.selectWindowRaw(tp); nw != 0 && nw >= 2*now {
				timeToAck = true
			}
		}
	}
	if timeToAck {
		r.sendAck(tp)
	}
}

// releaseCb mirrors tcp_release_cb() (net/ipv4/tcp_output.c, v6.18) as
// release_sock runs it: an ACK deferred while the owner processed its
// backlog (TCP_ACK_DEFERRED) goes out.
func (r *refTCP) releaseCb(tp *tcpSock) {
	r.k.reach(fnRefTCPReleaseCb)
	if tp.ackDeferred {
		tp.ackDeferred = false
		if tp.ackPending&icskAckSched != 0 {
			r.sendAck(tp)
		}
	}
}

// rcvRttMeasure mirrors tcp_rcv_rtt_measure() (net/ipv4/tcp_input.c,
// v6.18): the receiver's RTT without timestamps, the time to receive
// one window's worth; what matters to the model is that a sample exists
// (rcv_rtt_est.rtt_us != 0), once a window past the first data came.
func (r *refTCP) rcvRttMeasure(tp *tcpSock) {
	r.k.reach(fnRefTCPRcvRttMeasure)
	if tp.rcvRttStarted && int32(tp.RcvNxt-tp.rcvRttSeq) < 0 {
		return
	}
	if tp.rcvRttStarted {
		tp.rcvRttValid = true
	}
	tp.rcvRttStarted = true
	tp.rcvRttSeq = tp.RcvNxt + uint32(tp.rcvWnd)
}

// rcvRttMeasureTS mirrors tcp_rcv_rtt_measure_ts() (net/ipv4/tcp_input.c,
// v6.18): a segment of at least rcv_mss echoing the timestamp of an ACK
// sent a millisecond or more ago (one op ago in the kernel backend) is
// an RTT sample.
func (r *refTCP) rcvRttMeasureTS(tp *tcpSock, seg segment) {
	r.k.reach(fnRefTCPRcvRttMeasureTS)
	if seg.skb == nil || seg.skb.Len < tp.rcvMss || seg.tsecr == 0 {
		return
	}
	if r.k.s.opSeq > seg.tsecr {
		tp.rcvRttValid = true
	}
}

// rcvSpaceAdjust mirrors tcp_rcv_space_adjust() (net/ipv4/tcp_input.c,
// v6.18), which a reader runs as it copies: once per RTT (in the model:
// once per op, see sched.opSeq) the bytes copied since the last
// measurement, less those still queued, beyond the last measurement
// grow the receive buffer (rcvbufGrow), unless SO_RCVBUF locked it.
func (r *refTCP) rcvSpaceAdjust(tp *tcpSock) {
	r.k.reach(fnRefTCPRcvSpaceAdjust)
	if !tp.rcvRttValid || tp.rcvqTime == r.k.s.opSeq {
		return
	}
	copied := int(int32(tp.CopiedSeq - tp.rcvqSeq))
	if r.conf().DRS != drs61 {
		copied -= int(int32(tp.RcvNxt - tp.CopiedSeq))
	}
	if copied > tp.rcvqSpace {
		r.rcvbufGrow(tp, copied)
	}
	tp.rcvqSeq = tp.CopiedSeq
	tp.rcvqTime = r.k.s.opSeq
}

// rcvbufGrow mirrors tcp_rcvbuf_grow() (net/ipv4/tcp_input.c, v6.18):
// the receive window the reader now needs, twice what it copied grown
// by its growth, turned into receive space (tcp_space_from_win), becomes
// sk_rcvbuf (up to tcp_rmem[2]) and the window clamp follows. The
// profile's DRS gives 6.12's and 6.1's sizing instead.
func (r *refTCP) rcvbufGrow(tp *tcpSock, newval int) {
	r.k.reach(fnRefTCPRcvbufGrow)
	sk := tp.sk
	old := tp.rcvqSpace
	tp.rcvqSpace = newval
	if sk.userlocks&sockRcvbufLock != 0 || old <= 0 {
		return
	}
	c := r.conf()
	var rcvbuf int64
	switch c.DRS {
	case drs618:
		rcvwin := int64(newval) << 1
		rcvwin += (rcvwin * int64(newval-old) / int64(old)) << 1
		rcvbuf = (rcvwin << tcpRmemToWinScale) / int64(tp.scalingRatio)
	case drs612:
		rcvwin := int64(newval)<<1 + 16*int64(tp.advmss)
		rcvwin += (rcvwin * int64(newval-old) / int64(old)) << 1
		rcvbuf = (rcvwin << tcpRmemToWinScale) / int64(tp.scalingRatio)
	default:
		rcvwin := int64(newval)<<1 + 16*int64(tp.advmss)
		rcvwin += (rcvwin * int64(newval-old) / int64(old)) << 1
		rcvmem := tp.advmss + c.MaxTCPHeader + skbStructSize + skbSharedInfoSize
		for r.winFromSpace(tp, rcvmem) < tp.advmss {
			rcvmem += 128
		}
		rcvbuf = rcvwin / int64(tp.advmss) * int64(rcvmem)
	}
	rcvbuf = min(rcvbuf, int64(c.Rmem[2]))
	if int(rcvbuf) > sk.SkRcvbuf {
		sk.SkRcvbuf = int(rcvbuf)
		tp.windowClamp = r.winFromSpace(tp, sk.SkRcvbuf)
	}
}

// RcvSpaceAdjust implements TCP (tcp_rcv_space_adjust, rcvSpaceAdjust).
func (r *refTCP) RcvSpaceAdjust(sk *sock) {
	tp := tcpSk(sk)
	if tp.unhashed || tp.tw {
		return
	}
	r.rcvSpaceAdjust(tp)
}
