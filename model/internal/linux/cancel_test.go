package linux

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// cancelInOp is the FIFO policy, except that it cancels the run's
// context the first time it picks the task of the trace's iocopy op
// once that op has run for `after` of virtual time: from then on only
// the context can end the op before its own timeout.
type cancelInOp struct {
	tr       *trace.Trace
	cancel   context.CancelFunc
	after    vtime
	start    vtime // when the iocopy was first picked; -1 before
	canceled vtime // the clock when the policy canceled; -1 before
}

func (p *cancelInOp) Pick(ready []*task) int {
	t := ready[0]
	if p.canceled >= 0 || !t.running || t.op < 0 || p.tr.Ops[t.op].Kind != trace.OpIOCopy {
		return 0
	}
	if p.start < 0 {
		p.start = t.s.now
	}
	if t.s.now-p.start >= p.after {
		p.canceled = t.s.now
		p.cancel()
	}
	return 0
}

// TestRunHonoursContext: an iocopy between the two ends of one connection
// feeds itself, and reaches an op timeout of an hour in virtual time
// only after about 90,000 rounds (each waits out a delayed ACK, 40 ms of
// virtual time, for Nagle holds the echo's second chunk until it: as on
// Linux; some seconds of real time). A campaign's per-run timeout must
// stop it inside the op, at its next system call, not at the op's next
// wait or the next op boundary. The policy cancels the context a second
// (virtual) into the iocopy; the run must fail with the context's error
// having moved the virtual clock less than a millisecond further (a
// system call of the copy loop costs 5 us): a model that looked at the
// context only where the run waits for time to pass would stop a round
// (40 ms) later, one that looked only between ops an hour later.
// Counted in virtual time, not real time, and cancelled at a point of
// the run, not after a real-time delay: how fast or loaded the machine
// is does not matter.
func TestRunHonoursContext(t *testing.T) {
	src := "conn a1 a2\nsend a2 16400 dontwait\niocopy a1 a2\n"
	tr, err := trace.Parse("echo.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	opts, prof, err := resolveRun(tr, trace.Options{OpTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &cancelInOp{tr: tr, cancel: cancel, after: vtime(time.Second), start: -1, canceled: -1}
	o, err := New().runPolicy(ctx, tr, opts, prof, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.canceled < 0 {
		t.Fatalf("the iocopy was never picked a second into its run (run ended with %v): the trace no longer feeds itself", o.Err)
	}
	if !errors.Is(o.Err, context.Canceled) {
		t.Fatalf("run ended with %v and %d observations, want the context's error", o.Err, len(o.Obs))
	}
	if ran := time.Duration(o.r.s.now - p.canceled); ran >= time.Millisecond {
		t.Errorf("the run went on for %v of virtual time after its context was canceled inside the iocopy: not stopped at the op's next system call", ran)
	}
}
