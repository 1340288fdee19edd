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
	fmt.Fprintf(e.stdout, "\nbackends: %s\n", backendNames("profiles"))
	return nil
}

// version and commit are set by the linker for builds that stamp them
// (`make build`: -X main.commit=$(git rev-parse HEAD)[-dirty]); go build
// records the commit itself (vcs.revision) only where it may (no
// -buildvcs=false, a .git directory, not a worktree's .git file).
var (
	version = ""
	commit  = ""
)

func cmdVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", "", "Print the version of splicecheck, the VCS commit it was built from (-dirty: with\nuncommitted changes) and the Go toolchain that built it. Also 'splicecheck --version'.")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "splicecheck %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// versionString is the release version, or the module's, then "commit
// C" when the commit the binary was built from is known: the linker's
// stamp, else the build's vcs.revision (12 hex digits), with "-dirty" when
// the tree had uncommitted changes (vcs.modified).
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	v := version
	if v == "" {
		v = "(devel)"
		if ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	c := commit
	if c == "" && ok {
		c = vcsCommit(bi.Settings)
	}
	if c != "" {
		v += " commit " + c
	}
	return v
}

// vcsCommit is the commit a build recorded: vcs.revision's first 12 hex
// digits, "-dirty" when vcs.modified; "" when it recorded none.
func vcsCommit(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}
