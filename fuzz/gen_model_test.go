package fuzz

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// genProfiles are the profiles the generated traces are run on, each
// with the GenConfig checkProfile gives it (and the kernel-safe traces
// of the cross-check on linux-6.18).
var genProfiles = []struct {
	profile string
	cfg     GenConfig
}{
	{"linux-6.18", GenConfig{Threads: true}},
	{"linux-6.12", GenConfig{Threads: true}},
	{"linux-6.1", GenConfig{Threads: true}},
	{"linux-6.12+loopback-splice", GenConfig{Threads: true, Pair: true}},
	{"linux-6.18+splice-copy", GenConfig{Threads: true, Splice: true}},
	{"linux-6.18+splice-zerocopy", GenConfig{Threads: true, Splice: true}},
	{"linux-6.18+loopback-splice", GenConfig{Threads: true, Pair: true}},
	{"linux-6.18+loopback-splice-seq", GenConfig{Threads: true, Pair: true}},
	{"linux-6.18", GenConfig{Threads: true, KernelSafe: true}},
}

// Every generated trace runs on the model, as the campaign runs it
// (profile, schedule, Config.Liveness), without a model-internal error
// (a panic, a scheduler deadlock: model.ErrInternal), and no kernel-safe
// trace reaches a kernel crash (model.ErrKernelCrash). Other run errors
// (lost wakeups, livelocks, leaks, invariants) are the properties' to
// judge; they are counted in the log. 300 seeds a profile (50 with
// -short, 30 under the race detector, which has nothing to find in the
// model's single-threaded runs and makes them ten times slower: 300 took
// 4.5 minutes under -race on a loaded 2-core machine, seed 41 of
// splice-zerocopy alone 35 s; `make test` runs the 300 without it).
// Bounded by count only: how long a run takes is logged, not judged.
func TestGenTracesRunOnModel(t *testing.T) {
	n := 300
	switch {
	case testing.Short():
		n = 50
	case raceEnabled:
		n = 30
	}
	m, err := model.NewWithConfig(model.Config{Liveness: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range genProfiles {
		name := pc.profile
		if pc.cfg.KernelSafe {
			name += "/kernelsafe"
		}
		t.Run(name, func(t *testing.T) {
			g := Trace(pc.cfg)
			p, err := trace.ParseProfile(pc.profile)
			if err != nil {
				t.Fatal(err)
			}
			pair := p.Has("loopback-splice") || p.Has("loopback-splice-seq")
			start := time.Now()
			errs, first, timeouts := map[string]int{}, map[string]int{}, 0
			var slowest time.Duration
			slowSeed := 0
			for seed := range n {
				tr := g.Example(seed)
				tr.Profile = p.String()
				tr.Schedule = &trace.Schedule{HasSeed: true, Seed: uint64(seed)}
				if pair {
					tr.Schedule.Strategy = trace.StrategyRandom
					if seed%2 == 1 {
						tr.Schedule.Strategy, tr.Schedule.Depth = trace.StrategyPCT, 3
					}
				}
				t0 := time.Now()
				r := runOne(context.Background(), m, nil, tr)
				if d := time.Since(t0); d > slowest {
					slowest, slowSeed = d, seed
				}
				if errors.Is(r.Err, model.ErrInternal) {
					t.Errorf("seed %d: model-internal error: %v\n%s", seed, r.Err, tr.Format())
					continue
				}
				if pc.cfg.KernelSafe && errors.Is(r.Err, model.ErrKernelCrash) {
					// The cross-check would run it on the host.
					t.Errorf("seed %d: a kernel-safe trace crashes the kernel: %v\n%s", seed, r.Err, tr.Format())
					continue
				}
				if r.Err != nil {
					var f *model.Fault
					k := "other"
					if errors.As(r.Err, &f) {
						k = f.Kind + "@" + f.Site
					}
					if errs[k] == 0 {
						first[k] = seed
					}
					errs[k]++
				}
				for _, o := range r.Obs {
					if o.Result.Note == "runner" {
						timeouts++
						break
					}
				}
			}
			t.Logf("%d traces in %v (slowest: seed %d, %v); run errors %v (first seeds %v); traces with a runner timeout: %d",
				n, time.Since(start).Round(time.Millisecond), slowSeed, slowest.Round(time.Millisecond), errs, first, timeouts)
		})
	}
}
