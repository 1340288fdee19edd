package model

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

// readDesc mirrors read_descriptor_t (include/linux/net.h, v6.18): Count is
// what the reader still wants; the actor decrements it.
type readDesc struct {
	Count int
	Error int
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
	r.k.s.raiseSoftirq("tcp_v4_rcv", func() { r.rcv(to, seg) })
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

// DataReady implements TCP: tcp_data_ready() calls sk_data_ready when
// there is data to read or a FIN.
func (r *refTCP) DataReady(sk *sock) {
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

// timeWait mirrors tcp_time_wait() (net/ipv4/tcp_minisocks.c, v6.18): a
// timewait socket takes over the connection and the full socket is done (a
// user still holding it sees CLOSE).
func (r *refTCP) timeWait(tp *tcpSock, substate tcpState) {
	r.k.reach(fnRefTCPTimeWait)
	tw := &tcpSock{sk: tp.sk, peer: tp.peer, RcvNxt: tp.RcvNxt, SndNxt: tp.SndNxt,
		SndUna: tp.SndUna, WriteSeq: tp.WriteSeq, tw: true, twSubstate: substate,
		rcvWnd: tp.receiveWindow(), rcvWscale: tp.rcvWscale}
	if tp.peer != nil {
		tp.peer.peer = tw
	}
	r.tcpDone(tp)
}

// ExpireOrphans implements tcp.
//
// Unlike Linux, which gets there through timers the model lacks, it acts
// at once.
func (r *refTCP) ExpireOrphans() {
	for _, sk := range r.k.sockSeq {
		if tp, ok := sk.TCP.(*tcpSock); ok && sk.SockDead && sk.State != tcpClose {
			r.tcpDone(tp)
		}
	}
}

// tcpDone mirrors tcp_done() (net/ipv4/tcp.c, v6.18): CLOSE, SHUTDOWN_MASK,
// wake the user (or destroy an orphan).
func (r *refTCP) tcpDone(tp *tcpSock) {
	r.k.reach(fnRefTCPTcpDone)
	tp.unhashed = true
	if tcpDoneSock(tp.sk) {
		r.destroy(tp)
	}
}

// destroy mirrors inet_csk_destroy_sock() (net/ipv4/inet_connection_sock.c,
// v6.18): free what the socket holds.
func (r *refTCP) destroy(tp *tcpSock) {
	r.k.reach(fnRefTCPDestroy)
	r.k.purgeReceiveQueue(tp.sk)
	r.writeQueuePurge(tp)
}

// tcpReset mirrors tcp_reset() and tcp_done_with_error()
// (net/ipv4/tcp_input.c, v6.18).
func (r *refTCP) tcpReset(tp *tcpSock) {
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

// writeQueuePurge mirrors tcp_write_queue_purge() (net/ipv4/tcp.c, v6.18).
func (r *refTCP) writeQueuePurge(tp *tcpSock) {
	r.k.reach(fnRefTCPWriteQueuePurge)
	tp.sk.memUncharge(tp.wmemQueued)
	for _, skb := range tp.rtxQueue {
		skbHeadRelease(skb)
		r.k.pages.kfreeSkb(skb)
	}
	for _, skb := range tp.writeQueue {
		r.k.pages.kfreeSkb(skb)
	}
	tp.writeQueue, tp.rtxQueue = nil, nil
	tp.wmemQueued, tp.packetsOut = 0, 0
	tp.SndUna, tp.SndNxt = tp.WriteSeq, tp.WriteSeq
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

// StreamMemoryFree implements TCP: sk_stream_memory_free(), the send
// queue's truesize (sk_wmem_queued) below sk_sndbuf.
func (r *refTCP) StreamMemoryFree(sk *sock) bool {
	return tcpSk(sk).streamMemoryFree()
}

// StreamIsWriteable implements TCP: __sk_stream_is_writeable(sk, 1):
// sk_stream_wspace() (sk_sndbuf less sk_wmem_queued) at least
// sk_stream_min_wspace() (half of sk_wmem_queued), and the memory free.
func (r *refTCP) StreamIsWriteable(sk *sock) bool {
	tp := tcpSk(sk)
	q := tp.wmemQueued
	return sk.SkSndbuf-q >= q>>1 && tp.streamMemoryFree()
}

// CopiedSeq implements tcp.
func (r *refTCP) CopiedSeq(sk *sock) uint32 { return tcpSk(sk).CopiedSeq }

// SetCopiedSeq implements tcp.
func (r *refTCP) SetCopiedSeq(sk *sock, seq uint32) { tcpSk(sk).CopiedSeq = seq }

// EatSkb implements TCP: the copied_seq part of tcp_eat_skb() (6.4+),
// then the window update of __tcp_cleanup_rbuf.
func (r *refTCP) EatSkb(sk *sock, skb *skBuff) {
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

// SendmsgLocked implements TCP (tcp_sendmsg_locked, net/ipv4/tcp.c,
// v6.18): copy into the task's page frag (sendLocked).
func (r *refTCP) SendmsgLocked(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno) {
	sk.sockOwnedByMe(t)
	return r.sendLocked(t, sk, flags, src.left(), func(skb *skBuff, max int) (int, bool) {
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
func (r *refTCP) SendPageLocked(t *task, sk *sock, p *page, off, n int, flags int) (int, syscall.Errno) {
	sk.sockOwnedByMe(t)
	done := 0
	return r.sendLocked(t, sk, flags, n, func(skb *skBuff, max int) (int, bool) {
		if !skb.canAppendFrag(p, off+done) {
			return 0, false
		}
		skb.appendFrag(p, off+done, max)
		done += max
		return max, true
	})
}

// sendLocked mirrors the loop of tcp_sendmsg_locked() (net/ipv4/tcp.c,
// v6.18) with fill as the copy step: fill the tail skb to size_goal, a
// new skb (its head charged to sk_wmem_queued) while sk_wmem_queued is
// below sk_sndbuf, processing the ACKs on the socket's own backlog
// every 16 new skbs (sk_flush_backlog, which lets the size goal follow
// the peer's window); a full skb at the send head goes at once
// (tcp_push_one), and past half the largest window a push is forced.
// Out of send space it pushes what it has and waits
// (sk_stream_wait_memory).
func (r *refTCP) sendLocked(t *task, sk *sock, flags, size int, fill func(skb *skBuff, max int) (int, bool)) (int, syscall.Errno) {
	r.k.reach(fnRefTCPSendLocked)
	sk.sockOwnedByMe(t)
	tp := tcpSk(sk)
	to := maxTimeout
	if flags&msgDontwait != 0 {
		to = 0
	}
	copied := 0
	processBacklog := 0
	var err syscall.Errno
	mss, sizeGoal := r.sendMSS(tp)
	if err = r.k.tcpSendPrologue(sk); err != 0 {
		return r.sendError(tp, copied, flags, mss, err)
	}
	for copied < size {
		var skb *skBuff
		copy := 0
		if n := len(tp.writeQueue); n > 0 {
			skb = tp.writeQueue[n-1]
			copy = sizeGoal - skb.Len
			if skb.TCPFlags&tcphdrFIN != 0 {
				copy = 0
			}
		}
		if copy <= 0 {
			if !tp.streamMemoryFree() {
				if err = r.waitForSpace(t, tp, flags, copied, &to); err != 0 {
					return r.sendError(tp, copied, flags, mss, err)
				}
				mss, sizeGoal = r.sendMSS(tp)
				continue
			}
			if processBacklog >= 16 {
				processBacklog = 0
				if sk.flushBacklog() {
					// restart: the ACKs may have changed the MSS.
					mss, sizeGoal = r.sendMSS(tp)
					if err = r.k.tcpSendPrologue(sk); err != 0 {
						return r.sendError(tp, copied, flags, mss, err)
					}
					continue
				}
			}
			skb = r.streamAllocSkb(tp)
			processBacklog++
			copy = sizeGoal
		}
		copy = min(copy, size-copied)
		n, ok := fill(skb, copy)
		if !ok {
			// MAX_SKB_FRAGS: tcp_mark_push, then a new segment.
			tp.markPush(skb)
			if !tp.streamMemoryFree() {
				if err = r.waitForSpace(t, tp, flags, copied, &to); err != 0 {
					return r.sendError(tp, copied, flags, mss, err)
				}
				mss, sizeGoal = r.sendMSS(tp)
				continue
			}
			r.streamAllocSkb(tp)
			processBacklog++
			continue
		}
		tp.wmemQueued += n
		sk.memSchedule(n) // tcp_wmem_schedule
		sk.memCharge(n)
		skb.EndSeq += uint32(n)
		tp.WriteSeq += uint32(n)
		copied += n
		if copied == size {
			break
		}
		if skb.Len < sizeGoal {
			continue
		}
		if tp.forcedPush() {
			tp.markPush(skb)
			r.pushPendingFrames(tp, mss, tcpNaglePush)
		} else if skb == tp.sendHead() {
			r.pushOne(tp, mss)
		}
	}
	if copied > 0 {
		r.tcpPush(tp, flags, mss, tp.nonagle)
	}
	return copied, errOK
}

// waitForSpace is tcp_sendmsg_locked's wait_for_space: SOCK_NOSPACE, the
// empty skb dropped, what was copied pushed, then sk_stream_wait_memory.
func (r *refTCP) waitForSpace(t *task, tp *tcpSock, flags, copied int, to *timeo) syscall.Errno {
	tp.sk.nospace = true
	r.removeEmptySkb(tp)
	if copied > 0 {
		mss, _ := r.sendMSS(tp)
		r.tcpPush(tp, flags&^msgMore, mss, tcpNaglePush)
	}
	return r.k.skStreamWaitMemoryLocked(t, tp.sk, to)
}

// sendError is tcp_sendmsg_locked's do_error: what was copied is pushed
// and returned, else the error (sk_stream_error).
func (r *refTCP) sendError(tp *tcpSock, copied, flags, mss int, err syscall.Errno) (int, syscall.Errno) {
	r.removeEmptySkb(tp)
	if copied > 0 {
		r.tcpPush(tp, flags, mss, tp.nonagle)
		return copied, errOK
	}
	return 0, skStreamError(tp.sk, err)
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

// Shutdown implements TCP (tcp_shutdown): send a FIN for SEND_SHUTDOWN in
// the states that allow it.
func (r *refTCP) Shutdown(t *task, sk *sock, how int) {
	if how&sendShutdown == 0 {
		return
	}
	switch sk.State {
	case tcpEstablished, tcpSynSent, tcpSynRecv, tcpCloseWait:
		if r.closeState(sk) {
			r.sendFin(tcpSk(sk))
		}
	}
}

// closeState mirrors tcp_close_state() (net/ipv4/tcp.c, v6.18): the state
// after a close, and whether a FIN must be sent.
func (r *refTCP) closeState(sk *sock) bool {
	r.k.reach(fnRefTCPCloseState)
	old := sk.State
	fin := tcpCloseState(sk)
	if sk.State == tcpClose && old != tcpClose {
		tcpSk(sk).unhashed = true
	}
	return fin
}

// sendFin mirrors tcp_send_fin() (net/ipv4/tcp_output.c, v6.18): the FIN
// rides on the last unsent skb, or goes alone in a new skb (its head
// charged to sk_wmem_queued).
func (r *refTCP) sendFin(tp *tcpSock) {
	r.k.reach(fnRefTCPSendFin)
	tp.finQueued = true
	if n := len(tp.writeQueue); n > 0 {
		tail := tp.writeQueue[n-1]
		tail.TCPFlags |= tcphdrFIN
		tail.EndSeq++
	} else {
		skb := &skBuff{Seq: tp.WriteSeq, EndSeq: tp.WriteSeq + 1, TCPFlags: tcphdrFIN, Truesize: r.conf().SkbHeadTruesize}
		tp.writeQueue = append(tp.writeQueue, skb)
		tp.wmemQueued += skb.Truesize
		tp.sk.memSchedule(skb.Truesize)
		tp.sk.memCharge(skb.Truesize)
	}
	tp.WriteSeq++
	r.pushPendingFrames(tp, tp.mssCache, tcpNagleOff)
}

// Second bug zoo: the mutations of this file (mutation.go).
var (
	mutCloseUnreadOffByOne = registerMutation("close-unread-off-by-one",
		"__tcp_close tests data_was_unread > 1 for > 0: a close with one unread byte sends a FIN, not a RST")
	mutPollShutdownNoIn = registerMutation("poll-shutdown-no-in",
		"tcp_poll reports EPOLLRDHUP without EPOLLIN for RCV_SHUTDOWN: a poller never sees the EOF as readable")
)

// Close implements TCP (tcp_close → __tcp_close, v6.18).
func (r *refTCP) Close(t *task, sk *sock) {
	tp := tcpSk(sk)
	sk.lockSock(t)
	sk.SkShutdown = shutdownMask
	dataWasUnread := r.k.purgeReceiveQueue(sk)
	state := sk.State
	if sk.State != tcpClose {
		switch {
		case dataWasUnread > 1 || dataWasUnread == 1 && !r.k.mutated(mutCloseUnreadOffByOne):
			sk.State = tcpClose
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
	if state != tcpClose && sk.State == tcpClose {
		r.destroy(tp)
		return
	}
	if sk.State == tcpFinWait2 {
		r.timeWait(tp, tcpFinWait2)
		return
	}
	if sk.State == tcpClose {
		r.destroy(tp)
	}
}

// disconnect mirrors tcp_disconnect() (net/ipv4/tcp.c, v6.18) as
// SO_LINGER{1,0} close uses it.
func (r *refTCP) disconnect(tp *tcpSock) {
	r.k.reach(fnRefTCPDisconnect)
	sk := tp.sk
	old := sk.State
	sk.State = tcpClose
	tp.unhashed = true
	switch old {
	case tcpEstablished, tcpCloseWait, tcpFinWait1, tcpFinWait2, tcpSynRecv:
		r.sendReset(tp)
		sk.SkErr = errECONNRESET
	case tcpClosing, tcpLastAck:
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
	if sk.SkErr != 0 {
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
