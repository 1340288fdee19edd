package fuzz

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestZooSurvey (ZOO_SURVEY=1) attacks every mutation of both zoos once,
// from seed 1000, as `check --profile P --time 60s --mutate M` would, and
// logs the time to detect and the signature: a quick look at the table
// BenchmarkZoo measures properly.
func TestZooSurvey(t *testing.T) {
	if os.Getenv("ZOO_SURVEY") == "" {
		t.Skip("ZOO_SURVEY not set")
	}
	for _, e := range Zoo {
		d, err := Detect(context.Background(), e, 1000, DetectLimits{Budget: 60 * time.Second, RunTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		sig := "-"
		if d.Detected {
			sig = d.Outcome.Property + " " + d.Outcome.Violation.Signature()
		}
		t.Logf("%-30s %-32s detected=%v %6.2fs %s", e.Mutation, e.Profile, d.Detected, d.Time.Seconds(), sig)
	}
}
