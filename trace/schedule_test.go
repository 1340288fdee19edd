package trace

import (
	"strings"
	"testing"
)

// TestScheduleStrategies parses, prints and compares the exploring forms
// of the schedule directive, and rejects malformed ones with FILE:LINE:COL.
func TestScheduleStrategies(t *testing.T) {
	for _, c := range []struct {
		src  string
		want Schedule
	}{
		{"schedule random 42\nconn a b\n", Schedule{Strategy: StrategyRandom, Seed: 42}},
		{"schedule pct 3 7\nconn a b\n", Schedule{Strategy: StrategyPCT, Depth: 3, Seed: 7}},
		{"schedule picks 0 2 1\nconn a b\n", Schedule{Strategy: StrategyPicks, Picks: []int{0, 2, 1}}},
	} {
		tr, err := Parse("x.trace", []byte(c.src))
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		s := tr.Schedule
		if s.Strategy != c.want.Strategy || s.Seed != c.want.Seed || s.Depth != c.want.Depth || len(s.Picks) != len(c.want.Picks) || s.HasSeed {
			t.Errorf("%q: got %+v", c.src, s)
		}
		if got := tr.Format(); got != c.src {
			t.Errorf("Format: %q, want %q", got, c.src)
		}
		back, err := Parse("y.trace", []byte(tr.Format()))
		if err != nil || !Equal(tr, back) {
			t.Errorf("%q: round trip: %v", c.src, err)
		}
	}
	// A thread named like a strategy still works as a thread order.
	tr, err := Parse("x.trace", []byte("schedule random main\n@random conn a b\n"))
	if err != nil || tr.Schedule.Strategy != "" || strings.Join(tr.Schedule.Threads, " ") != "random main" {
		t.Errorf("thread order: %+v, %v", tr.Schedule, err)
	}
	for _, c := range []struct{ src, want string }{
		{"schedule pct 0 1\n", "x.trace:1:14: schedule pct depth 0 outside [1, 64]"},
		{"schedule pct 3\n", "x.trace:1:15: missing seed"},
		{"schedule random 1x\n", "x.trace:1:17: bad schedule seed \"1x\""},
		{"schedule picks 1 y\n", "x.trace:1:18: bad schedule pick \"y\""},
	} {
		_, err := Parse("x.trace", []byte(c.src))
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: %v, want %s", c.src, err, c.want)
		}
	}
}
