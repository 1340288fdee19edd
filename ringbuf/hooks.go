package ringbuf

// Hooks are optional callbacks at the ring's interleaving points, for a
// deterministic scheduler (splicecheck's model) that wants to run another
// thread exactly there, and for tests that count cursor traffic. Any field
// may be nil. Install them with NewWithHooks; a Ring made by New has none,
// and then the only cost is one nil check per publish and per cursor load.
//
// The producer-side hooks run on the producer goroutine, the consumer-side
// hooks on the consumer goroutine, synchronously: a hook that blocks stops
// that side right there, with the ring in the state the field describes.
// Hooks must not call back into the Ring on the side that called them.
type Hooks struct {
	// BeforePublishHead runs after the producer copied the bytes
	// [head, next) into the ring and before it release-stores next into
	// Head. Until it returns the consumer cannot see those bytes.
	BeforePublishHead func(head, next uint64)
	// BeforePublishTail runs after the consumer copied the bytes
	// [tail, next) out of the ring and before it release-stores next into
	// Tail. Until it returns the producer cannot reuse that space.
	BeforePublishTail func(tail, next uint64)
	// BeforeLoadTail runs on the producer just before each acquire load of
	// Tail: the producer's only cross-core cursor read (a cache refresh or a
	// poll while it waits for space).
	BeforeLoadTail func()
	// BeforeLoadHead runs on the consumer just before each acquire load of
	// Head: the consumer's only cross-core cursor read.
	BeforeLoadHead func()
}

// The hooks are called from functions of their own, kept out of line, so
// that the data path's helpers (publishHead, refreshTail, ...) stay small:
// without hooks the data path pays a nil check of Ring.hooks, not a call.

//go:noinline
func (r *Ring) hookPublishHead(head, next uint64) {
	if f := r.hooks.BeforePublishHead; f != nil {
		f(head, next)
	}
}

//go:noinline
func (r *Ring) hookPublishTail(tail, next uint64) {
	if f := r.hooks.BeforePublishTail; f != nil {
		f(tail, next)
	}
}

//go:noinline
func (r *Ring) hookLoadTail() {
	if f := r.hooks.BeforeLoadTail; f != nil {
		f()
	}
}

//go:noinline
func (r *Ring) hookLoadHead() {
	if f := r.hooks.BeforeLoadHead; f != nil {
		f()
	}
}
