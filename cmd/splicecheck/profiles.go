package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/splicecheck/splicecheck/trace"
)

func cmdProfiles(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "profiles", "", "List the base kernels and patch series a profile can name.\nA profile is written base+patch+patch; a bare patch name applies it to "+trace.DefaultBase+".")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, p := range trace.Profiles() {
		kind := "base "
		if p.Patch {
			kind = "patch"
		}
		fmt.Fprintf(e.stdout, "%-20s %s  %s\n", p.Name, kind, p.Summary)
	}
	fmt.Fprintf(e.stdout, "\nbackends: %s\n", backendNames())
	return nil
}

// version is set by the linker (-X main.version=...) for releases.
var version = ""

func cmdVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "", "Print the version of splicecheck and of the Go toolchain that built it.")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(e.stdout, "splicecheck %s (%s %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
