package netstack

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// loopback is one stack with a loopback NIC holding 127.0.0.1/8: both
// ends of every connection live in the same stack. It is the model's
// `conn A B` over lo.
//
// The NIC is a channel endpoint with the capabilities of gVisor's
// loopback link (link/loopback: checksum offload, loopback) whose
// outbound packets one link (Lo) injects back into its inbound side.
// Unheld, the link delivers each segment inline in the sender's write,
// as gVisor's loopback link and Linux's loopback_xmit → netif_rx do;
// held, a segment stays in flight until the harness releases it, as a
// segment queued on the backlog of a CPU whose NET_RX softirq has not
// run yet (enqueue_to_backlog, net/core/dev.c, v6.18).
type loopback struct {
	t    *topology
	host *host
	lo   *link
}

// loopbackCaps are the capabilities of gVisor's loopback link endpoint
// (link/loopback's Capabilities, without save/restore).
const loopbackCaps = stack.CapabilityRXChecksumOffload | stack.CapabilityTXChecksumOffload | stack.CapabilityLoopback

// newLoopback builds the loopback topology. On error nothing is left
// running. The caller owns the result and must end with Close then Wait.
func newLoopback(opts Options) (*loopback, error) {
	t, mtu, err := newTopology(opts, loopbackMTU)
	if err != nil {
		return nil, err
	}
	ep := channel.New(channelQueue, mtu, "")
	ep.LinkEPCapabilities = loopbackCaps
	addr := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4([4]byte{127, 0, 0, 1}), PrefixLen: 8}
	h, err := t.newHost("lo", 0, ep, addr)
	if err != nil {
		return nil, teardown(t, fmt.Errorf("loopback: %w", err))
	}
	lo := newLink("lo", t.clock, ep, ep)
	t.addLink(lo)
	return &loopback{t: t, host: h, lo: lo}, nil
}

// Lo returns the link that carries every segment from the stack back
// into it.
func (l *loopback) Lo() *link { return l.lo }

// teardown closes and waits for a topology a constructor failed to
// finish, and returns err.
func teardown(t *topology, err error) error {
	t.close()
	t.wait()
	return err
}

// Host returns the topology's only host, 127.0.0.1.
func (l *loopback) Host() *host { return l.host }

// Advance moves the manual clock forward by d, running the timers that
// fall due (retransmissions, TIME_WAIT, ...) in time order. It returns
// errRealClock with Options.RealClock and errClosed after Close.
func (l *loopback) Advance(d time.Duration) error { return l.t.advance(d) }

// Settle blocks until the stacks are quiescent: every segment sent has
// been processed by its receiver, with every reply it drew, so that
// nothing happens until the caller acts or the clock moves (settle.go).
// Held and delayed segments of a link stay where they are. It returns
// errClosed after Close, and an error wrapping errNotQuiescent if the
// stacks do not come to rest. It must not run concurrently with other
// calls into the topology.
func (l *loopback) Settle() error { return l.t.settle() }

// NextTimer returns how long until the next timer of the manual clock
// is due (a retransmission, a delayed ACK, TIME_WAIT's end, a link
// delay), and false if none is pending, on the real clock, or after
// Close.
func (l *loopback) NextTimer() (time.Duration, bool) { return l.t.nextTimer() }

// Now returns the topology's clock reading (the manual clock starts at
// the Unix epoch).
func (l *loopback) Now() time.Time { return l.t.now() }

// Close aborts every endpoint (peers see a RST) and stops the stack. It
// does not wait for the stack's goroutines; call Wait. Close is
// idempotent and always returns nil.
func (l *loopback) Close() error { return l.t.close() }

// Wait blocks until every goroutine the topology started has ended. It
// returns errNotClosed if Close was not called, and the capture's error
// (wrapping errCapture) if writing the pcap failed.
func (l *loopback) Wait() error { return l.t.wait() }
