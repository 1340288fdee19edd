package netstack

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

// settleGoroutines waits (bounded) until at most n goroutines run, and
// returns the count it saw last. Goroutines that are ending need a
// moment to be gone from the count; there is no event for that. The
// bound is a count of looks (100, 1 ms apart doubling to a second: about
// 90 s), not a deadline of a few seconds that a loaded machine's
// scheduler can overrun; only a leak uses it up.
func settleGoroutines(n int) int {
	pause := time.Millisecond
	for i := 0; ; i++ {
		got := runtime.NumGoroutine()
		if got <= n || i == 99 {
			return got
		}
		runtime.Gosched()
		time.Sleep(pause)
		pause = min(2*pause, time.Second)
	}
}

// TestNoGoroutineSurvives: after Close and Wait nothing the topologies
// started is left running, whatever state the run was in: connections
// open, closed, reset, in TIME_WAIT; segments held, delayed and ready on
// the links; a capture; a failed constructor.
func TestNoGoroutineSurvives(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		lo, err := newLoopback(Options{Pcap: &failWriter{ok: 1 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		a, b, err := dial(testCtx(t), lo.Host(), lo.Host())
		if err != nil {
			t.Fatal(err)
		}
		a.WriteAll(testCtx(t), pattern(10000))
		c, d, err := dial(testCtx(t), lo.Host(), lo.Host())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		d.Abort()
		ln, err := lo.Host().Listen(0, 0)
		if err != nil {
			t.Fatal(err)
		}
		_ = ln
		_ = b
		lo.Close()
		if err := lo.Wait(); err != nil {
			t.Fatal(err)
		}

		th, err := newTwoHost(Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, b, err = dial(testCtx(t), th.A(), th.B())
		if err != nil {
			t.Fatal(err)
		}
		th.AtoB().Hold()
		a.Write([]byte("held"))
		th.BtoA().SetDelay(time.Second)
		b.Write([]byte("delayed"))
		waitLink(t, th.AtoB(), "held", func(s linkStats) bool { return s.Held == 1 })
		waitLink(t, th.BtoA(), "delayed", func(s linkStats) bool { return s.Delayed == 1 })
		th.Close()
		if err := th.Wait(); err != nil {
			t.Fatal(err)
		}
		if st := th.AtoB().Stats(); st.Discarded == 0 {
			t.Errorf("held segment not discarded at Close: %+v", st)
		}

		// Failing constructors clean up after themselves.
		if _, err := newTwoHost(Options{MTU: 100}); !errors.Is(err, errBadOption) {
			t.Fatalf("newTwoHost(MTU 100) = %v", err)
		}
		if _, err := newLoopback(Options{Pcap: &failWriter{}}); !errors.Is(err, errCapture) {
			t.Fatalf("newLoopback(failing pcap) = %v", err)
		}
	}
	if after := settleGoroutines(before); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after Close and Wait:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestWaitBeforeClose: Wait refuses to block forever on a topology
// nobody closed; Close and Wait may be repeated.
func TestWaitBeforeClose(t *testing.T) {
	th, err := newTwoHost(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := th.Wait(); !errors.Is(err, errNotClosed) {
		t.Fatalf("Wait before Close = %v, want errNotClosed", err)
	}
	for range 2 {
		if err := th.Close(); err != nil {
			t.Fatal(err)
		}
		if err := th.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRealClock: with Options.RealClock the topology works on the wall
// clock and Advance refuses.
func TestRealClock(t *testing.T) {
	e := newTwoHostEnv(t, Options{RealClock: true})
	a, b := e.dial(t)
	if _, err := a.WriteAll(testCtx(t), []byte("wall")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadFull(testCtx(t), make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := e.top.Advance(time.Second); !errors.Is(err, errRealClock) {
		t.Fatalf("Advance on the real clock = %v", err)
	}
}

// TestOptions: the MTU bounds are enforced; a custom MTU is used.
func TestOptions(t *testing.T) {
	for _, mtu := range []uint32{575, 65537} {
		if _, err := newLoopback(Options{MTU: mtu}); !errors.Is(err, errBadOption) {
			t.Errorf("newLoopback(MTU %d) = %v", mtu, err)
		}
	}
	e := newTwoHostEnv(t, Options{MTU: 9000})
	var maxLen int
	e.th.AtoB().Observe(func(ev linkEvent) { maxLen = max(maxLen, ev.Seg.Len) })
	a, b := e.dial(t)
	go a.WriteAll(testCtx(t), pattern(100_000))
	if _, err := b.ReadFull(testCtx(t), make([]byte, 100_000)); err != nil {
		t.Fatal(err)
	}
	e.th.AtoB().Observe(nil)
	// MSS is the MTU less 40 bytes of headers (and 12 of timestamps).
	if maxLen <= 1460 || maxLen > 9000-40 {
		t.Errorf("largest segment %d bytes at MTU 9000, want in (1460, %d]", maxLen, 9000-40)
	}
}

// TestEventsAndStates: the poll mask prints as the trace language does,
// and gVisor's states map to Linux's names.
func TestEventsAndStates(t *testing.T) {
	for ev, want := range map[events]string{
		0: "0", eventIn | eventOut: "IN|OUT", allEvents: "IN|OUT|RDHUP|HUP|ERR", eventHup | eventErr: "HUP|ERR",
	} {
		if got := ev.String(); got != want {
			t.Errorf("events(%#x) = %q, want %q", uint32(ev), got, want)
		}
	}
	if toWaiter(allEvents) == 0 || fromWaiter(toWaiter(allEvents)) != allEvents {
		t.Error("events do not round-trip through waiter masks")
	}
	if got := stateName(99); got != "UNKNOWN" {
		t.Errorf("stateName(99) = %q", got)
	}
	if flagSYN|flagACK != 0x12 || (flagSYN|flagACK).String() != "S." {
		t.Errorf("flags: %#x %s", uint8(flagSYN|flagACK), flagSYN|flagACK)
	}
}
