package linux

import "time"

// Transport is a TCP implementation the model can run on instead of its
// reference TCP (Config.Transport): package netstack implements it with
// gVisor. It is a byte-stream interface that names no model type; the
// model's side of the bridge (extTCP, tcp_ext.go) turns it into the
// model's TCP: skbs on sk_receive_queue, sequence numbers, callbacks
// raised as kernel contexts, the socket states.
//
// Contract. The model calls a Transport only from its scheduler, one
// call at a time, so the transport sees a single caller. Nothing it does
// may depend on the wall clock: its timers run on a clock that only
// Advance moves. After any call that may have sent or received segments
// the model calls Settle, and reads the endpoints only after that.
type Transport interface {
	// Dial makes one established connection (the trace's `conn A B`): a
	// connects, b is accepted.
	Dial() (a, b Endpoint, err error)
	// Settle runs the transport until it is quiescent: every segment
	// sent has been processed by its receiver, with every reply it drew,
	// and nothing will happen until the model calls again or moves the
	// clock.
	Settle() error
	// Advance moves the transport's clock forward by d, running the
	// timers that fall due (retransmissions, delayed ACKs, TIME_WAIT).
	Advance(d time.Duration) error
	// NextTimer returns how long until the transport's next timer is
	// due, and false if none is pending. The model's scheduler treats
	// it as one of its events: when nothing can run, virtual time
	// passes to it (and Advance fires it).
	NextTimer() (time.Duration, bool)
	// Close tears everything down; when it returns, no goroutine of the
	// transport is left. It reports a failure of the transport's own
	// (for example of a packet capture) that did not stop the run.
	Close() error
}

// HoldingTransport is a Transport that can keep segments in flight on
// its wire and deliver them one at a time (netstack's Links, on both of
// its topologies). In
// explore mode the bridge turns holding on after the first Dial, and the
// exploring scheduler counts the held segments as pending kernel work:
// a "kworker" pick with segments held delivers the oldest one (then the
// receive contexts it sets off run as further picks), as a softirq
// delivery of an in-flight segment is a candidate on refTCP
// (sched.holdSoftirq). Outside explore mode holding stays off and
// segments flow as they are sent.
//
// Contract, beyond Transport's: Dial completes its handshake whether or
// not segments are held (the handshake's segments are not held);
// Settle leaves held segments held.
type HoldingTransport interface {
	Transport
	// HoldSegments turns holding on or off. Off, segments arriving from
	// then on pass and the held ones stay held until DeliverOne.
	HoldSegments(on bool) error
	// HeldSegments returns how many segments are held in flight to
	// the endpoint to (every held segment when to is nil) and how many
	// payload bytes they carry.
	HeldSegments(to Endpoint) (segs, bytes int)
	// DeliverOne hands the segment held longest to its receiver. The
	// model settles the transport after it.
	DeliverOne() error
}

// Endpoint is one end of a Transport connection, a non-blocking socket.
// Errors match syscall.Errno values with errors.Is (errors.As to a
// syscall.Errno gives the errno).
type Endpoint interface {
	// Write queues as much of p as the send buffer takes; EAGAIN when it
	// takes nothing. more is MSG_MORE: hold a partial segment back for
	// the next write (TCP_CORK until a write without more). A
	// zero-length write without more sends what is held.
	Write(p []byte, more bool) (int, error)
	// Read moves (peek: copies) up to len(p) received bytes into p:
	// io.EOF at the end of the stream, EAGAIN with nothing to read,
	// ECONNRESET once after a reset.
	Read(p []byte, peek bool) (int, error)
	// ReadableBytes is the number of bytes Read can return now.
	ReadableBytes() int
	// Writable reports whether Write would take at least one byte (or
	// fail at once).
	Writable() bool
	// Shutdown shuts down the directions in how (ShutdownRead,
	// ShutdownWrite), as shutdown(2).
	Shutdown(how int) error
	// Close closes the endpoint (close(2)); rst closes it with
	// SO_LINGER{1, 0}: a RST instead of a FIN.
	Close(rst bool) error
	// Err returns and clears the pending socket error (SO_ERROR), nil if
	// none.
	Err() error
	// State is the protocol state by its Linux name (ESTABLISHED,
	// FIN_WAIT2, TIME_WAIT, CLOSE, ...).
	State() string
	// SetRcvBuf and SetSndBuf set SO_RCVBUF and SO_SNDBUF with the
	// value the program passed (the transport doubles it as Linux does).
	SetRcvBuf(n int) error
	SetSndBuf(n int) error
}

// The directions of Endpoint.Shutdown (the sk_shutdown bits).
const (
	ShutdownRead  = rcvShutdown
	ShutdownWrite = sendShutdown
)
