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

// Conn is one end of a TCP connection: a gVisor endpoint made directly
// with stack.NewEndpoint (not through gonet), so that linger, Abort and
// the protocol state are reachable.
//
// Read, Peek and Write never block: like a socket with O_NONBLOCK they
// fail with an error matching syscall.EAGAIN when they cannot proceed.
// ReadFull and WriteAll block (until done, a failure, or ctx's end),
// waiting on the endpoint's readiness. Every failure of gVisor is an
// *OpError whose errno matches with errors.Is (syscall.ECONNRESET, ...).
//
// Life cycle: the Conn owns its endpoint until Close or Abort; after
// that, data operations fail with syscall.EBADF (as on a closed fd) while
// State and Readiness still observe the endpoint, which gVisor keeps
// until the connection is gone (FIN_WAIT2, TIME_WAIT, ...). The
// topology's Close aborts endpoints still open. Methods are safe for
// concurrent use, except that Close and Abort must not race each other.
type Conn struct {
	host *Host
	ep   tcpip.Endpoint
	wq   *waiter.Queue

	mu     sync.Mutex
	closed bool
}

func newConn(h *Host, ep tcpip.Endpoint, wq *waiter.Queue) *Conn {
	return &Conn{host: h, ep: ep, wq: wq}
}

// Host returns the host the connection's end lives on.
func (c *Conn) Host() *Host { return c.host }

// check returns the error of an operation on a closed Conn or topology.
func (c *Conn) check(op string) error {
	if c.host.t.isClosed() {
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return &OpError{Op: op, Errno: syscall.EBADF, Netstack: "connection closed by this end"}
	}
	return nil
}

// LocalAddr returns the address of this end.
func (c *Conn) LocalAddr() netip.AddrPort {
	a, err := c.ep.GetLocalAddress()
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a.Addr.As4()), a.Port)
}

// RemoteAddr returns the address of the peer.
func (c *Conn) RemoteAddr() netip.AddrPort {
	a, err := c.ep.GetRemoteAddress()
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(netip.AddrFrom4(a.Addr.As4()), a.Port)
}

// Write queues as much of p as the send buffer takes and returns how
// much that was. It fails with EAGAIN when the buffer is full, EPIPE after
// shutdown(wr), ECONNRESET after a reset.
func (c *Conn) Write(p []byte) (int, error) {
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
func (c *Conn) WriteAll(ctx context.Context, p []byte) (int, error) {
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
		if _, err := c.Wait(ctx, EventOut|EventErr|EventHup); err != nil {
			return done, err
		}
	}
	return done, nil
}

// Read moves up to len(p) received bytes into p. At the end of the
// stream (the peer's FIN, all data read) it returns 0, io.EOF; with
// nothing to read yet, EAGAIN; after a reset, ECONNRESET.
func (c *Conn) Read(p []byte) (int, error) { return c.read("read", p, false) }

// Peek copies up to len(p) received bytes into p without consuming them
// (MSG_PEEK); otherwise as Read.
func (c *Conn) Peek(p []byte) (int, error) { return c.read("peek", p, true) }

func (c *Conn) read(op string, p []byte, peek bool) (int, error) {
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
func (c *Conn) ReadFull(ctx context.Context, p []byte) (int, error) {
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
			if _, err := c.Wait(ctx, EventIn|EventErr|EventHup|EventRdHup); err != nil {
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
func (c *Conn) ReadableBytes() (int, error) {
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
func (c *Conn) WaitReadable(ctx context.Context, n int) (int, error) {
	var got int
	_, err := c.waitFor(ctx, EventIn|EventErr|EventHup|EventRdHup, func(ev Events) bool {
		var err error
		got, err = c.ReadableBytes()
		return err != nil || got >= n || ev&(EventErr|EventHup|EventRdHup) != 0
	})
	return got, err
}

// How selects the directions Shutdown closes.
type How int

// The shutdown(2) directions.
const (
	ShutRd   How = 1 << iota // SHUT_RD
	ShutWr                   // SHUT_WR: send a FIN after the queued data
	ShutRdWr = ShutRd | ShutWr
)

// Shutdown shuts down one or both directions (shutdown(2)). It fails with
// ENOTCONN on an endpoint that is not connected.
func (c *Conn) Shutdown(how How) error {
	if err := c.check("shutdown"); err != nil {
		return err
	}
	var f tcpip.ShutdownFlags
	if how&ShutRd != 0 {
		f |= tcpip.ShutdownRead
	}
	if how&ShutWr != 0 {
		f |= tcpip.ShutdownWrite
	}
	if f == 0 || how&^ShutRdWr != 0 {
		return fmt.Errorf("%w: shutdown how %d", ErrBadOption, how)
	}
	if err := c.ep.Shutdown(f); err != nil {
		return opError("shutdown", err)
	}
	return nil
}

// markClosed flags c closed; it reports false if it already was.
func (c *Conn) markClosed() bool {
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
// with EBADF if the Conn was already closed or aborted.
func (c *Conn) Close() error {
	if !c.markClosed() {
		return &OpError{Op: "close", Errno: syscall.EBADF, Netstack: "already closed"}
	}
	c.ep.Close()
	return nil
}

// Abort resets the connection at once (a RST, queues purged) and closes
// this end. It is a no-op on a Conn already closed.
func (c *Conn) Abort() {
	if c.markClosed() {
		c.ep.Abort()
	}
}

// SetLinger sets SO_LINGER. {on, 0} makes Close send a RST instead of a
// FIN (the trace language's `close S rst`). gVisor's endpoint does not
// block in Close for a positive timeout (its sentry does that), so
// {on, secs > 0} behaves as a plain close here.
func (c *Conn) SetLinger(on bool, secs int) error {
	if err := c.check("setsockopt"); err != nil {
		return err
	}
	if secs < 0 {
		return fmt.Errorf("%w: linger %d s", ErrBadOption, secs)
	}
	c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: on, Timeout: time.Duration(secs) * time.Second})
	return nil
}

// SetCork sets TCP_CORK: while on, partial segments are held back (until
// a full segment's worth is queued, or gVisor's cork timer, 200 ms on the
// topology's clock, fires); turning it off sends what was held.
func (c *Conn) SetCork(on bool) error {
	if err := c.check("setsockopt"); err != nil {
		return err
	}
	c.ep.SocketOptions().SetCorkOption(on)
	return nil
}

// Corked reports whether TCP_CORK is on.
func (c *Conn) Corked() bool { return c.ep.SocketOptions().GetCorkOption() }

// State returns the protocol state by its Linux name (ESTABLISHED,
// FIN_WAIT1, CLOSE_WAIT, TIME_WAIT, CLOSE, ...), as `state S` prints it.
func (c *Conn) State() string { return stateName(c.ep.State()) }

// WaitState blocks until the connection is in one of states (Linux
// names, as State returns them) and returns it, or returns ctx's error.
// gVisor signals no event for some transitions (FIN_WAIT1 to FIN_WAIT2
// on an ACK, the end of TIME_WAIT), so besides waking on every endpoint
// event WaitState re-checks on a backoff from 20 µs to 2 ms.
func (c *Conn) WaitState(ctx context.Context, states ...string) (string, error) {
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
func (c *Conn) Readiness() Events {
	return fromWaiter(c.ep.Readiness(toWaiter(AllEvents)))
}

// Wait blocks until the endpoint is ready for something in mask, and
// returns the readiness then; or returns ctx's error (wrapped).
func (c *Conn) Wait(ctx context.Context, mask Events) (Events, error) {
	return c.waitFor(ctx, mask, func(ev Events) bool { return ev&mask != 0 })
}

// waitFor blocks until done(readiness) holds, re-evaluating it on every
// event in mask. It registers before it first evaluates done, so that a
// wakeup between the test and the sleep is not lost.
func (c *Conn) waitFor(ctx context.Context, mask Events, done func(Events) bool) (Events, error) {
	entry, ch := waiter.NewChannelEntry(toWaiter(mask))
	c.wq.EventRegister(&entry)
	defer c.wq.EventUnregister(&entry)
	for {
		ev := c.Readiness()
		if done(ev) {
			return ev, nil
		}
		if c.host.t.isClosed() {
			return ev, fmt.Errorf("wait: %w", ErrClosed)
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
func (c *Conn) Notify(mask Events, fn func(Events)) (stop func()) {
	entry := waiter.NewFunctionEntry(toWaiter(mask), func(m waiter.EventMask) { fn(fromWaiter(m)) })
	c.wq.EventRegister(&entry)
	var once sync.Once
	return func() { once.Do(func() { c.wq.EventUnregister(&entry) }) }
}

// Err returns and clears the pending socket error (SO_ERROR), nil if
// none. Like getsockopt(SO_ERROR) on Linux, it consumes the error.
func (c *Conn) Err() error {
	if err := c.ep.LastError(); err != nil {
		return opError("so_error", err)
	}
	return nil
}

// SetRcvBuf sets SO_RCVBUF as Linux does: the value is capped at the
// stack's maximum, doubled (the kernel's allowance for overhead) and
// raised to the minimum. It disables receive-buffer autotuning.
func (c *Conn) SetRcvBuf(n int) error {
	if err := c.check("setsockopt"); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: SO_RCVBUF %d", ErrBadOption, n)
	}
	so := c.ep.SocketOptions()
	lo, hi := so.ReceiveBufferLimits()
	so.SetReceiveBufferSize(linuxBufSize(int64(n), lo, hi), true)
	return nil
}

// SetSndBuf sets SO_SNDBUF, clamped and doubled as SetRcvBuf. It
// disables send-buffer autotuning.
func (c *Conn) SetSndBuf(n int) error {
	if err := c.check("setsockopt"); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%w: SO_SNDBUF %d", ErrBadOption, n)
	}
	so := c.ep.SocketOptions()
	lo, hi := so.SendBufferLimits()
	so.SetSendBufferSize(linuxBufSize(int64(n), lo, hi), true)
	return nil
}

// RcvBuf returns SO_RCVBUF (getsockopt's value: the doubled size).
func (c *Conn) RcvBuf() int { return int(c.ep.SocketOptions().GetReceiveBufferSize()) }

// SndBuf returns SO_SNDBUF (getsockopt's value: the doubled size).
func (c *Conn) SndBuf() int { return int(c.ep.SocketOptions().GetSendBufferSize()) }

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
