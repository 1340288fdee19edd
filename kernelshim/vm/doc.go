// Package vm runs traces on a kernel image booted in a VM and brings their
// observations back: the engine of `splicecheck vm`, of the `vm` backend
// (`run|diff|check --backend vm`, `diff --b vm`, `check --diff vm`) and of
// the "validate a kernel patch" workflow.
//
// The host builds an initramfs holding a static splicecheck binary as
// /init, the kernel modules to load (Config.Modules, module.go) and, for a
// batch, the traces, and boots it with qemu-system-x86_64 -kernel IMAGE
// (KVM when the CPU has vmx/svm and /dev/kvm opens, TCG otherwise). The
// guest mounts proc, sysfs and devtmpfs, loads the modules in order with
// finit_module, checks that the kernel has sockmap, and runs traces with
// the kernel backend. It talks to the host over its second serial port
// (ttyS1) in framed, checksummed lines (frame.go); the kernel console is
// the first (ttyS0) and is kept only for error reports.
//
// Two ways to run:
//
//   - Run (`splicecheck vm`): a batch. The traces are in the initramfs; the
//     guest runs them all, reports each and powers off. With --runner vng
//     the same guest code runs under virtme-ng as `splicecheck guest`,
//     writing frames to its standard output, shared with the console.
//   - Session (the `vm` backend, a trace.Backend): one long-lived guest.
//     It is booted once and then runs the traces the host sends it over
//     ttyS1, one at a time, each answered by its observations: the
//     traces `check --diff vm` generates one by one, and the candidates
//     its shrinking tries, all go through one boot.
//
// A module the guest kernel refuses is a one-line error wrapping ErrModule
// that names the --module file and carries the kernel's own message (read
// from /dev/kmsg around the finit_module call). A module file the host
// cannot read is refused before anything boots.
//
// # Ownership and lifetimes
//
// Run owns one temporary directory (the initramfs, the console log) and one
// QEMU process group for the whole call. Both are released on every exit
// path: normal end, error, wall-clock limit, context cancellation and a
// panic in the caller's goroutine unwinding through Run. A guest that
// panics, hangs, fails to boot or lacks sockmap is reported as a one-line
// error wrapping one of the sentinels below, with the last console lines.
//
// A Session owns one temporary directory (one initramfs, reused by every
// boot, and the console log of the current boot) from its first boot to
// Close, and at most one QEMU process group at a time: the current guest.
// Whoever creates a Session must Close it (the CLI defers it right after
// opening the backend, so a signal, an error or a panic unwinding through
// the command all end there); Close kills the guest, waits until QEMU is
// reaped and removes the directory, and every later call returns
// ErrClosed. QEMU also gets SIGKILL if the host process dies first
// (Pdeathsig); only the directory can then be left behind.
//
// Within a session one call talks to the guest at a time (Start,
// Run; others wait, honouring their contexts). A guest lives until
// it dies or is found stuck:
//
//   - it panics or powers off, or damages a frame: the trace in flight
//     gets an error wrapping ErrPanic, ErrGuest or ErrTransport with the
//     last console lines, and QEMU is reaped;
//   - it holds a trace past the trace's limit (Config.TraceTimeout): it is
//     killed and the trace gets ErrHung;
//   - in either case the next call boots a fresh guest (same initramfs).
//
// A caller whose context ends while its trace runs (check's --run-timeout)
// gets the context's error at once; the guest goes on with that trace,
// whose result the next call waits for, within the same limit, and
// discards before it sends its own (SessionStats.Abandoned, and LostDeath
// when the abandoned trace killed the guest). A boot that fails (a bad
// image, no sockmap, a refused module, no ready frame within Config.Idle
// plus a minute, and at least five minutes) breaks the session: the error is returned by that call
// and by every later one, without booting again.
package vm
