package netstack

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/splicecheck/splicecheck/trace"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Sentinel errors. Every error this package returns either is one of
// these, wraps one of these, or wraps a syscall.Errno (see OpError); match
// them with errors.Is.
var (
	// ErrClosed: the topology (or the link, listener or connection) was
	// closed; no further operation is possible.
	ErrClosed = errors.New("netstack: closed")
	// ErrNotClosed: Wait was called before Close.
	ErrNotClosed = errors.New("netstack: Wait before Close")
	// ErrRealClock: the topology runs on the wall clock, which cannot be
	// advanced by hand.
	ErrRealClock = errors.New("netstack: the topology uses the real clock")
	// ErrBadOption: an option or argument is out of range.
	ErrBadOption = errors.New("netstack: invalid option")
	// ErrSetup: building a stack failed (a gVisor call during NewLoopback
	// or NewTwoHost returned an error).
	ErrSetup = errors.New("netstack: stack setup failed")
	// ErrCapture: writing the pcap capture failed; the capture stopped at
	// the first failure and the run went on without it.
	ErrCapture = errors.New("netstack: pcap capture failed")
	// ErrNoSegment: a link index names no held segment.
	ErrNoSegment = errors.New("netstack: no such held segment")
	// ErrNotQuiescent: Settle gave up because the stacks kept exchanging
	// segments without the clock moving.
	ErrNotQuiescent = errors.New("netstack: stacks do not come to rest")
)

// OpError is the error of a socket operation that gVisor failed: Op is
// the operation ("read", "connect", ...), Errno the Linux errno the
// failure translates to (see Errno), and Netstack gVisor's own text for
// it, for messages only. errors.Is(err, syscall.ECONNRESET) matches
// through Unwrap; never match on the text.
type OpError struct {
	Op       string
	Errno    syscall.Errno
	Netstack string
}

// Error implements error.
func (e *OpError) Error() string {
	return fmt.Sprintf("netstack: %s: %s (%s)", e.Op, trace.ErrnoName(e.Errno), e.Netstack)
}

// Unwrap returns the errno, so that errors.Is(err, syscall.EAGAIN) works.
func (e *OpError) Unwrap() error { return e.Errno }

// opError wraps a gVisor error for op. It must not be called with nil.
func opError(op string, err tcpip.Error) error {
	return &OpError{Op: op, Errno: errnoOf(err), Netstack: err.String()}
}
