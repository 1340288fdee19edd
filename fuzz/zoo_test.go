package fuzz

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/model"
)

// The zoo lists every mutation the model registers, each once.
func TestZooCoversEveryMutation(t *testing.T) {
	var zoo, reg []string
	for _, e := range Zoo {
		zoo = append(zoo, e.Mutation)
	}
	for _, m := range model.Mutations() {
		reg = append(reg, m.Name)
	}
	sort.Strings(zoo)
	if !slices.Equal(zoo, reg) {
		t.Fatalf("Zoo lists %v; the model registers %v", zoo, reg)
	}
}

// Every mutation of the zoo is detected by the campaign from seed 1, and
// the unmutated profile passes the same traces (so the detection is the
// mutation's).
func TestZooDetectsEveryMutation(t *testing.T) {
	for _, e := range Zoo {
		t.Run(e.Mutation, func(t *testing.T) {
			d, err := Detect(context.Background(), e, 1, 0, 3000)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Detected {
				t.Fatalf("%s on %s: not detected in %d traces", e.Mutation, e.Profile, d.Traces)
			}
			t.Logf("detected after %d traces (%v) by %s: %s", d.Traces, d.Time.Round(time.Millisecond), d.Outcome.Property, d.Outcome.Detail)
			clean := &Run{Trace: d.Outcome.Counterexample}
			r := runOne(context.Background(), model.New(), nil, clean.Trace)
			if p, _ := PropertyByName(d.Outcome.Property); p.Check(r) != nil && p.Name != "agrees-with-reference" {
				t.Fatalf("the unmutated model fails %s on the same trace too", p.Name)
			}
		})
	}
}
