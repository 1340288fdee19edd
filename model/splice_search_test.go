package model

import (
	"context"
	"os"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

func loadTrace(t *testing.T, path string) *trace.Trace {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trace.Parse(path, src)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestScratchShrink(t *testing.T) {
	for _, c := range []struct {
		f, strat string
		kind     error
	}{{"order_inflight", "pct", ErrStreamOrder}, {"order_inflight", "random", ErrStreamOrder}, {"eof_race", "random", ErrDataAfterEOF}, {"close_leak", "random", ErrLeak}} {
		tr := loadTrace(t, "../testdata/traces/loopback/"+c.f+".trace")
		res, err := New().Shrink(context.Background(), tr, trace.Options{}, SearchConfig{Strategy: c.strat, Runs: 500}, c.kind)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v\n%s", c.f, res.Violation, res.Counterexample.Format())
		obs, err := trace.Run(context.Background(), New(), res.Counterexample, trace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range obs {
			t.Log(o.String())
		}
	}
}
