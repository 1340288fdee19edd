package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// runFlags are the flags run and diff share.
type runFlags struct {
	profile   string
	timeout   time.Duration
	timeScale int
	seed      uint64
	json      bool
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.profile, "profile", "", "kernel behaviour to reproduce (see 'splicecheck profiles'); overrides the trace's profile directive")
	fs.DurationVar(&f.timeout, "timeout", trace.DefaultOpTimeout, "per-op timeout; an op still running then is reported as -ETIMEDOUT (runner)")
	fs.IntVar(&f.timeScale, "time-scale", 1, "run every duration of a trace (rcvtimeo, sleep, --timeout) this many times slower on a kernel, so that\nthe runner's own time (about 1 ms an op) is a smaller part of trace time; the model ignores it")
	fs.Uint64Var(&f.seed, "seed", 0, "seed for the backend's scheduler (model backends)")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of text")
}

func (f *runFlags) options() (trace.Options, error) {
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
	Trace        string       `json:"trace"`
	Backend      string       `json:"backend"`
	Profile      string       `json:"profile"`
	Observations []jsonObs    `json:"observations"`
	Stats        *model.Stats `json:"stats,omitempty"`
}

// statsBackend is a backend with copy accounting (the model).
type statsBackend interface {
	RunTraceStats(ctx context.Context, t *trace.Trace, opts trace.Options) ([]trace.Observation, *model.Stats, error)
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
	rf.register(fs)
	backend := fs.String("backend", "model", "backend to run on: "+backendNames())
	var mutations listFlag
	fs.Var(&mutations, "mutate", "model mutation (bug zoo) to plant, repeatable; see 'splicecheck check --mutate list'")
	stats := fs.Bool("stats", false, "after each trace, print the model's copy accounting: per op kind, bytes moved, bytes the kernel copied, copies per byte")
	pcap := fs.String("pcap", "", "netstack backend: write a pcap capture of the run's TCP segments to `FILE` (one trace only)")
	twoHost := fs.Bool("two-host", false, "netstack backend: connections between two stacks over a 1500-byte link instead of one loopback stack")
	var vf vmFlags
	vf.register(fs)
	var in traceInput
	in.register(fs)
	paths, err := parseFlags(fs, args)
	if err != nil {
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
	sb, hasStats := b.(statsBackend)
	if *stats && !hasStats {
		return usagef("--stats: copy accounting is the model's; backend %q has none", *backend)
	}
	if err := startBackend(ctx, b); err != nil {
		return err
	}
	defer reportBackend(e, b)
	var runs []jsonRun
	failing := 0
	for _, t := range traces {
		if h, ok := in.header(t); ok && (*backend == "model" || *backend == "netstack") && !*stats {
			// A counterexample: run it as the campaign did and judge
			// the property it names.
			fails, err := replayCounterexample(ctx, e, t, h, *backend, cfg, opts, rf.json)
			if err != nil {
				return err
			}
			if fails {
				failing++
			}
			continue
		}
		o, err := trace.ResolveOptions(t, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", t.File, err)
		}
		var obs []trace.Observation
		var st *model.Stats
		if *stats {
			obs, st, err = sb.RunTraceStats(ctx, t, o)
		} else {
			obs, err = trace.Run(ctx, b, t, o)
		}
		if err != nil {
			return fmt.Errorf("run %s on %s: %w", t.File, b.Name(), err)
		}
		if rf.json {
			runs = append(runs, jsonRun{t.File, b.Name(), o.Profile, toJSONObs(obs), st})
			continue
		}
		if len(traces) > 1 {
			fmt.Fprintf(e.stdout, "== %s (backend %s, profile %s)\n", t.File, b.Name(), o.Profile)
		}
		for _, ob := range obs {
			fmt.Fprintln(e.stdout, ob)
		}
		if st != nil {
			fmt.Fprintf(e.stdout, "-- copies (profile %s)\n%s", o.Profile, st)
		}
	}
	if rf.json && len(runs) > 0 {
		if err := writeJSON(e, runs); err != nil {
			return err
		}
	}
	if failing > 0 {
		return errDiverged
	}
	return nil
}

// replayCounterexample runs counterexample t on the campaign's model (the
// header's mutations planted, unless --mutate names others), prints its
// observations and the verdict on the property it names, and reports
// whether the property still fails.
func replayCounterexample(ctx context.Context, e *env, t *trace.Trace, h fuzz.Header, backend string, cfg backendConfig, opts trace.Options, asJSON bool) (bool, error) {
	if len(cfg.mutations) == 0 {
		cfg.mutations = h.Mutations
	}
	cfg.campaign = true
	b, err := openBackend("--backend", backend, cfg)
	if err != nil {
		return false, err
	}
	if opts.Profile != "" {
		t.Profile = opts.Profile
	}
	r, v, err := fuzz.Replay(ctx, b, t, h.Property)
	if err != nil {
		return false, fmt.Errorf("%s: %w", t.File, err)
	}
	if r.Err != nil && v == nil {
		return false, fmt.Errorf("run %s on %s: %w", t.File, b.Name(), r.Err)
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

func backendNames() string {
	var names []string
	for _, b := range backends {
		n := b.name
		if b.open == nil {
			n += " (not built yet)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// goldenPath is where the golden observations of t for profile live.
func goldenPath(dir, profile string, t *trace.Trace) string {
	name := strings.TrimSuffix(filepath.Base(t.File), filepath.Ext(t.File))
	return filepath.Join(dir, profile, name+".out")
}
