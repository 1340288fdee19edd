package linux

import (
	"errors"
	"testing"
)

// TestPopFront checks that queues drained with popFront keep FIFO order
// across drains, shifts and reslices, and that a short queue that never
// drains keeps its array.
func TestPopFront(t *testing.T) {
	var q []uint64
	next, want := uint64(0), uint64(0)
	for round := range 1000 {
		for range round%7 + 1 {
			q = append(q, next)
			next++
		}
		for range round % 5 {
			if len(q) == 0 {
				break
			}
			var w uint64
			if w, q = popFront(q); w != want {
				t.Fatalf("round %d: popped %d, want %d", round, w, want)
			}
			want++
		}
		if len(q) != int(next-want) {
			t.Fatalf("round %d: len %d, want %d", round, len(q), next-want)
		}
	}
	for len(q) > 0 {
		var w uint64
		if w, q = popFront(q); w != want {
			t.Fatalf("drain: popped %d, want %d", w, want)
		}
		want++
	}
	// A queue with one element always pending keeps its array: a push
	// and a pop allocate nothing.
	q = make([]uint64, 1, 2)
	if n := testing.AllocsPerRun(1000, func() {
		q = append(q, 0)
		_, q = popFront(q)
	}); n != 0 {
		t.Errorf("a push and a pop of a queue of one or two elements allocate %v times", n)
	}
}

// TestAbortStepFaultIsRunError checks that a page fault in a runner abort
// step (kernel code the scheduler runs on its own goroutine, as a close
// or a pipe release cutting a timed-out op short) becomes the run's
// error, wrapping ErrPageOwnership, instead of a panic of the process.
func TestAbortStepFaultIsRunError(t *testing.T) {
	s := newSched(nil)
	task := &task{Name: "t1", s: s}
	task.abortSteps = []func(){func() { fault("double-put", "put_page on freed page %d", 1) }}
	task.abortStep()
	if !errors.Is(s.fatal, ErrPageOwnership) {
		t.Fatalf("fatal = %v, want a fault wrapping ErrPageOwnership", s.fatal)
	}
	var f *Fault
	if !errors.As(s.fatal, &f) || f.Kind != "double-put" {
		t.Fatalf("fatal = %#v, want a Fault of kind double-put", s.fatal)
	}
}
