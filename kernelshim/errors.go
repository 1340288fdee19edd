package kernelshim

import (
	"errors"
	"syscall"
)

// Sentinel errors; match them with errors.Is. Every error the backend
// returns wraps exactly one of them.
var (
	// ErrNoPrivilege: the process lacks the capabilities a run needs
	// (CAP_SYS_ADMIN for a network namespace, CAP_NET_ADMIN, CAP_BPF).
	ErrNoPrivilege = errors.New("kernel backend: need root")
	// ErrNoBPF: the kernel refused to create a sockmap (no
	// CONFIG_BPF_SYSCALL / CONFIG_NET_SOCK_MSG, or BPF disabled).
	ErrNoBPF = errors.New("kernel backend: no BPF sockmap")
	// ErrNetns: creating, entering or configuring a run's network
	// namespace failed.
	ErrNetns = errors.New("kernel backend: network namespace")
	// ErrProgram: loading, attaching or detaching a canned BPF program
	// failed for a reason that is not the trace's to observe.
	ErrProgram = errors.New("kernel backend: BPF program")
	// ErrMap: creating or closing a BPF map failed unexpectedly.
	ErrMap = errors.New("kernel backend: BPF map")
	// ErrCgroup: the cgroup v2 directory a `conn A B pair` attaches its
	// sock_ops program to could not be found, created or entered.
	ErrCgroup = errors.New("kernel backend: cgroup")
	// ErrSocket: a socket or pipe operation the backend needs for its own
	// bookkeeping (not an op's observable result) failed.
	ErrSocket = errors.New("kernel backend: socket")
	// ErrCleanup: releasing a run's resources failed; something may leak.
	ErrCleanup = errors.New("kernel backend: cleanup")
	// ErrInternal: the backend met a state it does not expect (a bug).
	ErrInternal = errors.New("kernel backend: internal error")
)

// errnoOf returns the errno err carries, and whether it carries one.
// Errors from x/sys/unix and cilium/ebpf wrap a syscall.Errno (unix.Errno is
// the same type), so errors.As finds it; error strings are never parsed.
func errnoOf(err error) (syscall.Errno, bool) {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e, true
	}
	return 0, false
}
