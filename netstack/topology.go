package netstack

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Options configure a topology. The zero value is valid: the manual
// clock, seed 0, no capture, the topology's default MTU.
type Options struct {
	// MTU of every link, in bytes; 0 means the default (65536 on
	// loopback, as gVisor's loopback link; 1500 between two hosts, as a
	// veth). At least 576 (RFC 791) and at most 65536.
	MTU uint32
	// RealClock runs the stacks on the wall clock. By default they run
	// on a manual clock that stands still until Advance moves it: no
	// retransmission, TIME_WAIT expiry, keepalive or link delay happens
	// unless the harness advances time.
	RealClock bool
	// Seed seeds every random choice the stacks make (initial sequence
	// numbers, ephemeral ports, hash secrets), so that the same calls give
	// the same segments.
	Seed uint64
	// Pcap, if not nil, receives a pcap capture of every segment the
	// stacks send (see pcap.go). It is written from the stacks' goroutines
	// under a mutex; the topology never closes it.
	Pcap io.Writer
}

const (
	minMTU          = 576
	maxMTU          = 65536
	loopbackMTU     = 65536
	twoHostMTU      = 1500
	nicID           = tcpip.NICID(1)
	defaultBacklog  = 16
	ephemeralListen = 0
)

// topology is what both topologies share: the clock, the capture, the
// stacks and links it owns, and the Close/Wait life cycle.
//
// Invariants: every stack and link that a constructor created is in
// stacks/links before the constructor can fail, so that Close and Wait
// tear down exactly what exists; closed goes false→true once; Wait's
// teardown runs once (waitOnce) and its result is kept in waitErr.
type topology struct {
	clock   tcpip.Clock
	manual  *manualClock // nil with Options.RealClock
	capture *capture     // nil without Options.Pcap
	seed    uint64

	mu     sync.Mutex
	closed bool
	stacks []*stack.Stack
	links  []*link
	// order stamps the segments the links hold (link.order), so that
	// the oldest held segment of the topology can be told (releaseOldest).
	order atomic.Uint64

	waitOnce sync.Once
	waitErr  error
}

func newTopology(opts Options, defaultMTU uint32) (*topology, uint32, error) {
	mtu := opts.MTU
	if mtu == 0 {
		mtu = defaultMTU
	}
	if mtu < minMTU || mtu > maxMTU {
		return nil, 0, fmt.Errorf("%w: MTU %d not in [%d, %d]", errBadOption, mtu, minMTU, maxMTU)
	}
	t := &topology{seed: opts.Seed}
	if opts.RealClock {
		t.clock = tcpip.NewStdClock()
	} else {
		t.manual = newManualClock()
		t.clock = t.manual
	}
	if opts.Pcap != nil {
		c, err := newCapture(opts.Pcap, t.clock)
		if err != nil {
			return nil, 0, err
		}
		t.capture = c
	}
	return t, mtu, nil
}

// lockedRNG is a deterministic io.Reader safe for concurrent use, as
// stack.Options.SecureRNG must be.
type lockedRNG struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (l *lockedRNG) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// newHost builds a stack with one NIC on link, holding addr, with a route
// to addr's subnet through it, and registers the stack with t first.
// index distinguishes the stacks' random streams.
func (t *topology) newHost(name string, index uint64, link stack.LinkEndpoint, addr tcpip.AddressWithPrefix) (*host, error) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], t.seed)
	binary.LittleEndian.PutUint64(key[8:], index)
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
		Clock:              t.clock,
		SecureRNG:          &lockedRNG{r: rand.NewChaCha8(key)},
	})
	t.mu.Lock()
	t.stacks = append(t.stacks, s)
	t.mu.Unlock()

	sack := tcpip.TCPSACKEnabled(true) // Linux's default (net.ipv4.tcp_sack=1)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return nil, fmt.Errorf("%w: %s: enable SACK: %w", errSetup, name, opError("setsockopt", err))
	}
	if t.capture != nil {
		link = newCaptureEndpoint(link, t.capture)
	}
	if err := s.CreateNICWithOptions(nicID, link, stack.NICOptions{Name: name}); err != nil {
		return nil, fmt.Errorf("%w: %s: create NIC: %w", errSetup, name, opError("create nic", err))
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr}
	if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("%w: %s: add address %s: %w", errSetup, name, addr, opError("add address", err))
	}
	s.SetRouteTable([]tcpip.Route{{Destination: addr.Subnet(), NIC: nicID}})
	return &host{t: t, name: name, s: s, addr: addr.Address}, nil
}

func (t *topology) addLink(l *link) {
	l.order = &t.order
	t.mu.Lock()
	t.links = append(t.links, l)
	t.mu.Unlock()
}

// The segment holding of the model's explorer (transport.HoldSegments),
// over every link of the topology.

// hold makes every link hold the segments arriving from now on (link.Hold).
func (t *topology) hold() error { return t.eachLink((*link).Hold) }

// unhold makes every link pass the segments arriving from now on and
// leaves the held ones held (link.Unhold).
func (t *topology) unhold() error { return t.eachLink((*link).Unhold) }

func (t *topology) eachLink(f func(*link) error) error {
	for _, l := range t.linkList() {
		if err := f(l); err != nil {
			return err
		}
	}
	return nil
}

func (t *topology) linkList() []*link {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.links
}

// held returns the segments the links hold to dst (all of them when dst
// is the zero AddrPort) and their payload bytes.
func (t *topology) held(dst netip.AddrPort) (segs, bytes int) {
	for _, l := range t.linkList() {
		s, b := l.heldBytes(dst)
		segs, bytes = segs+s, bytes+b
	}
	return segs, bytes
}

// releaseOldest makes the segment held longest ready (the one that
// arrived at its link first, of all the held ones) and injects it into
// its receiver; it leaves holding as it is. It fails with errNoSegment
// when no link holds one. As with link.Release, the receiving stack
// processes the segment on its own goroutines: Settle waits for that.
func (t *topology) releaseOldest() error {
	var oldest *link
	var at uint64
	for _, l := range t.linkList() {
		if n, ok := l.heldHead(); ok && (oldest == nil || n < at) {
			oldest, at = l, n
		}
	}
	if oldest == nil {
		return fmt.Errorf("%w: release the oldest of none held", errNoSegment)
	}
	return oldest.ReleaseN(1)
}

func (t *topology) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// advance moves the manual clock forward by d, running every timer that
// falls due, in time order, before it returns.
func (t *topology) advance(d time.Duration) error {
	if t.manual == nil {
		return errRealClock
	}
	if d < 0 {
		return fmt.Errorf("%w: negative duration %v", errBadOption, d)
	}
	if t.isClosed() {
		return errClosed
	}
	t.manual.Advance(d)
	return nil
}

// close stops the links (queued segments are freed, no more are
// delivered) and closes the stacks (every registered endpoint is
// aborted). It does not wait; it is idempotent.
func (t *topology) close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	links, stacks := t.links, t.stacks
	t.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	for _, s := range stacks {
		s.Close()
	}
	return nil
}

// wait blocks until every goroutine of the topology has ended (the
// stacks' protocol workers, any link delivery under way) and the NICs
// are removed.
// It returns errNotClosed before close, else the capture's error if any.
func (t *topology) wait() error {
	t.mu.Lock()
	closed := t.closed
	links, stacks := t.links, t.stacks
	t.mu.Unlock()
	if !closed {
		return errNotClosed
	}
	t.waitOnce.Do(func() {
		for _, l := range links {
			l.wait()
		}
		for _, s := range stacks {
			s.Wait()
		}
		if t.manual != nil {
			t.manual.running.Wait() // callbacks of timers armed with no delay
		}
		if t.capture != nil {
			t.waitErr = t.capture.error()
		}
	})
	return t.waitErr
}

// nextTimer returns how long until the manual clock's next timer is
// due; false with none pending or on the real clock.
func (t *topology) nextTimer() (time.Duration, bool) {
	if t.manual == nil || t.isClosed() {
		return 0, false
	}
	return t.manual.NextTimer()
}

// now is the topology's clock reading.
func (t *topology) now() time.Time { return t.clock.Now() }
