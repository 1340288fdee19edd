package linux

// The reference TCP's endpoint: the connection, its tcp_sock, segments
// between the two sockets, and what the socket layer reads of its state.
// The send path is tcp_ref_snd.go, the receive path tcp_ref_rcv.go,
// close and teardown tcp_ref_close.go, flow control tcp_ref_flow.go, the
// timers tcp_ref_timer.go.

// refTCP is the in-model reference TCP: byte streams with explicit
// in-flight segments delivered by kernel contexts, FIN, RST,
// SO_LINGER{1,0} and the socket states, fully deterministic.
type refTCP struct {
	k *kernel
	// splitDataReady runs tcp_data_ready as its own kernel context after
	// the rest of the segment's processing (as when the receiving task
	// runs on another CPU between tcp_fin's wake-up and sk_data_ready).
	splitDataReady bool
	// timersQueued: tcpTimers is queued for the next op boundary.
	timersQueued bool
}

// tcpSock is the reference TCP's struct tcp_sock (with the
// inet_connection_sock fields of its ACK machinery).
type tcpSock struct {
	sk   *sock
	peer *tcpSock

	RcvNxt    uint32
	CopiedSeq uint32
	SndUna    uint32
	SndNxt    uint32
	WriteSeq  uint32

	// writeQueue holds the skbs not yet sent (tcp_send_head onwards),
	// rtxQueue the ones sent and not yet acknowledged (tcp_rtx_queue),
	// whose heads the clones the peer received share. A FIN is the last
	// skb's flag and counts one in WriteSeq, as in the kernel.
	writeQueue []*skBuff
	rtxQueue   []*skBuff
	finQueued  bool
	wmemQueued int // sk_wmem_queued: the truesize of both queues
	packetsOut int // segments in flight (tcp_skb_pcount of rtxQueue)

	// The send side: the peer's window (snd_wnd, snd_wl1, max_window),
	// the MSS it bounds (mss_cache, gso_segs), the congestion window,
	// Nagle's snd_sml, tcp_push's pushed_seq, the loss probe.
	sndWnd      int
	sndWl1      uint32
	maxWindow   int
	mssCache    int
	gsoSegs     int
	sndCwnd     int
	cwndLimited bool
	sndSml      uint32
	pushedSeq   uint32
	nonagle     int
	tlpHighSeq  uint32
	tlpArmed    bool
	// tlpLong: the probe was armed with one packet out, so its timeout
	// has TCP_RTO_MIN in it; tlpOp and tlpAt are the op and the virtual
	// time it was armed at.
	tlpLong bool
	tlpOp   uint64
	tlpAt   vtime
	// probe0Armed: the zero-window probe timer (ICSK_TIME_PROBE0) is
	// queued, probe0Backoff its icsk_backoff.
	probe0Armed   bool
	probe0Backoff uint

	// The receive side: the window offered (rcv_wnd from rcv_wup), its
	// scale, rcv_ssthresh and window_clamp, advmss, the peer's MSS as
	// measured (icsk_ack.rcv_mss, last_seg_size), scaling_ratio, and
	// the ACK machinery (icsk_ack.pending, .quick, TCP_ACK_DEFERRED).
	rcvWnd int
	rcvWup uint32
	// predWnd is the window field header prediction expects (pred_flags
	// on), -1 when it is off.
	predWnd      int
	rcvWscale    uint
	sndWscale    uint
	rcvSsthresh  int
	windowClamp  int
	advmss       int
	rcvMss       int
	lastSegSize  int
	scalingRatio int
	ackPending   uint8
	ackQuick     int
	ackDeferred  bool
	atoInit      bool // icsk_ack.ato set: the first data came
	pingpong     bool // inet_csk_in_pingpong_mode
	rcvqSpace    int  // rcvq_space.space
	rcvqSeq      uint32
	rcvqTime     uint64 // rcvq_space.time, as sched.opSeq
	// rcv_rtt_est: a sample exists (rtt_us != 0), and the non-timestamp
	// measurement's sequence; tsRecent is the timestamp (sched.opSeq)
	// of the peer's last segment, echoed in ours.
	rcvRttStarted bool
	rcvRttValid   bool
	rcvRttSeq     uint32
	tsRecent      uint64
	// backlogTail is the pure ACK last put on the socket's backlog
	// (while nothing was put there since: sock.backlogAppends is still
	// backlogTailMark), which tcp_add_backlog may merge the next one
	// into.
	backlogTail     *segment
	backlogTailMark int

	// unhashed: tcp_set_state(TCP_CLOSE) removed the socket from the
	// lookup tables; arriving segments find no socket.
	unhashed bool
	// tw is set when the socket became a timewait socket (tcp_time_wait);
	// twSubstate is FIN_WAIT2 or TIME_WAIT.
	tw         bool
	twSubstate tcpState
}

func tcpSk(sk *sock) *tcpSock { return sk.TCP.(*tcpSock) }

// segment is one TCP segment in flight: its sequence number, the ACK and
// window it carries (win in bytes, scaled), the sequence number the
// window update test uses (wl: the sender's snd_nxt), and its text: an
// skb (a clone of the sender's), or dupLen bytes a loss probe
// retransmits that the peer already has.
type segment struct {
	skb    *skBuff // payload and flags; nil for a pure ACK
	tsval  uint64  // the timestamp option (sched.opSeq when sent)
	tsecr  uint64  // and its echo
	seq    uint32
	ack    uint32
	win    int
	wl     uint32
	dupLen int
	psh    bool
	fin    bool
	rst    bool
}

// Connect implements TCP: the three-way handshake of a loopback
// connection, a the client, b the server (tcpEstablish).
func (r *refTCP) Connect(a, b *sock) {
	ta := &tcpSock{sk: a}
	tb := &tcpSock{sk: b}
	ta.peer, tb.peer = tb, ta
	for _, tp := range []*tcpSock{ta, tb} {
		tp.RcvNxt, tp.CopiedSeq = tcpISN, tcpISN
		tp.SndUna, tp.SndNxt, tp.WriteSeq = tcpISN, tcpISN, tcpISN
		tp.sk.TCP = tp
		tp.sk.State = tcpEstablished
		tp := tp
		tp.sk.releaseCb = func() { r.releaseCb(tp) }
	}
	r.tcpEstablish(ta, tb)
}

// tcpEstablish mirrors what the handshake sets up on each end
// (tcp_connect_init, tcp_openreq_init_rwin, tcp_select_initial_window,
// tcp_init_transfer → tcp_init_buffer_space, tcp_initialize_rcv_mss;
// net/ipv4/tcp_output.c, tcp_minisocks.c, tcp_input.c, v6.18): buffers at
// tcp_rmem[1] and tcp_wmem[1], a first window of the full space rounded
// down to the MSS of the SYN (the client's) or of the SYN-ACK less the
// timestamp (the server's), unscaled in the SYN-ACK; the client's third
// ACK already carries a scaled window (tcp_select_window).
func (r *refTCP) tcpEstablish(a, b *tcpSock) {
	r.k.reach(fnRefTCPTcpEstablish)
	c := r.conf()
	for _, tp := range []*tcpSock{a, b} {
		tp.sk.SkRcvbuf = c.Rmem[1]
		tp.sk.SkSndbuf = c.Wmem[1]
		tp.scalingRatio = 1 << (tcpRmemToWinScale - 1)
		tp.advmss = tcpAdvMSS
		tp.sndCwnd = tcpInitCwnd
		tp.sndSml = tcpISN
		tp.pushedSeq = tcpISN
		// The SYN and SYN-ACK carried timestamps: each end echoes the
		// other's from the handshake on.
		tp.tsRecent = r.k.s.opSeq
	}
	r.selectInitialWindow(a, r.tcpFullSpace(a), tcpMSSClamp)
	r.selectInitialWindow(b, r.tcpFullSpace(b), tcpAdvMSS)
	for _, tp := range []*tcpSock{a, b} {
		tp.rcvSsthresh = tp.rcvWnd
		tp.rcvWup = tp.RcvNxt
		tp.sndWscale = tp.peer.rcvWscale
	}
	// The SYN-ACK's window is not scaled. Header prediction is off on
	// the client with window scaling (tcp_finish_connect), on on the
	// server (tcp_rcv_state_process's SYN_RECV case: tcp_fast_path_on).
	a.sndWnd, a.sndWl1 = b.rcvWnd, b.SndNxt
	a.predWnd = -1
	for _, tp := range []*tcpSock{a, b} {
		tp.rcvMss = max(min(tcpAdvMSS, tp.rcvWnd/2, tcpMSSDefault), tcpMinMSS)
		r.initBufferSpace(tp)
	}
	a.maxWindow = a.sndWnd
	r.syncMSS(a)
	// The client's ACK of the SYN-ACK.
	b.sndWnd, b.sndWl1 = r.selectWindow(a), a.SndNxt
	b.maxWindow = b.sndWnd
	r.syncMSS(b)
	b.predWnd = b.sndWnd >> b.sndWscale
}

// xmit sends seg from tp to its peer through loopback: the NET_RX softirq
// delivers it (tcp_v4_rcv), inline unless a softirq is already running.
func (r *refTCP) xmit(tp *tcpSock, seg segment) {
	seg.tsval, seg.tsecr = r.k.s.opSeq, tp.tsRecent
	to := tp.peer
	r.k.s.raiseSoftirq("tcp_v4_rcv", func() {
		skbOrphanFragsRx(seg.skb) // __netif_receive_skb_core
		r.rcv(to, seg)
	})
}

// sendReset mirrors tcp_send_active_reset() (net/ipv4/tcp_output.c, v6.18):
// a RST at snd_nxt.
func (r *refTCP) sendReset(tp *tcpSock) {
	r.k.reach(fnRefTCPSendReset)
	if tp.peer == nil {
		return
	}
	r.xmit(tp, segment{rst: true, seq: tp.SndNxt})
}

// EpollinReady implements TCP (tcp_epollin_ready with rcvlowat target):
// enough bytes, or a window so closed that the peer cannot send more.
func (r *refTCP) EpollinReady(sk *sock, target int) bool {
	tp := tcpSk(sk)
	avail := int32(tp.RcvNxt - tp.CopiedSeq)
	if avail <= 0 {
		return false
	}
	return int(avail) >= target || sk.SkRmemAlloc > sk.SkRcvbuf-sk.SkRcvbuf>>3 || tp.receiveWindow() <= tp.rcvMss
}

// peerHeld returns the bytes sk's peer holds in its write queue with
// nothing in flight, no ACK on its way (none deferred, no segment on
// the peer's backlog) and the window open for the first of them: bytes
// a push with MSG_MORE corked (TCP_NAGLE_CORK) that only a later send
// without MSG_MORE will transmit. 0 when the peer is gone or owned.
func (r *refTCP) peerHeld(sk *sock) int {
	p := tcpSk(sk).peer
	if p == nil || p.tw || p.unhashed || p.sk.Owned || p.packetsOut > 0 || len(p.writeQueue) == 0 ||
		!r.sndWndTest(p, p.writeQueue[0], p.mssCache) {
		return 0
	}
	n := 0
	for _, skb := range p.writeQueue {
		n += skb.Len
	}
	return n
}

// Inq implements TCP (tcp_inq).
func (r *refTCP) Inq(sk *sock) int {
	tp := tcpSk(sk)
	answ := int(int32(tp.RcvNxt - tp.CopiedSeq))
	if answ != 0 && sk.SockDone {
		answ--
	}
	return answ
}

// StreamMemoryFree implements TCP: it mirrors sk_stream_memory_free()
// (include/net/sock.h, v6.18), the send queue's truesize
// (sk_wmem_queued) below sk_sndbuf.
func (r *refTCP) StreamMemoryFree(sk *sock) bool {
	r.k.reach(fnRefTCPStreamMemoryFree)
	return tcpSk(sk).streamMemoryFree()
}

// StreamIsWriteable implements TCP: it mirrors __sk_stream_is_writeable()
// (include/net/sock.h, v6.18) with wake 1:
// sk_stream_wspace() (sk_sndbuf less sk_wmem_queued) at least
// sk_stream_min_wspace() (half of sk_wmem_queued), and the memory free.
func (r *refTCP) StreamIsWriteable(sk *sock) bool {
	r.k.reach(fnRefTCPStreamIsWriteable)
	tp := tcpSk(sk)
	q := tp.wmemQueued
	return sk.SkSndbuf-q >= q>>1 && tp.streamMemoryFree()
}

// CopiedSeq implements tcp.
func (r *refTCP) CopiedSeq(sk *sock) uint32 { return tcpSk(sk).CopiedSeq }

// SetCopiedSeq implements tcp.
func (r *refTCP) SetCopiedSeq(sk *sock, seq uint32) { tcpSk(sk).CopiedSeq = seq }
