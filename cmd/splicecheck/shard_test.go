package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// campaignArgs is a small campaign with a NEW failure (a planted bug)
// and known failures, on two profiles.
var campaignArgs = []string{"check", "--seed", "40", "--traces", "120", "--profile", "linux-6.18,freebsd-so-splice",
	"--mutate", "peek-consumes", "--format", "json"}

// tableOf is check's JSON document less what a shard adds.
func tableOf(t *testing.T, out string) jsonCheck {
	t.Helper()
	var d jsonCheck
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	d.Shard = nil
	for i := range d.Cells {
		d.Cells[i].File, d.Cells[i].Replay, d.Cells[i].Timeline, d.Cells[i].Repro = "", "", "", "" // the directory differs
	}
	return d
}

func sameTable(t *testing.T, what string, got, want jsonCheck) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("%s:\n%s\none run:\n%s", what, g, w)
	}
}

// Four shards, run as separate processes, merged, print the table of
// one run over the same traces; their counterexample is the one run's.
func TestShardsMergeLikeOneRun(t *testing.T) {
	dir := t.TempDir()
	oneDir := filepath.Join(dir, "one")
	code, out, errOut := runCLI(t, append(campaignArgs, "--out", oneDir, "--jobs", "1")...)
	if code != exitDivergence {
		t.Fatalf("one run: exit %d\n%s", code, errOut)
	}
	want := tableOf(t, out)
	if want.New == 0 {
		t.Fatal("the campaign found no NEW failure")
	}
	var results []string
	for k := range 4 {
		cmd := exec.Command(os.Args[0], append(campaignArgs, "--shard", []string{"0/4", "1/4", "2/4", "3/4"}[k], "--out", "")...)
		cmd.Env = append(os.Environ(), workerEnv+"=1")
		b, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > exitDivergence) {
			t.Fatalf("shard %d: %v", k, err)
		}
		f := filepath.Join(dir, "shard"+string(rune('0'+k))+".json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		results = append(results, f)
	}
	mergedDir := filepath.Join(dir, "merged")
	code, out, errOut = runCLI(t, append([]string{"merge", "--format", "json", "--out", mergedDir}, results...)...)
	if code != exitDivergence {
		t.Fatalf("merge: exit %d\n%s", code, errOut)
	}
	sameTable(t, "4 shards merged", tableOf(t, out), want)
	ones, _ := filepath.Glob(filepath.Join(oneDir, "*.trace"))
	for _, f := range ones {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(mergedDir, filepath.Base(f)))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s: the merged counterexample differs from one run's (%v)", filepath.Base(f), err)
		}
	}
	if len(ones) == 0 {
		t.Error("one run wrote no counterexample")
	}
	for _, args := range [][]string{
		append([]string{"merge"}, results[:3]...),
		append([]string{"merge"}, results[0], results[0], results[1], results[2]),
		{"merge", filepath.Join(dir, "nothing.json")},
		{"merge", "../../testdata/traces/kernel/pair_on_mainline.trace"},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != exitBadInput || out != "" || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and one line", args[1:], code, out, errOut, exitBadInput)
		}
	}
}

// check --jobs 2 runs two worker processes and prints the table one
// process prints over the same traces.
func TestJobsLikeOneRun(t *testing.T) {
	_, out1, _ := runCLI(t, append(campaignArgs, "--out", t.TempDir(), "--jobs", "1")...)
	code, out2, errOut := runCLI(t, append(campaignArgs, "--out", t.TempDir(), "--jobs", "2")...)
	if code != exitDivergence {
		t.Fatalf("--jobs 2: exit %d\n%s", code, errOut)
	}
	sameTable(t, "--jobs 2", tableOf(t, out2), tableOf(t, out1))
	// Each counterexample has its timeline and its C reproducer beside
	// it, the merge's too.
	checkCompanions(t, out1)
	checkCompanions(t, out2)
	if code, _, errOut := runCLI(t, "check", "--jobs", "2", "--diff", "kernel", "--traces", "1"); code != exitBadInput || !strings.Contains(errOut, "--jobs") {
		t.Errorf("--jobs 2 --diff kernel: exit %d, %q", code, errOut)
	}
}

// BenchmarkCheckJobs: traces per second of one campaign (two profiles,
// 1000 traces each) run by one process and by --jobs workers (this test
// binary, TestMain).
func BenchmarkCheckJobs(b *testing.B) {
	for _, jobs := range []string{"1", "2"} {
		b.Run("jobs="+jobs, func(b *testing.B) {
			if jobs == "1" {
				// One process with one P, as each worker runs: the
				// comparison is of processes.
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			}
			for b.Loop() {
				code, _, errOut := runCLI(b, "check", "--profile", "linux-6.18,freebsd-so-splice", "--traces", "1000",
					"--time", "10m", "--seed", "1", "--jobs", jobs, "--format", "json", "--out", b.TempDir())
				if code != exitOK {
					b.Fatalf("exit %d: %s", code, errOut)
				}
			}
			b.ReportMetric(2000*float64(b.N)/b.Elapsed().Seconds(), "traces/s")
		})
	}
}

// A terminal's Ctrl-C to check --jobs's process group: the workers
// report and the table so far is printed (exit 130). Killed outright,
// the parent takes its workers with it (Pdeathsig, or SIGPIPE at a
// worker's next progress line: the test tells neither apart).
func TestJobsInterruptAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := guestBinary(t)
	for _, how := range []string{"group SIGINT", "parent SIGKILL"} {
		dir := t.TempDir()
		cmd := exec.Command(bin, "check", "--profile", "linux-6.18,linux-6.1", "--time", "10m", "--jobs", "2",
			"--mutate", "ingress-queue-head", "--out", dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		waitForFile(t, dir, cmd) // a worker has found the bug: both run
		if how == "group SIGINT" {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted || !strings.Contains(out.String(), "NEW ") {
				t.Fatalf("%s: exit %v\nstdout:\n%s\nstderr:\n%s", how, err, out.String(), errOut.String())
			}
			continue
		}
		workers := childrenOf(t, cmd.Process.Pid)
		if len(workers) != 2 {
			t.Fatalf("%d workers, want 2", len(workers))
		}
		cmd.Process.Kill()
		cmd.Wait()
		for _, pid := range workers {
			for alive(pid) { // Pdeathsig: each dies with the parent
				runtime.Gosched()
			}
		}
	}
}

// childrenOf lists the processes whose parent is pid (/proc).
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ')'.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			child, _ := strconv.Atoi(strings.Fields(string(b))[0])
			out = append(out, child)
		}
	}
	return out
}

// alive reports whether pid runs: it exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}
