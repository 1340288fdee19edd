package kernelshim

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/internal/corpustest"
	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

// Where the kernel corpus and its goldens live, from this package.
const (
	corpusDir  = "../testdata/traces/kernel"
	goldenRoot = "../testdata/golden"
)

// kernelCorpus is the kernel corpus with this kernel's goldens. The
// backend ignores the profile; the runner only checks that it is known.
func kernelCorpus(t testing.TB) corpustest.Corpus {
	profile := corpustest.KernelProfile(t)
	return corpustest.Corpus{
		Dir: corpusDir, Goldens: goldenRoot, Profile: profile,
		Options: trace.Options{Profile: trace.DefaultBase}, Records: true,
		Races: corpustest.ReadRaces(t, "../testdata/kernel-test/"+profile+".expect"),
	}
}

// TestCorpus runs every trace of testdata/traces/kernel on this kernel and
// compares its observations byte for byte (long data through its full
// SHA-256) with testdata/golden/linux-X.Y/NAME.out. With -update it
// records the goldens instead:
//
//	go test ./kernelshim -run Corpus -update
func TestCorpus(t *testing.T) {
	testenv.RequireKernel(t, Available)
	c := kernelCorpus(t)
	if _, err := os.Stat(filepath.Join(c.Goldens, c.Profile)); err != nil && !corpustest.Updating() {
		t.Skipf("no goldens recorded for this kernel (%s); record them with -update", c.Profile)
	}
	corpustest.Check(t, New(Config{}), c)
}

// BenchmarkStream moves a 256 MiB plain-TCP stream through the live
// kernel per iteration, the trace netstack.BenchmarkBackendStream and
// BenchmarkRefStream run on the model, and reports MB/s.
func BenchmarkStream(b *testing.B) {
	testenv.RequireKernel(b, Available)
	tr := testenv.StreamTrace(b, testenv.StreamSize, testenv.StreamChunk, false)
	testenv.BenchStream(b, New(Config{}), tr, trace.Options{OpTimeout: time.Minute})
}

// BenchmarkCorpus runs the whole kernel corpus per iteration and reports
// kernel-backend traces per second.
func BenchmarkCorpus(b *testing.B) {
	testenv.RequireKernel(b, Available)
	cases := corpustest.Load(b, kernelCorpus(b))
	be := New(Config{})
	b.ResetTimer()
	start := time.Now()
	n := 0
	for i := 0; i < b.N; i++ {
		for _, k := range cases {
			if _, err := trace.Observe(context.Background(), be, k.Trace, trace.Options{}); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "traces/s")
}
