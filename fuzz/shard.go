package fuzz

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// A campaign split in shards (Campaign.Shards) runs on several processes
// or machines, each on its share of each profile's traces, and Merge
// combines what they found into the verdicts one campaign over the same
// traces gives: the same table, the same counterexamples. Each shard logs
// the judgments of every trace it ran (SeedLog); Merge replays one
// campaign's bookkeeping over the traces in order, up to the first
// trace some shard did not reach.

// ShardOfTrace is the shard, of shards, that runs trace n of each
// profile: a hash of n, so that every shard gets its share of each kind
// of trace (one in sixteen is a proxy trace, a pair profile's schedule
// strategy alternates with the seed), not all of one.
func ShardOfTrace(n, shards int) int {
	z := uint64(n) + 0x9e3779b97f4a7c15 // splitmix64's finaliser
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return int((z ^ z>>31) % uint64(shards))
}

// ErrShards: the results given to Merge are not the shards of one
// campaign.
var ErrShards = errors.New("shards")

// SeedLog is what a shard ran of one profile: the traces of its share
// (ShardOfTrace) numbered below Ran were run (or skipped), each judged
// as Seeds says.
type SeedLog struct {
	Ran   int           `json:"ran"`
	Seeds []*SeedResult `json:"seeds"`
}

// SeedResult is one trace of a shard: skipped (its run outlasted
// Campaign.RunTimeout), or judged: the properties it failed (known, or
// NEW), and what it added to the shard's coverage.
type SeedResult struct {
	N       int             `json:"n"`
	Skipped bool            `json:"skipped,omitempty"`
	Judged  []Judgment      `json:"judged,omitempty"`
	Cov     *model.Coverage `json:"cov,omitempty"`
}

// Judgment is a property a trace failed: with a known failure's
// signature, or NEW.
type Judgment struct {
	Property string `json:"property"`
	Known    string `json:"known,omitempty"`
	New      bool   `json:"new,omitempty"`
}

// Shard is one shard's result as `check --shard K/N --format json`
// writes it: the campaign it is part of, and per profile and property
// its verdict and (once per profile) its log.
type Shard struct {
	Shard, Shards int
	// Backend and Diff name the backend the traces ran on and the
	// reference they were compared with (check --backend, --diff), for
	// the command that replays a counterexample.
	Backend, Diff string
	Seed          uint64
	MaxTraces     int
	Mutations     []string
	Properties    []string
	Verdicts      []ShardVerdict
}

// ShardVerdict is a Verdict as a shard reports it.
type ShardVerdict struct {
	Profile, Property string
	Failed            bool
	FailedAt          int           `json:",omitempty"`
	Detect            time.Duration `json:",omitempty"`
	Detail            string        `json:",omitempty"`
	Violation         *Violation    `json:",omitempty"`
	FileText          string        `json:",omitempty"`
	InFlightAt        int           `json:",omitempty"`
	InFlightDetail    string        `json:",omitempty"`
	InFlightText      string        `json:",omitempty"`
	HasInFlight       bool          `json:",omitempty"`
	Log               *SeedLog      `json:",omitempty"` // on the profile's first property only
}

// ShardOf is c's result as a Shard (c.Shards > 1).
func ShardOf(c Campaign, outs []Verdict) Shard {
	props := c.Properties
	if props == nil {
		props = Properties
	}
	s := Shard{Shard: c.Shard, Shards: c.Shards, Seed: c.Seed, MaxTraces: c.MaxTraces, Mutations: c.Mutations}
	for _, p := range props {
		s.Properties = append(s.Properties, p.Name)
	}
	logged := map[string]bool{}
	for _, o := range outs {
		v := ShardVerdict{Profile: o.Profile, Property: o.Property, Failed: o.Failed, FailedAt: o.FailedAt,
			Detect: o.Detect, Detail: o.Detail, Violation: o.Violation, FileText: string(o.FileText),
			HasInFlight: o.InFlight != nil, InFlightAt: o.InFlightAt, InFlightDetail: o.InFlightDetail, InFlightText: string(o.InFlightText)}
		if !logged[o.Profile] {
			logged[o.Profile] = true
			v.Log = o.Log
		}
		s.Verdicts = append(s.Verdicts, v)
	}
	return s
}

// Merge combines shards 0..N-1 of one campaign into its verdicts, as
// one campaign over traces 0, 1, 2, ... of each profile would give them,
// up to the first trace a shard did not reach (all of them when the
// shards ran to the same --traces). It writes the counterexamples to
// outDir ("" writes none). The shards must be N results of one campaign
// (seed, traces, mutations, properties), shard K given once for each K.
func Merge(shards []Shard, outDir string) ([]Verdict, error) {
	if len(shards) == 0 {
		return nil, fmt.Errorf("%w: no shard", ErrShards)
	}
	n0 := shards[0]
	seen := make([]bool, n0.Shards)
	for i, s := range shards {
		switch {
		case s.Shards != n0.Shards || s.Seed != n0.Seed || s.MaxTraces != n0.MaxTraces ||
			!slices.Equal(s.Mutations, n0.Mutations) || !slices.Equal(s.Properties, n0.Properties):
			return nil, fmt.Errorf("%w: result %d is of another campaign (shards, seed, traces, mutations or properties differ from the first's)", ErrShards, i+1)
		case s.Shard < 0 || s.Shard >= s.Shards:
			return nil, fmt.Errorf("%w: result %d is shard %d of %d", ErrShards, i+1, s.Shard, s.Shards)
		case seen[s.Shard]:
			return nil, fmt.Errorf("%w: shard %d/%d given twice", ErrShards, s.Shard, s.Shards)
		}
		seen[s.Shard] = true
	}
	if len(shards) != n0.Shards {
		return nil, fmt.Errorf("%w: %d of %d shards given", ErrShards, len(shards), n0.Shards)
	}
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: output directory: %w", ErrCampaign, err)
		}
	}
	var profiles []string
	for _, v := range n0.Verdicts {
		if !slices.Contains(profiles, v.Profile) {
			profiles = append(profiles, v.Profile)
		}
	}
	var out []Verdict
	for _, p := range profiles {
		vs, err := mergeProfile(shards, p, outDir)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

// mergeProfile is Merge for one profile: checkProfile's bookkeeping over
// the shards' logs in trace order.
func mergeProfile(shards []Shard, profile, outDir string) ([]Verdict, error) {
	props := shards[0].Properties
	byProp := map[string][]*ShardVerdict{} // per property, each shard's verdict
	end := -1
	var seeds []*SeedResult
	for _, s := range shards {
		var log *SeedLog
		for i := range s.Verdicts {
			v := &s.Verdicts[i]
			if v.Profile != profile {
				continue
			}
			byProp[v.Property] = append(byProp[v.Property], v)
			if v.Log != nil {
				log = v.Log
			}
		}
		if log == nil {
			return nil, fmt.Errorf("%w: shard %d/%d has no log of %s", ErrShards, s.Shard, s.Shards, profile)
		}
		if end < 0 || log.Ran < end {
			end = log.Ran
		}
		seeds = append(seeds, log.Seeds...)
	}
	if m := shards[0].MaxTraces; m > 0 {
		end = min(end, m)
	}
	slices.SortFunc(seeds, func(a, b *SeedResult) int { return a.N - b.N })
	outs := make([]Verdict, len(props))
	idx := map[string]int{}
	cov := new(model.Coverage)
	for i, pr := range props {
		outs[i] = Verdict{Profile: profile, Property: pr, Coverage: cov}
		idx[pr] = i
	}
	open := len(props)
	for _, sr := range seeds {
		if sr.N >= end || open == 0 {
			break
		}
		if sr.Skipped {
			continue
		}
		cov.Merge(sr.Cov)
		judged := map[string]Judgment{}
		for _, j := range sr.Judged {
			judged[j.Property] = j
		}
		for i, pr := range props {
			o := &outs[i]
			if o.Failed {
				continue
			}
			o.Traces++
			j, ok := judged[pr]
			switch {
			case !ok:
			case j.New:
				open--
				if err := o.takeFailure(byProp[pr], sr.N, outDir); err != nil {
					return nil, err
				}
			default:
				if o.Known == nil {
					o.Known = map[string]int{}
				}
				o.Known[j.Known]++
			}
		}
	}
	for i, pr := range props {
		if err := outs[i].takeInFlight(byProp[pr], end, outDir); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// takeFailure makes o the NEW failure found at trace n by the shard
// that ran it.
func (o *Verdict) takeFailure(vs []*ShardVerdict, n int, outDir string) error {
	for _, v := range vs {
		if !v.Failed || v.FailedAt != n {
			continue
		}
		o.Failed, o.FailedAt, o.Detect, o.Detail, o.Violation = true, n, v.Detect, v.Detail, v.Violation
		o.FileText = []byte(v.FileText)
		var err error
		o.Counterexample, o.File, err = counterexampleOf(outDir, fileName(o.Profile, o.Property), o.FileText)
		return err
	}
	return fmt.Errorf("%w: no shard has the NEW failure of %s on %s at trace %d", ErrShards, o.Property, o.Profile, n)
}

// takeInFlight gives o the first in-flight form the shards found before
// trace end (Verdict.InFlight), if any.
func (o *Verdict) takeInFlight(vs []*ShardVerdict, end int, outDir string) error {
	var best *ShardVerdict
	for _, v := range vs {
		if v.HasInFlight && v.InFlightAt < end && (best == nil || v.InFlightAt < best.InFlightAt) {
			best = v
		}
	}
	if best == nil {
		return nil
	}
	o.InFlightAt, o.InFlightDetail, o.InFlightText = best.InFlightAt, best.InFlightDetail, []byte(best.InFlightText)
	var err error
	o.InFlight, o.InFlightFile, err = counterexampleOf(outDir, inFlightName(o.Profile, o.Property), o.InFlightText)
	return err
}

// counterexampleOf is a shard's counterexample file named name: its
// trace (nil if it does not parse; it does, a shard wrote it), written
// to outDir unless that is "" (file: where).
func counterexampleOf(outDir, name string, text []byte) (t *trace.Trace, file string, err error) {
	t, _ = trace.Parse(name, text)
	if outDir == "" || len(text) == 0 {
		return t, "", nil
	}
	file = filepath.Join(outDir, name)
	if err := os.WriteFile(file, text, 0o644); err != nil {
		return t, "", fmt.Errorf("%w: write counterexample: %w", ErrCampaign, err)
	}
	return t, file, nil
}
