package trace

import "time"

// Timeline is a run's event log (Options.Timeline): who ran when, as a
// backend that schedules a whole run itself sees it (the model: its
// threads and kernel contexts, on virtual time), so that a reader can
// look at an interleaving instead of inferring it from a schedule.
//
// Invariants: Events are in the order they happened; every event but a
// counter takes the next Step, a counter the Step of the event it
// follows, so Steps never decrease. A log is bounded: past its cap a
// backend keeps the first events and the last ones, and Dropped counts
// those left out between Events[Gap-1] and Events[Gap] (the Steps jump
// there by at least Dropped). A span (an op, a slice of a thread, a
// kernel context) whose start was left out begins at the gap; one that
// had not ended when the run did lasts to its end.
type Timeline struct {
	Events []TimelineEvent
	// Steps is the number of steps of the run, dropped ones included:
	// the last event's Step + 1 (0 for an empty log).
	Steps   int
	Dropped int
	Gap     int // meaningful when Dropped > 0
}

// TimelineEvent is one event of a Timeline. What Lane, Name, Op and
// Value hold depends on Kind (see the EventKind constants).
type TimelineEvent struct {
	Step  int
	At    time.Duration // virtual time since the start of the run
	Kind  EventKind
	Lane  string
	Name  string
	On    string // EventKernelStart: the thread whose system call runs the context, "" for none
	Op    int    // EventOpStart, EventOpEnd: the op's index in Trace.Ops
	Value int64  // EventCounter
}

// EventKind says what a TimelineEvent records.
type EventKind uint8

// The kinds of timeline events.
const (
	// EventOpStart: thread Lane starts op Op.
	EventOpStart EventKind = iota + 1
	// EventOpEnd: thread Lane's op Op returns Name (Result.String).
	EventOpEnd
	// EventRun: thread Lane gets the CPU (a slice of it begins).
	EventRun
	// EventPark: thread Lane gives the CPU back. Name is why: "sleeps in
	// FUNCTION" (or "sleeps"), "yields" (an exploring schedule preempts
	// it), or "" when its op ended.
	EventPark
	// EventKernelStart: a kernel context of kind Lane ("softirq",
	// "kworker", "strparser", "timer"; "runner" for the runner's op
	// timeouts, "teardown" for the cleanup after the trace) runs work
	// Name.
	EventKernelStart
	// EventKernelEnd: the context EventKernelStart began has returned.
	EventKernelEnd
	// EventCounter: queue Name of object Lane (a socket) holds Value
	// (bytes, or a ring cursor's position). A counter is logged when it
	// changes, and first when it becomes non-zero.
	EventCounter
	// EventFault: the run fails here; Name is its error.
	EventFault
)

var eventKindNames = [...]string{EventOpStart: "op-start", EventOpEnd: "op-end", EventRun: "run", EventPark: "park",
	EventKernelStart: "kernel-start", EventKernelEnd: "kernel-end", EventCounter: "counter", EventFault: "fault"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "unknown"
}
