package netstack

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
)

// twoHost is two stacks, A (10.0.0.1/24) and B (10.0.0.2/24), each with
// one NIC, joined by a pair of channel endpoints the way a veth pair
// joins a container to its host. Every segment crosses a link the harness
// controls: AtoB carries what A sends, BtoA what B sends.
type twoHost struct {
	t      *topology
	a, b   *host
	ab, ba *link
}

// channelQueue is the capacity of each channel endpoint's outbound
// queue. A full channel endpoint drops silently, so the link empties it
// from the writer's own notification (notifier.WriteNotify) before the
// writer returns: the queue only ever holds the packets of writers that
// are between their write and their notification, at most one per
// concurrent writer. TestTwoHostNoSilentDrop checks the NIC drop counter.
const channelQueue = 1024

// newTwoHost builds the two-host topology. On error nothing is left
// running. The caller owns the result and must end with Close then Wait.
func newTwoHost(opts Options) (*twoHost, error) {
	t, mtu, err := newTopology(opts, twoHostMTU)
	if err != nil {
		return nil, err
	}
	chA := channel.New(channelQueue, mtu, "\x02\x00\x00\x00\x00\x01")
	chB := channel.New(channelQueue, mtu, "\x02\x00\x00\x00\x00\x02")
	addrA := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), PrefixLen: 24}
	addrB := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{10, 0, 0, 2}), PrefixLen: 24}
	a, err := t.newHost("a", 0, chA, addrA)
	if err != nil {
		return nil, teardown(t, fmt.Errorf("two-host: %w", err))
	}
	b, err := t.newHost("b", 1, chB, addrB)
	if err != nil {
		return nil, teardown(t, fmt.Errorf("two-host: %w", err))
	}
	th := &twoHost{t: t, a: a, b: b}
	th.ab = newLink("a>b", t.clock, chA, chB)
	t.addLink(th.ab)
	th.ba = newLink("b>a", t.clock, chB, chA)
	t.addLink(th.ba)
	return th, nil
}

// A returns host A (10.0.0.1), the side that connects in dial(ctx, A, B).
func (th *twoHost) A() *host { return th.a }

// B returns host B (10.0.0.2).
func (th *twoHost) B() *host { return th.b }

// AtoB returns the link carrying the segments A sends to B.
func (th *twoHost) AtoB() *link { return th.ab }

// BtoA returns the link carrying the segments B sends to A.
func (th *twoHost) BtoA() *link { return th.ba }

// LinkFrom returns the link carrying what h sends, or nil if h is not a
// host of th.
func (th *twoHost) LinkFrom(h *host) *link {
	switch h {
	case th.a:
		return th.ab
	case th.b:
		return th.ba
	}
	return nil
}

// Advance moves the manual clock, shared by both stacks and both links,
// forward by d, running the timers that fall due (retransmissions,
// TIME_WAIT, delayed link deliveries) in time order. It returns
// errRealClock with Options.RealClock and errClosed after Close.
func (th *twoHost) Advance(d time.Duration) error { return th.t.advance(d) }

// Settle blocks until the stacks are quiescent: every segment sent has
// been processed by its receiver, with every reply it drew, so that
// nothing happens until the caller acts or the clock moves (settle.go).
// Held and delayed segments of a link stay where they are. It returns
// errClosed after Close, and an error wrapping errNotQuiescent if the
// stacks do not come to rest. It must not run concurrently with other
// calls into the topology.
func (th *twoHost) Settle() error { return th.t.settle() }

// NextTimer returns how long until the next timer of the manual clock
// is due (a retransmission, a delayed ACK, TIME_WAIT's end, a link
// delay), and false if none is pending, on the real clock, or after
// Close.
func (th *twoHost) NextTimer() (time.Duration, bool) { return th.t.nextTimer() }

// Now returns the topology's clock reading (the manual clock starts at
// the Unix epoch).
func (th *twoHost) Now() time.Time { return th.t.now() }

// Close stops both links (held and delayed segments are discarded),
// aborts every endpoint and stops both stacks. It does not wait; call
// Wait. Close is idempotent and always returns nil.
func (th *twoHost) Close() error { return th.t.close() }

// Wait blocks until every goroutine the topology started has ended (the
// stacks' workers, any link delivery under way). It returns errNotClosed if Close
// was not called, and the capture's error (wrapping errCapture) if
// writing the pcap failed.
func (th *twoHost) Wait() error { return th.t.wait() }
