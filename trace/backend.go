package trace

import (
	"context"
	"time"
)

// Options are the per-run settings every backend receives.
type Options struct {
	// Profile is the kernel behaviour to reproduce, as ParseProfile accepts.
	// The runner fills it from the flag, else the trace's directive, else
	// DefaultBase.
	Profile string
	// OpTimeout bounds each op; an op still running then is reported as
	// RunnerTimeout. Zero means DefaultOpTimeout.
	OpTimeout time.Duration
	// Seed seeds anything random in the backend (the model's scheduler).
	Seed uint64
	// TimeScale runs a backend on real time (the kernel) K times slower
	// than trace time: every duration of the trace (SO_RCVTIMEO, sleep,
	// iocopy's deadline, the runner's OpTimeout and its abort steps)
	// takes K times as long, so that the real time the runner spends
	// dispatching and settling ops (about a millisecond an op; see Run)
	// shrinks to 1/K of trace time, against the model's none. The
	// kernel behaves the same at any K, only slower. Zero or one is real
	// time; the model, on virtual time, ignores it.
	TimeScale int
}

// Scale returns d on the backend's real clock: d times TimeScale.
func (o Options) Scale(d time.Duration) time.Duration {
	if o.TimeScale > 1 {
		return d * time.Duration(o.TimeScale)
	}
	return d
}

// DefaultOpTimeout is the per-op timeout when Options.OpTimeout is zero.
const DefaultOpTimeout = 2 * time.Second

// Backend executes traces. Open prepares one run of t; the runner then
// drives the returned Executor op by op and closes it.
//
// A backend whose runs are not op-by-op (a deterministic scheduler that
// owns every thread) implements TraceRunner instead, and Run defers to it.
type Backend interface {
	Name() string
	Open(ctx context.Context, t *Trace, opts Options) (Executor, error)
}

// TraceRunner is implemented by backends that execute a whole trace
// themselves. Such a backend must still honour the thread semantics of the
// language and return one observation per op, in trace order.
type TraceRunner interface {
	RunTrace(ctx context.Context, t *Trace, opts Options) ([]Observation, error)
}

// Executor runs the ops of one trace. The runner calls StartThread and Exec
// for a thread only from that thread's goroutine, which is locked to one OS
// thread for the whole run; Exec is called concurrently for different
// threads. Blocked may be called from any goroutine at any time.
type Executor interface {
	// StartThread prepares the calling OS thread to run trace thread name
	// (for example, entering the run's network namespace).
	StartThread(name string) error
	// Exec executes c.Op. It may block; it must return promptly once ctx is
	// done (the runner then reports RunnerTimeout whatever it returns).
	Exec(ctx context.Context, c *Call) Result
	// Blocked reports whether thread name is at this moment waiting inside
	// its current Exec for something another thread or time must provide.
	// The runner polls it to learn when a dispatched op has settled.
	Blocked(name string) bool
	// Close releases everything the run created. It is called exactly once,
	// after every Exec has returned, on every exit path.
	Close() error
}

// Call is one op handed to an Executor.
type Call struct {
	Thread string // the op's thread ("main" for unprefixed ops)
	Index  int    // the op's index in Trace.Ops
	Op     *Op
	// Data is the payload of a send with literal data; nil for pattern
	// data (see Payload).
	Data []byte
	// PatternOff is the sending socket's stream offset where a send's
	// pattern data starts.
	PatternOff int64
}

// Payload returns the payload of a send as slices to send in order, in
// one system call: the literal data, or the pattern bytes from
// PatternBuffers (shared and read-only), never generated whole.
func (c *Call) Payload() [][]byte {
	if c.Op.Kind == OpSend && c.Op.Form == DataPattern {
		return PatternBuffers(c.PatternOff, c.Op.Size)
	}
	return [][]byte{c.Data}
}
