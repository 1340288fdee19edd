//go:build crosscheck

package crosscheck

import (
	"cmp"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/kernelshim"
	"github.com/splicecheck/splicecheck/kernelshim/vm"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// TestModelVsKernel is the model-vs-kernel differential campaign (`make
// crosscheck`, build tag crosscheck: a campaign, not part of make test): random valid
// traces (2-4 connections, 1-2 maps, random programs, every op) run on the
// model (profile linux-6.18) and on this machine's kernel. Any divergence
// is shrunk and printed as a trace. SPLICECHECK_CROSSCHECK_N sets the
// number of traces (default 150, what CI runs; the campaign is
// 10,000); SPLICECHECK_CROSSCHECK_SEED the first seed;
// SPLICECHECK_CROSSCHECK_OUT a directory to write shrunk divergences, and
// traces during which the kernel logged a warning, to.
//
// SPLICECHECK_CROSSCHECK_KERNEL=IMAGE runs the kernel side in a guest
// booted from IMAGE (the vm backend, one long-lived guest; the guest
// binary is SPLICECHECK_CROSSCHECK_GUEST, a static splicecheck), against
// the model profile SPLICECHECK_CROSSCHECK_PROFILE (default linux-6.18).
func TestModelVsKernel(t *testing.T) {
	n := envInt(t, "SPLICECHECK_CROSSCHECK_N", 150)
	// Traces run this many at a time on the kernel: each in a namespace
	// of its own on the host, or each in a guest of its own (a guest runs
	// one trace at a time, so JOBS guests boot).
	jobs := envInt(t, "SPLICECHECK_CROSSCHECK_JOBS", 1)
	first := envInt(t, "SPLICECHECK_CROSSCHECK_SEED", 0)
	if testing.Short() {
		n = 20
	}
	profile := cmp.Or(os.Getenv("SPLICECHECK_CROSSCHECK_PROFILE"), "linux-6.18")
	m := model.New()
	var k trace.Backend
	var kmsg *kernelshim.Kmsg
	if image := os.Getenv("SPLICECHECK_CROSSCHECK_KERNEL"); image != "" {
		p, err := newGuestPool(vm.Config{Kernel: image, GuestBinary: os.Getenv("SPLICECHECK_CROSSCHECK_GUEST"), Timeout: 24 * time.Hour}, jobs)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		k = p
		t.Logf("kernel: %d guests of %s (kernel warnings not watched)", jobs, image)
	} else {
		testenv.RequireKernel(t, kernelshim.Available)
		k = kernelshim.New(kernelshim.Config{})
		// The kernel log is read between traces: a warning logged while
		// seed s ran (on either backend; only the kernel's can warn) is
		// reported when seed s+1 is generated, and at the end.
		var err error
		if kmsg, err = kernelshim.OpenKmsg(); err != nil {
			t.Logf("kernel warnings not watched: %v", err)
		}
	}
	gen := fuzz.Trace(fuzz.GenConfig{KernelSafe: true, Threads: true})
	opts := trace.Options{Profile: profile, OpTimeout: 500 * time.Millisecond, TimeScale: envInt(t, "SPLICECHECK_CROSSCHECK_TIME_SCALE", fuzz.DiffTimeScale)}
	progress := func(r Report) bool {
		if r.Runs%1000 == 0 {
			t.Logf("%d traces: %d agree, %d findings, %d flaky", r.Runs, r.Agree, len(r.Findings), r.Flaky)
		}
		return false
	}
	out := os.Getenv("SPLICECHECK_CROSSCHECK_OUT")
	var last *trace.Trace
	lastSeed := -1
	checkKmsg := func() {
		if kmsg == nil || last == nil {
			return
		}
		w, err := kmsg.Warnings()
		if err != nil {
			t.Errorf("kernel log: %v", err)
		}
		if len(w) > 0 {
			// With jobs > 1 the jobs-1 seeds before it may still have run.
			t.Errorf("the kernel warned while seed %d ran (or one of the %d before it): %s\n%s", lastSeed, jobs-1, strings.Join(w, "; "), last.Format())
			save(t, out, fmt.Sprintf("kwarn_seed_%d.trace", lastSeed), last)
		}
	}
	next := func(seed int) *trace.Trace {
		checkKmsg()
		last, lastSeed = gen.Example(seed), seed
		return last
	}
	// An interrupt (Ctrl-C) ends the campaign early with the report of
	// the traces run so far, classified unshrunk.
	ctx, stop := signal.NotifyContext(t.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := Campaign(ctx, m, k, next, first, n, jobs, opts, progress)
	checkKmsg()
	if kmsg != nil {
		kmsg.Close()
	}
	interrupted := err != nil && ctx.Err() != nil
	switch {
	case interrupted:
		t.Errorf("interrupted after %d traces: the report is theirs", r.Runs)
		n = r.Runs
	case err != nil:
		t.Fatal(err)
	}
	t.Logf("seeds %d..%d: %d traces: %d agree, %d diverge, %d with a kernel that disagreed with itself", first, first+n-1, r.Runs, r.Agree, len(r.Findings), r.Flaky)
	// Every finding is shrunk when there is a directory to save it to,
	// else the first five; the divergences are grouped by the first
	// diverging op's kind and result shapes, for triage.
	classes := map[string][]int{}
	shrinkN := 5
	if out != "" {
		shrinkN = envInt(t, "SPLICECHECK_CROSSCHECK_SHRINK", 40)
	}
	if interrupted {
		shrinkN = 0
	}
	for i, f := range r.Findings {
		if i >= shrinkN {
			class := "model failed"
			if len(f.Divergences) > 0 {
				d := f.Divergences[0]
				class = fmt.Sprintf("%s: model %s, kernel %s", opKind(d.Op), shape(d.A), shape(d.B))
			}
			classes[class] = append(classes[class], f.Seed)
			save(t, out, fmt.Sprintf("seed_%d_unshrunk.trace", f.Seed), f.Trace)
			continue
		}
		small, err := Shrink(t.Context(), m, k, f.Trace, opts)
		if err != nil {
			t.Fatal(err)
		}
		divs, _, err := Compare(t.Context(), m, k, small, opts)
		var why []string
		class := "no stable divergence after shrinking"
		if err != nil {
			class = "model failed"
			why = append(why, err.Error())
		}
		for j, d := range divs {
			why = append(why, fmt.Sprintf("%d: %s: model %s, kernel %s", d.Line, d.Op, d.A, d.B))
			if j == 0 {
				class = fmt.Sprintf("%s: model %s, kernel %s", opKind(d.Op), shape(d.A), shape(d.B))
			}
		}
		classes[class] = append(classes[class], f.Seed)
		t.Errorf("seed %d diverges; shrunk:\n%s%s", f.Seed, small.Format(), strings.Join(why, "\n"))
		save(t, out, fmt.Sprintf("seed_%d.trace", f.Seed), small)
	}
	if len(r.Findings) > shrinkN {
		t.Errorf("... and %d more divergences, classified unshrunk (SPLICECHECK_CROSSCHECK_SHRINK)", len(r.Findings)-shrinkN)
	}
	for c, seeds := range classes {
		t.Logf("class %q: %d seeds %v", c, len(seeds), seeds)
	}
	// Flaky traces, grouped the same way by what made them flaky (the
	// kernel against its re-run; a run the runner forced out of an op is
	// "runner timeout"), each saved for triage.
	flaky := map[string][]int{}
	for _, f := range r.FlakyFindings {
		class := "runner timeout"
		if len(f.Divergences) > 0 {
			d := f.Divergences[0]
			class = fmt.Sprintf("%s: %s, then %s", opKind(d.Op), shape(d.A), shape(d.B))
		}
		for _, d := range f.Divergences {
			if strings.Contains(d.A+d.B, "(runner)") {
				class = "runner timeout"
			}
		}
		flaky[class] = append(flaky[class], f.Seed)
		save(t, out, fmt.Sprintf("flaky_seed_%d.trace", f.Seed), f.Trace)
	}
	for c, seeds := range flaky {
		t.Logf("flaky class %q: %d seeds %v", c, len(seeds), seeds)
	}
	if r.Flaky > r.Runs/10 {
		t.Errorf("%d of %d traces gave two answers on the kernel: the generator is not kernel-safe", r.Flaky, r.Runs)
	}
}

// save writes tr as dir/name, when dir is set.
func save(t *testing.T, dir, name string, tr *trace.Trace) {
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(tr.Format()), 0o644); err != nil {
		t.Fatal(err)
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

// shape reduces a rendered result to its kind: an errno, a count with
// data, a bare count, or a word, for grouping divergences.
func shape(r string) string {
	f := strings.Fields(r)
	switch {
	case len(f) == 0:
		return "nothing"
	case strings.HasPrefix(f[0], "-E"):
		return f[0]
	case len(f) > 1:
		return "N+data"
	}
	if _, err := strconv.Atoi(f[0]); err == nil {
		return "N"
	}
	return f[0]
}

// opKind is the op word of a rendered op ("@t1 recv a2 1" → "recv").
func opKind(op string) string {
	for _, w := range strings.Fields(op) {
		if !strings.HasPrefix(w, "@") {
			return w
		}
	}
	return op
}
