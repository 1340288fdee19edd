package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/kernelshim/repro"
	"github.com/splicecheck/splicecheck/trace"
)

func cmdRepro(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "repro", "--c [flags] TRACE",
		"Write TRACE as a standalone C program (libc only, raw bpf(2), pthreads, a network\n"+
			"namespace of its own) that performs its ops on the kernel it runs on and prints\n"+
			"the `LINE: OP => RESULT` lines of `splicecheck run --backend kernel`, long data\n"+
			"with its full SHA-256 (the goldens' form). Build it with\n"+
			"`gcc -Wall -O2 -pthread -o repro repro.c` and run it as root. The opening comment\n"+
			"carries the trace's own comments (a counterexample's verdict) and the profile.\n"+
			"An op C cannot express (FreeBSD's SO_SPLICE) is an error naming its position.")
	asC := fs.Bool("c", false, "write C (the only form so far; required)")
	out := fs.String("o", "", "write the program to `FILE` instead of standard output")
	profile := fs.String("profile", "", "the kernel `PROFILE` the trace is about, for the opening comment (default: the counterexample header's, else the trace's profile directive, else "+trace.DefaultBase+")")
	var in traceInput
	in.register(fs)
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if !*asC {
		return usagef("--c: the reproducer's language is required (C is the only one)")
	}
	if len(paths) != 1 {
		return usagef("want one TRACE, got %d", len(paths))
	}
	traces, err := in.parseAll(ctx, paths, true)
	if err != nil {
		return err
	}
	t := traces[0]
	h := reproHeader(t, in.heads[t], *profile)
	if _, err := trace.ParseProfile(h.Profile); err != nil {
		return usagef("--profile: %v", err)
	}
	src, err := repro.C(t, h)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = e.stdout.Write(src)
		return err
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		return usagef("-o: %v", err)
	}
	return nil
}

// reproHeader is the opening comment of t's reproducer: the comments
// that open its file (head, the file's start) and the profile: profile
// when given, else the counterexample header's, else the trace's
// directive's, else trace.DefaultBase.
func reproHeader(t *trace.Trace, head []byte, profile string) repro.Header {
	h := repro.Header{Generator: "splicecheck " + versionString(), Profile: profile, Notes: leadingComments(head)}
	if h.Profile == "" {
		if ch, ok := fuzz.ReadHeader(head); ok && ch.Profile != "" {
			h.Profile = ch.Profile
		} else if h.Profile = t.Profile; h.Profile == "" {
			h.Profile = trace.DefaultBase
		}
	}
	return h
}

// leadingComments returns the comment lines that open a trace file,
// without their "# ".
func leadingComments(head []byte) []string {
	var notes []string
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "#") {
			break
		}
		notes = append(notes, strings.TrimSpace(strings.TrimPrefix(line, "#")))
	}
	return notes
}

// writeCompanions writes, beside each counterexample file the campaign
// wrote, its timeline (writeTimelines) and its C reproducer
// (writeReproducers).
func (cr *checkReport) writeCompanions(ctx context.Context) {
	cr.writeTimelines(ctx)
	cr.writeReproducers()
}

// writeReproducers writes the C reproducer of each counterexample file
// the campaign wrote beside it (FILE.trace's is FILE.c), when C can
// express the trace (FreeBSD's SO_SPLICE cannot: no file); cr.reproducers
// records them. A reproducer that cannot be written is reported on
// stderr and skipped: the counterexample stands without it.
func (cr *checkReport) writeReproducers() {
	for _, ce := range cr.counterexamples() {
		c := strings.TrimSuffix(ce.file, ".trace") + ".c"
		err := writeReproducer(ce.file, ce.text, c)
		if errors.Is(err, repro.ErrUnsupported) {
			continue
		}
		if err != nil {
			fmt.Fprintf(cr.e.stderr, "splicecheck: no reproducer of %s: %s\n", ce.file, oneLine(err.Error()))
			continue
		}
		if cr.reproducers == nil {
			cr.reproducers = map[string]string{}
		}
		cr.reproducers[ce.file] = c
	}
}

// writeReproducer writes the C reproducer of counterexample file (its
// text) to c.
func writeReproducer(file string, text []byte, c string) error {
	t, err := trace.Parse(file, text)
	if err != nil {
		return err
	}
	src, err := repro.C(t, reproHeader(t, text, ""))
	if err != nil {
		return err
	}
	return os.WriteFile(c, src, 0o644)
}
