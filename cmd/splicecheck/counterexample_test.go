package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/fuzz"
)

// A counterexample that check writes names its property, signature,
// profile, seed and mutations; `run` on it judges the property again and
// exits 1 while it fails, and the violation's line is the file's. With
// the mutation gone (an edited header), the same file holds and exits 0.
func TestRunJudgesCounterexample(t *testing.T) {
	dir := t.TempDir()
	// Counts, not time (as TestCheck): detected at seed 5.
	code, out, errOut := runCLI(t, "check", "--profile", "linux-6.18", "--mutate", "ingress-queue-head", "--seed", "0", "--traces", "10", "--time", "0", "--run-timeout", "10m", "--out", dir)
	if code != exitDivergence {
		t.Fatalf("check: code %d\n%s%s", code, out, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.trace"))
	if len(files) == 0 {
		t.Fatalf("no counterexample written:\n%s", out)
	}
	f := files[0]
	src, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := fuzz.ReadHeader(src)
	if !ok || h.Profile != "linux-6.18" || len(h.Mutations) != 1 || h.Mutations[0] != "ingress-queue-head" || h.Signature == "" {
		t.Fatalf("header %+v of\n%s", h, src)
	}
	code, out, errOut = runCLI(t, "run", f)
	if code != exitDivergence || !strings.Contains(out, "verdict: "+h.Property+" fails") {
		t.Fatalf("run %s: code %d\n%s%s", f, code, out, errOut)
	}
	// The violation's line is an op line of the file.
	lines := strings.Split(string(src), "\n")
	var line int
	_, rest, _ := strings.Cut(h.Violation, "line ")
	if _, err := fmt.Sscanf(rest, "%d:", &line); err != nil || line < 1 || line > len(lines) || strings.HasPrefix(lines[line-1], "#") {
		t.Fatalf("violation line %d is not an op of the file:\n%s", line, src)
	}
	// Without the mutation the model holds the property.
	clean := strings.Replace(string(src), "# mutations: ingress-queue-head", "# mutations: ", 1)
	p := writeTrace(t, "clean.trace", clean)
	code, out, errOut = runCLI(t, "run", p)
	if code != 0 || !strings.Contains(out, "verdict: "+h.Property+" holds") {
		t.Fatalf("run unmutated: code %d\n%s%s", code, out, errOut)
	}
}
