// Command splicecheck runs traces of the Linux socket-splicing paths on a
// backend (the model, gVisor netstack, the live kernel, a kernel in a VM)
// and compares runs byte for byte.
//
// Exit status: 0 ok; 1 a divergence or property failure; 2 bad input (a
// trace, a flag, missing privileges); 3 the tool itself failed; 130
// interrupted (SIGINT or SIGTERM), after printing the results so far; a
// second signal kills it at once.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
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
	// exitInterrupted: a signal (SIGINT, SIGTERM) stopped the command,
	// which printed what it had (128+SIGINT, as a shell reports it).
	exitInterrupted = 130
)

// usageError is bad input on the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// The outcomes a command returns besides bad input and internal failures.
var (
	// errDiverged means the command ran and found a difference: exit 1.
	// The command has already printed the difference.
	errDiverged = errors.New("runs diverge")
	// errInterrupted means a signal ended the command's context: exit
	// 130. The command has already printed its results so far (in
	// text); under --format json they ride on the error (withPartial).
	errInterrupted = errors.New("interrupted")
)

// interruptError is errInterrupted (and the error the interrupt caused,
// if any) with why and how far the command got, in one line:
// "interrupted (interrupt signal received): 3 of 10 traces ran".
type interruptError struct {
	msg   string
	cause error
}

func (e *interruptError) Error() string   { return e.msg }
func (e *interruptError) Unwrap() []error { return []error{errInterrupted, e.cause} }

// interrupted is the error of a command whose ctx ended (a signal),
// after it printed its results so far; progress says how far it got ("" if
// it cannot tell) and cause is the error the interrupt made (nil if none).
func interrupted(ctx context.Context, progress string, cause error) error {
	msg := "interrupted"
	if c := context.Cause(ctx); c != nil {
		msg += " (" + c.Error() + ")"
	}
	if progress != "" {
		msg += ": " + progress
	}
	return &interruptError{msg, cause}
}

// partialError carries a command's results so far on an error, for the
// JSON error object's "partial" field.
type partialError struct {
	err     error
	partial any
}

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

// withPartial attaches partial (JSON-encodable) to err.
func withPartial(err error, partial any) error { return &partialError{err, partial} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
	// json: the command has --json (--format json), under which its
	// errors are a JSON object on stdout too.
	json bool
}

// env is what a command writes to.
type env struct {
	stdout, stderr io.Writer
}

var commands = []command{
	{"run", "run traces on a backend and print the observations", cmdRun, true},
	{"diff", "run traces on two backends and compare them byte for byte", cmdDiff, true},
	{"proxy", "run a trace's proxy four ways (SO_SPLICE, sk_skb egress, splice(2), read/write) and compare the far ends", cmdProxy, true},
	{"check", "attack profiles with generated traces; a table of properties x profiles, shrunk counterexamples", cmdCheck, true},
	{"merge", "combine the results of a campaign run as shards (check --shard K/N) into one campaign's table", cmdMerge, true},
	{"repro", "write a trace as a standalone C reproducer (gcc, libc, raw bpf(2)) for the running kernel", cmdRepro, false},
	{"profiles", "list the kernel behaviours (profiles) and the backends that implement them", cmdProfiles, false},
	{"vm", "boot a kernel image in a VM, run traces there, compare with the model or goldens", cmdVM, true},
	{"guest", "the guest side of vm under virtme-ng (writes framed results)", cmdGuest, false},
	{"kernel", "build a kernel image (patches, config fragment, modules) into a cache: kernel build", cmdKernel, false},
	{"version", "print the version and the VCS commit it was built from (also --version)", cmdVersion, false},
}

func main() {
	if vm.IsGuestInit() {
		os.Exit(guestInit())
	}
	ctx, stop := signalContext()
	code := mainWithArgs(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalContext returns a context that SIGINT or SIGTERM ends. The first
// signal asks the command to stop and print what it has; the default
// action is back for a second one, which kills at once (QEMU dies with
// us; the next run sweeps the temp dirs, cgroups and build directories of
// dead runs).
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-sigs:
			signal.Stop(sigs) // before ctx ends: a second signal finds the default action
			cancel(fmt.Errorf("%v signal received", sig))
		case <-ctx.Done():
			signal.Stop(sigs)
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
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
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		asJSON := c.json && wantsJSON(args[1:])
		err := c.run(ctx, e, args[1:])
		if err != nil && ctx.Err() != nil && !errors.Is(err, errInterrupted) {
			// A command that did not say how far it got.
			err = interrupted(ctx, "", err)
		}
		if asJSON {
			return reportJSON(stdout, err)
		}
		return report(stderr, c.name, err)
	}
	fmt.Fprintf(stderr, "splicecheck: unknown command %q (run 'splicecheck --help')\n", args[0])
	return exitBadInput
}

// report prints err as one line and maps it to an exit status.
func report(stderr io.Writer, cmd string, err error) int {
	code := exitStatus(err)
	switch {
	case code == exitOK || code == exitDivergence:
	case errors.Is(err, trace.ErrSyntax) && !errors.Is(err, errInterrupted):
		// Already the contract's FILE:LINE:COL: message.
		fmt.Fprintln(stderr, oneLine(err.Error()))
	default:
		fmt.Fprintf(stderr, "splicecheck %s: %s\n", cmd, errorMessage(err))
	}
	return code
}

// exitStatus maps a command's error to the exit status of the contract
// (main's doc comment).
func exitStatus(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.Is(err, errDiverged):
		return exitDivergence
	case errors.As(err, &ue), errors.Is(err, trace.ErrSyntax), isBadInput(err):
		return exitBadInput
	}
	return exitInternal
}

// errorMessage is err as the one line report prints after the command's
// name.
func errorMessage(err error) string {
	var ue *usageError
	var ie *interruptError
	if errors.As(err, &ie) {
		return ie.msg
	}
	if errors.As(err, &ue) {
		return ue.msg
	}
	return oneLine(err.Error())
}

// jsonError is an error under --json: the one object on stdout (after
// nothing else), with the results so far of an interrupted command.
type jsonError struct {
	Error   string `json:"error"`
	Exit    int    `json:"exit"`
	Partial any    `json:"partial,omitempty"`
}

// reportJSON is report under --json: an error is a jsonError on stdout
// (a divergence is not an error: the command printed its results).
func reportJSON(stdout io.Writer, err error) int {
	code := exitStatus(err)
	if code == exitOK || code == exitDivergence {
		return code
	}
	je := jsonError{Error: errorMessage(err), Exit: code}
	var pe *partialError
	if errors.As(err, &pe) {
		je.Partial = pe.partial
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(je)
	return code
}

// wantsJSON reports whether a command's arguments ask for JSON (--json,
// --format json), looked for before the flags are parsed so that an
// error parsing them is JSON too. Arguments after "--" are not flags.
func wantsJSON(args []string) bool {
	for i, a := range args {
		if a == "--" {
			return false
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			continue
		}
		switch {
		case name == "json":
			if !hasVal || val == "true" || val == "1" {
				return true
			}
		case name == "format" && hasVal:
			if val == "json" {
				return true
			}
		case name == "format" && i+1 < len(args):
			if args[i+1] == "json" {
				return true
			}
		}
	}
	return false
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
	fmt.Fprintln(w, "'splicecheck --version' prints the version and the commit it was built from.")
	fmt.Fprintln(w, "exit status: 0 ok, 1 divergence or property failure, 2 bad input, 3 internal failure,")
	fmt.Fprintln(w, "130 interrupted (SIGINT, SIGTERM; the results so far are printed)")
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
	// The flag package prints the usage on every error; only -h gets it
	// here: a bad flag is one line (usagef).
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, err
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
