package vm

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// vngArgs is the virtme-ng command line that runs the guest side as
// `splicecheck guest [--module FILE...] TRACE...` inside a VM of the host's
// root filesystem (where the guest finds the host's files by their paths).
// loglevel=0 keeps kernel messages out of the shared output channel; the
// frames survive what remains.
func vngArgs(cfg Config, traces []string) []string {
	cmd := []string{shellQuote(cfg.GuestBinary), "guest"}
	if cfg.OpTimeout > 0 {
		cmd = append(cmd, "--timeout", cfg.OpTimeout.String())
	}
	if cfg.TimeScale > 1 {
		cmd = append(cmd, "--time-scale", strconv.Itoa(cfg.TimeScale))
	}
	for _, m := range cfg.Modules {
		cmd = append(cmd, "--module", shellQuote(m))
	}
	for _, t := range traces {
		cmd = append(cmd, shellQuote(t))
	}
	return []string{
		"--run", cfg.Kernel,
		"--memory", fmt.Sprintf("%dM", cfg.Memory),
		"--cpus", fmt.Sprint(cfg.CPUs),
		"--user", "root",
		"--append", "loglevel=0",
		"--exec", strings.Join(cmd, " "),
	}
}

func runVng(ctx context.Context, cfg Config, paths []string) (*Result, error) {
	bin, err := exec.LookPath(cfg.Vng)
	if err != nil {
		return nil, fmt.Errorf("--runner vng: %w: %s is not on PATH; install virtme-ng (pip install virtme-ng, or your distribution's virtme-ng package), or use --runner qemu", ErrNoRunner, cfg.Vng)
	}
	abs, err := absPaths(paths)
	if err != nil {
		return nil, err
	}
	if cfg.Modules, err = absPaths(cfg.Modules); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, vngArgs(cfg, abs)...)
	return supervise(ctx, cfg, cmd, len(paths), func() []string { return nil }, "vng")
}

// shellQuote quotes s for the shell vng hands --exec to.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
