package repro

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/splicecheck/splicecheck/trace"
)

// ErrCompile marks a reproducer gcc refused (a bug of the generator).
var ErrCompile = errors.New("gcc refused the reproducer")

// Compile writes src to dir/name.c and compiles it with
// gcc -Wall -Werror -O2 -pthread (and -static for a VM guest, which has no
// libc of its own); it returns the binary's path, dir/name.
func Compile(ctx context.Context, src []byte, dir, name string, static bool) (string, error) {
	cfile := filepath.Join(dir, name+".c")
	if err := os.WriteFile(cfile, src, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	args := []string{"-Wall", "-Werror", "-O2", "-pthread", "-o", bin, cfile}
	if static {
		args = append([]string{"-static"}, args...)
	}
	if out, err := exec.CommandContext(ctx, "gcc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: gcc %s: %v: %s", ErrCompile, cfile, err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// Exec runs the compiled reproducer bin with trace durations stretched
// timeScale times (0 or 1: real time) and returns what it printed as a
// recording (trace.ParseRecorded). A reproducer that fails (not root, a
// kernel without BPF) is an error carrying its one-line message.
func Exec(ctx context.Context, bin string, timeScale int) ([]trace.Observation, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "SPLICECHECK_TIME_SCALE="+strconv.Itoa(max(timeScale, 1)))
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", bin, err, strings.TrimSpace(errb.String()))
	}
	s := strings.TrimSuffix(out.String(), "\n")
	if s == "" {
		return nil, fmt.Errorf("%s: printed nothing", bin)
	}
	return trace.ParseRecorded(bin, strings.Split(s, "\n"))
}
