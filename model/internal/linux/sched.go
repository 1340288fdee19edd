package linux

import (
	"context"
	"fmt"
	"iter"
	"math"
	"runtime/debug"
	"time"
)

// vtime is virtual time in nanoseconds since the start of a run.
type vtime int64

// timeo is a kernel timeout ("long timeo" in jiffies in the kernel; here in
// virtual nanoseconds). maxTimeout is MAX_SCHEDULE_TIMEOUT: wait forever.
type timeo int64

const maxTimeout timeo = math.MaxInt64

// noDeadline marks a wait without a deadline.
const noDeadline vtime = math.MaxInt64

// sched is the cooperative deterministic scheduler of one run.
//
// Model threads (task) are coroutines (iter.Pull), and exactly one of
// them runs at a time: the scheduler switches to a task and resumes when
// the task parks (blocks in a wait) or finishes its current op. Kernel
// contexts (softirq delivery of in-flight segments, the psock backlog
// work, the RCU work that destroys a psock, ...) are closures queued on
// the scheduler and run on the scheduler's own goroutine between two task
// slices; they never block. Because every switch is a coroutine switch,
// all model state is accessed by one goroutine at a time and no lock is
// needed; the switch's happens-before edges make the race detector agree.
//
// Time is virtual. The clock advances only when no task can run, no kernel
// context is pending and the caller asks for it (see advance): it jumps to
// the earliest deadline (a sleep's end, an SO_RCVTIMEO expiry, a delayed
// work, the runner's per-op timeout).
//
// Policy: kernel contexts run first, in FIFO order; then the ready task
// chosen by the policy (sched_policy.go) runs. The default policy is FIFO
// in the order tasks became ready, which is the order of wake-ups (wait
// queue order) and of op dispatch. The exploring policies (seeded random,
// PCT, explicit picks) turn on explore mode (explore.go), which makes
// yield points inside ops live and pending kernel work a candidate.
type sched struct {
	now vtime

	tasks []*task

	kwork    []kwork // pending kernel contexts, FIFO
	deferred []kwork // delayed kernel work (see deferWork)
	// settleTimers counts the rounds of settle timers (deferSettleTimer)
	// released since the last op returned (releaseDeferred); from the
	// dispatch of an op until it returns no round is left (opDispatched).
	settleTimers int
	// softirq holds raised NET_RX work (segment deliveries); inSoftirq is
	// set while it runs, so that a delivery raising another one queues it
	// instead of nesting (net_rx_action processes its backlog in a loop).
	softirq   []kwork
	inSoftirq bool
	// bhDisabled counts the sections that run with bottom halves
	// disabled (local_bh_disable): a softirq raised there runs when the
	// last one ends (localBhEnable).
	bhDisabled int

	cur *task // the task running now, nil on the scheduler

	// ctx is the run's context and done its Done channel, checked by
	// checkCanceled.
	ctx  context.Context
	done <-chan struct{}

	readySeq uint64
	eventSeq uint64
	// opSeq counts the ops started: the kernel backend spends at least
	// a millisecond per op (its settle), so TCP's microsecond clocks
	// (an RTT measured, the time since the last receive-buffer
	// measurement) see a new op as later than any RTT on loopback.
	opSeq  uint64
	policy policy
	// holdSoftirq leaves raised softirq work queued instead of running it
	// inline (a receive path running later, on another CPU).
	holdSoftirq bool
	// tasksFirst runs ready tasks before pending kernel contexts (see
	// settle). The default (false) runs kernel contexts first, which is
	// what a loopback run on an idle machine does; the exploring
	// policies (sched_policy.go, explore.go) turn interleavings like this
	// into choices.
	tasksFirst bool

	// inKernel counts the kernel contexts running (runKernel), nested
	// ones included: while it is non-zero no yield point is live.
	inKernel int

	// kernelTask is `current` for kernel contexts (a kworker): it has its
	// own task_frag and never parks.
	kernelTask *task

	fatal error // first internal failure (a model panic)

	// ext is the external transport whose clock follows the model's
	// and whose timers and held segments are the scheduler's events and
	// kernel work (extTCP), nil on the reference TCP.
	ext external

	// explore is set for the exploring policies (explore.go): yield
	// points inside ops are live and pending kernel contexts are one more
	// candidate of every scheduling decision instead of running first.
	explore   bool
	decisions int // scheduling decisions with more than one candidate
	yields    int // yield points reached

	// tl records the run's events (trace.Options.Timeline), nil when
	// nothing records them (timeline.go).
	tl *timeline
}

// external is what the scheduler asks of an external transport (extTCP,
// tcp_ext.go). Only the scheduler calls it, on the goroutine that holds
// control, one call at a time; a call may run kernel code (raise NET_RX
// work, wake tasks) but never parks.
type external interface {
	// onClock is called after virtual time moved forward by d: the
	// transport's clock follows the model's (moveClock).
	onClock(d time.Duration)
	// nextTimer returns how long until the transport's next timer is
	// due, and false if none is armed: an event of nextEvent's, which
	// onClock fires by moving the transport's clock.
	nextTimer() (time.Duration, bool)
	// heldSegments returns the segments (and their payload bytes) the
	// transport holds in flight; 0, 0 until it holds segments (explore
	// mode on a HoldingTransport). Held segments are pending kernel
	// work: a "kworker" pick delivers one (drainOne).
	heldSegments() (segs, bytes int)
	// deliverOne hands the segment held longest to its receiver. The
	// scheduler calls it only while heldSegments reports one.
	deliverOne()
}

// kwork is one kernel context: a named closure run on the scheduler.
type kwork struct {
	name string
	due  vtime // for deferred work: not before this time
	// boundary: the work may also run at the next op boundary (a delay
	// of a jiffy); a timer runs only at due.
	boundary bool
	// settleTimer: a boundary work that may also run later in the
	// settle it was armed in (deferSettleTimer).
	settleTimer bool
	// softirq: raised NET_RX work (raiseSoftirq). abort and teardown
	// name no work but the runner's op timeout and the teardown on a
	// timeline (timeline.go).
	softirq, abort, teardown bool
	seq                      uint64
	fn                       func()
}

// popFront returns q[0] and q without it. A short queue is shifted, so
// that its array is reused by the next append instead of reallocated
// every lap (the NET_RX queue of a transfer sees a push and a pop per
// segment); a long one is resliced, so that draining it stays linear.
// Precondition: len(q) > 0.
func popFront[T any](q []T) (T, []T) {
	first := q[0]
	if len(q) > 64 {
		return first, q[1:]
	}
	n := copy(q, q[1:])
	var zero T
	q[n] = zero // drop the reference for the collector
	return first, q[:n]
}

// newSched returns a scheduler using policy (FIFO when nil).
func newSched(policy policy) *sched {
	if policy == nil {
		policy = fifoPolicy{}
	}
	s := &sched{policy: policy}
	if _, ok := policy.(exploringPolicy); ok {
		s.explore, s.holdSoftirq = true, true
	}
	s.kernelTask = &task{Name: "kworker", s: s, kernel: true}
	return s
}

// Now returns the virtual time.
func (s *sched) Now() time.Duration { return time.Duration(s.now) }

// raiseSoftirq queues NET_RX softirq work and, unless a softirq is
// already running, runs it at once: on loopback the transmitting task
// runs the receive path when it re-enables bottom halves (dev_queue_xmit
// → netif_rx → do_softirq), inside its own system call.
func (s *sched) raiseSoftirq(name string, fn func()) {
	s.softirq = append(s.softirq, kwork{name: name, softirq: true, fn: fn})
	if s.inSoftirq || s.holdSoftirq || s.bhDisabled > 0 {
		return
	}
	s.runSoftirq(softirqBudget)
}

// localBhDisable mirrors local_bh_disable() (include/linux/bottom_half.h,
// v6.18): the softirq work raised until localBhEnable runs then.
func (s *sched) localBhDisable() {
	reach(fnSchedLocalBhDisable)
	s.bhDisabled++
}

// localBhEnable mirrors local_bh_enable() (include/linux/bottom_half.h,
// v6.18): the last enable runs the softirq work raised in between.
func (s *sched) localBhEnable() {
	reach(fnSchedLocalBhEnable)
	s.bhDisabled--
	if s.bhDisabled == 0 && !s.inSoftirq && !s.holdSoftirq && len(s.softirq) > 0 {
		s.runSoftirq(softirqBudget)
	}
}

// softirqBudget bounds one run of the softirq loop (net_rx_action's
// budget); what is left runs with the next kernel contexts.
const softirqBudget = 100000

// runSoftirq runs raised softirq work until none is left or the budget
// is spent, and returns the budget left.
func (s *sched) runSoftirq(budget int) int {
	s.inSoftirq = true
	defer func() { s.inSoftirq = false }()
	for len(s.softirq) > 0 && s.fatal == nil && budget > 0 {
		var w kwork
		w, s.softirq = popFront(s.softirq)
		s.runKernel(w)
		budget--
	}
	return budget
}

// heldSegments returns the segments the external transport holds in
// flight and their payload bytes (0, 0 without one that holds).
func (s *sched) heldSegments() (segs, bytes int) {
	if s.ext == nil {
		return 0, 0
	}
	return s.ext.heldSegments()
}

// kernelPending reports whether kernel work is pending: a kernel
// context, raised softirq work, or a segment held in flight.
func (s *sched) kernelPending() bool {
	if len(s.kwork) > 0 || len(s.softirq) > 0 {
		return true
	}
	n, _ := s.heldSegments()
	return n > 0
}

// queueWork queues a kernel context to run before the next task slice.
func (s *sched) queueWork(name string, fn func()) {
	s.kwork = append(s.kwork, kwork{name: name, fn: fn})
}

// deferWork queues a kernel context that must not run at once: a delayed
// work (schedule_delayed_work with a delay of jiffies). It runs at the next
// op boundary or when virtual time reaches due, whichever comes first.
//
// Unlike Linux, a delay is not measured in jiffies of real time: the
// kernel backend spends at least a settle window (1 ms) after every op,
// so "after the next op" is the closest deterministic equivalent.
func (s *sched) deferWork(name string, delay time.Duration, fn func()) {
	s.deferred = append(s.deferred, kwork{name: name, due: s.now + vtime(delay), boundary: true, seq: s.nextSeq(), fn: fn})
}

// deferSettleTimer queues a timer that the kernel backend's settle
// lets fire: it runs at the next op boundary, when virtual time reaches
// due inside a long op, or, armed by kernel work while the run settles
// after an op, later in that same settle (releaseSettleTimers). The
// runner's settle waits, up to 100 ms, while a TCP segment is
// unacknowledged, which is when a delayed ACK (40 ms) or a tail loss
// probe is armed, so such a timer fires before the next op; one armed
// by the first of them (80 ms) does too, a third round (120 ms) no
// longer.
func (s *sched) deferSettleTimer(name string, delay time.Duration, fn func()) {
	s.deferred = append(s.deferred, kwork{name: name, due: s.now + vtime(delay), boundary: true, settleTimer: true, seq: s.nextSeq(), fn: fn})
}

// settleTimerRounds is how many rounds of settle timers one op's settle
// fires: 40 and 80 ms are within the runner's 100 ms (SettleMax).
const settleTimerRounds = 2

// opDispatched closes the settle timers' rounds when the next op is
// dispatched: the runner settles after an op returns (releaseDeferred
// opens them again), not while it blocks, when the next op follows at
// once.
func (s *sched) opDispatched() { s.settleTimers = settleTimerRounds }

// releaseSettleTimers moves the pending settle timers to the run queue,
// while the rounds since the last op boundary allow, and reports whether
// it moved any.
func (s *sched) releaseSettleTimers() bool {
	if s.settleTimers >= settleTimerRounds {
		return false
	}
	moved := false
	keep := s.deferred[:0]
	for _, w := range s.deferred {
		if w.settleTimer {
			s.kwork = append(s.kwork, w)
			moved = true
		} else {
			keep = append(keep, w)
		}
	}
	s.deferred = keep
	if moved {
		s.settleTimers++
	}
	return moved
}

// settleDone is what settle does when nothing can run: it releases the
// settle timers still due in this settle, else lets the tasks that were
// settling after an op run their next one. It reports whether anything
// can run now.
func (s *sched) settleDone(budget int) bool {
	if budget > 0 && s.releaseSettleTimers() {
		return true
	}
	return s.endSettling()
}

// endSettling ends the settle of every task waiting to run its next op,
// and reports whether there was one.
func (s *sched) endSettling() bool {
	any := false
	for _, t := range s.tasks {
		if t.settling {
			t.settling = false
			any = true
		}
	}
	return any
}

// addTimer queues a kernel context to run when virtual time reaches
// now+delay (a timer or a delayed work whose delay matters).
func (s *sched) addTimer(name string, delay time.Duration, fn func()) {
	s.deferred = append(s.deferred, kwork{name: name, due: s.now + vtime(delay), seq: s.nextSeq(), fn: fn})
}

// releaseDeferred moves the deferred works that may run at an op
// boundary to the run queue.
func (s *sched) releaseDeferred() {
	var keep []kwork
	s.settleTimers = 0
	for _, w := range s.deferred {
		if w.boundary {
			s.kwork = append(s.kwork, w)
			if w.settleTimer {
				s.settleTimers = 1
			}
		} else {
			keep = append(keep, w)
		}
	}
	s.deferred = keep
}

// kernelBudget bounds the kernel contexts one settle runs. Kernel work
// can feed itself forever (an sk_skb egress redirect between the two ends
// of one connection bounces every byte back and forth, as it does on a
// real kernel, where kworkers and softirqs then spin beside the user's
// threads); past the budget the pending contexts wait and the threads
// run, so that a run always ends.
const kernelBudget = 1000

// drainKernel runs kernel contexts until none is pending or the budget is
// spent, and returns the budget left.
func (s *sched) drainKernel(budget int) int {
	for (len(s.kwork) > 0 || len(s.softirq) > 0) && s.fatal == nil && budget > 0 {
		if len(s.softirq) > 0 && !s.inSoftirq {
			s.runSoftirq(softirqBudget)
			budget--
			continue
		}
		if len(s.kwork) == 0 {
			break
		}
		var w kwork
		w, s.kwork = popFront(s.kwork)
		s.runKernel(w)
		budget--
	}
	return budget
}

// runKernel runs one kernel context. A kernel context may run on a
// task's goroutine (the softirq a task's system call runs when it
// re-enables bottom halves, the works syscallEnd drains), where s.cur is
// still the task; inKernel keeps its yield points dead there: a kernel
// context runs to its end, as a softirq or a work item does (a work item
// never runs concurrently with itself: sk_psock_backlog's psock->work
// would otherwise run twice at once).
func (s *sched) runKernel(w kwork) {
	s.inKernel++
	s.tl.kernelStart(&w, s.cur)
	defer func() {
		s.inKernel--
		s.tl.kernelEnd(&w)
		if p := recover(); p != nil {
			s.setFatal(panicError("kernel context "+w.name, p))
		}
	}()
	s.checkCanceled()
	w.fn()
}

// kernelCrash is the panic value that stops a run where the modelled
// kernel crashes (ErrKernelCrash).
type kernelCrash struct{ site, msg string }

// panicError turns a panic of a model context into the run's error: a
// page-ownership fault wraps ErrPageOwnership, a livelock ErrLivelock, a
// kernel crash ErrKernelCrash, anything else is a model bug (ErrInternal)
// with its stack.
func panicError(who string, p any) error {
	switch f := p.(type) {
	case pageFault:
		return &Fault{Err: ErrPageOwnership, Kind: f.kind, Site: f.site, Msg: who + ": " + f.msg}
	case livelock:
		return &Fault{Err: ErrLivelock, Kind: "livelock", Site: f.site, Msg: who + ": " + f.msg}
	case kernelCrash:
		return &Fault{Err: ErrKernelCrash, Kind: "crash", Site: f.site, Msg: who + ": " + f.msg}
	case runCanceled:
		return fmt.Errorf("%s stopped: %w", who, f.err)
	}
	return fmt.Errorf("%w: %s panicked: %v\n%s", ErrInternal, who, p, debug.Stack())
}

func (s *sched) setFatal(err error) {
	if s.fatal == nil {
		s.fatal = err
	}
}

// makeReady marks t runnable (its op to start, or its wait to end).
func (s *sched) makeReady(t *task) {
	if t.ready {
		return
	}
	t.ready = true
	s.readySeq++
	t.readyAt = s.readySeq
}

// readyTasks returns the ready tasks in the order they became ready.
func (s *sched) readyTasks() []*task {
	var out []*task
	for _, t := range s.tasks {
		if t.ready && !t.settling {
			out = append(out, t)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].readyAt < out[j-1].readyAt; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// settle runs kernel contexts and ready tasks until nothing can run
// without time passing.
func (s *sched) settle() {
	if s.explore {
		s.settleExplore()
		return
	}
	budget := kernelBudget
	for s.fatal == nil {
		if s.tasksFirst {
			// Ready tasks run before pending kernel contexts: a woken
			// reader runs while the softirq or work that woke it is
			// still to finish (another CPU's view).
			if ready := s.readyTasks(); len(ready) > 0 {
				s.run(ready[s.policy.Pick(ready)])
				continue
			}
			if (len(s.kwork) == 0 && len(s.softirq) == 0) || budget == 0 {
				if s.settleDone(budget) {
					continue
				}
				return
			}
			budget = s.drainOne(budget)
			continue
		}
		budget = s.drainKernel(budget)
		ready := s.readyTasks()
		if len(ready) == 0 || s.fatal != nil {
			if s.fatal == nil && (budget == 0 || !s.kernelPending()) && s.settleDone(budget) {
				continue
			}
			return
		}
		t := ready[s.policy.Pick(ready)]
		s.run(t)
	}
}

// drainOne runs one pending kernel context: raised softirq work first,
// then the delivery of the segment held longest in flight (its NIC
// receive, whose NET_RX processing it raises), then the other kernel
// contexts.
func (s *sched) drainOne(budget int) int {
	q := &s.kwork
	if len(s.softirq) > 0 {
		q = &s.softirq
	} else if n, _ := s.heldSegments(); n > 0 {
		s.runKernel(kwork{name: "segment_deliver", fn: s.ext.deliverOne})
		return budget - 1
	}
	var w kwork
	w, *q = popFront(*q)
	s.runKernel(w)
	return budget - 1
}

// run gives control to t until it parks or finishes its op.
func (s *sched) run(t *task) {
	t.ready = false
	s.cur = t
	s.tl.slice(t)
	t.switchTo()
	s.tl.parked(t)
	s.cur = nil
}

// checkLostWakeups reports a lost wakeup: with nothing left to run at
// this instant (no kernel context, no ready task, no work waiting for an
// op boundary), a task still sleeps although the condition it waits for
// holds, so only a timeout or an unrelated wake-up can end its sleep.
// The error wraps ErrLostWakeup. Linux has such sleeps of its own (see
// fuzz.KnownFailures), so the check runs only when Config.Liveness asks.
func (s *sched) checkLostWakeups() error {
	if s.kernelPending() || len(s.readyTasks()) > 0 {
		return nil
	}
	for _, w := range s.deferred {
		if w.boundary || w.due <= s.now {
			return nil
		}
	}
	for _, t := range s.tasks {
		if w := t.w; w != nil && w.cond != nil && !w.woken && !w.timedOut && w.cond() {
			site := w.what
			if w.why != nil {
				if why := w.why(); why != "" {
					site += "/" + why
				}
			}
			where := ""
			if site != "" {
				where = " in " + site
			}
			return &Fault{Err: ErrLostWakeup, Kind: "lost-wakeup", Site: site,
				Msg: fmt.Sprintf("thread %s sleeps%s while the condition it waits for holds", t.Name, where)}
		}
	}
	return nil
}

// event is one timed event: a wait's deadline, an op's timeout step or a
// deferred work. Events at the same virtual time happen in the order
// they were armed (seq): a wait that began earlier times out earlier,
// as it would in real time, where no two things start at once.
type event struct {
	at   vtime
	seq  uint64
	fire func()
}

// nextEvent returns the earliest pending event.
func (s *sched) nextEvent() (event, bool) {
	var best event
	found := false
	better := func(at vtime, seq uint64) bool {
		return !found || at < best.at || at == best.at && seq < best.seq
	}
	for _, t := range s.tasks {
		t := t
		if w := t.w; w != nil && !w.timedOut && !w.woken && w.deadline != noDeadline && better(w.deadline, w.seq) {
			best, found = event{w.deadline, w.seq, func() {
				w.timedOut = true
				s.makeReady(t)
			}}, true
		}
		if t.running && t.abortAt != noDeadline && better(t.abortAt, t.abortSeq) {
			best, found = event{t.abortAt, t.abortSeq, t.abortStep}, true
		}
	}
	if s.ext != nil {
		// Seq 0: a transport timer due with a model event fires first
		// (a segment retransmitted at a reader's deadline arrives).
		if d, ok := s.ext.nextTimer(); ok && better(s.now+vtime(max(d, 0)), 0) {
			best, found = event{s.now + vtime(max(d, 0)), 0, func() {}}, true
		}
	}
	for i, w := range s.deferred {
		i, w := i, w
		if better(w.due, w.seq) {
			best, found = event{w.due, w.seq, func() {
				s.deferred = append(s.deferred[:i:i], s.deferred[i+1:]...)
				s.kwork = append(s.kwork, w)
			}}, true
		}
	}
	return best, found
}

// nextSeq returns a fresh arming sequence number.
func (s *sched) nextSeq() uint64 {
	s.eventSeq++
	return s.eventSeq
}

// moveClock moves virtual time forward by d and tells the transport
// (external.onClock), whose timers run on the same clock (tcp_ext.go).
func (s *sched) moveClock(d vtime) {
	s.now += d
	if s.ext != nil {
		s.ext.onClock(time.Duration(d))
	}
}

// advance moves virtual time to the next event and fires it. It returns
// false when there is no pending event.
func (s *sched) advance() bool {
	ev, ok := s.nextEvent()
	if !ok {
		return false
	}
	if ev.at > s.now {
		s.moveClock(ev.at - s.now)
	}
	ev.fire()
	return true
}

// task is a model thread: the kernel's `current` while it runs an op of
// one trace thread. It owns a task_frag (the page_frag of struct
// task_struct that sk_page_frag returns for process-context sends).
//
// LOCKING: a task's fields are touched only by the side that holds
// control (the task's coroutine, or the scheduler while the task is parked).
type task struct {
	Name string
	// readTags are the tags of what the task's current read op returned
	// (Config.Provenance), filed by the run when the op ends.
	readTags []Tag
	// recvPlain: the task's current recv began on a socket with no psock
	// (Stats.Stranded).
	recvPlain bool
	// recvStrpStalled: when the task's current recv began, its socket's
	// stream parser was stalled (Stats.Stranded).
	recvStrpStalled bool
	// recvStrpStale: and its need_bytes was stale (strpNeedStale).
	recvStrpStale bool
	// recvQueueReadable: the task's current recv is non-blocking and,
	// when it began, its socket read sk_receive_queue itself and had
	// bytes there at copied_seq (kernel.tcpReadable).
	recvQueueReadable bool
	s                 *sched
	// kernel is set on the scheduler's kworker task, which never parks.
	kernel bool

	frag pageFrag // current->task_frag
	// acct is the copy accounting of the op running, nil for ops that
	// move no payload (stats.go).
	acct *opStats
	// op is the index of the trace op the task runs, -1 between ops.
	op int

	// next and yield switch between the scheduler and the task's
	// coroutine (iter.Pull): only one of them runs at a time, so the
	// model needs no locks, and a switch is a direct hand-off that no
	// other P can steal (two channel operations cost a futex wake-up of
	// an idle P each).
	next  func() (struct{}, bool)
	yield func(struct{}) bool
	ready bool
	// readyAt orders ready tasks (FIFO policy).
	readyAt uint64
	// settling: the task finished an op and has the next one queued; as
	// the kernel backend's thread settles after each op before its next,
	// it runs again once the kernel work and the settle timers
	// (deferSettleTimer) are done (endSettling).
	settling bool

	queue   []int   // dispatched op indices not yet started
	running bool    // between the start and the end of an op
	w       *waiter // the wait the task is parked in, nil when not parked

	// The runner's per-op timeout: when the virtual clock reaches abortAt
	// while the op runs, abortSteps[0] runs, then the next one 50 ms later
	// (the kernel backend's watcher escalation).
	abortAt    vtime
	abortSeq   uint64
	abortSteps []func()
	timedOut   bool
	// abortShut: the op's abort steps shut its socket down (recv, send,
	// splice); abortTail counts the escalations after the last step.
	abortShut bool
	abortTail int

	exit bool
	dead bool

	opYields int // yield points passed in the current op (explore.go)
}

// waiter is an entry on a wait queue (wait_queue_entry with
// woken_wake_function semantics): a wake-up marks it woken once; the
// waiting task then re-evaluates its condition.
type waiter struct {
	task     *task
	woken    bool
	timedOut bool
	deadline vtime
	seq      uint64 // when the wait began (event order)
	// cond is the condition the sleeper waits for (sk_wait_event's, or
	// a waitEvent's, explore.go), or nil; checkLostWakeups evaluates it.
	// what names the wait in the report (the kernel function that
	// sleeps); why, if set, says what made cond true.
	cond func() bool
	what string
	why  func() string
}

// waitQueue mirrors wait_queue_head_t (include/linux/wait.h, v6.18): the
// tasks waiting on an object.
type waitQueue struct {
	waiters []*waiter
}

// Len returns the number of waiters.
func (wq *waitQueue) Len() int { return len(wq.waiters) }

// wakeUp wakes every waiter (wake_up_interruptible_all and friends; the
// poll key does not matter to woken_wake_function and autoremove waiters
// alike).
func (wq *waitQueue) wakeUp() {
	for _, w := range wq.waiters {
		if !w.woken {
			w.woken = true
			if w.task != nil && w.task.s != nil {
				w.task.s.makeReady(w.task)
			}
		}
	}
}

func (wq *waitQueue) add(w *waiter) { wq.waiters = append(wq.waiters, w) }

func (wq *waitQueue) remove(w *waiter) {
	for i, x := range wq.waiters {
		if x == w {
			wq.waiters = append(wq.waiters[:i], wq.waiters[i+1:]...)
			return
		}
	}
}

// start makes body the task's coroutine; it first runs at switchTo.
func (t *task) start(body func()) {
	t.next, _ = iter.Pull(func(yield func(struct{}) bool) {
		t.yield = yield
		growStack(0)
		body()
	})
}

// taskStack is a frame that makes a new coroutine's stack 32 KiB while it
// is still empty (growStack), about what a task's deepest call chain
// needs (a send whose softirq delivery runs the strparser, the verdict and
// a redirect inline): growing it at depth instead copies the live frames
// at every doubling, which was a tenth of the model's time. 16 KiB left
// copystack at under 1% of BenchmarkCorpus.
const taskStack = 16 << 10

//go:noinline
func growStack(i int) byte {
	var pad [taskStack]byte
	pad[i] = 1
	return pad[taskStack-1-i]
}

// switchTo runs the task's coroutine until it switches out or returns.
// Only the scheduler calls it.
func (t *task) switchTo() { t.next() }

// switchOut gives control back to the scheduler until the next switchTo.
// Only the task's own coroutine calls it.
func (t *task) switchOut() { t.yield(struct{}{}) }

// park gives control back to the scheduler until the task is resumed.
func (t *task) park() {
	if t.kernel {
		panic("model: a kernel context tried to sleep")
	}
	t.switchOut()
	if t.exit {
		panic(errTaskKilled)
	}
}

// waitWoken mirrors wait_woken() (kernel/sched/wait.c, v6.18): the task
// sleeps on wq until a wake-up or until timeo passes, and returns the time
// left (0 when it timed out; maxTimeout stays maxTimeout). The caller
// re-evaluates its condition, as sk_wait_event does.
//
// Precondition: the caller released every model socket lock it holds.
func (t *task) waitWoken(wq *waitQueue, to timeo) timeo {
	reach(fnTaskWaitWoken)
	return t.waitWokenCond(wq, to, "", nil, nil)
}

// waitWokenCond is waitWoken for a sleeper whose wake condition is cond,
// so that a wake-up that never comes is reported (checkLostWakeups) as
// a sleep in what (and why, if set, says what made cond true).
func (t *task) waitWokenCond(wq *waitQueue, to timeo, what string, why func() string, cond func() bool) timeo {
	if to <= 0 {
		return 0
	}
	w := &waiter{task: t, deadline: noDeadline, seq: t.s.nextSeq(), cond: cond, what: what, why: why}
	if to != maxTimeout {
		w.deadline = t.s.now + vtime(to)
	}
	if wq != nil {
		wq.add(w)
	}
	t.w = w
	t.park()
	t.w = nil
	if wq != nil {
		wq.remove(w)
	}
	if to == maxTimeout {
		return maxTimeout
	}
	left := timeo(w.deadline - t.s.now)
	if left < 0 || w.timedOut && !w.woken {
		left = 0
	}
	return left
}

// sleepUntilWoken waits on several wait queues at once (poll-style) until
// a wake-up on any of them or the deadline; it reports whether it timed
// out.
func (t *task) sleepOn(wqs []*waitQueue, deadline vtime) (timedOut bool) {
	w := &waiter{task: t, deadline: deadline, seq: t.s.nextSeq()}
	for _, wq := range wqs {
		wq.add(w)
	}
	t.w = w
	t.park()
	t.w = nil
	for _, wq := range wqs {
		wq.remove(w)
	}
	return !w.woken && w.timedOut
}

// spin charges cost of virtual time to the running task: an op that loops
// through system calls (iocopy) spends real time in a kernel, and a loop
// that feeds itself (io.Copy from a socket into its own peer) must still
// reach its deadline. The task's op timeout fires when it passes.
func (t *task) spin(cost time.Duration) {
	t.s.moveClock(vtime(cost))
	t.s.checkCanceled()
	if t.running && t.abortAt <= t.s.now {
		t.abortStep()
	}
}

// checkCanceled stops the run when its context is done (a campaign's
// per-run timeout, a signal). Every loop that charges virtual time and
// every kernel context pass here: an op whose loop feeds itself (an
// iocopy between the two ends of one connection, each round running a
// thousand backlog works) can take minutes of real time to reach its op
// timeout in virtual time. The panic ends the task or kernel context like
// a fault; the run fails with the context's error.
func (s *sched) checkCanceled() {
	select {
	case <-s.done: // nil when the run cannot be canceled: never ready
		panic(runCanceled{s.ctx.Err()})
	default:
	}
}

// runCanceled is the panic of checkCanceled.
type runCanceled struct{ err error }

// syscallEnd runs the kernel contexts a system call set off, before the
// task's next system call of the same op (iocopy makes many): on loopback
// the sending CPU runs the receive softirq inside the call.
func (t *task) syscallEnd() {
	t.s.drainKernel(kernelBudget)
}

// abortStep runs the next step of the runner's op-timeout escalation.
func (t *task) abortStep() {
	t.s.tl.abortStart(t)
	defer t.s.tl.abortEnd(t)
	t.timedOut = true
	if len(t.abortSteps) == 0 {
		// Nothing left to try: the wait itself ends (join, sleep and
		// iocopy waits carry the op deadline) and, should the op wait
		// again, it is cut short once more after the escalation delay.
		t.abortTail++
		if t.abortShut && t.abortTail > abortHang && t.w != nil && t.w.what != "" {
			// A recv, send or splice that SHUT_RDWR of its socket (and,
			// for a splice, the release of its pipe) did not end, asleep
			// again in a kernel wait: tcp_recvmsg, tcp_sendmsg and
			// tcp_splice_read all return at once on a socket shut down
			// both ways, so an op that keeps going back to sleep ignores
			// the shutdown. (An op that loops without sleeping is left
			// to the livelock bound of the loop itself.)
			t.s.setFatal(&Fault{Err: ErrLivelock, Kind: "livelock", Site: "ignores-shutdown/" + t.w.what,
				Msg: fmt.Sprintf("%s: its op still sleeps in %s %v after the runner shut its socket down both ways",
					t.Name, t.w.what, time.Duration(abortHang)*abortEscalation)})
			return
		}
		t.abortAt = t.s.now + vtime(abortEscalation)
		t.abortSeq = t.s.nextSeq()
		if t.w != nil {
			t.w.timedOut = true
			t.s.makeReady(t)
		}
		return
	}
	step := t.abortSteps[0]
	t.abortSteps = t.abortSteps[1:]
	t.abortAt = t.s.now + vtime(abortEscalation)
	t.abortSeq = t.s.nextSeq()
	// The step runs kernel code (a close, a pipe release) on the
	// scheduler's goroutine: a fault there is the run's error, as in a
	// kernel context (runKernel).
	defer func() {
		if p := recover(); p != nil {
			t.s.setFatal(panicError("runner abort of "+t.Name, p))
		}
	}()
	step()
}

// abortEscalation is the kernel backend watcher's delay between escalating
// steps (kernelshim abortStep).
const abortEscalation = 50 * time.Millisecond

// abortHang is how many escalations after its last abort step a recv,
// send or splice may go on sleeping before the run fails with a
// livelock (2 s).
const abortHang = 40
