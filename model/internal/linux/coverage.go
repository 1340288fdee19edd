package linux

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
)

//go:generate go run ../mirrorgen

// Coverage of the kernel mirror: which of the model functions that mirror
// kernel functions a run reached.
//
// Every function whose doc comment says it mirrors a kernel function
// (the rule of package internal/mirrors) has an Fn in the generated
// registry (coverage_table.go) and, as its first statement, exactly one
// reach call with its own Fn: k.reach(fnX) where a *kernel is at hand
// (a method of kernel, or through sk.k, psock.Sk.k, the transport's k,
// ...), else the package-level reach(fnX). No other function calls reach.
// TestCoverageRegistry checks both directions against the source, so the
// registry cannot rot.
//
// Cost: k.reach is one byte store into the run's set; reach is one
// atomic load (a plain load on amd64) and, the first time in a run, an
// atomic store. Neither allocates nor looks anything up, and both are
// small enough for the compiler to inline.

// Fn is a model function that mirrors a kernel function: an index into
// the registry.
type Fn uint16

// fnInfo is a registry entry.
type fnInfo struct {
	goName string // Go name, qualified by its receiver type unless kernel
	kernel string // the kernel function it mirrors
	file   string // the model file that holds it
}

// Kernel is the name of f's kernel function ("tcp_bpf_recvmsg"). Two
// model functions may share one (one per transport, or the RFC's and the
// module's splice_send_ring).
func (f Fn) Kernel() string { return fnTable[f].kernel }

// Go is f's Go name, qualified by its receiver type unless that is the
// run's kernel ("tcpBpfRecvmsg", "pipe.full", "refTCP.tcpFin").
func (f Fn) Go() string { return fnTable[f].goName }

// File is the model source file that holds f.
func (f Fn) File() string { return fnTable[f].file }

// String is "kernel_name (goName)".
func (f Fn) String() string { return f.Kernel() + " (" + f.Go() + ")" }

// fns returns every registered function, in registry order (by file,
// then position).
func fns() []Fn {
	out := make([]Fn, numFn)
	for i := range out {
		out[i] = Fn(i)
	}
	return out
}

// LookupFn returns the registered function whose Go name (as Fn.Go
// spells it) is name.
func LookupFn(name string) (Fn, bool) {
	for i := range fnTable {
		if fnTable[i].goName == name {
			return Fn(i), true
		}
	}
	return 0, false
}

// Coverage is the set of mirrored functions one run, or the union of
// several (Merge), reached, with the configurations (profile features,
// transport) those runs had, which decide the functions that could have
// been reached (Applies).
//
// Invariants: a reached function applies to some merged run (the scopes
// of coverage_scope.go are right; TestCoverageScopes checks it on the
// corpus); Partial reports runs during which another run of the process
// was in flight, whose kernel-less reaches (reach) could not be told
// apart and were dropped, so the set under-approximates theirs.
type Coverage struct {
	hit     [numFn]bool
	scopes  scope // union of the runs' runScopes
	runs    int
	partial int
}

// Reached reports whether a merged run reached f.
func (c *Coverage) Reached(f Fn) bool { return c.hit[f] }

// Applies reports whether f could run in one of the merged runs'
// configurations: it is of no profile or transport in particular, or of
// one a run had.
func (c *Coverage) Applies(f Fn) bool {
	s := fnScope[f]
	return s == 0 || c.scopes&s != 0
}

// Runs is the number of runs merged.
func (c *Coverage) Runs() int { return c.runs }

// Partial is the number of merged runs whose kernel-less reaches are
// missing (see Coverage).
func (c *Coverage) Partial() int { return c.partial }

// Merge adds o's runs to c. A nil o adds nothing.
func (c *Coverage) Merge(o *Coverage) {
	if o == nil {
		return
	}
	for f, hit := range o.hit {
		c.hit[f] = c.hit[f] || hit
	}
	c.scopes |= o.scopes
	c.runs += o.runs
	c.partial += o.partial
}

// Count returns the number of applicable functions reached and the number
// of applicable functions.
func (c *Coverage) Count() (reached, applicable int) {
	for f := range Fn(numFn) {
		if c.Applies(f) {
			applicable++
			if c.Reached(f) {
				reached++
			}
		}
	}
	return reached, applicable
}

// Without returns c less the functions o reached: the same runs and
// configurations, only the reaches o lacks (what c adds to o). A nil o
// takes nothing away.
func (c *Coverage) Without(o *Coverage) *Coverage {
	d := *c
	if o != nil {
		for f, hit := range o.hit {
			d.hit[f] = d.hit[f] && !hit
		}
	}
	return &d
}

// coverageJSON is Coverage's JSON form: the reached functions by Go name.
type coverageJSON struct {
	Reached []string `json:"reached,omitempty"`
	Scopes  scope    `json:"scopes"`
	Runs    int      `json:"runs"`
	Partial int      `json:"partial,omitempty"`
}

// MarshalJSON writes c with its reached functions named.
func (c *Coverage) MarshalJSON() ([]byte, error) {
	j := coverageJSON{Scopes: c.scopes, Runs: c.runs, Partial: c.partial}
	for f := range Fn(numFn) {
		if c.hit[f] {
			j.Reached = append(j.Reached, f.Go())
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote; a function name this
// build does not register is an error.
func (c *Coverage) UnmarshalJSON(b []byte) error {
	var j coverageJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Coverage{scopes: j.Scopes, runs: j.Runs, partial: j.Partial}
	for _, name := range j.Reached {
		f, ok := LookupFn(name)
		if !ok {
			return fmt.Errorf("coverage: no mirrored function %q in this build", name)
		}
		c.hit[f] = true
	}
	return nil
}

// Unreached returns the applicable functions no merged run reached, in
// registry order.
func (c *Coverage) Unreached() []Fn {
	var out []Fn
	for f := range Fn(numFn) {
		if c.Applies(f) && !c.Reached(f) {
			out = append(out, f)
		}
	}
	return out
}

// OutOfScope lists the reached functions whose scope says no merged run
// could reach them: empty unless coverage_scope.go is wrong.
func (c *Coverage) OutOfScope() []Fn {
	var out []Fn
	for f := range Fn(numFn) {
		if c.Reached(f) && !c.Applies(f) {
			out = append(out, f)
		}
	}
	return out
}

// reach records that the run reached f.
func (k *kernel) reach(f Fn) { k.stats.Coverage.hit[f] = true }

// leaf is where the functions with no *kernel at hand (pipe and sk_msg
// ring helpers, page references, iterators) record their reaches. It is
// shared by the process: a run owns it when no other run of
// Backend.Run was in flight at any time during it (the
// campaign runs one trace at a time), and its reaches are then exactly
// the run's; otherwise the run's coverage is Partial.
var leaf struct {
	hit    [numFn]uint32 // atomic: 1 once reached
	active atomic.Int32  // runs in flight
	starts atomic.Uint64 // runs ever started
}

// reach records that the running run reached f (see leaf).
func reach(f Fn) {
	if atomic.LoadUint32(&leaf.hit[f]) == 0 {
		atomic.StoreUint32(&leaf.hit[f], 1)
	}
}

// coverSession is a run's claim on leaf, from coverStart to coverEnd.
type coverSession struct {
	first bool   // no other run was in flight when it started
	start uint64 // leaf.starts after its start
}

// coverStart starts the coverage of k's run: it claims leaf, and clears
// it if no other run is in flight. It costs a load per leaf function,
// and a store per one the previous run reached.
func (k *kernel) coverStart() coverSession {
	s := coverSession{first: leaf.active.Add(1) == 1, start: leaf.starts.Add(1)}
	if s.first {
		for _, f := range leafFns {
			if atomic.LoadUint32(&leaf.hit[f]) != 0 {
				atomic.StoreUint32(&leaf.hit[f], 0)
			}
		}
	}
	return s
}

// coverEnd ends the coverage of k's run begun by s: it sets the run's
// configuration and takes the leaf reaches into k.stats.Coverage, or
// marks it Partial if another run was in flight meanwhile.
func (k *kernel) coverEnd(s coverSession) {
	c := &k.stats.Coverage
	var hit [len(leafFns)]bool
	for i, f := range leafFns {
		hit[i] = atomic.LoadUint32(&leaf.hit[f]) != 0
	}
	// Nobody started since (the reaches read are ours) and nobody was in
	// flight when we started (nobody else wrote them).
	if s.first && leaf.starts.Load() == s.start {
		for i, f := range leafFns {
			c.hit[f] = c.hit[f] || hit[i]
		}
	} else {
		c.partial++
	}
	leaf.active.Add(-1)
	_, ext := k.tcp.(*extTCP)
	c.scopes |= runScopes(k.prof, ext)
	c.runs++
}
