// Package lockcheck asserts at run time that a sync.Mutex is held: the
// functions named ...Locked call Held first, so that a call without the
// lock fails at once instead of racing.
package lockcheck

import "sync"

// Held panics with "WHAT called without its lock held" if mu is not
// locked. A sync.Mutex has no owner, so Held cannot tell whether the
// caller or another goroutine holds mu: it catches a call with mu
// unlocked, not a call while someone else holds it. It costs one
// compare-and-swap when mu is held.
func Held(mu *sync.Mutex, what string) {
	if mu.TryLock() {
		mu.Unlock()
		panic(what + " called without its lock held")
	}
}
