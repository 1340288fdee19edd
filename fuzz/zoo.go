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
	// Second marks the second zoo: one-line bugs planted one per model
	// function (none shared with the first zoo's), with a hand trace
	// that shows each (zoo2_test.go).
	Second bool
}

// Zoo lists every model mutation with its profile; a test keeps it equal
// to model.Mutations().
var Zoo = []ZooEntry{
	{"apply-ingress-loss", "linux-6.18", false},
	{"copied-seq-drift", "linux-6.1", false},
	{"fin-msg-efault", "linux-6.18", false},
	{"ingress-no-wakeup", "linux-6.18", false},
	{"peek-consumes", "linux-6.18", false},
	{"poll-misses-ingress", "linux-6.18", false},
	{"redirect-sock-put-twice", "linux-6.18", false},
	{"ring-cached-head-stale", "linux-6.18+loopback-splice", false},
	{"sender-no-psock-ref", "linux-6.18", false},
	{"splice-wake-no-barrier", "linux-6.18+loopback-splice", false},
	{"zerocopy-no-get-page", "linux-6.18+splice-zerocopy", false},
	{"zerocopy-slab-to-pipe", "linux-6.18+splice-zerocopy", false},

	// The second zoo.
	{"apply-bytes-no-decrement", "linux-6.18", true},
	{"close-unread-off-by-one", "linux-6.18", true},
	{"del-link-all-matches", "linux-6.18", true},
	{"delete-no-unref", "linux-6.18", true},
	{"destroy-no-zap-ingress", "linux-6.18", true},
	{"drop-verdict-no-eat-skb", "linux-6.18", true},
	{"ingress-enqueue-extra-skb-get", "linux-6.18", true},
	{"ingress-queue-head", "linux-6.18", true},
	{"ioctl-no-psock-put", "linux-6.18", true},
	{"linear-to-page-no-advance", "linux-6.18+splice-zerocopy", true},
	{"pipe-read-no-advance", "linux-6.18+splice-copy", true},
	{"poll-shutdown-no-in", "linux-6.18", true},
	{"push-more-on-last", "linux-6.18", true},
	{"redir-no-psock-put", "linux-6.18", true},
	{"ring-poll-misses-ring", "linux-6.18+loopback-splice", true},
	{"seq-recv-no-wake-send", "linux-6.18+loopback-splice-seq", true},
	{"seq-ring-ready-strict", "linux-6.18+loopback-splice-seq", true},
	{"splice-read-misses-shutdown", "linux-6.18", true},
	{"splice-recv-skips-rcv-queue", "linux-6.18+loopback-splice", true},
	{"strp-need-bytes-off-by-one", "linux-6.18", true},
	{"update-key-off-by-one", "linux-6.18", true},
	{"verdict-drops-ingress-flag", "linux-6.18", true},
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
