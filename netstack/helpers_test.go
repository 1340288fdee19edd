package netstack

import (
	"context"
	"testing"
	"time"
)

// testCtx is the context of a test's blocking calls. The topologies run
// on a manual clock, so a call waits for a condition, never for time, and
// no wall-clock limit of the test's own bounds it: a 4 MiB transfer
// under -race on a loaded machine overran the 20 s one it had
// (TestTwoHostNoSilentDrop, TestPcap). Only go test's -timeout does,
// less a minute, so that a hung call fails its test with its own
// message before the binary panics.
func testCtx(t testing.TB) context.Context {
	var deadline time.Time
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		deadline, _ = d.Deadline()
	}
	if deadline.IsZero() {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		return ctx
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-time.Minute))
	t.Cleanup(cancel)
	return ctx
}

// topo is what the tests need of either topology.
type topo interface {
	Advance(time.Duration) error
	Close() error
	Wait() error
}

// env is a topology under test with the two hosts a connection runs
// between (the same host on loopback).
type env struct {
	name string
	top  topo
	a, b *host
	th   *twoHost // nil on loopback
}

func newLoopbackEnv(t testing.TB, opts Options) *env {
	t.Helper()
	lo, err := newLoopback(opts)
	if err != nil {
		t.Fatalf("newLoopback: %v", err)
	}
	e := &env{name: "loopback", top: lo, a: lo.Host(), b: lo.Host()}
	t.Cleanup(func() { e.shutdown(t) })
	return e
}

func newTwoHostEnv(t testing.TB, opts Options) *env {
	t.Helper()
	th, err := newTwoHost(opts)
	if err != nil {
		t.Fatalf("newTwoHost: %v", err)
	}
	e := &env{name: "twohost", top: th, a: th.A(), b: th.B(), th: th}
	t.Cleanup(func() { e.shutdown(t) })
	return e
}

// shutdown is every test's last step: Close then Wait.
func (e *env) shutdown(t testing.TB) {
	t.Helper()
	if err := e.top.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := e.top.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

// both runs f as a subtest on each topology.
func both(t *testing.T, opts Options, f func(t *testing.T, e *env)) {
	t.Run("loopback", func(t *testing.T) { f(t, newLoopbackEnv(t, opts)) })
	t.Run("twohost", func(t *testing.T) { f(t, newTwoHostEnv(t, opts)) })
}

func (e *env) dial(t testing.TB) (a, b *conn) {
	t.Helper()
	a, b, err := dial(testCtx(t), e.a, e.b)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return a, b
}

// waitState waits until c reaches state.
func waitState(t testing.TB, c *conn, state string) {
	t.Helper()
	if _, err := c.WaitState(testCtx(t), state); err != nil {
		t.Fatal(err)
	}
}

// pattern returns n bytes of the trace language's pattern (i % 251).
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}
