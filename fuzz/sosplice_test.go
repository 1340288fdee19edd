package fuzz

import (
	"context"
	"path/filepath"
	"strings"
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

// TestSoSpliceCorpusHolds: every FreeBSD port, the splice loop among
// them, satisfies every property on the campaign model, but for the
// finding's known failure; and the properties read the loop's bytes as
// looped (stream-integrity does not judge their order).
func TestSoSpliceCorpusHolds(t *testing.T) {
	m, err := NewCampaignModel(nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../testdata/traces/freebsd/*.trace")
	if err != nil || len(files) < 10 {
		t.Fatalf("%d traces (%v)", len(files), err)
	}
	for _, f := range files {
		tr := loadTrace(t, f)
		r := runOne(context.Background(), m, nil, tr)
		for _, pr := range Properties {
			v, ok := AsViolation(pr.Check(r))
			if !ok {
				continue
			}
			v.Property = pr.Name
			if _, known := MatchKnown("freebsd-so-splice", v); !known {
				t.Errorf("%s: %s fails: %v", f, pr.Name, v)
			}
		}
		if strings.HasSuffix(f, "/loop.trace") && !routesOf(tr).looped["s0"] {
			t.Errorf("%s: s0's bytes are not seen as looped", f)
		}
	}
}
