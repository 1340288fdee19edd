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
	fmt.Fprintf(e.stdout, "splicecheck %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// versionString is the release version, or the module's, and the VCS
// revision the binary was built from when the build recorded one.
func versionString() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if v == "" {
		v = "(devel)"
		if ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	if ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	return v
}
