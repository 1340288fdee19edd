package lockcheck

import (
	"sync"
	"testing"
)

// TestHeld: Held returns while mu is locked and panics, naming what and
// leaving mu unlocked, while it is not.
func TestHeld(t *testing.T) {
	var mu sync.Mutex
	mu.Lock()
	Held(&mu, "f") // must not panic
	mu.Unlock()

	func() {
		defer func() {
			if p, want := recover(), "f called without its lock held"; p != want {
				t.Errorf("Held on an unlocked mutex: panic %v, want %q", p, want)
			}
		}()
		Held(&mu, "f")
	}()
	if !mu.TryLock() {
		t.Fatal("Held left the mutex locked")
	}
	mu.Unlock()
}
