package kernelshim

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

var update = flag.Bool("update", false, "rewrite the kernel corpus goldens from this kernel's runs")

// Where the kernel corpus and its goldens live, from this package.
const (
	corpusGlob = "../testdata/traces/kernel/*.trace"
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

// corpus returns the corpus traces, parsed, and the golden directory of the
// running kernel.
func corpus(t testing.TB) ([]*trace.Trace, string) {
	t.Helper()
	files, err := filepath.Glob(corpusGlob)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no traces match %s", corpusGlob)
	}
	var out []*trace.Trace
	for _, f := range files {
		tr, err := trace.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tr)
	}
	return out, filepath.Join(goldenRoot, kernelProfile(t))
}

func goldenFile(dir string, tr *trace.Trace) string {
	name := strings.TrimSuffix(filepath.Base(tr.File), filepath.Ext(tr.File))
	return filepath.Join(dir, name+".out")
}

// TestCorpus runs every trace of testdata/traces/kernel on this kernel and
// compares its observations byte for byte (long data through its full
// SHA-256) with testdata/golden/linux-X.Y/NAME.out. With -update it
// records the goldens instead:
//
//	go test ./kernelshim -run Corpus -update
func TestCorpus(t *testing.T) {
	testenv.RequireKernel(t, Available)
	traces, dir := corpus(t)
	if _, err := os.Stat(dir); err != nil && !*update {
		t.Skipf("no goldens recorded for this kernel (%s); record them with -update", dir)
	}
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	be := New(Config{})
	for _, tr := range traces {
		name := strings.TrimSuffix(filepath.Base(tr.File), ".trace")
		t.Run(name, func(t *testing.T) {
			obs, err := trace.Run(context.Background(), be, tr, trace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			path := goldenFile(dir, tr)
			if *update {
				var b bytes.Buffer
				if err := trace.WriteGolden(&b, obs); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			golden, err := trace.ReadGolden(path)
			if err != nil {
				t.Fatal(err)
			}
			if ds := trace.DiffGolden(obs, golden); len(ds) > 0 {
				var b strings.Builder
				for _, d := range ds {
					fmt.Fprintf(&b, "\n%d: %s\n  got:    %s\n  golden: %s", d.Line, d.Op, d.A, d.B)
				}
				t.Errorf("%s diverges from %s:%s", tr.File, path, b.String())
			}
		})
	}
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
	traces, _ := corpus(b)
	be := New(Config{})
	b.ResetTimer()
	start := time.Now()
	n := 0
	for i := 0; i < b.N; i++ {
		for _, tr := range traces {
			if _, err := trace.Run(context.Background(), be, tr, trace.Options{}); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "traces/s")
}
