package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// blockBackend is a test backend whose recv blocks until its op is
// canceled; started receives once a recv has begun blocking, so a test
// can interrupt the command at that point.
type blockBackend struct{ started chan struct{} }

func (b blockBackend) Name() string { return "block" }
func (b blockBackend) Run(ctx context.Context, t *trace.Trace, o trace.Options) (trace.RunResult, error) {
	return trace.RunOps(ctx, b, t, o)
}
func (b blockBackend) Open(context.Context, *trace.Trace, trace.Options) (trace.Executor, error) {
	return blockExec(b), nil
}

// blockExec is echoExec (echo's "hello") but for a recv of more than 5.
type blockExec blockBackend

func (blockExec) StartThread(string) error { return nil }
func (blockExec) Blocked(string) bool      { return true }
func (blockExec) Close() error             { return nil }
func (x blockExec) Exec(ctx context.Context, c *trace.Call) trace.Result {
	if c.Op.Kind != trace.OpRecv || c.Op.Size <= 5 {
		return echoExec{echoBackend{"block", "hello"}}.Exec(ctx, c)
	}
	select {
	case x.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return trace.RunnerTimeout()
}

// withBlockBackend registers "block" for one test and returns its
// started channel.
func withBlockBackend(t *testing.T) chan struct{} {
	started := make(chan struct{}, 1)
	saved := backends
	t.Cleanup(func() { backends = saved })
	backends = append(append([]backendInfo(nil), saved...),
		backendInfo{"block", "test", func(backendConfig) (trace.Backend, error) { return blockBackend{started}, nil }, false})
	return started
}

// runInterrupted runs the command in-process and cancels its context
// (what SIGINT does in main) once started has received.
func runInterrupted(t *testing.T, started chan struct{}, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var o, e bytes.Buffer
	done := make(chan int)
	go func() { done <- mainWithArgs(ctx, args, &o, &e) }()
	select {
	case <-started:
		cancel()
	case code := <-done:
		t.Fatalf("ended before it blocked: code %d\n%s%s", code, o.String(), e.String())
	}
	return <-done, o.String(), e.String()
}

const blockTrace = "conn a b\nsend a 3\nrecv b 50\nsend a 1\n"

// Interrupting run keeps the observations made so far: those of the
// traces before and of the ops before the blocked one; exit 130 with one
// line saying "interrupted".
func TestRunInterruptedPrintsObservationsSoFar(t *testing.T) {
	started := withBlockBackend(t)
	first := writeTrace(t, "first.trace", "conn a b\nsend a 3\n")
	p := writeTrace(t, "b.trace", blockTrace)
	code, out, errOut := runInterrupted(t, started, "run", "--backend", "block", first, p)
	if code != exitInterrupted || !strings.Contains(errOut, "interrupted") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"== " + first, "2: send a 3 => 3", "== " + p, "1: conn a b => ok", "-- interrupted: 2 of 4 ops ended"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "4: send a 1") {
		t.Errorf("an op after the interrupt was run:\n%s", out)
	}
	if !strings.Contains(errOut, "1 trace ran to the end") || !strings.Contains(errOut, p+" stopped after 2 of 4 ops") {
		t.Errorf("stderr does not say how far it got: %q", errOut)
	}
}

// Under --json an interrupted run prints one JSON object: the error, exit
// 130 and the runs so far.
func TestRunInterruptedJSON(t *testing.T) {
	started := withBlockBackend(t)
	p := writeTrace(t, "b.trace", blockTrace)
	code, out, errOut := runInterrupted(t, started, "run", "--json", "--backend", "block", p)
	var je struct {
		Error   string    `json:"error"`
		Exit    int       `json:"exit"`
		Partial []jsonRun `json:"partial"`
	}
	if err := json.Unmarshal([]byte(out), &je); err != nil || code != exitInterrupted || errOut != "" {
		t.Fatalf("code %d, %v, stderr %q, stdout:\n%s", code, err, errOut, out)
	}
	if je.Exit != exitInterrupted || !strings.Contains(je.Error, "interrupted") || len(je.Partial) != 1 ||
		!je.Partial[0].Interrupted || len(je.Partial[0].Observations) < 2 {
		t.Fatalf("%+v", je)
	}
}

// Interrupting diff prints the traces compared so far and the summary.
func TestDiffInterruptedPrintsSoFar(t *testing.T) {
	started := withBlockBackend(t)
	withEchoBackends(t)
	saved := backends
	defer func() { backends = saved }()
	first := writeTrace(t, "a.trace", "conn a b\nsend a 3\n")
	p := writeTrace(t, "b.trace", blockTrace)
	code, out, errOut := runInterrupted(t, started, "diff", "--a", "echo", "--b", "block", first, p)
	if code != exitInterrupted || !strings.Contains(errOut, "interrupted") || !strings.Contains(errOut, "1 of 2 traces compared") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "agree    "+first) || !strings.Contains(out, "1 trace: 1 agree, 0 diverge") {
		t.Errorf("stdout:\n%s", out)
	}
	code, out, _ = runInterrupted(t, started, "diff", "--format", "ktap", "--a", "echo", "--b", "block", first, p)
	res := checkKTAP(t, out)
	if code != exitInterrupted || len(res) != 2 || !strings.Contains(res[1], "# SKIP interrupted") {
		t.Errorf("code %d, ktap:\n%s", code, out)
	}
}

// SIGINT to a running check (a subprocess, the binary): exit 130, one
// line saying interrupted and how many traces ran, the table so far, and
// the counterexample it had written kept, with the command that replays
// it.
func TestCheckSIGINTPrintsTableSoFar(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := guestBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "check", "--profile", "linux-6.18,linux-6.1", "--time", "10m", "--mutate", "ingress-queue-head", "--out", dir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ce := waitForFile(t, dir, cmd)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, stderr %q", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) != 1 || !regexp.MustCompile(`^splicecheck check: interrupted \(interrupt signal received\): \d+ traces? ran on 1 of 2 profiles$`).MatchString(lines[0]) {
		t.Errorf("stderr %q", errOut.String())
	}
	for _, want := range []string{"property", "linux-6.18", "NEW ", "interrupted: ", "replay: splicecheck run " + ce} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(ce); err != nil {
		t.Errorf("counterexample %s gone: %v", ce, err)
	}
}

// waitForFile waits until dir holds a .trace file (check has written a
// counterexample) and returns it; it fails if cmd ends first.
func waitForFile(t *testing.T, dir string, cmd *exec.Cmd) string {
	t.Helper()
	exited := make(chan struct{})
	go func() {
		for {
			if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
				close(exited)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.trace"))
		if len(files) > 0 {
			return files[0]
		}
		select {
		case <-exited:
			t.Fatal("check ended before writing a counterexample")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkKTAP is a strict reader of flat KTAP version 1: the version line,
// the plan, then result lines numbered 1..N (N the plan's) with "# "
// diagnostic lines between them, nothing else. It returns the result lines.
func checkKTAP(t *testing.T, out string) []string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 2 || lines[0] != "KTAP version 1" {
		t.Fatalf("no version line:\n%s", out)
	}
	m := regexp.MustCompile(`^1\.\.(\d+)$`).FindStringSubmatch(lines[1])
	if m == nil {
		t.Fatalf("no plan line:\n%s", out)
	}
	plan, _ := strconv.Atoi(m[1])
	result := regexp.MustCompile(`^(ok|not ok) (\d+) ([^#]+?)( # (.*))?$`)
	var results []string
	for _, l := range lines[2:] {
		if strings.HasPrefix(l, "# ") {
			continue
		}
		rm := result.FindStringSubmatch(l)
		if rm == nil {
			t.Fatalf("not a KTAP line: %q\n%s", l, out)
		}
		if n, _ := strconv.Atoi(rm[2]); n != len(results)+1 {
			t.Fatalf("result %d numbered %d:\n%s", len(results)+1, n, out)
		}
		results = append(results, l)
	}
	if len(results) != plan {
		t.Fatalf("plan 1..%d, %d results:\n%s", plan, len(results), out)
	}
	return results
}

func TestDiffKTAP(t *testing.T) {
	withEchoBackends(t)
	p := writeTrace(t, "e.trace", echoTrace)
	q := writeTrace(t, "f.trace", "conn a b\n")
	code, out, _ := runCLI(t, "diff", "--format", "ktap", "--a", "echo", "--b", "echo2", p, q)
	res := checkKTAP(t, out)
	if code != exitDivergence || res[0] != "not ok 1 "+p || res[1] != "ok 2 "+q || !strings.Contains(out, "# "+p+":3: recv b 5: data differs") {
		t.Fatalf("code %d:\n%s", code, out)
	}
	list := filepath.Join(t.TempDir(), "x.expect")
	os.WriteFile(list, []byte("e.trace: the echo backends differ\n"), 0o644)
	code, out, _ = runCLI(t, "diff", "--format", "ktap", "--expect", list, "--a", "echo", "--b", "echo2", p)
	if res := checkKTAP(t, out); code != exitOK || res[0] != "ok 1 "+p+" # XFAIL the echo backends differ" {
		t.Fatalf("code %d:\n%s", code, out)
	}
}

// check's KTAP: one result per profile and property; a NEW failure is
// not ok with its counterexample and replay command as diagnostics.
func TestCheckKTAP(t *testing.T) {
	code, out, errOut := runCLI(t, "check", "--format", "ktap", "--profile", "linux-6.18", "--traces", "20", "--out", t.TempDir())
	res := checkKTAP(t, out)
	if code != exitOK || len(res) < 10 || !strings.HasPrefix(res[0], "ok 1 linux-6.18 ") {
		t.Fatalf("code %d %s:\n%s", code, errOut, out)
	}
	dir := t.TempDir()
	code, out, _ = runCLI(t, "check", "--format", "ktap", "--profile", "linux-6.18", "--traces", "3000", "--mutate", "ingress-queue-head", "--out", dir)
	checkKTAP(t, out)
	if code != exitDivergence || !strings.Contains(out, "\nnot ok ") || !strings.Contains(out, "# replay: splicecheck run "+dir) {
		t.Fatalf("code %d:\n%s", code, out)
	}
}

// vm's KTAP, from its report: agree ok, recorded SKIP.
func TestVMReportKTAP(t *testing.T) {
	var o bytes.Buffer
	vr := &vmReport{compareReport: compareReport{e: &env{stdout: &o, stderr: &o}, format: formatKTAP}, against: "model", release: "6.1.0", profile: "linux-6.1"}
	a, _ := trace.Parse("a.trace", []byte("conn a b\n"))
	b, _ := trace.Parse("b.trace", []byte("conn a b\n"))
	vr.add(a, nil)
	vr.add(b, []trace.Divergence{{Line: 1, Op: "conn a b", Reason: "result differs", A: "ok", B: "-EPERM"}})
	vr.against = "none"
	vr.recorded(a)
	if err := vr.finish(3); !errors.Is(err, errDiverged) {
		t.Fatalf("finish: %v", err)
	}
	res := checkKTAP(t, o.String())
	if res[0] != "ok 1 a.trace" || res[1] != "not ok 2 b.trace" || !strings.HasPrefix(res[2], "ok 3 a.trace # SKIP") {
		t.Fatalf("%q", res)
	}
}

// check --json prints a document of its cells; a NEW cell carries the
// file and the command that replays it.
func TestCheckJSON(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := runCLI(t, "check", "--json", "--profile", "linux-6.18", "--traces", "3000", "--mutate", "ingress-queue-head", "--out", dir)
	var doc jsonCheck
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitDivergence || doc.New == 0 {
		t.Fatalf("code %d %v:\n%s", code, err, out)
	}
	for _, c := range doc.Cells {
		if c.Status == "NEW" && (c.File == "" || c.Replay != "splicecheck run "+c.File) {
			t.Errorf("NEW cell without replay: %+v", c)
		}
	}
	if doc.Traces["linux-6.18"] == 0 {
		t.Errorf("traces %v", doc.Traces)
	}
}

// Under --json (or --format json) every error is one JSON object on
// stdout with "error" and "exit"; stderr stays empty.
func TestJSONErrors(t *testing.T) {
	ok := writeTrace(t, "ok.trace", "conn a b\n")
	bad := writeTrace(t, "bad.trace", "conn a b\nfrob a\n")
	for _, args := range [][]string{
		{"run", "--json", "--backend", "nope", ok},
		{"run", "--json", bad},
		{"run", ok, "--format=json", "--bogus"},
		{"diff", "--json", "--a", "model", "--b", "model", ok},
		{"diff", "--format", "json", "--a", "nope", ok},
		{"check", "--json", "--profile", "linux-1.0"},
		{"check", "--json", "--format", "ktap"},
		{"vm", "--json", ok},
	} {
		code, out, errOut := runCLI(t, args...)
		var je jsonError
		dec := json.NewDecoder(strings.NewReader(out))
		if err := dec.Decode(&je); err != nil || dec.More() {
			t.Errorf("%v: stdout is not one JSON object (%v): %q", args, err, out)
			continue
		}
		if code != exitBadInput || je.Exit != code || je.Error == "" || strings.Contains(je.Error, "\n") || errOut != "" {
			t.Errorf("%v: code %d, %+v, stderr %q", args, code, je, errOut)
		}
	}
	if code, out, _ := runCLI(t, "run", "--json", bad); !strings.Contains(out, bad+":2:") {
		t.Errorf("syntax error under --json: code %d %q", code, out)
	}
}

func TestFormatFlag(t *testing.T) {
	withEchoBackends(t)
	p := writeTrace(t, "e.trace", echoTrace)
	for _, args := range [][]string{
		{"run", "--format", "ktap", "--backend", "echo", p},
		{"diff", "--format", "xml", "--a", "echo", "--b", "echo2", p},
		{"diff", "--json", "--format", "ktap", "--a", "echo", "--b", "echo2", p},
	} {
		if code, out, errOut := runCLI(t, args...); code != exitBadInput || !strings.Contains(out+errOut, "--format") {
			t.Errorf("%v: code %d %q %q", args, code, out, errOut)
		}
	}
	_, viaFormat, _ := runCLI(t, "diff", "--format", "json", "--a", "echo", "--b", "echo2", p)
	_, viaJSON, _ := runCLI(t, "diff", "--json", "--a", "echo", "--b", "echo2", p)
	if viaFormat != viaJSON || !strings.HasPrefix(viaJSON, "[") {
		t.Errorf("--format json and --json differ:\n%s\n%s", viaFormat, viaJSON)
	}
}

// Counts agree with their nouns: "1 trace", "2 traces".
func TestPlurals(t *testing.T) {
	withEchoBackends(t)
	p := writeTrace(t, "e.trace", "conn a b\n")
	_, out, _ := runCLI(t, "diff", "--a", "echo", "--b", "echo2", p)
	if !strings.Contains(out, "1 trace: 1 agree") || !strings.Contains(out, "1 op)") {
		t.Errorf("diff:\n%s", out)
	}
	_, out, _ = runCLI(t, "check", "--profile", "linux-6.18", "--traces", "1", "--out", t.TempDir())
	if !strings.Contains(out, "pass (1 trace)") {
		t.Errorf("check:\n%s", out)
	}
	for n, want := range map[int]string{0: "0 traces", 1: "1 trace", 2: "2 traces"} {
		if got := plural(n, "trace"); got != want {
			t.Errorf("plural(%d) = %q", n, got)
		}
	}
	if bad := regexp.MustCompile(`\b1 (traces|ops|boots|runs|profiles)\b|\(s\)`); bad.MatchString(out) {
		t.Errorf("a singular count with a plural noun:\n%s", out)
	}
}

// --version is version: the version and the commit it was built from.
func TestVersionFlag(t *testing.T) {
	code, viaFlag, _ := runCLI(t, "--version")
	_, viaCmd, _ := runCLI(t, "version")
	if code != exitOK || viaFlag != viaCmd || !strings.HasPrefix(viaFlag, "splicecheck ") {
		t.Fatalf("--version: code %d %q, version %q", code, viaFlag, viaCmd)
	}
	saved := commit
	defer func() { commit = saved }()
	commit = "0123456789ab-dirty"
	if _, out, _ := runCLI(t, "--version"); !strings.Contains(out, " commit 0123456789ab-dirty ") {
		t.Errorf("stamped commit not printed: %q", out)
	}
	got := vcsCommit([]debug.BuildSetting{{Key: "vcs.revision", Value: "5804562abcdef0123456789"}, {Key: "vcs.modified", Value: "true"}})
	if got != "5804562abcde-dirty" {
		t.Errorf("vcsCommit = %q", got)
	}
}

// make build stamps the commit: go build does not record it with
// -buildvcs=false or in a git worktree.
func TestMakeBuildStampsCommit(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	if err := exec.Command("git", "rev-parse", "HEAD").Run(); err != nil {
		t.Skip("not a git checkout")
	}
	out, err := exec.Command("make", "-s", "-n", "-C", "../..", "build").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`-X main\.commit=[0-9a-f]{12}(-dirty)?\b`).Match(out) {
		t.Errorf("make build does not stamp the commit:\n%s", out)
	}
}

// Every backend a command's help lists runs there: none is "not built".
func TestListedBackendsAreBuilt(t *testing.T) {
	for _, cmd := range []string{"run", "diff", "check"} {
		_, _, help := runCLI(t, cmd, "--help")
		if strings.Contains(help, "not built") {
			t.Errorf("%s --help lists a backend not built:\n%s", cmd, help)
		}
		for _, name := range backendsFor(cmd) {
			_, err := openBackend("--backend", name, backendConfig{vm: vmFlags{kernel: "/nonexistent"}})
			if errors.Is(err, trace.ErrNotBuilt) {
				t.Errorf("%s lists %s, which is not built: %v", cmd, name, err)
			}
			if !strings.Contains(help, name) {
				t.Errorf("%s --help does not list %s", cmd, name)
			}
		}
	}
}

const signalHelperEnv = "SPLICECHECK_TEST_SIGNAL_HELPER"

// signalHelper is the test binary run by TestSecondSignalKills: a command
// that does not stop when asked.
func signalHelper() {
	ctx, _ := signalContext()
	fmt.Println("ready")
	<-ctx.Done()
	fmt.Println("asked to stop")
	select {}
}

// A second SIGINT kills a command that has not stopped after the first.
func TestSecondSignalKills(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), signalHelperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	expect := func(want string) {
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("helper said %q, want %q", lines.Text(), want)
		}
	}
	expect("ready")
	cmd.Process.Signal(os.Interrupt)
	expect("asked to stop")
	cmd.Process.Signal(os.Interrupt)
	// Dying takes milliseconds; a helper that swallowed the signal is
	// killed after a minute and fails the test.
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper: %v", err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Fatalf("helper ended with %v, want killed by SIGINT", err)
	}
}
