package timeline

import (
	"fmt"
	"slices"
	"strings"

	"github.com/splicecheck/splicecheck/trace"
)

// series is one counter over the log: its changes, in step order.
type series struct {
	obj, queue string
	steps      []int
	values     []int64
	max        int64
}

// chart is one row of queue lengths: a queue, or a ring's four cursors.
type chart struct {
	obj, queue string // queue "ring" for a ring's cursors
	lines      []*series
	max        int64
}

// charts gathers the log's counters into charts: per object in the
// order it first shows, its queues in queueOrder; a queue that never
// held anything has none.
func charts(tl *trace.Timeline) []chart {
	byKey := map[[2]string]*series{}
	var objs []string
	for _, ev := range tl.Events {
		if ev.Kind != trace.EventCounter {
			continue
		}
		k := [2]string{ev.Lane, ev.Name}
		s := byKey[k]
		if s == nil {
			s = &series{obj: ev.Lane, queue: ev.Name}
			byKey[k] = s
			if !slices.Contains(objs, ev.Lane) {
				objs = append(objs, ev.Lane)
			}
		}
		s.steps = append(s.steps, ev.Step)
		s.values = append(s.values, ev.Value)
		s.max = max(s.max, ev.Value)
	}
	var out []chart
	for _, obj := range objs {
		for _, q := range queueOrder {
			c := chart{obj: obj, queue: q}
			names := []string{q}
			if q == "ring" {
				names = ringCursors
			}
			for _, n := range names {
				if s := byKey[[2]string{obj, n}]; s != nil && s.max > 0 {
					c.lines = append(c.lines, s)
					c.max = max(c.max, s.max)
				}
			}
			if q == "ring" && len(c.lines) > 0 {
				// Every cursor is drawn, at 0 until it moves.
				c.lines = c.lines[:0]
				for _, n := range names {
					s := byKey[[2]string{obj, n}]
					if s == nil {
						s = &series{obj: obj, queue: n}
					}
					c.lines = append(c.lines, s)
				}
			}
			if len(c.lines) > 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

// chartRow draws c at y: each series as a step line, its value
// changing at the end of the step whose event it follows.
func (p *plot) chartRow(c chart, y int, end int) {
	top, h := float64(y+4), float64(chartH-8)
	yOf := func(v int64) float64 { return top + h - h*float64(v)/float64(max(c.max, 1)) }
	xEnd := p.x(end) + p.colW
	p.Bars = append(p.Bars, bar{X: 0, Y: float64(y), W: xEnd, H: chartH, Class: "chart"})
	for i, s := range c.lines {
		var d strings.Builder
		fmt.Fprintf(&d, "M0,%.1f", yOf(0))
		var changes []string
		for j, st := range s.steps {
			x := p.x(st) + p.colW
			fmt.Fprintf(&d, " H%.1f V%.1f", x, yOf(s.values[j]))
			if len(changes) < 40 {
				changes = append(changes, fmt.Sprintf("%d at step %d", s.values[j], st))
			} else if len(changes) == 40 {
				changes = append(changes, "…")
			}
		}
		fmt.Fprintf(&d, " H%.1f", xEnd)
		cls := "q"
		if c.queue == "ring" {
			cls = fmt.Sprintf("q c%d", i)
		}
		title := fmt.Sprintf("%s %s: %s", s.obj, s.queue, strings.Join(changes, ", "))
		if len(changes) == 0 {
			title = fmt.Sprintf("%s %s: 0 throughout", s.obj, s.queue)
		}
		p.Paths = append(p.Paths, path{D: d.String(), Class: cls, Title: title})
	}
}

// chartLabel names c for the label column, with its largest and last
// values; a ring's note names its cursors instead, in their lines'
// colours (the template's c0..c3).
func chartLabel(c chart) (text, note string, cursors []string) {
	if c.queue == "ring" {
		return fmt.Sprintf("%s ring cursors ≤ %d", c.obj, c.max), "", []string{"head", "tail", "cached_tail", "cached_head"}
	}
	s := c.lines[0]
	unit := "bytes"
	if c.queue == "psock refcnt" {
		unit = "references"
	}
	return c.obj + " " + c.queue, fmt.Sprintf("max %d %s, %d at the end", c.max, unit, s.values[len(s.values)-1]), nil
}
