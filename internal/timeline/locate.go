package timeline

import (
	"fmt"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Mark is the step of a run where a property broke, or where the run
// failed: what the page marks.
type Mark struct {
	Step int
	At   time.Duration
	Op   int    // the op the mark is at, -1 for none
	Why  string // how the step was found, for the page
}

// Locate returns the step where a violation shows. Properties judge a
// run after it ended (fuzz.Property), so the step is read back from
// what they report, in this order:
//
//  1. line > 0, the trace line the violation names (fuzz.Violation.Line:
//     the op whose observation shows it): the end of that op, where its
//     result was observed; an op that never ended is marked at the last
//     step, where the run stopped with it still running.
//  2. else the run's fault (trace.EventFault): the model stopped the run
//     there (a lost wakeup, a leak, a livelock, a page fault, a broken
//     invariant), at the step it detected it.
//  3. else the last step: the property judged the run as a whole.
//
// ok is false for an empty log. A step left out of a truncated log
// (Timeline.Dropped) is not found and falls to the next rule.
func Locate(tl *trace.Timeline, tr *trace.Trace, line int) (m Mark, ok bool) {
	if tl == nil || len(tl.Events) == 0 {
		return Mark{}, false
	}
	last := tl.Events[len(tl.Events)-1]
	end := Mark{Step: last.Step, At: last.At, Op: -1, Why: "at the end of the run"}
	if line > 0 {
		op := -1
		for i := range tr.Ops {
			if tr.Ops[i].Pos.Line == line {
				op = i
				break
			}
		}
		started := false
		for _, ev := range tl.Events {
			if ev.Op != op || op < 0 {
				continue
			}
			switch ev.Kind {
			case trace.EventOpEnd:
				return Mark{Step: ev.Step, At: ev.At, Op: op, Why: fmt.Sprintf("where the op of line %d returned", line)}, true
			case trace.EventOpStart:
				started = true
			}
		}
		if started {
			end.Op, end.Why = op, fmt.Sprintf("at the end of the run, the op of line %d still running", line)
			return end, true
		}
	}
	for _, ev := range tl.Events {
		if ev.Kind == trace.EventFault {
			return Mark{Step: ev.Step, At: ev.At, Op: -1, Why: "where the model stopped the run"}, true
		}
	}
	return end, true
}
