package netstack

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/splicecheck/splicecheck/trace"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Sentinel errors. Every error this package returns either is one of
// these, wraps one of these, or wraps a syscall.Errno (see sockOpError); match
// them with errors.Is.
var (
	// errClosed: the topology (or the link, listener or connection) was
	// closed; no further operation is possible.
	errClosed = errors.New("netstack: closed")
	// errNotClosed: Wait was called before Close.
	errNotClosed = errors.New("netstack: Wait before Close")
	// errRealClock: the topology runs on the wall clock, which cannot be
	// advanced by hand.
	errRealClock = errors.New("netstack: the topology uses the real clock")
	// errBadOption: an option or argument is out of range.
	errBadOption = errors.New("netstack: invalid option")
	// errSetup: building a stack failed (a gVisor call during newLoopback
	// or newTwoHost returned an error).
	errSetup = errors.New("netstack: stack setup failed")
	// errCapture: writing the pcap capture failed; the capture stopped at
	// the first failure and the run went on without it.
	errCapture = errors.New("netstack: pcap capture failed")
	// errNoSegment: a link index names no held segment.
	errNoSegment = errors.New("netstack: no such held segment")
	// errNotQuiescent: Settle gave up because the stacks kept exchanging
	// segments without the clock moving.
	errNotQuiescent = errors.New("netstack: stacks do not come to rest")
)

// sockOpError is the error of a socket operation that gVisor failed: Op is
// the operation ("read", "connect", ...), Errno the Linux errno the
// failure translates to (see Errno), and Netstack gVisor's own text for
// it, for messages only. errors.Is(err, syscall.ECONNRESET) matches
// through Unwrap; never match on the text.
type sockOpError struct {
	Op       string
	Errno    syscall.Errno
	Netstack string
}

// Error implements error.
func (e *sockOpError) Error() string {
	return fmt.Sprintf("netstack: %s: %s (%s)", e.Op, trace.ErrnoName(e.Errno), e.Netstack)
}

// Unwrap returns the errno, so that errors.Is(err, syscall.EAGAIN) works.
func (e *sockOpError) Unwrap() error { return e.Errno }

// opError wraps a gVisor error for op. It must not be called with nil.
func opError(op string, err tcpip.Error) error {
	return &sockOpError{Op: op, Errno: errnoOf(err), Netstack: err.String()}
}
