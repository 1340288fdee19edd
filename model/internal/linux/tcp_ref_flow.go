package linux

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
// ops later. The zero-window probe timer runs in virtual time
// (checkProbeTimer); the retransmission timer is not modelled, nor SACK
// and the out-of-order queue.

import "time"

// Loopback TCP constants (include/net/tcp.h, v6.18; the loopback route
// of a new network namespace).
const (
	tcpDelackMin    = 40 * time.Millisecond  // TCP_DELACK_MIN
	tcpRTOMin       = 200 * time.Millisecond // TCP_RTO_MIN
	tcpRTOMax       = 120 * time.Second      // TCP_RTO_MAX
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

// wndEnd mirrors tcp_wnd_end() (include/net/tcp.h, v6.18): the right
// edge of the peer's window.
func (tp *tcpSock) wndEnd() uint32 {
	reach(fnTcpSockWndEnd)
	return tp.SndUna + uint32(tp.sndWnd)
}

// ilog2 mirrors ilog2() (include/linux/log2.h, v6.18) of a positive int.
func ilog2(v int) int {
	reach(fnIlog2)
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

// The loopback device: the link and network headers of a TCP segment
// with timestamps (14 + 20 + 32), and dev->gso_max_size.
const (
	tcpLoopbackHeaders = 66
	tcpLoopbackGSOMax  = 65536
)
