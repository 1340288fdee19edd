package netstack

import (
	"github.com/splicecheck/splicecheck/trace"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// stateNames maps gVisor's endpoint states to the names Linux uses
// (include/net/tcp_states.h), which are the words the trace language's
// `state S` op prints. gVisor numbers the protocol states as Linux does;
// its internal states are shown as what a Linux socket in the same
// situation reports: a socket that is neither connected nor listening is
// CLOSE, a connect() that has not sent its SYN yet is SYN_SENT.
var stateNames = map[tcp.EndpointState]string{
	tcp.StateEstablished: "ESTABLISHED",
	tcp.StateSynSent:     "SYN_SENT",
	tcp.StateSynRecv:     "SYN_RECV",
	tcp.StateFinWait1:    "FIN_WAIT1",
	tcp.StateFinWait2:    "FIN_WAIT2",
	tcp.StateTimeWait:    "TIME_WAIT",
	tcp.StateClose:       "CLOSE",
	tcp.StateCloseWait:   "CLOSE_WAIT",
	tcp.StateLastAck:     "LAST_ACK",
	tcp.StateListen:      "LISTEN",
	tcp.StateClosing:     "CLOSING",
	tcp.StateInitial:     "CLOSE",
	tcp.StateBound:       "CLOSE",
	tcp.StateConnecting:  "SYN_SENT",
	tcp.StateError:       "CLOSE",
}

// stateName returns the Linux name of a gVisor endpoint state
// (tcpip.Endpoint.State's value), or "UNKNOWN" for a state this
// package does not know.
func stateName(s uint32) string {
	if n, ok := stateNames[tcp.EndpointState(s)]; ok {
		return n
	}
	return "UNKNOWN"
}

// events is a poll(2) mask with Linux's bit values: what conn.Readiness
// reports and conn.Wait waits for.
type events uint32

// The poll bits the trace language's `poll S` op prints (Linux values).
const (
	eventIn    events = trace.PollIn
	eventOut   events = trace.PollOut
	eventErr   events = trace.PollErr
	eventHup   events = trace.PollHup
	eventRdHup events = trace.PollRdHup

	// allEvents is every bit above.
	allEvents = eventIn | eventOut | eventErr | eventHup | eventRdHup
)

// eventBits pairs each bit with gVisor's.
var eventBits = []struct {
	ev events
	w  waiter.EventMask
}{
	{eventIn, waiter.EventIn},
	{eventOut, waiter.EventOut},
	{eventRdHup, waiter.EventRdHUp},
	{eventHup, waiter.EventHUp},
	{eventErr, waiter.EventErr},
}

// String renders the mask as the trace language does ("IN|OUT"), or "0"
// when no bit is set (trace.PollWord).
func (e events) String() string { return trace.PollWord(uint32(e)) }

// fromWaiter translates gVisor's waiter mask to events (gVisor's
// EventRdNorm/EventWrNorm count as IN/OUT).
func fromWaiter(m waiter.EventMask) events {
	var e events
	for _, b := range eventBits {
		if m&b.w != 0 {
			e |= b.ev
		}
	}
	if m&waiter.EventRdNorm != 0 {
		e |= eventIn
	}
	if m&waiter.EventWrNorm != 0 {
		e |= eventOut
	}
	return e
}

// toWaiter translates events to gVisor's waiter mask.
func toWaiter(e events) waiter.EventMask {
	var m waiter.EventMask
	for _, b := range eventBits {
		if e&b.ev != 0 {
			m |= b.w
		}
	}
	return m
}
