package linux

import "github.com/splicecheck/splicecheck/trace"

// Poll bits (EPOLL* values of include/uapi/linux/eventpoll.h, as
// trace renders them).
const (
	pollIN    = trace.PollIn
	pollOUT   = trace.PollOut
	pollERR   = trace.PollErr
	pollHUP   = trace.PollHup
	pollRDHUP = trace.PollRdHup
)

// pollRequested is what the trace's poll asks for: POLLIN|POLLOUT|POLLRDHUP
// (POLLERR and POLLHUP are always reported).
const pollRequested = pollIN | pollOUT | pollRDHUP | pollERR | pollHUP

// sockPoll mirrors sock_poll() (net/socket.c, v6.18) → tcp_poll()
// (net/ipv4/tcp.c, v6.18) with poll(2)'s event mask.
func (k *kernel) sockPoll(sk *sock) uint32 {
	k.reach(fnSockPoll)
	mask := k.tcpPoll(sk)
	if k.prof.SoSplice {
		mask = soSplicePoll(sk, mask)
	}
	return mask & pollRequested
}
