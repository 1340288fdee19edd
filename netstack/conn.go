package netstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// conn is one end of a TCP connection: a gVisor endpoint made directly
// with stack.NewEndpoint (not through gonet), so that linger, Abort and
// the protocol state are reachable.
//
// Read, Peek and Write never block: like a socket with O_NONBLOCK they
// fail with an error matching syscall.EAGAIN when they cannot proceed.
// ReadFull and WriteAll block (until done, a failure, or ctx's end),
// waiting on the endpoint's readiness. Every failure of gVisor is an
// *sockOpError whose errno matches with errors.Is (syscall.ECONNRESET, ...).
//
// Life cycle: the conn owns its endpoint until Close or Abort; after
// that, data operations fail with syscall.EBADF (as on a closed fd) while
// State and Readiness still observe the endpoint, which gVisor keeps
// until the connection is gone (FIN_WAIT2, TIME_WAIT, ...). The
// topology's Close aborts endpoints still open. Methods are safe for
// concurrent use, except that Close and Abort must not race each other.
type conn struct {
	host *host
	ep   tcpip.Endpoint
	wq   *waiter.Queue

	mu     sync.Mutex
	closed bool
}

func newConn(h *host, ep tcpip.Endpoint, wq *waiter.Queue) *conn {
	return &conn{host: h, ep: ep, wq: wq}
}

// Host returns the host the connection's end lives on.
func (c *conn) Host() *host { return c.host }

// check returns the error of an operation on a closed conn or topology.
func (c *conn) check(op string) error {
	if c.host.t.isClosed() {
		return fmt.Errorf("%s: %w", op, errClosed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return &sockOpError{Op: op, Errno: syscall.EBADF, Netstack: "connection closed by this end"}
	}
	return nil
}

// LocalAddr returns the address of this end.
func (c *conn) LocalAddr() netip.AddrPort {
	a, err := c.ep.GetLocalAddress()
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a.Addr.As4()), a.Port)
}

// RemoteAddr returns the address of the peer.
func (c *conn) RemoteAddr() netip.AddrPort {
	a, err := c.ep.GetRemoteAddress()
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a.Addr.As4()), a.Port)
}

// Write queues as much of p as the send buffer takes and returns how
// much that was. It fails with EAGAIN when the buffer is full, EPIPE after
// shutdown(wr), ECONNRESET after a reset.
func (c *conn) Write(p []byte) (int, error) {
	if err := c.check("write"); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.ep.Write(bytes.NewReader(p), tcpip.WriteOptions{})
	if err != nil {
		return int(n), opError("write", err)
	}
	return int(n), nil
}

// WriteAll writes all of p, waiting for send-buffer space as needed. It
// returns how much was written before a failure or ctx's end.
func (c *conn) WriteAll(ctx context.Context, p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := c.Write(p[done:])
		done += n
		if err == nil {
			continue
		}
		if !isEAGAIN(err) {
			return done, err
		}
		if _, err := c.Wait(ctx, eventOut|eventErr|eventHup); err != nil {
			return done, err
		}
	}
	return done, nil
}

// Read moves up to len(p) received bytes into p. At the end of the
// stream (the peer's FIN, all data read) it returns 0, io.EOF; with
// nothing to read yet, EAGAIN; after a reset, ECONNRESET.
func (c *conn) Read(p []byte) (int, error) { return c.read("read", p, false) }

// Peek copies up to len(p) received bytes into p without consuming them
// (MSG_PEEK); otherwise as Read.
func (c *conn) Peek(p []byte) (int, error) { return c.read("peek", p, true) }

func (c *conn) read(op string, p []byte, peek bool) (int, error) {
	if err := c.check(op); err != nil {
		return 0, err
	}
	w := tcpip.SliceWriter(p)
	res, err := c.ep.Read(&w, tcpip.ReadOptions{Peek: peek})
	if _, ok := err.(*tcpip.ErrClosedForReceive); ok {
		return 0, io.EOF
	}
	if err != nil {
		return 0, opError(op, err)
	}
	if !peek && res.Count > 0 {
		c.ep.ModerateRecvBuf(res.Count) // receive-buffer autotuning, as gonet does
	}
	return res.Count, nil
}

// ReadFull reads exactly len(p) bytes, waiting for data as needed. It
// returns io.ErrUnexpectedEOF if the stream ends first (io.EOF if it
// ended before any byte), or the failure, or ctx's error.
func (c *conn) ReadFull(ctx context.Context, p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := c.Read(p[done:])
		done += n
		switch {
		case err == nil:
		case err == io.EOF:
			if done == 0 {
				return 0, io.EOF
			}
			return done, io.ErrUnexpectedEOF
		case isEAGAIN(err):
			if _, err := c.Wait(ctx, eventIn|eventErr|eventHup|eventRdHup); err != nil {
				return done, err
			}
		default:
			return done, err
		}
	}
	return done, nil
}

// ReadableBytes returns the bytes waiting in the receive queue
// (FIONREAD / SIOCINQ), as gVisor's ReceiveQueueSizeOption reports them.
func (c *conn) ReadableBytes() (int, error) {
	if err := c.check("fionread"); err != nil {
		return 0, err
	}
	n, err := c.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
	if err != nil {
		return 0, opError("fionread", err)
	}
	return n, nil
}

// WaitReadable blocks until at least n bytes are readable, the stream
// ended or failed (then it returns what is readable, and nil), or ctx
// ends.
func (c *conn) WaitReadable(ctx context.Context, n int) (int, error) {
	var got int
	_, err := c.waitFor(ctx, eventIn|eventErr|eventHup|eventRdHup, func(ev events) bool {
		var err error
		got, err = c.ReadableBytes()
		return err != nil || got >= n || ev&(eventErr|eventHup|eventRdHup) != 0
	})
	return got, err
}

// shutHow selects the directions Shutdown closes.
type shutHow int

// The shutdown(2) directions.
const (
	shutRd   shutHow = 1 << iota // SHUT_RD
	shutWr                       // SHUT_WR: send a FIN after the queued data
	shutRdWr = shutRd | shutWr
)

// Shutdown shuts down one or both directions (shutdown(2)). It fails with
// ENOTCONN on an endpoint that is not connected.
func (c *conn) Shutdown(how shutHow) error {
	if err := c.check("shutdown"); err != nil {
		return err
	}
	var f tcpip.ShutdownFlags
	if how&shutRd != 0 {
		f |= tcpip.ShutdownRead
	}
	if how&shutWr != 0 {
		f |= tcpip.ShutdownWrite
	}
	if f == 0 || how&^shutRdWr != 0 {
		return fmt.Errorf("%w: shutdown how %d", errBadOption, how)
	}
	if err := c.ep.Shutdown(f); err != nil {
		return opError("shutdown", err)
	}
	return nil
}

// markClosed flags c closed; it reports false if it already was.
func (c *conn) markClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	return true
}

// Close closes this end (close(2)): a FIN after the queued data; a RST
// instead if received data is unread or SO_LINGER is {1, 0}. It fails
// with EBADF if the conn was already closed or aborted.
func (c *conn) Close() error {
	if !c.markClosed() {
		return &sockOpError{Op: "close", Errno: syscall.EBADF, Netstack: "already closed"}
	}
	c.ep.Close()
	return nil
}

// Abort resets the connection at once (a RST, queues purged) and closes
// this end. It is a no-op on a conn already closed.
func (c *conn) Abort() {
	if c.markClosed() {
		c.ep.Abort()
	}
}

// SetLinger sets SO_LINGER. {on, 0} makes Close send a RST instead of a
// FIN (the trace language's `close S rst`). gVisor's endpoint does not
// block in Close for a positive timeout (its sentry does that), so
// {on, secs > 0} behaves as a plain close here.
func (c *conn) SetLinger(on bool, secs int) error {
	if err := c.check("setsockopt"); err != nil {
		return err
	}
	if secs < 0 {
		return fmt.Errorf("%w: linger %d s", errBadOption, secs)
	}
	c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: on, Timeout: time.Duration(secs) * time.Second})
	return nil
}

// SetCork sets TCP_CORK: while on, partial segments are held back (until
// a full segment's worth is queued, or gVisor's cork timer, 200 ms on the
// topology's clock, fires); turning it off sends what was held.
func (c *conn) SetCork(on bool) error {
	if err := c.check("setsockopt"); err != nil {
		return err
	}
	c.ep.SocketOptions().SetCorkOption(on)
	return nil
}

// Corked reports whether TCP_CORK is on.
func (c *conn) Corked() bool { return c.ep.SocketOptions().GetCorkOption() }

// State returns the protocol state by its Linux name (ESTABLISHED,
// FIN_WAIT1, CLOSE_WAIT, TIME_WAIT, CLOSE, ...), as `state S` prints it.
func (c *conn) State() string { return stateName(c.ep.State()) }

// WaitState blocks until the connection is in one of states (Linux
// names, as State returns them) and returns it, or returns ctx's error.
// gVisor signals no event for some transitions (FIN_WAIT1 to FIN_WAIT2
// on an ACK, the end of TIME_WAIT), so besides waking on every endpoint
// event WaitState re-checks on a backoff from 20 µs to 2 ms.
func (c *conn) WaitState(ctx context.Context, states ...string) (string, error) {
	entry, ch := waiter.NewChannelEntry(waiter.AllEvents)
	c.wq.EventRegister(&entry)
	defer c.wq.EventUnregister(&entry)
	backoff := 20 * time.Microsecond
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		st := c.State()
		if slices.Contains(states, st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-t.C:
			backoff = min(2*backoff, 2*time.Millisecond)
			t.Reset(backoff)
		case <-ctx.Done():
			return st, fmt.Errorf("wait for state %v (now %s): %w", states, st, ctx.Err())
		}
	}
}

// Readiness returns the poll mask of the endpoint now (gVisor's view; a
// closed or reset endpoint is ready for everything, as gVisor reports).
func (c *conn) Readiness() events {
	return fromWaiter(c.ep.Readiness(toWaiter(allEvents)))
}

// Wait blocks until the endpoint is ready for something in mask, and
// returns the readiness then; or returns ctx's error (wrapped).
func (c *conn) Wait(ctx context.Context, mask events) (events, error) {
	return c.waitFor(ctx, mask, func(ev events) bool { return ev&mask != 0 })
}

// waitFor blocks until done(readiness) holds, re-evaluating it on every
// event in mask. It registers before it first evaluates done, so that a
// wakeup between the test and the sleep is not lost.
func (c *conn) waitFor(ctx context.Context, mask events, done func(events) bool) (events, error) {
	entry, ch := waiter.NewChannelEntry(toWaiter(mask))
	c.wq.EventRegister(&entry)
	defer c.wq.EventUnregister(&entry)
	for {
		ev := c.Readiness()
		if done(ev) {
			return ev, nil
		}
		if c.host.t.isClosed() {
			return ev, fmt.Errorf("wait: %w", errClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ev, fmt.Errorf("wait for %s: %w", mask, ctx.Err())
		}
	}
}

// Notify calls fn with the events of mask that the endpoint signals, from
// gVisor's goroutines, until the returned stop is called. fn must not
// block; it is where a model's sk_data_ready/sk_write_space/
// sk_state_change hooks in. stop waits for nothing: fn may run once more
// concurrently with it.
func (c *conn) Notify(mask events, fn func(events)) (stop func()) {
	entry := waiter.NewFunctionEntry(toWaiter(mask), func(m waiter.EventMask) { fn(fromWaiter(m)) })
	c.wq.EventRegister(&entry)
	var once sync.Once
	return func() { once.Do(func() { c.wq.EventUnregister(&entry) }) }
}

// Err returns and clears the pending socket error (SO_ERROR), nil if
// none. Like getsockopt(SO_ERROR) on Linux, it consumes the error.
func (c *conn) Err() error {
	if err := c.ep.LastError(); err != nil {
		return opError("so_error", err)
	}
	return nil
}

// SetRcvBuf sets SO_RCVBUF as Linux does: the value is capped at the
// stack's maximum, doubled (the kernel's allowance for overhead) and
// raised to the minimum. It disables receive-buffer autotuning.
func (c *conn) SetRcvBuf(n int) error {
	if err := c.check("setsockopt"); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: SO_RCVBUF %d", errBadOption, n)
	}
	so := c.ep.SocketOptions()
	lo, hi := so.ReceiveBufferLimits()
	so.SetReceiveBufferSize(linuxBufSize(int64(n), lo, hi), true)
	return nil
}

// SetSndBuf sets SO_SNDBUF, clamped and doubled as SetRcvBuf. It
// disables send-buffer autotuning.
func (c *conn) SetSndBuf(n int) error {
	if err := c.check("setsockopt"); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: SO_SNDBUF %d", errBadOption, n)
	}
	so := c.ep.SocketOptions()
	lo, hi := so.SendBufferLimits()
	so.SetSendBufferSize(linuxBufSize(int64(n), lo, hi), true)
	return nil
}

// RcvBuf returns SO_RCVBUF (getsockopt's value: the doubled size).
func (c *conn) RcvBuf() int { return int(c.ep.SocketOptions().GetReceiveBufferSize()) }

// SndBuf returns SO_SNDBUF (getsockopt's value: the doubled size).
func (c *conn) SndBuf() int { return int(c.ep.SocketOptions().GetSendBufferSize()) }

// linuxBufSize is sock_setsockopt's SO_RCVBUF/SO_SNDBUF arithmetic:
// min(v, max) * 2, at least min.
func linuxBufSize(v, lo, hi int64) int64 {
	v = min(v, hi)
	if v > math.MaxInt32/2 {
		return math.MaxInt32
	}
	return max(v*2, lo)
}

// isEAGAIN reports whether err means "try again".
func isEAGAIN(err error) bool {
	return err != nil && errors.Is(err, syscall.EAGAIN)
}
