package trace

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/splicecheck/splicecheck/internal/lockcheck"
)

// abandonGrace is how long past an op's timeout the runner waits for the
// executor to return before declaring the backend stuck. A variable only so
// that tests can shorten it.
var abandonGrace = 10 * time.Second

// Run runs t on backend b: it resolves opts (ResolveOptions: the
// explicit profile, else the trace's `profile` directive, else
// DefaultBase), once, and hands the resolved options to b.Run.
func Run(ctx context.Context, b Backend, t *Trace, opts Options) (RunResult, error) {
	opts, err := ResolveOptions(t, opts)
	if err != nil {
		return RunResult{}, err
	}
	return b.Run(ctx, t, opts)
}

// Observe is Run for callers that want only the observations.
func Observe(ctx context.Context, b Backend, t *Trace, opts Options) ([]Observation, error) {
	res, err := Run(ctx, b, t, opts)
	return res.Obs, err
}

// RunOps is the Run of an op-by-op backend (Opener): it opens one run of
// t, drives it op by op under the language's thread semantics, and closes
// it. Opts are resolved (Run resolves them). An Opener keeps no account
// of its runs: opts.Stats is refused (ErrNoStats), and so is
// opts.Timeline (ErrNoTimeline).
//
// Thread semantics: ops are dispatched in trace order to their threads; each
// thread runs its ops in order on its own locked OS thread. After each
// dispatch RunOps waits until every thread is idle or blocked (Executor.Blocked),
// so an op blocks only its own thread. At the end every thread is joined.
// The runner handles `join` itself; every other op goes to the Executor.
//
// Runner time (the same on every backend; the model keeps it in virtual
// time): dispatching takes no trace time. An op that is still blocked
// when the last op has been dispatched times out Options.OpTimeout after
// that moment (an op that started later, OpTimeout after its start); an
// op that keeps running without blocking (an iocopy feeding itself) times
// out once it has run OpTimeout since it began or last blocked, even
// while ops are still being dispatched. Timeouts due together
// fire one at a time, in the order the ops started, each only once the
// ops the previous one ended have settled: the backend's abort (the kernel
// backend shuts the op's socket down) may end other blocked ops, which
// then report what the abort made them return (EOF, say), not a timeout.
// A `join` has no timeout of its own: it waits for the target's earlier
// ops, which their own timeouts bound, and reports ok.
//
// When ctx ends before the run does (an interrupted command), RunOps
// returns, with an error wrapping ctx's, the observations of the ops that
// had ended before it did, in trace order (an op running then is absent),
// so that the caller can print what the run saw so far. Any
// other error comes with no observations.
func RunOps(ctx context.Context, o Opener, t *Trace, opts Options) (RunResult, error) {
	if opts.Stats {
		return RunResult{}, fmt.Errorf("backend %s: %w", o.Name(), ErrNoStats)
	}
	if opts.Timeline {
		return RunResult{}, fmt.Errorf("backend %s: %w", o.Name(), ErrNoTimeline)
	}
	ex, err := o.Open(ctx, t, opts)
	if err != nil {
		return RunResult{}, fmt.Errorf("open backend %s: %w", o.Name(), err)
	}
	r := newRunner(t, ex, opts)
	obs, runErr := r.run(ctx)
	if cerr := ex.Close(); cerr != nil {
		runErr = errors.Join(runErr, fmt.Errorf("close backend %s: %w", o.Name(), cerr))
	}
	return RunResult{Obs: obs}, runErr // on an error, the ops that ended before ctx did, if it did
}

// ResolveOptions fills in the profile and timeout defaults and validates the
// profile name.
func ResolveOptions(t *Trace, opts Options) (Options, error) {
	if opts.Profile == "" {
		opts.Profile = t.Profile
	}
	if opts.Profile == "" {
		opts.Profile = DefaultBase
	}
	p, err := ParseProfile(opts.Profile)
	if err != nil {
		return opts, err
	}
	opts.Profile, opts.parsed = p.String(), p
	if p.Base != FreeBSDProfile {
		for i := range t.Ops {
			if op := &t.Ops[i]; op.Kind.FreeBSDOnly() {
				return opts, fmt.Errorf("%s:%d:%d: %w: %s is FreeBSD's SO_SPLICE, only profile %s has it (the profile is %s)",
					t.File, op.Pos.Line, op.Pos.Col, ErrUnsupported, op.Kind, FreeBSDProfile, opts.Profile)
			}
		}
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	return opts, nil
}

type thread struct {
	name  string
	queue chan int

	// LOCKING: fields below are guarded by runner.mu.
	dispatched int       // ops handed to this thread so far
	completed  int       // ops finished so far
	running    bool      // inside Exec or a join
	joining    bool      // waiting in a join (blocked by definition)
	op         int       // index of the current op
	deadline   time.Time // when the current op times out if blocked (see Run)
	cancel     context.CancelCauseFunc
	canceled   time.Time // when the runner canceled the current op; zero if not
	blockedAt  time.Time // when the current op was last seen blocked (or began)
}

type runner struct {
	t    *Trace
	ex   Executor
	opts Options
	obs  []Observation
	late []bool          // op i returned after the run's context ended; written before done[i] closes
	done []chan struct{} // closed when op i completes
	wg   sync.WaitGroup

	mu         sync.Mutex
	threads    map[string]*thread // LOCKING: the map is written only by the dispatcher
	sent       map[string]int64   // LOCKING: mu; bytes each socket has sent
	fatal      error              // LOCKING: mu; first backend failure
	dispatched bool               // LOCKING: mu; every op has been dispatched
	firing     *thread            // LOCKING: mu; the thread whose op the runner last timed out, until that op ends
}

func newRunner(t *Trace, ex Executor, opts Options) *runner {
	r := &runner{
		t: t, ex: ex, opts: opts,
		obs:     make([]Observation, len(t.Ops)),
		late:    make([]bool, len(t.Ops)),
		done:    make([]chan struct{}, len(t.Ops)),
		threads: map[string]*thread{},
		sent:    map[string]int64{},
	}
	for i := range r.done {
		r.done[i] = make(chan struct{})
	}
	return r
}

func (r *runner) run(ctx context.Context) ([]Observation, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range r.t.Ops {
		op := &r.t.Ops[i]
		th := r.thread(ctx, op.ThreadName())
		r.mu.Lock()
		th.dispatched++
		r.mu.Unlock()
		th.queue <- i
		if err := r.wait(ctx, false); err != nil {
			return r.stopped(ctx, cancel, err)
		}
	}
	r.endDispatch()
	if err := r.wait(ctx, true); err != nil {
		return r.stopped(ctx, cancel, err)
	}
	r.shutdown()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fatal != nil {
		return nil, r.fatal
	}
	if err := ctx.Err(); err != nil {
		return r.ended(), fmt.Errorf("run %s: %w", r.t.File, err)
	}
	return r.obs, nil
}

// stopped abandons a run that failed with err; when ctx ended it returns
// the observations of the ops that had ended by then (see Run).
func (r *runner) stopped(ctx context.Context, cancel context.CancelFunc, err error) ([]Observation, error) {
	var obs []Observation
	if ctx.Err() != nil {
		obs = r.ended() // before abandon cancels the ops still running
	}
	return obs, r.abandon(cancel, err)
}

// ended returns the observations of the ops that ended before the run's
// context did, in trace order (an op that returned after it, its result
// maybe the interrupt's, is left out). An op's observation is written
// before its done channel closes.
func (r *runner) ended() []Observation {
	var out []Observation
	for i := range r.obs {
		select {
		case <-r.done[i]:
			if !r.late[i] {
				out = append(out, r.obs[i])
			}
		default:
		}
	}
	return out
}

// endDispatch starts the trace's clock for the ops that are still
// running: dispatching took no trace time, so they time out OpTimeout
// from now (see Run).
func (r *runner) endDispatch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dispatched = true
	deadline := time.Now().Add(r.opts.Scale(r.opts.OpTimeout))
	for _, th := range r.threads {
		if th.running && !th.joining && th.canceled.IsZero() {
			th.deadline = deadline
		}
	}
}

// abandon ends a failed run: it cancels every op and waits for the threads
// unless one is stuck in the backend, whose Close must then unblock it.
func (r *runner) abandon(cancel context.CancelFunc, err error) error {
	cancel()
	if !errors.Is(err, errStuck) {
		r.shutdown()
	}
	return err
}

// errStuck marks an executor that ignored an op's cancellation.
var errStuck = errors.New("backend did not return after the op timeout")

// shutdown closes every queue and waits for the threads to drain them.
func (r *runner) shutdown() {
	for _, th := range r.threads {
		close(th.queue)
	}
	r.wg.Wait()
}

// thread returns the named thread, starting it on first use.
func (r *runner) thread(ctx context.Context, name string) *thread {
	if th, ok := r.threads[name]; ok {
		return th
	}
	th := &thread{name: name, queue: make(chan int, len(r.t.Ops))}
	r.threads[name] = th
	r.wg.Add(1)
	go r.loop(ctx, th)
	return th
}

func (r *runner) setFatal(err error) {
	r.mu.Lock()
	if r.fatal == nil {
		r.fatal = err
	}
	r.mu.Unlock()
}

// loop is a trace thread. It never unlocks its OS thread, so the thread is
// destroyed when loop returns and a backend may leave it changed (a
// different network namespace, say) without restoring it.
func (r *runner) loop(ctx context.Context, th *thread) {
	defer r.wg.Done()
	runtime.LockOSThread()
	startErr := r.ex.StartThread(th.name)
	if startErr != nil {
		r.setFatal(fmt.Errorf("start thread %s: %w", th.name, startErr))
	}
	for i := range th.queue {
		if startErr != nil {
			r.finish(th, i, RunnerTimeout(), ctx.Err() != nil)
			continue
		}
		res := r.exec(ctx, th, i)
		r.finish(th, i, res, ctx.Err() != nil)
	}
}

// finish records op i's result; late: the run's context had ended when
// the op returned (the result may be the interrupt's, see Run).
func (r *runner) finish(th *thread, i int, res Result, late bool) {
	op := &r.t.Ops[i]
	r.mu.Lock()
	r.obs[i] = Observation{Line: op.Pos.Line, Op: op.String(), Result: res}
	r.late[i] = late
	th.running, th.joining = false, false
	th.cancel, th.canceled = nil, time.Time{}
	if r.firing == th {
		r.firing = nil
	}
	th.completed++
	r.mu.Unlock()
	close(r.done[i])
}

// exec runs op i on th, recovering a backend panic into a fatal error.
func (r *runner) exec(ctx context.Context, th *thread, i int) (res Result) {
	op := &r.t.Ops[i]
	defer func() {
		if p := recover(); p != nil {
			r.setFatal(fmt.Errorf("%s:%d: backend panicked in %q: %v\n%s", r.t.File, op.Pos.Line, op.String(), p, debug.Stack()))
			res = RunnerTimeout()
		}
	}()
	opCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	r.mu.Lock()
	th.running, th.op, th.cancel = true, i, cancel
	th.deadline = time.Now().Add(r.opts.Scale(r.opts.OpTimeout))
	th.blockedAt = time.Now()
	th.joining = op.Kind == OpJoin
	c := &Call{Thread: th.name, Index: i, Op: op}
	if op.Kind == OpSend {
		c.Data, c.PatternOff = op.Data, r.sent[op.A]
	}
	var joinOn chan struct{}
	if op.Kind == OpJoin {
		joinOn = r.lastDispatchedLocked(op.Target, i)
	}
	r.mu.Unlock()

	if op.Kind == OpJoin {
		if joinOn != nil {
			select {
			case <-joinOn:
			case <-ctx.Done():
				return RunnerTimeout()
			}
		}
		return OK()
	}
	res = r.ex.Exec(opCtx, c)
	if opCtx.Err() != nil {
		return RunnerTimeout()
	}
	if res.N > 0 && res.Word == "" {
		switch op.Kind {
		case OpSend:
			r.mu.Lock()
			r.sent[op.A] += res.N
			r.mu.Unlock()
		case OpIOCopy:
			r.mu.Lock()
			r.sent[op.B] += res.N
			r.mu.Unlock()
		}
	}
	return res
}

// lastDispatchedLocked returns the done channel of the last op of thread
// name that precedes op index before in trace order, or nil if none.
func (r *runner) lastDispatchedLocked(name string, before int) chan struct{} {
	lockcheck.Held(&r.mu, "trace: runner.lastDispatchedLocked")
	for j := before - 1; j >= 0; j-- {
		if r.t.Ops[j].ThreadName() == name {
			return r.done[j]
		}
	}
	return nil
}

// wait waits until every thread is settled (idle or blocked) or, with
// all, until every dispatched op has completed, timing ops out as Run
// describes. It polls the executor's Blocked with a short backoff:
// blocking inside a backend (a kernel syscall) has no event to wait on.
func (r *runner) wait(ctx context.Context, all bool) error {
	backoff := 5 * time.Microsecond
	for {
		ok, err := r.settled(all)
		if err != nil || ok {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("run %s: %w", r.t.File, err)
		}
		time.Sleep(backoff)
		if backoff < time.Millisecond {
			backoff *= 2
		}
	}
}

// settled reports whether the run has settled (see wait). On the way it
// times out a running op past its deadline and, once every thread is idle
// or blocked and every op has been dispatched, the blocked op whose
// deadline passed first (ties: the earlier op), one at a time.
func (r *runner) settled(all bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fatal != nil {
		return false, r.fatal
	}
	now := time.Now()
	ok, quiet := true, true
	var due *thread
	for _, th := range r.threads {
		if th.completed == th.dispatched {
			continue
		}
		ok = false
		if !th.running {
			quiet = false // an op queued, not yet started
			continue
		}
		if !th.canceled.IsZero() && now.Sub(th.canceled) > r.opts.Scale(r.opts.OpTimeout)+abandonGrace {
			return false, fmt.Errorf("thread %s: %w (%v)", th.name, errStuck, abandonGrace)
		}
		if th.joining {
			continue
		}
		if !r.ex.Blocked(th.name) {
			quiet = false
			if th.canceled.IsZero() && now.Sub(th.blockedAt) > r.opts.Scale(r.opts.OpTimeout) {
				r.cancelLocked(th, now)
			}
			continue
		}
		th.blockedAt = now
		if !all {
			continue
		}
		if th.canceled.IsZero() && now.After(th.deadline) &&
			(due == nil || th.deadline.Before(due.deadline) || th.deadline.Equal(due.deadline) && th.op < due.op) {
			due = th
		}
	}
	if !all {
		return quiet, nil
	}
	if due != nil && quiet && r.dispatched && r.firing == nil {
		r.cancelLocked(due, now)
	}
	return ok, nil
}

// cancelLocked times out th's current op.
func (r *runner) cancelLocked(th *thread, now time.Time) {
	lockcheck.Held(&r.mu, "trace: runner.cancelLocked")
	th.canceled = now
	r.firing = th
	th.cancel(ErrOpTimeout)
}
