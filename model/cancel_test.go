package model

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// TestRunHonoursContext: an iocopy between the two ends of one connection
// feeds itself, and reaches an op timeout of an hour in virtual time
// only after about 90,000 rounds (each waits out a delayed ACK, 40 ms of
// virtual time, for Nagle holds the echo's second chunk until it: as on
// Linux; some seconds of real time). A campaign's per-run timeout must
// stop it inside the op, not at the next op boundary: the run fails with
// the context's error within a few seconds.
func TestRunHonoursContext(t *testing.T) {
	src := "conn a1 a2\nsend a2 16400 dontwait\niocopy a1 a2\n"
	tr, err := trace.Parse("echo.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	obs, err := New().RunTrace(ctx, tr, trace.Options{OpTimeout: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run ended with %v and %d observations, want the context's deadline", err, len(obs))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the run stopped %v after its 50 ms deadline: not inside the op", d)
	}
}
