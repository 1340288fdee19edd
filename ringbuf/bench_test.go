package ringbuf

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The comparison runs one producer (the calling goroutine) and one
// consumer goroutine over each transport, moving fixed-size writes; the
// consumer reads into a 16 KiB buffer. Every transport buffers 16 KiB.
const (
	benchRing = DefaultSize // bytes buffered by every transport
	benchRead = 16 << 10    // the consumer's read buffer
)

// writeSizes are the write sizes of the targets in the issue.
var writeSizes = []struct {
	name string
	n    int
}{{"64KiB", 64 << 10}, {"4KiB", 4 << 10}, {"64B", 64}, {"1B", 1}}

// A transport makes a fresh producer/consumer pair.
type transport struct {
	name string
	make func(n int) (w io.WriteCloser, r io.Reader) // n: the write size
}

var transports = []transport{
	{"ring", func(int) (io.WriteCloser, io.Reader) {
		r, err := New(benchRing)
		if err != nil {
			panic(err)
		}
		return r.Writer(), r.Reader()
	}},
	{"iopipe", func(int) (io.WriteCloser, io.Reader) {
		r, w := io.Pipe()
		return w, r
	}},
	{"chan", func(n int) (io.WriteCloser, io.Reader) {
		return newChanPipe(max(benchRing/n, 1))
	}},
	{"condring", func(int) (io.WriteCloser, io.Reader) {
		c := newCondRing(benchRing)
		return c, c
	}},
	{"spinring", func(int) (io.WriteCloser, io.Reader) {
		s := newSpinRing(benchRing)
		return s, s
	}},
}

// stream moves count writes of n bytes from the calling goroutine to a
// consumer goroutine and returns the time from the first write until the
// consumer has read the last byte.
func stream(tr transport, n, count int) (time.Duration, error) {
	w, r := tr.make(n)
	src := make([]byte, n)
	for i := range src {
		src[i] = byte(i)
	}
	got := make(chan int64, 1)
	start := time.Now()
	go func() {
		buf := make([]byte, benchRead)
		var total int64
		for {
			k, err := r.Read(buf)
			total += int64(k)
			if err != nil {
				break
			}
		}
		got <- total
	}()
	for range count {
		if _, err := w.Write(src); err != nil {
			return 0, err
		}
	}
	w.Close()
	total := <-got
	d := time.Since(start)
	if want := int64(n) * int64(count); total != want {
		return 0, fmt.Errorf("%s: consumer read %d bytes, want %d", tr.name, total, want)
	}
	return d, nil
}

// memmove copies src to dst count times and returns the time taken.
func memmove(dst, src []byte, count int) time.Duration {
	start := time.Now()
	for range count {
		copy(dst, src)
	}
	return time.Since(start)
}

// BenchmarkCompare is the comparison of the issue, in one run:
//
//	go test -run '^$' -bench Compare -count 10 ./ringbuf
//
// memmove-64KiB is the physical anchor; ring, iopipe, chan (a buffered
// channel of []byte), condring (a mutex+cond ring) and spinring (a naive
// lock-free ring without cached cursors) each stream 4 KiB, 64-byte and
// 1-byte writes. Every case reports MB/s and writes/s.
// TestReport turns repeated runs into medians and ratios.
func BenchmarkCompare(b *testing.B) {
	b.Run("memmove-64KiB", func(b *testing.B) {
		src, dst := make([]byte, 64<<10), make([]byte, 64<<10)
		b.SetBytes(int64(len(src)))
		b.ResetTimer()
		d := memmove(dst, src, b.N)
		b.ReportMetric(float64(b.N)/d.Seconds(), "copies/s")
	})
	for _, ws := range writeSizes {
		for _, tr := range transports {
			b.Run(tr.name+"/"+ws.name, func(b *testing.B) {
				b.SetBytes(int64(ws.n))
				b.ResetTimer()
				d, err := stream(tr, ws.n, b.N)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/d.Seconds(), "writes/s")
			})
		}
	}
	// The ring again with both goroutines forced onto one P: the case
	// where a spinning waiter would starve the side it waits for.
	b.Run("ring-1P/4KiB", func(b *testing.B) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		b.SetBytes(4 << 10)
		b.ResetTimer()
		d, err := stream(transports[0], 4<<10, b.N)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/d.Seconds(), "writes/s")
	})
}

// ---- the comparison transports ----

// chanPipe is the idiomatic channel transport: each Write sends a copy of
// its bytes on a channel buffering slots messages (the stream sizes it to
// hold 16 KiB); Read takes one message, then any that are already queued.
type chanPipe struct {
	ch      chan []byte
	pending []byte
}

func newChanPipe(slots int) (*chanPipe, *chanPipe) {
	c := &chanPipe{ch: make(chan []byte, slots)}
	return c, c
}

func (c *chanPipe) Write(p []byte) (int, error) {
	c.ch <- append([]byte(nil), p...)
	return len(p), nil
}

func (c *chanPipe) Close() error { close(c.ch); return nil }

func (c *chanPipe) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.pending) == 0 {
			var ok bool
			if n == 0 {
				c.pending, ok = <-c.ch
			} else {
				select {
				case c.pending, ok = <-c.ch:
				default:
					return n, nil
				}
			}
			if !ok {
				if n > 0 {
					return n, nil
				}
				return 0, io.EOF
			}
		}
		k := copy(p[n:], c.pending)
		c.pending = c.pending[k:]
		n += k
	}
	return n, nil
}

// condRing is the textbook locked ring: one mutex, two condition
// variables, a signal after every operation.
type condRing struct {
	mu                sync.Mutex
	notEmpty, notFull sync.Cond
	buf               []byte
	head, tail        uint64
	closed            bool
}

func newCondRing(size int) *condRing {
	c := &condRing{buf: make([]byte, size)}
	c.notEmpty.L = &c.mu
	c.notFull.L = &c.mu
	return c
}

func (c *condRing) Write(p []byte) (int, error) {
	size := uint64(len(c.buf))
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for len(p) > 0 {
		for c.head-c.tail == size && !c.closed {
			c.notFull.Wait()
		}
		if c.closed {
			return total, errors.New("condring closed")
		}
		n := min(uint64(len(p)), size-(c.head-c.tail))
		off := c.head % size
		k := copy(c.buf[off:], p[:n])
		copy(c.buf, p[k:n])
		c.head += n
		p = p[n:]
		total += int(n)
		c.notEmpty.Signal()
	}
	return total, nil
}

func (c *condRing) Read(p []byte) (int, error) {
	size := uint64(len(c.buf))
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head == c.tail && !c.closed {
		c.notEmpty.Wait()
	}
	if c.head == c.tail {
		return 0, io.EOF
	}
	n := min(uint64(len(p)), c.head-c.tail)
	off := c.tail % size
	k := copy(p[:n], c.buf[off:])
	copy(p[k:n], c.buf)
	c.tail += n
	c.notFull.Signal()
	return int(n), nil
}

func (c *condRing) Close() error {
	c.mu.Lock()
	c.closed = true
	c.notEmpty.Broadcast()
	c.notFull.Broadcast()
	c.mu.Unlock()
	return nil
}

// ---- the cost of the hooks ----

// bareWrite and bareRead are verbatim copies of Write and Read with the
// hook checks deleted and nothing else changed: the ring as it would be
// without Hooks, the floor the unhooked ring is compared against.
func bareWrite(r *Ring, p []byte) (int, error) {
	if r.closed.Load() != 0 {
		return 0, ErrClosed
	}
	head := r.head.Load()
	want := uint64(len(p))
	space := CircSpace(head, r.cachedTail, r.size)
	if space < want {
		space = r.loadTail(head)
	}
	n := min(want, space)
	if n == 0 {
		if want == 0 {
			return 0, nil
		}
		return 0, ErrFull
	}
	r.copyIn(head, p[:n])
	r.publishHead(head + n)
	if n < want {
		return int(n), ErrFull
	}
	return int(n), nil
}

func bareRead(r *Ring, p []byte) (int, error) {
	if r.closed.Load()&closedRead != 0 {
		return 0, ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	tail := r.tail.Load()
	cnt := CircCnt(r.cachedHead, tail, r.size)
	if cnt == 0 {
		if cnt = r.loadHead(tail); cnt == 0 {
			var err error
			if cnt, err = r.afterEmpty(tail); cnt == 0 {
				return 0, err
			}
		}
	}
	n := min(uint64(len(p)), cnt)
	r.copyOut(tail, p[:n])
	r.publishTail(tail + n)
	return int(n), nil
}

// BenchmarkHooks measures one 64-byte Write plus one 64-byte Read on one
// goroutine (no contention, so the hook checks are not hidden behind
// cache misses) for: bare (no hook checks at all), unhooked (New: the
// nil check), nilfields (a Hooks with every field nil) and noop (every
// field a no-op function). unhooked should match bare within noise.
func BenchmarkHooks(b *testing.B) {
	noop := &Hooks{
		BeforePublishHead: func(uint64, uint64) {},
		BeforePublishTail: func(uint64, uint64) {},
		BeforeLoadTail:    func() {},
		BeforeLoadHead:    func() {},
	}
	for _, c := range []struct {
		name  string
		hooks *Hooks
		bare  bool
	}{{"bare", nil, true}, {"unhooked", nil, false}, {"nilfields", &Hooks{}, false}, {"noop", noop, false}} {
		b.Run(c.name, func(b *testing.B) {
			r, err := NewWithHooks(benchRing, c.hooks)
			if err != nil {
				b.Fatal(err)
			}
			p, q := make([]byte, 64), make([]byte, 64)
			b.SetBytes(64)
			b.ResetTimer()
			if c.bare {
				for range b.N {
					bareWrite(r, p)
					bareRead(r, q)
				}
				return
			}
			for range b.N {
				r.Write(p)
				r.Read(q)
			}
		})
	}
}

// BenchmarkHookCost compares the unhooked ring with bare in one loop,
// alternating blocks of 1024 iterations of each, so that drift in clock
// speed or cache state between separate benchmarks (which shows up as a
// difference of either sign depending on their order) cancels out. It
// reports unhooked/bare, the ratio of their times; 1 means the nil checks
// cost nothing measurable.
func BenchmarkHookCost(b *testing.B) {
	tb, tu := hookCost(b.N)
	blocks := float64((b.N + hookBlock - 1) / hookBlock * hookBlock)
	b.ReportMetric(float64(tb.Nanoseconds())/blocks, "bare-ns/op")
	b.ReportMetric(float64(tu.Nanoseconds())/blocks, "unhooked-ns/op")
	b.ReportMetric(float64(tu)/float64(tb), "unhooked/bare")
}

const hookBlock = 1024

// hookCost runs n write+read pairs (rounded up to blocks) on a bare and
// an unhooked ring, in alternating blocks, and returns the time of each.
func hookCost(n int) (bare, unhooked time.Duration) {
	rb, err := New(benchRing)
	if err != nil {
		panic(err)
	}
	ru, _ := New(benchRing)
	p, q := make([]byte, 64), make([]byte, 64)
	runBare := func() time.Duration {
		t0 := time.Now()
		for range hookBlock {
			bareWrite(rb, p)
			bareRead(rb, q)
		}
		return time.Since(t0)
	}
	runUnhooked := func() time.Duration {
		t0 := time.Now()
		for range hookBlock {
			ru.Write(p)
			ru.Read(q)
		}
		return time.Since(t0)
	}
	for i := 0; i < n; i += hookBlock {
		// ABBA order, so that neither side always runs second.
		if i/hookBlock%2 == 0 {
			bare += runBare()
			unhooked += runUnhooked()
		} else {
			unhooked += runUnhooked()
			bare += runBare()
		}
	}
	return bare, unhooked
}

// BenchmarkLoads reports the cross-core cursor loads per write
// (loads/write) of 64-byte writes through a 16 KiB ring between two
// goroutines, counted by hooks on the loads alone.
func BenchmarkLoads(b *testing.B) {
	b.SetBytes(64)
	c := crossCoreRun(b, benchRing, 64, b.N)
	b.ReportMetric(float64(c.tail+c.head)/float64(b.N), "loads/write")
}

// spinRing is the naive lock-free ring: no cached cursors (every Write
// loads Tail, every Read loads Head), no one byte kept free, and waits
// that spin on the other cursor, yielding every 64 polls so that two
// goroutines on one P still progress. It is the reference for what the
// hardware gives a cross-core byte stream, and for what the caches and
// the batching waits of Ring buy.
type spinRing struct {
	_      [cacheLinePad]byte
	head   atomic.Uint64
	_      [cacheLinePad]byte
	tail   atomic.Uint64
	_      [cacheLinePad]byte
	buf    []byte
	closed atomic.Bool
}

func newSpinRing(size int) *spinRing { return &spinRing{buf: make([]byte, size)} }

func spinYield(i *int) {
	if *i++; *i%64 == 0 {
		runtime.Gosched()
	}
}

func (s *spinRing) Write(p []byte) (int, error) {
	size := uint64(len(s.buf))
	total := 0
	for polls := 0; len(p) > 0; {
		h := s.head.Load()
		free := size - (h - s.tail.Load())
		if free == 0 {
			spinYield(&polls)
			continue
		}
		n := min(uint64(len(p)), free)
		k := copy(s.buf[h%size:], p[:n])
		copy(s.buf, p[k:n])
		s.head.Store(h + n)
		p = p[n:]
		total += int(n)
	}
	return total, nil
}

func (s *spinRing) Read(p []byte) (int, error) {
	size := uint64(len(s.buf))
	for polls := 0; ; spinYield(&polls) {
		t := s.tail.Load()
		h := s.head.Load()
		if h == t {
			if s.closed.Load() && s.head.Load() == t {
				return 0, io.EOF
			}
			continue
		}
		n := min(uint64(len(p)), h-t)
		k := copy(p[:n], s.buf[t%size:])
		copy(p[k:n], s.buf)
		s.tail.Store(t + n)
		return int(n), nil
	}
}

func (s *spinRing) Close() error { s.closed.Store(true); return nil }
