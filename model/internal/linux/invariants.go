package linux

import "fmt"

// checkInvariants verifies, between ops, the invariants every path must
// keep: each attached psock's queues (psock.CheckQueues) and reference
// counts that never go negative (a put without its get). A violation is
// returned wrapping errInvariant; the run stops there, so a campaign sees
// it as the model-sound property failing.
//
// Precondition: no model thread is running (between two settles).
func (k *kernel) checkInvariants() error {
	for _, sk := range k.sockSeq {
		if sk.SkRefcnt < 0 {
			return fmt.Errorf("%w: socket %s: sk_refcnt %d", errInvariant, sk.Name, sk.SkRefcnt)
		}
		p := sk.SkUserData
		if p == nil {
			continue
		}
		if p.Refcnt < 0 {
			return fmt.Errorf("%w: socket %s: psock refcnt %d", errInvariant, sk.Name, p.Refcnt)
		}
		if s := p.CheckQueues(); s != "" {
			return fmt.Errorf("%w: socket %s: psock %s", errInvariant, sk.Name, s)
		}
	}
	return nil
}

// checkRings verifies, at the end of a run, each loopback-splice ring's
// cursor invariants (ringbuf's Cursors.Check: the cursors in order, the
// bytes in flight within the size, each cached cursor between the tail
// and the head). A violation is a Fault (kind "ring-invariant", site
// "ring", or "ring/concurrent-readers" or "-writers" when two reads or
// writes of the ring overlapped) wrapping errInvariant and ringbuf's
// ErrInvariant, and, as checkInvariants', stops the run.
//
// Precondition: every thread has finished (both sides of every ring are
// quiescent, as Cursors requires).
func (k *kernel) checkRings() error {
	for _, s := range k.splice.all {
		if s.Ring == nil {
			continue
		}
		if err := s.Ring.CheckInvariants(); err != nil {
			site := "ring"
			switch {
			case s.concurrentReads:
				site = "ring/concurrent-readers"
			case s.concurrentWrites:
				site = "ring/concurrent-writers"
			}
			return &Fault{Err: fmt.Errorf("%w: %w", errInvariant, err), Kind: "ring-invariant", Site: site,
				Msg: s.Psock.Sk.Name + "'s splice ring"}
		}
	}
	return nil
}
