package trace

import (
	"fmt"
	"syscall"
)

// errnoNames are the names observations use. syscall.Errno values are the
// Linux numbers on Linux; the table is explicit so that rendering never
// depends on strerror text.
var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EINTR: "EINTR",
	syscall.EIO: "EIO", syscall.E2BIG: "E2BIG", syscall.EBADF: "EBADF",
	syscall.EAGAIN: "EAGAIN", syscall.ENOMEM: "ENOMEM", syscall.EACCES: "EACCES",
	syscall.EFAULT: "EFAULT", syscall.EBUSY: "EBUSY", syscall.EEXIST: "EEXIST",
	syscall.ENODEV: "ENODEV", syscall.EINVAL: "EINVAL", syscall.ENOSPC: "ENOSPC",
	syscall.ESPIPE: "ESPIPE", syscall.EPIPE: "EPIPE", syscall.ERANGE: "ERANGE",
	syscall.ENOSYS: "ENOSYS", syscall.ENOTSOCK: "ENOTSOCK", syscall.EMSGSIZE: "EMSGSIZE",
	syscall.EPROTOTYPE: "EPROTOTYPE", syscall.ENOPROTOOPT: "ENOPROTOOPT",
	syscall.EOPNOTSUPP: "EOPNOTSUPP", syscall.EAFNOSUPPORT: "EAFNOSUPPORT",
	syscall.EADDRINUSE: "EADDRINUSE", syscall.ENETDOWN: "ENETDOWN",
	syscall.ECONNABORTED: "ECONNABORTED", syscall.ECONNRESET: "ECONNRESET",
	syscall.ENOBUFS: "ENOBUFS", syscall.EISCONN: "EISCONN", syscall.ENOTCONN: "ENOTCONN",
	syscall.ESHUTDOWN: "ESHUTDOWN", syscall.ETIMEDOUT: "ETIMEDOUT",
	syscall.ECONNREFUSED: "ECONNREFUSED", syscall.EALREADY: "EALREADY",
	syscall.EINPROGRESS: "EINPROGRESS",
	syscall.ELOOP:       "ELOOP", syscall.ENAMETOOLONG: "ENAMETOOLONG",
	524: "ENOTSUPP", // kernel-internal, leaks from some BPF paths
}

// ErrnoName returns the errno's name ("EAGAIN"), or "E<number>" for one the
// table does not know.
func ErrnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("E%d", int(e))
}

// ErrnoByName is the inverse of ErrnoName for the names in the table.
func ErrnoByName(name string) (syscall.Errno, bool) {
	for e, n := range errnoNames {
		if n == name {
			return e, true
		}
	}
	return 0, false
}
