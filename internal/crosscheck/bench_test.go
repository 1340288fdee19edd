package crosscheck

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/kernelshim"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// BenchmarkCorpusModelVsKernel runs the whole kernel corpus on the model
// and on this machine's kernel in the same run, and reports each
// backend's time per corpus and the model's time as a percentage of the
// kernel's (the target: under 1%).
func BenchmarkCorpusModelVsKernel(b *testing.B) {
	testenv.RequireKernel(b, kernelshim.Available)
	files, err := filepath.Glob("../../testdata/traces/kernel/*.trace")
	if err != nil || len(files) == 0 {
		b.Fatalf("no corpus: %v", err)
	}
	var traces []*trace.Trace
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		tr, err := trace.Parse(f, src)
		if err != nil {
			b.Fatal(err)
		}
		traces = append(traces, tr)
	}
	opts := trace.Options{Profile: "linux-6.18"}
	timeCorpus := func(be trace.Backend) time.Duration {
		start := time.Now()
		for _, tr := range traces {
			if _, err := trace.Observe(context.Background(), be, tr, opts); err != nil {
				b.Fatalf("%s on %s: %v", tr.File, be.Name(), err)
			}
		}
		return time.Since(start)
	}
	m, k := model.New(), kernelshim.New(kernelshim.Config{})
	var tm, tk time.Duration
	for i := 0; i < b.N; i++ {
		tm += timeCorpus(m)
		tk += timeCorpus(k)
	}
	b.ReportMetric(float64(len(traces)), "traces")
	b.ReportMetric(float64(tm.Microseconds())/float64(b.N), "model-µs/corpus")
	b.ReportMetric(float64(tk.Microseconds())/float64(b.N), "kernel-µs/corpus")
	b.ReportMetric(100*tm.Seconds()/tk.Seconds(), "model-%-of-kernel")
}
