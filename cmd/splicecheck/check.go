package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// listFlag is a repeatable flag that also takes comma-separated lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// modelProfiles returns every profile the model implements: each base,
// and each patch on linux-6.18.
func modelProfiles() []string {
	var out []string
	for _, p := range trace.Profiles() {
		name := p.Name
		if p.Patch {
			name = trace.DefaultBase + "+" + name
		}
		if _, err := model.ParseProfile(name); err == nil {
			out = append(out, name)
		}
	}
	return out
}

func cmdCheck(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "check", "[flags]",
		"Attack profiles with generated traces for a time budget and check the properties of\n"+
			"DESIGN.md on every run; print a table of properties x profiles and write each\n"+
			"counterexample, shrunk, as a trace that `splicecheck run` replays. Exit status 1\n"+
			"when a property fails on a profile expected to pass it.")
	var profiles, mutations listFlag
	fs.Var(&profiles, "profile", "profile to attack (repeatable, or comma-separated; default: every profile the model implements)")
	budget := fs.Duration("time", 20*time.Second, "time budget per profile")
	maxTraces := fs.Int("traces", 0, "stop a profile after this many traces (0: only the time budget)")
	backendName := fs.String("backend", "model", "backend under test: model, netstack (or a kernel: kernel, vm)")
	twoHost := fs.Bool("two-host", false, "netstack backend: connections between two stacks over a 1500-byte link instead of one loopback stack")
	seed := fs.Uint64("seed", 1, "seed of the first trace (trace i uses seed+i)")
	outDir := fs.String("out", "out/check", "directory for counterexample traces")
	fs.Var(&mutations, "mutate", "model mutation (bug zoo) to plant, repeatable; see --mutate list")
	diff := fs.String("diff", "", "also run every trace on this backend (kernel, or vm with --kernel) and check that it agrees")
	runTimeout := fs.Duration("run-timeout", 2*time.Second, "skip a generated trace whose run takes longer (wall clock; a busy machine skips more; "+vmRunTimeout.String()+" when the vm backend runs the traces)")
	coverage := fs.Bool("coverage", false, "also list, per profile, the mirrored kernel functions its campaign did not reach")
	var vf vmFlags
	vf.register(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	usesVM := *backendName == "vm" || *diff == "vm"
	if err := vf.check(usesVM); err != nil {
		return err
	}
	if usesVM && !flagSet(fs, "run-timeout") {
		*runTimeout = vmRunTimeout
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q (check generates its traces)", rest[0])
	}
	if len(mutations) == 1 && mutations[0] == "list" {
		for _, m := range model.Mutations() {
			fmt.Fprintf(e.stdout, "%-28s %s\n", m.Name, m.Doc)
		}
		return nil
	}
	if *budget <= 0 && *maxTraces <= 0 {
		return usagef("--time: must be positive (or give --traces), got %v", *budget)
	}
	if *runTimeout <= 0 {
		return usagef("--run-timeout: must be positive, got %v", *runTimeout)
	}
	if *maxTraces < 0 {
		return usagef("--traces: must not be negative, got %d", *maxTraces)
	}
	if len(profiles) == 0 {
		profiles = modelProfiles()
	}
	for _, p := range profiles {
		if _, err := model.ParseProfile(p); err != nil {
			return usagef("--profile: %v", err)
		}
	}
	c := fuzz.Campaign{
		Profiles: profiles, Budget: *budget, MaxTraces: *maxTraces, Seed: *seed,
		Mutations: mutations, OutDir: *outDir, RunTimeout: *runTimeout, Version: versionString(),
	}
	if len(mutations) > 0 && *backendName != "model" {
		return usagef("--mutate: mutations are of the model backend, not %q", *backendName)
	}
	if *twoHost && *backendName != "netstack" {
		return usagef("--two-host is an option of the netstack backend, not %q", *backendName)
	}
	b, err := openBackend("--backend", *backendName, backendConfig{mutations: mutations, twoHost: *twoHost, campaign: true, vm: vf})
	if err != nil {
		return err
	}
	defer closeBackend(b)
	if *backendName != "model" {
		c.Backend = b
	}
	if *diff != "" {
		b, err := openBackend("--diff", *diff, backendConfig{vm: vf})
		if err != nil {
			return err
		}
		defer closeBackend(b)
		c.Reference, c.RefTimeScale = b, fuzz.DiffTimeScale
	}
	for _, s := range []struct {
		flag string
		b    trace.Backend
	}{{"--backend", c.Backend}, {"--diff", c.Reference}} {
		if s.b == nil {
			continue
		}
		if err := startBackend(ctx, s.b); err != nil {
			return fmt.Errorf("%s %s: %w", s.flag, s.b.Name(), err)
		}
		defer reportBackend(e, s.b)
	}
	c.Progress = progressLine(e, *budget)
	outs, err := fuzz.Check(ctx, c)
	if c.Progress != nil {
		fmt.Fprint(e.stderr, "\r\033[K") // clear the progress line
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	err = printCheckTable(e, profiles, outs, len(mutations) > 0 || c.Reference != nil)
	if *coverage {
		if cerr := printUnreached(e.stdout, outs); cerr != nil {
			return cerr
		}
	}
	return err
}

// vmRunTimeout is check's --run-timeout when a guest under TCG runs the
// traces: its ops take tens of milliseconds, and a trace its caller gives
// up on still holds the guest until it ends.
const vmRunTimeout = 30 * time.Second

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// progressLine returns a Progress callback that redraws one status line
// on stderr when it is a terminal, at most ten times a second.
func progressLine(e *env, budget time.Duration) func(string, int, time.Duration) {
	f, ok := e.stderr.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	var last time.Time
	return func(profile string, n int, elapsed time.Duration) {
		if time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		bar := ""
		if budget > 0 {
			done := min(int(20*elapsed/budget), 20)
			bar = "[" + strings.Repeat("#", done) + strings.Repeat(".", 20-done) + "] "
		}
		fmt.Fprintf(f, "\r\033[K%s%s: %d traces, %s", bar, profile, n, elapsed.Round(time.Second))
	}
}

// printCheckTable prints properties x profiles and returns errDiverged
// if a property failed where it was expected to pass.
func printCheckTable(e *env, profiles []string, outs []fuzz.Outcome, withRef bool) error {
	cell := map[[2]string]fuzz.Outcome{}
	var canon []string
	for _, o := range outs {
		if _, seen := cell[[2]string{o.Profile, ""}]; !seen {
			canon = append(canon, o.Profile)
			cell[[2]string{o.Profile, ""}] = o
		}
		cell[[2]string{o.Profile, o.Property}] = o
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "property")
	for _, p := range canon {
		fmt.Fprintf(tw, "\t%s", p)
	}
	fmt.Fprintln(tw)
	unexpected := 0
	var notes []string
	for _, pr := range fuzz.Properties {
		if pr.Name == "agrees-with-reference" && !withRef {
			continue
		}
		fmt.Fprint(tw, pr.Name)
		for _, p := range canon {
			o := cell[[2]string{p, pr.Name}]
			switch {
			case o.Failed:
				unexpected++
				fmt.Fprintf(tw, "\tNEW %s: %s (%s)", o.Violation.Signature(), orInline(o), o.Detect.Round(time.Millisecond))
			case len(o.Known) > 0:
				var sigs []string
				for _, k := range fuzz.KnownOf(p, pr.Name) {
					if n := o.Known[k.Signature()]; n > 0 {
						sigs = append(sigs, fmt.Sprintf("%s x%d", k.Signature(), n))
						notes = append(notes, fmt.Sprintf("%s, %s, %s: %s", p, pr.Name, k.Signature(), k.Reason))
					}
				}
				fmt.Fprintf(tw, "\tknown: %s (%d traces)", strings.Join(sigs, ", "), o.Traces)
			default:
				fmt.Fprintf(tw, "\tpass (%d traces)", o.Traces)
			}
		}
		fmt.Fprintln(tw)
	}
	printCoverageRow(tw, canon, outs)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(e.stdout, "  "+n)
	}
	for _, o := range outs {
		if o.InFlight == nil {
			continue
		}
		where := o.InFlightFile
		if where == "" {
			where = o.InFlight.Format()
		}
		fmt.Fprintf(e.stdout, "  %s, %s, with TCP segments held in flight: %s\n    %s\n", o.Profile, o.Property, where, o.InFlightDetail)
	}
	if unexpected > 0 {
		fmt.Fprintf(e.stdout, "%d NEW failures: signatures that match no known failure of their profile\n", unexpected)
		return errDiverged
	}
	return nil
}

// orInline is where a counterexample is: its file, or its detail.
func orInline(o fuzz.Outcome) string {
	if o.File != "" {
		return o.File
	}
	return o.Detail
}
