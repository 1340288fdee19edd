// Package fuzz attacks the model: trace generators, property checkers,
// schedule search, shrinking, the bug zoo and the campaigns behind
// `splicecheck check`.
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
// Properties (Properties) judge one Execution: the trace, its observations, the
// error that stopped it (the model reports invariant failures, lost
// wakeups, livelocks and leaks as a model.Fault that says where) and the
// model's account of it (model.Stats: the provenance tag of every byte
// read, ring writes and ring-content faults, stranded reads, completion
// order), and, for a patch profile, the same trace on its base profile
// (Bases), or a reference run under `check --diff`. Each failure is a
// Violation whose signature, kind@site, says what broke and where; a
// profile's known failures (KnownFailures: what the kernel or the patch
// it models does, each with its reason) are matched by signature, and
// anything else is NEW. docs/properties.md lists the properties.
//
// Check runs a Campaign: per profile, generated traces until the budget
// is spent; each property's known failures are counted, its first NEW
// failure shrunk by Minimize (delta debugging over the trace's lines,
// schedule included, keeping the signature) and written as a trace with
// a Header (property, signature, profile, seed, mutations, version), so
// that `splicecheck run FILE` judges it again (Replay). Detect attacks one
// mutation of the Zoo as plain `check` would: no reference run.
//
// SearchSchedules is the other way in: one trace (a scenario), many
// interleavings. It runs the trace under the model's exploring
// policies (seeded random, PCT, a bounded depth-first enumeration of
// `schedule picks`; model.ExploreRun, which runs it as its `schedule`
// directive does) and judges every run with the properties
// (SearchProperties by default: the run's error, stream-integrity,
// ring-content, eof-after-data), as a campaign judges a run of the same
// trace and directive; ShrinkSchedules shrinks what it finds with
// Minimize, searching each smaller trace anew and keeping the
// signature. The counterexample carries its profile and schedule, so
// `splicecheck run` replays it (with CounterexampleFile's header, judges
// it).
//
// Ownership: a Campaign owns nothing between calls; Runs are not shared
// between goroutines. The package imports trace and model, never
// kernelshim (internal/layout enforces it): a kernel reference is passed
// in as a trace.Backend.
package fuzz
