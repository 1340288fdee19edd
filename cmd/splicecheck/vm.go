package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	rf.register(fs)
	kernel := fs.String("kernel", "", "kernel image to boot (bzImage or vmlinuz)")
	runner := fs.String("runner", vm.RunnerQEMU, "how to start the VM: qemu, or vng (virtme-ng)")
	against := fs.String("against", "model", "what to compare the guest's runs with: model, golden, or none (with --record)")
	goldenDir := fs.String("golden-dir", "testdata/golden", "directory of golden observations, by profile")
	record := fs.String("record", "", "also write the guest's observations as goldens under DIR/PROFILE/")
	guestBin := fs.String("guest-binary", "", "static splicecheck binary for the guest (default: this one)")
	limit := fs.Duration("vm-timeout", 5*time.Minute, "wall-clock limit for the whole VM run")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
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
	traces, err := parseTraces(paths)
	if err != nil {
		return err
	}
	var model trace.Backend
	if *against == "model" {
		if model, err = openBackend("--against", "model", backendConfig{}); err != nil {
			return err
		}
	}
	bin := *guestBin
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary: %w", err)
		}
	}
	res, err := vm.Run(ctx, vm.Config{Kernel: *kernel, Runner: *runner, GuestBinary: bin, Timeout: *limit, OpTimeout: rf.timeout}, paths)
	if err != nil {
		return vmError(err)
	}
	profile := rf.profile
	if profile == "" {
		if profile, err = profileForRelease(res.Release); err != nil {
			return err
		}
	}
	opts := trace.Options{Profile: profile, OpTimeout: rf.timeout, Seed: rf.seed}
	fmt.Fprintf(e.stdout, "guest %s (%s): first observation %.1fs after start, %d traces in %.1fs\n",
		res.Release, res.Accel, res.BootToFirst.Seconds(), len(res.Runs), res.Total.Seconds())
	diverged := 0
	for i, t := range traces {
		run := res.Runs[i]
		if run.Err != "" {
			return fmt.Errorf("%w: %s: %s", vm.ErrGuest, t.File, run.Err)
		}
		if *record != "" {
			if err := writeGolden(goldenPath(*record, profile, t), run.Obs); err != nil {
				return err
			}
		}
		var d []trace.Divergence
		switch {
		case *against == "none":
			fmt.Fprintf(e.stdout, "recorded %s (guest %s, profile %s)\n", t.File, res.Release, profile)
			continue
		case model != nil:
			o, err := trace.ResolveOptions(t, opts)
			if err != nil {
				return err
			}
			want, err := trace.Run(ctx, model, t, o)
			if err != nil {
				return fmt.Errorf("run %s on model: %w", t.File, err)
			}
			d = trace.Diff(want, run.Obs)
		default:
			g, err := trace.ReadGolden(goldenPath(*goldenDir, profile, t))
			if err != nil {
				return fmt.Errorf("--against golden: %w", err)
			}
			d = trace.DiffGolden(run.Obs, g)
		}
		if len(d) == 0 {
			fmt.Fprintf(e.stdout, "agree    %s (guest %s vs %s %s)\n", t.File, res.Release, *against, profile)
			continue
		}
		diverged++
		fmt.Fprintf(e.stdout, "DIVERGE  %s (guest %s vs %s %s)\n", t.File, res.Release, *against, profile)
		for _, dv := range d {
			fmt.Fprintf(e.stdout, "  %s:%d: %s: %s\n    %s: %s\n    guest: %s\n", t.File, dv.Line, dv.Op, dv.Reason, *against, orNone(dv.A), orNone(dv.B))
		}
	}
	fmt.Fprintf(e.stdout, "%d traces: %d agree, %d diverge\n", len(traces), len(traces)-diverged, diverged)
	if diverged > 0 {
		return errDiverged
	}
	return nil
}

// vmError marks the VM failures that are the user's input (a bad image, a
// kernel without sockmap, a missing runner) as bad input.
func vmError(err error) error {
	for _, s := range []error{vm.ErrBadImage, vm.ErrNoSockmap, vm.ErrNoRunner, vm.ErrBadBinary, vm.ErrBadRunner, vm.ErrPanic, vm.ErrHung} {
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
	fs := newFlags(e, "guest", "[--timeout D] TRACE...", "Run traces on this machine's kernel and write framed results to standard output.\nThe guest side of 'splicecheck vm --runner vng'; not for direct use.")
	timeout := fs.Duration("timeout", trace.DefaultOpTimeout, "per-op timeout")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	b, err := openBackend("--backend", "kernel", backendConfig{})
	if err != nil {
		return err
	}
	os.Setenv("SPLICECHECK_OP_TIMEOUT", timeout.String())
	if code := vm.GuestMain(b, e.stdout, paths, nil); code != 0 {
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
