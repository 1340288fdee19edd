package ringbuf

import "fmt"

// Cursors is a snapshot of a ring's four cursors, free-running (unmasked).
type Cursors struct {
	Head       uint64 // next byte the producer writes; stored by the producer
	Tail       uint64 // next byte the consumer reads; stored by the consumer
	CachedTail uint64 // the producer's private copy of Tail
	CachedHead uint64 // the consumer's private copy of Head
}

// Cursors returns the ring's cursors. The cached ones are private to their
// side, so call it only while neither side is inside a Ring call, or from
// a goroutine ordered after both (a deterministic scheduler between steps,
// a hook that has stopped both sides, a test after joining its goroutines).
func (r *Ring) Cursors() Cursors {
	return Cursors{
		Head:       r.head.Load(),
		Tail:       r.tail.Load(),
		CachedTail: r.cachedTail,
		CachedHead: r.cachedHead,
	}
}

// Check reports whether c satisfies the ring invariants of a ring of size
// bytes, with an error wrapping ErrInvariant naming the first that fails.
// All differences are taken modulo 2^64, as the cursors are free-running:
//
//	0 <= Head - Tail <= size-1            (CircSpace keeps one byte free)
//	0 <= Tail - CachedTail                (the cached tail never runs ahead of Tail)
//	0 <= Head - CachedTail <= size-1      (the producer never overwrote unread bytes)
//	0 <= CachedHead - Tail                (the consumer never read past what it saw)
//	0 <= Head - CachedHead                (the cached head never runs ahead of Head)
func (c Cursors) Check(size uint64) error {
	fail := func(what string) error {
		return fmt.Errorf("%w: %s (size %d, head %d, tail %d, cached tail %d, cached head %d)",
			ErrInvariant, what, size, c.Head, c.Tail, c.CachedTail, c.CachedHead)
	}
	// A "negative" difference shows up as a huge uint64; every legal
	// difference is below size.
	switch {
	case c.Head-c.Tail > size-1:
		return fail("head - tail outside [0, size-1]")
	case c.Tail-c.CachedTail > c.Head-c.CachedTail:
		return fail("cached tail ahead of tail")
	case c.Head-c.CachedTail > size-1:
		return fail("head - cached tail outside [0, size-1]")
	case c.CachedHead-c.Tail > c.Head-c.Tail:
		return fail("cached head behind tail or ahead of head")
	}
	return nil
}

// CheckInvariants is r.Cursors().Check(size); the same quiescence rule
// as Cursors applies.
func (r *Ring) CheckInvariants() error {
	return r.Cursors().Check(r.size)
}
