package netstack

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Loopback is one stack with a loopback NIC holding 127.0.0.1/8: both
// ends of every connection live in the same stack. It is the model's
// `conn A B` over lo.
//
// The NIC is a channel endpoint with the capabilities of gVisor's
// loopback link (link/loopback: checksum offload, loopback) whose
// outbound packets one Link (Lo) injects back into its inbound side.
// Unheld, the Link delivers each segment inline in the sender's write,
// as gVisor's loopback link and Linux's loopback_xmit → netif_rx do;
// held, a segment stays in flight until the harness releases it, as a
// segment queued on the backlog of a CPU whose NET_RX softirq has not
// run yet (enqueue_to_backlog, net/core/dev.c, v6.18).
type Loopback struct {
	t    *topology
	host *Host
	lo   *Link
}

// loopbackCaps are the capabilities of gVisor's loopback link endpoint
// (link/loopback's Capabilities, without save/restore).
const loopbackCaps = stack.CapabilityRXChecksumOffload | stack.CapabilityTXChecksumOffload | stack.CapabilityLoopback

// NewLoopback builds the loopback topology. On error nothing is left
// running. The caller owns the result and must end with Close then Wait.
func NewLoopback(opts Options) (*Loopback, error) {
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
	return &Loopback{t: t, host: h, lo: lo}, nil
}

// Lo returns the link that carries every segment from the stack back
// into it.
func (l *Loopback) Lo() *Link { return l.lo }

// teardown closes and waits for a topology a constructor failed to
// finish, and returns err.
func teardown(t *topology, err error) error {
	t.close()
	t.wait()
	return err
}

// Host returns the topology's only host, 127.0.0.1.
func (l *Loopback) Host() *Host { return l.host }

// Advance moves the manual clock forward by d, running the timers that
// fall due (retransmissions, TIME_WAIT, ...) in time order. It returns
// ErrRealClock with Options.RealClock and ErrClosed after Close.
func (l *Loopback) Advance(d time.Duration) error { return l.t.advance(d) }

// Settle blocks until the stacks are quiescent: every segment sent has
// been processed by its receiver, with every reply it drew, so that
// nothing happens until the caller acts or the clock moves (settle.go).
// Held and delayed segments of a Link stay where they are. It returns
// ErrClosed after Close, and an error wrapping ErrNotQuiescent if the
// stacks do not come to rest. It must not run concurrently with other
// calls into the topology.
func (l *Loopback) Settle() error { return l.t.settle() }

// NextTimer returns how long until the next timer of the manual clock
// is due (a retransmission, a delayed ACK, TIME_WAIT's end, a Link
// delay), and false if none is pending, on the real clock, or after
// Close.
func (l *Loopback) NextTimer() (time.Duration, bool) { return l.t.nextTimer() }

// Now returns the topology's clock reading (the manual clock starts at
// the Unix epoch).
func (l *Loopback) Now() time.Time { return l.t.now() }

// Close aborts every endpoint (peers see a RST) and stops the stack. It
// does not wait for the stack's goroutines; call Wait. Close is
// idempotent and always returns nil.
func (l *Loopback) Close() error { return l.t.close() }

// Wait blocks until every goroutine the topology started has ended. It
// returns ErrNotClosed if Close was not called, and the capture's error
// (wrapping ErrCapture) if writing the pcap failed.
func (l *Loopback) Wait() error { return l.t.wait() }
