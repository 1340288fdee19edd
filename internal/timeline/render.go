// Package timeline renders a run's event log (trace.Timeline) as one
// self-contained HTML page: one lane per trace thread (its ops from their
// start to their end, its slices on the CPU, its sleeps) and per kind of
// kernel context the model runs (softirq, kworker, strparser, timer, the
// runner's op timeouts, the teardown), the lengths of the queues over
// the run (sk_receive_queue, a psock's ingress queues, a pipe, a
// loopback-splice ring's four cursors), and the step where a property
// broke, marked (Locate). The x axis is the run's steps, with virtual
// time above it: on the model most of a run happens at one instant of
// virtual time.
//
// The page needs no network and no script (CSS and SVG are inline; a
// few lines of script only scroll the mark into view), and the same
// inputs give the same bytes.
package timeline

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Page is what one page shows.
type Page struct {
	Trace    *trace.Trace
	Timeline *trace.Timeline
	Backend  string
	Profile  string
	// Verdict is the property judged, nil when none was (an ordinary
	// trace).
	Verdict *Verdict
	// Version is the splicecheck that made the page.
	Version string
}

// Verdict is a property's judgment of the run.
type Verdict struct {
	Property string
	// Violation is the violation's message, "" when the property holds.
	Violation string
	Signature string
	// Line is the trace line the violation names (fuzz.Violation.Line),
	// 0 if none.
	Line int
}

//go:embed page.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"f": func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).Parse(pageTemplate))

// view is the template's data.
type view struct {
	Title, File, Backend, Profile, Schedule, Version string
	Events, Steps, Dropped                           int
	End                                              string
	Verdict                                          *verdictView
	Plot                                             *plot
	Ops                                              []opRow
	Lanes                                            []string // kernel lanes shown, for the legend
}

type verdictView struct {
	Class   string // "violated", "holds", "failed"
	Heading string
	Message string
	Where   string
	Label   string // the mark's accessible name
}

type opRow struct {
	Line                    int
	Thread, Op, Result      string
	Steps, Time, Class, Row string
}

// Render writes p's page to w.
func Render(w io.Writer, p Page) error {
	v, err := build(p)
	if err != nil {
		return err
	}
	return tmpl.Execute(w, v)
}

// build lays p out.
func build(p Page) (*view, error) {
	tl, tr := p.Timeline, p.Trace
	if tl == nil || tr == nil {
		return nil, fmt.Errorf("timeline: no event log to render")
	}
	v := &view{Title: "splicecheck timeline: " + tr.File, File: tr.File, Backend: p.Backend, Profile: p.Profile,
		Version: p.Version, Events: len(tl.Events), Steps: tl.Steps, Dropped: tl.Dropped}
	if s := tr.Schedule; s != nil {
		v.Schedule = strings.TrimSpace((&trace.Trace{Schedule: s}).Format())
	}
	if n := len(tl.Events); n > 0 {
		v.End = tl.Events[n-1].At.String()
	}
	mark, hasMark := markOf(p)
	v.Verdict = verdictOf(p, mark, hasMark)
	pl := newPlot(tl)
	v.Plot = pl
	ops := opSpans(tl, len(tr.Ops))
	markOp := -1
	if hasMark {
		markOp = mark.Op
	}
	y := axisH
	for _, th := range threadOrder(tr) {
		pl.Rows = append(pl.Rows, rowLabel{Y: y, Text: th, Note: "thread", Kind: "thread"})
		pl.threadLane(tl, tr, ops, th, y, markOp)
		y += laneH + rowGap
	}
	v.Lanes = lanesOf(tl)
	for _, l := range v.Lanes {
		pl.Rows = append(pl.Rows, rowLabel{Y: y, Text: l, Note: "kernel context", Kind: "kernel"})
		pl.kernelLane(tl, l, y)
		y += laneH + rowGap
	}
	if cs := charts(tl); len(cs) > 0 {
		pl.Rows = append(pl.Rows, rowLabel{Y: y, Text: "queue lengths", Kind: "heading"})
		y += headH
		for _, c := range cs {
			text, note, cursors := chartLabel(c)
			pl.Rows = append(pl.Rows, rowLabel{Y: y, Text: text, Note: note, Kind: "chart", Cursors: cursors})
			pl.chartRow(c, y, tl.Steps-1)
			y += chartH + rowGap
		}
	}
	pl.H = y + 4
	pl.axes(tl)
	if pl.gapAt >= 0 {
		pl.Gap = &box{X: pl.x(pl.gapAt), Y: axisH - 6, W: float64(gapCols) * pl.colW, H: float64(pl.H - axisH + 6)}
	}
	if hasMark {
		pl.Mark = &markLine{X: pl.x(mark.Step) + pl.colW/2, Y1: 16, Y2: pl.H, Label: v.Verdict.Label, Text: "✗ " + v.Verdict.Label, DX: 4}
		if pl.Mark.X+float64(len(pl.Mark.Text))*7 > float64(pl.W) {
			pl.Mark.Anchor, pl.Mark.DX = "end", -4
		}
	}
	v.Ops = opRows(tr, ops, markOp, tl.Dropped > 0)
	return v, nil
}

// markOf locates p's mark: the violation's step, or the run's fault
// when no property was judged.
func markOf(p Page) (Mark, bool) {
	switch {
	case p.Verdict != nil && p.Verdict.Violation != "":
		return Locate(p.Timeline, p.Trace, p.Verdict.Line)
	case p.Verdict == nil && fault(p.Timeline) != "":
		return Locate(p.Timeline, p.Trace, 0)
	}
	return Mark{}, false
}

// fault is the run's error, "" when it did not fail.
func fault(tl *trace.Timeline) string {
	for _, ev := range tl.Events {
		if ev.Kind == trace.EventFault {
			return ev.Name
		}
	}
	return ""
}

func verdictOf(p Page, m Mark, ok bool) *verdictView {
	where := func(what string) string {
		return fmt.Sprintf("Marked at step %d (virtual time %v), %s.", m.Step, m.At, m.Why)
	}
	switch {
	case p.Verdict != nil && p.Verdict.Violation != "":
		vv := &verdictView{Class: "violated", Message: p.Verdict.Violation,
			Heading: fmt.Sprintf("%s violated at step %d", p.Verdict.Property, m.Step),
			Label:   fmt.Sprintf("violation of %s at step %d", p.Verdict.Property, m.Step)}
		if p.Verdict.Signature != "" {
			vv.Heading += " [" + p.Verdict.Signature + "]"
		}
		if ok {
			vv.Where = where(p.Verdict.Property)
		}
		return vv
	case p.Verdict != nil:
		return &verdictView{Class: "holds", Heading: p.Verdict.Property + " holds",
			Message: "The run no longer violates the property the counterexample names."}
	case ok:
		return &verdictView{Class: "failed", Heading: fmt.Sprintf("the run failed at step %d", m.Step),
			Message: fault(p.Timeline), Where: where(""), Label: fmt.Sprintf("run failure at step %d", m.Step)}
	}
	return nil
}

// opRows is the table of the trace's ops: what each returned, and when
// (an op of which the log has neither end ran in its gap, if truncated).
func opRows(tr *trace.Trace, ops []opSpan, markOp int, truncated bool) []opRow {
	rows := make([]opRow, len(tr.Ops))
	for i, o := range ops {
		r := opRow{Line: tr.Ops[i].Pos.Line, Thread: tr.Ops[i].ThreadName(), Op: opText(tr, i), Result: o.result,
			Row: fmt.Sprintf("op%d", i)}
		switch {
		case o.start >= 0 && o.end >= 0:
			r.Steps, r.Time = fmt.Sprintf("%d–%d", o.start, o.end), span(o.at, o.endAt)
		case o.start >= 0:
			r.Steps, r.Time, r.Result = fmt.Sprintf("%d–", o.start), o.at.String()+" –", "(still running at the end of the run)"
		case o.end >= 0:
			r.Steps, r.Time = fmt.Sprintf("–%d", o.end), "– "+o.endAt.String()
		case truncated:
			r.Result = "(in the events left out)"
		default:
			r.Result = "(not run)"
		}
		if i == markOp {
			r.Class = "marked"
		}
		rows[i] = r
	}
	return rows
}

func span(a, b time.Duration) string {
	if a == b {
		return a.String()
	}
	return a.String() + " – " + b.String()
}

// axes draws the virtual time (a tick where it moves on) and the steps.
func (p *plot) axes(tl *trace.Timeline) {
	lastX := -1e9
	var at time.Duration = -1
	for _, ev := range tl.Events {
		if ev.Kind == trace.EventCounter || ev.At == at {
			continue
		}
		at = ev.At
		x := p.x(ev.Step)
		t := tick{X: x, Y1: 30, Y2: p.H, Class: "vt"}
		if x-lastX >= 64 {
			t.Label, t.TY, lastX = ev.At.String(), 27, x
		}
		p.Ticks = append(p.Ticks, t)
	}
	every := 1
	for _, k := range []int{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000} {
		every = k
		if float64(k)*p.colW >= 44 {
			break
		}
	}
	for s := 0; s < tl.Steps; s += every {
		if p.gapAt >= 0 && s >= p.gapAt && s < p.gapEnd {
			continue
		}
		p.Ticks = append(p.Ticks, tick{X: p.x(s), Label: fmt.Sprint(s), Y1: axisH - 10, Y2: axisH - 4, TY: axisH - 13, Class: "st"})
	}
}
