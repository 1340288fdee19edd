package netstack

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// The loopback-splice RFC's defect (a) with real TCP segments in flight:
// the exploring scheduler holds the topology's link segments and
// delivers them one per "kworker" pick (model.HoldingTransport), so the
// 17 TCP bytes ts sends after the ring's 16383 can still be on the wire
// (or a loopback backlog) when ts's "X" finds b's sk_receive_queue empty
// and goes into the ring.

const (
	inflightScenario = "../testdata/traces/loopback/order_inflight.trace"
	inflightCEDir    = "../testdata/traces/counterexamples/netstack/"
)

// inflightCE is the shrunk counterexample, found on two hosts.
const inflightCE = inflightCEDir + "ring_overtakes_held_segments.trace"

// inflightTopologies are the topologies the in-flight search runs on;
// the counterexample is shrunk on the first.
var inflightTopologies = []struct {
	name string
	opts TransportOptions
}{
	{"two-host", TransportOptions{TwoHost: true}},
	{"loopback", TransportOptions{}},
}

// shrinkRuns bounds the search of each shrinking step: the defect
// shows within a few runs, and a removal that loses it costs them all.
const shrinkRuns = 30

// ringOvertakesTCP is defect (a) in o: b received the ring's "X" (sent
// after the 16400 pattern bytes) before the last of them.
func ringOvertakesTCP(o *model.Outcome) bool {
	got := o.Received("b")
	x := bytes.IndexByte(got, 'X')
	want := trace.Pattern(0, 16400)
	return x >= 0 && x < len(want) && bytes.Equal(got[:x], want[:x])
}

// acceptRingOvertakesTCP accepts defect (a) as the search reports it:
// stream-integrity's reordering of ring and TCP bytes.
func acceptRingOvertakesTCP(o *model.Outcome, v *fuzz.Violation) bool {
	return v.Property == "stream-integrity" && v.Signature() == rfcOrdering && ringOvertakesTCP(o)
}

// rfcOrdering is the signature of the RFC's defect (a).
const rfcOrdering = "reordered@ring/tcp"

// xWrite returns the ring write of ts's "X" (a's 1-byte write).
func xWrite(o *model.Outcome) (model.RingWrite, bool) {
	for _, w := range o.RingWrites {
		if w.Sock == "a" && w.Bytes == 1 {
			return w, true
		}
	}
	return model.RingWrite{}, false
}

// heldAtX is defect (a) in its in-flight form: when "X" went into the
// ring, TCP payload was held on the link.
func heldAtX(o *model.Outcome) bool {
	w, ok := xWrite(o)
	return ringOvertakesTCP(o) && ok && w.HeldBytes > 0
}

func loadTraceFile(t *testing.T, path string) *trace.Trace {
	t.Helper()
	tr, err := trace.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// render is a run's observations, one line each.
func render(obs []trace.Observation) string {
	var b strings.Builder
	for _, o := range obs {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// campaignBackend is the netstack backend as campaigns run it (`check
// --backend netstack`): liveness checks and byte provenance on, which
// the search's properties judge.
func campaignBackend(tb testing.TB, opts TransportOptions) *model.Backend {
	tb.Helper()
	be, err := NewBackend(opts, model.Config{Liveness: true, Provenance: true})
	if err != nil {
		tb.Fatal(err)
	}
	return be
}

func TestRingOvertakesHeldSegments(t *testing.T) {
	for i, topo := range inflightTopologies {
		t.Run(topo.name, func(t *testing.T) {
			testRingOvertakesHeldSegments(t, topo.opts, i == 0)
		})
	}
}

func testRingOvertakesHeldSegments(t *testing.T, opts TransportOptions, shrink bool) {
	tr := loadTraceFile(t, inflightScenario)
	be := campaignBackend(t, opts)
	ctx := context.Background()

	// The search, as fuzz.TestSearchRFCDefects runs it on RefTCP.
	cfg := fuzz.SearchConfig{Strategy: trace.StrategyPCT, Runs: 150, Accept: acceptRingOvertakesTCP}
	start := time.Now()
	found, err := fuzz.SearchSchedules(ctx, be, tr, trace.Options{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if found.Violation == nil {
		t.Fatalf("no ring-overtakes-TCP violation in %d runs", found.Runs)
	}
	t.Logf("found after %d runs in %v: %v", found.Runs, time.Since(start), found.Violation)
	w, ok := xWrite(found.Outcome)
	if !ok || w.HeldSegs == 0 || w.HeldBytes == 0 {
		t.Fatalf("the violating run wrote \"X\" into the ring with no TCP payload held on the link: %+v", found.Outcome.RingWrites)
	}
	t.Logf("at the ring write of \"X\": %d segments held on the link, %d payload bytes", w.HeldSegs, w.HeldBytes)

	if shrink {
		// Shrunk in its in-flight form, it is the saved counterexample.
		start := time.Now()
		scfg := fuzz.SearchConfig{Strategy: trace.StrategyPCT, Runs: shrinkRuns,
			Accept: func(o *model.Outcome, v *fuzz.Violation) bool { return acceptRingOvertakesTCP(o, v) && heldAtX(o) }}
		res, err := fuzz.ShrinkSchedules(ctx, be, tr, trace.Options{}, scfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("shrunk in %v", time.Since(start))
		if os.Getenv("SPLICECHECK_UPDATE") != "" {
			note := "# ring_overtakes_held_segments: defect (a) of the loopback-splice RFC on the netstack backend, with the 17 TCP bytes\n" +
				"# after the ring's 16383 held on the a>b Link while \"X\" goes into the ring (the exploring\n" +
				"# scheduler holds segments and delivers one per kworker pick). Found by `pct` search of\n" +
				"# testdata/traces/loopback/order_inflight.trace on two hosts, shrunk\n" +
				"# (netstack.TestRingOvertakesHeldSegments); the same schedule holds them on loopback.\n" +
				"# Replay: splicecheck run --backend netstack --two-host FILE (or without --two-host)\n"
			if err := os.MkdirAll(inflightCEDir, 0o755); err != nil {
				t.Fatal(err)
			}
			file := strings.TrimPrefix(inflightCE, "../")
			if err := os.WriteFile(inflightCE, fuzz.CounterexampleFile(ctx, be, file, res.Header(), note, res.Counterexample), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if saved := loadTraceFile(t, inflightCE); !trace.Equal(saved, res.Counterexample) {
			t.Errorf("shrunk counterexample differs from %s:\n%s", inflightCE, res.Counterexample.Format())
		}
	}

	// The saved trace replays the same run twice: same observations,
	// the same verdict (as `splicecheck run --backend netstack` gives
	// it, fuzz.Replay), the same segments held at the ring write.
	saved := loadTraceFile(t, inflightCE)
	var first string
	var firstW model.RingWrite
	for i := 0; i < 2; i++ {
		o, err := be.ExploreRun(ctx, saved, trace.Options{}, saved.Schedule)
		if err != nil {
			t.Fatal(err)
		}
		if !heldAtX(o) {
			t.Fatalf("replay %d of %s: ring writes %+v, run error %v; want ring bytes overtaking held TCP bytes", i, inflightCE, o.RingWrites, o.Err)
		}
		r, v, err := fuzz.Replay(ctx, be, saved, "stream-integrity")
		if err != nil {
			t.Fatal(err)
		}
		if v == nil || v.Signature() != rfcOrdering || render(r.Obs) != render(o.Obs) {
			t.Fatalf("replay %d of %s: %v; observations\n%s\nExploreRun:\n%s", i, inflightCE, v, render(r.Obs), render(o.Obs))
		}
		w, _ := xWrite(o)
		out := render(o.Obs) + v.Error()
		if i == 0 {
			first, firstW = out, w
			t.Logf("replay: %v; %d segments (%d bytes) held at the ring write", v, w.HeldSegs, w.HeldBytes)
		} else if out != first || w != firstW {
			t.Errorf("replay %d differs:\n%s %+v\nfirst:\n%s %+v", i, out, w, first, firstW)
		}
	}
	// trace.Run (`splicecheck run --backend netstack`) replays the same
	// observations.
	obs, err := trace.Observe(ctx, be, saved, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out := render(obs); !strings.HasPrefix(first, out) {
		t.Errorf("trace.Run:\n%s\nExploreRun:\n%s", out, first)
	}
}

// countingTransport counts the HoldSegments(true) calls and the
// deliveries the model makes.
type countingTransport struct {
	*transport
	holds, delivered *int
}

func (c countingTransport) HoldSegments(on bool) error {
	if on {
		*c.holds++
	}
	return c.transport.HoldSegments(on)
}

func (c countingTransport) DeliverOne() error {
	*c.delivered++
	return c.transport.DeliverOne()
}

// TestHoldingOnlyWhenExploring: outside explore mode the model never
// holds segments (they flow, and Settle delivers them, as before); an
// exploring run holds them and delivers them one by one.
func TestHoldingOnlyWhenExploring(t *testing.T) {
	tr := loadTraceFile(t, inflightScenario)
	ctx := context.Background()
	for _, topo := range inflightTopologies {
		var holds, delivered int
		be, err := model.NewWithConfig(model.Config{Name: "netstack", Transport: func() (model.Transport, error) {
			tp, err := newTransport(topo.opts)
			if err != nil {
				return nil, err
			}
			return countingTransport{tp, &holds, &delivered}, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		plain := *tr
		plain.Schedule = nil
		if _, err := trace.Observe(ctx, be, &plain, trace.Options{}); err != nil {
			t.Fatalf("%s: FIFO run: %v", topo.name, err)
		}
		if holds != 0 || delivered != 0 {
			t.Fatalf("%s: a FIFO run held segments: %d holds, %d deliveries", topo.name, holds, delivered)
		}
		o, err := be.ExploreRun(ctx, tr, trace.Options{}, &trace.Schedule{Strategy: trace.StrategyRandom, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if holds != 1 || delivered == 0 {
			t.Fatalf("%s: an exploring run: %d holds, %d deliveries; want 1 and some", topo.name, holds, delivered)
		}
		t.Logf("%s: exploring run: %d segments delivered one by one, %d decisions", topo.name, delivered, o.Decisions)
	}
}

// TestBacklogNotReentered replays the campaign's model-sound failure: a
// psock backlog work drained on a task's goroutine must not yield, or
// the kworker runs the same work again under it (a double free of skb).
func TestBacklogNotReentered(t *testing.T) {
	tr := loadTraceFile(t, inflightCEDir+"backlog_reentered_at_yield.trace")
	for _, topo := range inflightTopologies {
		if _, err := trace.Observe(context.Background(), netstackBackend(t, topo.opts), tr, trace.Options{}); err != nil {
			t.Errorf("%s: %v", topo.name, err)
		}
	}
	if _, err := trace.Observe(context.Background(), model.New(), tr, trace.Options{}); err != nil {
		t.Errorf("model: %v", err)
	}
}
