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
	// Missed, when set, says why a 60 s campaign did not find the
	// mutation when last measured (BenchmarkZoo): a known gap of the
	// properties or generators.
	Missed string
}

// Zoo lists every model mutation with its profile; a test keeps it equal
// to model.Mutations().
var Zoo = []ZooEntry{
	{Mutation: "apply-ingress-loss", Profile: "linux-6.18"},
	{Mutation: "copied-seq-drift", Profile: "linux-6.1"},
	{Mutation: "fin-msg-efault", Profile: "linux-6.18"},
	{Mutation: "ingress-no-wakeup", Profile: "linux-6.18"},
	{Mutation: "msgzc-abort-keeps-id", Profile: "linux-6.18"},
	{Mutation: "so-splice-max-overrun", Profile: "freebsd-so-splice"},
	{Mutation: "peek-consumes", Profile: "linux-6.18"},
	{Mutation: "poll-misses-ingress", Profile: "linux-6.18"},
	{Mutation: "redirect-sock-put-twice", Profile: "linux-6.18"},
	{Mutation: "ring-cached-head-stale", Profile: "linux-6.18+loopback-splice"},
	{Mutation: "sender-no-psock-ref", Profile: "linux-6.18"},
	{Mutation: "splice-wake-no-barrier", Profile: "linux-6.18+loopback-splice"},
	{Mutation: "zerocopy-no-get-page", Profile: "linux-6.18+splice-zerocopy"},
	{Mutation: "zerocopy-slab-to-pipe", Profile: "linux-6.18+splice-zerocopy"},

	// The second zoo.
	{Mutation: "apply-bytes-no-decrement", Profile: "linux-6.18", Second: true},
	{Mutation: "close-unread-off-by-one", Profile: "linux-6.18", Second: true},
	{Mutation: "del-link-all-matches", Profile: "linux-6.18", Second: true},
	{Mutation: "so-splice-unsplice-flush", Profile: "freebsd-so-splice", Second: true},
	{Mutation: "so-splice-xfer-consumes-chunk", Profile: "freebsd-so-splice", Second: true},
	{Mutation: "so-splice-timeout-rearm", Profile: "freebsd-so-splice", Second: true},
	{Mutation: "delete-no-unref", Profile: "linux-6.18", Second: true},
	{Mutation: "destroy-no-zap-ingress", Profile: "linux-6.18", Second: true},
	{Mutation: "drop-verdict-no-eat-skb", Profile: "linux-6.18", Second: true},
	{Mutation: "ingress-enqueue-extra-skb-get", Profile: "linux-6.18", Second: true},
	{Mutation: "ingress-queue-head", Profile: "linux-6.18", Second: true},
	{Mutation: "ioctl-no-psock-put", Profile: "linux-6.18", Second: true},
	{Mutation: "linear-to-page-no-advance", Profile: "linux-6.18+splice-zerocopy", Second: true},
	{Mutation: "pipe-read-no-advance", Profile: "linux-6.18+splice-copy", Second: true},
	{Mutation: "poll-shutdown-no-in", Profile: "linux-6.18", Second: true},
	{Mutation: "push-more-on-last", Profile: "linux-6.18", Second: true},
	{Mutation: "redir-no-psock-put", Profile: "linux-6.18", Second: true},
	{Mutation: "ring-poll-misses-ring", Profile: "linux-6.18+loopback-splice", Second: true},
	{Mutation: "seq-recv-no-wake-send", Profile: "linux-6.18+loopback-splice-seq", Second: true},
	{Mutation: "seq-ring-ready-strict", Profile: "linux-6.18+loopback-splice-seq", Second: true},
	{Mutation: "splice-read-misses-shutdown", Profile: "linux-6.18", Second: true},
	{Mutation: "splice-recv-skips-rcv-queue", Profile: "linux-6.18+loopback-splice", Second: true},
	{Mutation: "strp-need-bytes-off-by-one", Profile: "linux-6.18", Second: true},
	{Mutation: "update-key-off-by-one", Profile: "linux-6.18", Second: true},
	{Mutation: "verdict-drops-ingress-flag", Profile: "linux-6.18", Second: true},
}

// Detection is the result of attacking one mutation.
type Detection struct {
	ZooEntry
	Detected bool
	Time     time.Duration // to the first failure, shrinking excluded
	Traces   int           // traces run until then
	Outcome  Verdict       // the first property that failed
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
