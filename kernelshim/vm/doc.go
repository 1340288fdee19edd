// Package vm runs traces on a kernel image booted in a VM and brings their
// observations back: the `vm` backend's engine and the "validate a kernel
// patch" workflow.
//
// The host builds an initramfs holding a static splicecheck binary as
// /init and the traces, and boots it with qemu-system-x86_64 -kernel IMAGE
// (KVM when the CPU has vmx/svm and /dev/kvm opens, TCG otherwise). The
// guest mounts proc, sysfs and devtmpfs, checks that the kernel has
// sockmap, runs every trace with the kernel backend and writes framed,
// checksummed results to its second serial port (ttyS1); the kernel console
// is the first (ttyS0) and is kept only for error reports. With --runner
// vng the same guest code runs under virtme-ng as `splicecheck guest`,
// writing frames to its standard output, shared with the console.
//
// # Ownership and lifetimes
//
// Run owns one temporary directory (the initramfs, the console log) and one
// QEMU process group for the whole call. Both are released on every exit
// path: normal end, error, wall-clock limit, context cancellation and a
// panic in the caller's goroutine unwinding through Run. A guest that
// panics, hangs, fails to boot or lacks sockmap is reported as a one-line
// error wrapping one of the sentinels below, with the last console lines.
package vm
