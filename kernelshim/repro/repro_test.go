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

// corpusBinary returns the compiled reproducer of k's trace.
func corpusBinary(t *testing.T, cases []corpustest.Case, k corpustest.Case) string {
	t.Helper()
	corpus.once.Do(func() { corpus.bins, corpus.err = buildAll(cases) })
	if corpus.err != nil {
		t.Fatal(corpus.err)
	}
	return corpus.bins[k.Trace.File]
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
	for _, k := range cases {
		if bin := corpusBinary(t, cases, k); bin == "" {
			t.Errorf("%s: no binary", k.Trace.File)
		}
	}
}

// TestCorpus runs the reproducer of every trace of the kernel corpus on
// this kernel and compares what it prints, line for line, with the
// trace's golden for this kernel (recorded by the kernel backend).
func TestCorpus(t *testing.T) {
	testenv.RequireKernel(t, kernelshim.Available)
	profile := corpustest.KernelProfile(t)
	if _, err := os.Stat(filepath.Join(goldenRoot, profile)); err != nil {
		t.Skipf("no goldens recorded for this kernel (%s)", profile)
	}
	cases := corpusCases(t, profile)
	agree := 0
	for _, k := range cases {
		t.Run(k.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a trace runs for seconds
			defer cancel()
			obs, err := Exec(ctx, corpusBinary(t, cases, k), 1)
			if err != nil {
				t.Fatal(err)
			}
			if divs := trace.DiffGolden(obs, k.Golden); len(divs) > 0 {
				var sb strings.Builder
				for _, d := range divs {
					sb.WriteString("\n" + d.String())
				}
				t.Errorf("the reproducer of %s differs from %s:%s", k.Trace.File, k.Path, sb.String())
				return
			}
			agree++
		})
	}
	t.Logf("%d/%d reproducers print their %s golden", agree, len(cases), profile)
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
