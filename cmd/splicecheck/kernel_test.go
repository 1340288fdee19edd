package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/splicecheck/splicecheck/model"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/internal/kbuild"
)

// Bad command lines exit 2 with one line on stderr, before anything is
// built or installed.
func TestKernelBuildBadInputExit2(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	for _, args := range [][]string{
		{"kernel"},
		{"kernel", "frob"},
		{"kernel", "build"},
		{"kernel", "build", "--cache", cache, "--source", dir, "--debian", "6.12"},
		{"kernel", "build", "--cache", cache, "--bogus"},
		{"kernel", "build", "--cache", cache, "--jobs", "-1", "--source", dir},
		{"kernel", "build", "--cache", cache, "--source", dir, "extra"},
		{"kernel", "build", "--cache", cache, "--debian", "six"},
		{"kernel", "build", "--cache", cache, "--source", filepath.Join(dir, "nope")},
		{"kernel", "build", "--cache", cache, "--source", dir}, // not a kernel tree
		{"kernel", "build", "--cache", cache, "--source", dir, "--name", "a/b"},
		{"kernel", "path", "--cache", cache, "linux-6.12"}, // never built
		{"kernel", "path", "--cache", cache},
		{"vm", "--kernel", filepath.Join(dir, "bzImage"), "--expect", filepath.Join(dir, "nope"), "x.trace"},
		{"vm", "--kernel", filepath.Join(dir, "bzImage"), "--expect", expectNoReason(t, dir), "x.trace"},
	} {
		code, out, errOut := runCLI(t, args...)
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if strings.HasPrefix(errOut, "usage:") { // an unknown flag: the flag set's usage, then the error
			lines = lines[len(lines)-1:]
		}
		if code != exitBadInput || out != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "splicecheck "+args[0]) {
			t.Errorf("%v: code %d stdout %q stderr %q", args, code, out, errOut)
		}
	}
}

// expectNoReason writes a --expect file whose second line has no reason.
func expectNoReason(t *testing.T, dir string) string {
	p := filepath.Join(dir, "x.expect")
	if err := os.WriteFile(p, []byte("# known\nx.trace\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKernelBuildHelp(t *testing.T) {
	code, _, errOut := runCLI(t, "kernel", "build", "--help")
	if code != exitOK || !strings.Contains(errOut, "-patch FILE") || !strings.Contains(errOut, "-module DIR") {
		t.Errorf("code %d, usage %q", code, errOut)
	}
}

// The build's errors map onto the exit contract: the input's faults
// (patch, config, compile error, missing tool) are 2, the tool's are 3.
func TestKernelErrorExitStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{kbuild.ErrPatch, exitBadInput},
		{kbuild.ErrConfig, exitBadInput},
		{kbuild.ErrCompile, exitBadInput},
		{kbuild.ErrMissingDeps, exitBadInput},
		{kbuild.ErrBadInput, exitBadInput},
		{kbuild.ErrBuild, exitInternal},
		{kbuild.ErrCache, exitInternal},
		{context.DeadlineExceeded, exitInternal},
		{context.Canceled, exitInternal},
	} {
		var buf bytes.Buffer
		err := fmt.Errorf("%w: detail (log: /x/y.log)", tc.err)
		if code := report(&buf, "kernel", kernelError(err)); code != tc.code || strings.Count(buf.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, want %d; stderr %q", tc.err, code, tc.code, buf.String())
		}
	}
}

// A model run stopped by a fault is a divergence of its side, not a
// failure of the command; any other error stays an error.
func TestFaultDivergence(t *testing.T) {
	fault := fmt.Errorf("run: %w", &model.Fault{Err: model.ErrLivelock, Kind: "livelock", Site: "splice_recvmsg_merge"})
	d, ok := faultDivergence(fault, 1)
	if !ok || !strings.HasPrefix(d.B, "stopped: ") || d.A != "(ran to the end)" {
		t.Errorf("faultDivergence(fault, 1) = %+v, %v", d, ok)
	}
	if _, ok := faultDivergence(errors.New("boom"), 0); ok {
		t.Error("a plain error became a divergence")
	}
	if _, ok := faultDivergence(nil, 0); ok {
		t.Error("nil became a divergence")
	}
}
