package linux

// The scheduler's policies: which ready task (or, in explore mode, the
// pending kernel work as "kworker") runs at each decision of the
// scheduler (sched.go). fifoPolicy is the default, priorityPolicy and
// seededPolicy follow a trace's `schedule` directive or Options.Seed;
// the exploring policies (randomPolicy, pctPolicy, picksPolicy, and the
// recorder that wraps one) turn on explore mode (explore.go).

// policy chooses which of the ready tasks runs next. ready is never empty
// and is sorted by the order in which the tasks became ready.
type policy interface {
	Pick(ready []*task) int
}

// fifoPolicy runs ready tasks in the order they became ready.
type fifoPolicy struct{}

// Pick returns 0: the task that became ready first.
func (fifoPolicy) Pick([]*task) int { return 0 }

// priorityPolicy runs the ready task that comes first in Order (a
// `schedule T1 T2 main` directive); tasks not named come last, FIFO.
type priorityPolicy struct{ Order []string }

// Pick returns the ready task named earliest in p.Order.
func (p priorityPolicy) Pick(ready []*task) int {
	best, bestRank := 0, len(p.Order)
	for i, t := range ready {
		for r, name := range p.Order {
			if name == t.Name && r < bestRank {
				best, bestRank = i, r
			}
		}
	}
	return best
}

// seededPolicy picks a ready task pseudo-randomly from a seed (a `schedule
// SEED` directive or Options.Seed); the same seed gives the same choices.
type seededPolicy struct{ state uint64 }

// newSeededPolicy returns a seededPolicy for seed.
func newSeededPolicy(seed uint64) *seededPolicy {
	return &seededPolicy{state: seed*0x9E3779B97F4A7C15 + 1}
}

// Pick returns a pseudo-random index (splitmix64).
func (p *seededPolicy) Pick(ready []*task) int {
	p.state += 0x9E3779B97F4A7C15
	z := p.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return int(z % uint64(len(ready)))
}

// exploringPolicy marks the policies that turn on explore mode.
type exploringPolicy interface {
	policy
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

// randomPolicy is the seeded random explorer (`schedule random SEED`):
// a uniform choice among the candidates of every decision.
type randomPolicy struct{ rng splitmix }

// newRandomPolicy returns a randomPolicy for seed.
func newRandomPolicy(seed uint64) *randomPolicy {
	return &randomPolicy{rng: splitmix{seed*0x9E3779B97F4A7C15 + 7}}
}

// Pick returns a uniformly chosen index.
func (p *randomPolicy) Pick(c []*task) int { return int(p.rng.next() % uint64(len(c))) }
func (p *randomPolicy) exploring()         {}

// pctSteps is k of PCT: the number of decisions the change points are
// drawn from (the traces explored here make fewer than this).
const pctSteps = 48

// pctPolicy is probabilistic concurrency testing (Burckhardt et al.,
// ASPLOS 2010; `schedule pct D SEED`): every candidate (thread, or the
// kernel contexts as one) gets a random priority of at least D when first
// seen, the highest-priority candidate runs, and at D-1 decisions drawn
// from the first pctSteps the chosen candidate's priority drops below all
// initial ones. A bug of depth D is found with probability at least
// 1/(n k^(D-1)).
type pctPolicy struct {
	rng     splitmix
	depth   int
	prio    map[string]uint64
	changes []int
	step    int
}

// newPCTPolicy returns a PCT policy of depth d for seed.
func newPCTPolicy(d int, seed uint64) *pctPolicy {
	p := &pctPolicy{rng: splitmix{seed*0x9E3779B97F4A7C15 + 11}, depth: d, prio: map[string]uint64{}}
	for i := 1; i < d; i++ {
		p.changes = append(p.changes, 1+int(p.rng.next()%pctSteps))
	}
	return p
}

func (p *pctPolicy) exploring() {}

// Pick returns the highest-priority candidate after applying this
// decision's change points.
func (p *pctPolicy) Pick(c []*task) int {
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

func (p *pctPolicy) highest(c []*task) int {
	best := 0
	for i, t := range c {
		if p.prio[t.Name] > p.prio[c[best].Name] {
			best = i
		}
	}
	return best
}

// picksPolicy replays explicit choices (`schedule picks I I ...`): the
// i-th decision takes candidate Picks[i] (modulo the number of
// candidates); decisions past the list take the first candidate.
type picksPolicy struct {
	Picks []int
	i     int
}

func (p *picksPolicy) exploring() {}

// Pick returns the next recorded choice.
func (p *picksPolicy) Pick(c []*task) int {
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
	inner policy
	picks []int // the choice made at each decision
	width []int // the number of candidates at each decision
}

func (r *recorder) exploring() {}

func (r *recorder) Pick(c []*task) int {
	v := r.inner.Pick(c)
	r.picks = append(r.picks, v)
	r.width = append(r.width, len(c))
	return v
}
