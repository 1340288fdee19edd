package netstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func waitLink(t *testing.T, l *link, what string, cond func(linkStats) bool) linkStats {
	t.Helper()
	st, err := l.WaitStats(testCtx(t), cond)
	if err != nil {
		t.Fatalf("link %s: waiting for %s (stats %+v): %v", l.Name(), what, st, err)
	}
	return st
}

// TestHeldSegmentIsInFlight: a segment held on the link has left the
// sender but not reached the receiver: the receiver's queue stays empty
// (and the sender still counts it unacknowledged) until Release.
func TestHeldSegmentIsInFlight(t *testing.T) {
	e := newTwoHostEnv(t, Options{})
	ab := e.th.AtoB()
	a, b := e.dial(t)
	if err := ab.Hold(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitLink(t, ab, "one held segment", func(s linkStats) bool { return s.Held == 1 })
	held := ab.Held()
	if len(held) != 1 || string(held[0].Payload) != "hello" || held[0].Len != 5 {
		t.Fatalf("held = %v", held)
	}
	// Whatever b's stack is doing, the only way in is the link.
	if err := e.th.BtoA().Flush(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.ReadableBytes(); err != nil || n != 0 {
		t.Fatalf("receiver's ReadableBytes with the segment held = %d, %v; want 0", n, err)
	}
	if ev := b.Readiness(); ev&eventIn != 0 {
		t.Fatalf("receiver readable (%s) with the segment held", ev)
	}
	if n, err := ab.Release(); err != nil || n != 1 {
		t.Fatalf("Release = %d, %v", n, err)
	}
	if n, err := b.WaitReadable(testCtx(t), 5); err != nil || n != 5 {
		t.Fatalf("ReadableBytes after Release = %d, %v; want 5", n, err)
	}
}

// TestDropRetransmitOnAdvance: a dropped segment is retransmitted by
// the sender's RTO timer, which on the manual clock fires only when the
// harness advances time.
func TestDropRetransmitOnAdvance(t *testing.T) {
	e := newTwoHostEnv(t, Options{})
	ab := e.th.AtoB()
	a, b := e.dial(t)
	if err := ab.DropIf(func(s segment) bool { return bytes.Equal(s.Payload, []byte("lost")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	st := waitLink(t, ab, "the drop", func(s linkStats) bool { return s.Dropped == 1 })
	if err := ab.DropIf(nil); err != nil {
		t.Fatal(err)
	}
	if err := ab.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.ReadableBytes(); n != 0 {
		t.Fatalf("ReadableBytes after the drop = %d", n)
	}
	if got := ab.Stats().Arrived; got != st.Arrived {
		t.Fatalf("the sender sent again (%d arrivals, %d before) with the clock stopped", got, st.Arrived)
	}
	// The RTO is at least 200 ms (gVisor's MinRTO); advance in steps
	// until the retransmission arrives (the timer may be armed just after
	// the drop was observed).
	for step := 0; ; step++ {
		if step > 50 {
			t.Fatal("no retransmission after 50 s of clock")
		}
		if err := e.top.Advance(time.Second); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
		n, _ := b.WaitReadable(ctx, 4)
		cancel()
		if n == 4 {
			break
		}
	}
	got := make([]byte, 4)
	if _, err := b.ReadFull(testCtx(t), got); err != nil || string(got) != "lost" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// TestDropNext: DropNext(n) drops exactly the next n arrivals.
func TestDropNext(t *testing.T) {
	e := newTwoHostEnv(t, Options{})
	ab := e.th.AtoB()
	a, _ := e.dial(t)
	before := ab.Stats()
	if err := ab.DropNext(2); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"1", "2", "3"} {
		if _, err := a.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	st := waitLink(t, ab, "three arrivals", func(s linkStats) bool { return s.Arrived >= before.Arrived+3 })
	if st.Dropped != before.Dropped+2 {
		t.Fatalf("dropped %d, want 2", st.Dropped-before.Dropped)
	}
	if err := ab.DropNext(-1); !errors.Is(err, errBadOption) {
		t.Fatalf("DropNext(-1) = %v, want errBadOption", err)
	}
}

// TestDelay: a delayed segment is delivered when the manual clock has
// advanced by the delay, not before.
func TestDelay(t *testing.T) {
	e := newTwoHostEnv(t, Options{})
	ab := e.th.AtoB()
	a, b := e.dial(t)
	if err := ab.SetDelay(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	st := waitLink(t, ab, "the delayed segment", func(s linkStats) bool { return s.Delayed == 1 })
	if err := e.top.Advance(99 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := ab.Stats(); got.Delayed != 1 || got.Delivered != st.Delivered {
		t.Fatalf("after 99 ms: %+v", got)
	}
	if err := e.top.Advance(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n, err := b.WaitReadable(testCtx(t), 4); err != nil || n != 4 {
		t.Fatalf("after 100 ms: ReadableBytes = %d, %v", n, err)
	}
	if err := ab.SetDelay(-1); !errors.Is(err, errBadOption) {
		t.Fatalf("SetDelay(-1) = %v", err)
	}
}

// reorderRun runs one scenario on a fresh topology seeded with seed:
// three writes held on A→B, delivered in the order perm, and returns the
// log of everything A→B did (arrivals, holds, deliveries) and what B
// read.
func reorderRun(t *testing.T, seed uint64, perm []int) ([]string, string) {
	e := newTwoHostEnv(t, Options{Seed: seed})
	ab := e.th.AtoB()
	var mu sync.Mutex
	var log []string
	if err := ab.Observe(func(ev linkEvent) {
		mu.Lock()
		defer mu.Unlock()
		s := ev.Seg
		log = append(log, fmt.Sprintf("%d %s %s %s seq=%d ack=%d win=%d %q at=%d",
			ev.N, ev.Act, s.Src, s.Flags, s.Seq, s.Ack, s.Window, s.Payload, ev.At.UnixNano()))
	}); err != nil {
		t.Fatal(err)
	}
	a, b := e.dial(t)
	if err := ab.Hold(); err != nil {
		t.Fatal(err)
	}
	for i, m := range []string{"one", "two", "three"} {
		if _, err := a.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		waitLink(t, ab, "the write's segment", func(s linkStats) bool { return s.Held == i+1 })
	}
	if err := ab.Reorder(perm); err != nil {
		t.Fatal(err)
	}
	// Deliver one at a time, each once the receiver's reply to the
	// previous one has come back, so that every step is fixed.
	for range perm {
		back := e.th.BtoA().Stats().Arrived
		sent := ab.Stats().Delivered
		if err := ab.ReleaseN(1); err != nil {
			t.Fatal(err)
		}
		waitLink(t, ab, "delivery", func(s linkStats) bool { return s.Delivered > sent })
		waitLink(t, e.th.BtoA(), "b's ACK", func(s linkStats) bool { return s.Arrived > back })
	}
	got := make([]byte, len("onetwothree"))
	if _, err := b.ReadFull(testCtx(t), got); err != nil {
		t.Fatal(err)
	}
	if err := e.top.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.top.Wait(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(log), string(got)
}

// TestReorderDeterministic: held segments delivered out of order are
// reassembled by the receiver's TCP, and the same calls with the same
// seed give the same segments, in the same order, with the same
// sequence numbers and clock readings.
func TestReorderDeterministic(t *testing.T) {
	perm := []int{2, 0, 1} // three, one, two
	log1, got1 := reorderRun(t, 7, perm)
	log2, got2 := reorderRun(t, 7, perm)
	if got1 != "onetwothree" || got2 != "onetwothree" {
		t.Fatalf("receiver read %q and %q, want onetwothree", got1, got2)
	}
	if !slices.Equal(log1, log2) {
		t.Fatalf("two runs differ:\n%s\n---\n%s", bytes.Join(toBytes(log1), []byte("\n")), bytes.Join(toBytes(log2), []byte("\n")))
	}
	var delivered []string
	for _, l := range log1 {
		for _, m := range []string{`"one"`, `"two"`, `"three"`} {
			if bytes.Contains([]byte(l), []byte(" deliver ")) && bytes.Contains([]byte(l), []byte(m)) {
				delivered = append(delivered, m)
			}
		}
	}
	if want := []string{`"three"`, `"one"`, `"two"`}; !slices.Equal(delivered, want) {
		t.Fatalf("delivery order %v, want %v\n%s", delivered, want, bytes.Join(toBytes(log1), []byte("\n")))
	}
	t.Logf("A→B log:\n%s", bytes.Join(toBytes(log1), []byte("\n")))
	// A different seed gives different initial sequence numbers.
	log3, _ := reorderRun(t, 8, perm)
	if slices.Equal(log1, log3) {
		t.Error("seeds 7 and 8 gave the same segments")
	}
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// TestSwapAndErrors: Swap exchanges held segments; bad indices fail
// with errNoSegment, a bad permutation with errBadOption.
func TestSwapAndErrors(t *testing.T) {
	e := newTwoHostEnv(t, Options{})
	ab := e.th.AtoB()
	a, b := e.dial(t)
	ab.Hold()
	for i, m := range []string{"x", "y"} {
		if _, err := a.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		waitLink(t, ab, "held", func(s linkStats) bool { return s.Held == i+1 })
	}
	if err := ab.Swap(0, 1); err != nil {
		t.Fatal(err)
	}
	if h := ab.Held(); string(h[0].Payload) != "y" || string(h[1].Payload) != "x" {
		t.Fatalf("after Swap: %v", h)
	}
	if err := ab.Swap(0, 2); !errors.Is(err, errNoSegment) {
		t.Errorf("Swap(0, 2) = %v", err)
	}
	if err := ab.ReleaseN(3); !errors.Is(err, errNoSegment) {
		t.Errorf("ReleaseN(3) = %v", err)
	}
	if err := ab.Reorder([]int{0, 0}); !errors.Is(err, errBadOption) {
		t.Errorf("Reorder([0 0]) = %v", err)
	}
	if err := ab.DropHeld(5); !errors.Is(err, errNoSegment) {
		t.Errorf("DropHeld(5) = %v", err)
	}
	ab.Release()
	got := make([]byte, 2)
	if _, err := b.ReadFull(testCtx(t), got); err != nil || string(got) != "xy" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// TestHeldStates: holding the links makes the transient states stable
// enough to observe: FIN_WAIT1 while our FIN is in flight, CLOSING when
// both FINs cross, LAST_ACK while the passive closer's FIN is
// unacknowledged.
func TestHeldStates(t *testing.T) {
	t.Run("fin_wait1", func(t *testing.T) {
		e := newTwoHostEnv(t, Options{})
		a, b := e.dial(t)
		e.th.AtoB().Hold()
		a.Shutdown(shutWr)
		waitLink(t, e.th.AtoB(), "the FIN", func(s linkStats) bool { return s.Held == 1 })
		if a.State() != "FIN_WAIT1" || b.State() != "ESTABLISHED" {
			t.Fatalf("FIN held: %s, %s", a.State(), b.State())
		}
		e.th.AtoB().Release()
		waitState(t, b, "CLOSE_WAIT")
		waitState(t, a, "FIN_WAIT2")
	})
	t.Run("closing", func(t *testing.T) {
		e := newTwoHostEnv(t, Options{})
		a, b := e.dial(t)
		e.th.AtoB().Hold()
		e.th.BtoA().Hold()
		a.Shutdown(shutWr)
		b.Shutdown(shutWr)
		waitLink(t, e.th.AtoB(), "a's FIN", func(s linkStats) bool { return s.Held == 1 })
		waitLink(t, e.th.BtoA(), "b's FIN", func(s linkStats) bool { return s.Held == 1 })
		if a.State() != "FIN_WAIT1" || b.State() != "FIN_WAIT1" {
			t.Fatalf("both FINs held: %s, %s", a.State(), b.State())
		}
		// Deliver the FINs, hold the ACKs they draw.
		e.th.AtoB().ReleaseN(1)
		e.th.BtoA().ReleaseN(1)
		waitState(t, a, "CLOSING")
		waitState(t, b, "CLOSING")
		e.th.AtoB().Release()
		e.th.BtoA().Release()
		waitState(t, a, "TIME_WAIT")
		waitState(t, b, "TIME_WAIT")
	})
	t.Run("last_ack", func(t *testing.T) {
		e := newTwoHostEnv(t, Options{})
		a, b := e.dial(t)
		a.Close()
		waitState(t, b, "CLOSE_WAIT")
		e.th.BtoA().Hold()
		b.Close()
		waitLink(t, e.th.BtoA(), "b's FIN", func(s linkStats) bool { return s.Held == 1 })
		if b.State() != "LAST_ACK" {
			t.Fatalf("b's FIN held: b is %s", b.State())
		}
		e.th.BtoA().Release()
		waitState(t, b, "CLOSE")
		waitState(t, a, "TIME_WAIT")
	})
}

// TestLinkClosed: after Close every control fails with errClosed.
func TestLinkClosed(t *testing.T) {
	th, err := newTwoHost(Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := th.AtoB()
	th.Close()
	if err := th.Wait(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Hold": l.Hold(), "DropNext": l.DropNext(1), "SetDelay": l.SetDelay(0),
		"Swap": l.Swap(0, 0), "Flush": l.Flush(), "Observe": l.Observe(nil),
	} {
		if !errors.Is(err, errClosed) {
			t.Errorf("%s after Close = %v, want errClosed", name, err)
		}
	}
	if _, err := l.Release(); !errors.Is(err, errClosed) {
		t.Errorf("Release after Close = %v", err)
	}
	if err := th.Advance(time.Second); !errors.Is(err, errClosed) {
		t.Errorf("Advance after Close = %v", err)
	}
	if _, _, err := dial(testCtx(t), th.A(), th.B()); !errors.Is(err, errClosed) {
		t.Errorf("dial after Close = %v", err)
	}
}

// TestTwoHostNoSilentDrop: a bulk transfer both ways loses no packet in
// a full channel endpoint (gVisor would drop it without a trace but for
// the NIC counter) and every packet the links got was delivered.
func TestTwoHostNoSilentDrop(t *testing.T) {
	e := newTwoHostEnv(t, Options{})
	ctx := testCtx(t)
	a, b := e.dial(t)
	const n = 4 << 20
	for _, dir := range [][2]*conn{{a, b}, {b, a}} {
		go dir[0].WriteAll(ctx, pattern(n))
		got := make([]byte, n)
		if _, err := dir[1].ReadFull(ctx, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pattern(n)) {
			t.Fatal("stream corrupted")
		}
	}
	if d := e.a.NICDrops() + e.b.NICDrops(); d != 0 {
		t.Fatalf("%d packets dropped by full channel endpoints", d)
	}
	for _, l := range []*link{e.th.AtoB(), e.th.BtoA()} {
		st := waitLink(t, l, "every arrival delivered", func(s linkStats) bool { return s.Arrived == s.Delivered })
		if st.Dropped != 0 || st.Discarded != 0 {
			t.Errorf("link %s: %+v", l.Name(), st)
		}
	}
}
