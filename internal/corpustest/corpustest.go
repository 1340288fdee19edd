// Package corpustest is the golden-corpus harness of every backend's
// tests: a directory of traces, the goldens a kernel recorded for them
// under one profile, and the traces a backend is known to get wrong.
//
// Check runs each trace on a backend and compares its observations with
// its golden byte for byte (trace.DiffGolden). A known gap must still
// diverge, so that a fix also removes its entry, and must name a trace of
// the corpus. On the kernel the goldens come from, -update records them
// instead:
//
//	go test ./kernelshim -run Corpus -update
package corpustest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

var update = flag.Bool("update", false, "record the corpus goldens from this kernel's runs (kernel backend only)")

// Updating reports whether -update was given.
func Updating() bool { return *update }

// KernelProfile names the running kernel as a base profile,
// linux-MAJOR.MINOR: the profile of the goldens it records.
func KernelProfile(tb testing.TB) string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		tb.Fatal(err)
	}
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	parts := strings.SplitN(string(rel), ".", 3)
	if len(parts) < 2 {
		tb.Fatalf("odd kernel release %q", rel)
	}
	return "linux-" + parts[0] + "." + strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
}

// Corpus is one set of traces with goldens for one profile.
type Corpus struct {
	Dir     string // the traces' directory
	Glob    string // their file names in Dir; "" is *.trace
	Goldens string // the goldens' root: a trace's is trace.GoldenPath(Goldens, Profile, t)
	Profile string // the profile the goldens were recorded under
	// Options of every run; its Profile defaults to Profile.
	Options trace.Options
	// Gaps are the traces the backend is known to get wrong, name (the
	// file name without .trace) to reason.
	Gaps map[string]string
	// Races are the traces whose outcome is the kernel's timing, name to
	// reason (an expect file's `race:` entries, ReadRaces): one that
	// diverges is run again, at most raceRuns times in all, and agrees
	// when one run does.
	Races map[string]string
	// Partial: only the traces that have a golden are run (a profile
	// whose kernel ran part of the corpus); otherwise a missing golden
	// fails the test.
	Partial bool
	// Records: the backend is the kernel the goldens come from; -update
	// writes them from its runs. Elsewhere -update fails the test.
	Records bool
}

// Case is one trace of a corpus and its golden (nil when -update records
// it).
type Case struct {
	Name   string
	Trace  *trace.Trace
	Golden []string
	Path   string // the golden's file
}

// Name is a trace's name in a corpus: its file name without extension.
func Name(t *trace.Trace) string {
	return strings.TrimSuffix(filepath.Base(t.File), filepath.Ext(t.File))
}

// Load parses the corpus's traces and reads their goldens, in file-name
// order.
func Load(tb testing.TB, c Corpus) []Case {
	tb.Helper()
	glob := c.Glob
	if glob == "" {
		glob = "*.trace"
	}
	files, err := filepath.Glob(filepath.Join(c.Dir, glob))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no traces match %s: %v", filepath.Join(c.Dir, glob), err)
	}
	var out []Case
	for _, f := range files {
		tr, err := trace.ParseFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		k := Case{Name: Name(tr), Trace: tr, Path: trace.GoldenPath(c.Goldens, c.Profile, tr)}
		if !*update || !c.Records {
			if _, err := os.Stat(k.Path); err != nil && c.Partial {
				continue
			}
			if k.Golden, err = trace.ReadGolden(k.Path); err != nil {
				tb.Fatal(err)
			}
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		tb.Fatalf("no trace of %s has a %s golden", c.Dir, c.Profile)
	}
	return out
}

// Check runs every case of c on b (a subtest each) and compares it with
// its golden; see Corpus for the gaps and -update. It returns how many
// agree.
func Check(t *testing.T, b trace.Backend, c Corpus) (agree int) {
	t.Helper()
	if *update && !c.Records {
		t.Fatalf("-update: the %s goldens are recorded on a kernel, not by %s", c.Profile, b.Name())
	}
	cases := Load(t, c)
	for name, why := range c.Gaps {
		if !slices.ContainsFunc(cases, func(k Case) bool { return k.Name == name }) {
			t.Errorf("the known gaps name %s, which is not a trace of %s with a %s golden (%s)", name, c.Dir, c.Profile, why)
		}
	}
	opts := c.Options
	if opts.Profile == "" {
		opts.Profile = c.Profile
	}
	for _, k := range cases {
		t.Run(k.Name, func(t *testing.T) {
			var divs []trace.Divergence
			for run := 1; ; run++ {
				obs, err := trace.Observe(context.Background(), b, k.Trace, opts)
				if err != nil {
					t.Fatal(err)
				}
				if *update {
					record(t, k.Path, obs)
					return
				}
				divs = trace.DiffGolden(obs, k.Golden)
				race, isRace := c.Races[k.Name]
				if len(divs) == 0 || !isRace || run == raceRuns {
					break
				}
				t.Logf("run %d of %d diverges (%s): %s", run, raceRuns, race, divs[0])
			}
			why, gap := c.Gaps[k.Name]
			switch {
			case gap && len(divs) == 0:
				t.Errorf("agrees with %s now: remove it from the known gaps (%s)", k.Path, why)
			case gap:
			case len(divs) == 0:
				agree++
			default:
				var sb strings.Builder
				for _, d := range divs {
					sb.WriteString("\n" + d.String())
				}
				t.Errorf("%s diverges from %s:%s", k.Trace.File, k.Path, sb.String())
			}
		})
	}
	t.Logf("%s %s: %d/%d agree with the goldens, %d known gaps", c.Dir, c.Profile, agree, len(cases), len(c.Gaps))
	return agree
}

// raceRuns is how many times Check runs a trace of Corpus.Races that
// diverges before it reports the divergence.
const raceRuns = 3

// ReadRaces returns the `race:` entries of an expect file
// (testdata/kernel-test/PROFILE.expect: `NAME.trace: reason` lines), name
// to reason; none when the file does not exist.
func ReadRaces(tb testing.TB, path string) map[string]string {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	races := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		file, why, ok := strings.Cut(l, ": ")
		if ok && !strings.HasPrefix(l, "#") && strings.HasPrefix(why, "race:") {
			races[strings.TrimSuffix(file, ".trace")] = why
		}
	}
	return races
}

// record writes a golden.
func record(t *testing.T, path string, obs []trace.Observation) {
	var b bytes.Buffer
	if err := trace.WriteGolden(&b, obs); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
