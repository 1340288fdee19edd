package model

import "testing"

// TestKworkQueue checks the FIFO order of kworkQueue across drains and
// compactions, and that a queue that never drains stays bounded.
func TestKworkQueue(t *testing.T) {
	var q kworkQueue
	next, want := uint64(0), uint64(0)
	for round := range 1000 {
		for range round%7 + 1 {
			q.push(kwork{seq: next})
			next++
		}
		for range round % 5 {
			if q.len() == 0 {
				break
			}
			if w := q.pop(); w.seq != want {
				t.Fatalf("round %d: popped %d, want %d", round, w.seq, want)
			}
			want++
		}
		if q.len() != int(next-want) {
			t.Fatalf("round %d: len %d, want %d", round, q.len(), next-want)
		}
	}
	for q.len() > 0 {
		if w := q.pop(); w.seq != want {
			t.Fatalf("drain: popped %d, want %d", w.seq, want)
		}
		want++
	}
	// A queue with one context always pending: its array must not grow.
	q = kworkQueue{}
	q.push(kwork{})
	for range 10000 {
		q.push(kwork{})
		q.pop()
	}
	if c := cap(q.q); c > 8 {
		t.Errorf("a queue of one or two contexts grew to %d slots", c)
	}
}
