package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
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
		if model.Implements(name) == nil {
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
	backendName := fs.String("backend", "model", "backend under test: "+backendNames("check"))
	twoHost := fs.Bool("two-host", false, "netstack backend: connections between two stacks over a 1500-byte link instead of one loopback stack")
	seed := fs.Uint64("seed", 1, "seed of the first trace (trace i uses seed+i)")
	outDir := fs.String("out", "out/check", "directory for counterexample traces")
	fs.Var(&mutations, "mutate", "model mutation (bug zoo) to plant, repeatable; see --mutate list")
	diff := fs.String("diff", "", "also run every trace on this backend ("+backendNames("check")+"; a kernel: kernel, or vm with --kernel) and check that it agrees")
	var ff formatFlags
	ff.register(fs, formatText, formatJSON, formatKTAP)
	runTimeout := fs.Duration("run-timeout", 2*time.Second, "skip a generated trace whose run takes longer (wall clock; a busy machine skips more; "+vmRunTimeout.String()+" when the vm backend runs the traces)")
	coverage := fs.Bool("coverage", false, "also list, per profile, the mirrored kernel functions its campaign did not reach")
	jobs := fs.Int("jobs", runtime.NumCPU(), "run the campaign as `N` worker processes on disjoint traces and merge their results: the same table as one\nprocess over the same traces (model and netstack backends without --diff; otherwise 1)")
	shard := fs.String("shard", "", "run shard `K/N` of the campaign: its share (one in N, by a hash of the trace number) of each profile's traces; with --format json its\nresult carries what 'splicecheck merge' needs to combine N shards into one campaign's table")
	worker := fs.Bool("worker", false, "internal: a worker of --jobs (progress lines on stderr)")
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
	if err := ff.resolve(); err != nil {
		return err
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
		if err := model.Implements(p); err != nil {
			return usagef("--profile: %v", err)
		}
	}
	c := fuzz.Campaign{
		Profiles: profiles, Budget: *budget, MaxTraces: *maxTraces, Seed: *seed,
		Mutations: mutations, OutDir: *outDir, RunTimeout: *runTimeout, Version: versionString(),
	}
	if *shard != "" {
		if c.Shard, c.Shards, err = parseShard(*shard); err != nil {
			return err
		}
	}
	parallel := (*backendName == "model" || *backendName == "netstack") && *diff == "" && *shard == ""
	switch {
	case *jobs < 1:
		return usagef("--jobs: want at least 1, got %d", *jobs)
	case *jobs > 1 && !parallel && flagSet(fs, "jobs"):
		return usagef("--jobs: workers run model or netstack campaigns without --diff or --shard (use --shard to spread a kernel's)")
	case !parallel:
		*jobs = 1
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
	if *jobs > 1 {
		// The flags are good (the backend opened): the workers open
		// their own.
		return checkJobs(ctx, e, fs, *jobs, ff.format, *outDir, *budget, *coverage, profiles)
	}
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
	if *worker {
		c.Progress = workerProgress(e)
	}
	outs, err := fuzz.Check(ctx, c)
	if c.Progress != nil {
		fmt.Fprint(e.stderr, "\r\033[K") // clear the progress line
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	cr := &checkReport{
		e: e, format: ff.format, profiles: profiles, outs: outs, withRef: len(mutations) > 0 || c.Reference != nil,
		replay: replayer{backend: *backendName, diff: *diff, twoHost: *twoHost, vm: vf},
	}
	if c.Shards > 1 {
		sh := fuzz.ShardOf(c, outs)
		sh.Backend, sh.Diff = *backendName, *diff
		cr.shard = &sh
	}
	if !*worker {
		cr.writeCompanions(ctx) // a worker's parent writes them, after the merge
	}
	if ctx.Err() != nil {
		return cr.interrupt(ctx)
	}
	return cr.finish(*coverage)
}

// finish prints the outcomes (print) and, with --coverage under text
// output, the functions each profile did not reach.
func (cr *checkReport) finish(coverage bool) error {
	err := cr.print()
	if coverage && cr.format == formatText {
		if cerr := printUnreached(cr.e.stdout, cr.outs); cerr != nil {
			return cerr
		}
	}
	return err
}

// checkReport prints check's outcomes in its --format: the table of
// properties x profiles (text), a JSON document, or KTAP with one result
// per profile and property.
type checkReport struct {
	e        *env
	format   string
	profiles []string // asked for; outs has those attacked
	outs     []fuzz.Verdict
	withRef  bool // the agrees-with-reference property is checked
	replay   replayer
	shard    *fuzz.Shard // a shard's result, for merge (--format json)
	// timelines maps each counterexample file to the HTML timeline
	// written beside it (writeTimelines), reproducers to its C
	// reproducer (writeReproducers).
	timelines, reproducers map[string]string
}

// print prints the outcomes and returns errDiverged when a property
// failed where it was expected to pass.
func (cr *checkReport) print() error {
	switch cr.format {
	case formatJSON:
		if err := writeJSON(cr.e, cr.json()); err != nil {
			return err
		}
	case formatKTAP:
		writeKTAP(cr.e.stdout, cr.ktap(""))
	default:
		return cr.table()
	}
	if cr.newFailures() > 0 {
		return errDiverged
	}
	return nil
}

// interrupt prints the outcomes so far (the counterexamples found are
// already written) and returns the interrupted error saying how many
// traces ran.
func (cr *checkReport) interrupt(ctx context.Context) error {
	n := 0
	for _, t := range profileTraces(cr.outs) {
		n += t
	}
	ierr := interrupted(ctx, fmt.Sprintf("%s ran on %d of %s", plural(n, "trace"), len(attacked(cr.outs)), plural(len(cr.profiles), "profile")), nil)
	switch cr.format {
	case formatJSON:
		return withPartial(ierr, cr.json())
	case formatKTAP:
		writeKTAP(cr.e.stdout, cr.ktap("interrupted"))
	default:
		cr.table()
		fmt.Fprintf(cr.e.stdout, "interrupted: %s ran on %s\n", plural(n, "trace"), strings.Join(attacked(cr.outs), ", "))
	}
	return ierr
}

func (cr *checkReport) newFailures() int {
	n := 0
	for _, o := range cr.outs {
		if o.Failed && cr.shown(o.Property) {
			n++
		}
	}
	return n
}

// shown reports whether the property has a row: agrees-with-reference
// only when there is a reference.
func (cr *checkReport) shown(property string) bool {
	return property != "agrees-with-reference" || cr.withRef
}

// attacked is the profiles outs has outcomes of, in order.
func attacked(outs []fuzz.Verdict) []string {
	var ps []string
	for _, o := range outs {
		if len(ps) == 0 || ps[len(ps)-1] != o.Profile {
			ps = append(ps, o.Profile)
		}
	}
	return ps
}

// profileTraces is, per profile attacked, the traces its campaign ran:
// the most any of its properties judged (a failed property stops
// counting).
func profileTraces(outs []fuzz.Verdict) map[string]int {
	m := map[string]int{}
	for _, o := range outs {
		m[o.Profile] = max(m[o.Profile], o.Traces)
	}
	return m
}

// jsonCheck is check's --format json document.
type jsonCheck struct {
	// Traces is, per profile attacked, the traces its campaign ran.
	Traces map[string]int `json:"traces"`
	Cells  []jsonCell     `json:"cells"`
	New    int            `json:"new"` // NEW failures: exit 1
	// Shard is a shard's result (check --shard), what merge reads.
	Shard *fuzz.Shard `json:"shard,omitempty"`
}

// jsonCell is one profile and property.
type jsonCell struct {
	Profile   string         `json:"profile"`
	Property  string         `json:"property"`
	Status    string         `json:"status"` // pass, known or NEW
	Traces    int            `json:"traces"`
	Known     map[string]int `json:"known,omitempty"` // signature: traces that failed with it
	Signature string         `json:"signature,omitempty"`
	Detail    string         `json:"detail,omitempty"`
	File      string         `json:"file,omitempty"`       // the counterexample
	Replay    string         `json:"replay,omitempty"`     // the command that replays it
	Timeline  string         `json:"timeline,omitempty"`   // its HTML timeline
	Repro     string         `json:"reproducer,omitempty"` // its C reproducer
}

func (cr *checkReport) json() jsonCheck {
	doc := jsonCheck{Traces: profileTraces(cr.outs), Cells: []jsonCell{}, New: cr.newFailures(), Shard: cr.shard}
	for _, o := range cr.outs {
		if !cr.shown(o.Property) {
			continue
		}
		c := jsonCell{Profile: o.Profile, Property: o.Property, Status: "pass", Traces: o.Traces, Known: o.Known}
		switch {
		case o.Failed:
			c.Status, c.Signature, c.Detail, c.File = "NEW", o.Violation.Signature(), o.Detail, o.File
			c.Replay, c.Timeline, c.Repro = cr.replay.command(o), cr.timelines[o.File], cr.reproducers[o.File]
		case len(o.Known) > 0:
			c.Status = "known"
		}
		doc.Cells = append(doc.Cells, c)
	}
	return doc
}

// ktap is one KTAP result per profile and property shown, then (when
// skipReason is set: an interrupt) one skipped result per property of
// each profile not attacked.
func (cr *checkReport) ktap(skipReason string) []ktapResult {
	var rs []ktapResult
	for _, o := range cr.outs {
		if !cr.shown(o.Property) {
			continue
		}
		r := ktapResult{ok: !o.Failed, name: o.Profile + " " + o.Property}
		switch {
		case o.Failed:
			r.diag = []string{"NEW " + o.Violation.Signature() + ": " + o.Detail}
			if o.File != "" {
				r.diag = append(r.diag, "counterexample: "+o.File, "replay: "+cr.replay.command(o))
			}
			if html := cr.timelines[o.File]; html != "" {
				r.diag = append(r.diag, "timeline: "+html)
			}
			if c := cr.reproducers[o.File]; c != "" {
				r.diag = append(r.diag, "reproducer: "+c)
			}
		case len(o.Known) > 0:
			r.directive = "XFAIL known: " + knownCell(o)
		case o.Traces == 0:
			r.directive = "SKIP no trace ran"
		default:
			r.directive = plural(o.Traces, "trace")
		}
		rs = append(rs, r)
	}
	if skipReason == "" {
		return rs
	}
	done := map[string]bool{}
	for _, p := range attacked(cr.outs) {
		done[p] = true
	}
	for _, p := range cr.profiles {
		if done[p] {
			continue
		}
		for _, pr := range fuzz.Properties {
			if cr.shown(pr.Name) {
				rs = append(rs, ktapResult{ok: true, name: p + " " + pr.Name, directive: "SKIP " + skipReason})
			}
		}
	}
	return rs
}

// knownCell is a known cell's signatures and counts: "SIG x3, SIG2 x1".
func knownCell(o fuzz.Verdict) string {
	var sigs []string
	for _, k := range fuzz.KnownOf(o.Profile, o.Property) {
		if n := o.Known[k.Signature()]; n > 0 {
			sigs = append(sigs, fmt.Sprintf("%s x%d", k.Signature(), n))
		}
	}
	return strings.Join(sigs, ", ")
}

// replayer makes the command that replays a counterexample of the
// campaign: run on the backend it ran on (diff against the reference for
// agrees-with-reference), with the flags that backend needs.
type replayer struct {
	backend, diff string
	twoHost       bool
	vm            vmFlags
}

// command is the shell command that replays o's counterexample ("" if
// none was written).
func (rp replayer) command(o fuzz.Verdict) string {
	if o.File == "" {
		return ""
	}
	args := []string{"splicecheck", "run"}
	usesVM := rp.backend == "vm"
	switch {
	case o.Property == "agrees-with-reference" && rp.diff != "":
		args = []string{"splicecheck", "diff", "--a", rp.backend, "--b", rp.diff}
		usesVM = usesVM || rp.diff == "vm"
	case rp.backend != "model":
		args = append(args, "--backend", rp.backend)
	}
	if rp.twoHost {
		args = append(args, "--two-host")
	}
	if usesVM {
		args = append(args, "--kernel", rp.vm.kernel)
		for _, m := range rp.vm.modules {
			args = append(args, "--module", m)
		}
	}
	args = append(args, o.File)
	for i, a := range args {
		args[i] = shellWord(a)
	}
	return strings.Join(args, " ")
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
	f := e.terminal()
	if f == nil {
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
		fmt.Fprintf(f, "\r\033[K%s%s: %s, %s", bar, profile, plural(n, "trace"), elapsed.Round(time.Second))
	}
}

// table prints properties x profiles and returns errDiverged if a
// property failed where it was expected to pass. Each NEW row is
// followed by the command that replays its counterexample.
func (cr *checkReport) table() error {
	e, outs := cr.e, cr.outs
	cell := map[[2]string]fuzz.Verdict{}
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
	var notes []string
	for _, pr := range fuzz.Properties {
		if !cr.shown(pr.Name) {
			continue
		}
		fmt.Fprint(tw, pr.Name)
		for _, p := range canon {
			o := cell[[2]string{p, pr.Name}]
			switch {
			case o.Failed:
				fmt.Fprintf(tw, "\tNEW %s: %s (%s)", o.Violation.Signature(), orInline(o), o.Detect.Round(time.Millisecond))
			case len(o.Known) > 0:
				var sigs []string
				for _, k := range fuzz.KnownOf(p, pr.Name) {
					if n := o.Known[k.Signature()]; n > 0 {
						sigs = append(sigs, fmt.Sprintf("%s x%d", k.Signature(), n))
						notes = append(notes, fmt.Sprintf("%s, %s, %s: %s", p, pr.Name, k.Signature(), k.Reason))
					}
				}
				fmt.Fprintf(tw, "\tknown: %s (%s)", strings.Join(sigs, ", "), plural(o.Traces, "trace"))
			default:
				fmt.Fprintf(tw, "\tpass (%s)", plural(o.Traces, "trace"))
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
	for _, o := range outs {
		if o.Failed && cr.shown(o.Property) && o.File != "" {
			fmt.Fprintf(e.stdout, "  %s, %s: replay: %s\n", o.Profile, o.Property, cr.replay.command(o))
			if html := cr.timelines[o.File]; html != "" {
				fmt.Fprintf(e.stdout, "  %s, %s: timeline: %s\n", o.Profile, o.Property, html)
			}
			if c := cr.reproducers[o.File]; c != "" {
				fmt.Fprintf(e.stdout, "  %s, %s: reproducer: %s\n", o.Profile, o.Property, c)
			}
		}
	}
	if unexpected := cr.newFailures(); unexpected > 0 {
		fmt.Fprintf(e.stdout, "%s (no known failure of the profile has the signature)\n", plural(unexpected, "NEW failure"))
		return errDiverged
	}
	return nil
}

// orInline is where a counterexample is: its file, or its detail.
func orInline(o fuzz.Verdict) string {
	if o.File != "" {
		return o.File
	}
	return o.Detail
}

// checkJobs is check --jobs: the campaign as worker processes (runJobs),
// merged and printed as one campaign.
func checkJobs(ctx context.Context, e *env, fs *flag.FlagSet, jobs int, format, outDir string, budget time.Duration, coverage bool, profiles []string) error {
	progress := progressLine(e, budget)
	shards, err := runJobs(ctx, e, workerArgs(fs), jobs, outDir, progress)
	if progress != nil {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	outs, err := fuzz.Merge(shards, outDir)
	if err != nil {
		return err
	}
	return printMerged(ctx, e, format, profiles, outs, shards[0], coverage)
}
