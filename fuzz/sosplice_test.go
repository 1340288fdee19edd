package fuzz

import (
	"context"
	"testing"
)

// TestSoSpliceCounterResetOverrun: the so-splice-limits property flags
// FreeBSD's counter reset by a refused re-splice (the finding trace) with
// its own signature, a known failure of the profile.
func TestSoSpliceCounterResetOverrun(t *testing.T) {
	pr, _ := PropertyByName("so-splice-limits")
	m, err := NewCampaignModel(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := runOne(context.Background(), m, nil, loadTrace(t, "../testdata/traces/freebsd/finding_counter_reset_overrun.trace"))
	v, ok := AsViolation(pr.Check(r))
	if !ok {
		t.Fatalf("no violation (run error %v)", r.Err)
	}
	v.Property = pr.Name
	if v.Signature() != "over-max@counter-reset" {
		t.Fatalf("signature %s: %v", v.Signature(), v)
	}
	if _, known := MatchKnown("freebsd-so-splice", v); !known {
		t.Error("not a known failure of freebsd-so-splice")
	}
}
