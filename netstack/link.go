package netstack

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/splicecheck/splicecheck/internal/lockcheck"
)

// link is one direction of a topology's wire (between two hosts a>b and
// b>a; on loopback lo, from the NIC back into it): it takes every packet
// the sending stack writes to its channel endpoint and injects it into
// the receiving stack's, under the harness's control.
//
// A segment arriving at the link goes through these steps, in order:
//  1. after Close it is discarded;
//  2. if DropNext has drops left, or the DropIf predicate matches it, it
//     is dropped (counted, observed, freed);
//  3. while Hold is on it joins the held queue, where it stays until
//     Release/ReleaseN, and may be reordered (Swap, Reorder) or dropped
//     (DropHeld);
//  4. with a Delay d it is due at now+d on the topology's clock and
//     joins the ready queue when the clock reaches that time (on the
//     manual clock: during the Advance that passes it);
//  5. otherwise it joins the ready queue at once.
//
// The ready queue is injected into the receiver in FIFO order by one
// deliverer at a time: whichever goroutine made a segment ready (the
// sender's, in its WriteNotify; the harness's, in Release; the clock's,
// when a delay ends) drains the queue inline unless another is already
// draining it, as gVisor's loopback link delivers inline. So the
// delivery order on a link is exactly the order in which segments joined
// the ready queue, which depends only on the order of arrivals and of the
// harness's calls. (Which segments the stacks send,
// and when, depends on their own goroutines; the link adds no
// nondeterminism of its own.) Segments whose delays end at the same time
// become ready in arrival order.
//
// Injection hands a segment to the receiving stack, whose TCP processes
// it on its own goroutines: Release returns once its segments are
// injected, or are being injected by another deliverer (Flush waits for
// that); a test then waits for the effect it expects (conn.Wait,
// conn.WaitReadable, conn.WaitState). A link starts no goroutine.
//
// All methods are safe for concurrent use. After Close every method
// returns errClosed or does nothing.
type link struct {
	name  string
	clock tcpip.Clock
	from  *channel.Endpoint // the sender's NIC: packets are read from its queue
	to    *channel.Endpoint // the receiver's NIC: packets are injected into it
	nh    *channel.NotificationHandle

	mu   sync.Mutex
	cond *sync.Cond // broadcast on every change (see signalLocked)
	// changed, if not nil, is closed on the next change (for WaitStats).
	changed chan struct{}

	closed     bool
	hold       bool
	dropNext   int
	dropIf     func(segment) bool
	delay      time.Duration
	held       []*linkPacket
	delayed    []*linkPacket // sorted by (due, arrival)
	ready      []*linkPacket
	delivering bool
	observe    func(linkEvent)
	stats      linkStats
	arrivals   uint64
	// order, if set, stamps every segment the link holds (heldAt) from a
	// counter shared by the links of one topology, so that the oldest
	// held segment of the topology can be told (topology.releaseOldest).
	order *atomic.Uint64
}

// linkPacket is one packet owned by a link: buf holds the IPv4 packet;
// the link releases it when it delivers or discards the packet.
type linkPacket struct {
	buf   buffer.Buffer
	seg   segment // valid if tcp
	tcp   bool
	due   time.Time
	timer tcpip.Timer // the delay's timer, stopped if the link closes first
	n     uint64      // arrival number
	// heldAt orders the held segments of every link sharing link.order.
	heldAt uint64
}

// linkStats counts what a link did with the packets it got, and what it
// holds now.
type linkStats struct {
	Arrived   uint64 // written by the sender
	Dropped   uint64 // by DropNext, DropIf or DropHeld
	Delivered uint64 // injected into the receiver
	Discarded uint64 // freed undelivered because the link closed

	Held    int // in the held queue
	Delayed int // waiting for their delay to end
	Ready   int // waiting to be injected, or being injected
}

// linkAction says what happened to a segment, for Observe.
type linkAction int

// The actions an observer sees.
const (
	actArrive  linkAction = iota // the sender wrote it
	actDrop                      // dropped by DropNext, DropIf or DropHeld
	actHold                      // queued by Hold
	actDelay                     // queued by Delay
	actDeliver                   // injected into the receiver
)

// tcpMaxHeader is the largest TCP header (data offset 15 words).
const tcpMaxHeader = 60

var actionNames = [...]string{"arrive", "drop", "hold", "delay", "deliver"}

// String implements fmt.Stringer.
func (a linkAction) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("linkAction(%d)", int(a))
}

// linkEvent is one observation: Seg (with its payload copied) underwent
// Act on link Link at clock time At. N numbers the segment in arrival
// order on its link, from 1.
type linkEvent struct {
	Link string
	N    uint64
	Act  linkAction
	At   time.Time
	Seg  segment
}

func newLink(name string, clock tcpip.Clock, from, to *channel.Endpoint) *link {
	l := &link{name: name, clock: clock, from: from, to: to}
	l.cond = sync.NewCond(&l.mu)
	l.nh = from.AddNotify(notifier{l})
	return l
}

// Name returns "a>b" or "b>a".
func (l *link) Name() string { return l.name }

// notifier is the link's channel.Notification (unexported, so that the
// hook is not part of link's API).
type notifier struct{ l *link }

// WriteNotify implements channel.Notification: the sending stack wrote a
// packet to its channel endpoint. It runs on the writer's goroutine and
// empties the endpoint's queue, so the queue never fills (see
// channelQueue).
func (n notifier) WriteNotify() {
	l := n.l
	for {
		pkt := l.from.Read()
		if pkt == nil {
			return
		}
		buf := pkt.ToBuffer()
		pkt.DecRef()
		l.arrive(buf)
	}
}

// arrive takes ownership of buf and routes it (steps 1-5 of link).
func (l *link) arrive(buf buffer.Buffer) {
	p := &linkPacket{buf: buf}
	var hdr [header.IPv4MaximumHeaderSize + tcpMaxHeader]byte
	n, _ := buf.ReadAt(hdr[:], 0)
	// The headers are enough to route the packet; the payload is copied
	// only for an observer or a predicate.
	p.seg, p.tcp = parseSegment(hdr[:n], int(buf.Size()), false)
	defer l.drain()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.stats.Discarded++
		p.buf.Release()
		return
	}
	defer l.signalLocked()
	l.arrivals++
	p.n = l.arrivals
	l.stats.Arrived++
	l.emit(actArrive, p)
	switch {
	case l.dropNext > 0:
		l.dropNext--
		l.dropLocked(p)
	case l.dropIf != nil && p.tcp && l.dropIf(l.withPayload(p)):
		l.dropLocked(p)
	case l.hold:
		if l.order != nil {
			p.heldAt = l.order.Add(1)
		}
		l.held = append(l.held, p)
		l.emit(actHold, p)
	case l.delay > 0:
		p.due = l.clock.Now().Add(l.delay)
		i, _ := slices.BinarySearchFunc(l.delayed, p, func(a, b *linkPacket) int {
			if c := a.due.Compare(b.due); c != 0 {
				return c
			}
			return int(a.n) - int(b.n)
		})
		l.delayed = slices.Insert(l.delayed, i, p)
		l.emit(actDelay, p)
		p.timer = l.clock.AfterFunc(l.delay, l.releaseDue)
	default:
		l.readyLocked(p)
	}
}

// withPayload returns p's segment with a copy of its payload.
func (l *link) withPayload(p *linkPacket) segment {
	b := p.buf.Flatten()
	seg, _ := parseSegment(b, len(b), true)
	return seg
}

func (l *link) emit(a linkAction, p *linkPacket) {
	if l.observe == nil || !p.tcp {
		return
	}
	l.observe(linkEvent{Link: l.name, N: p.n, Act: a, At: l.clock.Now(), Seg: l.withPayload(p)})
}

func (l *link) dropLocked(p *linkPacket) {
	lockcheck.Held(&l.mu, "netstack: link.dropLocked")
	l.stats.Dropped++
	l.emit(actDrop, p)
	p.buf.Release()
}

func (l *link) readyLocked(ps ...*linkPacket) {
	lockcheck.Held(&l.mu, "netstack: link.readyLocked")
	if len(ps) == 0 {
		return
	}
	l.ready = append(l.ready, ps...)
	l.signalLocked()
}

// signalLocked wakes everything waiting for a change of the link: Flush,
// wait and WaitStats.
func (l *link) signalLocked() {
	lockcheck.Held(&l.mu, "netstack: link.signalLocked")
	l.cond.Broadcast()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// releaseDue runs from the clock when a delay ends: every delayed packet
// whose time has come becomes ready, in (due, arrival) order.
func (l *link) releaseDue() {
	defer l.drain()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	now := l.clock.Now()
	i := 0
	for i < len(l.delayed) && !l.delayed[i].due.After(now) {
		i++
	}
	l.readyLocked(l.delayed[:i]...)
	l.delayed = slices.Delete(l.delayed, 0, i)
}

// drain injects the ready queue into the receiver, in order, unless
// another goroutine is doing so (it will inject what this one added). It
// must be called without l.mu held, after anything that may have made a
// packet ready.
func (l *link) drain() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.delivering {
		return
	}
	l.delivering = true
	for len(l.ready) > 0 {
		batch := l.ready
		l.ready = nil
		l.mu.Unlock()
		for _, p := range batch {
			l.inject(p)
		}
		l.mu.Lock()
		for _, p := range batch {
			l.stats.Delivered++
			l.emit(actDeliver, p)
			p.buf.Release()
		}
	}
	l.delivering = false
	l.signalLocked()
}

// inject hands a copy of p to the receiving stack, as a fresh inbound
// packet (as gVisor's loopback link does).
func (l *link) inject(p *linkPacket) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: p.buf.Clone()})
	l.to.InjectInbound(ipv4.ProtocolNumber, pkt)
	pkt.DecRef()
}

// control runs f with the link's lock held, unless the link is closed
// (errClosed): the shape of every link control.
func (l *link) control(f func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return f()
}

// Hold makes the link queue arriving segments instead of delivering them,
// until Release. Segments already ready or delayed are not affected.
func (l *link) Hold() error {
	return l.control(func() error {
		l.hold = true
		return nil
	})
}

// Release turns Hold off and makes every held segment ready, in held
// order. It returns how many it released.
func (l *link) Release() (int, error) {
	defer l.drain()
	n := 0
	err := l.control(func() error {
		l.hold = false
		n = len(l.held)
		l.readyLocked(l.held...)
		l.held = nil
		return nil
	})
	return n, err
}

// Unhold turns Hold off and leaves the held segments where they are:
// segments arriving from now on pass, the held ones wait for ReleaseN or
// Release (transport.Dial lets a handshake through this way while the
// model holds segments).
func (l *link) Unhold() error {
	return l.control(func() error {
		l.hold = false
		return nil
	})
}

// heldHead returns the order stamp of the next held segment to be
// released, and false if none is held.
func (l *link) heldHead() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.held) == 0 {
		return 0, false
	}
	return l.held[0].heldAt, true
}

// heldBytes returns the held segments to dst (all of them when dst is
// the zero AddrPort) and their payload bytes.
func (l *link) heldBytes(dst netip.AddrPort) (segs, bytes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.held {
		if dst.IsValid() && (!p.tcp || p.seg.Dst != dst) {
			continue
		}
		segs++
		if p.tcp {
			bytes += p.seg.Len
		}
	}
	return segs, bytes
}

// ReleaseN makes the first n held segments ready, in order, and leaves
// Hold on. It fails with errNoSegment if fewer than n are held.
func (l *link) ReleaseN(n int) error {
	defer l.drain()
	return l.control(func() error {
		if n < 0 || n > len(l.held) {
			return fmt.Errorf("%w: release %d of %d held", errNoSegment, n, len(l.held))
		}
		l.readyLocked(l.held[:n]...)
		l.held = slices.Delete(l.held, 0, n)
		return nil
	})
}

// Held returns the held segments, first to be released first, with
// copies of their payloads.
func (l *link) Held() []segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	segs := make([]segment, 0, len(l.held))
	for _, p := range l.held {
		segs = append(segs, l.withPayload(p))
	}
	return segs
}

// Swap exchanges held segments i and j (0 is the next to be released).
// TCP must cope with any reordering of segments in flight: the receiver
// queues the out-of-order one and acknowledges the gap (with SACK).
func (l *link) Swap(i, j int) error {
	return l.control(func() error {
		if i < 0 || j < 0 || i >= len(l.held) || j >= len(l.held) {
			return fmt.Errorf("%w: swap %d, %d of %d held", errNoSegment, i, j, len(l.held))
		}
		l.held[i], l.held[j] = l.held[j], l.held[i]
		return nil
	})
}

// Reorder permutes the held queue: the segment at perm[k] moves to
// position k. perm must be a permutation of 0..len(Held())-1.
func (l *link) Reorder(perm []int) error {
	return l.control(func() error {
		if len(perm) != len(l.held) {
			return fmt.Errorf("%w: permutation of %d for %d held", errBadOption, len(perm), len(l.held))
		}
		seen := make([]bool, len(perm))
		next := make([]*linkPacket, len(perm))
		for k, i := range perm {
			if i < 0 || i >= len(perm) || seen[i] {
				return fmt.Errorf("%w: %v is not a permutation", errBadOption, perm)
			}
			seen[i] = true
			next[k] = l.held[i]
		}
		l.held = next
		return nil
	})
}

// DropHeld drops held segment i (0 is the next to be released).
func (l *link) DropHeld(i int) error {
	return l.control(func() error {
		if i < 0 || i >= len(l.held) {
			return fmt.Errorf("%w: drop %d of %d held", errNoSegment, i, len(l.held))
		}
		p := l.held[i]
		l.held = slices.Delete(l.held, i, i+1)
		l.dropLocked(p)
		l.signalLocked()
		return nil
	})
}

// DropNext drops the next n segments that arrive (whatever they carry,
// ACKs included), before Hold or Delay sees them. n replaces any count
// left from an earlier call; 0 cancels.
func (l *link) DropNext(n int) error {
	return l.control(func() error {
		if n < 0 {
			return fmt.Errorf("%w: DropNext(%d)", errBadOption, n)
		}
		l.dropNext = n
		return nil
	})
}

// DropIf drops every arriving TCP segment for which pred returns true
// (the segment carries a copy of its payload); nil removes the predicate.
// pred runs with the link's lock held and must not call the link.
func (l *link) DropIf(pred func(segment) bool) error {
	return l.control(func() error {
		l.dropIf = pred
		return nil
	})
}

// SetDelay makes every segment arriving from now on wait d on the
// topology's clock before it becomes ready (0: no delay). Changing the
// delay may let later segments overtake earlier ones, which TCP allows.
func (l *link) SetDelay(d time.Duration) error {
	return l.control(func() error {
		if d < 0 {
			return fmt.Errorf("%w: negative delay %v", errBadOption, d)
		}
		l.delay = d
		return nil
	})
}

// Observe makes f see every TCP segment's arrival and fate (arrive, then
// drop, hold, delay or — when injected — deliver), in the order they
// happen on this link; nil stops it. f runs with the link's lock held:
// it must be quick and must not call the link. Payloads are copied for
// f, which costs a copy per event.
func (l *link) Observe(f func(linkEvent)) error {
	return l.control(func() error {
		l.observe = f
		return nil
	})
}

// Stats returns the link's counters.
func (l *link) Stats() linkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statsLocked()
}

func (l *link) statsLocked() linkStats {
	lockcheck.Held(&l.mu, "netstack: link.statsLocked")
	st := l.stats
	st.Held, st.Delayed, st.Ready = len(l.held), len(l.delayed), len(l.ready)
	if l.delivering {
		st.Ready++
	}
	return st
}

// WaitStats blocks until cond holds for the link's stats, re-evaluating
// it on every change of the link, and returns those stats; or returns
// ctx's error, or errClosed if the link closes first. cond runs with the
// link's lock held and must not call the link.
func (l *link) WaitStats(ctx context.Context, cond func(linkStats) bool) (linkStats, error) {
	for {
		l.mu.Lock()
		st := l.statsLocked()
		if cond(st) {
			l.mu.Unlock()
			return st, nil
		}
		if l.closed {
			l.mu.Unlock()
			return st, errClosed
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("link %s: %w", l.name, ctx.Err())
		}
	}
}

// Flush blocks until every ready segment has been injected into the
// receiver (held and delayed ones stay where they are). The receiver's
// TCP may still be processing them when Flush returns.
func (l *link) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for (len(l.ready) > 0 || l.delivering) && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		return errClosed
	}
	return nil
}

// close stops the link: queued packets are freed and later arrivals
// discarded (a delivery under way finishes its batch).
func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for _, q := range [][]*linkPacket{l.held, l.delayed, l.ready} {
		for _, p := range q {
			if p.timer != nil {
				p.timer.Stop()
			}
			l.stats.Discarded++
			p.buf.Release()
		}
	}
	l.held, l.delayed, l.ready = nil, nil, nil
	l.signalLocked()
}

// wait blocks until no delivery is under way, then detaches the link
// from the sender's channel endpoint. Call it after close.
func (l *link) wait() {
	l.mu.Lock()
	for l.delivering {
		l.cond.Wait()
	}
	l.mu.Unlock()
	l.from.RemoveNotify(l.nh)
}
