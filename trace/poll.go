package trace

import "strings"

// The poll(2) bits `poll S` reports, with Linux's values (POLLIN,
// POLLOUT, POLLERR, POLLHUP, POLLRDHUP of include/uapi/asm-generic/poll.h).
const (
	PollIn    = 0x0001
	PollOut   = 0x0004
	PollErr   = 0x0008
	PollHup   = 0x0010
	PollRdHup = 0x2000
)

// pollNames are the bits in the order a poll word names them.
var pollNames = []struct {
	bit  uint32
	name string
}{
	{PollIn, "IN"}, {PollOut, "OUT"}, {PollRdHup, "RDHUP"}, {PollHup, "HUP"}, {PollErr, "ERR"},
}

// PollWord renders a poll mask as `poll S` results are written:
// IN|OUT|RDHUP|HUP|ERR, the set bits in that order, or "0" when none is.
// Every backend renders its poll results with it.
func PollWord(mask uint32) string {
	var parts []string
	for _, b := range pollNames {
		if mask&b.bit != 0 {
			parts = append(parts, b.name)
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}
