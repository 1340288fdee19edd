package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/kernelshim"
	"github.com/splicecheck/splicecheck/kernelshim/repro"
	"github.com/splicecheck/splicecheck/kernelshim/vm"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/netstack"
	"github.com/splicecheck/splicecheck/trace"
)

// backendInfo is one backend the project names (docs/design.md,
// "Backends"). open is nil while the backend is not built yet.
type backendInfo struct {
	name    string
	summary string
	open    func(cfg backendConfig) (trace.Backend, error)
	stats   bool // keeps the model's copy accounting (trace.Options.Stats)
}

// backendConfig carries the flags a backend may need.
type backendConfig struct {
	mutations []string // model: the bug zoo's mutations to plant (--mutate)
	// pcap, if not nil, receives a capture of the netstack backend's
	// segments (--pcap).
	pcap io.Writer
	// twoHost puts the netstack backend's connections between two
	// stacks over a link instead of on one loopback stack (--two-host).
	twoHost bool
	// campaign: the backend serves `check`, whose properties need the
	// model's liveness checks and byte provenance (model.Config).
	campaign bool
	// vm: the kernel image, modules and guest binary of the vm backend
	// (--kernel, --module, --guest-binary).
	vm vmFlags
	// goldenDir, when set, makes "golden" a backend: the observations
	// recorded under it (trace.Golden; diff and vm --against).
	goldenDir string
}

// goldenBackend names the recorded observations of a kernel
// (testdata/golden/PROFILE/NAME.out), usable as one side of diff.
const goldenBackend = "golden"

var backends = []backendInfo{
	{"model", "the faithful model on its in-model reference TCP (deterministic, replayable)", openModel, true},
	{"netstack", "the model with gVisor netstack as its TCP layer (loopback stack, manual clock)", openNetstack, true},
	{"kernel", "the live kernel of this machine (root; a fresh network namespace per trace)", openKernel, false},
	{"vm", "the kernel backend inside a VM booted from a kernel image (--kernel; one long-lived guest)", openVM, false},
}

// keepsStats reports whether the named backend keeps copy accounting.
func keepsStats(name string) bool {
	for _, b := range backends {
		if b.name == name {
			return b.stats
		}
	}
	return false
}

func openModel(cfg backendConfig) (trace.Backend, error) {
	b, err := model.NewWithConfig(model.Config{Mutations: cfg.mutations, Liveness: cfg.campaign, Provenance: cfg.campaign})
	if err != nil {
		return nil, usagef("--mutate: %v", err)
	}
	return b, nil
}

// openNetstack returns the model on gVisor's TCP: a fresh loopback stack
// (or pair of stacks) per trace, on the manual clock the model's virtual
// time moves.
func openNetstack(cfg backendConfig) (trace.Backend, error) {
	opts := netstack.TransportOptions{Options: netstack.Options{Pcap: cfg.pcap}, TwoHost: cfg.twoHost}
	return netstack.NewBackend(opts, model.Config{Liveness: cfg.campaign, Provenance: cfg.campaign})
}

// openKernel checks privileges first, so a missing one is reported before
// any trace runs.
func openKernel(backendConfig) (trace.Backend, error) {
	if err := kernelshim.Available(); err != nil {
		return nil, err
	}
	return kernelshim.New(kernelshim.Config{}), nil
}

// backendsFor lists the backends cmd (run, diff, check) can run: the
// built ones. Every built backend serves every such command (the vm
// backend with --kernel); help texts and errors list only these.
func backendsFor(cmd string) []string {
	return builtBackends()
}

func builtBackends() []string {
	var out []string
	for _, b := range backends {
		if b.open != nil {
			out = append(out, b.name)
		}
	}
	return out
}

// openBackend returns the named backend; flag names the flag for errors.
func openBackend(flag, name string, cfg backendConfig) (trace.Backend, error) {
	if name == goldenBackend && cfg.goldenDir != "" {
		return trace.Golden(cfg.goldenDir), nil
	}
	var known []string
	for _, b := range backends {
		known = append(known, b.name)
		if b.name != name {
			continue
		}
		if b.open == nil {
			built := strings.Join(builtBackends(), ", ")
			if built == "" {
				built = "none yet"
			}
			return nil, fmt.Errorf("%s %s: %w (built: %s)", flag, name, trace.ErrNotBuilt, built)
		}
		be, err := b.open(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, name, err)
		}
		return be, nil
	}
	return nil, fmt.Errorf("%s: %w %q (known: %s)", flag, trace.ErrUnknownBackend, name, strings.Join(known, ", "))
}

// badInput are the sentinels that make an error the user's input: exit 2.
var badInput = []error{
	trace.ErrSyntax, trace.ErrNotBuilt, trace.ErrUnknownBackend,
	trace.ErrUnknownProfile, trace.ErrUnsupported, os.ErrNotExist, os.ErrPermission,
	trace.ErrTooLarge, trace.ErrEmpty, trace.ErrRead, // trace input (ErrBinary is a syntax error)
	fuzz.ErrNoProxy,      // proxy: a trace without a proxy form
	fuzz.ErrShards,       // merge: results that are not the shards of one campaign
	repro.ErrUnsupported, // repro: an op C cannot express
	kernelshim.ErrNoPrivilege, kernelshim.ErrNoBPF,
	// A VM's input: the image, its modules, the runner, the guest binary.
	vm.ErrBadImage, vm.ErrNoSockmap, vm.ErrModule, vm.ErrNoRunner, vm.ErrBadBinary,
	vm.ErrBadRunner, vm.ErrPanic, vm.ErrHung,
}

func isBadInput(err error) bool {
	for _, s := range badInput {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
