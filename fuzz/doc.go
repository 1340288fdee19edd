// Package fuzz attacks the model: trace generators, property checkers,
// shrinking, the bug zoo and the campaigns behind `splicecheck check`.
//
// Generators (Trace) are rapid generators, so a campaign is reproducible
// from its seed (trace i of a campaign is Trace(cfg).Example(seed+i)) and
// the Go fuzz target (FuzzModelProperties) gets rapid's input handling. A
// generated trace is always valid: it parses, and every name it uses is
// defined first. It is not always meaningful on every profile (a `pair`
// on a mainline kernel fails with -EOPNOTSUPP): backends report what they
// do. KernelSafe traces never block for long on a real kernel, for the
// model-vs-kernel cross-check (internal/crosscheck).
//
// Properties (Properties) judge one Run: the trace, its observations and
// the error that stopped it (the model reports invariant failures, lost
// wakeups and leaks as errors under model.Config.Liveness), and, for the
// bug zoo or `check --diff`, a reference run of the same trace. A
// property a profile fails because the kernel (or the posted patch) it
// models does is listed in KnownFailures with the reason.
//
// Check runs a Campaign: per profile, generated traces until the budget
// is spent, each property's first counterexample shrunk by Minimize (delta
// debugging over the trace's lines, schedule included) and written as a
// trace with its profile and schedule, so that `splicecheck run FILE`
// replays it. Detect attacks one mutation of the Zoo.
//
// Ownership: a Campaign owns nothing between calls; Runs are not shared
// between goroutines. The package imports trace and model, never
// kernelshim (internal/layout enforces it): a kernel reference is passed
// in as a trace.Backend.
package fuzz
