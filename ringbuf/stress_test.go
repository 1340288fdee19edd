package ringbuf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// streamChecker verifies, chunk by chunk, that a consumer receives the
// pattern stream in order, with no byte lost, duplicated or invented.
type streamChecker struct {
	off uint64
	err error
}

func (c *streamChecker) Write(p []byte) (int, error) {
	if c.err == nil && !bytes.Equal(p, patternBytes(c.off, len(p))) {
		for i := range p {
			if p[i] != pattern(c.off+uint64(i)) {
				c.err = fmt.Errorf("byte at stream offset %d is %#x, want %#x", c.off+uint64(i), p[i], pattern(c.off+uint64(i)))
				break
			}
		}
	}
	c.off += uint64(len(p))
	return len(p), nil
}

// stressMode is how the two goroutines drive the ring.
type stressMode struct {
	name    string
	produce func(r *Ring, rng *rand.Rand, total uint64) error
	consume func(r *Ring, rng *rand.Rand, sink *streamChecker) error
}

// chunkLen draws a write or read length: usually up to a little over the
// ring size, sometimes tiny.
func chunkLen(rng *rand.Rand, size int) int {
	if rng.IntN(4) == 0 {
		return 1 + rng.IntN(8)
	}
	return 1 + rng.IntN(size+size/2+1)
}

var stressModes = []stressMode{
	{
		name: "blocking",
		produce: func(r *Ring, rng *rand.Rand, total uint64) error {
			w := r.Writer()
			for off := uint64(0); off < total; {
				n := min(uint64(chunkLen(rng, r.Size())), total-off)
				k, err := w.Write(patternBytes(off, int(n)))
				if err != nil || uint64(k) != n {
					return fmt.Errorf("Writer.Write(%d) = %d, %v", n, k, err)
				}
				off += n
			}
			return w.Close()
		},
		consume: func(r *Ring, rng *rand.Rand, sink *streamChecker) error {
			rd := r.Reader()
			buf := make([]byte, 2*r.Size()+8)
			for {
				n, err := rd.Read(buf[:chunkLen(rng, r.Size())])
				sink.Write(buf[:n])
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if n == 0 {
					return errors.New("Reader.Read returned 0 bytes and no error")
				}
			}
		},
	},
	{
		// The non-blocking calls, retried with a yield: the way a caller
		// with its own event loop (or the model) drives the ring.
		name: "nonblocking",
		produce: func(r *Ring, rng *rand.Rand, total uint64) error {
			for off := uint64(0); off < total; {
				n := min(uint64(chunkLen(rng, r.Size())), total-off)
				var k int
				var err error
				if rng.IntN(2) == 0 {
					k, err = r.Write(patternBytes(off, int(n)))
				} else {
					k, err = r.WriteFrom(bytes.NewReader(patternBytes(off, int(n))), int(n))
				}
				off += uint64(k)
				switch {
				case errors.Is(err, ErrFull):
					runtime.Gosched()
				case err != nil:
					return fmt.Errorf("write(%d) = %d, %v", n, k, err)
				}
				if rng.IntN(8) == 0 {
					if s := r.Space(); s < 0 || s > r.Cap() {
						return fmt.Errorf("Space() = %d", s)
					}
				}
			}
			return r.CloseWrite()
		},
		consume: func(r *Ring, rng *rand.Rand, sink *streamChecker) error {
			buf := make([]byte, 2*r.Size()+8)
			for {
				var err error
				if rng.IntN(2) == 0 {
					var n int
					n, err = r.Read(buf[:chunkLen(rng, r.Size())])
					sink.Write(buf[:n])
				} else {
					_, err = r.ReadTo(sink, chunkLen(rng, r.Size()))
				}
				switch {
				case err == io.EOF:
					return nil
				case errors.Is(err, ErrEmpty):
					runtime.Gosched()
				case err != nil:
					return err
				}
				if rng.IntN(8) == 0 {
					if l := r.Len(); l < 0 || l > r.Cap() {
						return fmt.Errorf("Len() = %d", l)
					}
				}
			}
		},
	},
	{
		// io.Copy on both ends: Writer.ReadFrom reads a source straight
		// into the ring, Reader.WriteTo hands the ring to a sink.
		name: "iocopy",
		produce: func(r *Ring, rng *rand.Rand, total uint64) error {
			src := io.LimitReader(&patternReader{rng: rng, max: r.Size() + 1}, int64(total))
			if _, err := io.Copy(r.Writer(), src); err != nil {
				return err
			}
			return r.CloseWrite()
		},
		consume: func(r *Ring, rng *rand.Rand, sink *streamChecker) error {
			_, err := io.Copy(sink, r.Reader())
			return err
		},
	},
}

// patternReader produces the pattern stream in reads of random length.
type patternReader struct {
	off uint64
	rng *rand.Rand
	max int
}

func (p *patternReader) Read(b []byte) (int, error) {
	n := min(len(b), 1+p.rng.IntN(p.max))
	copy(b, patternBytes(p.off, n))
	p.off += uint64(n)
	return n, nil
}

// TestStress streams the pattern through rings of 2 bytes to 1 MiB with
// a real producer and consumer goroutine in every mode, while a third
// goroutine polls Buffered and HasData, on two Ps and on one. The
// consumer checks every byte; afterwards the ring must be empty and its
// invariants hold. Run it with -race.
func TestStress(t *testing.T) {
	total := uint64(32 << 20)
	switch {
	case testing.Short():
		total = 2 << 20
	case raceEnabled:
		total = 8 << 20
	}
	for _, procs := range []int{2, 1} {
		for _, size := range []int{2, 16, 4096, DefaultSize, 1 << 20} {
			for i, mode := range stressModes {
				name := fmt.Sprintf("procs=%d/size=%d/%s", procs, size, mode.name)
				t.Run(name, func(t *testing.T) {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
					n := total
					switch {
					case size == 2:
						n = total / 64 // a 2-byte ring moves a byte per round trip
					case size <= 16:
						n = total / 16
					}
					stress(t, size, n, mode, uint64(size*10+i))
				})
			}
		}
	}
}

func stress(t *testing.T, size int, total uint64, mode stressMode, seed uint64) {
	r := mustNewAt(t, size, -uint64(size)*3/2) // the cursors cross 2^64 early on
	var wg sync.WaitGroup
	var perr, cerr error
	sink := &streamChecker{}
	var stop atomic.Bool
	wg.Add(3)
	go func() {
		defer wg.Done()
		perr = mode.produce(r, rand.New(rand.NewPCG(seed, 1)), total)
	}()
	go func() {
		defer wg.Done()
		defer stop.Store(true)
		cerr = mode.consume(r, rand.New(rand.NewPCG(seed, 2)), sink)
	}()
	var oerr error
	go func() { // observer: any goroutine may ask
		defer wg.Done()
		for first := true; first || !stop.Load(); first = false {
			if b := r.Buffered(); b < 0 || b > r.Cap() {
				oerr = fmt.Errorf("Buffered() = %d outside [0, %d]", b, r.Cap())
				return
			}
			r.HasData()
			runtime.Gosched()
		}
	}()
	wg.Wait()
	for _, err := range []error{perr, cerr, sink.err, oerr} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if sink.off != total {
		t.Fatalf("consumer got %d bytes, producer sent %d", sink.off, total)
	}
	if err := r.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if c := r.Cursors(); c.Head != c.Tail || c.Head-(-uint64(size)*3/2) != total || r.Buffered() != 0 {
		t.Fatalf("after the run: cursors %+v, Buffered %d", c, r.Buffered())
	}
}
