package fuzz

import (
	"context"
	"testing"
)

// TestCheckCoverage: a profile's outcomes share one coverage, the union
// of its traces' runs.
func TestCheckCoverage(t *testing.T) {
	outs, err := Check(context.Background(), Campaign{Profiles: []string{"linux-6.18"}, MaxTraces: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := outs[0].Coverage
	for _, o := range outs {
		if o.Coverage != c {
			t.Fatalf("%s: its own coverage, not the profile's", o.Property)
		}
	}
	if c.Runs() == 0 || c.Runs() > 5 || c.Partial() != 0 {
		t.Fatalf("%d runs (%d partial) merged from 5 traces", c.Runs(), c.Partial())
	}
	if n, m := c.Count(); n == 0 || n > m {
		t.Fatalf("coverage %d/%d", n, m)
	}
}
