package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/splicecheck/splicecheck/internal/kbuild"
)

const kernelUsage = "usage: splicecheck kernel build (--source DIR|TARBALL | --debian VERSION) [--patch FILE ...] [--config FRAGMENT] [--module DIR ...] [--cache DIR] [--name NAME]\n" +
	"       splicecheck kernel path [--cache DIR] NAME"

func cmdKernel(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: build or path (see 'splicecheck kernel --help')")
	}
	switch args[0] {
	case "build":
		return cmdKernelBuild(ctx, e, args[1:])
	case "path":
		return cmdKernelPath(e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(e.stderr, kernelUsage)
		return flag.ErrHelp
	}
	return usagef("unknown subcommand %q (want: build, path)", args[0])
}

func cmdKernelBuild(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "kernel build", "(--source DIR|TARBALL | --debian VERSION) [flags]",
		"Build a kernel image (bzImage) from a source tree or Debian's linux-source package, with\n"+
			"patches applied in order and a config fragment merged onto tinyconfig, and modules\n"+
			"built against it; or take it from the cache when it was built before. Prints the\n"+
			"image's path, then each module's .ko, on standard output; progress on standard error.\n"+
			"Missing build dependencies are installed with apt-get when run as root.")
	var patches, modules pathList
	source := fs.String("source", "", "kernel source directory, or a tarball of one")
	debian := fs.String("debian", "", "build Debian's linux-source-`VERSION` (e.g. 6.12) instead of --source")
	fs.Var(&patches, "patch", "a patch `FILE` to apply with patch -p1 (repeatable; applied in order)")
	fragment := fs.String("config", "", "config `FRAGMENT` to merge onto tinyconfig (default: the tree's .config, else defconfig)")
	fs.Var(&modules, "module", "an out-of-tree module source `DIR` to build against the kernel (repeatable)")
	cache := fs.String("cache", "", "cache directory (default $XDG_CACHE_HOME/splicecheck/kernels, else ~/.cache/...)")
	name := fs.String("name", "", "remember the result as `NAME` (a profile name) for 'splicecheck kernel path NAME'")
	jobs := fs.Int("jobs", 0, "make -j `N` (default: the number of CPUs)")
	timeout := fs.Duration("timeout", 0, "give up after this long (0: no limit); the build is killed and nothing is cached")
	verbose := fs.Bool("verbose", false, "copy make's output to standard error")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("unexpected argument %q", rest[0])
	case *source == "" && *debian == "":
		return usagef("give --source DIR|TARBALL or --debian VERSION")
	case *source != "" && *debian != "":
		return usagef("--source and --debian: give one")
	case *jobs < 0:
		return usagef("--jobs: want a positive number, got %d", *jobs)
	case *timeout < 0:
		return usagef("--timeout: want a positive duration, got %s", *timeout)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	start := time.Now()
	res, err := kbuild.Build(ctx, kbuild.Config{
		Source: *source, Debian: *debian, Patches: patches, Fragment: *fragment, Modules: modules,
		CacheDir: *cache, Name: *name, Jobs: *jobs, Progress: e.stderr, Verbose: *verbose,
	})
	if err != nil {
		return kernelError(err)
	}
	fmt.Fprintln(e.stdout, res.Image)
	for _, ko := range res.Modules {
		fmt.Fprintln(e.stdout, ko)
	}
	what := "built"
	if res.Cached {
		what = "cached"
	}
	fmt.Fprintf(e.stderr, "kernel: %s in %s\n", what, time.Since(start).Round(10*time.Millisecond))
	return nil
}

func cmdKernelPath(e *env, args []string) error {
	fs := newFlags(e, "kernel path", "[--cache DIR] NAME",
		"Print the image of the kernel a 'kernel build --name NAME' left in the cache, then each of\n"+
			"its modules' .ko, one per line, as 'kernel build' does; nothing is built.")
	cache := fs.String("cache", "", "cache directory (default $XDG_CACHE_HOME/splicecheck/kernels, else ~/.cache/...)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("want one kernel NAME")
	}
	res, err := kbuild.Lookup(*cache, rest[0])
	if errors.Is(err, kbuild.ErrNotBuilt) {
		return &usageError{oneLine(err.Error()) + "; build it with 'splicecheck kernel build --name' (make kernels)"}
	}
	if err != nil {
		return kernelError(err)
	}
	fmt.Fprintln(e.stdout, res.Image)
	for _, ko := range res.Modules {
		fmt.Fprintln(e.stdout, ko)
	}
	return nil
}

// kernelError makes the build errors that are the user's input (a bad
// path, a patch that does not apply, sources that do not compile, a
// missing build tool) bad input, exit 2; a timeout is named as such.
func kernelError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("--timeout reached; the build was killed and nothing was cached: %w", err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("interrupted; the build was killed and nothing was cached: %w", err)
	}
	for _, s := range []error{kbuild.ErrBadInput, kbuild.ErrPatch, kbuild.ErrConfig, kbuild.ErrCompile, kbuild.ErrMissingDeps} {
		if errors.Is(err, s) {
			return &usageError{oneLine(err.Error())}
		}
	}
	return err
}
