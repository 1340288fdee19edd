package kernelshim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

// run parses src and runs it on a kernel backend with cfg, skipping the
// test without privileges.
func run(t testing.TB, cfg Config, src string, opts trace.Options) ([]trace.Observation, error) {
	t.Helper()
	testenv.RequireKernel(t, Available)
	tr, err := trace.Parse("test.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return trace.Observe(context.Background(), New(cfg), tr, opts)
}

// mustRun runs src and returns its rendered observations.
func mustRun(t testing.TB, src string) string {
	t.Helper()
	obs, err := run(t, Config{}, src, trace.Options{OpTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return render(obs)
}

func render(obs []trace.Observation) string {
	var b strings.Builder
	for _, o := range obs {
		b.WriteString(o.String() + "\n")
	}
	return b.String()
}
