package linux

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Schedule exploration. An exploring policy (randomPolicy, pctPolicy,
// picksPolicy; sched_policy.go) turns on the scheduler's explore mode:
//
//   - yield points inside ops are live: a task at t.yieldPoint gives
//     control back and the policy chooses who runs next. They sit where
//     the kernel can interleave: between a check and the act it guards,
//     between copying ring bytes and publishing the cursor (ringbuf
//     Hooks), between testing a wait condition and sleeping (waitEvent);
//   - kernel contexts (NET_RX softirq delivery of TCP segments, psock
//     works, the percpu_ref release) no longer run first: pending kernel
//     work is one more candidate, "kworker", of every decision. A raised
//     softirq stays queued (sched.holdSoftirq), which is a segment still
//     in flight: the receive path runs later, as from ksoftirqd, on
//     another CPU (RPS) or behind a veth's NAPI. On an external
//     transport that holds segments (HoldingTransport: netstack's
//     Links) the segments themselves stay on the wire, and a "kworker"
//     pick delivers the one held longest (sched.drainOne).
//
// Op dispatch is unchanged (the runner settles after each op), so the
// races explored are those among threads running at the same time.
// Every run is replayed exactly by its `schedule` directive.

// schedulePolicy returns the policy of an exploring `schedule` directive
// (random, pct, picks); nil for any other directive.
func schedulePolicy(s *trace.Schedule) policy {
	switch s.Strategy {
	case trace.StrategyRandom:
		return newRandomPolicy(s.Seed)
	case trace.StrategyPCT:
		return newPCTPolicy(s.Depth, s.Seed)
	case trace.StrategyPicks:
		return &picksPolicy{Picks: append([]int(nil), s.Picks...)}
	}
	return nil
}

// settleExplore is settle in explore mode: every decision among the
// ready tasks and, while kernel work is pending, the kernel contexts
// ("kworker": one pending context runs, softirq work first, then a
// segment an external transport holds in flight, drainOne) is the
// policy's. A decision with one candidate is not the policy's.
func (s *sched) settleExplore() {
	budget := kernelBudget
	for s.fatal == nil {
		cands := s.readyTasks()
		if budget > 0 && s.kernelPending() {
			cands = append(cands, s.kernelTask)
		}
		if len(cands) == 0 {
			if budget > 0 && s.releaseSettleTimers() {
				continue
			}
			return
		}
		i := 0
		if len(cands) > 1 {
			s.decisions++
			i = s.policy.Pick(cands)
		}
		if c := cands[i]; c == s.kernelTask {
			budget = s.drainOne(budget)
		} else {
			s.run(c)
		}
	}
}

// yieldPoint is a place where the kernel can interleave: in explore mode
// the running task gives control back and the policy chooses who runs.
// Elsewhere it does nothing.
//
// Precondition: the task holds no model socket lock.
func (t *task) yieldPoint(where string) {
	s := t.s
	if t.kernel || s.cur != t || s.inKernel > 0 {
		return
	}
	// Every policy counts the yields of an op, so that a loop that
	// never gives up (a model bug) ends in a livelock report instead of
	// running forever; only exploring policies switch threads here.
	if t.opYields++; t.opYields > maxOpYields {
		site, _, _ := strings.Cut(where, ":")
		panic(livelock{site, fmt.Sprintf("thread %s yielded %d times in one op (last at %s) without finishing it", t.Name, maxOpYields, where)})
	}
	if !s.explore {
		return
	}
	s.yields++
	// A yield costs time, as the spinning it stands for does: a loop of
	// yields (a busy-poll whose data never comes) reaches its op's
	// timeout instead of running forever.
	t.spin(yieldCost)
	s.makeReady(t)
	t.park()
}

// livelock is the panic of an op that went round a loop maxOpYields
// times: it neither made progress nor slept (ErrLivelock).
// site is the function of the last yield point.
type livelock struct{ site, msg string }

// maxOpYields bounds the yields of one op: past it (and, when exploring,
// far past the op's timeout, at yieldCost each) the op is a livelock.
const maxOpYields = 400_000

// yieldCost is the virtual time a yield point charges.
const yieldCost = 10 * time.Microsecond

// yieldCur is a yield point of whichever task is running (code without a
// task at hand: ring hooks, wakes). Kernel contexts never yield.
func (k *kernel) yieldCur(where string) {
	if c := k.s.cur; c != nil {
		c.yieldPoint(where)
	}
}

// waitEvent mirrors wait_event_interruptible_timeout(wq, cond, to)
// (include/linux/wait.h, v6.18): it returns at once (with at least 1) if
// cond holds; else it queues the task (prepare_to_wait_event, whose
// set_current_state is a full barrier), tests cond again, and sleeps until
// a wake-up or the timeout; it returns 0 when the time ran out with cond
// false, else the time left (at least 1). The waiter carries cond and what,
// so that a task asleep while cond holds is reported as a lost wakeup
// (checkLostWakeups). Unlike Linux, there are no signals.
//
// Precondition: the caller holds no model socket lock.
func (t *task) waitEvent(wq *waitQueue, to timeo, what string, cond func() bool) timeo {
	reach(fnTaskWaitEvent)
	left := func(w *waiter) timeo {
		if to == maxTimeout {
			return maxTimeout
		}
		l := timeo(w.deadline - t.s.now)
		if l < 0 || w.timedOut && !w.woken {
			l = 0
		}
		return l
	}
	if cond() {
		return max(to, 1)
	}
	for {
		w := &waiter{task: t, deadline: noDeadline, seq: t.s.nextSeq(), cond: cond, what: what}
		if to != maxTimeout {
			w.deadline = t.s.now + vtime(to)
		}
		wq.add(w)
		if cond() {
			wq.remove(w)
			return max(left(w), 1)
		}
		t.yieldPoint(what + ": condition false, before schedule()")
		if !w.woken && !w.timedOut {
			t.w = w
			t.park()
			t.w = nil
		}
		wq.remove(w)
		to = left(w)
		if cond() {
			return max(to, 1)
		}
		if to == 0 || t.timedOut {
			return 0
		}
	}
}

// Outcome is one run under a policy (ExploreRun; Run makes
// one for every run): what happened, for whoever judges it (package
// fuzz). The model draws no conclusion from it beyond the run's error.
//
// Obs and Stats are set exactly when Err is nil: a run that fails
// (a Fault: lost wakeup, livelock, leak, page ownership; an invariant;
// a deadlock; at teardown) has no observations, as Run
// returns none. Picks, Decisions, Yields and RingWrites are set either
// way: they are what ran up to the end or the failure.
type Outcome struct {
	Trace *trace.Trace
	Obs   []trace.Observation
	Err   error
	// Stats is the run's account (Run), with Config.Provenance
	// the tags of what every read returned.
	Stats *Stats
	// Picks is the run written as `schedule picks`: the candidate taken
	// at each decision of an exploring policy (nil for another policy).
	Picks []int
	// Decisions counts the scheduling decisions with more than one
	// candidate, Yields the yield points that gave control back.
	Decisions int
	Yields    int
	// RingWrites are the run's loopback-splice ring writes, in order.
	RingWrites []RingWrite
	// Timeline is the run's event log when trace.Options.Timeline
	// asked for it (timeline.go), also of a failed run; else nil.
	Timeline *trace.Timeline

	widths []int // the number of candidates at each decision of Picks
	r      *run
}

// RingWrite is one splice_ring_write of a run, with what was in flight
// to the ring's reader when the sender, having found the reader's
// receive queue empty, wrote: the segments (and their payload bytes) to
// it an external transport held on its wire (HoldingTransport). Both
// are 0 on the reference TCP, whose in-flight segments are raised
// softirq work, not held segments.
type RingWrite struct {
	Sock      string // the sender
	Reader    string // the socket whose ring it is
	Off       int64  // the sender's stream offset of the first byte; -1: a kernel send (not the user's stream)
	Bytes     int    // bytes written into the peer's ring
	HeldSegs  int
	HeldBytes int
}

// Received returns what sock's recv ops returned (not peeks), in the
// order they completed; nil for a failed run.
func (o *Outcome) Received(sock string) []byte {
	if o.Obs == nil {
		return nil
	}
	var b []byte
	for _, i := range o.r.doneOrder {
		op := &o.Trace.Ops[i]
		if res := o.Obs[i].Result; op.Kind == trace.OpRecv && op.A == sock && op.Flags&trace.FlagPeek == 0 && res.N > 0 && res.Err == 0 {
			b = append(b, res.Data...)
		}
	}
	return b
}

// NextPicks returns the choices of the run after o in a depth-first
// enumeration of the schedules of its trace (`schedule picks`): the
// deepest of the first maxBranch decisions that has a candidate after
// the one o took gets that candidate, the decisions before it keep o's
// choices, and the ones after take their first candidate. ok is false
// when no decision in bound has one: starting from `schedule picks`
// with no choices, the enumeration has run every schedule that differs
// in the first maxBranch decisions. The model is deterministic, so the
// same prefix always meets the same candidates.
func (o *Outcome) NextPicks(maxBranch int) (picks []int, ok bool) {
	n := min(len(o.Picks), maxBranch)
	for i := n - 1; i >= 0; i-- {
		if o.Picks[i]+1 < o.widths[i] {
			next := append([]int(nil), o.Picks[:i]...)
			return append(next, o.Picks[i]+1), true
		}
	}
	return nil, false
}

// ExploreRun runs t once under the exploring policy of schedule (a
// `schedule random|pct|picks` directive, whatever t's own directive
// says) and records the run's choices (Outcome.Picks). It runs t exactly
// as Run runs it with that directive (the backend's mutations,
// liveness, leak and provenance settings, its transport if it has one,
// closed before ExploreRun returns, and the teardown), so a run written
// down with its Picks (or its random or pct directive) replays the same
// Outcome.
func (b *Backend) ExploreRun(ctx context.Context, t *trace.Trace, opts trace.Options, schedule *trace.Schedule) (*Outcome, error) {
	if schedule == nil {
		return nil, fmt.Errorf("explore %s: no schedule: %w", t.File, ErrInternal)
	}
	return b.explore(ctx, t, opts, schedulePolicy(schedule))
}

// explore is ExploreRun under policy, which must be exploring (a
// randomPolicy, pctPolicy or picksPolicy).
func (b *Backend) explore(ctx context.Context, t *trace.Trace, opts trace.Options, policy policy) (*Outcome, error) {
	if _, ok := policy.(exploringPolicy); !ok {
		return nil, fmt.Errorf("explore %s: policy %T does not explore: %w", t.File, policy, ErrInternal)
	}
	opts, prof, err := resolveRun(t, opts)
	if err != nil {
		return nil, err
	}
	return b.runPolicy(ctx, t, opts, prof, policy, true)
}
