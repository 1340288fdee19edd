package model

// The reference TCP's flow control, as Linux runs it on loopback: the
// send buffer counted in skb truesize (sk_wmem_queued against sk_sndbuf,
// autotuned by tcp_sndbuf_expand unless SO_SNDBUF locked it), skbs cut to
// size_goal and to the peer's window (tcp_write_xmit and the silly
// window avoidance of tcp_snd_wnd_test, tcp_nagle_test,
// tcp_tso_should_defer), the receive memory counted in truesize
// (sk_rmem_alloc against sk_rcvbuf, with coalescing, tcp_prune_queue and
// tcp_collapse), the receive window (tcp_select_window, rcv_ssthresh and
// tcp_grow_window, window_clamp, scaling_ratio or tcp_adv_win_scale,
// window scaling), the ACK policy (quick ACKs, delayed ACKs) and the
// tail loss probe. Each function cites the v6.18 source it mirrors;
// behaviour.TCP switches what older kernels do otherwise.
//
// Time. The kernel backend waits after every op until no segment is
// unacknowledged (kernelshim's settle, up to 100 ms), so a delayed ACK
// (40 ms) and a tail loss probe (a few ms) fire before the next op, and
// so do the ones they arm (80 ms). The model arms both as kernel work of
// the op's settle (tcpTimers, sched.deferSettleTimer) instead of in
// virtual time; a probe with one packet out (200 ms and more) fires two
// ops later. The retransmission and zero-window probe timers are not
// modelled, nor SACK and the out-of-order queue.

import "time"

// Loopback TCP constants (include/net/tcp.h, v6.18; the loopback route
// of a new network namespace).
const (
	tcpDelackMin    = 40 * time.Millisecond  // TCP_DELACK_MIN
	tcpRTOMin       = 200 * time.Millisecond // TCP_RTO_MIN
	tcpMSSDefault   = 536                    // TCP_MSS_DEFAULT
	tcpMinMSS       = 88                     // TCP_MIN_MSS
	tcpInitCwnd     = 10                     // TCP_INIT_CWND
	tcpMaxQuickacks = 16                     // TCP_MAX_QUICKACKS
	tcpMaxWscale    = 14                     // TCP_MAX_WSCALE
	tcpHeaderLen    = 32                     // sizeof(struct tcphdr) + TCPOLEN_TSTAMP_ALIGNED
	tcpMSSClamp     = 65495                  // the MSS of the SYN: IP_MAX_MTU 65535 - 40
	// tcpAdvMSS is tp->advmss and the mss_cache an unbounded window
	// gives: the SYN's MSS less the timestamp option.
	tcpAdvMSS = tcpMSSClamp - 12
	// tcpGSOMaxSize is sk_gso_max_size on loopback:
	// GSO_LEGACY_MAX_SIZE less MAX_TCP_HEADER + 1 (sk_dst_gso_max_size).
	// MAX_TCP_HEADER's exact value does not matter: the size goal is
	// below one MSS either way.
	tcpGSOMaxSize = 65536 - 257
	tcpMinTSOSegs = 2 // sysctl_tcp_min_tso_segs, bbr_min_tso_segs
	// tcpTSOWinDivisor is sysctl_tcp_tso_win_divisor.
	tcpTSOWinDivisor = 3
	// tcpAppWin is sysctl_tcp_app_win.
	tcpAppWin = 31
	// tcpRmemToWinScale is TCP_RMEM_TO_WIN_SCALE; the default
	// scaling_ratio is half of 1 << it.
	tcpRmemToWinScale = 8
	// skbMaxOrder0 is SKB_MAX_ORDER(0, 0): the linear bytes of one
	// page-sized skb, what tcp_collapse copies into each new skb.
	skbMaxOrder0 = pageSize - skbSharedInfoSize
	// skbSharedInfoSize and skbStructSize are SKB_DATA_ALIGN(sizeof(struct
	// skb_shared_info)) and SKB_DATA_ALIGN(sizeof(struct sk_buff)).
	skbSharedInfoSize = 320
	skbStructSize     = 256
)

// inet_csk(sk)->icsk_ack.pending bits.
const (
	icskAckSched   = 1 << iota // ICSK_ACK_SCHED
	icskAckTimer               // ICSK_ACK_TIMER
	icskAckPushed              // ICSK_ACK_PUSHED
	icskAckPushed2             // ICSK_ACK_PUSHED2
	icskAckNow                 // ICSK_ACK_NOW
	icskAckNomem               // ICSK_ACK_NOMEM
)

// tp->nonagle values and the TCP_NAGLE_* arguments of tcp_write_xmit.
const (
	tcpNagleOff  = 1 // TCP_NAGLE_OFF
	tcpNagleCork = 2 // TCP_NAGLE_CORK
	tcpNaglePush = 4 // TCP_NAGLE_PUSH
)

// conf returns the profile's TCP configuration.
func (r *refTCP) conf() *tcpConf { return &r.k.prof.TCP }

// skbAllocTruesize is the truesize alloc_skb(size) gives a linear skb
// (__alloc_skb → kmalloc_reserve): its head is SKB_HEAD_ALIGN(size)
// rounded up to a kmalloc size class, of which skb_end_offset is what
// skb_shared_info leaves.
func skbAllocTruesize(size int) int {
	obj := (size+63)&^63 + skbSharedInfoSize
	class := 64
	for class < obj {
		switch {
		case class == 64:
			class = 96
		case class == 96:
			class = 128
		case class == 128:
			class = 192
		case class == 192:
			class = 256
		default:
			class *= 2
		}
	}
	return class - skbSharedInfoSize + skbStructSize + skbSharedInfoSize
}

// winFromSpace mirrors tcp_win_from_space() (include/net/tcp.h, v6.18):
// the window a receive space allows, by scaling_ratio; before v6.6, by
// tcp_adv_win_scale (1: half of it).
func (r *refTCP) winFromSpace(tp *tcpSock, space int) int {
	r.k.reach(fnRefTCPWinFromSpace)
	if !r.conf().ScalingRatio {
		return space - space>>1
	}
	return int((int64(space) * int64(tp.scalingRatio)) >> tcpRmemToWinScale)
}

// tcpSpace mirrors tcp_space() (include/net/tcp.h, v6.18): the window of
// the receive buffer not yet used (negative when over it).
func (r *refTCP) tcpSpace(tp *tcpSock) int {
	r.k.reach(fnRefTCPTcpSpace)
	return r.winFromSpace(tp, tp.sk.SkRcvbuf-tp.sk.SkRmemAlloc)
}

// tcpFullSpace mirrors tcp_full_space() (include/net/tcp.h, v6.18).
func (r *refTCP) tcpFullSpace(tp *tcpSock) int {
	r.k.reach(fnRefTCPTcpFullSpace)
	return r.winFromSpace(tp, tp.sk.SkRcvbuf)
}

// receiveWindow mirrors tcp_receive_window() (include/net/tcp.h, v6.18):
// what is left of the window last advertised.
func (tp *tcpSock) receiveWindow() int {
	reach(fnTcpSockReceiveWindow)
	w := int(int32(tp.rcvWup + uint32(tp.rcvWnd) - tp.RcvNxt))
	return max(w, 0)
}

// wndEnd is tcp_wnd_end(): the right edge of the peer's window.
func (tp *tcpSock) wndEnd() uint32 { return tp.SndUna + uint32(tp.sndWnd) }

// ilog2 is ilog2() of a positive int.
func ilog2(v int) int {
	n := -1
	for ; v > 0; v >>= 1 {
		n++
	}
	return n
}

// selectInitialWindow mirrors tcp_select_initial_window()
// (net/ipv4/tcp_output.c, v6.18): the first window, a multiple of the
// MSS, and the window scale of the largest receive buffer the socket may
// get (tcp_rmem[2], rmem_max).
func (r *refTCP) selectInitialWindow(tp *tcpSock, space, mss int) {
	r.k.reach(fnRefTCPSelectInitialWindow)
	clamp := 65535 << tcpMaxWscale
	space = min(max(space, 0), clamp)
	if space > mss {
		space -= space % mss
	}
	tp.rcvWnd = space
	c := r.conf()
	space = max(space, c.Rmem[2], c.RmemMax)
	space = min(space, clamp)
	tp.rcvWscale = uint(min(max(ilog2(space)-15, 0), tcpMaxWscale))
	tp.windowClamp = min(65535<<tp.rcvWscale, clamp)
}

// sndbufExpand mirrors tcp_sndbuf_expand() (net/ipv4/tcp_input.c, v6.18):
// room for twice (BBR: three times) the congestion window of
// worst-case skbs (a power-of-two head per MSS), up to tcp_wmem[2].
func (r *refTCP) sndbufExpand(tp *tcpSock) {
	r.k.reach(fnRefTCPSndbufExpand)
	perMSS := max(tcpMSSClamp, tp.mssCache) + 256 + skbSharedInfoSize
	pow := 1
	for pow < perMSS {
		pow <<= 1
	}
	perMSS = pow + skbStructSize
	nrSegs := max(tcpInitCwnd, tp.sndCwnd)
	sndmem := r.conf().SndbufExpand * nrSegs * perMSS
	if tp.sk.SkSndbuf < sndmem {
		tp.sk.SkSndbuf = min(sndmem, r.conf().Wmem[2])
	}
}

// initBufferSpace mirrors tcp_init_buffer_space() (net/ipv4/tcp_input.c,
// v6.18) as a connection is established: the send buffer grows to its
// autotuned size, the window clamp to the full space, less the
// application's share (tcp_app_win).
func (r *refTCP) initBufferSpace(tp *tcpSock) {
	r.k.reach(fnRefTCPInitBufferSpace)
	if tp.sk.userlocks&sockSndbufLock == 0 {
		r.sndbufExpand(tp)
	}
	tp.rcvqSeq = tp.CopiedSeq
	tp.rcvqTime = r.k.s.opSeq
	maxwin := r.tcpFullSpace(tp)
	if tp.windowClamp >= maxwin {
		tp.windowClamp = maxwin
		if maxwin > 4*tp.advmss {
			tp.windowClamp = max(maxwin-maxwin>>tcpAppWin, 4*tp.advmss)
		}
	}
	if tp.windowClamp > 2*tp.advmss && tp.windowClamp+tp.advmss > maxwin {
		tp.windowClamp = max(2*tp.advmss, maxwin-tp.advmss)
	}
	tp.rcvSsthresh = min(tp.rcvSsthresh, tp.windowClamp)
	tp.rcvqSpace = min(tp.rcvSsthresh, tp.rcvWnd, tcpInitCwnd*tp.advmss)
}

// boundToHalfWnd mirrors tcp_bound_to_half_wnd() (include/net/tcp.h,
// v6.18): no packet larger than half the largest window the peer
// offered.
func (tp *tcpSock) boundToHalfWnd(pktsize int) int {
	reach(fnTcpSockBoundToHalfWnd)
	cutoff := tp.maxWindow
	if cutoff > tcpMSSDefault {
		cutoff >>= 1
	}
	if cutoff > 0 && pktsize > cutoff {
		return max(cutoff, 68-tcpHeaderLen)
	}
	return pktsize
}

// syncMSS mirrors tcp_sync_mss() (net/ipv4/tcp_output.c, v6.18) for the
// loopback path MTU: the MSS less the options, bounded by half the
// largest window.
func (r *refTCP) syncMSS(tp *tcpSock) {
	r.k.reach(fnRefTCPSyncMSS)
	tp.mssCache = max(tp.boundToHalfWnd(tcpAdvMSS), 1)
}

// sendMSS mirrors tcp_send_mss() and tcp_xmit_size_goal()
// (net/ipv4/tcp.c, v6.18): the MSS and the size an skb of sendmsg is
// filled to, which on loopback (sk_gso_max_size below one unbounded MSS)
// is one MSS.
func (r *refTCP) sendMSS(tp *tcpSock) (mss, sizeGoal int) {
	r.k.reach(fnRefTCPSendMSS)
	mss = tp.mssCache
	newGoal := tp.boundToHalfWnd(tcpGSOMaxSize)
	goal := tp.gsoSegs * mss
	if newGoal < goal || newGoal >= goal+mss {
		tp.gsoSegs = newGoal / mss
		goal = tp.gsoSegs * mss
	}
	return mss, max(goal, mss)
}

// tsoSegs is tcp_skb_pcount() as tcp_set_skb_tso_segs() sets it: the
// MSS-sized segments of skb.
func tsoSegs(skb *skBuff, mss int) int {
	if skb.Len <= mss {
		return 1
	}
	return (skb.Len + mss - 1) / mss
}

// streamAllocSkb mirrors tcp_stream_alloc_skb() and tcp_skb_entail()
// (net/ipv4/tcp.c, v6.18): a new skb at write_seq, its head's truesize
// charged to sk_wmem_queued, at the tail of the write queue.
func (r *refTCP) streamAllocSkb(tp *tcpSock) *skBuff {
	r.k.reach(fnRefTCPStreamAllocSkb)
	skb := &skBuff{Seq: tp.WriteSeq, EndSeq: tp.WriteSeq, Truesize: r.conf().SkbHeadTruesize}
	tp.writeQueue = append(tp.writeQueue, skb)
	tp.wmemQueued += skb.Truesize
	tp.sk.memSchedule(skb.Truesize)
	tp.sk.memCharge(skb.Truesize)
	return skb
}

// removeEmptySkb mirrors tcp_remove_empty_skb() (net/ipv4/tcp.c, v6.18).
func (r *refTCP) removeEmptySkb(tp *tcpSock) {
	r.k.reach(fnRefTCPRemoveEmptySkb)
	n := len(tp.writeQueue)
	if n == 0 {
		return
	}
	skb := tp.writeQueue[n-1]
	if skb.Seq == skb.EndSeq && skb.TCPFlags&tcphdrFIN == 0 {
		tp.writeQueue = tp.writeQueue[:n-1]
		tp.wmemQueued -= skb.Truesize
		tp.sk.memUncharge(skb.Truesize)
		r.k.pages.kfreeSkb(skb)
	}
}

// streamMemoryFree mirrors __sk_stream_memory_free() (include/net/sock.h,
// v6.18) with the notsent_lowat of tcp_stream_memory_free()
// (net/ipv4/tcp_ipv4.c, v6.18) at its default (unlimited): sk_wmem_queued
// below sk_sndbuf.
func (tp *tcpSock) streamMemoryFree() bool {
	reach(fnTcpSockStreamMemoryFree)
	return tp.wmemQueued < tp.sk.SkSndbuf
}

// forcedPush is forced_push() (net/ipv4/tcp.c, v6.18).
func (tp *tcpSock) forcedPush() bool {
	reach(fnTcpSockForcedPush)
	return int32(tp.WriteSeq-(tp.pushedSeq+uint32(tp.maxWindow>>1))) > 0
}

// markPush is tcp_mark_push().
func (tp *tcpSock) markPush(skb *skBuff) {
	skb.tcpPSH = true
	tp.pushedSeq = tp.WriteSeq
}

// sendHead is tcp_send_head(): the first skb not yet sent.
func (tp *tcpSock) sendHead() *skBuff {
	if len(tp.writeQueue) == 0 {
		return nil
	}
	return tp.writeQueue[0]
}

// tcpPush mirrors tcp_push() (net/ipv4/tcp.c, v6.18) on loopback, where
// autocorking never holds (loopback_xmit orphans every skb, so
// sk_wmem_alloc is back to its base as soon as it is sent): mark the
// tail pushed unless MSG_MORE, which corks (TCP_NAGLE_CORK), then push
// the pending frames.
func (r *refTCP) tcpPush(tp *tcpSock, flags, mss, nonagle int) {
	r.k.reach(fnRefTCPTcpPush)
	n := len(tp.writeQueue)
	if n == 0 {
		return
	}
	if flags&msgMore == 0 || tp.forcedPush() {
		tp.markPush(tp.writeQueue[n-1])
	}
	if flags&msgMore != 0 {
		nonagle = tcpNagleCork
	}
	r.pushPendingFrames(tp, mss, nonagle)
}

// pushPendingFrames mirrors __tcp_push_pending_frames()
// (net/ipv4/tcp_output.c, v6.18).
func (r *refTCP) pushPendingFrames(tp *tcpSock, mss, nonagle int) {
	r.k.reach(fnRefTCPPushPendingFrames)
	if tp.sk.State == tcpClose {
		return
	}
	r.writeXmit(tp, mss, nonagle, 0)
}

// pushOne mirrors tcp_push_one() (net/ipv4/tcp_output.c, v6.18): send
// the full skb at the send head.
func (r *refTCP) pushOne(tp *tcpSock, mss int) {
	r.k.reach(fnRefTCPPushOne)
	r.writeXmit(tp, mss, tcpNaglePush, 1)
}

// minshallCheck is tcp_minshall_check(): a small segment is in flight.
func (tp *tcpSock) minshallCheck() bool {
	return int32(tp.sndSml-tp.SndUna) > 0 && int32(tp.sndSml-tp.SndNxt) <= 0
}

// nagleCheck mirrors tcp_nagle_check() (net/ipv4/tcp_output.c, v6.18):
// a partial segment waits while corked, or (Nagle, with Minshall's
// change) while a small segment is unacknowledged.
func (r *refTCP) nagleCheck(tp *tcpSock, partial bool, nonagle int) bool {
	r.k.reach(fnRefTCPNagleCheck)
	return partial && (nonagle&tcpNagleCork != 0 ||
		nonagle == 0 && tp.packetsOut > 0 && tp.minshallCheck())
}

// nagleTest mirrors tcp_nagle_test() (net/ipv4/tcp_output.c, v6.18).
func (r *refTCP) nagleTest(tp *tcpSock, skb *skBuff, mss, nonagle int) bool {
	r.k.reach(fnRefTCPNagleTest)
	if nonagle&tcpNaglePush != 0 || skb.TCPFlags&tcphdrFIN != 0 {
		return true
	}
	return !r.nagleCheck(tp, skb.Len < mss, nonagle)
}

// sndWndTest mirrors tcp_snd_wnd_test() (net/ipv4/tcp_output.c, v6.18):
// the first MSS of skb fits the peer's window (the sender's silly window
// avoidance: a segment shorter than the MSS is not cut to a small window
// unless it is all the skb holds).
func (r *refTCP) sndWndTest(tp *tcpSock, skb *skBuff, mss int) bool {
	r.k.reach(fnRefTCPSndWndTest)
	end := skb.EndSeq
	if skb.Len > mss {
		end = skb.Seq + uint32(mss)
	}
	return int32(end-tp.wndEnd()) <= 0
}

// cwndTest mirrors tcp_cwnd_test() (net/ipv4/tcp_output.c, v6.18): how
// many segments the congestion window allows now, at most half of it.
func (r *refTCP) cwndTest(tp *tcpSock) int {
	r.k.reach(fnRefTCPCwndTest)
	if tp.packetsOut >= tp.sndCwnd {
		return 0
	}
	return min(max(tp.sndCwnd>>1, 1), tp.sndCwnd-tp.packetsOut)
}

// mssSplitPoint mirrors tcp_mss_split_point() (net/ipv4/tcp_output.c,
// v6.18): how much of skb to send now, within the window and maxSegs
// segments, a partial last segment only if Nagle allows it.
func (r *refTCP) mssSplitPoint(tp *tcpSock, skb *skBuff, mss, maxSegs, nonagle int) int {
	r.k.reach(fnRefTCPMssSplitPoint)
	window := int(tp.wndEnd() - skb.Seq)
	maxLen := mss * maxSegs
	if maxLen <= window && skb != tp.writeQueue[len(tp.writeQueue)-1] {
		return maxLen
	}
	needed := min(skb.Len, window)
	if maxLen <= needed {
		return maxLen
	}
	partial := needed % mss
	if r.nagleCheck(tp, partial != 0, nonagle) {
		return needed - partial
	}
	return needed
}

// tsoShouldDefer mirrors tcp_tso_should_defer() (net/ipv4/tcp_output.c,
// v6.18): hold a multi-segment skb that the window or cwnd would cut,
// hoping an ACK soon allows all of it.
//
// Unlike Linux, which decides by the clock (the last write less than a
// millisecond ago, and the next ACK already overdue), the model holds
// only inside the sender's system call (its writes are recent) while
// the ACK is overdue: it waits on the sender's own backlog, or the peer
// delays it.
func (r *refTCP) tsoShouldDefer(tp *tcpSock, skb *skBuff, maxSegs int) bool {
	r.k.reach(fnRefTCPTsoShouldDefer)
	if !tp.sk.Owned || len(tp.sk.Backlog) == 0 && !tp.delackPendingAtPeer() {
		return false
	}
	sendWin := int(tp.wndEnd() - skb.Seq)
	congWin := (tp.sndCwnd - tp.packetsOut) * tp.mssCache
	limit := min(sendWin, congWin)
	if limit >= maxSegs*tp.mssCache {
		return false
	}
	if skb != tp.writeQueue[len(tp.writeQueue)-1] && limit >= skb.Len {
		return false
	}
	chunk := min(tp.sndWnd, tp.sndCwnd*tp.mssCache) / tcpTSOWinDivisor
	if limit >= chunk {
		return false
	}
	if len(tp.rtxQueue) == 0 {
		return false
	}
	if congWin < sendWin {
		if congWin <= skb.Len {
			return true
		}
	} else if sendWin <= skb.Len {
		return true
	}
	return skb.TCPFlags&tcphdrFIN == 0
}

// delackPendingAtPeer reports whether the peer holds back an ACK (its
// delayed ACK timer is armed).
func (tp *tcpSock) delackPendingAtPeer() bool {
	return tp.peer != nil && tp.peer.ackPending&icskAckTimer != 0
}

// growSkb mirrors tcp_grow_skb() (net/ipv4/tcp_output.c, v6.18): move up
// to amount bytes of the next skb into skb, freeing the next one when
// emptied.
func (r *refTCP) growSkb(tp *tcpSock, i, amount int) {
	r.k.reach(fnRefTCPGrowSkb)
	if i+1 >= len(tp.writeQueue) {
		return
	}
	skb, next := tp.writeQueue[i], tp.writeQueue[i+1]
	if skb.TCPFlags&tcphdrFIN != 0 {
		return
	}
	n := min(amount, next.Len)
	if n == 0 || !r.k.pages.skbShift(skb, next, n) {
		return
	}
	skb.EndSeq += uint32(n)
	next.Seq += uint32(n)
	if next.Len == 0 {
		skb.EndSeq = next.EndSeq
		skb.TCPFlags |= next.TCPFlags
		skb.tcpPSH = skb.tcpPSH || next.tcpPSH
		tp.writeQueue = append(tp.writeQueue[:i+1], tp.writeQueue[i+2:]...)
		tp.wmemQueued -= next.Truesize
		tp.sk.memUncharge(next.Truesize)
		r.k.pages.kfreeSkb(next)
	}
}

// skbShift mirrors skb_shift() (net/core/skbuff.c, v6.18) for skbs of
// page fragments: move the first n bytes of from's fragments to the end
// of to, with their truesize, if MAX_SKB_FRAGS allows.
func (a *pageAlloc) skbShift(to, from *skBuff, n int) bool {
	reach(fnPageAllocSkbShift)
	need := 0
	left := n
	for i, f := range from.Frags {
		if left == 0 {
			break
		}
		take := min(left, f.Size)
		if i == 0 && len(to.Frags) > 0 {
			last := to.Frags[len(to.Frags)-1]
			if last.Page == f.Page && last.Off+last.Size == f.Off {
				left -= take
				continue
			}
		}
		need++
		left -= take
	}
	if len(to.Frags)+need > maxSkbFrags {
		return false
	}
	for n > 0 {
		f := &from.Frags[0]
		take := min(n, f.Size)
		if k := len(to.Frags); k > 0 && to.Frags[k-1].Page == f.Page && to.Frags[k-1].Off+to.Frags[k-1].Size == f.Off {
			to.Frags[k-1].Size += take
			if take == f.Size {
				a.putPage(f.Page) // the merged fragment's reference
			}
		} else if take == f.Size {
			to.addFrag(*f)
		} else {
			skbHeadGet(f.Page)
			to.addFrag(skbFrag{Page: f.Page, Off: f.Off, Size: take})
		}
		if take == f.Size {
			from.Frags = from.Frags[1:]
		} else {
			f.Off += take
			f.Size -= take
		}
		to.Len += take
		to.Truesize += take
		from.Len -= take
		from.Truesize -= take
		n -= take
	}
	return true
}

// tsoFragment mirrors tso_fragment() (net/ipv4/tcp_output.c, v6.18):
// cut skb at len; the rest goes into a new skb (a fresh head, charged to
// sk_wmem_queued) right after it, with the PSH and FIN.
func (r *refTCP) tsoFragment(tp *tcpSock, i, length int) {
	r.k.reach(fnRefTCPTsoFragment)
	skb := tp.writeQueue[i]
	nlen := skb.Len - length
	buff := skb.cloneRange(length, nlen)
	buff.Truesize = r.conf().SkbHeadTruesize + nlen
	tp.wmemQueued += r.conf().SkbHeadTruesize
	tp.sk.memSchedule(r.conf().SkbHeadTruesize)
	tp.sk.memCharge(r.conf().SkbHeadTruesize)
	r.k.pages.pullBack(skb, nlen)
	skb.Truesize -= nlen
	buff.Seq = skb.Seq + uint32(length)
	buff.EndSeq = skb.EndSeq
	skb.EndSeq = buff.Seq
	buff.TCPFlags, buff.tcpPSH = skb.TCPFlags, skb.tcpPSH
	skb.TCPFlags &^= tcphdrFIN
	skb.tcpPSH = false
	tp.writeQueue = append(tp.writeQueue, nil)
	copy(tp.writeQueue[i+2:], tp.writeQueue[i+1:])
	tp.writeQueue[i+1] = buff
}

// writeXmit mirrors tcp_write_xmit() (net/ipv4/tcp_output.c, v6.18):
// send skbs from the send head while the congestion window, the peer's
// window, Nagle and TSO deferral allow, cutting an skb to what fits;
// pushOne 1 sends one skb, 2 (a loss probe) one even past the
// congestion window. It returns whether anything was sent.
//
// Unlike Linux, no pacing (BBR's EDT timer) delays a transmission: on
// loopback its delays are microseconds, which the settle of every op
// covers.
func (r *refTCP) writeXmit(tp *tcpSock, mss, nonagle, pushOne int) bool {
	r.k.reach(fnRefTCPWriteXmit)
	if tp.peer == nil {
		return false
	}
	sent := 0
	maxSegs := max(tcpGSOMaxSize/mss, tcpMinTSOSegs)
	for len(tp.writeQueue) > 0 {
		skb := tp.writeQueue[0]
		quota := r.cwndTest(tp)
		if quota == 0 {
			if pushOne != 2 {
				break
			}
			quota = 1
		}
		quota = min(quota, maxSegs)
		if r.conf().GrowSkb {
			if missing := quota*mss - skb.Len; missing > 0 {
				r.growSkb(tp, 0, missing)
			}
		}
		segs := tsoSegs(skb, mss)
		if !r.sndWndTest(tp, skb, mss) {
			break
		}
		if segs == 1 {
			nag := nonagle
			if len(tp.writeQueue) > 1 {
				nag = tcpNaglePush
			}
			if !r.nagleTest(tp, skb, mss, nag) {
				break
			}
		} else if pushOne == 0 && r.tsoShouldDefer(tp, skb, maxSegs) {
			break
		}
		limit := mss
		if segs > 1 {
			limit = r.mssSplitPoint(tp, skb, mss, quota, nonagle)
		}
		if skb.Len > limit {
			r.tsoFragment(tp, 0, limit)
		}
		if skb.Seq == skb.EndSeq {
			break
		}
		r.transmitSkb(tp, skb, mss)
		r.eventNewDataSent(tp, skb, mss)
		sent++
		if pushOne > 0 {
			break
		}
	}
	if sent > 0 && pushOne != 2 {
		r.scheduleLossProbe(tp)
	}
	return sent > 0
}

// eventNewDataSent mirrors tcp_event_new_data_sent() and
// tcp_minshall_update() (net/ipv4/tcp_output.c, v6.18): the skb moves to
// the retransmission queue, snd_nxt and packets_out advance.
func (r *refTCP) eventNewDataSent(tp *tcpSock, skb *skBuff, mss int) {
	r.k.reach(fnRefTCPEventNewDataSent)
	tp.SndNxt = skb.EndSeq
	_, tp.writeQueue = popFront(tp.writeQueue)
	skb.pcount = tsoSegs(skb, mss)
	tp.rtxQueue = append(tp.rtxQueue, skb)
	tp.packetsOut += skb.pcount
	if skb.Len < skb.pcount*mss {
		tp.sndSml = skb.EndSeq
	}
	r.checkSpace(tp)
}

// transmitSkb mirrors __tcp_transmit_skb() (net/ipv4/tcp_output.c,
// v6.18) on loopback: the peer receives a clone of skb (sharing its
// head: skb_cloned until the sender frees the original on the ACK) with
// the original's truesize and, for a segment of several MSS, its
// gso_size; the header carries the ACK and the window
// (tcp_select_window), which counts as an ACK sent (tcp_event_ack_sent).
func (r *refTCP) transmitSkb(tp *tcpSock, skb *skBuff, mss int) {
	r.k.reach(fnRefTCPTransmitSkb)
	if skb.Len > mss && skb.Len+tcpLoopbackHeaders >= tcpLoopbackGSOMax {
		r.gsoSegment(tp, skb, mss)
		return
	}
	c := skb.cloneRange(0, skb.Len)
	c.Seq, c.EndSeq, c.TCPFlags, c.Truesize = skb.Seq, skb.EndSeq, skb.TCPFlags, skb.Truesize
	if skb.Len > mss {
		c.gsoSize = mss
	}
	if skb.shared == nil {
		skb.shared = &skbShared{dataref: 1}
	}
	skb.shared.dataref++
	c.shared = skb.shared
	seg := segment{skb: c, seq: skb.Seq, ack: tp.RcvNxt, win: r.selectWindow(tp), psh: skb.tcpPSH,
		fin: skb.TCPFlags&tcphdrFIN != 0, wl: tp.SndNxt}
	r.eventAckSent(tp)
	r.xmit(tp, seg)
}

// gsoSegment mirrors what the loopback transmit path does with a TSO
// skb too long for the device (gso_features_check: skb->len, headers
// included, at least dev->gso_max_size): skb_gso_segment cuts it into
// MSS-sized segments (tcp_gso_segment: PSH and FIN on the last), each
// with a head of its own (truesize: a fresh head plus its payload), which
// the peer receives as separate skbs, not sharing the sender's head.
func (r *refTCP) gsoSegment(tp *tcpSock, skb *skBuff, mss int) {
	r.k.reach(fnRefTCPGsoSegment)
	win := r.selectWindow(tp)
	var segs []segment
	for off := 0; off < skb.Len; off += mss {
		n := min(mss, skb.Len-off)
		c := skb.cloneRange(off, n)
		c.Seq = skb.Seq + uint32(off)
		c.EndSeq = c.Seq + uint32(n)
		c.Truesize = r.conf().SkbHeadTruesize + n
		last := off+n == skb.Len
		seg := segment{skb: c, seq: c.Seq, ack: tp.RcvNxt, win: win, wl: tp.SndNxt}
		if last {
			c.TCPFlags, c.EndSeq = skb.TCPFlags, skb.EndSeq
			seg.psh, seg.fin = skb.tcpPSH, skb.TCPFlags&tcphdrFIN != 0
			c.tcpPSH = skb.tcpPSH
		}
		segs = append(segs, seg)
	}
	r.eventAckSent(tp)
	for _, seg := range segs {
		r.xmit(tp, seg)
	}
}

// The loopback device: the link and network headers of a TCP segment
// with timestamps (14 + 20 + 32), and dev->gso_max_size.
const (
	tcpLoopbackHeaders = 66
	tcpLoopbackGSOMax  = 65536
)

// skbShared is the part of skb_shared_info the model needs: dataref, the
// skbs sharing one head (the sender's skb and the clone it transmitted).
type skbShared struct{ dataref int }

// skbCloned mirrors skb_cloned() (include/linux/skbuff.h, v6.18): the
// skb's head is shared with another skb.
func skbCloned(skb *skBuff) bool {
	reach(fnSkbCloned)
	return skb.shared != nil && skb.shared.dataref > 1
}

// skbHeadRelease drops skb's share of its head (the original freed, or
// the clone).
func skbHeadRelease(skb *skBuff) {
	if skb.shared != nil {
		skb.shared.dataref--
		skb.shared = nil
	}
}

// checkSpace mirrors tcp_check_space() (net/ipv4/tcp_input.c, v6.18): a
// writer that found no room (SOCK_NOSPACE) gets the new space.
func (r *refTCP) checkSpace(tp *tcpSock) {
	r.k.reach(fnRefTCPCheckSpace)
	if tp.sk.nospace {
		r.newSpace(tp)
	}
}

// newSpace mirrors tcp_new_space() (net/ipv4/tcp_input.c, v6.18): grow
// the send buffer (tcp_should_expand_sndbuf: not locked by SO_SNDBUF,
// the congestion window not full), then sk_write_space.
func (r *refTCP) newSpace(tp *tcpSock) {
	r.k.reach(fnRefTCPNewSpace)
	if tp.sk.userlocks&sockSndbufLock == 0 && tp.packetsOut < tp.sndCwnd {
		r.sndbufExpand(tp)
	}
	if !tp.sk.SockDead {
		tp.sk.SkWriteSpace(tp.sk)
	}
}

// scheduleLossProbe mirrors tcp_schedule_loss_probe()
// (net/ipv4/tcp_output.c, v6.18): with segments in flight, a probe
// timeout is armed: 2 RTT and 2 jiffies (a few ms on loopback), the
// model's next op boundary (tcpTimers); with one packet out 2 RTT and
// TCP_RTO_MIN (200 ms), see tcpTimers.
func (r *refTCP) scheduleLossProbe(tp *tcpSock) {
	r.k.reach(fnRefTCPScheduleLossProbe)
	if tp.packetsOut == 0 {
		return
	}
	tp.tlpArmed = true
	tp.tlpLong = tp.packetsOut == 1
	tp.tlpOp, tp.tlpAt = r.k.s.opSeq, r.k.s.now
	r.armTimers()
}

// tlpLongOps is how many ops after the one that armed it a probe with
// one packet out fires: the kernel backend's settle waits 100 ms after
// every op while a segment is unacknowledged, so the 200 ms and a few
// jiffies of its timeout run out after the second op's system call. It
// fires sooner if virtual time passes TCP_RTO_MIN meanwhile (a thread
// waits, or teardown runs the clock).
const tlpLongOps = 2

// sendLossProbe mirrors tcp_send_loss_probe() (net/ipv4/tcp_output.c,
// v6.18): send one new skb if the window allows, else retransmit the last
// MSS of the last skb in flight.
func (r *refTCP) sendLossProbe(tp *tcpSock) {
	r.k.reach(fnRefTCPSendLossProbe)
	mss := tp.mssCache
	if tp.tlpHighSeq != 0 {
		return
	}
	if skb := tp.sendHead(); skb != nil && r.sndWndTest(tp, skb, mss) {
		before := tp.packetsOut
		r.writeXmit(tp, mss, tcpNagleOff, 2)
		if tp.packetsOut > before {
			tp.tlpHighSeq = tp.SndNxt
		}
		return
	}
	if len(tp.rtxQueue) == 0 {
		return
	}
	last := tp.rtxQueue[len(tp.rtxQueue)-1]
	seq := last.Seq
	if last.pcount > 1 && last.Len > (last.pcount-1)*mss {
		seq = last.Seq + uint32((last.pcount-1)*mss)
		// tcp_fragment in the retransmission queue: the original
		// gets a head of its own (skb_unclone), so the clone the peer
		// queued no longer shares it.
		skbHeadRelease(last)
	}
	tp.tlpHighSeq = tp.SndNxt
	r.xmit(tp, segment{seq: seq, dupLen: int(last.EndSeq - seq), ack: tp.RcvNxt, win: r.selectWindow(tp), wl: tp.SndNxt})
	r.eventAckSent(tp)
}

// armTimers queues, once, the work that fires the TCP timers due within
// the kernel backend's settle (tcpTimers): at the next op boundary, later
// in the settle it was armed in (sched.deferSettleTimer: the runner waits
// while a segment is unacknowledged), or when virtual time reaches the
// delayed ACK timeout (TCP_DELACK_MIN) inside a long op: time passes in
// that op (a thread waits), as it would before the kernel's timers fire.
func (r *refTCP) armTimers() {
	if r.timersQueued {
		return
	}
	r.timersQueued = true
	r.k.s.deferSettleTimer("tcp_timers", tcpDelackMin, r.tcpTimers)
}

// tcpTimers fires, at an op boundary, the timers the kernel backend's
// settle lets run: every armed tail loss probe (tcp_write_timer →
// tcp_send_loss_probe, a few ms), then every delayed ACK
// (tcp_delack_timer, 40 ms), socket by socket in connection order, and
// again while they arm new ones. Each runs in softirq context (a timer
// handler), on the socket's backlog if a task owns it. A probe armed
// with one packet out waits 2 RTT + TCP_RTO_MIN (tcp_schedule_loss_probe,
// net/ipv4/tcp_output.c, v6.18): the peer's delayed ACK comes first (the
// probe waits for the next round, where that ACK has usually emptied the
// flight), and otherwise it fires tlpLongOps ops after the one that armed
// it (in runner time; the model's ops take none).
func (r *refTCP) tcpTimers() {
	r.timersQueued = false
	waiting := false
	for round := 0; round < 100; round++ {
		fired := false
		for _, sk := range r.k.sockSeq {
			tp, ok := sk.TCP.(*tcpSock)
			if !ok || !tp.tlpArmed {
				continue
			}
			if tp.tlpLong && tp.packetsOut > 0 {
				if p := tp.peer; p != nil && p.ackPending&icskAckTimer != 0 {
					continue
				}
				if r.k.s.opSeq < tp.tlpOp+tlpLongOps && r.k.s.now < tp.tlpAt+vtime(tcpRTOMin) {
					waiting = true
					continue
				}
			}
			tp.tlpArmed = false
			if tp.unhashed || tp.tw || tp.packetsOut == 0 {
				continue
			}
			fired = true
			r.k.s.raiseSoftirq("tcp_write_timer", func() { sk.bhRun(func() { r.sendLossProbe(tp) }) })
		}
		for _, sk := range r.k.sockSeq {
			tp, ok := sk.TCP.(*tcpSock)
			if !ok || tp.ackPending&icskAckTimer == 0 {
				continue
			}
			fired = true
			r.k.s.raiseSoftirq("tcp_delack_timer", func() { sk.bhRun(func() { r.delackTimer(tp) }) })
		}
		if !fired {
			break
		}
	}
	if waiting {
		r.armTimers()
	}
}

// delackTimer mirrors tcp_delack_timer_handler() (net/ipv4/tcp_timer.c,
// v6.18): send the ACK held back.
func (r *refTCP) delackTimer(tp *tcpSock) {
	r.k.reach(fnRefTCPDelackTimer)
	if tp.ackPending&icskAckTimer == 0 {
		return
	}
	tp.ackPending &^= icskAckTimer
	if tp.ackPending&icskAckSched != 0 && !tp.unhashed && !tp.tw {
		// Delayed ACK missed: leave ping-pong mode.
		tp.pingpong = false
		r.sendAck(tp)
	}
}

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

// inQuickackMode is tcp_in_quickack_mode().
func (tp *tcpSock) inQuickackMode() bool { return tp.ackQuick > 0 && !tp.pingpong }

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
