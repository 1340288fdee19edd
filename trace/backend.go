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
	// Stats asks for the run's account (RunResult.Stats); a backend
	// that keeps none refuses with an error wrapping ErrNoStats.
	Stats bool
	// Timeline asks for the run's event log (RunResult.Timeline); a
	// backend that keeps none refuses with an error wrapping
	// ErrNoTimeline.
	Timeline bool

	// parsed is Profile parsed, set by ResolveOptions (see Parsed).
	parsed Profile
}

// Parsed returns the profile the options name, parsed: the one
// ResolveOptions parsed (trace.Run resolves the options once, so a
// backend does not parse the name again), else, for options not resolved
// or whose Profile changed since, Profile parsed now.
func (o Options) Parsed() (Profile, error) {
	if o.parsed.Base != "" && o.parsed.String() == o.Profile {
		return o.parsed, nil
	}
	return ParseProfile(o.Profile)
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

// Backend runs traces: the model, the live kernel, a kernel in a VM, a
// recording (Golden). Run runs one trace under opts, which trace.Run has
// resolved (ResolveOptions), and returns one observation per op, in
// trace order. A backend that runs op by op implements Opener and makes
// its Run RunOps, which gives it the runner's thread semantics.
type Backend interface {
	Name() string
	Run(ctx context.Context, t *Trace, opts Options) (RunResult, error)
}

// RunResult is what one run of a trace produced.
type RunResult struct {
	// Obs are the observations, one per op in trace order (when the run
	// was interrupted, those of the ops that had ended; see Run).
	Obs []Observation
	// Stats is the run's account beyond its observations when
	// Options.Stats asked for it (the model's copy accounting): printed
	// after the observations, and in JSON as itself. Nil otherwise.
	Stats Stats
	// Timeline is the run's event log when Options.Timeline asked for
	// it, also of a run that failed; nil otherwise.
	Timeline *Timeline
	// Recorded: Obs are a recording (a golden file), whose long data is
	// only its SHA-256, so Compare compares the other side's digests
	// with it (DiffGolden) instead of its bytes.
	Recorded bool
}

// Stats is a backend's account of a run beyond the observations.
type Stats interface{ String() string }

// Opener is a backend that runs traces op by op (the kernel): Open
// prepares one run of t, which RunOps drives op by op through the
// returned Executor and then closes.
type Opener interface {
	Name() string
	Open(ctx context.Context, t *Trace, opts Options) (Executor, error)
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
