package ringbuf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Compile-time checks of the interfaces the views promise.
var (
	_ io.Writer     = (*Ring)(nil)
	_ io.Reader     = (*Ring)(nil)
	_ io.Writer     = Writer{}
	_ io.ReaderFrom = Writer{}
	_ io.Closer     = Writer{}
	_ io.Reader     = Reader{}
	_ io.WriterTo   = Reader{}
	_ io.Closer     = Reader{}
)

func mustNewAt(t testing.TB, size int, start uint64) *Ring {
	t.Helper()
	r, err := newAt(size, start, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// resetAt empties r and puts all four cursors at start. The caller owns
// both sides.
func resetAt(r *Ring, start uint64) *Ring {
	r.head.Store(start)
	r.tail.Store(start)
	r.cachedTail, r.cachedHead = start, start
	return r
}

func TestNewSize(t *testing.T) {
	for size := MinSize; size <= 1<<20; size *= 2 {
		r, err := New(size)
		if err != nil {
			t.Fatalf("New(%d): %v", size, err)
		}
		if r.Size() != size || r.Cap() != size-1 {
			t.Fatalf("New(%d): Size %d Cap %d", size, r.Size(), r.Cap())
		}
		if err := r.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	}
	for _, size := range []int{-16, -1, 0, 1, 3, 6, 1000, DefaultSize + 1, DefaultSize - 1, MaxSize * 2, MaxSize + 1} {
		r, err := New(size)
		if !errors.Is(err, ErrSize) || r != nil {
			t.Fatalf("New(%d) = %v, %v; want nil and ErrSize", size, r, err)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(size)) {
			t.Fatalf("New(%d): error %q does not name the size", size, err)
		}
	}
}

// TestCircMacros checks CircCnt and CircSpace against their definition
// in include/linux/circ_buf.h computed on masked offsets, for free-running
// cursors on both sides of the 2^64 wrap.
func TestCircMacros(t *testing.T) {
	for size := uint64(2); size <= 64; size *= 2 {
		for _, base := range []uint64{0, 1 << 40, -size, -(3 * size / 2)} {
			for h := base; h != base+3*size; h++ {
				for d := uint64(0); d < size; d++ {
					tl := h - d
					// CIRC_CNT on offsets: (head - tail) mod size.
					hm, tm := int64(h%size), int64(tl%size)
					cnt := uint64(((hm-tm)%int64(size) + int64(size)) % int64(size))
					if got := CircCnt(h, tl, size); got != cnt || got != d {
						t.Fatalf("CircCnt(%d, %d, %d) = %d, want %d", h, tl, size, got, d)
					}
					if got := CircSpace(h, tl, size); got != size-1-d {
						t.Fatalf("CircSpace(%d, %d, %d) = %d, want %d", h, tl, size, got, size-1-d)
					}
				}
			}
		}
	}
}

// roundTrip writes n pattern bytes at the ring's current position in one
// call and reads them back in one call, through Write/Read or through
// WriteFrom/ReadTo, and checks every byte and both cursors.
func roundTrip(t *testing.T, r *Ring, n int, viaIO bool) {
	t.Helper()
	c0 := r.Cursors()
	p := patternBytes(c0.Head, n)
	var got []byte
	if viaIO {
		k, err := r.WriteFrom(bytes.NewReader(p), n)
		if k != n || err != nil {
			t.Fatalf("size %d head %d: WriteFrom(%d) = %d, %v", r.Size(), c0.Head, n, k, err)
		}
		var b bytes.Buffer
		if k, err := r.ReadTo(&b, n); k != n || err != nil {
			t.Fatalf("size %d tail %d: ReadTo(%d) = %d, %v", r.Size(), c0.Tail, n, k, err)
		}
		got = b.Bytes()
	} else {
		if k, err := r.Write(p); k != n || err != nil {
			t.Fatalf("size %d head %d: Write(%d) = %d, %v", r.Size(), c0.Head, n, k, err)
		}
		got = make([]byte, n)
		if k, err := r.Read(got); k != n || err != nil {
			t.Fatalf("size %d tail %d: Read(%d) = %d, %v", r.Size(), c0.Tail, n, k, err)
		}
	}
	if !bytes.Equal(got, p) {
		t.Fatalf("size %d: %d bytes written at offset %d came back different", r.Size(), n, c0.Head&r.mask)
	}
	c := r.Cursors()
	if c.Head != c0.Head+uint64(n) || c.Tail != c.Head {
		t.Fatalf("size %d: cursors %+v after moving %d bytes from %+v", r.Size(), c, n, c0)
	}
	if err := r.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestWrapAtEveryOffset moves every length from 1 to Cap through a ring
// whose cursors start at every offset of the buffer, so the two-part copy
// splits at every possible point, for every size up to 256 bytes, with
// the cursors far from and right at their 2^64 wrap, and through both the
// slice and the io paths.
func TestWrapAtEveryOffset(t *testing.T) {
	for size := 2; size <= 256; size *= 2 {
		r := mustNewAt(t, size, 0)
		for _, base := range []uint64{0, -uint64(size)} {
			for off := range size {
				for n := 1; n < size; n++ {
					roundTrip(t, resetAt(r, base+uint64(off)), n, n%2 == 0)
				}
			}
		}
	}
}

// TestWrapLargeSizes does the same for sizes up to 1 MiB where the full
// square is too big: each length runs at every offset near the end of the
// buffer (where it splits) and at random others, and a sweep with an odd
// length visits every offset of the buffer as a starting point.
func TestWrapLargeSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	edge, random := 64, 16
	if raceEnabled {
		edge, random = 8, 4
	}
	for size := 512; size <= 1<<20; size *= 2 {
		r := mustNewAt(t, size, 0)
		lengths := []int{1, 2, 63, 64, 65, 4097 % size, size/2 + 1, size - 1}
		for _, n := range lengths {
			offs := []int{}
			for k := 0; k <= edge && k < n; k++ {
				offs = append(offs, size-k, size-n+k)
			}
			for range random {
				offs = append(offs, rng.IntN(size))
			}
			for _, off := range offs {
				roundTrip(t, resetAt(r, -uint64(2*size)+uint64(off%size)), n, off%2 == 0)
			}
		}
		if (testing.Short() || raceEnabled) && size > 1<<16 {
			continue
		}
		// Sweep: 3 is odd, so size steps of 3 bytes start at every offset.
		resetAt(r, 0)
		p, q := make([]byte, 3), make([]byte, 3)
		for i := range size {
			copy(p, patternBytes(uint64(3*i), 3))
			if k, err := r.Write(p); k != 3 || err != nil {
				t.Fatalf("size %d step %d: Write = %d, %v", size, i, k, err)
			}
			if k, err := r.Read(q); k != 3 || err != nil || !bytes.Equal(p, q) {
				t.Fatalf("size %d step %d: Read = %d, %v, %x want %x", size, i, k, err, q, p)
			}
		}
	}
}

// TestSizes fills and drains every size from 2 bytes to 1 MiB: the ring
// takes exactly Cap bytes, refuses one more, gives them back in order, and
// then streams several laps in uneven chunks.
func TestSizes(t *testing.T) {
	for size := MinSize; size <= 1<<20; size *= 2 {
		r := mustNewAt(t, size, uint64(size)/3)
		var wrote, read uint64
		fill := func() {
			for {
				n, err := r.Write(patternBytes(wrote, size/3+1))
				wrote += uint64(n)
				if errors.Is(err, ErrFull) {
					return
				}
				if err != nil {
					t.Fatalf("size %d: Write: %v", size, err)
				}
			}
		}
		drain := func() {
			buf := make([]byte, size/5+1)
			for {
				n, err := r.Read(buf)
				if !bytes.Equal(buf[:n], patternBytes(read, n)) {
					t.Fatalf("size %d: Read at stream offset %d returned wrong bytes", size, read)
				}
				read += uint64(n)
				if errors.Is(err, ErrEmpty) {
					return
				}
				if err != nil {
					t.Fatalf("size %d: Read: %v", size, err)
				}
			}
		}
		fill()
		if wrote != uint64(size-1) || r.Space() != 0 || r.Buffered() != size-1 || !r.HasData() {
			t.Fatalf("size %d: full ring took %d bytes, Space %d, Buffered %d", size, wrote, r.Space(), r.Buffered())
		}
		if n, err := r.Write([]byte{0}); n != 0 || !errors.Is(err, ErrFull) {
			t.Fatalf("size %d: Write into a full ring = %d, %v", size, n, err)
		}
		drain()
		if read != wrote || r.Len() != 0 || r.Buffered() != 0 || r.HasData() {
			t.Fatalf("size %d: drained %d of %d, Len %d", size, read, wrote, r.Len())
		}
		if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, ErrEmpty) {
			t.Fatalf("size %d: Read from an empty ring = %d, %v", size, n, err)
		}
		for range 3 {
			fill()
			drain()
		}
		if err := r.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCachedCursors shows the caches at work: the producer keeps using
// its stale CachedTail (a lower bound) until the cache says full, and the
// consumer its stale CachedHead until the cache says empty.
func TestCachedCursors(t *testing.T) {
	r := mustNewAt(t, 16, 0)
	if n, _ := r.Write(make([]byte, 10)); n != 10 {
		t.Fatal(n)
	}
	if got := r.Space(); got != 5 {
		t.Fatalf("Space = %d, want 5", got)
	}
	if n, _ := r.Read(make([]byte, 4)); n != 4 {
		t.Fatal(n)
	}
	// The consumer freed 4 bytes, but the producer's cache has not seen it.
	if got := r.Space(); got != 5 {
		t.Fatalf("Space = %d after the consumer freed 4; want the cached 5", got)
	}
	if c := r.Cursors(); c.CachedTail != 0 || c.Tail != 4 || c.CachedHead != 10 {
		t.Fatalf("cursors %+v", c)
	}
	// Write 5 from the cache; now the cache says full, so Space refreshes.
	r.Write(make([]byte, 5))
	if got := r.Space(); got != 4 {
		t.Fatalf("Space = %d when the cache says full; want the refreshed 4", got)
	}
	// The consumer answers from CachedHead (10) until it is used up.
	if got := r.Len(); got != 6 {
		t.Fatalf("Len = %d, want the cached 6", got)
	}
	r.Read(make([]byte, 6))
	if got := r.Len(); got != 5 {
		t.Fatalf("Len = %d when the cache says empty; want the refreshed 5", got)
	}
	// A Write that does not fit in the cached space refreshes at once.
	r.Read(make([]byte, 5))
	if n, err := r.Write(make([]byte, 15)); n != 15 || err != nil {
		t.Fatalf("Write(15) into an empty ring with a stale cache = %d, %v", n, err)
	}
}

func TestCheckDetects(t *testing.T) {
	good := Cursors{Head: 10, Tail: 7, CachedTail: 5, CachedHead: 9}
	if err := good.Check(8); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Cursors{
		{Head: 15, Tail: 7, CachedTail: 7, CachedHead: 7},  // head - tail = 8 > 7
		{Head: 7, Tail: 8, CachedTail: 7, CachedHead: 8},   // tail ahead of head
		{Head: 10, Tail: 7, CachedTail: 8, CachedHead: 9},  // cached tail ahead of tail
		{Head: 10, Tail: 7, CachedTail: 2, CachedHead: 9},  // head - cached tail = 8 > 7
		{Head: 10, Tail: 7, CachedTail: 5, CachedHead: 6},  // cached head behind tail
		{Head: 10, Tail: 7, CachedTail: 5, CachedHead: 11}, // cached head ahead of head
	} {
		if err := c.Check(8); !errors.Is(err, ErrInvariant) {
			t.Errorf("Check(%+v) = %v, want ErrInvariant", c, err)
		}
	}
}

func TestClose(t *testing.T) {
	t.Run("CloseWrite", func(t *testing.T) {
		r := mustNewAt(t, 16, 0)
		r.Write([]byte("hello"))
		r.CloseWrite()
		if n, err := r.Write([]byte("x")); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Write after CloseWrite = %d, %v", n, err)
		}
		if n, err := r.WriteFrom(strings.NewReader("x"), 1); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("WriteFrom after CloseWrite = %d, %v", n, err)
		}
		if n, err := r.Writer().Write([]byte("x")); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Writer.Write after CloseWrite = %d, %v", n, err)
		}
		got, err := io.ReadAll(r.Reader())
		if string(got) != "hello" || err != nil {
			t.Fatalf("ReadAll = %q, %v", got, err)
		}
		if n, err := r.Read(make([]byte, 4)); n != 0 || err != io.EOF {
			t.Fatalf("Read at EOF = %d, %v", n, err)
		}
		if n, err := r.ReadTo(io.Discard, 4); n != 0 || err != io.EOF {
			t.Fatalf("ReadTo at EOF = %d, %v", n, err)
		}
		if n, err := r.Reader().WriteTo(io.Discard); n != 0 || err != nil {
			t.Fatalf("WriteTo at EOF = %d, %v", n, err)
		}
	})
	t.Run("CloseRead", func(t *testing.T) {
		r := mustNewAt(t, 16, 0)
		r.Write([]byte("hello"))
		r.Reader().Close()
		if n, err := r.Write([]byte("x")); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Write after CloseRead = %d, %v", n, err)
		}
		if n, err := r.Read(make([]byte, 4)); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after CloseRead = %d, %v", n, err)
		}
		if n, err := r.Reader().Read(make([]byte, 4)); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("Reader.Read after CloseRead = %d, %v", n, err)
		}
		if n, err := r.ReadTo(io.Discard, 4); n != 0 || !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadTo after CloseRead = %d, %v", n, err)
		}
	})
}

// waitParked waits, without sleeping, until a blocking call on the other
// goroutine has parked on flag.
func waitParked(t *testing.T, parked func() bool, blocked chan struct{}) {
	t.Helper()
	for !parked() {
		select {
		case <-blocked:
			t.Fatal("the blocking call returned before parking")
		default:
		}
		runtime.Gosched()
	}
}

// TestParkAndWake parks each blocking call for real (the test waits for
// the parked flag) and checks that the matching event wakes it with the
// right result: data or EOF for the reader, space or ErrClosed for the
// writer. A lost wakeup hangs the test.
func TestParkAndWake(t *testing.T) {
	type result struct {
		n   int
		err error
		b   []byte
	}
	readerCase := func(name string, wake func(r *Ring), want result) {
		t.Run(name, func(t *testing.T) {
			r := mustNewAt(t, 8, 0)
			done := make(chan struct{})
			var res result
			go func() {
				defer close(done)
				buf := make([]byte, 8)
				res.n, res.err = r.Reader().Read(buf)
				res.b = buf[:res.n]
			}()
			waitParked(t, func() bool { return r.rparked.Load() == 1 }, done)
			wake(r)
			<-done
			if res.n != want.n || res.err != want.err || !bytes.Equal(res.b, want.b) {
				t.Fatalf("Reader.Read = %d, %v, %q; want %d, %v, %q", res.n, res.err, res.b, want.n, want.err, want.b)
			}
		})
	}
	readerCase("reader/write", func(r *Ring) { r.Write([]byte("abc")) }, result{3, nil, []byte("abc")})
	readerCase("reader/CloseWrite", func(r *Ring) { r.CloseWrite() }, result{0, io.EOF, nil})
	readerCase("reader/CloseRead", func(r *Ring) { r.CloseRead() }, result{0, ErrClosed, nil})

	writerCase := func(name string, wake func(r *Ring), want result) {
		t.Run(name, func(t *testing.T) {
			r := mustNewAt(t, 8, 0)
			r.Write([]byte("1234567")) // full
			done := make(chan struct{})
			var res result
			go func() {
				defer close(done)
				res.n, res.err = r.Writer().Write([]byte("xy"))
			}()
			waitParked(t, func() bool { return r.wparked.Load() == 1 }, done)
			wake(r)
			<-done
			if res.n != want.n || !errors.Is(res.err, want.err) {
				t.Fatalf("Writer.Write = %d, %v; want %d, %v", res.n, res.err, want.n, want.err)
			}
		})
	}
	writerCase("writer/read", func(r *Ring) { r.Read(make([]byte, 7)) }, result{2, nil, nil})
	writerCase("writer/CloseRead", func(r *Ring) { r.CloseRead() }, result{0, ErrClosed, nil})
	writerCase("writer/CloseWrite", func(r *Ring) { r.CloseWrite() }, result{0, ErrClosed, nil})
}

// TestIOCopy streams through the ring with io.Copy on both ends, which
// picks Writer.ReadFrom and Reader.WriteTo: bytes go from the source
// straight into the ring and from the ring straight to the sink.
func TestIOCopy(t *testing.T) {
	const total = 1 << 20
	for _, size := range []int{2, 64, 4096} {
		r := mustNewAt(t, size, -uint64(size/2))
		src := patternBytes(0, total)
		errc := make(chan error, 1)
		go func() {
			_, err := io.Copy(r.Writer(), &oddReader{b: src})
			r.CloseWrite()
			errc <- err
		}()
		var sink bytes.Buffer
		n, err := io.Copy(&sink, r.Reader())
		if err != nil || n != total || !bytes.Equal(sink.Bytes(), src) {
			t.Fatalf("size %d: io.Copy out of the ring = %d, %v (equal %v)", size, n, err, bytes.Equal(sink.Bytes(), src))
		}
		if err := <-errc; err != nil {
			t.Fatalf("size %d: io.Copy into the ring: %v", size, err)
		}
	}
}

// oddReader returns its bytes in reads of 1 to 1000 bytes, never filling
// the buffer it is given when it could, so WriteFrom sees short first
// parts.
type oddReader struct {
	b []byte
	i int
}

func (o *oddReader) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	o.i++
	n := min(len(p), len(o.b), 1+(o.i*7919)%1000)
	copy(p, o.b[:n])
	o.b = o.b[n:]
	return n, nil
}

// TestInvalidCounts: a Reader or Writer that reports more bytes than it
// was given gets an error instead of corrupting the cursors.
func TestInvalidCounts(t *testing.T) {
	r := mustNewAt(t, 16, 0)
	if n, err := r.WriteFrom(liar{}, 4); n != 0 || err == nil {
		t.Fatalf("WriteFrom(liar) = %d, %v", n, err)
	}
	r.Write([]byte("abcd"))
	if n, err := r.ReadTo(liar{}, 4); n != 0 || err == nil {
		t.Fatalf("ReadTo(liar) = %d, %v", n, err)
	}
	if c := r.Cursors(); c.Head != 4 || c.Tail != 0 {
		t.Fatalf("cursors moved: %+v", c)
	}
}

type liar struct{}

func (liar) Read(p []byte) (int, error)  { return len(p) + 1, nil }
func (liar) Write(p []byte) (int, error) { return len(p) + 1, nil }

func ExampleRing() {
	r, err := New(16)
	if err != nil {
		panic(err)
	}
	go func() {
		w := r.Writer()
		fmt.Fprintf(w, "%s, %s", "hello", "ring")
		w.Close()
	}()
	b, err := io.ReadAll(r.Reader())
	fmt.Printf("%q %v\n", b, err)
	// Output: "hello, ring" <nil>
}

func ExampleRing_Write() {
	r, _ := New(8) // holds 7 bytes
	n, err := r.Write([]byte("0123456789"))
	fmt.Println(n, err)
	buf := make([]byte, 4)
	n, err = r.Read(buf)
	fmt.Printf("%d %q %v\n", n, buf[:n], err)
	// Output:
	// 7 ringbuf: ring full
	// 4 "0123" <nil>
}
