package ringbuf

import (
	"bytes"
	"io"
	"testing"
)

// loadCounter counts, through the hooks, the loads of the other side's
// cursor: the producer's loads of Tail and the consumer's loads of Head.
// Each counter is touched by one goroutine only.
type loadCounter struct{ tail, head int }

func (c *loadCounter) hooks() *Hooks {
	return &Hooks{
		BeforeLoadTail: func() { c.tail++ },
		BeforeLoadHead: func() { c.head++ },
	}
}

// crossCoreRun streams count writes of n bytes through a ring of size
// bytes from a producer goroutine to a consumer reading into a 16 KiB
// buffer, both through the blocking views, and returns the cursor loads.
func crossCoreRun(t testing.TB, size, n, count int) loadCounter {
	var c loadCounter
	r, err := NewWithHooks(size, c.hooks())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		w := r.Writer()
		p := patternBytes(0, n)
		for range count {
			if _, err := w.Write(p); err != nil {
				errc <- err
				return
			}
		}
		errc <- w.Close()
	}()
	rd := r.Reader()
	buf := make([]byte, 16<<10)
	var got uint64
	// Every write carries the same n bytes, so the stream repeats with
	// period n: compare each read with the repetition at its phase.
	ref := bytes.Repeat(patternBytes(0, n), len(buf)/n+2)
	for {
		k, err := rd.Read(buf)
		if phase := int(got % uint64(n)); !bytes.Equal(buf[:k], ref[phase:phase+k]) {
			t.Fatalf("read of %d bytes at stream offset %d: wrong bytes", k, got)
		}
		got += uint64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got != uint64(n)*uint64(count) {
		t.Fatalf("read %d bytes, wrote %d", got, n*count)
	}
	return c
}

// TestCrossCoreLoadsCounted streams 64-byte writes through a 16 KiB ring
// between two goroutines and checks the stream and the counting: the
// producer cannot write more than Cap bytes past its last load of Tail, so
// it must have loaded Tail at least once per Cap bytes. How far above that
// bound the loads stay depends on scheduling, so the target (under
// 0.1 loads per write) is measured by BenchmarkLoads, not asserted here;
// TestLoadsWithoutWaits asserts the caches' counts exactly.
func TestCrossCoreLoadsCounted(t *testing.T) {
	const size, n = DefaultSize, 64
	count := 1 << 17
	if raceEnabled || testing.Short() {
		count = 1 << 15
	}
	c := crossCoreRun(t, size, n, count)
	t.Logf("%d writes of %d bytes: %d loads of Tail, %d loads of Head, %.4f per write",
		count, n, c.tail, c.head, float64(c.tail+c.head)/float64(count))
	if min := n * count / (size - 1); c.tail < min {
		t.Fatalf("the producer loaded Tail %d times; it cannot have moved %d bytes with fewer than %d", c.tail, n*count, min)
	}
	if c.head == 0 {
		t.Fatal("the consumer never loaded Head")
	}
}

// TestLoadsWithoutWaits isolates the caches from the waits: one goroutine
// alternates 64-byte writes with draining reads of 16 KiB. Without the
// caches every Write would load Tail and every Read would load Head;
// with them the producer loads Tail once per Cap bytes and the consumer
// Head once per drain.
func TestLoadsWithoutWaits(t *testing.T) {
	var c loadCounter
	r, err := NewWithHooks(DefaultSize, c.hooks())
	if err != nil {
		t.Fatal(err)
	}
	p := patternBytes(0, 64)
	buf := make([]byte, 64)
	const writes = 1 << 16
	var sink bytes.Buffer
	for i := range writes {
		if _, err := r.Write(p); err != nil {
			t.Fatal(err)
		}
		if i%128 == 127 { // drain every 8 KiB, in 64-byte reads
			for {
				n, err := r.Read(buf)
				sink.Write(buf[:n])
				if err != nil {
					break
				}
			}
		}
	}
	// Per 8 KiB drained: 128 reads from the cache after one load of Head,
	// and one more load that finds the ring empty.
	if want := 2 * writes / 128; c.head != want {
		t.Fatalf("consumer loaded Head %d times, want %d", c.head, want)
	}
	// The producer refreshes once its cached space drops under 64 bytes.
	// With at most 8 KiB unread, each refresh finds at least 8 KiB free:
	// 128 writes per load, and never fewer than one load per Cap bytes.
	if lo, hi := writes*64/(DefaultSize-1), writes/127+1; c.tail < lo || c.tail > hi {
		t.Fatalf("producer loaded Tail %d times for %d writes, want %d to %d", c.tail, writes, lo, hi)
	}
	if sink.Len() != writes*64 {
		t.Fatalf("drained %d bytes", sink.Len())
	}
	if perWrite := float64(c.tail+c.head) / writes; perWrite >= 0.1 {
		t.Fatalf("%.4f cursor loads per write, want < 0.1", perWrite)
	}
}
