// Package model is splicecheck's faithful model of the Linux socket
// splicing paths: the sockmap psock ingress queue, sk_msg and sk_skb
// verdicts, splice_read with page ownership moving into pipes, the
// loopback-splice ring, FIN/RST teardown, on an in-model reference TCP
// or on gVisor's (package netstack). It is the `model` backend of
// splicecheck, cross-checked byte for byte against real kernels:
//
//	obs, err := trace.Observe(ctx, model.New(), tr, trace.Options{Profile: "linux-6.18"})
//
// This package is the front door; the kernel mirror itself is
// model/internal/linux, which keeps the kernel's names and cites, on
// every function that mirrors kernel code, the function, file and
// version (its package documentation has the layout, the threads,
// contexts and time, ownership, and the "Unlike Linux" list). What is
// here:
//
//   - Backend (New, NewWithConfig, Config): a trace.Backend that runs a
//     whole trace on a fresh model per run; ExploreRun runs it under an
//     exploring schedule and reports its choices (Outcome).
//   - Transport, HoldingTransport, Endpoint: what an external TCP
//     implements to run under the model (Config.Transport; package
//     netstack).
//   - What a run reports: Stats (copy accounting, ring writes, byte
//     provenance Tags, completion order, Coverage of mirrored functions,
//     by Fn), its event log when trace.Options.Timeline asks for it (a
//     trace.Timeline: thread slices, ops, sleeps, kernel contexts and
//     queue lengths on virtual time, bounded; RunResult.Timeline,
//     Outcome.Timeline), and the errors it stops with (Fault and the Err
//     sentinels).
//   - Implements (which profiles the model has) and Mutations (the bug
//     zoo's planted bugs, Config.Mutations).
//
// # Ownership and lifetimes
//
// A Backend holds only its configuration: every Run builds a fresh
// kernel (sockets, maps, pages, scheduler) and tears it down before it
// returns, so runs share nothing and a Backend is safe for concurrent
// use. A Transport (Config.Transport) is made per run and closed at its
// end. Stats and Outcome belong to the caller once returned.
package model
