// Package netstack runs gVisor's TCP (gvisor.dev/gvisor/pkg/tcpip) as the
// TCP layer under splicecheck's model: real segments, real state
// machines, timers on a clock the harness moves, and a wire the harness
// can hold, drop, delay and reorder. It is the only package of the
// project that imports gVisor (internal/layout enforces it); its API
// names no gVisor type, so that fuzz/ and cmd/ can use it.
//
// # Topologies
//
// newLoopback builds one stack with a loopback NIC (127.0.0.1/8): both
// ends of a connection share the stack, and one link (Lo) takes each
// segment the NIC sends back into it, inline as it is sent unless the
// harness holds it (the NIC is a channel endpoint with the capabilities
// of gVisor's loopback link). newTwoHost builds two stacks, A (10.0.0.1)
// and B (10.0.0.2), joined by channel endpoints like a container's veth
// pair; every segment crosses a link (AtoB, BtoA) that the harness
// controls. dial(ctx, a, b) makes one established connection
// the way the trace language's `conn A B` does (a connects, b accepts).
//
// # Time and determinism
//
// By default both topologies run on a manual clock (clock.go, gVisor's
// faketime.ManualClock made deterministic): no timer fires
// (retransmission, TIME_WAIT, keepalive, a link delay) until the harness
// calls Advance, which runs the due timers in time order, those due at
// the same instant in the order they were armed, before it returns;
// NextTimer says when the next one is due. Every random choice of
// the stacks (initial sequence numbers, ephemeral ports, hash secrets)
// comes from Options.Seed. Given the same calls, a link delivers the same
// segments in the same order; the stacks' own goroutines decide how data
// is cut into segments and when ACKs go out, so a harness that needs a
// fixed sequence holds the link and releases segments one at a time.
// gVisor signals no event for some state changes; conn.WaitState
// re-checks on a short backoff for them.
//
// Settle (settle.go) waits, on a condition, until the stacks are at
// rest: gVisor queues every arriving segment for a processor goroutine,
// so a call returns before its effects are complete; Settle pauses the
// stacks and compares their counters until two pauses in a row agree.
//
// # The model's transport
//
// transport (transport.go) is model.Transport on a topology: the
// `netstack` backend, the model with gVisor's TCP under it. The model
// dials one connection per `conn A B`, calls Settle after every call
// that may have moved segments, moves the manual clock with its virtual
// time and lets time pass to NextTimer when nothing else can happen. A
// transport always runs on the manual clock. backend_test.go runs the
// kernel corpus and testdata/traces/plaintcp on it against the kernels'
// goldens and names every divergence with its cause.
//
// transport is a model.HoldingTransport: under an exploring schedule
// the model makes the topology's Links hold every segment after the
// first Dial, and delivers the one held longest (of both links, between
// two hosts: topology.releaseOldest) each time its policy picks the
// "kworker", so that a TCP segment stays in flight while threads run,
// as a segment on the wire or on a CPU's backlog does on Linux. A Dial
// lets its handshake pass. Outside explore mode nothing is held.
// inflight_test.go finds the loopback-splice RFC's defect (a) that way
// (testdata/traces/counterexamples/netstack/).
//
// # Ownership and lifetimes
//
//   - The caller owns a topology and must end every path, including
//     error paths after a successful constructor, with Close then Wait.
//     Close is idempotent; Wait before Close returns errNotClosed.
//     A constructor that fails has already torn down what it built.
//   - The topology owns its stacks (one or two *stack.Stack), their NICs,
//     the channel endpoints and the Links, and the clock. Hosts are views
//     of a stack and live as long as the topology.
//   - Goroutines: the stacks' TCP protocol workers (started by stack.New,
//     stopped by the stack's Close and Wait) and short-lived timer
//     goroutines of the clocks. A link starts none: the goroutine that
//     makes a segment ready (the sender's, in its channel write
//     notification; the harness's, in Release; the clock's, when a delay
//     ends) injects it into the receiver, one deliverer per link at a
//     time. After Wait returns none of them is left
//     (TestNoGoroutineSurvives).
//   - A conn or listener owns its gVisor endpoint until the caller's
//     Close or Abort; the topology's Close aborts whatever is still open
//     (peers see a RST). After either, data operations fail (EBADF, or
//     errClosed) while State and Readiness keep observing the endpoint.
//   - Close order: the Links stop first (held, delayed and ready segments
//     are freed, later ones discarded), then the stacks abort their
//     endpoints; Wait waits for any delivery under way, then for the
//     stacks' workers, and removes the NICs.
//   - The pcap writer (Options.Pcap) belongs to the caller; the topology
//     writes to it under a mutex from the stacks' goroutines until Wait
//     returns, and never closes it. The first write error stops the
//     capture and is returned by Wait (wrapping errCapture).
//
// # Errors
//
// gVisor's errors are translated to Linux errnos by type (errno.go),
// wrapped in *sockOpError: match them with errors.Is(err, syscall.EAGAIN).
// The package's own conditions are the sentinels in errors.go (errClosed,
// errBadOption, ...), always wrapped with %w.
//
// # Unlike Linux
//
// gVisor is not Linux, and this package does not hide the differences;
// the cross-check against the kernel backend is there to find them. Seen
// so far: a reset endpoint is ready for every event (Linux reports
// IN|OUT|RDHUP|HUP|ERR until the error is read, then without ERR);
// SO_LINGER with a positive timeout does not make Close block; shrinking
// SO_RCVBUF below the window already advertised makes gVisor drop
// segments (Linux never shrinks the window), which on the manual clock
// are retransmitted only when the harness advances time.
package netstack
