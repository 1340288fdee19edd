// Command splicecheck runs traces of the Linux socket-splicing paths on a
// backend (the model, gVisor netstack, the live kernel, a kernel in a VM)
// and compares runs byte for byte.
//
// Exit status: 0 ok; 1 a divergence or property failure; 2 bad input (a
// trace, a flag, missing privileges); 3 the tool itself failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/splicecheck/splicecheck/kernelshim/vm"
	"github.com/splicecheck/splicecheck/trace"
)

// Exit statuses (the contract of docs/design.md, plus 3).
const (
	exitOK         = 0
	exitDivergence = 1
	exitBadInput   = 2
	exitInternal   = 3
)

// usageError is bad input on the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errDiverged means the command ran and found a difference: exit 1. The
// command has already printed the difference.
var errDiverged = errors.New("runs diverge")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command writes to.
type env struct {
	stdout, stderr io.Writer
}

var commands = []command{
	{"run", "run traces on a backend and print the observations", cmdRun},
	{"diff", "run traces on two backends and compare them byte for byte", cmdDiff},
	{"check", "attack profiles with generated traces; a table of properties x profiles, shrunk counterexamples", cmdCheck},
	{"profiles", "list the kernel behaviours (profiles) and the backends that implement them", cmdProfiles},
	{"vm", "boot a kernel image in a VM, run traces there, compare with the model or goldens", cmdVM},
	{"guest", "the guest side of vm under virtme-ng (writes framed results)", cmdGuest},
	{"kernel", "build a kernel image (patches, config fragment, modules) into a cache: kernel build", cmdKernel},
	{"version", "print the version", cmdVersion},
}

func main() {
	if vm.IsGuestInit() {
		os.Exit(guestInit())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := mainWithArgs(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func mainWithArgs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(stderr)
		if len(args) == 0 {
			return exitBadInput
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		return report(stderr, c.name, err)
	}
	fmt.Fprintf(stderr, "splicecheck: unknown command %q (run 'splicecheck --help')\n", args[0])
	return exitBadInput
}

// report prints err as one line and maps it to an exit status.
func report(stderr io.Writer, cmd string, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errDiverged):
		return exitDivergence
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "splicecheck %s: %s\n", cmd, ue.msg)
		return exitBadInput
	case errors.Is(err, trace.ErrSyntax):
		// Already the contract's FILE:LINE:COL: message.
		fmt.Fprintln(stderr, oneLine(err.Error()))
		return exitBadInput
	case isBadInput(err):
		fmt.Fprintf(stderr, "splicecheck %s: %s\n", cmd, oneLine(err.Error()))
		return exitBadInput
	default:
		fmt.Fprintf(stderr, "splicecheck %s: %s\n", cmd, oneLine(err.Error()))
		return exitInternal
	}
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: splicecheck COMMAND [flags] [TRACE...]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "'splicecheck COMMAND --help' describes a command's flags.")
	fmt.Fprintln(w, "exit status: 0 ok, 1 divergence or property failure, 2 bad input, 3 internal failure")
}

// newFlags returns a flag set that reports errors instead of exiting and
// prints usage to stderr on --help.
func newFlags(e *env, name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("splicecheck "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fs.SetOutput(e.stderr)
		fmt.Fprintf(e.stderr, "usage: splicecheck %s %s\n\n%s\n\nflags:\n", name, args, about)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// (`run a.trace --json`); a bad flag is a usage error naming it.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, err // the flag package has printed the usage
		}
		if err != nil {
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
