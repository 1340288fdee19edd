package linux

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// The event log of a run: asked for, it pairs every op's start with its
// end on the op's thread, its steps never decrease, virtual time never
// goes back, the kernel contexts are on their lanes, the queues are
// logged as they change; the same trace gives the same log; not asked
// for, there is none.
func TestTimelineOfRun(t *testing.T) {
	src := "profile loopback-splice\nconn a b pair\n@w send a 3000\n@r recv b 100\n@r recv b 5000\nsleep 10\n"
	tr, err := trace.Parse("t.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	res, err := trace.Run(context.Background(), New(), tr, trace.Options{})
	if err != nil || res.Timeline != nil {
		t.Fatalf("without Options.Timeline: err %v, timeline %v", err, res.Timeline)
	}
	run := func() *trace.Timeline {
		res, err := trace.Run(context.Background(), New(), tr, trace.Options{Timeline: true})
		if err != nil || res.Timeline == nil {
			t.Fatalf("err %v, timeline %v", err, res.Timeline)
		}
		return res.Timeline
	}
	tl := run()
	if !reflect.DeepEqual(tl, run()) {
		t.Fatal("two runs of one trace give two logs")
	}
	starts, ends := map[int]trace.TimelineEvent{}, map[int]trace.TimelineEvent{}
	lanes, queues := map[string]bool{}, map[string]int64{}
	prev := trace.TimelineEvent{Step: -1}
	for _, ev := range tl.Events {
		if ev.Step < prev.Step || ev.At < prev.At || ev.Kind == trace.EventCounter && ev.Step != max(prev.Step, 0) {
			t.Fatalf("%+v after %+v", ev, prev)
		}
		prev = ev
		switch ev.Kind {
		case trace.EventOpStart:
			starts[ev.Op] = ev
		case trace.EventOpEnd:
			ends[ev.Op] = ev
		case trace.EventKernelStart:
			lanes[ev.Lane] = true
		case trace.EventCounter:
			queues[ev.Lane+" "+ev.Name] = max(queues[ev.Lane+" "+ev.Name], ev.Value)
		}
	}
	if tl.Steps != prev.Step+1 || tl.Dropped != 0 {
		t.Fatalf("steps %d, dropped %d, last event %+v", tl.Steps, tl.Dropped, prev)
	}
	for i := range tr.Ops {
		s, e := starts[i], ends[i]
		if s.Kind == 0 || e.Kind == 0 || s.Lane != tr.Ops[i].ThreadName() || e.Lane != s.Lane || e.Step <= s.Step {
			t.Errorf("op %d (%s): start %+v, end %+v", i, tr.Ops[i].String(), s, e)
		}
	}
	if e := ends[2]; !strings.HasPrefix(e.Name, "100 len=100 sha256=") {
		t.Errorf("recv's end carries %q, not its result", e.Name)
	}
	if ends[4].At-starts[4].At != 10_000_000 {
		t.Errorf("sleep 10 lasts %v of virtual time", ends[4].At-starts[4].At)
	}
	if !lanes["softirq"] || !lanes["teardown"] {
		t.Errorf("kernel lanes %v: want softirq and teardown", lanes)
	}
	// 3000 bytes went through b's ring: its head moved that far.
	if queues["b ring head"] != 3000 || queues["a psock refcnt"] == 0 {
		t.Errorf("queues %v", queues)
	}
}

// A run that fails logs its fault last, where the model stopped it.
func TestTimelineOfFailedRun(t *testing.T) {
	src := "profile loopback-splice\nschedule random 0\nconn a b pair\nclose a\nclose b\n"
	tr, err := trace.Parse("t.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewWithConfig(Config{Liveness: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := trace.Run(context.Background(), b, tr, trace.Options{Timeline: true})
	if err == nil || res.Timeline == nil {
		t.Fatalf("err %v, timeline %v", err, res.Timeline)
	}
	last := res.Timeline.Events[len(res.Timeline.Events)-1]
	if last.Kind != trace.EventFault || last.Name != err.Error() {
		t.Fatalf("last event %+v, run error %v", last, err)
	}
}

// The log is bounded: past its cap it keeps the first quarter and the
// last events, counts those left out, and logs again at the gap the
// counters whose last change was left out, so that the queues stay
// right after it.
func TestTimelineCap(t *testing.T) {
	k := newKernel(behaviour{}, nil)
	tl := newTimeline(k, 8) // a head of 2, a tail of 6
	for i := range 20 {
		tl.emit(trace.TimelineEvent{Kind: trace.EventRun, Lane: "main"})
		if i == 5 {
			tl.counter("a", "sk_receive_queue", 7)
		}
	}
	out := tl.finish()
	if out.Steps != 20 || out.Dropped != 20+1-8 || out.Gap != 2 {
		t.Fatalf("steps %d, dropped %d, gap %d", out.Steps, out.Dropped, out.Gap)
	}
	want := []int{0, 1, 14, 14, 15, 16, 17, 18, 19}
	var got []int
	for _, ev := range out.Events {
		got = append(got, ev.Step)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if c := out.Events[2]; c.Kind != trace.EventCounter || c.Lane != "a" || c.Value != 7 {
		t.Fatalf("at the gap: %+v, want a's queue carried", c)
	}
}
