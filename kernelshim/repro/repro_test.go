package repro

import (
	"context"
	"errors"
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

// build writes the reproducer of tr into dir and compiles it (static when
// static); it returns the binary.
func build(t testing.TB, tr *trace.Trace, dir string, static bool) string {
	t.Helper()
	src, err := C(tr, Header{Generator: "repro_test", Profile: "linux-6.18", Notes: []string{"a note with */ in it"}})
	if err != nil {
		t.Fatal(err)
	}
	bin, err := Compile(context.Background(), src, dir, corpustest.Name(tr), static)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildAll builds the reproducers of every case, two gcc at a time.
func buildAll(t *testing.T, cases []corpustest.Case, dir string) []string {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatalf("gcc: %v (the project assumes Go and gcc)", err)
	}
	bins := make([]string, len(cases))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, k := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			bins[i] = build(t, k.Trace, dir, false)
		}()
	}
	wg.Wait()
	return bins
}

// TestCorpusCompiles: the reproducer of every trace of the kernel corpus
// compiles with gcc -Wall -Werror.
func TestCorpusCompiles(t *testing.T) {
	cases := corpustest.Load(t, corpustest.Corpus{Dir: corpusDir, Goldens: goldenRoot, Profile: "linux-6.18"})
	buildAll(t, cases, t.TempDir())
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
	cases := corpustest.Load(t, corpustest.Corpus{Dir: corpusDir, Goldens: goldenRoot, Profile: profile})
	bins := buildAll(t, cases, t.TempDir())
	agree := 0
	for i, k := range cases {
		t.Run(k.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a trace runs for seconds
			defer cancel()
			obs, err := Exec(ctx, bins[i], 1)
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
