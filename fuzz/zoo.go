package fuzz

import (
	"context"
	"fmt"
	"time"
)

// ZooEntry is one mutation of the bug zoo and the profile it is attacked
// on (the profile whose code it changes).
type ZooEntry struct {
	Mutation string
	Profile  string
}

// Zoo lists every model mutation with its profile; a test keeps it equal
// to model.Mutations().
var Zoo = []ZooEntry{
	{"apply-ingress-loss", "linux-6.18"},
	{"copied-seq-drift", "linux-6.1"},
	{"fin-msg-efault", "linux-6.18"},
	{"ingress-no-wakeup", "linux-6.18"},
	{"peek-consumes", "linux-6.18"},
	{"poll-misses-ingress", "linux-6.18"},
	{"redirect-sock-put-twice", "linux-6.18"},
	{"ring-cached-head-stale", "linux-6.18+loopback-splice"},
	{"sender-no-psock-ref", "linux-6.18"},
	{"splice-wake-no-barrier", "linux-6.18+loopback-splice"},
	{"zerocopy-no-get-page", "linux-6.18+splice-zerocopy"},
	{"zerocopy-slab-to-pipe", "linux-6.18+splice-zerocopy"},
}

// Detection is the result of attacking one mutation.
type Detection struct {
	ZooEntry
	Detected bool
	Time     time.Duration // to the first failure, shrinking excluded
	Traces   int           // traces run until then
	Outcome  Outcome       // the first property that failed
}

// DetectLimits bound a Detect: the campaign's time and traces (0: no
// bound), and RunTimeout, which skips a trace whose run takes longer
// (Campaign.RunTimeout: machine-dependent, so tests leave it zero).
type DetectLimits struct {
	Budget     time.Duration
	MaxTraces  int
	RunTimeout time.Duration
}

// Detect attacks e's mutation as `splicecheck check --profile P` would,
// with the mutation planted and nothing to compare with (no reference
// run): a campaign from seed until a property fails with a signature
// that is not a known failure of the profile (a NEW failure), within lim.
func Detect(ctx context.Context, e ZooEntry, seed uint64, lim DetectLimits) (Detection, error) {
	d := Detection{ZooEntry: e}
	outs, err := Check(ctx, Campaign{
		Profiles: []string{e.Profile}, Budget: lim.Budget, MaxTraces: lim.MaxTraces, RunTimeout: lim.RunTimeout, Seed: seed,
		Mutations: []string{e.Mutation}, FirstOnly: true,
	})
	if err != nil {
		return d, fmt.Errorf("detect %s: %w", e.Mutation, err)
	}
	for _, o := range outs {
		d.Traces = max(d.Traces, o.Traces)
		if o.Failed && (!d.Detected || o.Detect < d.Time) {
			d.Detected, d.Time, d.Outcome = true, o.Detect, o
		}
	}
	return d, nil
}
