package fuzz

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// The zoo lists every mutation the model registers, each once.
func TestZooCoversEveryMutation(t *testing.T) {
	var zoo, reg []string
	for _, e := range Zoo {
		zoo = append(zoo, e.Mutation)
	}
	for _, m := range model.Mutations() {
		reg = append(reg, m.Name)
	}
	sort.Strings(zoo)
	if !slices.Equal(zoo, reg) {
		t.Fatalf("Zoo lists %v; the model registers %v", zoo, reg)
	}
}

// Every mutation of the first zoo is detected by the campaign from seed
// 1, and the unmutated profile passes the same traces (so the detection
// is the mutation's). The second zoo's detection is measured, not
// required (ZooEntry.Second); TestZoo2HandTraces shows each of its bugs.
func TestZooDetectsEveryMutation(t *testing.T) {
	if raceEnabled {
		t.Skip("campaigns under the race detector: the zoo runs without it (make test's zoo step)")
	}
	for _, e := range Zoo {
		if e.Second {
			continue // measured by BenchmarkZoo (README): detection takes up to a minute
		}
		t.Run(e.Mutation, func(t *testing.T) {
			t.Parallel()
			d, err := Detect(context.Background(), e, 1, DetectLimits{MaxTraces: zooTraces})
			if err != nil {
				t.Fatal(err)
			}
			if !d.Detected {
				t.Fatalf("%s on %s: not detected in %d traces", e.Mutation, e.Profile, d.Traces)
			}
			v := d.Outcome.Violation
			t.Logf("detected after %d traces (%v): %v", d.Traces, d.Time.Round(time.Millisecond), v)
			r := runOne(context.Background(), provModel(t), nil, d.Outcome.Counterexample)
			p, _ := PropertyByName(d.Outcome.Property)
			if cv := p.Judge(r); cv != nil && cv.Signature() == v.Signature() {
				t.Fatalf("the unmutated model fails %s with %s on the same trace too", p.Name, cv.Signature())
			}
		})
	}
}

// zooTraces bounds each mutation's campaign in TestZooDetectsEveryMutation
// by count, not time, so that a loaded machine only makes it slower.
const zooTraces = 2000

// BenchmarkZoo measures each mutation's time to detect, both zoos: the
// median and max over seeds 1000..5000 of the campaign time until a NEW
// failure (60 s, the budget, when none came), and how many seeds found
// it. As in `splicecheck check`, a trace whose run takes over 2 s is
// skipped.
func BenchmarkZoo(b *testing.B) {
	for _, e := range Zoo {
		b.Run(e.Mutation, func(b *testing.B) {
			for range b.N {
				var times []float64
				detected := 0
				for seed := uint64(1); seed <= 5; seed++ {
					d, err := Detect(context.Background(), e, seed*1000, DetectLimits{Budget: 60 * time.Second, RunTimeout: 2 * time.Second})
					if err != nil {
						b.Fatal(err)
					}
					t := 60.0 // not detected within the budget
					if d.Detected {
						detected++
						t = d.Time.Seconds()
					}
					times = append(times, t)
				}
				slices.Sort(times)
				b.ReportMetric(times[2], "s-median-detect")
				b.ReportMetric(times[4], "s-max-detect")
				b.ReportMetric(float64(detected), "detected-of-5")
			}
		})
	}
}

// BenchmarkGenerated runs the campaign's generated traces (seeds 0..199,
// linux-6.18, the generator `splicecheck check` uses) on the model, one
// at a time on one goroutine, and reports executed ops per second: the
// model's throughput on what campaigns actually run, beside
// linux.BenchmarkCorpus's on the hand-written corpus.
func BenchmarkGenerated(b *testing.B) {
	gen := Trace(GenConfig{Threads: true})
	var traces []*trace.Trace
	ops := 0
	for seed := range 200 {
		t := gen.Example(seed)
		t.Profile = "linux-6.18"
		t.Schedule = &trace.Schedule{HasSeed: true, Seed: uint64(seed)}
		traces = append(traces, t)
		ops += len(t.Ops)
	}
	be := model.New()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		for _, t := range traces {
			trace.Observe(context.Background(), be, t, trace.Options{})
		}
	}
	b.ReportMetric(float64(ops*b.N)/time.Since(start).Seconds(), "ops/s")
}
