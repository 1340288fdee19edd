package repro

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/internal/corpustest"
	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/kernelshim"
	"github.com/splicecheck/splicecheck/trace"
)

const (
	corpusDir  = "../../testdata/traces/kernel"
	goldenRoot = "../../testdata/golden"
)

// corpus holds the reproducers of the kernel corpus, compiled once for
// the package's tests (two gcc at a time) in a directory TestMain removes.
var corpus struct {
	once sync.Once
	dir  string
	bins map[string]string // trace file -> binary
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if corpus.dir != "" {
		os.RemoveAll(corpus.dir)
	}
	os.Exit(code)
}

// corpusBinaries returns the compiled reproducers of cases, by trace
// file.
func corpusBinaries(cases []corpustest.Case) (map[string]string, error) {
	corpus.once.Do(func() { corpus.bins, corpus.err = buildAll(cases) })
	return corpus.bins, corpus.err
}

// compiled is the corpus's reproducers as a backend: Run runs a trace's
// compiled reproducer and returns its lines as a recording.
type compiled struct{ cases []corpustest.Case }

func (compiled) Name() string { return "repro" }

func (c compiled) Run(ctx context.Context, tr *trace.Trace, _ trace.Options) (trace.RunResult, error) {
	bins, err := corpusBinaries(c.cases)
	if err != nil {
		return trace.RunResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // a trace runs for seconds
	defer cancel()
	obs, err := Exec(ctx, bins[tr.File], 1)
	return trace.RunResult{Obs: obs, Recorded: true}, err
}

// buildAll writes and compiles the reproducer of every case.
func buildAll(cases []corpustest.Case) (map[string]string, error) {
	if _, err := exec.LookPath("gcc"); err != nil {
		return nil, fmt.Errorf("gcc: %w (the project assumes Go and gcc)", err)
	}
	dir, err := os.MkdirTemp("", "repro-test-")
	if err != nil {
		return nil, err
	}
	corpus.dir = dir
	bins := make([]string, len(cases))
	errs := make([]error, len(cases))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, k := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			src, err := C(k.Trace, Header{Generator: "repro_test", Profile: "linux-6.18", Notes: []string{"a note with */ in it"}})
			if err == nil {
				bins[i], err = Compile(context.Background(), src, dir, k.Name, false)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	out := map[string]string{}
	for i, k := range cases {
		out[k.Trace.File] = bins[i]
	}
	return out, errors.Join(errs...)
}

// corpusCases is the kernel corpus with its goldens for profile.
func corpusCases(t *testing.T, profile string) []corpustest.Case {
	return corpustest.Load(t, corpustest.Corpus{Dir: corpusDir, Goldens: goldenRoot, Profile: profile})
}

// TestCorpusCompiles: the reproducer of every trace of the kernel corpus
// compiles with gcc -Wall -Werror.
func TestCorpusCompiles(t *testing.T) {
	cases := corpusCases(t, "linux-6.18")
	bins, err := corpusBinaries(cases)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cases {
		if bins[k.Trace.File] == "" {
			t.Errorf("%s: no binary", k.Trace.File)
		}
	}
}

// TestCorpus runs the reproducer of every trace of the kernel corpus on
// this kernel and compares what it prints, line for line, with the
// trace's golden for this kernel (recorded by the kernel backend); a
// trace whose outcome is the kernel's timing (a race: of the kernel's
// expect file) gets three runs, as the kernel backend's TestCorpus.
func TestCorpus(t *testing.T) {
	testenv.RequireKernel(t, kernelshim.Available)
	profile := corpustest.KernelProfile(t)
	if _, err := os.Stat(filepath.Join(goldenRoot, profile)); err != nil {
		t.Skipf("no goldens recorded for this kernel (%s)", profile)
	}
	c := corpustest.Corpus{Dir: corpusDir, Goldens: goldenRoot, Profile: profile,
		Races: corpustest.ReadRaces(t, "../../testdata/kernel-test/"+profile+".expect")}
	n := corpustest.Check(t, compiled{corpusCases(t, profile)}, c)
	t.Logf("%d reproducers print their %s golden", n, profile)
}

// TestUnsupported: a FreeBSD op is refused at generation time, naming its
// position.
func TestUnsupported(t *testing.T) {
	tr, err := trace.Parse("x.trace", []byte("profile freebsd-so-splice\nconn a b\nconn c d\nsosplice b c\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = C(tr, Header{})
	if !errors.Is(err, ErrUnsupported) || !strings.HasPrefix(err.Error(), "x.trace:4:1: ") {
		t.Fatalf("C of a sosplice: %v, want ErrUnsupported at x.trace:4:1", err)
	}
}
