package fuzz

import (
	"context"
	"errors"
	"fmt"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// Schedule search: one trace, many interleavings. Where a campaign
// generates traces and runs each under one schedule, a search keeps the
// trace and explores its schedules with the model's exploring policies
// (model.ExploreRun: seeded random, PCT, or a depth-first enumeration of
// `schedule picks`), judging every run with the properties, as a
// campaign judges a run of the same trace with the same `schedule`
// directive. What it finds is a counterexample that `splicecheck run`
// replays, and ShrinkSchedules shrinks it with Minimize.

// StrategyExhaustive is SearchConfig.Strategy for bounded exhaustive
// search: depth-first over the choices of the first MaxBranch decisions
// (model.Outcome.NextPicks).
const StrategyExhaustive = "exhaustive"

// ErrNoViolation is returned by ShrinkSchedules when the search of the
// trace it was given finds no violation to shrink.
var ErrNoViolation = errors.New("schedule search: no violation found")

// SearchConfig bounds a schedule search and says what it looks for.
type SearchConfig struct {
	// Strategy is trace.StrategyRandom, trace.StrategyPCT or
	// StrategyExhaustive.
	Strategy string
	Depth    int    // PCT depth (default 3)
	Seed     uint64 // first seed (random, PCT); run i uses Seed+i
	Runs     int    // the most runs
	// MaxBranch bounds exhaustive search: only the first MaxBranch
	// decisions of a run branch (default 24).
	MaxBranch int
	// Properties judge every run; nil is SearchProperties.
	Properties []Property
	// Accept, when set, narrows what the search looks for: a violation
	// it rejects (a known defect, another variant) does not end the
	// search, and the run's other properties are judged still. o is the
	// run, with what the model recorded of it (Received, RingWrites).
	Accept func(o *model.Outcome, v *Violation) bool
}

// SearchProperties are the properties a search judges by default: the
// run's error (model-sound, page-ownership, no-lost-wakeup,
// no-livelock, no-teardown-leak: what stopped the run, a deadlock
// included), byte provenance (stream-integrity), ring-content and
// eof-after-data.
var SearchProperties = propertiesNamed("model-sound", "page-ownership", "no-lost-wakeup", "no-livelock",
	"no-teardown-leak", "stream-integrity", "ring-content", "eof-after-data")

// propertiesNamed returns the named properties of Properties, in the
// order given; it panics on a name Properties lacks (a programming error).
func propertiesNamed(names ...string) []Property {
	out := make([]Property, 0, len(names))
	for _, n := range names {
		p, ok := PropertyByName(n)
		if !ok {
			panic("fuzz: no property " + n)
		}
		out = append(out, p)
	}
	return out
}

// SearchResult is what a search found.
type SearchResult struct {
	Runs int
	// Violation is the first violation the search accepted, nil if none
	// was found; Run and Outcome are the run it was found in.
	Violation *Violation
	Run       *Execution
	Outcome   *model.Outcome
	// Schedule replays the violating run; Counterexample is the trace
	// searched with it, and with opts.Profile when that was set.
	Schedule       *trace.Schedule
	Counterexample *trace.Trace
	// Exhausted: exhaustive search covered every schedule in bound.
	Exhausted bool
}

// Header is the counterexample header of res's violation (Property,
// Signature, Profile, Violation): the caller adds what it knows of
// mutations and version. res must hold a violation.
func (res *SearchResult) Header() Header {
	v := res.Violation
	return Header{Property: v.Property, Signature: v.Signature(), Profile: res.Counterexample.Profile, Violation: v.Error()}
}

// SearchSchedules explores schedules of t on b until a run violates a
// property of cfg that cfg.Accept takes, or cfg.Runs runs are done.
//
// Every run is model.ExploreRun of t with the `schedule` directive of
// the run's policy, which runs exactly as Backend.Run (and so
// `splicecheck run`, Replay and a campaign) runs the trace with that
// directive; it is judged as a campaign judges it (an Execution without a
// reference). So the Counterexample, written out, replays the violation.
// b should be the model as campaigns make it (NewCampaignModel, or a
// model.Config with Liveness and Provenance, on any Transport): a
// property that needs what such a backend records cannot fail on
// another. opts.Profile, when set, replaces t's profile; the other
// options are passed to every run (a counterexample replays as found
// under the same options).
//
// A run that fails with an error no property of cfg reports ends the
// search with that error, as does ctx.
func SearchSchedules(ctx context.Context, b *model.Backend, t *trace.Trace, opts trace.Options, cfg SearchConfig) (*SearchResult, error) {
	if cfg.Depth == 0 {
		cfg.Depth = 3
	}
	if cfg.MaxBranch == 0 {
		cfg.MaxBranch = 24
	}
	props := cfg.Properties
	if props == nil {
		props = SearchProperties
	}
	base := *t
	if opts.Profile != "" {
		base.Profile = opts.Profile
	}
	res := &SearchResult{}
	var prefix []int
	for res.Runs < cfg.Runs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		seed := cfg.Seed + uint64(res.Runs)
		run := base
		switch cfg.Strategy {
		case trace.StrategyRandom:
			run.Schedule = &trace.Schedule{Strategy: trace.StrategyRandom, Seed: seed}
		case trace.StrategyPCT:
			run.Schedule = &trace.Schedule{Strategy: trace.StrategyPCT, Depth: cfg.Depth, Seed: seed}
		case StrategyExhaustive:
			run.Schedule = &trace.Schedule{Strategy: trace.StrategyPicks, Picks: prefix}
		default:
			return res, fmt.Errorf("search %s: strategy %q: %w", t.File, cfg.Strategy, ErrCampaign)
		}
		o, err := b.ExploreRun(ctx, &run, opts, run.Schedule)
		if err != nil {
			return res, err
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Runs++
		if cfg.Strategy == StrategyExhaustive {
			// The whole run, not only the prefix that led to it; a run
			// without a decision is `picks 0` (a `schedule picks` with no
			// choice does not parse), which takes the same first
			// candidates.
			picks := o.Picks
			if len(picks) == 0 {
				picks = []int{0}
			}
			run.Schedule = &trace.Schedule{Strategy: trace.StrategyPicks, Picks: picks}
		}
		r := &Execution{Trace: &run, Obs: o.Obs, Err: o.Err, Stats: o.Stats}
		if needsBase(props) {
			r.runBase(ctx, b)
		}
		v, judged := judge(r, props, func(v *Violation) bool { return cfg.Accept == nil || cfg.Accept(o, v) })
		if v != nil {
			res.Violation, res.Run, res.Outcome = v, r, o
			res.Schedule, res.Counterexample = run.Schedule, &run
			return res, nil
		}
		if o.Err != nil && !judged {
			return res, fmt.Errorf("search %s: run %d: an error no property of the search reports: %w", t.File, res.Runs, o.Err)
		}
		if cfg.Strategy == StrategyExhaustive {
			next, ok := o.NextPicks(cfg.MaxBranch)
			if !ok {
				res.Exhausted = true
				return res, nil
			}
			prefix = next
		}
	}
	return res, nil
}

// judge returns the violation of the first of props that r violates
// and accept takes, and whether any of props reported r's error.
func judge(r *Execution, props []Property, accept func(*Violation) bool) (_ *Violation, judged bool) {
	for _, p := range props {
		v := p.Judge(r)
		if v == nil {
			continue
		}
		judged = judged || r.Err != nil
		if accept(v) {
			return v, judged
		}
	}
	return nil, judged
}

// needsBase reports whether props judge a run against its base
// profile's (the transparent property).
func needsBase(props []Property) bool {
	for _, p := range props {
		if p.Name == "transparent" {
			return true
		}
	}
	return false
}

// ShrinkSchedules searches t with cfg (SearchSchedules) and shrinks what
// it finds: Minimize removes lines of t (its own `schedule`, if any, is
// dropped first: each candidate is searched anew) while a search of the
// smaller trace with cfg still finds a violation with the signature
// found first. It returns that last search's result: the shrunk
// counterexample, with its profile and the schedule of its violating
// run. Without a violation to start from, the error wraps
// ErrNoViolation.
func ShrinkSchedules(ctx context.Context, b *model.Backend, t *trace.Trace, opts trace.Options, cfg SearchConfig) (*SearchResult, error) {
	start := *t
	start.Schedule = nil
	if opts.Profile != "" {
		start.Profile = opts.Profile
	}
	best, err := SearchSchedules(ctx, b, &start, opts, cfg)
	if err != nil {
		return nil, err
	}
	if best.Violation == nil {
		return nil, fmt.Errorf("shrink %s: %w in %d runs", t.File, ErrNoViolation, best.Runs)
	}
	sig := best.Violation.Signature()
	Minimize(&start, func(ct *trace.Trace) bool {
		if ctx.Err() != nil {
			return false
		}
		res, err := SearchSchedules(ctx, b, ct, opts, cfg)
		if err != nil || res.Violation == nil || res.Violation.Signature() != sig {
			return false // a removal that loses it, or makes a run no property judges
		}
		best = res
		return true
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return best, nil
}
