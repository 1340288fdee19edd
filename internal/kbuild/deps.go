package kbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// dep is one thing a build needs: a tool on PATH or a file (a header, a
// source tarball), and the Debian package that provides it.
type dep struct {
	what    string // what the error names: "flex", "libelf.h"
	pkg     string // the Debian package
	present func() bool
}

func tool(name, pkg string) dep {
	return dep{name, pkg, func() bool { _, err := exec.LookPath(name); return err == nil }}
}

func file(path, what, pkg string) dep {
	return dep{what, pkg, func() bool { _, err := os.Stat(path); return err == nil }}
}

// buildDeps is what building a kernel needs (Debian package names).
func buildDeps(tarball, patches bool) []dep {
	d := []dep{
		tool("make", "build-essential"), tool("gcc", "build-essential"),
		tool("flex", "flex"), tool("bison", "bison"), tool("bc", "bc"),
		tool("pahole", "dwarves"), tool("cpio", "cpio"), tool("perl", "perl"),
		file("/usr/include/libelf.h", "libelf.h", "libelf-dev"),
		file("/usr/include/openssl/opensslv.h", "openssl/opensslv.h", "libssl-dev"),
	}
	if patches {
		d = append(d, tool("patch", "patch"))
	}
	if tarball {
		d = append(d, tarDeps()...)
	}
	return d
}

func tarDeps() []dep { return []dep{tool("tar", "tar"), tool("xz", "xz-utils")} }

// debianTarball is where Debian's linux-source-VERSION puts its tarball.
func debianTarball(version string) string {
	return "/usr/src/linux-source-" + version + ".tar.xz"
}

func debianSourceDeps(version string) []dep {
	return append([]dep{file(debianTarball(version), "linux-source-"+version+".tar.xz", "linux-source-"+version)}, tarDeps()...)
}

// ensure checks deps and installs the missing ones with apt-get when
// running as root; otherwise it returns one line wrapping ErrMissingDeps.
func (b *builder) ensure(ctx context.Context, deps []dep) error {
	missing := missingDeps(deps)
	if len(missing) == 0 {
		return nil
	}
	var what, pkgs []string
	seen := map[string]bool{}
	for _, d := range missing {
		what = append(what, d.what)
		if !seen[d.pkg] {
			seen[d.pkg] = true
			pkgs = append(pkgs, d.pkg)
		}
	}
	base := fmt.Sprintf("%s (Debian: apt-get install %s)", strings.Join(what, ", "), strings.Join(pkgs, " "))
	euid := os.Geteuid
	if b.cfg.euid != nil {
		euid = b.cfg.euid
	}
	if euid() != 0 {
		return fmt.Errorf("%w: %s; run as root to have them installed", ErrMissingDeps, base)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%w: %s; apt-get not found to install them", ErrMissingDeps, base)
	}
	b.logf("installing %s with apt-get", strings.Join(pkgs, " "))
	if !b.aptUpdated {
		if err := apt(ctx, "update", "-qq"); err != nil {
			return fmt.Errorf("%w: %s; apt-get update: %w", ErrMissingDeps, base, err)
		}
		b.aptUpdated = true
	}
	args := append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)
	if err := apt(ctx, args...); err != nil {
		return fmt.Errorf("%w: %s; apt-get install: %w", ErrMissingDeps, base, err)
	}
	if still := missingDeps(deps); len(still) > 0 {
		return fmt.Errorf("%w: %s still missing after apt-get install", ErrMissingDeps, still[0].what)
	}
	return nil
}

func missingDeps(deps []dep) []dep {
	var out []dep
	for _, d := range deps {
		if !d.present() {
			out = append(out, d)
		}
	}
	return out
}

// apt runs apt-get non-interactively; its error carries the last line of
// its output.
func apt(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s", err, lastLine(out))
	}
	return nil
}

func lastLine(out []byte) string {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return strings.TrimSpace(string(lines[len(lines)-1]))
}
