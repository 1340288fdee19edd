package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/internal/timeline"
	"github.com/splicecheck/splicecheck/trace"
)

// runFlags are the flags run and diff share.
type runFlags struct {
	profile   string
	timeout   time.Duration
	timeScale int
	seed      uint64
	formatFlags
}

// register adds the flags, --format taking formats (text first).
func (f *runFlags) register(fs *flag.FlagSet, formats ...string) {
	f.formatFlags.register(fs, formats...)
	fs.StringVar(&f.profile, "profile", "", "kernel behaviour to reproduce (see 'splicecheck profiles'); overrides the trace's profile directive")
	fs.DurationVar(&f.timeout, "timeout", trace.DefaultOpTimeout, "per-op timeout; an op still running then is reported as -ETIMEDOUT (runner)")
	fs.IntVar(&f.timeScale, "time-scale", 1, "run every duration of a trace (rcvtimeo, sleep, --timeout) this many times slower on a kernel, so that\nthe runner's own time (about 1 ms an op) is a smaller part of trace time; the model ignores it")
	fs.Uint64Var(&f.seed, "seed", 0, "seed for the backend's scheduler (model backends)")
}

func (f *runFlags) options() (trace.Options, error) {
	if err := f.resolve(); err != nil {
		return trace.Options{}, err
	}
	if f.profile != "" {
		if _, err := trace.ParseProfile(f.profile); err != nil {
			return trace.Options{}, usagef("--profile: %v", err)
		}
	}
	if f.timeout <= 0 {
		return trace.Options{}, usagef("--timeout: must be positive, got %v", f.timeout)
	}
	if f.timeScale < 1 || f.timeScale > 1000 {
		return trace.Options{}, usagef("--time-scale: want 1 to 1000, got %d", f.timeScale)
	}
	return trace.Options{Profile: f.profile, OpTimeout: f.timeout, Seed: f.seed, TimeScale: f.timeScale}, nil
}

// jsonRun is one trace's run in --json output.
type jsonRun struct {
	Trace        string      `json:"trace"`
	Backend      string      `json:"backend"`
	Profile      string      `json:"profile"`
	Observations []jsonObs   `json:"observations"`
	Stats        trace.Stats `json:"stats,omitempty"`
	// Interrupted: a signal stopped the run; Observations are those of
	// the ops that had ended.
	Interrupted bool `json:"interrupted,omitempty"`
}

type jsonObs struct {
	Line   int    `json:"line"`
	Op     string `json:"op"`
	Result string `json:"result"`
	Data   []byte `json:"data,omitempty"` // full data, base64
}

func toJSONObs(obs []trace.Observation) []jsonObs {
	out := make([]jsonObs, len(obs))
	for i, o := range obs {
		out[i] = jsonObs{Line: o.Line, Op: o.Op, Result: o.Result.String(), Data: o.Result.Data}
	}
	return out
}

func cmdRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", "[flags] TRACE...", "Run each trace on a backend and print one observation per op:\n\n    LINE: OP => RESULT")
	var rf runFlags
	rf.register(fs, formatText, formatJSON)
	backend := fs.String("backend", "model", "backend to run on: "+backendNames("run"))
	var mutations listFlag
	fs.Var(&mutations, "mutate", "model mutation (bug zoo) to plant, repeatable; see 'splicecheck check --mutate list'")
	stats := fs.Bool("stats", false, "after each trace, print the model's copy accounting: per op kind, bytes moved, bytes the kernel copied, copies per byte")
	pcap := fs.String("pcap", "", "netstack backend: write a pcap capture of the run's TCP segments to `FILE` (one trace only)")
	twoHost := fs.Bool("two-host", false, "netstack backend: connections between two stacks over a 1500-byte link instead of one loopback stack")
	html := fs.String("html", "", "model backends: write the run's timeline to `FILE`, one self-contained HTML page (threads, kernel contexts,\nqueue lengths; a counterexample's violation marked where it shows; one trace only)")
	var vf vmFlags
	vf.register(fs)
	var in traceInput
	in.register(fs)
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := checkHTMLFlag(*html, *backend, len(paths)); err != nil {
		return err
	}
	if err := vf.check(*backend == "vm"); err != nil {
		return err
	}
	opts, err := rf.options()
	if err != nil {
		return err
	}
	traces, err := in.parseAll(ctx, paths, true)
	if err != nil {
		return err
	}
	if len(mutations) > 0 && *backend != "model" {
		return usagef("--mutate: mutations are of the model backend, not %q", *backend)
	}
	cfg := backendConfig{mutations: mutations, twoHost: *twoHost, vm: vf}
	if (*pcap != "" || *twoHost) && *backend != "netstack" {
		return usagef("--pcap and --two-host are options of the netstack backend, not %q", *backend)
	}
	if *pcap != "" {
		if len(traces) != 1 {
			return usagef("--pcap: one trace at a time (got %d)", len(traces))
		}
		f, err := os.Create(*pcap)
		if err != nil {
			return fmt.Errorf("--pcap: %w", err)
		}
		defer f.Close()
		cfg.pcap = f
	}
	b, err := openBackend("--backend", *backend, cfg)
	if err != nil {
		return err
	}
	defer closeBackend(b)
	if *stats && !keepsStats(*backend) {
		return usagef("--stats: copy accounting is the model's; backend %q has none", *backend)
	}
	opts.Stats = *stats
	if err := startBackend(ctx, b); err != nil {
		return err
	}
	defer reportBackend(e, b)
	rs := runState{e: e, b: b, opts: opts, json: rf.json, many: len(traces) > 1, html: *html}
	for _, t := range traces {
		if h, ok := in.header(t); ok && (*backend == "model" || *backend == "netstack") && !*stats {
			// A counterexample: run it as the campaign did and judge
			// the property it names.
			fails, err := replayCounterexample(ctx, e, t, h, *backend, cfg, opts, rf.json, *html)
			if err != nil {
				return rs.stop(ctx, err)
			}
			rs.ran++
			if fails {
				rs.failing++
			}
			continue
		}
		if err := rs.runOne(ctx, t); err != nil {
			return rs.stop(ctx, err)
		}
	}
	if err := rs.flush(); err != nil {
		return err
	}
	if rs.failing > 0 {
		return errDiverged
	}
	return nil
}

// runState is cmdRun's progress: the traces run so far and, under
// --json, their runs, printed at the end or on an interrupt.
type runState struct {
	e       *env
	b       trace.Backend
	opts    trace.Options
	json    bool
	many    bool   // more than one trace: text output heads each with its name
	html    string // --html: the file of the (one) trace's timeline
	runs    []jsonRun
	ran     int    // traces run to their end
	failing int    // counterexamples that still fail
	cut     string // the trace an interrupt cut short, and how far it got
}

// runOne runs t (with copy accounting under --stats) and prints its
// observations, or keeps them for the JSON document. When ctx ends
// during the run, the observations made so far are printed (kept) all
// the same, marked interrupted, and the run's error is returned.
func (rs *runState) runOne(ctx context.Context, t *trace.Trace) error {
	o, err := trace.ResolveOptions(t, rs.opts)
	if err != nil {
		return inFile(t, err)
	}
	o.Timeline = rs.html != ""
	res, err := rs.b.Run(ctx, t, o)
	if rs.html != "" && res.Timeline != nil {
		// A run that failed too: its page marks where.
		if werr := writeTimeline(rs.html, timeline.Page{Trace: t, Timeline: res.Timeline, Backend: rs.b.Name(), Profile: o.Profile}); werr != nil {
			return fmt.Errorf("--html: %w", werr)
		}
	}
	obs, st := res.Obs, res.Stats
	cut := err != nil && ctx.Err() != nil
	if err != nil && !cut {
		return fmt.Errorf("run %s on %s: %w", t.File, rs.b.Name(), err)
	}
	if rs.json {
		rs.runs = append(rs.runs, jsonRun{t.File, rs.b.Name(), o.Profile, toJSONObs(obs), st, cut})
	} else {
		rs.printText(t, o, obs, st, cut)
	}
	if cut {
		rs.cut = fmt.Sprintf("%s stopped after %d of %s", t.File, len(obs), plural(len(t.Ops), "op"))
		return err
	}
	rs.ran++
	return nil
}

func (rs *runState) printText(t *trace.Trace, o trace.Options, obs []trace.Observation, st trace.Stats, cut bool) {
	e := rs.e
	if rs.many {
		fmt.Fprintf(e.stdout, "== %s (backend %s, profile %s)\n", t.File, rs.b.Name(), o.Profile)
	}
	for _, ob := range obs {
		fmt.Fprintln(e.stdout, ob)
	}
	if cut {
		fmt.Fprintf(e.stdout, "-- interrupted: %d of %s ended\n", len(obs), plural(len(t.Ops), "op"))
	}
	if st != nil {
		fmt.Fprintf(e.stdout, "-- copies (profile %s)\n%s", o.Profile, st)
	}
}

// flush prints the JSON document of the runs so far.
func (rs *runState) flush() error {
	if rs.json && len(rs.runs) > 0 {
		return writeJSON(rs.e, rs.runs)
	}
	return nil
}

// stop ends the command on err: an interrupt (ctx ended) becomes
// interrupted, with the runs so far on it under --json (printed already
// in text); any other error is returned as it is.
func (rs *runState) stop(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	where := rs.cut
	if where == "" {
		where = oneLine(err.Error())
	}
	ierr := interrupted(ctx, fmt.Sprintf("%s ran to the end; %s", plural(rs.ran, "trace"), where), err)
	if rs.json {
		return withPartial(ierr, rs.runs)
	}
	return ierr
}

// replayCounterexample runs counterexample t on the campaign's model (the
// header's mutations planted, unless --mutate names others), prints its
// observations and the verdict on the property it names, and reports
// whether the property still fails. With html set it writes the run's
// timeline there, the violation marked.
func replayCounterexample(ctx context.Context, e *env, t *trace.Trace, h fuzz.Header, backend string, cfg backendConfig, opts trace.Options, asJSON bool, html string) (bool, error) {
	if opts.Profile != "" {
		t.Profile = opts.Profile
	}
	r, v, name, err := replayRecorded(ctx, t, h, backend, cfg, html != "")
	if err != nil {
		return false, err
	}
	if html != "" {
		if err := writeTimeline(html, timeline.Page{Trace: t, Timeline: r.Timeline, Backend: name, Profile: t.Profile,
			Verdict: verdictOf(h.Property, v)}); err != nil {
			return false, fmt.Errorf("--html: %w", err)
		}
	}
	if r.Err != nil && v == nil {
		return false, fmt.Errorf("run %s on %s: %w", t.File, name, r.Err)
	}
	verdict := map[string]any{"trace": t.File, "property": h.Property, "holds": v == nil}
	if v != nil {
		verdict["violation"] = v.Error()
		verdict["signature"] = v.Signature()
	}
	if asJSON {
		return v != nil, writeJSON(e, map[string]any{"observations": toJSONObs(r.Obs), "verdict": verdict})
	}
	for _, ob := range r.Obs {
		fmt.Fprintln(e.stdout, ob)
	}
	if v == nil {
		fmt.Fprintf(e.stdout, "verdict: %s holds: %s no longer fails (it was found as %s)\n", h.Property, t.File, h.Signature)
		return false, nil
	}
	fmt.Fprintf(e.stdout, "verdict: %s fails: %s\n", h.Property, v)
	return true, nil
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// backendNames lists the backends cmd can run, for its help.
func backendNames(cmd string) string {
	return strings.Join(backendsFor(cmd), ", ")
}

// inFile names t's file in err, unless err names it already (an error
// at a position of the file: FILE:LINE:COL).
func inFile(t *trace.Trace, err error) error {
	if strings.HasPrefix(err.Error(), t.File+":") {
		return err
	}
	return fmt.Errorf("%s: %w", t.File, err)
}
