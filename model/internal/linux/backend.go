package linux

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Backend is the `model` backend: the faithful model on the in-model
// reference TCP, run by the deterministic scheduler, which runs whole
// traces (it owns every thread of a run). It is safe for
// concurrent use; runs share nothing.
type Backend struct {
	cfg Config
	mut map[*Mutation]bool
}

// Config selects what a model backend runs beyond the profile.
type Config struct {
	// Mutations names planted bugs to run with (see Mutations).
	Mutations []string
	// Liveness stops a run at the first lost wakeup, with an error
	// wrapping ErrLostWakeup (see sched.checkLostWakeups), and fails a run
	// that ends with a closed pair not released (ErrLeak). Off, the run
	// goes on as the kernel does: the sleeper waits for its timeout.
	Liveness bool
	// Transport, if set, makes a fresh external TCP for every run, which
	// the run uses instead of the reference TCP (tcp_ext.go); the run
	// closes it at its end. Schedule exploration (ExploreRun) runs on
	// it too; on a HoldingTransport it holds segments in flight
	// as scheduler decisions.
	Transport func() (Transport, error)
	// Provenance makes every payload byte carry a Tag (its sender and
	// stream offset, the paths it took) through the model, and the run's
	// Stats report the tags of what each read returned (Stats.ReadTags):
	// what the campaigns' byte-provenance properties follow. It costs a
	// tag per byte copied.
	Provenance bool
	// Name is the backend's name; "" means "model".
	Name string
}

var _ trace.Backend = (*Backend)(nil)

// New returns the model backend, with no mutation.
func New() *Backend { return &Backend{mut: map[*Mutation]bool{}} }

// NewWithConfig returns a model backend for cfg; an unknown mutation name
// gives an error wrapping errMutation.
func NewWithConfig(cfg Config) (*Backend, error) {
	mut, err := lookupMutations(cfg.Mutations)
	if err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	return &Backend{cfg: cfg, mut: mut}, nil
}

// Name returns the configured name, "model" by default.
func (b *Backend) Name() string {
	if b.cfg.Name != "" {
		return b.cfg.Name
	}
	return "model"
}

// Run runs t on a fresh model and returns one observation per op, in
// trace order, with the run's account (Stats: copy accounting, ring
// writes, read tags, completion order, coverage) when opts.Stats asks for
// it, and its event log (RunResult.Timeline, timeline.go), of a failed
// run too, when opts.Timeline does. Opts are resolved (trace.Run). The
// scheduling policy is the trace's `schedule` directive if any (a thread
// order, or a seed), else FIFO; a non-zero opts.Seed without a directive
// selects the seeded policy. Same trace, options and seed: same
// observations (and the same log).
func (b *Backend) Run(ctx context.Context, t *trace.Trace, opts trace.Options) (trace.RunResult, error) {
	prof, err := behaviourOf(opts.Parsed())
	if err != nil {
		return trace.RunResult{}, err
	}
	o, err := b.runPolicy(ctx, t, opts, prof, tracePolicy(t, opts), true)
	if err != nil {
		return trace.RunResult{}, err
	}
	res := trace.RunResult{Obs: o.Obs, Timeline: o.Timeline}
	if opts.Stats && o.Stats != nil {
		res.Stats = o.Stats
	}
	return res, o.Err
}

// resolveRun resolves opts for t (trace.ResolveOptions) and its profile.
func resolveRun(t *trace.Trace, opts trace.Options) (trace.Options, behaviour, error) {
	opts, err := trace.ResolveOptions(t, opts)
	if err != nil {
		return opts, behaviour{}, err
	}
	prof, err := behaviourOf(opts.Parsed())
	return opts, prof, err
}

// tracePolicy is the scheduling policy of t's `schedule` directive: an
// exploring one (random, pct, picks), a seed, a thread order; else
// opts.Seed's seeded policy, else nil (FIFO).
func tracePolicy(t *trace.Trace, opts trace.Options) policy {
	switch {
	case t.Schedule != nil && t.Schedule.Strategy != "":
		return schedulePolicy(t.Schedule)
	case t.Schedule != nil && t.Schedule.HasSeed:
		return newSeededPolicy(t.Schedule.Seed)
	case t.Schedule != nil:
		return priorityPolicy{Order: t.Schedule.Threads}
	case opts.Seed != 0:
		return newSeededPolicy(opts.Seed)
	}
	return nil
}

// runPolicy runs t on a fresh model under policy: the one execution
// behind Run and ExploreRun. An exploring policy is recorded
// (Outcome.Picks) and checks liveness whatever the Config; with
// teardown (every caller but tests that inspect the state the trace
// left), what the trace left is released and checked (teardown). It
// returns an error only when the run could not start or its transport
// failed to close after a run that succeeded; a failed run is o.Err.
func (b *Backend) runPolicy(ctx context.Context, t *trace.Trace, opts trace.Options, prof behaviour, policy policy, teardown bool) (*Outcome, error) {
	var rec *recorder
	if _, ok := policy.(exploringPolicy); ok {
		rec = &recorder{inner: policy}
		policy = rec
	}
	r := newRun(t, opts, prof, policy)
	if opts.Timeline {
		r.s.tl = newTimeline(r.k, timelineCap)
	}
	defer r.k.coverEnd(r.k.coverStart())
	r.k.mut = b.mut
	closeTr, err := b.attachTransport(r)
	if err != nil {
		return nil, err
	}
	// An exploring schedule always checks liveness (explore.go).
	r.liveness = b.cfg.Liveness || r.s.explore
	r.leaks = b.cfg.Liveness
	r.k.pages.prov = b.cfg.Provenance
	o := &Outcome{Trace: t, r: r}
	o.Obs, o.Err = r.execute(ctx)
	if o.Err == nil {
		r.k.stats.RingWrites = r.k.splice.writes
		r.k.stats.RingFaults = r.k.splice.contentFaults
		r.k.stats.Done = r.doneOrder
		for _, sk := range r.k.sockSeq {
			r.k.stats.TagSocks = append(r.k.stats.TagSocks, sk.Name)
		}
		o.Stats = r.k.stats
		if teardown {
			r.s.tl.teardownStart()
			err := r.teardown()
			r.s.tl.teardownEnd()
			if err != nil {
				o.Obs, o.Stats, o.Err = nil, nil, fmt.Errorf("%s: at teardown: %w", t.File, err)
			}
		}
	}
	r.s.tl.fault(o.Err)
	o.Timeline = r.s.tl.finish()
	if rec != nil {
		o.Picks, o.widths = rec.picks, rec.width
	}
	o.Decisions, o.Yields, o.RingWrites = r.s.decisions, r.s.yields, r.k.splice.writes
	if err := closeTr(); err != nil && o.Err == nil {
		return nil, err
	}
	return o, nil
}

// attachTransport puts r on a fresh external TCP when the backend has
// one (Config.Transport), and returns what closes it at the end of the
// run (a no-op on the reference TCP).
func (b *Backend) attachTransport(r *run) (func() error, error) {
	if b.cfg.Transport == nil {
		return func() error { return nil }, nil
	}
	tr, err := b.cfg.Transport()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", r.t.File, ErrTransport, err)
	}
	x := newExtTCP(r.k, tr)
	return func() error {
		if err := x.closeTransport(); err != nil {
			return fmt.Errorf("%s: %w", r.t.File, err)
		}
		return nil
	}, nil
}

// run is one execution of a trace.
type run struct {
	liveness bool // Config.Liveness, or an exploring search: lost wakeups stop the run
	leaks    bool // Config.Liveness: a closed pair not released at the end fails the run (spliceLeaks)
	t        *trace.Trace
	opts     trace.Options
	k        *kernel
	s        *sched

	obs       []trace.Observation
	done      []bool
	doneOrder []int // op indices in the order they completed
	doneWq    map[*task]*waitQueue
	sent      map[string]int64
	tasks     map[string]*task
	failed    map[string]bool // maps whose creation failed
	opCost    vtime
}

// newKernel returns an empty machine running prof on the reference TCP.
func newKernel(prof behaviour, policy policy) *kernel {
	k := &kernel{s: newSched(policy), prof: prof, socks: map[string]*sock{}, maps: map[string]*bpfMap{}, stats: newStats()}
	k.tcp = &refTCP{k: k}
	return k
}

func newRun(t *trace.Trace, opts trace.Options, prof behaviour, policy policy) *run {
	k := newKernel(prof, policy)
	return &run{
		t: t, opts: opts, k: k, s: k.s,
		obs:    make([]trace.Observation, len(t.Ops)),
		done:   make([]bool, len(t.Ops)),
		doneWq: map[*task]*waitQueue{},
		sent:   map[string]int64{},
		tasks:  map[string]*task{},
		failed: map[string]bool{},
	}
}

// errTaskKilled unwinds a task's coroutine at the end of a failed run.
var errTaskKilled = errors.New("model: task killed")

// execute dispatches the ops in trace order, as trace.RunOps does, and joins
// every thread at the end; then it checks the state the trace left: the
// rings' cursors (checkRings) and, with Config.Liveness, that every
// closed pair was released (spliceLeaks).
func (r *run) execute(ctx context.Context) (obs []trace.Observation, err error) {
	defer r.killTasks()
	r.s.ctx, r.s.done = ctx, ctx.Done()
	for i := range r.t.Ops {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("run %s: %w", r.t.File, err)
		}
		op := &r.t.Ops[i]
		t := r.task(op.ThreadName())
		t.queue = append(t.queue, i)
		r.k.dispatched = i
		if !t.running {
			r.s.makeReady(t)
		}
		r.s.opDispatched()
		r.s.settle()
		if r.s.fatal != nil {
			return nil, r.s.fatal
		}
		if err := r.checkQuiescent(); err != nil {
			return nil, fmt.Errorf("%s: after line %d: %w", r.t.File, op.Pos.Line, err)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("run %s: %w", r.t.File, err)
		}
		r.s.settle()
		if r.s.fatal != nil {
			return nil, r.s.fatal
		}
		if err := r.checkQuiescent(); err != nil {
			return nil, fmt.Errorf("%s: at the end: %w", r.t.File, err)
		}
		if r.allDone() {
			break
		}
		if !r.s.advance() {
			return nil, fmt.Errorf("%w (%w): %s: every thread is blocked and no deadline is pending", ErrInternal, errDeadlock, r.t.File)
		}
	}
	if err := r.k.checkRings(); err != nil {
		return nil, fmt.Errorf("%s: at the end: %w", r.t.File, err)
	}
	_, r.k.stats.NoZerocopy = r.k.tcp.(*extTCP)
	r.k.stats.Elapsed = time.Duration(r.s.now)
	for name, sk := range r.k.socks {
		if sk.zckey > 0 {
			if r.k.stats.ZerocopyIDs == nil {
				r.k.stats.ZerocopyIDs = map[string]uint32{}
			}
			r.k.stats.ZerocopyIDs[name] = sk.zckey
		}
	}
	if r.leaks {
		// Every pair whose two sockets were closed is released.
		if err := r.k.spliceLeaks(); err != nil {
			return nil, fmt.Errorf("%s: at the end: %w", r.t.File, err)
		}
		if n := r.k.strpInitLeaks; n > 0 {
			return nil, fmt.Errorf("%s: at the end: %w", r.t.File, &Fault{Err: ErrLeak, Kind: "leak", Site: "strp_init",
				Msg: fmt.Sprintf("strp_init forgot the skb of %d frame(s) a stopped stream parser held (Linux leaks them)", n)})
		}
	}
	return r.obs, nil
}

// teardownSteps bounds the timer events teardown lets fire.
const teardownSteps = 10000

// teardown releases what the trace left, as the kernel backend's cleanup
// does after every trace, and then checks that no memory is left: every
// descriptor still open is closed (close(2), no linger), every pipe freed,
// the kernel work this queues run (psock destruction, deliveries) and the
// clock advanced until nothing is pending; the connections left orphaned
// are expired (tcp.ExpireOrphans: the timers the model lacks); then every
// thread exits (do_exit puts its task_frag page). After that every page and slab
// object must be free, or the run fails with a leak wrapping
// ErrPageOwnership. A psock still attached after teardown is a leak of
// its own (ErrLeak), except the posted loopback splice RFC's pairs, its
// known defect (spliceLeaks), whose pages are then not checked. Nor are
// they when kernel work still runs after teardownSteps (a redirect loop
// feeding itself).
//
// The observations are final before teardown starts: nothing it does is
// observable to the trace. Every run is torn down (runPolicy), explored
// or not; the checks of the state the trace left (spliceLeaks,
// checkRings) run before, at the end of execute.
func (r *run) teardown() (err error) {
	k := r.k
	defer func() {
		if p := recover(); p != nil {
			err = panicError("teardown", p)
		}
	}()
	for _, sk := range k.sockSeq {
		if sk.fdOpen {
			r.closeFD(r.s.kernelTask, sk)
		}
	}
	// quiesce runs queued kernel work and fires timers until nothing is
	// pending. It reports false if that did not happen within
	// teardownSteps: kernel work that feeds itself (a redirect loop)
	// still holds pages, and no leak can be told from them.
	quiesce := func() (bool, error) {
		for steps := 0; steps < teardownSteps; steps++ {
			r.s.settle()
			if r.s.fatal != nil {
				return false, r.s.fatal
			}
			if !r.s.kernelPending() && !r.s.advance() {
				return true, nil
			}
		}
		return false, nil
	}
	quiet, err := quiesce()
	if err != nil || !quiet {
		return err
	}
	k.tcp.ExpireOrphans()
	if quiet, err = quiesce(); err != nil || !quiet {
		return err
	}
	for _, sk := range k.sockSeq {
		p := sk.SkUserData
		if p == nil {
			continue
		}
		if k.prof.LoopbackSplice && !k.prof.SpliceSeq && p.Splice != nil {
			return nil // the posted RFC's pair leak (spliceLeaks)
		}
		return &Fault{Err: ErrLeak, Kind: "leak", Site: "psock",
			Msg: fmt.Sprintf("%s's psock survives teardown (%d references, %d map links)", sk.Name, p.Refcnt, len(p.Links))}
	}
	for _, t := range append(r.s.tasks, r.s.kernelTask) {
		k.pages.release(&t.frag)
	}
	if s := k.pages.leaked(); s != "" {
		return &Fault{Err: ErrPageOwnership, Kind: "leak", Site: "pages", Msg: s}
	}
	if k.zcLive > 0 {
		return &Fault{Err: ErrLeak, Kind: "leak", Site: "zerocopy",
			Msg: fmt.Sprintf("%d MSG_ZEROCOPY ubuf_info(s) still referenced after teardown: their sends are never completed", k.zcLive)}
	}
	return nil
}

// checkQuiescent runs the checks that hold whenever the model is quiescent:
// the kernel's invariants and, with liveness, the absence of lost wakeups.
//
// Precondition: no model thread is running (after a settle).
func (r *run) checkQuiescent() error {
	if err := r.k.checkInvariants(); err != nil {
		return err
	}
	if !r.liveness {
		return nil
	}
	return r.s.checkLostWakeups()
}

func (r *run) allDone() bool {
	for _, d := range r.done {
		if !d {
			return false
		}
	}
	return true
}

// task returns the named task, creating its coroutine on first use (it
// starts when the scheduler first runs it).
func (r *run) task(name string) *task {
	if t, ok := r.tasks[name]; ok {
		return t
	}
	t := &task{Name: name, s: r.s, abortAt: noDeadline}
	r.tasks[name] = t
	r.s.tasks = append(r.s.tasks, t)
	r.doneWq[t] = &waitQueue{}
	t.start(func() { r.taskLoop(t) })
	return t
}

// killTasks ends every task's coroutine: idle ones return, parked ones
// unwind (errTaskKilled).
func (r *run) killTasks() {
	for _, t := range r.s.tasks {
		if t.dead {
			continue
		}
		t.exit = true
		t.switchTo()
	}
}

// taskLoop is a task's coroutine: run the queued ops one at a time,
// giving control back after each one.
func (r *run) taskLoop(t *task) {
	defer func() {
		if p := recover(); p != nil && p != errTaskKilled {
			r.s.setFatal(panicError("thread "+t.Name, p))
		}
		t.dead = true
	}()
	for !t.exit {
		if len(t.queue) > 0 {
			i := t.queue[0]
			t.queue = t.queue[1:]
			r.runOp(t, i)
		}
		r.s.releaseDeferred()
		if len(t.queue) > 0 {
			// An exploring schedule decides among the ready tasks
			// itself: a saved schedule's picks stay what they were.
			t.settling = !r.s.explore
			r.s.makeReady(t)
		}
		t.switchOut()
	}
}

// runOp executes op i on t and records its observation.
func (r *run) runOp(t *task, i int) {
	op := &r.t.Ops[i]
	r.s.opSeq++
	t.running = true
	t.opYields = 0
	t.timedOut = false
	t.abortAt = r.s.now + vtime(r.opts.OpTimeout)
	if op.Kind == trace.OpJoin {
		t.abortAt = noDeadline // a join has no timeout of its own (trace.RunOps)
	}
	t.abortSeq = r.s.nextSeq()
	t.abortSteps = r.abortSteps(op)
	t.abortShut, t.abortTail = len(t.abortSteps) > 0, 0
	t.acct = r.k.stats.opAcct(op.Kind)
	t.op = i
	r.s.tl.opStart(t, i)
	res := r.exec(t, i)
	t.op = -1
	if t.timedOut {
		res = trace.RunnerTimeout()
	} else if res.N > 0 && res.Word == "" {
		switch op.Kind {
		case trace.OpSend:
			r.sent[op.A] += res.N
		case trace.OpIOCopy:
			r.sent[op.B] += res.N
		}
	}
	if t.acct != nil {
		r.k.stats.endOp(t.acct, op.Kind, res)
		t.acct = nil
	}
	if op.Kind == trace.OpRecv && (res.Err == errEAGAIN || res.Err == 0 && res.N == 0 && op.Size > 0 || t.timedOut) {
		r.k.noteStranded(i, r.k.socks[op.A], t)
	}
	if t.readTags != nil {
		if !t.timedOut {
			r.k.stats.ReadTags[i] = t.readTags
		}
		t.readTags = nil
	}
	t.running = false
	t.abortAt = noDeadline
	t.abortSteps = nil
	r.obs[i] = trace.Observation{Line: op.Pos.Line, Op: op.String(), Result: res}
	r.s.tl.opEnd(t, i, &res)
	r.done[i] = true
	r.doneOrder = append(r.doneOrder, i)
	r.doneWq[t].wakeUp()
}

// abortSteps returns the kernel backend watcher's escalation for op: what
// it does to make a blocked syscall return when the runner's per-op
// timeout expires (kernelshim: guard and shutdownStep).
func (r *run) abortSteps(op *trace.Op) []func() {
	sk := r.k.socks[op.A]
	shut := func(how int) func() {
		return func() {
			if sk != nil && !sk.released {
				r.k.inetShutdown(r.s.kernelTask, sk, how)
			}
		}
	}
	switch op.Kind {
	case trace.OpRecv:
		return []func(){shut(0), shut(2)}
	case trace.OpSend:
		return []func(){shut(1), shut(2)}
	case trace.OpSplice:
		return []func(){shut(0), func() {
			if sk != nil && sk.pipe != nil {
				r.k.pipeRelease(sk.pipe)
				sk.pipe = nil
			}
		}, shut(2)}
	}
	return nil
}

// opTimeout is the per-op timeout the runner (trace.RunOps) uses by default; the model
// applies opts.OpTimeout in virtual time.
const opTimeout = trace.DefaultOpTimeout
