package netstack

import (
	"fmt"
)

// Quiescence.
//
// gVisor does not process a segment where it arrives: a link (the
// loopback NIC, a link) delivers it inline into the receiving stack,
// whose TCP dispatcher (transport/tcp/dispatcher.go, queuePacket) counts
// it (Stats().TCP.ValidSegmentsReceived), queues it on its endpoint and
// wakes one of the stack's processor goroutines, which runs the TCP state
// machine and sends the replies (an ACK, a window update, more data, a
// RST), which are delivered inline in turn. The only other sources of
// work are the caller's own calls and the timers of the clock.
//
// settle waits for that to stop, on a condition rather than a delay:
// it pauses every stack (stack.Pause: each processor stops only once its
// queue of endpoints is empty), reads the stacks' and links' counters,
// resumes, and repeats until two pauses in a row read the same counters.
// The argument: work is queued for a processor only by a delivery, and
// every delivery bumps a receive counter; between two equal readings no
// delivery happened, and every processor emptied its queue before its
// pause, so at the second pause nothing is queued, nothing runs, and
// nothing will until the caller acts or the clock moves. Before each
// round the manual clock runs what it has scheduled for "now" (timers
// armed with no delay run on goroutines of their own, which
// manualClock.Advance(0) waits for; the count of callbacks started is
// part of the counters, so that one started during a round is seen).

// maxSettleRounds bounds one settle: a stack that keeps delivering
// segments without the clock moving (which TCP never does on its own)
// is a failure, not a hang.
const maxSettleRounds = 100000

// fingerprint is the counters settle compares between two pauses.
type fingerprint struct {
	tcpValid, tcpInvalid, tcpSent, tcpRsts, tcpSendErrs uint64
	ipReceived, ipSent                                  uint64
	linkArrived, linkDelivered, linkDropped             uint64
	timersFired                                         uint64
}

func (t *topology) fingerprint() fingerprint {
	var f fingerprint
	t.mu.Lock()
	stacks, links := t.stacks, t.links
	t.mu.Unlock()
	for _, s := range stacks {
		st := s.Stats()
		f.tcpValid += st.TCP.ValidSegmentsReceived.Value()
		f.tcpInvalid += st.TCP.InvalidSegmentsReceived.Value() + st.TCP.ChecksumErrors.Value()
		f.tcpSent += st.TCP.SegmentsSent.Value()
		f.tcpRsts += st.TCP.ResetsSent.Value()
		f.tcpSendErrs += st.TCP.SegmentSendErrors.Value()
		f.ipReceived += st.IP.PacketsReceived.Value()
		f.ipSent += st.IP.PacketsSent.Value()
	}
	if t.manual != nil {
		f.timersFired = t.manual.fired.Load()
	}
	for _, l := range links {
		ls := l.Stats()
		f.linkArrived += ls.Arrived
		f.linkDelivered += ls.Delivered
		f.linkDropped += ls.Dropped
	}
	return f
}

// settle blocks until the topology is quiescent (see above). It returns
// errClosed after Close, and an error wrapping errNotQuiescent if the
// stacks do not come to rest within maxSettleRounds pauses.
//
// Precondition: no other goroutine calls into the topology meanwhile
// (the model's scheduler is its only caller).
func (t *topology) settle() error {
	if t.isClosed() {
		return errClosed
	}
	t.mu.Lock()
	stacks := t.stacks
	t.mu.Unlock()
	var prev fingerprint
	for round := 0; round < maxSettleRounds; round++ {
		if t.manual != nil {
			t.manual.Advance(0)
		}
		for _, s := range stacks {
			s.Pause()
		}
		f := t.fingerprint()
		for _, s := range stacks {
			s.Resume()
		}
		if round > 0 && f == prev {
			return nil
		}
		prev = f
	}
	return fmt.Errorf("%w after %d rounds", errNotQuiescent, maxSettleRounds)
}
