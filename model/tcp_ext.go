package model

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"
)

// extTCP implements the model's TCP on an external Transport (gVisor
// netstack, through package netstack): the transport carries the bytes,
// runs the TCP state machines, flow control and timers; the bridge owns
// the model side of every socket.
//
// Receive. After every transport step (a call that may have moved
// segments, then Transport.Settle) the bridge raises, for every socket,
// a NET_RX kernel context (rx) that runs like tcp_v4_rcv: on the socket's
// backlog when a task owns the socket, else at once. rx pulls the bytes
// the endpoint has made readable into skbs (pages of the kworker's page
// frag, the way a NIC driver allocates receive buffers), queues them on
// sk_receive_queue with the bridge's own rcv_nxt (gVisor exposes neither
// sequence numbers nor copied_seq; the bridge numbers the stream from
// tcpISN, as RefTCP does), turns the end of the stream into tcp_fin and a
// reset into tcp_reset, follows the endpoint's state, and calls
// sk_data_ready, sk_state_change, sk_error_report and sk_write_space as
// tcp_data_queue, tcp_fin, tcp_reset and tcp_check_space do. The shared
// receive paths (tcp_rcv.go) read the queue.
//
// The bridge takes bytes off the endpoint only while the socket's
// receive memory is under sk_rcvbuf (extRcvLimit): the rest waits in
// gVisor's receive buffer, whose window then closes, so that a sender
// blocks the way it does on Linux, through the transport's own flow
// control. FIONREAD and readability count both parts, and a reader
// (tcp_recvmsg, tcp_read_sock) first tops the queue up with what the
// endpoint holds (rcvTopUp), so that it reads what FIONREAD counted;
// once the peer's FIN or a reset reached the endpoint, rx takes
// everything. After every read that took bytes the transport settles
// again (the read may have opened the window).
//
// Send. sendmsg copies from the model's source into Endpoint.Write in
// chunks of at most tcpSizeGoal bytes and steps the transport after each,
// so the receiver's rx runs inside the sender's system call as loopback's
// softirq does; with the send buffer full it sleeps in
// sk_stream_wait_memory until rx finds the endpoint writable again and
// calls sk_write_space.
//
// Time. The model's virtual clock drives the transport's clock
// (Sched.onClock → Transport.Advance), so retransmission, delayed-ACK and
// TIME_WAIT timers fire when virtual time passes them; and the
// transport's next timer is an event of the scheduler (Sched.extTimer),
// so that when nothing else can happen virtual time passes to it (gVisor
// defers a sub-MSS send to a peer's small window to its retransmission
// timer, where loopback Linux sends at once).
//
// Unlike Linux (and unlike RefTCP):
//   - MSG_SPLICE_PAGES sends (SendPageLocked: splice into a socket, the
//     psock backlog's skb_send_sock) copy the page's bytes into the
//     endpoint: gVisor has no page-passing send. The receiver's skbs are
//     always fresh pages, never the sender's (loopback Linux hands the
//     sender's skb over).
//   - MSG_MORE corks the endpoint (TCP_CORK) for the write; a write
//     without it uncorks, and so does release_sock when bytes of the
//     same system call went out before (their ACK, processed there,
//     sends the held tail on Linux). Linux's TCP_NAGLE_CORK holds a
//     partial segment forever when nothing is in flight; gVisor's cork
//     lets it go when its cork timer (200 ms of virtual time) fires.
//   - shutdown(SHUT_RD) is not passed to gVisor, which resets a
//     connection shut for reading with unread data and then reads as at
//     EOF; Linux only sets RCV_SHUTDOWN, which the model does. The one
//     rule of Linux's that needs the transport, data reaching a
//     FIN_WAIT1/2 socket shut for reading, the bridge applies itself
//     (abortOnData).
//   - Sequence numbers are the bridge's (from tcpISN), not the wire's.
//   - gVisor frees send buffer as ACKs come in during a system call (the
//     bridge settles after every chunk); Linux processes the ACKs of a
//     task's own sends at release_sock, so a small SO_SNDBUF stops a
//     Linux sender sooner.
//   - A reset that arrives while the socket's receive memory is full is
//     seen only once the bytes before it are taken off the endpoint.
//   - Window selection, segment sizes, ACK timing and buffer autotuning
//     are gVisor's, not Linux's.
type extTCP struct {
	k  *kernel
	tr Transport
	// tagq holds, per receiving socket, the tags of the bytes its peer's
	// endpoint accepted and it has not taken yet (pushTags).
	tagq  map[*Sock][]Tag
	socks []*extSock // in creation order: rx runs in this order
	// broken is set at the first transport failure: the run stops with
	// ErrTransport (Sched.fatal) and the bridge calls the transport no
	// more.
	broken bool
	buf    []byte // scratch for reads and writes
	// hold is the transport's segment holding, used in explore mode
	// only (startHolding); holding is set once the transport holds.
	hold    HoldingTransport
	holding bool
}

// extSock is the bridge's per-socket TCP state (Sock.TCP).
type extSock struct {
	sk *Sock
	ep Endpoint

	// RcvNxt counts the bytes (and the FIN) taken off the endpoint,
	// CopiedSeq the ones the socket's readers consumed, WriteSeq the
	// bytes (and the FIN) the endpoint accepted; all from tcpISN.
	RcvNxt, CopiedSeq, WriteSeq uint32

	eof      bool // the end of the stream was taken off (tcp_fin ran)
	reset    bool // the endpoint reported a reset (tcp_reset ran)
	closed   bool // the model closed the endpoint (tcp_close)
	finSent  bool // shutdown(SHUT_WR) or close sent a FIN
	rxQueued bool // an rx context is raised and has not run yet
	inRx     bool // rx runs (a callback it made must not re-enter it)

	// MSG_MORE (see SendmsgLocked): sentOwned is set when bytes went
	// out uncorked while the current owner holds the socket lock (their
	// ACK is on the backlog at release_sock); uncorkAtRelease when a
	// MSG_MORE write followed, which that ACK's tcp_data_snd_check sends.
	sentOwned       bool
	uncorkAtRelease bool
}

func extSk(sk *Sock) *extSock { return sk.TCP.(*extSock) }

var (
	_ TCP          = (*extTCP)(nil)
	_ rcvTransport = (*extTCP)(nil)
)

// newExtTCP puts k on tr: k's TCP is the bridge and k's clock drives tr's.
func newExtTCP(k *kernel, tr Transport) *extTCP {
	x := &extTCP{k: k, tr: tr}
	k.tcp = x
	k.s.onClock = x.onClock
	k.s.extTimer = x.nextTimer
	if h, ok := tr.(HoldingTransport); ok && k.s.explore {
		x.hold = h
	}
	return x
}

// startHolding makes the transport hold its segments in flight, in
// explore mode on a HoldingTransport, and makes them pending kernel
// work of the scheduler (Sched.extHeld): the in-flight segments that
// RefTCP keeps as raised NET_RX work (Sched.holdSoftirq) are real
// segments on the transport's wire here, delivered one per "kworker"
// pick (deliverOne).
func (x *extTCP) startHolding() {
	if x.hold == nil || x.holding || x.broken {
		return
	}
	if err := x.hold.HoldSegments(true); err != nil {
		x.fail("hold", err)
		return
	}
	x.holding = true
	x.k.s.extHeld = x.heldSegments
	x.k.s.extDeliver = x.deliverOne
}

// heldSegments is the transport's held segments (Sched.extHeld).
func (x *extTCP) heldSegments() (segs, bytes int) {
	if x.broken {
		return 0, 0
	}
	return x.hold.HeldSegments(nil)
}

// heldFor returns the TCP segments (and their payload bytes) held in
// flight to sk: none on the reference TCP, whose in-flight segments are
// raised softirq work.
func (k *kernel) heldFor(sk *Sock) (segs, bytes int) {
	if x, ok := k.tcp.(*extTCP); ok {
		return x.heldFor(sk)
	}
	return 0, 0
}

// heldFor returns the segments (and their payload bytes) held in flight
// to sk.
func (x *extTCP) heldFor(sk *Sock) (segs, bytes int) {
	xs, ok := sk.TCP.(*extSock)
	if x.hold == nil || !x.holding || x.broken || !ok || xs.ep == nil {
		return 0, 0
	}
	return x.hold.HeldSegments(xs.ep)
}

// deliverOne is the arrival of the segment held longest (Sched.extDeliver):
// the receiving NIC takes it, and the receive processing it sets off
// (the socket's rx, tcp_v4_rcv) is raised as NET_RX work, which runs as
// the next "kworker" picks. It mirrors the driver's receive and
// napi_schedule() (include/linux/netdevice.h, v6.18) of one segment.
func (x *extTCP) deliverOne() {
	x.k.reach(fnExtTCPDeliverOne)
	if x.broken {
		return
	}
	if err := x.hold.DeliverOne(); err != nil {
		x.fail("deliver", err)
		return
	}
	x.step()
}

// fail records the first transport failure as the run's fatal error.
func (x *extTCP) fail(what string, err error) {
	if x.broken {
		return
	}
	x.broken = true
	x.k.s.setFatal(fmt.Errorf("%w: %s: %w", ErrTransport, what, err))
}

// errnoOf returns the errno an Endpoint error carries (EIO if none).
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	return errEIO
}

// scratch returns a buffer of n bytes, reused between calls.
func (x *extTCP) scratch(n int) []byte {
	if cap(x.buf) < n {
		x.buf = make([]byte, n)
	}
	return x.buf[:n]
}

// step runs the transport until it is quiescent after a call that may
// have moved segments, then raises the receive processing of every
// socket.
func (x *extTCP) step() {
	if x.broken {
		return
	}
	if err := x.tr.Settle(); err != nil {
		x.fail("settle", err)
		return
	}
	for _, xs := range x.socks {
		x.raiseRx(xs)
	}
}

// onClock follows the model's virtual clock (Sched.onClock).
func (x *extTCP) onClock(d time.Duration) {
	if x.broken || len(x.socks) == 0 {
		return
	}
	if err := x.tr.Advance(d); err != nil {
		x.fail("advance", err)
		return
	}
	x.step()
}

// nextTimer is the transport's next timer (Sched.extTimer).
func (x *extTCP) nextTimer() (time.Duration, bool) {
	if x.broken || len(x.socks) == 0 {
		return 0, false
	}
	return x.tr.NextTimer()
}

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
func extRcvLimit(sk *Sock) int { return sk.SkRcvbuf }

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
		if n > 0 && sk.SkShutdown&rcvShutdown != 0 && (sk.State == TCPFinWait1 || sk.State == TCPFinWait2) {
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
	skb := &SkBuff{Seq: xs.RcvNxt}
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
	skb := &SkBuff{Seq: xs.RcvNxt, EndSeq: xs.RcvNxt + 1, TCPFlags: tcphdrFIN}
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

// tcpDone mirrors tcp_done() (net/ipv4/tcp.c, v6.18): CLOSE, SHUTDOWN_MASK,
// sk_state_change (or, for an orphan, inet_csk_destroy_sock).
func (x *extTCP) tcpDone(xs *extSock) {
	x.k.reach(fnExtTCPTcpDone)
	if tcpDoneSock(xs.sk) {
		x.destroy(xs)
	}
}

// destroy mirrors inet_csk_destroy_sock() (net/ipv4/inet_connection_sock.c,
// v6.18): free what the socket holds.
func (x *extTCP) destroy(xs *extSock) {
	x.k.reach(fnExtTCPDestroy)
	x.k.purgeReceiveQueue(xs.sk)
}

// linuxState is the model state for the endpoint's state name.
//
// Unlike gVisor, whose endpoint stays in TIME_WAIT, Linux hands the
// connection to a timewait socket (tcp_time_wait) and the full socket is
// done (tcp_done: CLOSE); so is an orphan reaching FIN_WAIT2, which
// tcp_rcv_state_process turns into a FIN_WAIT2 timewait socket.
func linuxState(name string, dead bool) (TCPState, bool) {
	for st, n := range tcpStateNames {
		if n != name {
			continue
		}
		switch {
		case st == TCPTimeWait:
			st = TCPClose
		case st == TCPFinWait2 && dead:
			st = TCPClose
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
	if st == TCPClose && !xs.eof && !xs.reset && !xs.closed && xs.ep.ReadableBytes() > 0 {
		// The endpoint ended while bytes before its end are not taken
		// off yet; rx turns the end into tcp_fin or tcp_reset in
		// stream order.
		return
	}
	switch st {
	case TCPEstablished, TCPSynSent, TCPSynRecv, TCPListen:
		return // never re-entered: the endpoint only moves forward
	case TCPFinWait2:
		sk.SkShutdown |= sendShutdown
	case TCPClose:
		x.tcpDone(xs)
		return
	}
	sk.State = st
	if !sk.SockDead {
		sk.SkStateChange(sk)
	}
}

// Connect implements TCP: Transport.Dial makes the connection.
func (x *extTCP) Connect(a, b *Sock) {
	xa, xb := &extSock{sk: a}, &extSock{sk: b}
	for _, xs := range []*extSock{xa, xb} {
		xs.RcvNxt, xs.CopiedSeq, xs.WriteSeq = tcpISN, tcpISN, tcpISN
		xs.sk.TCP = xs
		xs.sk.releaseCb = func() { x.releaseCb(xs) }
	}
	if x.broken {
		return
	}
	ea, eb, err := x.tr.Dial()
	if err != nil {
		x.fail("dial", err)
		return
	}
	xa.ep, xb.ep = ea, eb
	a.State, b.State = TCPEstablished, TCPEstablished
	x.socks = append(x.socks, xa, xb)
	x.step()
	x.startHolding()
}

// extSendChunk is how much sendmsg hands the endpoint per Write: a
// loopback skb's payload (tcpSizeGoal), so that a receiver's skbs are cut
// much as Linux cuts them.
const extSendChunk = tcpSizeGoal

// sendPrologue mirrors the checks at the top of tcp_sendmsg_locked()
// (net/ipv4/tcp.c, v6.18); see RefTCP.sendPrologue.
func (x *extTCP) sendPrologue(sk *Sock) syscall.Errno {
	x.k.reach(fnExtTCPSendPrologue)
	if sk.State != TCPEstablished && sk.State != TCPCloseWait {
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
// v6.18): copy from src into the endpoint, waiting for send space in
// sk_stream_wait_memory unless MSG_DONTWAIT.
func (x *extTCP) SendmsgLocked(t *Task, sk *Sock, src *srcIter, flags int) (int, syscall.Errno) {
	xs := extSk(sk)
	to := maxTimeout
	if flags&msgDontwait != 0 {
		to = 0
	}
	copied := 0
	err := x.sendPrologue(sk)
	stalls := 0
	for err == 0 && src.left() > 0 {
		if x.broken {
			err = errEIO
			break
		}
		if !x.StreamMemoryFree(sk) {
			if err = x.k.skStreamWaitMemoryLocked(t, sk, &to); err != 0 {
				break
			}
			continue
		}
		n := min(src.left(), extSendChunk)
		buf := x.scratch(n)
		var tags []Tag
		if x.k.pages.prov {
			tags = make([]Tag, n)
		}
		src.copyToTagged(buf, tags)
		more := flags&msgMore != 0
		w, werr := xs.ep.Write(buf, more)
		if w < n {
			src.revert(n - w)
		}
		if tags != nil && w > 0 {
			x.pushTags(sk, tags[:w])
		}
		if w > 0 {
			// tcp_push: without MSG_MORE the bytes go out; with it,
			// TCP_NAGLE_CORK holds the partial segment, until the ACK
			// of what already went out in this system call, which
			// release_sock processes (RefTCP.tcpPush).
			if !more {
				xs.sentOwned = true
			} else if xs.sentOwned {
				xs.uncorkAtRelease = true
			}
		}
		copied += w
		xs.WriteSeq += uint32(w)
		x.step()
		switch {
		case werr == nil:
			stalls = 0
		case errnoOf(werr) == errEAGAIN:
			// Writable said yes but the endpoint took nothing: a
			// transport that contradicts itself would spin here.
			if stalls++; stalls > 1 && w == 0 {
				x.fail("write", fmt.Errorf("%s: endpoint writable but Write returns EAGAIN: %w", sk.Name, werr))
				err = errEIO
			}
		case copied > 0:
			// The endpoint was reset by what this system call sent
			// (a peer that closed answers data with a RST). On
			// Linux that RST waits on the backlog of the socket the
			// sender owns until release_sock, and sendmsg goes on
			// queueing, up to the send buffer, bytes the reset then
			// purges: the bridge counts them as accepted and drops
			// them. Unlike gVisor, which sees the reset at once.
			n := min(src.left(), max(sk.SkSndbuf-copied, 0))
			src.copyTo(x.scratch(n))
			copied += n
			xs.WriteSeq += uint32(n)
			err = errEPIPE
		default:
			// The endpoint is shut or reset; rx reports why
			// (sk_err), as sk_stream_error does.
			err = errEPIPE
		}
	}
	if copied > 0 {
		return copied, errOK
	}
	return 0, skStreamError(sk, err)
}

// releaseCb runs at release_sock (tcp_release_cb and the backlog's
// ACKs): a MSG_MORE tail held while bytes of the same system call were
// in flight goes out now (a zero-length write without more uncorks).
// The receive processing it sets off for this socket runs as a kernel
// context, once the socket is no longer owned (the softirq that waited
// on the socket's spinlock).
func (x *extTCP) releaseCb(xs *extSock) {
	xs.sentOwned = false
	if !xs.uncorkAtRelease {
		return
	}
	xs.uncorkAtRelease = false
	if x.broken || xs.closed {
		return
	}
	if _, err := xs.ep.Write(nil, false); err != nil {
		return // shut or reset meanwhile: rx reports it
	}
	if err := x.tr.Settle(); err != nil {
		x.fail("settle", err)
		return
	}
	for _, o := range x.socks {
		if o != xs {
			x.raiseRx(o)
		}
	}
	if !xs.rxQueued {
		xs.rxQueued = true
		x.k.s.queueWork("netstack_rcv", func() {
			xs.sk.bhRun(func() {
				xs.rxQueued = false
				x.rx(xs)
			})
		})
	}
}

// SendPageLocked implements TCP for MSG_SPLICE_PAGES.
//
// Unlike Linux, the page's bytes are copied into the endpoint (gVisor
// takes no page references); the caller's page is untouched and keeps
// its references.
func (x *extTCP) SendPageLocked(t *Task, sk *Sock, p *Page, off, n int, flags int) (int, syscall.Errno) {
	b := append([]byte(nil), p.bytes(off, n)...)
	var tags []Tag
	if pt := p.tagsAt(off, n); pt != nil {
		tags = append([]Tag(nil), pt...)
	}
	return x.SendmsgLocked(t, sk, newSrcKernel(b, tags), flags)
}

// Recvmsg implements TCP (tcp_recvmsg → tcp_recvmsg_locked, v6.18, on the
// shared receive path).
func (x *extTCP) Recvmsg(t *Task, sk *Sock, dst *iovIter, flags int) (int, syscall.Errno) {
	sk.lockSock(t)
	x.rcvTopUp(sk)
	n, err := x.k.tcpRecvmsgLocked(x, t, sk, dst, flags)
	sk.releaseSock()
	return n, err
}

// ReadSock implements TCP (tcp_read_sock, v6.18).
func (x *extTCP) ReadSock(sk *Sock, cursor *uint32, desc *ReadDesc, actor func(desc *ReadDesc, skb *SkBuff, off, n int) int) int {
	x.rcvTopUp(sk)
	return x.k.tcpReadSock(x, sk, cursor, desc, actor)
}

// ReadSkb implements TCP (tcp_read_skb, v6.18).
func (x *extTCP) ReadSkb(sk *Sock, actor func(sk *Sock, skb *SkBuff) int) int {
	return x.k.tcpReadSkb(sk, actor)
}

// rcvTopUp runs before a reader looks at the queue: every byte the
// endpoint has received joins it (rx with no limit), so that a read sees
// all that FIONREAD and poll count, as on Linux, where everything
// received is on sk_receive_queue. The limit of rx only keeps bytes in
// the endpoint, so that its window closes, while nobody reads.
func (x *extTCP) rcvTopUp(sk *Sock) {
	if xs := extSk(sk); x.pending(xs) > 0 {
		x.rxLimit(xs, true)
	}
}

// copiedSeqPtr implements rcvTransport.
func (x *extTCP) copiedSeqPtr(sk *Sock) *uint32 { return &extSk(sk).CopiedSeq }

// pending is what the endpoint holds beyond what rx took off it.
func (x *extTCP) pending(xs *extSock) int {
	if x.broken || xs.ep == nil || xs.closed || xs.eof || xs.reset {
		return 0
	}
	return xs.ep.ReadableBytes()
}

// Inq implements TCP (tcp_inq): the unread bytes of the queue and of the
// endpoint.
func (x *extTCP) Inq(sk *Sock) int {
	xs := extSk(sk)
	answ := int(int32(xs.RcvNxt - xs.CopiedSeq))
	if answ != 0 && sk.SockDone {
		answ--
	}
	return answ + x.pending(xs)
}

// EpollinReady implements TCP (tcp_epollin_ready): enough unread bytes,
// or a receive memory so full that no more will come.
func (x *extTCP) EpollinReady(sk *Sock, target int) bool {
	xs := extSk(sk)
	avail := int(int32(xs.RcvNxt-xs.CopiedSeq)) + x.pending(xs)
	if avail <= 0 {
		return false
	}
	return avail >= target || sk.SkRmemAlloc >= extRcvLimit(sk)
}

// writable reports what the endpoint says about send space; a socket
// without a usable endpoint is "writable" so that the error surfaces.
func (x *extTCP) writable(sk *Sock) bool {
	xs := extSk(sk)
	if x.broken || xs.ep == nil || xs.closed {
		return true
	}
	return xs.ep.Writable()
}

// StreamMemoryFree implements TCP: the endpoint's send buffer has room.
func (x *extTCP) StreamMemoryFree(sk *Sock) bool { return x.writable(sk) }

// StreamIsWriteable implements TCP.
//
// Unlike Linux, whose sk_stream_is_writeable wants a third of the send
// buffer free, it is gVisor's writability.
func (x *extTCP) StreamIsWriteable(sk *Sock) bool { return x.writable(sk) }

// CopiedSeq implements TCP.
func (x *extTCP) CopiedSeq(sk *Sock) uint32 { return extSk(sk).CopiedSeq }

// SetCopiedSeq implements TCP.
func (x *extTCP) SetCopiedSeq(sk *Sock, seq uint32) { extSk(sk).CopiedSeq = seq }

// WriteSeq returns write_seq (splice_seq.go's ring_seq boundary).
func (x *extTCP) WriteSeq(sk *Sock) uint32 { return extSk(sk).WriteSeq }

// EatSkb implements TCP: the copied_seq part of tcp_eat_skb() (6.4+).
func (x *extTCP) EatSkb(sk *Sock, skb *SkBuff) {
	if skb == nil || skb.Len == 0 || skb.BpfStrparser {
		return
	}
	extSk(sk).CopiedSeq += uint32(skb.Len)
	x.CleanupRbuf(sk, skb.Len)
}

// RcvSpaceAdjust implements TCP: the transport tunes its own buffers.
func (x *extTCP) RcvSpaceAdjust(sk *Sock) {}

// CleanupRbuf implements TCP: the reader freed receive memory, so rx may
// take more bytes off the endpoint (through the backlog while the reader
// owns the socket, as Linux's next segments arrive).
func (x *extTCP) CleanupRbuf(sk *Sock, copied int) {
	xs := extSk(sk)
	if x.pending(xs) > 0 {
		x.raiseRx(xs)
	}
}

// DataReady implements TCP (tcp_data_ready).
func (x *extTCP) DataReady(sk *Sock) {
	if x.EpollinReady(sk, sk.SkRcvlowat) || sk.SockDone {
		sk.SkDataReady(sk)
	}
}

// Shutdown implements TCP (tcp_shutdown): SEND_SHUTDOWN sends a FIN in
// the states that allow it (tcp_close_state); RCV_SHUTDOWN is the
// model's alone (see extTCP).
func (x *extTCP) Shutdown(t *Task, sk *Sock, how int) {
	xs := extSk(sk)
	if how&sendShutdown == 0 || x.broken || xs.ep == nil {
		return
	}
	switch sk.State {
	case TCPEstablished, TCPSynSent, TCPSynRecv, TCPCloseWait:
	default:
		return
	}
	if tcpCloseState(sk) {
		if err := xs.ep.Shutdown(ShutdownWrite); err != nil && !resetUnderneath(err) {
			x.fail("shutdown", fmt.Errorf("%s: %w", sk.Name, err))
			return
		}
		xs.finSent = true
		xs.WriteSeq++
	}
	x.step()
}

// resetUnderneath reports whether err says the transport already took a
// reset the model has not yet received (its receive context is still to
// run): as when a RST is in flight on Linux, the FIN goes out into a
// connection that the arriving reset then ends.
func resetUnderneath(err error) bool {
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Close implements TCP (tcp_close → __tcp_close, v6.18): unread data
// makes it a reset, as does SO_LINGER{1,0} (tcp_disconnect); else a FIN
// after the queued data. The endpoint is closed in the same way.
func (x *extTCP) Close(t *Task, sk *Sock) {
	xs := extSk(sk)
	sk.lockSock(t)
	sk.SkShutdown = shutdownMask
	unread := x.pending(xs) + x.k.purgeReceiveQueue(sk)
	rst := false
	if sk.State != TCPClose {
		switch {
		case unread > 0:
			sk.State = TCPClose
			rst = true
		case sk.SockLinger && sk.Lingertime == 0:
			// tcp_disconnect.
			old := sk.State
			sk.State = TCPClose
			switch old {
			case TCPEstablished, TCPCloseWait, TCPFinWait1, TCPFinWait2, TCPSynRecv:
				rst = true
				sk.SkErr = errECONNRESET
			case TCPClosing, TCPLastAck:
				rst = !xs.finSent
			}
			xs.CopiedSeq = xs.RcvNxt
			sk.SkShutdown = 0
			sk.SockDone = false
		default:
			if tcpCloseState(sk) {
				xs.finSent = true
				xs.WriteSeq++
			}
		}
	}
	sk.SockDead = true
	if xs.ep != nil && !xs.closed && !x.broken {
		xs.closed = true
		if err := xs.ep.Close(rst); err != nil {
			x.fail("close", fmt.Errorf("%s: %w", sk.Name, err))
		}
		x.step()
	}
	sk.releaseSock()
	if sk.State == TCPClose {
		x.destroy(xs)
	}
}

// ExpireOrphans implements TCP: every orphan not yet CLOSE is done with.
//
// Unlike Linux, which gets there through its timers, it acts at once;
// the endpoints themselves go with the transport (Transport.Close).
func (x *extTCP) ExpireOrphans() {
	for _, xs := range x.socks {
		if sk := xs.sk; sk.SockDead && sk.State != TCPClose {
			x.tcpDone(xs)
		}
	}
}

// setBuf applies SO_RCVBUF or SO_SNDBUF (the program's value v) to the
// endpoint as well as to the model's socket.
func (x *extTCP) setBuf(sk *Sock, rcv bool, v int) {
	xs, ok := sk.TCP.(*extSock)
	if !ok || xs.ep == nil || x.broken || xs.closed {
		return
	}
	var err error
	if rcv {
		err = xs.ep.SetRcvBuf(v)
	} else {
		err = xs.ep.SetSndBuf(v)
	}
	if err != nil {
		x.fail("setsockopt", fmt.Errorf("%s: %w", sk.Name, err))
		return
	}
	x.step()
}

// closeTransport ends the transport at the end of a run.
func (x *extTCP) closeTransport() error {
	if err := x.tr.Close(); err != nil {
		return fmt.Errorf("%w: close: %w", ErrTransport, err)
	}
	return nil
}

// pushTags queues the tags of bytes sk's endpoint accepted, for its peer
// to take as they arrive (popTags): the endpoint carries bytes, not tags,
// in order. Simulator state, with Config.Provenance only.
func (x *extTCP) pushTags(sk *Sock, tags []Tag) {
	peer := x.k.peerOf(sk)
	if peer == nil {
		return
	}
	if x.tagq == nil {
		x.tagq = map[*Sock][]Tag{}
	}
	x.tagq[peer] = append(x.tagq[peer], tags...)
}

// popTags fills dst with the tags of the next bytes sk receives (zero
// when none are queued).
func (x *extTCP) popTags(sk *Sock, dst []Tag) {
	q := x.tagq[sk]
	n := copy(dst, q)
	clear(dst[n:])
	x.tagq[sk] = q[n:]
}

// tcpQueueRcv mirrors tcp_queue_rcv() (net/ipv4/tcp_input.c, v6.18):
// coalesce into the tail skb when tcp_try_coalesce allows (contiguous, no
// FIN on the tail, the fragments fit MAX_SKB_FRAGS), else queue the skb.
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
