package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Output formats (--format).
const (
	formatText = "text"
	formatJSON = "json"
	formatKTAP = "ktap"
)

// formatFlags are --format and its synonym --json. After resolve, format
// is one of the formats the command allows and json is format == json.
type formatFlags struct {
	format  string
	json    bool
	allowed []string
}

// register adds --format (taking allowed, text first) and --json.
func (f *formatFlags) register(fs *flag.FlagSet, allowed ...string) {
	f.allowed = allowed
	fs.StringVar(&f.format, "format", formatText, "output `FORMAT`: "+strings.Join(allowed, ", ")+
		ktapNote(allowed))
	fs.BoolVar(&f.json, "json", false, "print JSON instead of text (--format json); errors are then a JSON object {\"error\", \"exit\"} on stdout")
}

func ktapNote(allowed []string) string {
	if slices.Contains(allowed, formatKTAP) {
		return " (ktap: KTAP version 1, one result per test, for kselftest-style runners)"
	}
	return ""
}

// resolve checks --format against the command's formats and folds --json
// into it; a conflict (--json --format ktap) is a usage error.
func (f *formatFlags) resolve() error {
	if !slices.Contains(f.allowed, f.format) {
		return usagef("--format: want %s, got %q", strings.Join(f.allowed, ", "), f.format)
	}
	if f.json && f.format != formatText && f.format != formatJSON {
		return usagef("--json and --format %s: give one", f.format)
	}
	if f.json {
		f.format = formatJSON
	}
	f.json = f.format == formatJSON
	return nil
}

// terminal returns stderr if it is a terminal, else nil: progress lines
// are drawn only there.
func (e *env) terminal() *os.File {
	f, ok := e.stderr.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return f
}

// plural is "1 trace", "2 traces": n and noun, with an s unless n is 1.
// Nouns whose plural is not noun+"s" are not counted with it.
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// ktapResult is one test in KTAP output.
type ktapResult struct {
	ok   bool
	name string
	// directive is "" or a KTAP directive (SKIP, XFAIL, ...), with its
	// diagnostic data after a space.
	directive string
	diag      []string // "# " lines printed before the result line
}

// writeKTAP prints results as KTAP version 1: the version line, the plan
// 1..len(results), then each result's diagnostics and its result line,
// numbered from 1. Names lose any '#' (KTAP descriptions cannot hold one)
// and newlines; diagnostics, their newlines.
func writeKTAP(w io.Writer, results []ktapResult) {
	fmt.Fprintln(w, "KTAP version 1")
	fmt.Fprintf(w, "1..%d\n", len(results))
	for i, r := range results {
		for _, d := range r.diag {
			for _, l := range strings.Split(d, "\n") {
				fmt.Fprintf(w, "# %s\n", l)
			}
		}
		status := "ok"
		if !r.ok {
			status = "not ok"
		}
		line := fmt.Sprintf("%s %d %s", status, i+1, ktapName(r.name))
		if r.directive != "" {
			line += " # " + strings.ReplaceAll(r.directive, "\n", " ")
		}
		fmt.Fprintln(w, line)
	}
}

// ktapName makes s a KTAP test description: no '#', no line breaks.
func ktapName(s string) string {
	return strings.NewReplacer("#", "_", "\n", " ", "\r", " ").Replace(s)
}
