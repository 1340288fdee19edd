package linux

import (
	"context"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// BenchmarkCorpus runs the whole kernel corpus (the traces with linux-6.18
// goldens) on the model once per iteration and reports traces per second
// and the corpus time, for comparison with the kernel backend's, and the
// ops executed per second (the model runs on one goroutine; run it with
// -cpu 1 for the figure per core).
func BenchmarkCorpus(b *testing.B) {
	traces, _ := corpus(b, "linux-6.18")
	ops := 0
	for _, tr := range traces {
		ops += len(tr.Ops)
	}
	be := New()
	opts := trace.Options{Profile: "linux-6.18"}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for _, tr := range traces {
			if _, err := trace.Observe(context.Background(), be, tr, opts); err != nil {
				b.Fatalf("%s: %v", tr.File, err)
			}
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N*len(traces))/elapsed.Seconds(), "traces/s")
	b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/corpus")
	b.ReportMetric(float64(b.N*ops)/elapsed.Seconds(), "ops/s")
}
