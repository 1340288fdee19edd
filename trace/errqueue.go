package trace

import (
	"fmt"
	"strings"
)

// The sock_extended_err values MSG_ZEROCOPY completions carry
// (include/uapi/linux/errqueue.h).
const (
	OriginZerocopy     = 5 // SO_EE_ORIGIN_ZEROCOPY
	CodeZerocopyCopied = 1 // SO_EE_CODE_ZEROCOPY_COPIED: the kernel copied the data after all
)

// Notification is one sock_extended_err an `errqueue` op read from a
// socket's error queue (recvmsg with MSG_ERRQUEUE). A MSG_ZEROCOPY
// completion has Origin OriginZerocopy, Errno 0, and Info and Data the
// first and last send it completes ([lo, hi] of the socket's counter).
type Notification struct {
	Origin, Code uint8
	Errno        uint32
	Info, Data   uint32
}

// String renders a zero-copy completion as `[LO,HI]`, followed by
// ` copied` when the kernel copied the data after all, and any other
// notification with all its fields.
func (n Notification) String() string {
	if n.Origin == OriginZerocopy && n.Errno == 0 {
		s := fmt.Sprintf("[%d,%d]", n.Info, n.Data)
		switch n.Code {
		case 0:
		case CodeZerocopyCopied:
			s += " copied"
		default:
			s += fmt.Sprintf(" code %d", n.Code)
		}
		return s
	}
	return fmt.Sprintf("origin %d errno %d code %d info %d data %d", n.Origin, n.Errno, n.Code, n.Info, n.Data)
}

// ErrqueueResult is the result of an `errqueue` op that read ns (at
// least one): the notifications in the order read, comma-separated.
func ErrqueueResult(ns []Notification) Result {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.String()
	}
	return Word(strings.Join(parts, ", "))
}

// ParseErrqueue returns the MSG_ZEROCOPY completions an `errqueue` op's
// result lists (ErrqueueResult), in order; other notifications are left
// out. ok is false when r lists none (an errno, such as -EAGAIN).
func ParseErrqueue(r Result) (ns []Notification, ok bool) {
	if r.Word == "" || r.Err != 0 {
		return nil, false
	}
	for _, part := range strings.Split(r.Word, ", ") {
		var n Notification
		rng, rest, _ := strings.Cut(part, " ")
		if _, err := fmt.Sscanf(rng, "[%d,%d]", &n.Info, &n.Data); err != nil {
			continue
		}
		n.Origin = OriginZerocopy
		if rest == "copied" {
			n.Code = CodeZerocopyCopied
		}
		ns = append(ns, n)
	}
	return ns, len(ns) > 0
}
