package fuzz

import (
	"strings"

	"github.com/splicecheck/splicecheck/trace"
)

// Minimize shrinks a counterexample from any source (a campaign, the
// model-vs-kernel cross-check, a hand-written trace) by delta debugging
// over its lines: it removes chunks of lines, halving the chunk size down
// to single lines, and keeps a removal whenever the trace still parses
// and fails still holds, until no single line can go. The header
// `schedule` is a candidate too, so a failure that does not need the
// schedule loses it; `profile` is always kept, so the result says what it
// ran on. fails must be deterministic for the result
// to be minimal; it is called O(n log n) times for n lines in the usual
// case and O(n²) at worst.
//
// A removal that breaks the trace (a `conn` whose sockets later ops use)
// does not parse and is rejected without calling fails.
func Minimize(t *trace.Trace, fails func(*trace.Trace) bool) *trace.Trace {
	lines := strings.Split(strings.TrimSuffix(t.Format(), "\n"), "\n")
	head := ""
	if t.Profile != "" {
		head, lines = lines[0]+"\n", lines[1:] // Format puts `profile` first
	}
	best := t
	try := func(cand []string) bool {
		ct, err := trace.Parse(t.File, []byte(head+strings.Join(cand, "\n")+"\n"))
		if err != nil || len(ct.Ops) == 0 || !fails(ct) {
			return false
		}
		best = ct
		return true
	}
	for chunk := max(len(lines)/2, 1); ; {
		removed := false
		for i := len(lines) - chunk; i >= 0; {
			cand := append(append([]string(nil), lines[:i]...), lines[i+chunk:]...)
			if try(cand) {
				lines, removed = cand, true
			}
			if i == 0 {
				break
			}
			i = max(i-chunk, 0)
		}
		if chunk > 1 {
			chunk = max(chunk/2, 1)
			continue
		}
		if !removed {
			return best
		}
	}
}
