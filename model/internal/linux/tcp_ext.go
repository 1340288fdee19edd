package linux

import (
	"errors"
	"fmt"
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
// tcpISN, as refTCP does), turns the end of the stream into tcp_fin and a
// reset into tcp_reset, follows the endpoint's state, and calls
// sk_data_ready, sk_state_change, sk_error_report and sk_write_space as
// tcp_data_queue, tcp_fin, tcp_reset and tcp_check_space do. The shared
// receive paths (tcp_read.go) read the queue.
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
// (external.onClock → Transport.Advance), so retransmission, delayed-ACK
// and TIME_WAIT timers fire when virtual time passes them; and the
// transport's next timer is an event of the scheduler (external.nextTimer),
// so that when nothing else can happen virtual time passes to it (gVisor
// defers a sub-MSS send to a peer's small window to its retransmission
// timer, where loopback Linux sends at once).
//
// Unlike Linux (and unlike refTCP):
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
	tagq  map[*sock][]Tag
	socks []*extSock // in creation order: rx runs in this order
	// broken is set at the first transport failure: the run stops with
	// ErrTransport (sched.fatal) and the bridge calls the transport no
	// more.
	broken bool
	buf    []byte // scratch for reads and writes
	// hold is the transport's segment holding, used in explore mode
	// only (startHolding); holding is set once the transport holds.
	hold    HoldingTransport
	holding bool
}

// extSock is the bridge's per-socket TCP state (sock.TCP).
type extSock struct {
	sk *sock
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

func extSk(sk *sock) *extSock { return sk.TCP.(*extSock) }

var (
	_ tcp          = (*extTCP)(nil)
	_ rcvTransport = (*extTCP)(nil)
	_ external     = (*extTCP)(nil)
)

// newExtTCP puts k on tr: k's TCP is the bridge and k's clock drives tr's.
func newExtTCP(k *kernel, tr Transport) *extTCP {
	x := &extTCP{k: k, tr: tr}
	k.tcp = x
	k.s.ext = x
	if h, ok := tr.(HoldingTransport); ok && k.s.explore {
		x.hold = h
	}
	return x
}

// startHolding makes the transport hold its segments in flight, in
// explore mode on a HoldingTransport, and makes them pending kernel
// work of the scheduler (heldSegments reports them from now on): the
// in-flight segments that refTCP keeps as raised NET_RX work
// (sched.holdSoftirq) are real segments on the transport's wire here,
// delivered one per "kworker" pick (deliverOne).
func (x *extTCP) startHolding() {
	if x.hold == nil || x.holding || x.broken {
		return
	}
	if err := x.hold.HoldSegments(true); err != nil {
		x.fail("hold", err)
		return
	}
	x.holding = true
}

// heldSegments is the transport's held segments (external.heldSegments):
// none until startHolding made the transport hold them.
func (x *extTCP) heldSegments() (segs, bytes int) {
	if !x.holding || x.broken {
		return 0, 0
	}
	return x.hold.HeldSegments(nil)
}

// heldFor returns the TCP segments (and their payload bytes) held in
// flight to sk: none on the reference TCP, whose in-flight segments are
// raised softirq work.
func (k *kernel) heldFor(sk *sock) (segs, bytes int) {
	if x, ok := k.tcp.(*extTCP); ok {
		return x.heldFor(sk)
	}
	return 0, 0
}

// heldFor returns the segments (and their payload bytes) held in flight
// to sk.
func (x *extTCP) heldFor(sk *sock) (segs, bytes int) {
	xs, ok := sk.TCP.(*extSock)
	if x.hold == nil || !x.holding || x.broken || !ok || xs.ep == nil {
		return 0, 0
	}
	return x.hold.HeldSegments(xs.ep)
}

// deliverOne is the arrival of the segment held longest
// (external.deliverOne): the receiving NIC takes it, and the receive
// processing it sets off (the socket's rx, tcp_v4_rcv) is raised as
// NET_RX work, which runs as the next "kworker" picks. It mirrors the
// driver's receive and napi_schedule() (include/linux/netdevice.h,
// v6.18) of one segment.
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

// onClock follows the model's virtual clock (external.onClock).
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

// nextTimer is the transport's next timer (external.nextTimer).
func (x *extTCP) nextTimer() (time.Duration, bool) {
	if x.broken || len(x.socks) == 0 {
		return 0, false
	}
	return x.tr.NextTimer()
}

// Connect implements TCP: Transport.Dial makes the connection.
func (x *extTCP) Connect(a, b *sock) {
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
	a.State, b.State = tcpEstablished, tcpEstablished
	x.socks = append(x.socks, xa, xb)
	x.step()
	x.startHolding()
}

// setBuf applies SO_RCVBUF or SO_SNDBUF (the program's value v) to the
// endpoint as well as to the model's socket.
func (x *extTCP) setBuf(sk *sock, rcv bool, v int) {
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
func (x *extTCP) pushTags(sk *sock, tags []Tag) {
	peer := x.k.peerOf(sk)
	if peer == nil {
		return
	}
	if x.tagq == nil {
		x.tagq = map[*sock][]Tag{}
	}
	x.tagq[peer] = append(x.tagq[peer], tags...)
}

// popTags fills dst with the tags of the next bytes sk receives (zero
// when none are queued).
func (x *extTCP) popTags(sk *sock, dst []Tag) {
	q := x.tagq[sk]
	n := copy(dst, q)
	clear(dst[n:])
	x.tagq[sk] = q[n:]
}
