package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/kernelshim/vm"
	"github.com/splicecheck/splicecheck/trace"
)

func cmdVM(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "vm", "--kernel IMAGE [flags] TRACE...",
		"Boot IMAGE in a VM, run the traces on its kernel, and compare them byte for byte\n"+
			"with a model profile (default: the base profile matching the guest's version)\n"+
			"or with recorded goldens. Exit status 1 when any trace diverges.")
	var rf runFlags
	rf.register(fs, formatText, formatJSON, formatKTAP)
	kernel := fs.String("kernel", "", "kernel image to boot (bzImage or vmlinuz)")
	var modules pathList
	fs.Var(&modules, "module", moduleUsage)
	runner := fs.String("runner", vm.RunnerQEMU, "how to start the VM: qemu, or vng (virtme-ng)")
	against := fs.String("against", "model", "what to compare the guest's runs with: model, golden, or none (with --record)")
	goldenDir := fs.String("golden-dir", "testdata/golden", "directory of golden observations, by profile")
	record := fs.String("record", "", "also write the guest's observations as goldens under DIR/PROFILE/")
	guestBin := fs.String("guest-binary", "", "static splicecheck binary for the guest (default: this one)")
	limit := fs.Duration("vm-timeout", 5*time.Minute, "wall-clock limit for the whole VM run")
	expectFile := fs.String("expect", "", "`FILE` of known divergences, one 'TRACE: reason' per line (TRACE is the file's base name):\n"+
		"they are reported as known; one that agrees, or a divergence not listed, is exit 1, except a\n"+
		"reason that starts with 'race:' (the kernel's timing decides whether it diverges)")
	reproC := fs.Bool("repro", false, "run each trace as its C reproducer (splicecheck repro --c), compiled -static with gcc\n"+
		"on this machine and run in the guest instead of the kernel backend (qemu runner only)")
	failOnWarn := fs.Bool("fail-on-warn", false, "exit 1 when the guest's kernel logs a warning (a WARN splat, a BUG, \"TCP recvmsg seq # bug\")\n"+
		"while a trace runs; the warnings are reported either way")
	var in traceInput
	in.register(fs)
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	var expect map[string]string
	if *expectFile != "" {
		if expect, err = readExpect(*expectFile); err != nil {
			return err
		}
	}
	if _, err := rf.options(); err != nil {
		return err
	}
	if *kernel == "" {
		return usagef("--kernel: required")
	}
	switch {
	case *against == "none" && *record == "":
		return usagef("--against none: only with --record")
	case *against != "model" && *against != goldenBackend && *against != "none":
		return usagef("--against: want model, golden or none, got %q", *against)
	}
	traces, err := in.parseAll(ctx, paths, false)
	if err != nil {
		return err
	}
	var ref trace.Backend // what the guest's runs are compared with
	if *against != "none" {
		if ref, err = openBackend("--against", *against, backendConfig{goldenDir: *goldenDir}); err != nil {
			return err
		}
	}
	bin := *guestBin
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary: %w", err)
		}
	}
	progress := newVMProgress(e, len(paths))
	res, err := vm.Run(ctx, vm.Config{Kernel: *kernel, Runner: *runner, GuestBinary: bin, Timeout: *limit, OpTimeout: rf.timeout, TimeScale: rf.timeScale, Modules: modules, Progress: progress, Repro: *reproC}, paths)
	if f := e.terminal(); f != nil {
		fmt.Fprint(f, "\r\033[K") // clear the progress line
	}
	if err != nil && (res == nil || ctx.Err() == nil) {
		return vmError(err)
	}
	runErr := err // an interrupt: res has the traces the guest reported
	profile := rf.profile
	if profile == "" {
		if profile, err = profileForRelease(res.Release); err != nil {
			return err
		}
	}
	vr := &vmReport{
		compareReport: compareReport{e: e, format: rf.format, expectFile: *expectFile, tally: expectTally{list: expect}},
		against:       *against, release: res.Release, profile: profile,
	}
	vr.header(res)
	opts := trace.Options{Profile: profile, OpTimeout: rf.timeout, Seed: rf.seed, TimeScale: rf.timeScale}
	for i, run := range res.Runs {
		t := traces[i]
		if run.Err != "" {
			return fmt.Errorf("%w: %s: %s", vm.ErrGuest, t.File, run.Err)
		}
		if *record != "" {
			if err := writeGolden(trace.GoldenPath(*record, profile, t), run.Obs); err != nil {
				return err
			}
		}
		if ref == nil {
			vr.recorded(t)
			vr.warnings(t, run.Warnings)
			continue
		}
		o, err := trace.ResolveOptions(t, opts)
		if err != nil {
			return err
		}
		want, err := ref.Run(ctx, t, o)
		fd, fault := faultDivergence(err, 0)
		var d []trace.Divergence
		switch {
		case fault:
			d = []trace.Divergence{fd}
		case err != nil && ctx.Err() != nil:
			return vr.interrupt(ctx, err, traces[i:])
		case err != nil:
			return fmt.Errorf("--against %s: run %s: %w", *against, t.File, err)
		default:
			d = trace.Compare(want, trace.RunResult{Obs: run.Obs, Recorded: *reproC}) // a: what the guest is compared with; a reproducer's lines are a recording
		}
		vr.add(t, d)
		vr.warnings(t, run.Warnings)
	}
	if runErr != nil {
		return vr.interrupt(ctx, runErr, traces[len(res.Runs):])
	}
	if vr.warned > 0 && vr.format == formatText {
		fmt.Fprintf(e.stdout, "guest kernel warned during %s\n", plural(vr.warned, "trace"))
	}
	if err := vr.finish(len(traces)); err != nil {
		return err
	}
	if *failOnWarn && vr.warned > 0 {
		return errDiverged
	}
	return nil
}

// newVMProgress returns vm's Progress callback: a status line on stderr
// while the guest boots and runs the traces, when stderr is a terminal
// (else nil). A variable for tests.
var newVMProgress = func(e *env, total int) func(int, time.Duration) {
	f := e.terminal()
	if f == nil {
		return nil
	}
	return func(ran int, elapsed time.Duration) {
		fmt.Fprintf(f, "\r\033[Kvm: guest up, %d of %s reported, %s", ran, plural(total, "trace"), elapsed.Round(time.Second))
	}
}

// vmReport prints vm's results in its --format: text as each trace is
// compared, JSON and KTAP at the end (or on an interrupt, with the
// traces the guest reported).
type vmReport struct {
	compareReport
	against          string
	release, profile string
	warned           int // traces during which the guest's kernel warned
}

// warnings reports what the guest's kernel logged as warnings while t
// ran: in text after t's line, in JSON on t's entry.
func (vr *vmReport) warnings(t *trace.Trace, w []string) {
	if len(w) == 0 {
		return
	}
	vr.warned++
	if n := len(vr.out); n > 0 {
		vr.out[n-1].KernelWarnings = w
	}
	if vr.format != formatText {
		return
	}
	for _, m := range w {
		fmt.Fprintf(vr.e.stdout, "  %s: guest kernel warned: %s\n", t.File, m)
	}
}

// header prints, in text, what the guest is and did.
func (vr *vmReport) header(res *vm.Result) {
	if vr.format != formatText {
		return
	}
	mods := ""
	if len(res.Modules) > 0 {
		mods = ", modules " + strings.Join(res.Modules, ", ")
	}
	fmt.Fprintf(vr.e.stdout, "guest %s (%s%s): first observation %.1fs after start, %s in %.1fs\n",
		res.Release, res.Accel, mods, res.BootToFirst.Seconds(), plural(len(res.Runs), "trace"), res.Total.Seconds())
}

// recorded reports a trace recorded and not compared (--against none).
func (vr *vmReport) recorded(t *trace.Trace) {
	vr.out = append(vr.out, jsonDiff{Trace: t.File, A: "none", B: "guest " + vr.release, Profile: vr.profile, Agree: true})
	vr.ktap = append(vr.ktap, ktapResult{ok: true, name: t.File, directive: "SKIP recorded, not compared (--against none)"})
	if vr.format == formatText {
		fmt.Fprintf(vr.e.stdout, "recorded %s (guest %s, profile %s)\n", t.File, vr.release, vr.profile)
	}
}

// add counts and prints (text) or keeps (json, ktap) one trace's result.
func (vr *vmReport) add(t *trace.Trace, d []trace.Divergence) {
	e, against, profile, release := vr.e, vr.against, vr.profile, vr.release
	vr.out = append(vr.out, jsonDiff{Trace: t.File, A: against, B: "guest " + release, Profile: profile, Agree: len(d) == 0, Divergences: d})
	reason, verdict := vr.tally.add(t.File, len(d) > 0)
	vr.ktap = append(vr.ktap, ktapVerdict(t.File, verdict, reason, vr.expectFile, d, against, "guest"))
	if vr.format != formatText {
		return
	}
	switch {
	case verdict == "fixed":
		fmt.Fprintf(e.stdout, "AGREES   %s (guest %s vs %s %s), listed in %s as a known divergence: %s\n", t.File, release, against, profile, vr.expectFile, reason)
		return
	case verdict == "agree" && reason != "":
		fmt.Fprintf(e.stdout, "agree    %s (guest %s vs %s %s); listed as %s\n", t.File, release, against, profile, reason)
		return
	case verdict == "agree":
		fmt.Fprintf(e.stdout, "agree    %s (guest %s vs %s %s)\n", t.File, release, against, profile)
		return
	case verdict == "known":
		fmt.Fprintf(e.stdout, "known    %s (guest %s vs %s %s): %s\n", t.File, release, against, profile, reason)
	default:
		fmt.Fprintf(e.stdout, "DIVERGE  %s (guest %s vs %s %s)\n", t.File, release, against, profile)
	}
	for _, dv := range d {
		fmt.Fprintf(e.stdout, "  %s:%d: %s: %s\n    %s: %s\n    guest: %s\n", t.File, dv.Line, dv.Op, dv.Reason, against, orNone(dv.A), orNone(dv.B))
	}
}

// expectTally counts traces against an --expect list (nil: none): a
// divergence it lists is known, one it does not list diverged, and a
// listed trace that agrees is fixed (a gap closed), unless its reason
// starts with racePrefix.
type expectTally struct {
	list                   map[string]string
	diverged, known, fixed int
}

// add counts a trace that diverged or agreed and returns its listed
// reason and how it was counted: "diverge", "known", "fixed" or "agree".
func (x *expectTally) add(file string, diverged bool) (reason, verdict string) {
	reason, listed := x.list[filepath.Base(file)]
	switch {
	case diverged && listed:
		x.known++
		return reason, "known"
	case diverged:
		x.diverged++
		return reason, "diverge"
	case listed && !strings.HasPrefix(reason, racePrefix):
		x.fixed++
		return reason, "fixed"
	}
	return reason, "agree"
}

// summary is the last line of the report of a run of n traces.
func (x *expectTally) summary(n int) string {
	if x.list == nil {
		return fmt.Sprintf("%s: %d agree, %d diverge", plural(n, "trace"), n-x.diverged, x.diverged)
	}
	return fmt.Sprintf("%s: %d agree, %d diverge as known, %d diverge, %d listed but agree",
		plural(n, "trace"), n-x.diverged-x.known-x.fixed, x.known, x.diverged, x.fixed)
}

// failed reports whether the run exits 1.
func (x *expectTally) failed() bool { return x.diverged > 0 || x.fixed > 0 }

// racePrefix starts the reason of a --expect entry whose divergence
// depends on the kernel's timing (a counterexample's schedule forces an
// interleaving in the model that the kernel may or may not take): it may
// agree without failing the run.
const racePrefix = "race:"

// readExpect reads a --expect file: "TRACE: reason" lines, # comments
// and blank lines ignored. A line without a reason is bad input.
func readExpect(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--expect: %v", err)
	}
	m := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, ok := strings.Cut(line, ":")
		name, reason = strings.TrimSpace(name), strings.TrimSpace(reason)
		if !ok || name == "" || reason == "" {
			return nil, usagef("--expect: %s:%d:1: want 'TRACE: reason'", path, i+1)
		}
		m[name] = reason
	}
	return m, nil
}

// vmError marks the VM failures that are the user's input (a bad image, a
// kernel without sockmap, a missing runner) as bad input.
func vmError(err error) error {
	for _, s := range []error{vm.ErrBadImage, vm.ErrNoSockmap, vm.ErrModule, vm.ErrNoRunner, vm.ErrBadBinary, vm.ErrBadRunner, vm.ErrPanic, vm.ErrHung} {
		if errors.Is(err, s) {
			return &usageError{oneLine(err.Error())}
		}
	}
	return err
}

// profileForRelease maps a guest's uname -r to the base profile measured on
// that kernel line.
func profileForRelease(release string) (string, error) {
	for _, p := range trace.Profiles() {
		if p.Patch {
			continue
		}
		v := strings.TrimPrefix(p.Name, "linux-")
		if release == v || strings.HasPrefix(release, v+".") || strings.HasPrefix(release, v+"-") {
			return p.Name, nil
		}
	}
	return "", usagef("no base profile for guest kernel %s; pass --profile", release)
}

func writeGolden(path string, obs []trace.Observation) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("record golden: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("record golden: %w", err)
	}
	if err := trace.WriteGolden(f, obs); err != nil {
		f.Close()
		return fmt.Errorf("record golden %s: %w", path, err)
	}
	return f.Close()
}

// cmdGuest is the guest side under a runner that provides the machine (vng).
func cmdGuest(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "guest", "[--timeout D] [--module FILE...] TRACE...", "Load the modules, run traces on this machine's kernel and write framed results to\nstandard output. The guest side of 'splicecheck vm --runner vng'; not for direct use.")
	timeout := fs.Duration("timeout", trace.DefaultOpTimeout, "per-op timeout")
	scale := fs.Int("time-scale", 1, "run the traces' durations this many times slower (see run --help)")
	var modules pathList
	fs.Var(&modules, "module", "kernel module `FILE.ko[:PARAMS]` to load first (repeatable, in order)")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	b, err := openBackend("--backend", "kernel", backendConfig{})
	if err != nil {
		return err
	}
	os.Setenv("SPLICECHECK_OP_TIMEOUT", timeout.String())
	os.Setenv("SPLICECHECK_TIME_SCALE", strconv.Itoa(*scale))
	if code := vm.GuestMain(b, e.stdout, paths, modules); code != 0 {
		return fmt.Errorf("%w: exit %d", vm.ErrGuest, code)
	}
	return nil
}

// guestInit runs /init in a splicecheck VM.
func guestInit() int {
	return vm.GuestInit(func() (trace.Backend, error) {
		return openBackend("--backend", "kernel", backendConfig{})
	})
}

// pathList is a repeatable flag of file paths (no comma splitting: a path
// may hold one).
type pathList []string

func (l *pathList) String() string { return strings.Join(*l, " ") }
func (l *pathList) Set(s string) error {
	if s == "" {
		return errors.New("empty path")
	}
	*l = append(*l, s)
	return nil
}

// vmFlags are the vm backend's flags on run, diff and check.
type vmFlags struct {
	kernel   string
	modules  pathList
	guestBin string
}

// moduleUsage is the help of --module, for vm and the vm backend.
const moduleUsage = "kernel module `FILE.ko[:PARAMS]` the guest loads with finit_module before any trace " +
	"(PARAMS: comma-separated name=value, e.g. tcp_splice.ko:ring_kbytes=16); repeatable, loaded in the order given"

func (f *vmFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kernel, "kernel", "", "vm backend: kernel image to boot (bzImage or vmlinuz)")
	fs.Var(&f.modules, "module", "vm backend: "+moduleUsage)
	fs.StringVar(&f.guestBin, "guest-binary", "", "vm backend: static splicecheck binary for the guest (default: this one)")
}

// check refuses the vm flags when no side of the command is the vm
// backend, and requires --kernel when one is.
func (f *vmFlags) check(usesVM bool) error {
	if usesVM {
		if f.kernel == "" {
			return usagef("--kernel: required with the vm backend")
		}
		return nil
	}
	switch {
	case f.kernel != "":
		return usagef("--kernel is an option of the vm backend, which no backend flag names")
	case len(f.modules) > 0:
		return usagef("--module is an option of the vm backend, which no backend flag names")
	case f.guestBin != "":
		return usagef("--guest-binary is an option of the vm backend, which no backend flag names")
	}
	return nil
}

// openVM returns the vm backend: a session that boots its guest on
// startBackend (or on its first trace) and keeps it for every trace.
func openVM(cfg backendConfig) (trace.Backend, error) {
	f := cfg.vm
	if f.kernel == "" {
		return nil, usagef("--kernel: required with the vm backend")
	}
	bin := f.guestBin
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find this binary: %w", err)
		}
	}
	return vm.NewSession(vm.Config{Kernel: f.kernel, Modules: f.modules, GuestBinary: bin})
}

// startBackend boots a backend that has a machine to boot (vm), so that a
// bad image or module is reported before any trace runs.
func startBackend(ctx context.Context, b trace.Backend) error {
	if s, ok := b.(interface{ Start(context.Context) error }); ok {
		return s.Start(ctx)
	}
	return nil
}

// closeBackend releases what a backend holds (the vm backend's QEMU and
// temp dir).
func closeBackend(b trace.Backend) {
	if c, ok := b.(io.Closer); ok {
		c.Close()
	}
}

// reportBackend prints, on stderr, what the vm backend's guest did.
func reportBackend(e *env, b trace.Backend) {
	s, ok := b.(*vm.Session)
	if !ok {
		return
	}
	st := s.Stats()
	if st.Boots == 0 {
		return
	}
	var b2 strings.Builder
	fmt.Fprintf(&b2, "vm: guest %s (%s)", orNone(st.Release), st.Accel)
	if len(st.Modules) > 0 {
		fmt.Fprintf(&b2, ", modules %s", strings.Join(st.Modules, ", "))
	}
	fmt.Fprintf(&b2, ": %s, ready %.1fs after QEMU started", plural(st.Boots, "boot"), st.FirstReady.Seconds())
	if st.Traces > 0 {
		fmt.Fprintf(&b2, "; %s in %.1fs (%.1f traces/s)", plural(st.Traces, "trace"), st.TraceTime.Seconds(), float64(st.Traces)/st.TraceTime.Seconds())
	}
	if st.Abandoned > 0 {
		fmt.Fprintf(&b2, "; %d abandoned by their caller's timeout", st.Abandoned)
	}
	if st.LostDeath != "" {
		fmt.Fprintf(&b2, "; a guest died on an abandoned trace: %s", oneLine(st.LostDeath))
	}
	fmt.Fprintln(e.stderr, b2.String())
}
