package kernelshim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicecheck/splicecheck/internal/corpustest"
	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

// Where the kernel corpus and its goldens live, from this package.
const (
	corpusDir  = "../testdata/traces/kernel"
	goldenRoot = "../testdata/golden"
)

// kernelProfile names the running kernel as a base profile: linux-MAJOR.MINOR.
func kernelProfile(t testing.TB) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := string(u.Release[:bytes.IndexByte(u.Release[:], 0)])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("odd kernel release %q", rel)
	}
	return "linux-" + parts[0] + "." + strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
}

// kernelCorpus is the kernel corpus with this kernel's goldens. The
// backend ignores the profile; the runner only checks that it is known.
func kernelCorpus(t testing.TB) corpustest.Corpus {
	return corpustest.Corpus{
		Dir: corpusDir, Goldens: goldenRoot, Profile: kernelProfile(t),
		Options: trace.Options{Profile: trace.DefaultBase}, Records: true,
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
