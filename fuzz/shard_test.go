package fuzz

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// TestShardsMergeLikeOneRun: a campaign run as four shards and merged
// gives the verdicts the same campaign gives in one run: traces, known
// failures, the NEW failure (at the same trace, with the same shrunk
// counterexample), and coverage. The shards' results go through JSON, as
// between machines.
func TestShardsMergeLikeOneRun(t *testing.T) {
	if raceEnabled {
		t.Skip("five campaigns under the race detector: make test's zoo step runs it without")
	}
	ctx := context.Background()
	base := Campaign{Profiles: []string{"linux-6.18", "freebsd-so-splice"}, MaxTraces: 160, Seed: 40,
		Mutations: []string{"peek-consumes"}}
	one, err := Check(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	var shards []Shard
	for k := 0; k < 4; k++ {
		c := base
		c.Shard, c.Shards = k, 4
		outs, err := Check(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(ShardOf(c, outs))
		if err != nil {
			t.Fatal(err)
		}
		var s Shard
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, s)
	}
	merged, err := Merge(shards, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(merged), summary(one); got != want {
		t.Fatalf("merged shards:\n%s\none run:\n%s", got, want)
	}
	failed := 0
	for _, o := range one {
		if o.Failed {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("the campaign found no NEW failure: the test compares nothing of the failure path")
	}
	if _, err := Merge(shards[:3], ""); err == nil {
		t.Error("three of four shards merged")
	}
	if _, err := Merge(append(shards[:3:3], shards[0]), ""); err == nil {
		t.Error("shard 0 given twice merged")
	}
}

// summary renders what a campaign's verdicts say, but detection times.
func summary(outs []Verdict) string {
	s := ""
	for _, o := range outs {
		s += fmt.Sprintf("%s %s traces=%d known=%v failed=%v", o.Profile, o.Property, o.Traces, o.Known, o.Failed)
		if o.Failed {
			s += fmt.Sprintf(" at=%d %s\n%s", o.FailedAt, o.Violation.Signature(), o.Counterexample.Format())
		}
		n, m := o.Coverage.Count()
		s += fmt.Sprintf(" coverage=%d/%d runs=%d\n", n, m, o.Coverage.Runs())
	}
	return s
}
