// Package trace is splicecheck's trace language: the ops a test is written
// in, their parser and printer, the observations a backend returns for them,
// the Backend interface every backend implements (Run: a trace in, a
// RunResult out), the threaded runner that drives an op-by-op backend
// (Opener, RunOps) through a trace, recorded runs as a backend (Golden),
// and the differ that compares two runs (Compare).
//
// The language is a contract (docs/design.md, "The trace language"):
// it may be extended, never broken. A trace file is one op per line; `#`
// starts a comment outside a quoted string; `@T` runs an op in thread T;
// header directives (`profile`, `schedule`) precede the first op.
//
// # Ownership and lifetimes
//
// A *Trace returned by Parse is immutable by convention: backends and the
// runner read it and never modify it, so one trace may be run on several
// backends concurrently. Observations own their Data slices; a backend must
// not retain or reuse a slice it put in a Result. An Executor is opened per
// run and closed by the runner on every exit path (RunOps closes it).
//
// # Threads
//
// Each trace thread is a goroutine locked to its own OS thread for the whole
// run. The runner dispatches ops in trace order to their threads and, after
// each dispatch, waits until every thread is settled: idle, or blocked inside
// its current op as its Executor reports. An op therefore blocks only its own
// thread, and the interleaving is as deterministic as the backend allows.
//
// Package trace imports only the standard library and internal/lockcheck
// (the run-time check that a ...Locked function's mutex is held).
package trace
