package trace

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// benchTrace returns a trace of about n ops in the shape of the corpus:
// two connections, then sends, recvs and polls in two threads.
func benchTrace(n int) (src []byte, ops int) {
	var b strings.Builder
	b.WriteString("# benchmark trace\nconn a1 a2\nconn b1 b2\n")
	ops = 2
	body := []string{
		`send a1 "hello, world\n"`,
		"@t1 recv a2 64 dontwait",
		"send b1 4k",
		"@t2 splice b2 4k nonblock",
		"pipe b2 4k",
		"poll a2",
		"fionread b2",
		"set a1 rcvbuf 64k",
	}
	for ops < n {
		for _, l := range body {
			b.WriteString(l)
			b.WriteByte('\n')
			ops++
		}
	}
	return []byte(b.String()), ops
}

// BenchmarkParse reports the bytes allocated per trace op (alloc-B/op) and
// the bytes still live once the parsed trace is all that is kept
// (live-B/op); the per-op memory of a run is bounded by the latter.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		src, ops := benchTrace(n)
		b.Run(fmt.Sprint(ops, "ops"), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			var before, after runtime.MemStats
			var keep *Trace
			for i := 0; i < b.N; i++ {
				if i == b.N-1 {
					b.StopTimer()
					keep = nil
					runtime.GC()
					runtime.ReadMemStats(&before)
					b.StartTimer()
				}
				t, err := Parse("bench.trace", src)
				if err != nil {
					b.Fatal(err)
				}
				keep = t
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			alloc := float64(after.TotalAlloc - before.TotalAlloc)
			runtime.GC()
			runtime.ReadMemStats(&after)
			live := float64(int64(after.HeapAlloc) - int64(before.HeapAlloc))
			runtime.KeepAlive(keep)
			b.ReportMetric(alloc/float64(ops), "alloc-B/op")
			b.ReportMetric(live/float64(ops), "live-B/op")
		})
	}
}

// TestOpSize keeps Op at the size its doc comment states.
func TestOpSize(t *testing.T) {
	if n := unsafe.Sizeof(Op{}); n > 152 {
		t.Errorf("Op is %d bytes, want at most 152", n)
	}
}
