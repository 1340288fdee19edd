package timeline

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// testTrace: line 1 the profile, ops on lines 2 to 4.
const testTrace = "profile linux-6.18\nconn a b\n@t1 recv b 10\nsend a \"<script>x</script>\"\n"

func parse(t *testing.T) *trace.Trace {
	t.Helper()
	tr, err := trace.Parse("t.trace", []byte(testTrace))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// log builds a timeline: conn (op 0) on main, then t1's recv (op 1)
// sleeps in tcp_recvmsg_locked while main's send (op 2) runs a softirq
// that queues 10 bytes; the recv returns them.
func log(fault bool) *trace.Timeline {
	evs := []trace.TimelineEvent{
		{Kind: trace.EventRun, Lane: "main"},
		{Kind: trace.EventOpStart, Lane: "main", Op: 0},
		{Kind: trace.EventOpEnd, Lane: "main", Op: 0, Name: "ok"},
		{Kind: trace.EventPark, Lane: "main"},
		{Kind: trace.EventRun, Lane: "t1"},
		{Kind: trace.EventOpStart, Lane: "t1", Op: 1},
		{Kind: trace.EventPark, Lane: "t1", Name: "sleeps in tcp_recvmsg_locked"},
		{Kind: trace.EventRun, Lane: "main"},
		{Kind: trace.EventOpStart, Lane: "main", Op: 2},
		{Kind: trace.EventKernelStart, Lane: "softirq", Name: "tcp_v4_rcv", On: "main"},
		{Kind: trace.EventKernelEnd, Lane: "softirq", Name: "tcp_v4_rcv"},
		{Kind: trace.EventCounter, Lane: "b", Name: "sk_receive_queue", Value: 10},
		{Kind: trace.EventOpEnd, Lane: "main", Op: 2, Name: "10"},
		{Kind: trace.EventPark, Lane: "main"},
		{Kind: trace.EventRun, Lane: "t1", At: time.Millisecond},
		{Kind: trace.EventOpEnd, Lane: "t1", Op: 1, Name: "10 \"<b>\"", At: time.Millisecond},
		{Kind: trace.EventCounter, Lane: "b", Name: "sk_receive_queue", Value: 0, At: time.Millisecond},
		{Kind: trace.EventPark, Lane: "t1", At: time.Millisecond},
	}
	if fault {
		evs = append(evs, trace.TimelineEvent{Kind: trace.EventFault, Name: "t.trace: at the end: model: leak", At: time.Millisecond})
	}
	step := 0
	for i := range evs {
		if evs[i].Kind == trace.EventCounter {
			evs[i].Step = step - 1
			continue
		}
		evs[i].Step = step
		step++
	}
	return &trace.Timeline{Events: evs, Steps: step}
}

// Locate finds the step by the violation's line (where its op returned),
// else by the run's fault, else at the end; an op that never returned
// is marked at the end, still running.
func TestLocate(t *testing.T) {
	tr := parse(t)
	for _, c := range []struct {
		name  string
		tl    *trace.Timeline
		line  int
		step  int
		op    int
		where string
	}{
		{"line", log(false), 3, 14, 1, "where the op of line 3 returned"},
		{"line beats fault", log(true), 4, 11, 2, "where the op of line 4 returned"},
		{"fault", log(true), 0, 16, -1, "where the model stopped the run"},
		{"end", log(false), 0, 15, -1, "at the end of the run"},
		{"line of no op", log(false), 1, 15, -1, "at the end of the run"},
	} {
		m, ok := Locate(c.tl, tr, c.line)
		if !ok || m.Step != c.step || m.Op != c.op || m.Why != c.where {
			t.Errorf("%s: %+v, want step %d op %d %q", c.name, m, c.step, c.op, c.where)
		}
	}
	unended := log(false)
	unended.Events = unended.Events[:14] // t1's recv never returns
	m, _ := Locate(unended, tr, 3)
	if m.Step != 12 || m.Op != 1 || !strings.Contains(m.Why, "still running") {
		t.Errorf("op still running: %+v", m)
	}
	if _, ok := Locate(&trace.Timeline{}, tr, 3); ok {
		t.Error("an empty log has a mark")
	}
}

func render(t *testing.T, p Page) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The page is self-contained (nothing it loads), escapes what the trace
// and the run say, marks the violation by its property and step, in its
// text and on the plot, and is the same bytes every time.
func TestRender(t *testing.T) {
	tr := parse(t)
	p := Page{Trace: tr, Timeline: log(false), Backend: "model", Profile: "linux-6.18",
		Verdict: &Verdict{Property: "stream-integrity", Violation: "property violated: line 3: b read <x>", Signature: "lost@tcp", Line: 3}}
	page := render(t, p)
	if page != render(t, p) {
		t.Fatal("two renders differ")
	}
	for _, re := range []string{`\ssrc=`, `\shref=`, `url\((?:'|")?(?:https?:|//)`, `@import`, `<link`, `<iframe`} {
		if regexp.MustCompile(re).MatchString(page) {
			t.Errorf("the page loads something (%s)", re)
		}
	}
	for _, want := range []string{
		`<h2>stream-integrity violated at step 14 [lost@tcp]</h2>`,
		`<g id="mark" role="img" aria-label="violation of stream-integrity at step 14">`,
		`Marked at step 14 (virtual time 1ms), where the op of line 3 returned.`,
		`b read &lt;x&gt;`,
		`&lt;script&gt;x&lt;/script&gt;`,
		`<tr id="op1" class="marked">`,
		`sleeps in tcp_recvmsg_locked`,
		`tcp_v4_rcv (in main&#39;s system call)`,
		`>b sk_receive_queue</text>`,
		`>softirq</text>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>x") || strings.Contains(page, `"<b>"`) {
		t.Error("trace text reaches the page unescaped")
	}
	if strings.Contains(page, "truncated") {
		t.Error("a full log is said to be truncated")
	}
}

// Without a verdict, a failed run is marked at its fault; a run that did
// not fail has no mark; a counterexample that holds says so.
func TestRenderWithoutViolation(t *testing.T) {
	tr := parse(t)
	failed := render(t, Page{Trace: tr, Timeline: log(true)})
	if !strings.Contains(failed, `aria-label="run failure at step 16"`) || !strings.Contains(failed, "model: leak") {
		t.Error("a failed run is not marked at its fault")
	}
	plain := render(t, Page{Trace: tr, Timeline: log(false)})
	if strings.Contains(plain, `id="mark"`) || !strings.Contains(plain, "no property judged") {
		t.Error("a run that did not fail is marked")
	}
	holds := render(t, Page{Trace: tr, Timeline: log(true), Verdict: &Verdict{Property: "no-teardown-leak"}})
	if strings.Contains(holds, `id="mark"`) || !strings.Contains(holds, "<h2>no-teardown-leak holds</h2>") {
		t.Error("a property that holds is marked")
	}
	if err := Render(&bytes.Buffer{}, Page{Trace: tr}); err == nil {
		t.Error("a page without a log rendered")
	}
}

// A truncated log says so and draws the gap; the spans cut by it start
// there, and the marked step after it is still found.
func TestRenderTruncated(t *testing.T) {
	tr := parse(t)
	tl := log(true)
	// Drop steps 5 to 9 (the starts of ops 1 and 2 and of the softirq,
	// t1's park, main's run) as a capped log would.
	var kept []trace.TimelineEvent
	for _, ev := range tl.Events {
		if ev.Step < 5 || ev.Step >= 10 {
			kept = append(kept, ev)
		}
	}
	tl.Events, tl.Dropped, tl.Gap = kept, 5, 5
	page := render(t, Page{Trace: tr, Timeline: tl, Verdict: &Verdict{Property: "p", Violation: "v", Line: 4}})
	for _, want := range []string{"5 events in the middle of the run are left out", `class="gap"`, `aria-label="violation of p at step 11"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
