//go:build crosscheck

package crosscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/kernelshim"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// TestModelVsKernel is the differential campaign of issue 4 (`make
// crosscheck`, build tag crosscheck: a campaign, not part of make test): random valid
// traces (2-4 connections, 1-2 maps, random programs, every op) run on the
// model (profile linux-6.18) and on this machine's kernel. Any divergence
// is shrunk and printed as a trace. SPLICECHECK_CROSSCHECK_N sets the
// number of traces (default 150, what CI runs; the campaign is
// 10,000); SPLICECHECK_CROSSCHECK_SEED the first seed;
// SPLICECHECK_CROSSCHECK_OUT a directory to write shrunk divergences to.
func TestModelVsKernel(t *testing.T) {
	testenv.RequireKernel(t, kernelshim.Available)
	n := envInt(t, "SPLICECHECK_CROSSCHECK_N", 150)
	first := envInt(t, "SPLICECHECK_CROSSCHECK_SEED", 0)
	if testing.Short() {
		n = 20
	}
	m, k := model.New(), kernelshim.New(kernelshim.Config{})
	gen := fuzz.Trace(fuzz.GenConfig{KernelSafe: true, Threads: true})
	opts := trace.Options{Profile: "linux-6.18", OpTimeout: 500 * time.Millisecond}
	progress := func(r Report) bool {
		if r.Runs%1000 == 0 {
			t.Logf("%d traces: %d agree, %d findings, %d flaky", r.Runs, r.Agree, len(r.Findings), r.Flaky)
		}
		return false
	}
	r, err := Campaign(t.Context(), m, k, func(seed int) *trace.Trace { return gen.Example(seed) }, first, n, opts, progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeds %d..%d: %d traces: %d agree, %d diverge, %d with a kernel that disagreed with itself", first, first+n-1, r.Runs, r.Agree, len(r.Findings), r.Flaky)
	out := os.Getenv("SPLICECHECK_CROSSCHECK_OUT")
	for i, f := range r.Findings {
		if i >= 5 {
			t.Errorf("... and %d more divergences", len(r.Findings)-i)
			break
		}
		small, err := Shrink(t.Context(), m, k, f.Trace, opts)
		if err != nil {
			t.Fatal(err)
		}
		divs, _, err := Compare(t.Context(), m, k, small, opts)
		var why []string
		if err != nil {
			why = append(why, err.Error())
		}
		for _, d := range divs {
			why = append(why, fmt.Sprintf("%d: %s: model %s, kernel %s", d.Line, d.Op, d.A, d.B))
		}
		t.Errorf("seed %d diverges; shrunk:\n%s%s", f.Seed, small.Format(), strings.Join(why, "\n"))
		if out != "" {
			os.MkdirAll(out, 0o755)
			os.WriteFile(filepath.Join(out, fmt.Sprintf("seed_%d.trace", f.Seed)), []byte(small.Format()), 0o644)
		}
	}
	if r.Flaky > r.Runs/10 {
		t.Errorf("%d of %d traces gave two answers on the kernel: the generator is not kernel-safe", r.Flaky, r.Runs)
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}
