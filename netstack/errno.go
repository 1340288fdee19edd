package netstack

import (
	"reflect"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// errnoTable translates gVisor's errors to the errno Linux reports for
// the same condition. It is keyed by the error's dynamic type (every
// tcpip.Error is a pointer to an empty struct), never by its text. The
// values follow what the gVisor sentry returns to Linux binaries
// (pkg/syserr), which is what a Linux socket returns for the same
// condition.
//
// Invariant: every tcpip.Err* type of the pinned gVisor version has an
// entry (TestErrnoTableComplete checks this against gVisor's source).
var errnoTable = map[reflect.Type]syscall.Errno{
	reflect.TypeFor[*tcpip.ErrAborted]():                      syscall.EPIPE,
	reflect.TypeFor[*tcpip.ErrAddressFamilyNotSupported]():    syscall.EAFNOSUPPORT,
	reflect.TypeFor[*tcpip.ErrAlreadyBound]():                 syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrAlreadyConnected]():             syscall.EISCONN,
	reflect.TypeFor[*tcpip.ErrAlreadyConnecting]():            syscall.EALREADY,
	reflect.TypeFor[*tcpip.ErrBadAddress]():                   syscall.EFAULT,
	reflect.TypeFor[*tcpip.ErrBadBuffer]():                    syscall.EFAULT,
	reflect.TypeFor[*tcpip.ErrBadLocalAddress]():              syscall.EADDRNOTAVAIL,
	reflect.TypeFor[*tcpip.ErrBroadcastDisabled]():            syscall.EACCES,
	reflect.TypeFor[*tcpip.ErrClosedForReceive]():             0, // end of stream: read returns 0
	reflect.TypeFor[*tcpip.ErrClosedForSend]():                syscall.EPIPE,
	reflect.TypeFor[*tcpip.ErrConnectStarted]():               syscall.EINPROGRESS,
	reflect.TypeFor[*tcpip.ErrConnectionAborted]():            syscall.ECONNABORTED,
	reflect.TypeFor[*tcpip.ErrConnectionRefused]():            syscall.ECONNREFUSED,
	reflect.TypeFor[*tcpip.ErrConnectionReset]():              syscall.ECONNRESET,
	reflect.TypeFor[*tcpip.ErrDestinationRequired]():          syscall.EDESTADDRREQ,
	reflect.TypeFor[*tcpip.ErrDuplicateAddress]():             syscall.EEXIST,
	reflect.TypeFor[*tcpip.ErrDuplicateNICID]():               syscall.EEXIST,
	reflect.TypeFor[*tcpip.ErrEndpointBusy]():                 syscall.EBUSY,
	reflect.TypeFor[*tcpip.ErrHostDown]():                     syscall.EHOSTDOWN,
	reflect.TypeFor[*tcpip.ErrHostUnreachable]():              syscall.EHOSTUNREACH,
	reflect.TypeFor[*tcpip.ErrInvalidEndpointState]():         syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrInvalidNICID]():                 syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrInvalidOptionValue]():           syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrInvalidPortRange]():             syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrMalformedHeader]():              syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrMessageTooLong]():               syscall.EMSGSIZE,
	reflect.TypeFor[*tcpip.ErrMissingRequiredFields]():        syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrMulticastInputCannotBeOutput](): syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrNetworkUnreachable]():           syscall.ENETUNREACH,
	reflect.TypeFor[*tcpip.ErrNoBufferSpace]():                syscall.ENOBUFS,
	reflect.TypeFor[*tcpip.ErrNoNet]():                        syscall.ENONET,
	reflect.TypeFor[*tcpip.ErrNoPortAvailable]():              syscall.EAGAIN,
	reflect.TypeFor[*tcpip.ErrNoSuchFile]():                   syscall.ENOENT,
	reflect.TypeFor[*tcpip.ErrNotConnected]():                 syscall.ENOTCONN,
	reflect.TypeFor[*tcpip.ErrNotPermitted]():                 syscall.EPERM,
	reflect.TypeFor[*tcpip.ErrNotSupported]():                 syscall.EOPNOTSUPP,
	reflect.TypeFor[*tcpip.ErrPortInUse]():                    syscall.EADDRINUSE,
	reflect.TypeFor[*tcpip.ErrQueueSizeNotSupported]():        syscall.ENOTTY,
	reflect.TypeFor[*tcpip.ErrTimeout]():                      syscall.ETIMEDOUT,
	reflect.TypeFor[*tcpip.ErrUnknownDevice]():                syscall.ENODEV,
	reflect.TypeFor[*tcpip.ErrUnknownNICID]():                 syscall.ENODEV,
	reflect.TypeFor[*tcpip.ErrUnknownProtocol]():              syscall.EINVAL,
	reflect.TypeFor[*tcpip.ErrUnknownProtocolOption]():        syscall.ENOPROTOOPT,
	reflect.TypeFor[*tcpip.ErrWouldBlock]():                   syscall.EAGAIN,
}

// errnoUnknown is what an error type missing from errnoTable translates
// to; a missing type is a bug (see the invariant of errnoTable).
const errnoUnknown = syscall.EINVAL

// errnoOf returns the Linux errno for err, looked up by err's dynamic
// type. It returns 0 for nil and for *tcpip.ErrClosedForReceive (the
// end of the stream, which Linux reports as a 0-byte read, not an error).
func errnoOf(err tcpip.Error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := errnoTable[reflect.TypeOf(err)]; ok {
		return e
	}
	return errnoUnknown
}
