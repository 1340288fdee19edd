package fuzz

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// ErrCampaign marks a campaign that could not run (a bad profile, an
// unknown mutation, an output directory it cannot write).
var ErrCampaign = errors.New("campaign")

// Campaign configures Check.
type Campaign struct {
	// Profiles to attack, as trace.ParseProfile accepts them.
	Profiles []string
	// Budget is the time spent on each profile; the campaign on a profile
	// also ends once every property has failed on it. MaxTraces, when
	// non-zero, bounds the traces per profile instead of (or as well as)
	// the budget.
	Budget    time.Duration
	MaxTraces int
	// Seed is the first trace's seed; trace i of a profile uses Seed+i,
	// both to generate it and as its `schedule` seed.
	Seed uint64
	// Mutations are the model mutations (the bug zoo) planted in the
	// model under test, as `check --mutate` plants them. There is no
	// reference run unless Reference is set: a mutation is found by the
	// properties alone, as a bug a patch brings in would be. The model
	// runs with Config.Liveness, so a lost wakeup stops the run.
	Mutations []string
	// Backend runs the traces under test; nil is the model with
	// Mutations. Reference, when set, runs each trace as the reference
	// (the live kernel under `check --diff kernel`) instead of the
	// unmutated model.
	Backend, Reference trace.Backend
	// RefTimeScale is the trace.Options.TimeScale of the Reference runs
	// (a kernel): DiffTimeScale makes the runner's dispatch and settle a
	// tenth of their real time in trace time, so that a reader's
	// SO_RCVTIMEO does not run out while later ops are dispatched, as
	// it does not in the model.
	RefTimeScale int
	// Properties to check; nil is all of Properties.
	Properties []Property
	// FirstOnly ends each profile's campaign at its first failing property
	// (the bug zoo's time-to-detect), and skips shrinking.
	FirstOnly bool
	// RunTimeout, when non-zero, skips a trace whose run takes longer (a
	// generated trace can keep the model busy for long: megabytes through
	// 1-byte stream-parser frames). It makes a campaign depend on the
	// machine's speed, so tests leave it zero.
	RunTimeout time.Duration
	// OutDir receives one trace file per counterexample; "" writes none.
	OutDir string
	// Version is the splicecheck version written into counterexamples.
	Version string
	// Progress, if set, is called after every trace.
	Progress func(profile string, traces int, elapsed time.Duration)
	// Shard and Shards split the campaign over Shards processes or
	// machines (Shards > 1): this one runs trace n of each profile only
	// when ShardOfTrace(n, Shards) == Shard, keeps a log of each trace's judgments
	// (Verdict.Log), and renders its counterexamples' files in memory
	// (Verdict.FileText) for Merge, which combines the shards into the
	// verdicts one campaign over the same traces gives.
	Shard, Shards int
}

// Verdict is one cell of the properties × profiles table.
//
// A violation that matches a known failure of the profile (MatchKnown)
// is counted in Known and the property goes on being checked; the first
// violation that matches none is NEW: Failed is set, it is shrunk
// (keeping its signature) and written, and the property is not checked
// further.
type Verdict struct {
	Profile, Property string
	Traces            int           // traces checked against this property
	Failed            bool          // a NEW failure was found
	Detect            time.Duration // time from the profile's start to the first NEW failure
	Counterexample    *trace.Trace  // shrunk, with profile and schedule directives
	File              string        // where it was written, if OutDir was set
	Detail            string        // the shrunk counterexample's violation
	Violation         *Violation    // the shrunk counterexample's violation
	// Known counts the traces that failed with each known signature
	// (Known.Signature()) of the profile.
	Known map[string]int
	// InFlight is, for stream-integrity on a loopback-splice profile, a
	// counterexample in its in-flight form (the RFC's defect (a) with
	// real segments): a failing run one of whose ring writes was made
	// while TCP payload was held on the transport's wire (a model
	// backend on a HoldingTransport: netstack), shrunk keeping that.
	// The campaign goes on looking for one after the first failure.
	InFlight       *trace.Trace
	InFlightFile   string
	InFlightDetail string
	// Coverage is the union, over the runs of the profile's campaign
	// traces that gave the model's Stats (not the shrinking runs), of the
	// mirrored kernel functions they reached. Every Outcome of a profile
	// shares it; Coverage.Runs is 0 on a backend that is not the model.
	Coverage *model.Coverage
	// Log is, for a sharded campaign (Campaign.Shards), the judgments of
	// each trace the shard ran, shared by every Verdict of the profile;
	// FailedAt and InFlightAt are the trace numbers of the NEW failure and
	// the in-flight form, and FileText and InFlightText their
	// counterexample files (also when OutDir is ""), for Merge.
	Log                    *SeedLog `json:"-"`
	FailedAt, InFlightAt   int      `json:"-"`
	FileText, InFlightText []byte   `json:"-"`
}

// inFlightProperty is the property whose in-flight form a campaign on a
// loopback-splice profile looks for (Verdict.InFlight).
const inFlightProperty = "stream-integrity"

// Check runs the campaign and returns one Verdict per profile and
// property, in order. A counterexample is shrunk with Minimize against the
// same property and written to OutDir as PROFILE_PROPERTY.trace, carrying
// `profile` and `schedule` directives so that `splicecheck run FILE`
// replays it.
//
// When ctx ends (an interrupted command), Check returns ctx's error with
// the Outcomes of the profiles it attacked so far: the last one's count
// the traces judged before the end, and a counterexample found then is
// written, shrunk as far as it got. Profiles not reached have none.
func Check(ctx context.Context, c Campaign) ([]Verdict, error) {
	props := c.Properties
	if props == nil {
		props = Properties
	}
	sut := c.Backend
	ref := c.Reference
	if sut == nil {
		mb, err := NewCampaignModel(c.Mutations)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCampaign, err)
		}
		sut = mb
	}
	if c.OutDir != "" {
		if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: output directory: %w", ErrCampaign, err)
		}
	}
	var out []Verdict
	for _, profile := range c.Profiles {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		p, err := trace.ParseProfile(profile)
		if err != nil {
			return nil, fmt.Errorf("%w: profile %q: %w", ErrCampaign, profile, err)
		}
		res, err := checkProfile(ctx, c, p, sut, ref, props)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	return out, ctx.Err()
}

// DiffTimeScale is the TimeScale of the kernel side of a differential
// campaign (check --diff, make crosscheck): the runner dispatches and
// settles a generated trace in 40 ms (median; 77 ms at the 90th
// percentile, on 2 loaded cores), against reads bounded by 20-65 ms
// SO_RCVTIMEOs, 15 ms apart. Ten times slower, dispatch is 4-8 ms of
// trace time and the timeouts are 150 ms apart on the kernel's clock.
const DiffTimeScale = 10

// proxySeed reports whether a campaign's trace of seed is a proxy trace
// (ProxyTrace), for the proxy-parity property: one in sixteen. Campaigns
// against a kernel write none: a copy form's threads live as long as
// the proxy, and their end would race the runner's timeouts.
func proxySeed(seed uint64) bool { return seed%16 == 15 }

// proxyVia is the proxy form of a campaign's proxy trace on profile p:
// SO_SPLICE on FreeBSD's, else one of the Linux forms by turns.
func proxyVia(p trace.Profile, seed uint64) Mech {
	if p.Base == trace.FreeBSDProfile {
		return ViaSoSplice
	}
	return ViaSockmap + Mech(seed/16%3)
}

// runOne runs t on sut and, if set, on ref.
func runOne(ctx context.Context, sut, ref trace.Backend, t *trace.Trace) *Execution {
	return runOneScaled(ctx, sut, ref, 0, t)
}

// runOneScaled is runOne with TimeScale refScale on ref. A run cut short by ctx has
// Skipped set.
func runOneScaled(ctx context.Context, sut, ref trace.Backend, refScale int, t *trace.Trace) *Execution {
	return runExecution(ctx, sut, ref, refScale, t, false)
}

// runExecution is runOneScaled, with sut's event log when timeline is
// set.
func runExecution(ctx context.Context, sut, ref trace.Backend, refScale int, t *trace.Trace, timeline bool) *Execution {
	r := &Execution{Trace: t}
	defer func() { r.Skipped = ctx.Err() != nil }()
	r.Obs, r.Stats, r.Timeline, r.Err = runStats(ctx, sut, t, timeline)
	r.runBase(ctx, sut)
	r.runVariants(ctx, sut)
	if ref != nil {
		r.Ref, r.RefErr = trace.Observe(ctx, ref, t, trace.Options{TimeScale: refScale})
		if r.Ref == nil && r.RefErr == nil {
			r.Ref = []trace.Observation{}
		}
	}
	return r
}

// runBase runs r's trace on sut with the base profile of its own, a
// patch profile's (Bases), for the transparent property: r.Base,
// r.BaseStats, r.BaseErr. It does nothing for a run that failed or a
// profile without a base.
func (r *Execution) runBase(ctx context.Context, sut trace.Backend) {
	p, err := trace.ParseProfile(r.Trace.Profile)
	if err != nil || r.Err != nil {
		return
	}
	base, ok := Bases[p.String()]
	if !ok {
		return
	}
	bt := *r.Trace
	bt.Profile = base
	r.Base, r.BaseStats, _, r.BaseErr = runStats(ctx, sut, &bt, false)
}

// runStats runs t on b with the run's account (model.Stats), and its
// event log when timeline is set, when b keeps them, else
// (trace.ErrNoStats: a kernel) without.
func runStats(ctx context.Context, b trace.Backend, t *trace.Trace, timeline bool) ([]trace.Observation, *model.Stats, *trace.Timeline, error) {
	res, err := trace.Run(ctx, b, t, trace.Options{Stats: true, Timeline: timeline})
	if errors.Is(err, trace.ErrNoStats) {
		res, err = trace.Run(ctx, b, t, trace.Options{})
	}
	st, _ := res.Stats.(*model.Stats)
	return res.Obs, st, res.Timeline, err
}

// NewCampaignModel returns the model backend as campaigns run it: the
// given mutations planted, liveness checks and byte provenance on.
func NewCampaignModel(mutations []string) (*model.Backend, error) {
	return model.NewWithConfig(model.Config{Mutations: mutations, Liveness: true, Provenance: true})
}

func checkProfile(ctx context.Context, c Campaign, p trace.Profile, sut, ref trace.Backend, props []Property) ([]Verdict, error) {
	pair := p.Has("loopback-splice") || p.Has("loopback-splice-seq")
	splice := p.Has("splice-copy") || p.Has("splice-zerocopy")
	// A trace that also runs on a kernel (a --diff reference, or a kernel
	// backend under test) keeps to what a kernel runs without the runner
	// forcing ops out, and pairs at establishment only.
	_, modelSUT := sut.(*model.Backend)
	kernelSafe := ref != nil || !modelSUT
	gen := Trace(GenConfig{Threads: true, Pair: pair, EstablishedPairOnly: p.Has("loopback-splice-seq"), Splice: splice, SoSplice: p.Base == trace.FreeBSDProfile,
		KernelSafe: kernelSafe})
	outs := make([]Verdict, len(props))
	for i, pr := range props {
		outs[i] = Verdict{Profile: p.String(), Property: pr.Name}
	}
	cov := new(model.Coverage)
	for i := range outs {
		outs[i].Coverage = cov
	}
	start := time.Now()
	open := len(props)
	var log *SeedLog
	if c.Shards > 1 {
		log = &SeedLog{}
		for i := range outs {
			outs[i].Log = log
		}
	}
	n, done := 0, 0
	defer func() {
		if log != nil {
			log.Ran = n // every trace of the shard before n was run (or skipped)
		}
	}()
	for ; open > 0 && ctx.Err() == nil; n++ {
		if (c.MaxTraces > 0 && n >= c.MaxTraces) || (c.Budget > 0 && time.Since(start) >= c.Budget) {
			break
		}
		if log != nil && ShardOfTrace(n, c.Shards) != c.Shard {
			continue
		}
		seed := c.Seed + uint64(n)
		var t *trace.Trace
		if proxySeed(seed) && !kernelSafe {
			t = ProxyTrace(proxyVia(p, seed)).Example(int(seed))
		} else {
			t = gen.Example(int(seed))
		}
		t.Profile = p.String()
		t.Schedule = &trace.Schedule{HasSeed: true, Seed: seed}
		if pair && !kernelSafe {
			// Explore the interleavings where the ring races live:
			// seeded random and PCT (depth 3) by turns. Not against a
			// kernel: an exploring schedule holds the model's softirq
			// back where loopback delivers within the send, so every
			// trace would differ by schedule, not by behaviour.
			t.Schedule.Strategy = trace.StrategyRandom
			if seed%2 == 1 {
				t.Schedule.Strategy, t.Schedule.Depth = trace.StrategyPCT, 3
			}
		}
		r := c.runOne(ctx, sut, ref, t)
		if ctx.Err() != nil {
			break
		}
		sr := SeedResult{N: n, Skipped: r.Skipped}
		if log != nil {
			log.Seeds = append(log.Seeds, &sr)
		}
		done++
		if r.Skipped {
			continue
		}
		if rc := coverageOf(r); rc != nil {
			if log != nil {
				sr.Cov = rc.Without(cov)
			}
			cov.Merge(rc)
		}
		for i, pr := range props {
			o := &outs[i]
			if o.Failed {
				continue
			}
			o.Traces++
			v := pr.Judge(r)
			if v == nil {
				continue
			}
			if k, known := MatchKnown(p.String(), v); known {
				if o.Known == nil {
					o.Known = map[string]int{}
				}
				o.Known[k.Signature()]++
				sr.Judged = append(sr.Judged, Judgment{Property: pr.Name, Known: k.Signature()})
				if pair && o.InFlight == nil && pr.Name == inFlightProperty && !c.FirstOnly {
					if err := c.inFlightForm(ctx, o, p, pr, sut, ref, r); err != nil {
						return nil, err
					}
					if o.InFlight != nil {
						o.InFlightAt = n
					}
				}
				continue
			}
			sr.Judged = append(sr.Judged, Judgment{Property: pr.Name, New: true})
			o.Failed, o.Detect, o.Detail, o.Violation, o.Counterexample = true, time.Since(start), v.Error(), v, t
			o.FailedAt = n
			open--
			if c.FirstOnly {
				open = 0
				continue
			}
			sig := v.Signature()
			o.Counterexample = Minimize(t, func(ct *trace.Trace) bool {
				cr := c.runOne(ctx, sut, ref, ct)
				cv := pr.Judge(cr)
				return !cr.Skipped && cv != nil && cv.Signature() == sig
			})
			// (An interrupt skips the run: the first violation stays.)
			if cr := c.runOne(ctx, sut, ref, o.Counterexample); !cr.Skipped {
				if v := pr.Judge(cr); v != nil {
					o.Detail, o.Violation = v.Error(), v
				}
			}
			if c.OutDir != "" || log != nil {
				file := filepath.Join(c.OutDir, fileName(p.String(), pr.Name))
				text, err := c.writeCounterexample(ctx, file, pr, p.String(), seed, o.Counterexample, o.Violation, sut)
				if err != nil {
					return nil, err
				}
				o.FileText = text
				if c.OutDir != "" {
					o.File = file
				}
			}
		}
		if c.Progress != nil {
			c.Progress(p.String(), done, time.Since(start))
		}
	}
	return outs, nil
}

// inFlightForm makes r o's in-flight counterexample if r fails pr with
// a ring write made while TCP payload was held in flight: it is shrunk
// keeping both, and written to OutDir as PROFILE_PROPERTY_inflight.trace.
func (c *Campaign) inFlightForm(ctx context.Context, o *Verdict, p trace.Profile, pr Property, sut, ref trace.Backend, r *Execution) error {
	v := pr.Judge(r)
	if _, ok := r.Stats.InFlightRingWrite(); !ok || v == nil {
		return nil
	}
	sig := v.Signature()
	fails := func(cr *Execution) bool {
		_, held := cr.Stats.InFlightRingWrite()
		cv := pr.Judge(cr)
		return !cr.Skipped && held && cv != nil && cv.Signature() == sig
	}
	ce := Minimize(r.Trace, func(ct *trace.Trace) bool { return fails(c.runOne(ctx, sut, ref, ct)) })
	cr := c.runOne(ctx, sut, ref, ce)
	if !fails(cr) {
		return nil // ran out of time while replaying: not judged
	}
	w, _ := cr.Stats.InFlightRingWrite()
	cv := pr.Judge(cr)
	o.InFlight = ce
	o.InFlightDetail = fmt.Sprintf("%v; %s's ring write of %d bytes was made while %d TCP segments (%d payload bytes) were held in flight",
		cv, w.Sock, w.Bytes, w.HeldSegs, w.HeldBytes)
	if c.OutDir == "" && c.Shards <= 1 {
		return nil
	}
	file := filepath.Join(c.OutDir, inFlightName(p.String(), pr.Name))
	text, err := c.writeCounterexample(ctx, file, pr, p.String(), r.Trace.Schedule.Seed, ce, cv, sut)
	o.InFlightText = text
	if c.OutDir != "" {
		o.InFlightFile = file
	}
	return err
}

func inFlightName(profile, property string) string {
	return strings.TrimSuffix(fileName(profile, property), ".trace") + "_inflight.trace"
}

// runOne is runOne within c.RunTimeout.
func (c *Campaign) runOne(ctx context.Context, sut, ref trace.Backend, t *trace.Trace) *Execution {
	if c.RunTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.RunTimeout)
		defer cancel()
	}
	return runOneScaled(ctx, sut, ref, c.RefTimeScale, t)
}

func fileName(profile, property string) string {
	return strings.NewReplacer("+", "_", "-", "_").Replace(profile+"_"+property) + ".trace"
}
