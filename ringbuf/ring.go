package ringbuf

import (
	"fmt"
	"io"
	"sync/atomic"
)

const (
	// MinSize is the smallest ring New accepts. It holds one byte, because
	// CircSpace always leaves one byte free.
	MinSize = 2
	// MaxSize is the largest ring New accepts (1 GiB).
	MaxSize = 1 << 30
	// DefaultSize is the RFC's per-direction ring size, 16 KiB; it mirrors
	// SPLICE_RING_SIZE (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06).
	DefaultSize = 16 << 10
)

// cacheLinePad keeps the read-mostly fields, the producer's line and the
// consumer's line apart. Unlike Linux's ____cacheline_aligned_in_smp
// (64 bytes on x86), it is 128 bytes: Go cannot align a heap object to a
// cache line, and Intel's adjacent-line prefetcher pulls lines in pairs.
const cacheLinePad = 128

// Bits of Ring.closed.
const (
	closedWrite = 1 << iota // CloseWrite: no more bytes; the reader drains, then io.EOF
	closedRead              // CloseRead: nobody reads; the writer gets ErrClosed
)

// Ring is a single-producer single-consumer byte ring with free-running
// Head and Tail cursors and a private cached copy of the other side's
// cursor on each side. The layout and the data path follow struct
// sk_psock_splice and splice_ring_write()/splice_ring_read()
// (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06); see the package
// documentation for ownership, ordering and invariants.
//
// Exactly one goroutine at a time may be the producer (Write, WriteFrom,
// Space, Writer) and one the consumer (Read, ReadTo, Len, Reader).
// Buffered, HasData, Size, Cap, CloseWrite and CloseRead are safe from any
// goroutine.
type Ring struct {
	_ [cacheLinePad]byte

	// Read-mostly: set by New; closed is written once per side.
	buf    []byte
	mask   uint64 // size - 1
	size   uint64
	low    uint64 // low-water mark of the blocking wrappers, size/4; see waitData
	hooks  *Hooks
	rwake  chan struct{} // one token per successful rparked 1->0 by a waker
	wwake  chan struct{} // likewise for wparked
	closed atomic.Uint32 // closedWrite | closedRead

	_ [cacheLinePad]byte

	// The producer's line. LOCKING: head is stored only by the producer
	// (release) and loaded by the consumer (acquire); cachedTail is the
	// producer's private copy of tail, never touched by the consumer.
	// rparked is set by a consumer about to park and cleared by whoever
	// wakes it; the producer loads it after every publish, so it lives on
	// the producer's line, where that load is a hit.
	head       atomic.Uint64
	cachedTail uint64
	rparked    atomic.Uint32

	_ [cacheLinePad]byte

	// The consumer's line, the mirror image: tail stored only by the
	// consumer, cachedHead private to it, wparked loaded after every
	// consumer publish. rpause is private to the consumer.
	tail       atomic.Uint64
	cachedHead uint64
	wparked    atomic.Uint32
	rpause     int // how long the consumer's last waitData spun, see resume

	_ [cacheLinePad]byte
}

// New returns an empty ring of size bytes, which must be a power of two in
// [MinSize, MaxSize]; otherwise the error wraps ErrSize. The ring stores at
// most size-1 bytes (CircSpace). The whole buffer is allocated here, so the
// data path never allocates, as splice_ring_alloc() does at pairing time
// (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06).
func New(size int) (*Ring, error) {
	return NewWithHooks(size, nil)
}

// NewWithHooks is New with interleaving hooks (see Hooks); h may be nil.
// The ring keeps h, so its fields must not change while the ring is used.
func NewWithHooks(size int, h *Hooks) (*Ring, error) {
	return newAt(size, 0, h)
}

// newAt starts both cursors at start instead of 0, so that tests can put
// the free-running cursors next to their 2^64 wrap.
func newAt(size int, start uint64, h *Hooks) (*Ring, error) {
	if size < MinSize || size > MaxSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("%w: %d is not a power of two in [%d, %d]", ErrSize, size, MinSize, MaxSize)
	}
	r := &Ring{
		buf:   make([]byte, size),
		mask:  uint64(size) - 1,
		size:  uint64(size),
		low:   max(uint64(size)/4, 1),
		hooks: h,
		rwake: make(chan struct{}, 1),
		wwake: make(chan struct{}, 1),
	}
	r.head.Store(start)
	r.tail.Store(start)
	r.cachedTail = start
	r.cachedHead = start
	return r, nil
}

// Size is the ring's size in bytes, as passed to New.
func (r *Ring) Size() int { return int(r.size) }

// Cap is the most bytes the ring can hold at once: Size()-1.
func (r *Ring) Cap() int { return int(r.size - 1) }

// ---- producer side ----

// Space is a lower bound on the free space, for the producer only. It
// answers from CachedTail and reads the consumer's Tail only when the cache
// says the ring is full, so the answer may be smaller than the true free
// space but never larger.
//
// Space mirrors splice_ring_space() (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06).
func (r *Ring) Space() int {
	head := r.head.Load()
	if s := CircSpace(head, r.cachedTail, r.size); s != 0 {
		return int(s)
	}
	return int(r.refreshTail(head))
}

// Write stores as much of p as fits and publishes it with one release
// store of Head. It never blocks: if only n < len(p) bytes fit it returns
// n and ErrFull (n may be 0). After CloseWrite or CloseRead it returns
// 0, ErrClosed. Producer only.
//
// It reads the consumer's Tail only when CachedTail shows less than
// len(p) bytes of space. Unlike the RFC, whose splice_ring_write() never
// refreshes and relies on a prior splice_ring_space(), which refreshes
// only at zero space, Write refreshes whenever the cached space is short of
// the request, so a short write means the ring really was full when Tail
// was read. Calling Space() and then Write(p[:Space()]) replays the RFC's
// exact loads.
//
// Write mirrors splice_ring_write() (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06).
func (r *Ring) Write(p []byte) (int, error) {
	if r.closed.Load() != 0 {
		return 0, ErrClosed
	}
	head := r.head.Load()
	want := uint64(len(p))
	space := CircSpace(head, r.cachedTail, r.size)
	if space < want {
		if r.hooks != nil {
			r.hookLoadTail()
		}
		space = r.loadTail(head)
	}
	n := min(want, space)
	if n == 0 {
		if want == 0 {
			return 0, nil
		}
		return 0, ErrFull
	}
	r.produce(head, p[:n])
	if n < want {
		return int(n), ErrFull
	}
	return int(n), nil
}

// WriteFrom moves up to max bytes from src straight into the ring, with
// at most two src.Read calls (one per contiguous part: up to the end of
// the buffer, then from its start), and publishes what arrived. As in the
// RFC, if the first part comes back short the second is not attempted.
// It never blocks on the ring: with no space it returns 0, ErrFull. src's
// error (io.EOF included) is returned as is, together with the count.
// Producer only; src must not retain the slice it is given.
//
// WriteFrom mirrors splice_ring_write() (net/ipv4/tcp_bpf.c, RFC bpf-next
// 2026-06) with src in the place of copy_from_iter().
func (r *Ring) WriteFrom(src io.Reader, max int) (int, error) {
	if r.closed.Load() != 0 {
		return 0, ErrClosed
	}
	if max <= 0 {
		return 0, nil
	}
	head := r.head.Load()
	space := CircSpace(head, r.cachedTail, r.size)
	if space < uint64(max) {
		space = r.refreshTail(head)
	}
	want := min(uint64(max), space)
	if want == 0 {
		return 0, ErrFull
	}
	return r.writeFrom(src, head, want)
}

// writeFrom copies want (<= the space the producer knows of) bytes from
// src into the ring at head, in at most two parts, and publishes them.
func (r *Ring) writeFrom(src io.Reader, head, want uint64) (int, error) {
	off := head & r.mask
	first := min(want, r.size-off)
	done, err := src.Read(r.buf[off : off+first])
	if done < 0 || uint64(done) > first {
		return 0, errInvalidCount
	}
	if uint64(done) == first && first < want && err == nil {
		var more int
		more, err = src.Read(r.buf[:want-first])
		if more < 0 || uint64(more) > want-first {
			more, err = 0, errInvalidCount
		}
		done += more
	}
	if done > 0 {
		if r.hooks != nil {
			r.hookPublishHead(head, head+uint64(done))
		}
		r.publishHead(head + uint64(done))
	}
	return done, err
}

// produce copies p into the ring at head and publishes it: the copy, the
// BeforePublishHead hook, the release of Head. The caller checked the
// space.
func (r *Ring) produce(head uint64, p []byte) {
	n := uint64(len(p))
	r.copyIn(head, p)
	if r.hooks != nil {
		r.hookPublishHead(head, head+n)
	}
	r.publishHead(head + n)
}

// consume copies len(p) bytes at tail out of the ring and releases their
// space: the copy, the BeforePublishTail hook, the release of Tail. The
// caller checked the count. It returns len(p).
func (r *Ring) consume(tail uint64, p []byte) int {
	n := uint64(len(p))
	r.copyOut(tail, p)
	if r.hooks != nil {
		r.hookPublishTail(tail, tail+n)
	}
	r.publishTail(tail + n)
	return len(p)
}

// copyIn copies p to the ring at head: the part up to the end of the
// buffer, then the rest from its start. The caller checked the space.
func (r *Ring) copyIn(head uint64, p []byte) {
	k := copy(r.buf[head&r.mask:], p)
	if k < len(p) {
		copy(r.buf, p[k:])
	}
}

// refreshTail is the producer's only read of the consumer's cursor: an
// acquire load of Tail into CachedTail, after the BeforeLoadTail hook. It
// returns the space it implies. The hot paths spell it out as the hook
// check and loadTail, which inlines.
//
// refreshTail mirrors the refresh in splice_ring_space() (net/ipv4/tcp_bpf.c,
// RFC bpf-next 2026-06), which pairs with the consumer's release of Tail.
func (r *Ring) refreshTail(head uint64) uint64 {
	if r.hooks != nil {
		r.hookLoadTail()
	}
	return r.loadTail(head)
}

// loadTail is refreshTail without the hook.
func (r *Ring) loadTail(head uint64) uint64 {
	r.cachedTail = r.tail.Load()
	return CircSpace(head, r.cachedTail, r.size)
}

// publishHead release-stores next into Head, after the bytes before it
// were copied, then wakes a parked consumer. The store and the load of
// rparked are sequentially consistent, which closes the lost-wakeup window
// that splice_wake_sync()'s smp_mb() closes before waitqueue_active()
// (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06). Unlike the RFC, which wakes
// once after its whole send loop, the ring checks after every publish: it
// has no enclosing sendmsg to wake from. Callers run the
// BeforePublishHead hook first (see hookPublishHead).
func (r *Ring) publishHead(next uint64) {
	r.head.Store(next)
	if r.rparked.Load() != 0 {
		r.wakeReader()
	}
}

// ---- consumer side ----

// Len is a lower bound on the bytes readable, for the consumer only. It
// answers from CachedHead and reads the producer's Head only when the cache
// says the ring is empty, so the answer may be smaller than the true count
// but never larger. It is the consumer's counterpart of Space.
//
// Unlike the RFC, where only the producer caches a cursor and
// splice_ring_read() loads ring_head on every call, the consumer caches
// Head too (see the package documentation, "Cached cursors").
func (r *Ring) Len() int {
	tail := r.tail.Load()
	if c := CircCnt(r.cachedHead, tail, r.size); c != 0 {
		return int(c)
	}
	return int(r.refreshHead(tail))
}

// Read copies up to len(p) bytes out of the ring and releases their space
// with one release store of Tail. It never blocks. It answers from
// CachedHead and reads the producer's Head only when the cache is
// exhausted, so it may return fewer bytes than the ring holds (as any
// io.Reader may); a following Read gets the rest. With nothing to read it
// returns 0 and ErrEmpty, or io.EOF once the producer has closed and every
// byte was read, or ErrClosed after CloseRead. Consumer only.
//
// Read mirrors splice_ring_read() (net/ipv4/tcp_bpf.c, RFC bpf-next
// 2026-06); unlike the RFC it loads Head only when CachedHead is used up.
func (r *Ring) Read(p []byte) (int, error) {
	if r.closed.Load()&closedRead != 0 {
		return 0, ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	tail := r.tail.Load()
	cnt := CircCnt(r.cachedHead, tail, r.size)
	if cnt == 0 {
		if r.hooks != nil {
			r.hookLoadHead()
		}
		if cnt = r.loadHead(tail); cnt == 0 {
			var err error
			if cnt, err = r.afterEmpty(tail); cnt == 0 {
				return 0, err
			}
		}
	}
	return r.consume(tail, p[:min(uint64(len(p)), cnt)]), nil
}

// afterEmpty runs after a load of Head found the ring empty and says why
// there is nothing: ErrEmpty, or io.EOF when the producer closed. The
// producer sets closedWrite after its last publish, so after seeing the
// flag Head is loaded once more, and what it finds is returned instead.
func (r *Ring) afterEmpty(tail uint64) (uint64, error) {
	if r.closed.Load()&closedWrite == 0 {
		return 0, ErrEmpty
	}
	if cnt := r.refreshHead(tail); cnt != 0 {
		return cnt, nil
	}
	return 0, io.EOF
}

// ReadTo hands up to max readable bytes straight from the ring to dst,
// with at most two dst.Write calls (one per contiguous part), and releases
// what dst accepted. As in the RFC, if the first part is taken short the
// second is not attempted. It never blocks on the ring: with nothing to
// read it returns 0 and ErrEmpty or io.EOF (see Read). dst's error is
// returned with the count; a short write without an error is reported as
// io.ErrShortWrite. Consumer only; dst must not retain the slice.
//
// ReadTo mirrors splice_ring_read() (net/ipv4/tcp_bpf.c, RFC bpf-next
// 2026-06) with dst in the place of copy_to_iter().
func (r *Ring) ReadTo(dst io.Writer, max int) (int, error) {
	if r.closed.Load()&closedRead != 0 {
		return 0, ErrClosed
	}
	if max <= 0 {
		return 0, nil
	}
	tail := r.tail.Load()
	cnt := CircCnt(r.cachedHead, tail, r.size)
	if cnt == 0 {
		if cnt = r.refreshHead(tail); cnt == 0 {
			var err error
			if cnt, err = r.afterEmpty(tail); cnt == 0 {
				return 0, err
			}
		}
	}
	return r.readTo(dst, tail, min(uint64(max), cnt))
}

// readTo hands want (<= the bytes the consumer knows of) bytes at tail to
// dst, in at most two parts, and publishes the new tail.
func (r *Ring) readTo(dst io.Writer, tail, want uint64) (int, error) {
	off := tail & r.mask
	first := min(want, r.size-off)
	done, err := dst.Write(r.buf[off : off+first])
	if done < 0 || uint64(done) > first {
		return 0, errInvalidCount
	}
	if err == nil && uint64(done) < first {
		err = io.ErrShortWrite
	}
	if err == nil && first < want {
		var more int
		more, err = dst.Write(r.buf[:want-first])
		if more < 0 || uint64(more) > want-first {
			more, err = 0, errInvalidCount
		}
		if err == nil && uint64(more) < want-first {
			err = io.ErrShortWrite
		}
		done += more
	}
	if done > 0 {
		if r.hooks != nil {
			r.hookPublishTail(tail, tail+uint64(done))
		}
		r.publishTail(tail + uint64(done))
	}
	return done, err
}

// copyOut copies len(p) bytes at tail out of the ring, in two parts at the
// wrap. The caller checked the count.
func (r *Ring) copyOut(tail uint64, p []byte) {
	k := copy(p, r.buf[tail&r.mask:])
	if k < len(p) {
		copy(p[k:], r.buf)
	}
}

// refreshHead is the consumer's only read of the producer's cursor: an
// acquire load of Head into CachedHead, after the BeforeLoadHead hook,
// pairing with the producer's release of Head as splice_ring_read() does
// (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06). It returns the count it
// implies. The hot paths spell it out as the hook check and loadHead.
func (r *Ring) refreshHead(tail uint64) uint64 {
	if r.hooks != nil {
		r.hookLoadHead()
	}
	return r.loadHead(tail)
}

// loadHead is refreshHead without the hook.
func (r *Ring) loadHead(tail uint64) uint64 {
	r.cachedHead = r.head.Load()
	return CircCnt(r.cachedHead, tail, r.size)
}

// publishTail release-stores next into Tail, after the bytes before it
// were copied out, then wakes a parked producer (see publishHead). Callers
// run the BeforePublishTail hook first (see hookPublishTail).
func (r *Ring) publishTail(next uint64) {
	r.tail.Store(next)
	if r.wparked.Load() != 0 {
		r.wakeWriter()
	}
}

// ---- any goroutine ----

// Buffered is the number of bytes in the ring at one instant during the
// call, from any goroutine. It reads the cursors alternately, Tail, Head,
// Tail, Head, ..., until one cursor reads the same on both sides of a read
// of the other: both cursors only grow, so the pair is then exactly the
// state at the instant of the middle read. It retries only while both
// sides publish between every two of its loads. It touches neither cache
// and calls no hooks.
//
// Unlike splice_ring_has_data() (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06),
// which reads head then tail once (see HasData), it cannot pair a Head
// with a Tail that has since overtaken it.
func (r *Ring) Buffered() int {
	t := r.tail.Load()
	h := r.head.Load()
	for {
		t2 := r.tail.Load()
		if t2 == t {
			return int(h - t) // Tail was t when Head was read
		}
		h2 := r.head.Load()
		if h2 == h {
			return int(h - t2) // Head was h when Tail was read
		}
		t, h = t2, h2
	}
}

// HasData reports whether the ring looks non-empty, from any goroutine,
// exactly as the RFC computes it: CircCnt of an acquire load of Head and a
// later load of Tail. Bugs included: if, between the two loads, the
// producer publishes more and the consumer reads past the Head already
// loaded, the masked difference is garbage and may report data that is
// not there. It is here for a faithful model of the RFC's poll path
// (tcp_bpf_is_readable); use Buffered for an exact answer.
//
// HasData mirrors splice_ring_has_data() (net/ipv4/tcp_bpf.c, RFC bpf-next
// 2026-06).
func (r *Ring) HasData() bool {
	h := r.head.Load()
	return CircCnt(h, r.tail.Load(), r.size) > 0
}

// CloseWrite tells the consumer no more bytes will come: once it has read
// every byte published before CloseWrite, Read returns io.EOF. Later
// producer calls return ErrClosed. It wakes both sides and is safe from
// any goroutine; bytes published concurrently with it, by a producer it
// does not happen after, may or may not be delivered. Always nil.
func (r *Ring) CloseWrite() error {
	r.closed.Or(closedWrite)
	r.wakeReader()
	r.wakeWriter()
	return nil
}

// CloseRead tells the producer nobody will read: producer calls return
// ErrClosed, and so do consumer calls. It wakes both sides and is safe
// from any goroutine. Always nil.
func (r *Ring) CloseRead() error {
	r.closed.Or(closedRead)
	r.wakeReader()
	r.wakeWriter()
	return nil
}
