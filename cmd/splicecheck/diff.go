package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

type jsonDiff struct {
	Trace       string             `json:"trace"`
	A           string             `json:"a"`
	B           string             `json:"b"`
	Profile     string             `json:"profile"`
	Agree       bool               `json:"agree"`
	Divergences []trace.Divergence `json:"divergences,omitempty"`
	// KernelWarnings (vm) are the warnings the guest's kernel logged
	// while the trace ran.
	KernelWarnings []string `json:"kernel_warnings,omitempty"`
}

func cmdDiff(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "diff", "--a BACKEND --b BACKEND [flags] TRACE...",
		"Run each trace on two backends and compare the runs byte for byte (full data,\n"+
			"not only digests). BACKEND may be \"golden\": the observations recorded in\n"+
			"--golden-dir/PROFILE/NAME.out. Exit status 1 when any trace diverges.")
	var rf runFlags
	rf.register(fs, formatText, formatJSON, formatKTAP)
	a := fs.String("a", "model", "first backend: "+backendNames("diff")+", or golden")
	b := fs.String("b", "kernel", "second backend (same choices)")
	goldenDir := fs.String("golden-dir", "testdata/golden", "directory of golden observations, by profile")
	expectFile := fs.String("expect", "", "`FILE` of known divergences, as vm --expect reads it")
	var vf vmFlags
	vf.register(fs)
	var in traceInput
	in.register(fs)
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := vf.check(*a == "vm" || *b == "vm"); err != nil {
		return err
	}
	opts, err := rf.options()
	if err != nil {
		return err
	}
	if *a == *b {
		return usagef("--a and --b are both %q", *a)
	}
	var expect map[string]string
	if *expectFile != "" {
		if expect, err = readExpect(*expectFile); err != nil {
			return err
		}
	}
	traces, err := in.parseAll(ctx, paths, true)
	if err != nil {
		return err
	}
	sides := []*side{{flag: "--a", name: *a}, {flag: "--b", name: *b}}
	for _, s := range sides {
		if s.backend, err = openBackend(s.flag, s.name, backendConfig{vm: vf, goldenDir: *goldenDir}); err != nil {
			return err
		}
		defer closeBackend(s.backend)
	}
	for _, s := range sides {
		if err := startBackend(ctx, s.backend); err != nil {
			return fmt.Errorf("%s %s: %w", s.flag, s.name, err)
		}
		defer reportBackend(e, s.backend)
	}
	dr := &diffReport{compareReport: compareReport{e: e, format: rf.format, expectFile: *expectFile, tally: expectTally{list: expect}}, a: *a, b: *b}
	for i, t := range traces {
		o, err := trace.ResolveOptions(t, opts)
		if err != nil {
			return inFile(t, err)
		}
		d, err := diffOne(ctx, t, o, sides)
		if err != nil && ctx.Err() != nil {
			return dr.interrupt(ctx, err, traces[i:])
		}
		if err != nil {
			return err
		}
		dr.add(t, o, d)
	}
	return dr.finish(len(traces))
}

// diffReport prints diff's results in its --format: text as each trace
// is compared, JSON and KTAP at the end (or on an interrupt, with what
// was compared).
type diffReport struct {
	compareReport
	a, b string
}

// add counts and prints (text) or keeps (json, ktap) one trace's result.
func (dr *diffReport) add(t *trace.Trace, o trace.Options, d []trace.Divergence) {
	e, a, b := dr.e, dr.a, dr.b
	dr.out = append(dr.out, jsonDiff{Trace: t.File, A: a, B: b, Profile: o.Profile, Agree: len(d) == 0, Divergences: d})
	reason, verdict := dr.tally.add(t.File, len(d) > 0)
	dr.ktap = append(dr.ktap, ktapVerdict(t.File, verdict, reason, dr.expectFile, d, a, b))
	if dr.format != formatText {
		return
	}
	switch {
	case verdict == "fixed":
		fmt.Fprintf(e.stdout, "AGREES   %s (%s vs %s, profile %s), listed in %s as a known divergence: %s\n", t.File, a, b, o.Profile, dr.expectFile, reason)
		return
	case verdict == "agree":
		fmt.Fprintf(e.stdout, "agree    %s (%s vs %s, profile %s, %s)\n", t.File, a, b, o.Profile, plural(len(t.Ops), "op"))
		return
	case verdict == "known":
		fmt.Fprintf(e.stdout, "known    %s (%s vs %s, profile %s): %s\n", t.File, a, b, o.Profile, reason)
	default:
		fmt.Fprintf(e.stdout, "DIVERGE  %s (%s vs %s, profile %s)\n", t.File, a, b, o.Profile)
	}
	for _, dv := range d {
		fmt.Fprintf(e.stdout, "  %s:%d: %s: %s\n    a (%s): %s\n    b (%s): %s\n",
			t.File, dv.Line, dv.Op, dv.Reason, a, orNone(dv.A), b, orNone(dv.B))
	}
}

// compareReport is what diff and vm share: the results kept for JSON
// and KTAP, the --expect tally, and how the run ends.
type compareReport struct {
	e          *env
	format     string
	expectFile string
	tally      expectTally
	out        []jsonDiff // one per trace done, in order
	ktap       []ktapResult
}

// finish prints the summary (text) or the document (json, ktap) of n
// traces and returns errDiverged when the run fails.
func (r *compareReport) finish(n int) error {
	if err := r.flush(n); err != nil {
		return err
	}
	if r.tally.failed() {
		return errDiverged
	}
	return nil
}

func (r *compareReport) flush(n int) error {
	switch r.format {
	case formatJSON:
		return writeJSON(r.e, r.out)
	case formatKTAP:
		writeKTAP(r.e.stdout, r.ktap)
	default:
		fmt.Fprintln(r.e.stdout, r.tally.summary(n))
	}
	return nil
}

// interrupt ends a run whose ctx ended before rest were compared: it
// prints the traces done (KTAP: rest as skipped) and returns the
// interrupted error (JSON: with the results so far on it).
func (r *compareReport) interrupt(ctx context.Context, err error, rest []*trace.Trace) error {
	done := len(r.out)
	ierr := interrupted(ctx, fmt.Sprintf("%d of %s compared", done, plural(done+len(rest), "trace")), err)
	switch r.format {
	case formatJSON:
		return withPartial(ierr, r.out)
	case formatKTAP:
		for _, t := range rest {
			r.ktap = append(r.ktap, ktapResult{ok: true, name: t.File, directive: "SKIP interrupted"})
		}
	}
	r.flush(done)
	return ierr
}

// ktapVerdict is a trace's KTAP result for an expectTally verdict:
// agree is ok, known ok with XFAIL (a divergence --expect lists), fixed
// and diverge not ok; the divergences are its diagnostics.
func ktapVerdict(file, verdict, reason, expectFile string, d []trace.Divergence, a, b string) ktapResult {
	r := ktapResult{ok: verdict == "agree" || verdict == "known", name: file}
	switch verdict {
	case "known":
		r.directive = "XFAIL " + reason
	case "fixed":
		r.directive = "agrees, but " + expectFile + " lists it as a known divergence: " + reason
	}
	for _, dv := range d {
		r.diag = append(r.diag, fmt.Sprintf("%s:%d: %s: %s", file, dv.Line, dv.Op, dv.Reason),
			fmt.Sprintf("  %s: %s", a, orNone(dv.A)), fmt.Sprintf("  %s: %s", b, orNone(dv.B)))
	}
	return r
}

// side is one of the two backends diff compares.
type side struct {
	flag, name string
	backend    trace.Backend
}

func orNone(s string) string {
	if s == "" {
		return "(no observation)"
	}
	return s
}

// diffOne runs t on both sides and compares the runs (trace.Compare).
func diffOne(ctx context.Context, t *trace.Trace, o trace.Options, sides []*side) ([]trace.Divergence, error) {
	var runs [2]trace.RunResult
	for i, s := range sides {
		res, err := s.backend.Run(ctx, t, o)
		if d, ok := faultDivergence(err, i); ok {
			return []trace.Divergence{d}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("run %s on %s: %w", t.File, s.name, err)
		}
		runs[i] = res
	}
	return trace.Compare(runs[0], runs[1]), nil
}

// faultDivergence turns a model run stopped by a fault the model detects
// (a livelock, a lost wakeup, a leak, a page-ownership violation:
// model.Fault) into a divergence of side (0: a, 1: b): the other side ran
// the trace to its end, so the two disagree, which is what a diff of a
// counterexample against a kernel shows. Any other error is not one.
func faultDivergence(err error, side int) (trace.Divergence, bool) {
	var f *model.Fault
	if !errors.As(err, &f) {
		return trace.Divergence{}, false
	}
	d := trace.Divergence{Reason: "the run stopped", A: "stopped: " + oneLine(err.Error()), B: "(ran to the end)"}
	if side == 1 {
		d.A, d.B = d.B, d.A
	}
	return d, true
}
