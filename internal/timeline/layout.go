package timeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Geometry of the page's timeline, in CSS pixels.
const (
	laneH   = 34   // a lane: its op bar above, its activity band below
	bandH   = 10   // a thread lane's activity band (on the CPU, asleep)
	rowGap  = 8    // between two rows
	chartH  = 40   // a queue's chart
	axisH   = 58   // the mark's label, the virtual-time and step axes above the lanes
	headH   = 22   // the "queues" heading between lanes and charts
	targetW = 1040 // the plot's width when the steps allow it
	minColW = 3.0  // a step's narrowest column: wider plots scroll
	maxColW = 18.0
	gapCols = 10 // the columns of a truncation gap
	charW   = 6.2
)

// kernelLanes are the kernel contexts' lanes in the order they are
// drawn (trace.EventKernelStart).
var kernelLanes = []string{"softirq", "kworker", "strparser", "timer", "runner", "teardown"}

// queueOrder is the order of an object's queues (trace.EventCounter);
// the ring's four cursors share one chart.
var queueOrder = []string{"sk_receive_queue", "ingress_skb", "ingress_msg", "pipe", "ring", "psock refcnt"}

// ringCursors are the cursors of a ring chart, in legend order.
var ringCursors = []string{"ring head", "ring tail", "ring cached_tail", "ring cached_head"}

// plot is the geometry of one page: what the template draws.
type plot struct {
	W, H   int
	Rows   []rowLabel
	Bars   []bar
	Paths  []path
	Ticks  []tick
	Gap    *box
	Mark   *markLine
	colW   float64
	gapAt  int // the first column of the gap; -1 without one
	gapEnd int // the step after the gap
	gapOff int // the columns the gap replaces the dropped steps with
}

type rowLabel struct {
	Y          int
	Text, Note string
	Kind       string   // "thread", "kernel", "chart", "heading"
	Cursors    []string // a ring chart's cursors, in colour
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Text       string // drawn inside when it fits
	Title      string // the tooltip
	TX, TY     float64
}

type path struct {
	D, Class, Title string
}

type tick struct {
	X          float64
	Label      string
	Y1, Y2, TY int
	Class      string
}

type box struct{ X, Y, W, H float64 }

type markLine struct {
	X      float64
	Y1     int
	Y2     int
	Label  string // its accessible name
	Text   string // what it shows
	Anchor string // the label's text-anchor: "end" when it would run off the plot
	DX     int
}

// newPlot sizes the columns of tl's steps.
func newPlot(tl *trace.Timeline) *plot {
	p := &plot{gapAt: -1}
	cols := tl.Steps
	if tl.Dropped > 0 && tl.Gap > 0 && tl.Gap < len(tl.Events) {
		p.gapAt = tl.Events[tl.Gap-1].Step + 1
		p.gapEnd = tl.Events[tl.Gap].Step
		p.gapOff = p.gapEnd - p.gapAt - gapCols
		cols -= p.gapOff
	}
	p.colW = min(max(float64(targetW)/float64(max(cols, 1)), minColW), maxColW)
	p.W = int(p.colW*float64(cols)) + 2
	return p
}

// x is the left edge of step s's column.
func (p *plot) x(s int) float64 {
	if p.gapAt >= 0 && s >= p.gapEnd {
		s -= p.gapOff
	}
	return float64(s) * p.colW
}

// span is the box from step a's column to step b's, inclusive.
func (p *plot) span(a, b int) (x, w float64) {
	x = p.x(a)
	return x, p.x(b) + p.colW - x
}

// fit cuts s to what w pixels of text hold, "" when too little does.
func fit(s string, w float64) string {
	n := int((w - 4) / charW)
	if n < 3 {
		return ""
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// threadOrder is the trace's threads in the order of their first ops.
func threadOrder(tr *trace.Trace) []string {
	var out []string
	seen := map[string]bool{}
	for i := range tr.Ops {
		if n := tr.Ops[i].ThreadName(); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// opText is op i as its thread's lane shows it: without the thread.
func opText(tr *trace.Trace, i int) string {
	op := &tr.Ops[i]
	return strings.TrimPrefix(op.String(), "@"+op.Thread+" ")
}

// opSpan is what the log says of one op.
type opSpan struct {
	start, end int // steps; -1 when not in the log
	at, endAt  time.Duration
	result     string
}

// opSpans pairs the log's op starts and ends, by op index.
func opSpans(tl *trace.Timeline, n int) []opSpan {
	out := make([]opSpan, n)
	for i := range out {
		out[i] = opSpan{start: -1, end: -1}
	}
	for _, ev := range tl.Events {
		if ev.Op < 0 || ev.Op >= n {
			continue
		}
		switch ev.Kind {
		case trace.EventOpStart:
			out[ev.Op].start, out[ev.Op].at = ev.Step, ev.At
		case trace.EventOpEnd:
			out[ev.Op].end, out[ev.Op].endAt, out[ev.Op].result = ev.Step, ev.At, ev.Name
		}
	}
	return out
}

// threadLane draws thread name's ops (bars from their start to their
// end; one still running at the end of the log lasts to its end) and
// its activity band: its slices on the CPU, its sleeps (named by the
// kernel function) and its yields, each until the next slice.
func (p *plot) threadLane(tl *trace.Timeline, tr *trace.Trace, ops []opSpan, name string, y int, markOp int) {
	last := tl.Steps - 1
	first := 0
	if p.gapAt >= 0 {
		first = p.gapEnd // where a span whose start was dropped begins
	}
	var labeled []labeledBar
	for i, o := range ops {
		if tr.Ops[i].ThreadName() != name || o.start < 0 && o.end < 0 {
			continue
		}
		a, b, cls := o.start, o.end, "op"
		if a < 0 {
			a = first
		}
		if b < 0 {
			b, cls = last, "op open"
		}
		if i == markOp {
			cls += " marked"
		}
		text := fmt.Sprintf("%d: %s", tr.Ops[i].Pos.Line, opText(tr, i))
		res := o.result
		if o.end < 0 {
			res = "still running at the end of the run"
		}
		text += " → " + res
		x, w := p.span(a, b)
		labeled = append(labeled, labeledBar{bar{X: x, Y: float64(y), W: w, H: laneH - bandH - 2, Class: cls,
			TX: x + 3, TY: float64(y) + 15, Title: fmt.Sprintf("line %s, steps %d–%d, %v → %v", text, a, b, o.at, o.endAt)}, text})
	}
	p.addLabeled(labeled)
	by := float64(y + laneH - bandH)
	open := -1 // the step of the slice or park that is open
	openCls, openWhy := "", ""
	closeBand := func(end int) {
		if open < 0 {
			return
		}
		x, w := p.span(open, end)
		b := bar{X: x, Y: by, W: w, H: bandH, Class: openCls, Title: fmt.Sprintf("%s: steps %d–%d", openWhy, open, end)}
		if openCls == "sleep" {
			b.Text, b.TX, b.TY = fit(openWhy, w), x+2, by+8
		}
		p.Bars = append(p.Bars, b)
		open = -1
	}
	for _, ev := range tl.Events {
		if ev.Lane != name {
			continue
		}
		switch ev.Kind {
		case trace.EventRun:
			closeBand(ev.Step)
			open, openCls, openWhy = ev.Step, "cpu", name+" on the CPU"
		case trace.EventPark:
			if open < 0 {
				open = first
			}
			closeBand(ev.Step)
			switch {
			case strings.HasPrefix(ev.Name, "sleeps"):
				open, openCls, openWhy = ev.Step, "sleep", ev.Name
			case ev.Name == "yields":
				open, openCls, openWhy = ev.Step, "yield", "preempted at a yield point"
			}
		}
	}
	closeBand(last)
}

// kernelSpan is a run of one kernel context, or of several of the same
// work one after the other (n).
type kernelSpan struct {
	a, b int
	name string
	on   string
	n    int
}

// kernelLane draws lane's kernel contexts; consecutive runs of the same
// work (a timer that fires a hundred times in a row) are one bar.
func (p *plot) kernelLane(tl *trace.Timeline, lane string, y int) {
	var spans []kernelSpan
	var stack []kernelSpan
	first := 0
	if p.gapAt >= 0 {
		first = p.gapEnd
	}
	add := func(s kernelSpan) {
		if n := len(spans); n > 0 && spans[n-1].name == s.name && spans[n-1].on == s.on && spans[n-1].b+1 == s.a {
			spans[n-1].b, spans[n-1].n = s.b, spans[n-1].n+1
			return
		}
		spans = append(spans, s)
	}
	for _, ev := range tl.Events {
		if ev.Lane != lane {
			continue
		}
		switch ev.Kind {
		case trace.EventKernelStart:
			stack = append(stack, kernelSpan{a: ev.Step, name: ev.Name, on: ev.On, n: 1})
		case trace.EventKernelEnd:
			s := kernelSpan{a: first, name: ev.Name, n: 1}
			if n := len(stack); n > 0 {
				s, stack = stack[n-1], stack[:n-1]
			}
			s.b = ev.Step
			add(s)
		}
	}
	for i := len(stack) - 1; i >= 0; i-- {
		s := stack[i]
		s.b = tl.Steps - 1
		add(s)
	}
	var labeled []labeledBar
	for _, s := range spans {
		label := s.name
		if s.n > 1 {
			label = fmt.Sprintf("%s ×%d", s.name, s.n)
		}
		title := label
		if s.on != "" {
			title += " (in " + s.on + "'s system call)"
		}
		x, w := p.span(s.a, s.b)
		labeled = append(labeled, labeledBar{bar{X: x, Y: float64(y + 4), W: w, H: laneH - 8, Class: "k " + lane,
			TX: x + 2, TY: float64(y) + 21, Title: fmt.Sprintf("%s: %s, steps %d–%d", lane, title, s.a, s.b)}, label})
	}
	p.addLabeled(labeled)
}

// labeledBar is a bar of a lane and the label it should carry.
type labeledBar struct {
	bar
	label string
}

// addLabeled adds one lane's bars, in the order they start, each
// labeled as far as the next one leaves room: a label runs on past its
// bar's end over the empty lane, so that a short op still names itself.
func (p *plot) addLabeled(bs []labeledBar) {
	for i, b := range bs {
		room := float64(p.W) - b.X
		if i+1 < len(bs) {
			room = bs[i+1].X - b.X
		}
		b.Text = fit(b.label, room)
		p.Bars = append(p.Bars, b.bar)
	}
}

// lanesOf lists the kernel lanes the log has, in drawing order.
func lanesOf(tl *trace.Timeline) []string {
	has := map[string]bool{}
	for _, ev := range tl.Events {
		if ev.Kind == trace.EventKernelStart || ev.Kind == trace.EventKernelEnd {
			has[ev.Lane] = true
		}
	}
	var out []string
	for _, l := range kernelLanes {
		if has[l] {
			out = append(out, l)
		}
	}
	return out
}
