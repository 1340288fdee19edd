package netstack

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
)

// manualClock is the topologies' default tcpip.Clock: it stands still
// until Advance moves it, and Advance runs the timers that fall due, in
// time order, on the caller's goroutine, before it returns.
//
// It does what gVisor's faketime.ManualClock does, with two differences
// the model's determinism needs: timers due at the same instant fire in
// the order they were armed (faketime runs them in map order), and the
// clock reports when its next timer is due (NextTimer), so that the
// model's scheduler can let virtual time pass up to it.
//
// A timer armed with no delay (or reset to one) runs at once on a
// goroutine of its own, as a real timer would, since its caller may hold
// locks its callback takes; Advance waits for such goroutines before it
// fires anything.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers timerHeap

	running sync.WaitGroup // callbacks of timers armed with no delay
	fired   atomic.Uint64  // callbacks started, for settle's fingerprint
}

var _ tcpip.Clock = (*manualClock)(nil)

// newManualClock returns a clock reading the Unix epoch.
func newManualClock() *manualClock { return &manualClock{now: time.Unix(0, 0)} }

// Now implements tcpip.Clock.
func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NowMonotonic implements tcpip.Clock: the time since the epoch.
func (c *manualClock) NowMonotonic() tcpip.MonotonicTime {
	var m tcpip.MonotonicTime
	return m.Add(c.Now().Sub(time.Unix(0, 0)))
}

// AfterFunc implements tcpip.Clock.
func (c *manualClock) AfterFunc(d time.Duration, f func()) tcpip.Timer {
	t := &manualTimer{c: c, f: f, index: -1}
	c.arm(t, d)
	return t
}

// arm (re)schedules t to fire d from now.
func (c *manualClock) arm(t *manualTimer, d time.Duration) {
	c.mu.Lock()
	if t.index >= 0 {
		heap.Remove(&c.timers, t.index)
	}
	if d <= 0 {
		c.mu.Unlock()
		c.running.Add(1)
		c.fired.Add(1)
		go func() {
			defer c.running.Done()
			t.f()
		}()
		return
	}
	c.seq++
	t.at, t.seq = c.now.Add(d), c.seq
	heap.Push(&c.timers, t)
	c.mu.Unlock()
}

// stop unschedules t; it reports whether t was pending.
func (c *manualClock) stop(t *manualTimer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	return true
}

// Advance moves the clock forward by d, firing every timer due by then
// (including timers the callbacks arm within the interval), each at its
// own time, in (time, arming) order.
func (c *manualClock) Advance(d time.Duration) {
	c.running.Wait()
	c.mu.Lock()
	until := c.now.Add(d)
	for len(c.timers) > 0 && !c.timers[0].at.After(until) {
		t := heap.Pop(&c.timers).(*manualTimer)
		c.now = t.at
		c.mu.Unlock()
		c.fired.Add(1)
		t.f()
		c.running.Wait()
		c.mu.Lock()
	}
	if until.After(c.now) {
		c.now = until
	}
	c.mu.Unlock()
}

// NextTimer returns how long until the next timer is due, and false if
// none is pending.
func (c *manualClock) NextTimer() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	return c.timers[0].at.Sub(c.now), true
}

// manualTimer is a tcpip.Timer of a manualClock. index is its place in
// the clock's heap, -1 while it is not pending.
type manualTimer struct {
	c     *manualClock
	f     func()
	at    time.Time
	seq   uint64
	index int
}

// Stop implements tcpip.Timer.
func (t *manualTimer) Stop() bool { return t.c.stop(t) }

// Reset implements tcpip.Timer.
func (t *manualTimer) Reset(d time.Duration) { t.c.arm(t, d) }

// timerHeap orders pending timers by (time, arming order).
type timerHeap []*manualTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*manualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
