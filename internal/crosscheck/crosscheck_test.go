package crosscheck

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// countBackend answers every op with ok, except fionread, which returns the
// number of sends so far plus bias. flip makes every second run of it add
// one more (a backend that disagrees with itself).
type countBackend struct {
	name string
	bias int64
	flip bool
	runs *atomic.Int64
}

func (b countBackend) Name() string { return b.name }
func (b countBackend) Run(ctx context.Context, t *trace.Trace, o trace.Options) (trace.RunResult, error) {
	return trace.RunOps(ctx, b, t, o)
}
func (b countBackend) Open(context.Context, *trace.Trace, trace.Options) (trace.Executor, error) {
	extra := int64(0)
	if b.flip && b.runs.Add(1)%2 == 0 {
		extra = 1
	}
	return &countExec{bias: b.bias + extra}, nil
}

type countExec struct {
	bias, sends int64
}

func (*countExec) StartThread(string) error { return nil }
func (*countExec) Blocked(string) bool      { return false }
func (*countExec) Close() error             { return nil }
func (e *countExec) Exec(_ context.Context, c *trace.Call) trace.Result {
	switch c.Op.Kind {
	case trace.OpSend:
		e.sends++
		return trace.Count(c.Op.Size)
	case trace.OpFIONREAD:
		if e.sends == 0 {
			return trace.Count(0)
		}
		return trace.Count(e.sends + e.bias)
	}
	return trace.OK()
}

func parse(t *testing.T, src string) *trace.Trace {
	tr, err := trace.Parse("t.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const divergent = `conn a b
conn c d
poll a
send a 10
state c
fionread b
send c 1
poll d
`

func TestCompareAndShrink(t *testing.T) {
	ctx := context.Background()
	good, bad := countBackend{name: "good"}, countBackend{name: "bad", bias: 1}
	tr := parse(t, divergent)
	divs, flaky, err := Compare(ctx, good, bad, tr, trace.Options{})
	if err != nil || flaky || len(divs) != 1 || divs[0].Op != "fionread b" {
		t.Fatalf("divs %+v flaky %v err %v", divs, flaky, err)
	}
	if d, _, _ := Compare(ctx, good, good, tr, trace.Options{}); len(d) != 0 {
		t.Fatalf("a backend diverges from itself: %+v", d)
	}
	small, err := Shrink(ctx, good, bad, tr, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := small.Format(); got != "conn a b\nsend a 10\nfionread b\n" {
		t.Fatalf("shrunk to\n%s", got)
	}
}

func TestFlakyReferenceIsNotAFinding(t *testing.T) {
	var runs atomic.Int64
	runs.Store(1) // flaky's next run adds one (diverges); its re-run does not
	good, flaky := countBackend{name: "good"}, countBackend{name: "flaky", flip: true, runs: &runs}
	divs, isFlaky, err := Compare(context.Background(), good, flaky, parse(t, divergent), trace.Options{})
	if err != nil || !isFlaky || len(divs) != 1 || divs[0].Op != "fionread b" {
		t.Fatalf("divs %+v flaky %v err %v", divs, isFlaky, err)
	}
}

func TestCampaign(t *testing.T) {
	good, bad := countBackend{name: "good"}, countBackend{name: "bad", bias: 1}
	next := func(seed int) *trace.Trace {
		if seed%3 == 0 {
			return parse(t, divergent)
		}
		return parse(t, "conn a b\nfionread a\n")
	}
	// The same report with one job or several.
	for _, jobs := range []int{1, 4} {
		r, err := Campaign(context.Background(), good, bad, next, 0, 9, jobs, trace.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Runs != 9 || r.Agree != 6 || len(r.Findings) != 3 || r.Findings[0].Seed != 0 || r.Findings[1].Seed != 3 || r.Findings[2].Seed != 6 {
			t.Fatalf("jobs %d: %+v", jobs, r)
		}
		r, _ = Campaign(context.Background(), good, bad, next, 0, 9, jobs, trace.Options{}, func(r Report) bool { return len(r.Findings) > 0 })
		if r.Runs != 1 || r.Findings[0].Seed != 0 || !strings.Contains(r.Findings[0].Trace.Format(), "fionread b") {
			t.Fatalf("jobs %d: stop not honoured: %+v", jobs, r)
		}
	}
}

// failBackend cannot run a trace that has a poll op (a model bug, say).
type failBackend struct{ countBackend }

var errPlanted = errors.New("planted failure")

func (b failBackend) Run(ctx context.Context, t *trace.Trace, o trace.Options) (trace.RunResult, error) {
	return trace.RunOps(ctx, b, t, o)
}
func (b failBackend) Open(ctx context.Context, t *trace.Trace, o trace.Options) (trace.Executor, error) {
	for _, op := range t.Ops {
		if op.Kind == trace.OpPoll {
			return nil, errPlanted
		}
	}
	return b.countBackend.Open(ctx, t, o)
}

// TestCampaignRecordsFailuresOfA checks that a trace backend A cannot run
// is a finding (not the end of the campaign) and shrinks to the op that
// breaks A.
func TestCampaignRecordsFailuresOfA(t *testing.T) {
	ctx := context.Background()
	a, b := failBackend{countBackend{name: "a"}}, countBackend{name: "b"}
	traces := []*trace.Trace{parse(t, "conn a b\nsend a 1\n"), parse(t, divergent), parse(t, "conn a b\nfionread a\n")}
	r, err := Campaign(ctx, a, b, func(seed int) *trace.Trace { return traces[seed] }, 0, len(traces), 1, trace.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Runs != 3 || r.Agree != 2 || len(r.Findings) != 1 || !errors.Is(r.Findings[0].Err, ErrRunA) || !errors.Is(r.Findings[0].Err, errPlanted) {
		t.Fatalf("report %+v", r)
	}
	small, err := Shrink(ctx, a, b, r.Findings[0].Trace, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := small.Format(); got != "conn a b\npoll a\n" {
		t.Fatalf("shrunk to:\n%s", got)
	}
}
