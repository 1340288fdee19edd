package model

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Schedule exploration. An exploring policy (RandomPolicy, PCTPolicy,
// PicksPolicy) turns on the scheduler's explore mode:
//
//   - yield points inside ops are live: a task at t.yieldPoint gives
//     control back and the policy chooses who runs next. They sit where
//     the kernel can interleave: between a check and the act it guards,
//     between copying ring bytes and publishing the cursor (ringbuf
//     Hooks), between testing a wait condition and sleeping (waitEvent);
//   - kernel contexts (NET_RX softirq delivery of TCP segments, psock
//     works, the percpu_ref release) no longer run first: pending kernel
//     work is one more candidate, "kworker", of every decision. A raised
//     softirq stays queued (Sched.holdSoftirq), which is a segment still
//     in flight: the receive path runs later, as from ksoftirqd, on
//     another CPU (RPS) or behind a veth's NAPI. On an external
//     transport that holds segments (HoldingTransport: netstack's
//     Links) the segments themselves stay on the wire, and a "kworker"
//     pick delivers the one held longest (Sched.drainOne).
//
// Op dispatch is unchanged (the runner settles after each op), so the
// races explored are those among threads running at the same time.
// Every run is replayed exactly by its `schedule` directive.

// exploringPolicy marks the policies that turn on explore mode.
type exploringPolicy interface {
	Policy
	exploring()
}

// splitmix is a splitmix64 generator.
type splitmix struct{ state uint64 }

func (r *splitmix) next() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// RandomPolicy is the seeded random explorer (`schedule random SEED`):
// a uniform choice among the candidates of every decision.
type RandomPolicy struct{ rng splitmix }

// NewRandomPolicy returns a RandomPolicy for seed.
func NewRandomPolicy(seed uint64) *RandomPolicy {
	return &RandomPolicy{rng: splitmix{seed*0x9E3779B97F4A7C15 + 7}}
}

// Pick returns a uniformly chosen index.
func (p *RandomPolicy) Pick(c []*Task) int { return int(p.rng.next() % uint64(len(c))) }
func (p *RandomPolicy) exploring()         {}

// pctSteps is k of PCT: the number of decisions the change points are
// drawn from (the traces explored here make fewer than this).
const pctSteps = 48

// PCTPolicy is probabilistic concurrency testing (Burckhardt et al.,
// ASPLOS 2010; `schedule pct D SEED`): every candidate (thread, or the
// kernel contexts as one) gets a random priority of at least D when first
// seen, the highest-priority candidate runs, and at D-1 decisions drawn
// from the first pctSteps the chosen candidate's priority drops below all
// initial ones. A bug of depth D is found with probability at least
// 1/(n k^(D-1)).
type PCTPolicy struct {
	rng     splitmix
	depth   int
	prio    map[string]uint64
	changes []int
	step    int
}

// NewPCTPolicy returns a PCT policy of depth d for seed.
func NewPCTPolicy(d int, seed uint64) *PCTPolicy {
	p := &PCTPolicy{rng: splitmix{seed*0x9E3779B97F4A7C15 + 11}, depth: d, prio: map[string]uint64{}}
	for i := 1; i < d; i++ {
		p.changes = append(p.changes, 1+int(p.rng.next()%pctSteps))
	}
	return p
}

func (p *PCTPolicy) exploring() {}

// Pick returns the highest-priority candidate after applying this
// decision's change points.
func (p *PCTPolicy) Pick(c []*Task) int {
	p.step++
	for _, t := range c {
		if _, ok := p.prio[t.Name]; !ok {
			p.prio[t.Name] = uint64(p.depth) + p.rng.next()%(1<<40)
		}
	}
	best := p.highest(c)
	for i, at := range p.changes {
		if at == p.step {
			p.prio[c[best].Name] = uint64(i + 1)
			best = p.highest(c)
		}
	}
	return best
}

func (p *PCTPolicy) highest(c []*Task) int {
	best := 0
	for i, t := range c {
		if p.prio[t.Name] > p.prio[c[best].Name] {
			best = i
		}
	}
	return best
}

// PicksPolicy replays explicit choices (`schedule picks I I ...`): the
// i-th decision takes candidate Picks[i] (modulo the number of
// candidates); decisions past the list take the first candidate.
type PicksPolicy struct {
	Picks []int
	i     int
}

func (p *PicksPolicy) exploring() {}

// Pick returns the next recorded choice.
func (p *PicksPolicy) Pick(c []*Task) int {
	v := 0
	if p.i < len(p.Picks) {
		v = p.Picks[p.i] % len(c)
	}
	p.i++
	return v
}

// recorder wraps a policy and records every decision, so that any run
// can be written down as `schedule picks`.
type recorder struct {
	inner Policy
	picks []int // the choice made at each decision
	width []int // the number of candidates at each decision
}

func (r *recorder) exploring() {}

func (r *recorder) Pick(c []*Task) int {
	v := r.inner.Pick(c)
	r.picks = append(r.picks, v)
	r.width = append(r.width, len(c))
	return v
}

// SchedulePolicy returns the policy of an exploring `schedule`
// directive (random, pct, picks), for ExploreRun; nil for any other
// directive.
func SchedulePolicy(s *trace.Schedule) Policy { return schedulePolicy(s) }

// schedulePolicy returns the policy of an exploring `schedule` directive.
func schedulePolicy(s *trace.Schedule) Policy {
	switch s.Strategy {
	case trace.StrategyRandom:
		return NewRandomPolicy(s.Seed)
	case trace.StrategyPCT:
		return NewPCTPolicy(s.Depth, s.Seed)
	case trace.StrategyPicks:
		return &PicksPolicy{Picks: append([]int(nil), s.Picks...)}
	}
	return nil
}

// settleExplore is settle in explore mode: every decision among the
// ready tasks and, while kernel work is pending, the kernel contexts
// ("kworker": one pending context runs, softirq work first, then a
// segment an external transport holds in flight, drainOne) is the
// policy's. A decision with one candidate is not the policy's.
func (s *Sched) settleExplore() {
	budget := kernelBudget
	for s.fatal == nil {
		cands := s.readyTasks()
		if budget > 0 && s.kernelPending() {
			cands = append(cands, s.kernelTask)
		}
		if len(cands) == 0 {
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
func (t *Task) yieldPoint(where string) {
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

// waitEvent mirrors wait_event_interruptible_timeout(wq, cond, to): it
// returns at once (with at least 1) if cond holds; else it queues the
// task (prepare_to_wait_event, whose set_current_state is a full
// barrier), tests cond again, and sleeps until a wake-up or the timeout;
// it returns 0 when the time ran out with cond false, else the time left
// (at least 1). The waiter carries cond and what, so that a task asleep
// while cond holds is reported as a lost wakeup (checkLostWakeups).
// Unlike Linux, there are no signals.
//
// Precondition: the caller holds no model socket lock.
func (t *Task) waitEvent(wq *WaitQueue, to timeo, what string, cond func() bool) timeo {
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

// Outcome is one explored run: its observations (or the error that ended
// it) and the model state the property checks read.
type Outcome struct {
	Trace *trace.Trace
	Obs   []trace.Observation
	Err   error
	// Picks is the run written as `schedule picks`.
	Picks     []int
	Decisions int
	Yields    int
	// RingWrites are the run's loopback-splice ring writes, in order.
	RingWrites []RingWrite

	r *run
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
// order they completed.
func (o *Outcome) Received(sock string) []byte {
	var b []byte
	for _, i := range o.r.doneOrder {
		op := &o.Trace.Ops[i]
		if res := o.Obs[i].Result; op.Kind == trace.OpRecv && op.A == sock && op.Flags&trace.FlagPeek == 0 && res.N > 0 && res.Err == 0 {
			b = append(b, res.Data...)
		}
	}
	return b
}

// ExploreRun runs t once under policy (which must be exploring: a
// RandomPolicy, PCTPolicy or PicksPolicy) with the backend's mutations,
// on its transport if it has one (Config.Transport; closed before
// ExploreRun returns), and records the run's choices.
func (b *Backend) ExploreRun(ctx context.Context, t *trace.Trace, opts trace.Options, policy Policy) (*Outcome, error) {
	if _, ok := policy.(exploringPolicy); !ok {
		return nil, fmt.Errorf("explore %s: policy %T does not explore: %w", t.File, policy, ErrInternal)
	}
	opts, err := trace.ResolveOptions(t, opts)
	if err != nil {
		return nil, err
	}
	prof, err := ParseProfile(opts.Profile)
	if err != nil {
		return nil, err
	}
	rec := &recorder{inner: policy}
	r := newRun(t, opts, prof, rec)
	r.k.mut = b.mut
	r.liveness = true
	closeTr, err := b.attachTransport(r)
	if err != nil {
		return nil, err
	}
	obs, err := r.execute(ctx)
	if cerr := closeTr(); cerr != nil {
		return nil, cerr
	}
	return &Outcome{Trace: t, Obs: obs, Err: err, Picks: rec.picks, Decisions: r.s.decisions, Yields: r.s.yields,
		RingWrites: r.k.splice.writes, r: r}, nil
}

// Property errors: a run that violates a property of DESIGN.md. Match
// with errors.Is.
var (
	// ErrStreamOrder: bytes received are not a prefix of bytes sent.
	ErrStreamOrder = errors.New("property: stream integrity (received bytes are not a prefix of the sent bytes)")
	// ErrDataAfterEOF: a read returned EOF and a later read returned data.
	ErrDataAfterEOF = errors.New("property: EOF before every byte was delivered")
	// ErrLeak: after both sockets of a pair closed, a psock, splice state
	// or ring was never released.
	ErrLeak = errors.New("property: teardown leaks")
	// ErrRing: a ring invariant does not hold.
	ErrRing = errors.New("property: ring invariant")
)

// CheckProperties checks an explored run against the properties of
// DESIGN.md the loopback splice campaign needs: liveness (the run's
// error: a lost wakeup, a deadlock), stream integrity per connection,
// no EOF before data, no leak after both ends closed, ring invariants.
//
// Precondition for stream integrity: a socket's sends do not overlap in
// time (one thread sends on it at a time), so their completion order is
// the stream order.
func (o *Outcome) CheckProperties() error {
	if o.Err != nil {
		return o.Err
	}
	r := o.r
	sent := map[string][]byte{}
	got := map[string][]byte{}
	eof := map[string]int{}      // first EOF read per socket
	gotAtEOF := map[string]int{} // bytes received before it
	errSeen := map[string]bool{} // a read failed (ECONNRESET: Linux loses data too)
	for _, i := range r.doneOrder {
		op := &r.t.Ops[i]
		res := r.obs[i].Result
		switch op.Kind {
		case trace.OpSend:
			if res.N <= 0 || res.Word != "" {
				continue
			}
			var b []byte
			if op.Form == trace.DataPattern {
				b = trace.Pattern(int64(len(sent[op.A])), res.N)
			} else {
				b = op.Data[:res.N]
			}
			sent[op.A] = append(sent[op.A], b...)
		case trace.OpRecv:
			if op.Flags&trace.FlagPeek != 0 {
				continue
			}
			if res.N < 0 || res.Err != 0 {
				errSeen[op.A] = true
				continue
			}
			if res.N == 0 && op.Size > 0 {
				if _, seen := eof[op.A]; !seen {
					eof[op.A] = i
					gotAtEOF[op.A] = len(got[op.A])
				}
				continue
			}
			if j, seen := eof[op.A]; seen && res.N > 0 {
				return fmt.Errorf("%w: %s: line %d returned EOF, then line %d returned %d bytes",
					ErrDataAfterEOF, op.A, r.t.Ops[j].Pos.Line, op.Pos.Line, res.N)
			}
			got[op.A] = append(got[op.A], res.Data...)
		}
	}
	for _, sk := range r.k.sockSeq {
		peer := r.k.peerOf(sk)
		if peer == nil {
			continue
		}
		g, s := got[sk.Name], sent[peer.Name]
		if len(g) > len(s) || string(g) != string(s[:len(g)]) {
			n := 0
			for n < len(g) && n < len(s) && g[n] == s[n] {
				n++
			}
			return fmt.Errorf("%w: %s received %d bytes from %s (which sent %d); they differ from offset %d",
				ErrStreamOrder, sk.Name, len(g), peer.Name, len(s), n)
		}
	}
	// A socket saw EOF: every byte its peer sent (all before its FIN: a
	// send after SEND_SHUTDOWN fails) must have been read before it,
	// unless a read failed (a reset, where Linux drops data too).
	for _, sk := range r.k.sockSeq {
		i, seen := eof[sk.Name]
		peer := r.k.peerOf(sk)
		if !seen || peer == nil || errSeen[sk.Name] || r.obs[i].Result.Note != "" {
			continue
		}
		if n := len(sent[peer.Name]); gotAtEOF[sk.Name] < n {
			return fmt.Errorf("%w: %s: line %d returned EOF after %d of the %d bytes %s sent",
				ErrDataAfterEOF, sk.Name, r.t.Ops[i].Pos.Line, gotAtEOF[sk.Name], n, peer.Name)
		}
	}
	for _, s := range r.k.splice.all {
		if s.Ring != nil {
			if err := s.Ring.CheckInvariants(); err != nil {
				return fmt.Errorf("%w: %w", ErrRing, err)
			}
		}
	}
	return r.k.spliceLeaks()
}

// spliceLeaks reports a splice state whose two sockets were both
// released but whose psock was never destroyed or whose ring was never
// freed. A psock already dropped (no reference left) while kernel work
// is still pending is not judged: its destroy may be queued.
func (k *kernel) spliceLeaks() error {
	for _, s := range k.splice.all {
		sk := s.Psock.Sk
		peer := k.peerOf(sk)
		if !sk.released || peer == nil || !peer.released {
			continue
		}
		if s.Psock.destroyed && s.freed {
			continue
		}
		if s.Psock.Refcnt == 0 && k.s.kernelPending() {
			// Dropped: its destroy (or the ring's release) is queued
			// behind kernel work that feeds itself (an egress redirect
			// loop), which the settle's budget left running.
			continue
		}
		return &Fault{Err: ErrLeak, Kind: "leak", Site: "splice-pair", Msg: fmt.Sprintf(
			"%s and %s are closed, but %s's psock has %d references (destroyed %v) and its splice ring is not freed",
			sk.Name, peer.Name, sk.Name, s.Psock.Refcnt, s.Psock.destroyed)}
	}
	return nil
}

// peerOf returns the other end of sk's connection, nil if none.
func (k *kernel) peerOf(sk *Sock) *Sock {
	for i, x := range k.sockSeq {
		if x == sk {
			return k.sockSeq[i^1]
		}
	}
	return nil
}

// SearchConfig bounds a schedule search.
type SearchConfig struct {
	// Strategy is trace.StrategyRandom, trace.StrategyPCT or "exhaustive".
	Strategy string
	Depth    int    // PCT depth (default 3)
	Seed     uint64 // first seed (random, PCT); seeds Seed, Seed+1, ...
	Runs     int    // the most runs
	// MaxBranch bounds exhaustive search: only the first MaxBranch
	// decisions of a run branch (default 24).
	MaxBranch int
	// Accept, when set, narrows what counts as a violation: a run whose
	// CheckProperties error it rejects does not end the search.
	Accept func(o *Outcome, violation error) bool
}

// StrategyExhaustive is SearchConfig.Strategy for bounded exhaustive
// search (depth-first over the choices of the first MaxBranch decisions).
const StrategyExhaustive = "exhaustive"

// SearchResult is what a search found.
type SearchResult struct {
	Runs int
	// Violation is the first property violation, nil if none was found.
	Violation error
	// Schedule replays the violating run (a copy of t with it is
	// Counterexample).
	Schedule       *trace.Schedule
	Counterexample *trace.Trace
	Exhausted      bool // exhaustive search covered every schedule in bound
}

// Search explores schedules of t until a run violates a property
// (CheckProperties) or cfg.Runs runs are done. A model error that is not
// a liveness failure ends the search with that error.
func (b *Backend) Search(ctx context.Context, t *trace.Trace, opts trace.Options, cfg SearchConfig) (*SearchResult, error) {
	if cfg.Depth == 0 {
		cfg.Depth = 3
	}
	if cfg.MaxBranch == 0 {
		cfg.MaxBranch = 24
	}
	res := &SearchResult{}
	var prefix []int
	for res.Runs < cfg.Runs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var pol Policy
		var sched *trace.Schedule
		seed := cfg.Seed + uint64(res.Runs)
		switch cfg.Strategy {
		case trace.StrategyRandom:
			pol, sched = NewRandomPolicy(seed), &trace.Schedule{Strategy: trace.StrategyRandom, Seed: seed}
		case trace.StrategyPCT:
			pol, sched = NewPCTPolicy(cfg.Depth, seed), &trace.Schedule{Strategy: trace.StrategyPCT, Depth: cfg.Depth, Seed: seed}
		case StrategyExhaustive:
			pol = &PicksPolicy{Picks: append([]int(nil), prefix...)}
		default:
			return res, fmt.Errorf("search %s: strategy %q: %w", t.File, cfg.Strategy, ErrInternal)
		}
		o, err := b.ExploreRun(ctx, t, opts, pol)
		if err != nil {
			return res, err
		}
		res.Runs++
		if o.Err != nil && !errors.Is(o.Err, ErrLostWakeup) && !errors.Is(o.Err, ErrDeadlock) {
			return res, o.Err
		}
		if sched == nil {
			sched = &trace.Schedule{Strategy: trace.StrategyPicks, Picks: o.Picks}
		}
		if v := o.CheckProperties(); v != nil && (cfg.Accept == nil || cfg.Accept(o, v)) {
			res.Violation, res.Schedule = v, sched
			ce := *t
			ce.Schedule = sched
			if opts.Profile != "" {
				ce.Profile = opts.Profile
			}
			res.Counterexample = &ce
			return res, nil
		}
		if cfg.Strategy == StrategyExhaustive {
			next, ok := nextPrefix(o, cfg.MaxBranch)
			if !ok {
				res.Exhausted = true
				return res, nil
			}
			prefix = next
		}
	}
	return res, nil
}

// nextPrefix returns the choices of the next run of a depth-first search:
// the deepest decision (among the first maxBranch) with an untried
// alternative gets it, earlier ones are kept.
func nextPrefix(o *Outcome, maxBranch int) ([]int, bool) {
	rec := o.r.s.policy.(*recorder)
	n := min(len(rec.picks), maxBranch)
	for i := n - 1; i >= 0; i-- {
		if rec.picks[i]+1 < rec.width[i] {
			next := append([]int(nil), rec.picks[:i]...)
			return append(next, rec.picks[i]+1), true
		}
	}
	return nil, false
}

// Shrink removes ops from a counterexample while a search with cfg still
// finds a violation that errors.Is the same property error (kind), one op
// at a time from the end, until no single removal keeps it. It returns
// the shrunk trace with the schedule of its violating run.
func (b *Backend) Shrink(ctx context.Context, t *trace.Trace, opts trace.Options, cfg SearchConfig, kind error) (*SearchResult, error) {
	best, err := b.Search(ctx, t, opts, cfg)
	if err != nil {
		return nil, err
	}
	if best.Violation == nil || !errors.Is(best.Violation, kind) {
		return nil, fmt.Errorf("shrink %s: no %v found in %d runs: %w", t.File, kind, best.Runs, ErrInternal)
	}
	cur := t
	for changed := true; changed; {
		changed = false
		for i := len(cur.Ops) - 1; i >= 0; i-- {
			cand := *cur
			cand.Schedule = nil
			cand.Ops = append(append([]trace.Op(nil), cur.Ops[:i]...), cur.Ops[i+1:]...)
			parsed, err := trace.Parse(t.File, []byte(cand.Format()))
			if err != nil {
				continue // the removal broke the trace (a join of a gone thread)
			}
			res, err := b.Search(ctx, parsed, opts, cfg)
			if err != nil || res.Violation == nil || !errors.Is(res.Violation, kind) {
				continue
			}
			cur, best, changed = parsed, res, true
		}
	}
	return best, nil
}
