package netstack

import (
	"errors"
	"io"
	"slices"
	"testing"
	"time"
)

// settler is what both topologies offer for the model's transport.
type settler interface {
	Settle() error
	NextTimer() (time.Duration, bool)
}

// TestSettle: after Settle, what the calls before it set off is done,
// with no waiting: the bytes written are readable, the FIN is seen, the
// ACK of the FIN moved the sender to FIN_WAIT2, a RST reset the peer.
func TestSettle(t *testing.T) {
	both(t, Options{}, func(t *testing.T, e *env) {
		st := e.top.(settler)
		a, b := e.dial(t)
		data := pattern(300000)
		n, err := a.Write(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Settle(); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.ReadableBytes(); got != n {
			t.Fatalf("after Settle: %d readable, %d written", got, n)
		}
		if err := a.Shutdown(shutWr); err != nil {
			t.Fatal(err)
		}
		if err := st.Settle(); err != nil {
			t.Fatal(err)
		}
		if sa, sb := a.State(), b.State(); sa != "FIN_WAIT1" && sa != "FIN_WAIT2" || sb != "ESTABLISHED" && sb != "CLOSE_WAIT" {
			t.Fatalf("after shutdown and Settle: %s, %s", sa, sb)
		}
		buf := make([]byte, 1<<20)
		for got := 0; got < n; {
			m, err := b.Read(buf)
			if err != nil {
				t.Fatalf("read after %d of %d: %v", got, n, err)
			}
			got += m
			if err := st.Settle(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Read(buf); !errors.Is(err, io.EOF) {
			t.Fatalf("read at the end: %v, want EOF", err)
		}
		if sa, sb := a.State(), b.State(); sa != "FIN_WAIT2" || sb != "CLOSE_WAIT" {
			t.Fatalf("after the FIN was read: %s, %s, want FIN_WAIT2, CLOSE_WAIT", sa, sb)
		}
		c, d := e.dial(t)
		d.Write([]byte("unread"))
		if err := st.Settle(); err != nil {
			t.Fatal(err)
		}
		c.Close() // unread data: a RST
		if err := st.Settle(); err != nil {
			t.Fatal(err)
		}
		if s := d.State(); s != "CLOSE" {
			t.Fatalf("peer of a reset: %s, want CLOSE", s)
		}
	})
}

// TestSettleHeld: Settle leaves held segments held; it returns once the
// stacks rest, and a release is settled in turn.
func TestSettleHeld(t *testing.T) {
	e := newTwoHostEnv(t, Options{})
	a, b := e.dial(t)
	e.th.AtoB().Hold()
	if _, err := a.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	if err := e.th.Settle(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.ReadableBytes(); n != 0 || e.th.AtoB().Stats().Held != 1 {
		t.Fatalf("held segment: %d readable, stats %+v", n, e.th.AtoB().Stats())
	}
	if _, err := e.th.AtoB().Release(); err != nil {
		t.Fatal(err)
	}
	if err := e.th.Settle(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.ReadableBytes(); n != 4 {
		t.Fatalf("released segment: %d readable, want 4", n)
	}
}

// TestSettleClosed: Settle after Close fails with errClosed.
func TestSettleClosed(t *testing.T) {
	lo, err := newLoopback(Options{})
	if err != nil {
		t.Fatal(err)
	}
	lo.Close()
	if err := lo.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := lo.Settle(); !errors.Is(err, errClosed) {
		t.Fatalf("Settle after Close = %v, want errClosed", err)
	}
	if _, ok := lo.NextTimer(); ok {
		t.Fatal("NextTimer after Close reports a timer")
	}
}

// TestManualClock: timers fire in time order and, at the same instant,
// in the order they were armed; Stop and Reset move them; NextTimer
// tells the next one; a timer armed with no delay runs at once.
func TestManualClock(t *testing.T) {
	c := newManualClock()
	if _, ok := c.NextTimer(); ok {
		t.Fatal("fresh clock has a timer")
	}
	var fired []string
	add := func(name string, d time.Duration) *manualTimer {
		return c.AfterFunc(d, func() { fired = append(fired, name) }).(*manualTimer)
	}
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		add(name, time.Duration(10*(1+i%2))*time.Millisecond) // a c e at 10 ms, b d at 20 ms
	}
	late := add("late", time.Second)
	stopped := add("stopped", 15*time.Millisecond)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop of a pending timer, then again")
	}
	moved := add("moved", time.Millisecond)
	moved.Reset(20 * time.Millisecond) // after b and d, armed later
	if d, ok := c.NextTimer(); !ok || d != 10*time.Millisecond {
		t.Fatalf("NextTimer = %v, %v; want 10ms", d, ok)
	}
	c.Advance(25 * time.Millisecond)
	if want := []string{"a", "c", "e", "b", "d", "moved"}; !slices.Equal(fired, want) {
		t.Fatalf("fired %v, want %v", fired, want)
	}
	if d, ok := c.NextTimer(); !ok || d != time.Second-25*time.Millisecond {
		t.Fatalf("NextTimer = %v, %v; want 975ms", d, ok)
	}
	if got := c.Now().Sub(time.Unix(0, 0)); got != 25*time.Millisecond {
		t.Fatalf("Now = epoch + %v", got)
	}
	late.Reset(0)
	c.Advance(0) // waits for the callback's goroutine
	if fired[len(fired)-1] != "late" {
		t.Fatalf("zero-delay reset did not run: %v", fired)
	}
	if _, ok := c.NextTimer(); ok {
		t.Fatal("a timer is left")
	}
	// A callback that arms a timer inside the advanced interval sees it
	// fire in the same Advance.
	c.AfterFunc(time.Millisecond, func() {
		c.AfterFunc(time.Millisecond, func() { fired = append(fired, "chained") })
	})
	c.Advance(5 * time.Millisecond)
	if fired[len(fired)-1] != "chained" {
		t.Fatalf("chained timer did not fire: %v", fired)
	}
}
