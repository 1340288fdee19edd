package model

import "fmt"

// checkInvariants verifies, between ops, the invariants every path must
// keep: each attached psock's queues (SkPsock.CheckQueues) and reference
// counts that never go negative (a put without its get). A violation is
// returned wrapping ErrInvariant; the run stops there, so a campaign sees
// it as the model-sound property failing.
//
// Precondition: no model thread is running (between two settles).
func (k *kernel) checkInvariants() error {
	for _, sk := range k.sockSeq {
		if sk.SkRefcnt < 0 {
			return fmt.Errorf("%w: socket %s: sk_refcnt %d", ErrInvariant, sk.Name, sk.SkRefcnt)
		}
		p := sk.SkUserData
		if p == nil {
			continue
		}
		if p.Refcnt < 0 {
			return fmt.Errorf("%w: socket %s: psock refcnt %d", ErrInvariant, sk.Name, p.Refcnt)
		}
		if s := p.CheckQueues(); s != "" {
			return fmt.Errorf("%w: socket %s: psock %s", ErrInvariant, sk.Name, s)
		}
	}
	return nil
}
