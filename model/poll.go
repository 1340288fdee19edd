package model

import "strings"

// Poll bits (EPOLL* values of include/uapi/linux/eventpoll.h).
const (
	pollIN    = 0x001
	pollOUT   = 0x004
	pollERR   = 0x008
	pollHUP   = 0x010
	pollRDHUP = 0x2000
)

// pollRequested is what the trace's poll asks for: POLLIN|POLLOUT|POLLRDHUP
// (POLLERR and POLLHUP are always reported).
const pollRequested = pollIN | pollOUT | pollRDHUP | pollERR | pollHUP

var pollNames = []struct {
	bit  uint32
	name string
}{
	{pollIN, "IN"}, {pollOUT, "OUT"}, {pollRDHUP, "RDHUP"}, {pollHUP, "HUP"}, {pollERR, "ERR"},
}

// pollWord renders a mask as the trace does: IN|OUT|RDHUP|HUP|ERR in
// that order, "0" when none is set.
func pollWord(mask uint32) string {
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

// sockPoll mirrors sock_poll() → tcp_poll() with poll(2)'s event mask.
func (k *kernel) sockPoll(sk *Sock) uint32 {
	return k.tcpPoll(sk) & pollRequested
}
