package ringbuf

import (
	"io"
	"runtime"
)

// The blocking wrappers wait in two phases (package documentation,
// "Waiting"): spin while the other side is visibly making progress, and
// park on a channel as soon as it is not. The numbers
// are iterations of spin's loop, about 0.4 ns each on a 2.6 GHz core.
const (
	spinMin    = 256        // first pause between polls (~0.1 us)
	spinMax    = 8192       // longest pause between polls while nothing arrives (~3 us)
	quietSpin  = 2048       // a count that did not grow across this long a pause means the other side went quiet (~0.8 us)
	spinBudget = 64 << 10   // total spinning before giving up on spinning (~25 us)
	yieldPolls = 3          // Gosched-and-poll rounds after the budget, before parking
	noPoll     = ^uint64(0) // "no previous poll" marker for prev
)

// spin burns about n loop iterations without touching shared memory: the
// pause between two polls of the other side's cursor. Go has no PAUSE
// intrinsic outside the runtime.
//
//go:noinline
func spin(n int) (x uint32) {
	for i := 0; i < n; i++ {
		x += uint32(i)
	}
	return x
}

// waiter is the state of one wait: how long the last pause was, how much
// has been spun, and the count seen at the previous poll.
type waiter struct {
	pause  int
	spent  int
	yields int
	prev   uint64
}

func newWaiter(prev uint64) waiter { return waiter{pause: spinMin, prev: prev} }

// resume starts a wait whose first poll found cnt: if the other side is
// streaming (cnt > 0), the first pause is as long as the whole last wait,
// which is about how long a batch takes to arrive, so that a steady
// stream costs two polls per batch.
func resume(cnt uint64, last int) waiter {
	w := newWaiter(noPoll)
	if cnt > 0 {
		w.pause = min(max(last, spinMin), spinBudget)
	}
	return w
}

// step decides what to do after a poll that returned cnt (bytes readable
// for the consumer, bytes free for the producer) short of want: it returns
// done=true when cnt > 0 is worth taking anyway (the other side went
// quiet, or the spin budget is spent), and park=true when the caller
// should park. Otherwise it has paused or yielded and the caller polls
// again.
func (w *waiter) step(cnt, want uint64) (done, park bool) {
	prev := w.prev
	w.prev = cnt
	if w.spent >= spinBudget {
		if cnt > 0 {
			return true, false
		}
		if w.yields < yieldPolls {
			w.yields++
			runtime.Gosched()
			return false, false
		}
		return false, true
	}
	switch {
	case cnt == prev && cnt == 0:
		// Nothing, and no progress since the last poll: park at once.
		// The other side is either queued behind us on this P, or
		// running elsewhere but not publishing. Spinning or yielding
		// here (as this ring once did, for about 25 us) makes the two
		// sides alternate between a one-P hand-off and a cross-core
		// stream, which is what made 4 KiB writes bimodal (1.9 to 7.3
		// GB/s). Parking hands the P straight to the woken side, whose
		// copies then stay in this core's L1. On the 2-core EPYC that
		// is faster than any cross-core stream (spinring's 8.5 GB/s).
		return false, true
	case cnt == prev:
		// Something to take, and it stopped growing. Confirm with one
		// pause of quietSpin; if it still has not grown, take it.
		if w.pause >= quietSpin {
			return true, false
		}
		w.pause = quietSpin
	case prev != noPoll && cnt > prev:
		// Growing: aim the next poll at the moment it reaches want, or
		// at the end of the budget, when what is there is taken anyway.
		est := uint64(w.pause) * (want - cnt) / (cnt - prev)
		w.pause = int(max(min(est, uint64(spinBudget-w.spent)), spinMin))
	case prev == noPoll:
		// First pause of the wait: as resume chose it.
	default:
		w.pause = min(w.pause*2, spinMax)
	}
	spin(w.pause)
	w.spent += w.pause
	return false, false
}

// ---- consumer ----

// Reader is the consumer's blocking view of a Ring: an io.Reader, io.WriterTo
// and io.Closer. Only the consumer goroutine may use it.
type Reader struct{ r *Ring }

// Reader returns the blocking consumer view of r.
func (r *Ring) Reader() Reader { return Reader{r} }

// Read blocks until it can return at least one byte, io.EOF (the producer
// closed and every byte was read) or ErrClosed (CloseRead). If it finds
// bytes it already knows of (CachedHead) it returns them at once.
// Otherwise, while the producer keeps publishing, it waits, about 25 us at
// most, until it can fill p or a quarter of the ring, so that a fast
// reader does not pull the producer's cache line once per small write;
// once the producer pauses (no growth across about a microsecond) it
// returns what is there.
func (rd Reader) Read(p []byte) (int, error) {
	r := rd.r
	if r.closed.Load()&closedRead != 0 {
		return 0, ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	tail := r.tail.Load()
	cnt := CircCnt(r.cachedHead, tail, r.size)
	if cnt == 0 {
		var err error
		if cnt, err = r.waitData(tail, uint64(len(p))); cnt == 0 {
			return 0, err
		}
	}
	return r.consume(tail, p[:min(uint64(len(p)), cnt)]), nil
}

// WriteTo hands every byte to dst, straight from the ring, until the
// producer closes (then it returns nil) or dst or the ring fails.
func (rd Reader) WriteTo(dst io.Writer) (int64, error) {
	r := rd.r
	var total int64
	for {
		if r.closed.Load()&closedRead != 0 {
			return total, ErrClosed
		}
		tail := r.tail.Load()
		cnt := CircCnt(r.cachedHead, tail, r.size)
		if cnt == 0 {
			var err error
			if cnt, err = r.waitData(tail, r.size); cnt == 0 {
				if err == io.EOF {
					err = nil
				}
				return total, err
			}
		}
		n, err := r.readTo(dst, tail, cnt)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// Close is CloseRead.
func (rd Reader) Close() error { return rd.r.CloseRead() }

// waitData waits until the ring holds something worth returning to a read
// of up to max bytes, and returns the count (> 0), or 0 and io.EOF or
// ErrClosed. Consumer only; CachedHead is up to date on return.
//
// The consumer waits for want = min(max, low) bytes and the producer (see
// waitSpace) for low bytes of space, low being a quarter of the ring. The
// two add up to at most half the ring, less than Cap+1: since count plus
// space is always Cap, at any instant at least one side has what it waits
// for, so the two never wait on each other. (With low at half the ring
// they can, until the quiet check gives up: 4 KiB writes through a 16 KiB
// ring then run seven times slower.)
func (r *Ring) waitData(tail, max uint64) (uint64, error) {
	want := min(max, r.low)
	var w waiter
	for first := true; ; first = false {
		cnt := r.refreshHead(tail)
		if first {
			w = resume(cnt, r.rpause)
		}
		if cnt >= want {
			r.rpause = w.spent
			return cnt, nil
		}
		if st := r.closed.Load(); st != 0 {
			if st&closedRead != 0 {
				return 0, ErrClosed
			}
			return r.afterEmpty(tail)
		}
		done, park := w.step(cnt, want)
		if done {
			r.rpause = w.spent
			return cnt, nil
		}
		if park {
			r.parkReader(tail)
			w = newWaiter(noPoll)
		}
	}
}

// parkReader sleeps until a producer publish or a close, unless the ring
// already has data or is closed. The store of rparked and the loads after
// it are sequentially consistent, pairing with publishHead's store of Head
// and load of rparked: one of the two sides always sees the other, the
// way set_current_state() pairs with splice_wake_sync()'s smp_mb()
// (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06).
func (r *Ring) parkReader(tail uint64) {
	r.rparked.Store(1)
	if r.refreshHead(tail) != 0 || r.closed.Load() != 0 {
		if r.rparked.CompareAndSwap(1, 0) {
			return
		}
		// A waker won the flag and owes us its token.
	}
	<-r.rwake
}

// wakeReader wakes a parked consumer. Only the caller that turns rparked
// from 1 to 0 sends, so at most one token is ever in rwake. It is kept out
// of line so that publishHead, which calls it only when rparked is set,
// stays small enough to inline.
//
//go:noinline
func (r *Ring) wakeReader() {
	if r.rparked.CompareAndSwap(1, 0) {
		r.rwake <- struct{}{}
	}
}

// ---- producer ----

// Writer is the producer's blocking view of a Ring: an io.Writer,
// io.ReaderFrom and io.Closer. Only the producer goroutine may use it.
type Writer struct{ r *Ring }

// Writer returns the blocking producer view of r.
func (r *Ring) Writer() Writer { return Writer{r} }

// Write stores all of p, waiting for space as needed, unless a side
// closes (ErrClosed, with the count stored so far). When the ring is full
// it waits, about 25 us at most, until a quarter of the ring is free, so
// that it does not pull the consumer's cache line once per small read.
func (wr Writer) Write(p []byte) (int, error) {
	r := wr.r
	total := 0
	for {
		if r.closed.Load() != 0 {
			return total, ErrClosed
		}
		head := r.head.Load()
		space := CircSpace(head, r.cachedTail, r.size)
		if space < uint64(len(p)) {
			if r.hooks != nil {
				r.hookLoadTail()
			}
			if space = r.loadTail(head); space == 0 {
				var err error
				if space, err = r.waitSpace(head); space == 0 {
					return total, err
				}
			}
		}
		n := min(uint64(len(p)), space)
		r.produce(head, p[:n])
		total += int(n)
		if p = p[n:]; len(p) == 0 {
			return total, nil
		}
	}
}

// ReadFrom moves bytes from src into the ring, straight into its buffer,
// waiting for space as needed, until src returns io.EOF (then it returns
// nil) or an error, or a side closes.
func (wr Writer) ReadFrom(src io.Reader) (int64, error) {
	r := wr.r
	var total int64
	for {
		if r.closed.Load() != 0 {
			return total, ErrClosed
		}
		head := r.head.Load()
		space := CircSpace(head, r.cachedTail, r.size)
		if space == 0 {
			space = r.refreshTail(head)
			if space == 0 {
				var err error
				if space, err = r.waitSpace(head); space == 0 {
					return total, err
				}
			}
		}
		n, err := r.writeFrom(src, head, space)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close is CloseWrite.
func (wr Writer) Close() error { return wr.r.CloseWrite() }

// waitSpace waits, after a refresh found the ring full, until it has
// space worth writing into, and returns it (> 0), or 0 and ErrClosed.
// Producer only; CachedTail is up to date on return.
func (r *Ring) waitSpace(head uint64) (uint64, error) {
	want := r.low
	w := newWaiter(0) // the refresh that brought us here saw no space
	space := uint64(0)
	for {
		if r.closed.Load() != 0 {
			return 0, ErrClosed
		}
		done, park := w.step(space, want)
		if done {
			return space, nil
		}
		if park {
			r.parkWriter(head)
			w = newWaiter(noPoll)
		}
		if space = r.refreshTail(head); space >= want {
			return space, nil
		}
	}
}

// parkWriter sleeps until a consumer publish or a close, unless the ring
// already has space or is closed; see parkReader.
func (r *Ring) parkWriter(head uint64) {
	r.wparked.Store(1)
	if r.refreshTail(head) != 0 || r.closed.Load() != 0 {
		if r.wparked.CompareAndSwap(1, 0) {
			return
		}
	}
	<-r.wwake
}

// wakeWriter wakes a parked producer; see wakeReader.
//
//go:noinline
func (r *Ring) wakeWriter() {
	if r.wparked.CompareAndSwap(1, 0) {
		r.wwake <- struct{}{}
	}
}
