package linux

import (
	"context"
	"slices"
	"testing"

	"github.com/splicecheck/splicecheck/internal/corpustest"
	"github.com/splicecheck/splicecheck/trace"
)

// corpusDir and goldenDir are the kernel trace corpus and its goldens,
// relative to this package.
const (
	corpusDir = "../../../testdata/traces/kernel"
	goldenDir = "../../../testdata/golden"
)

// modelCorpus is the kernel corpus with profile's goldens (each kernel ran
// part of it) and the model's known gaps there.
func modelCorpus(profile string) corpustest.Corpus {
	return corpustest.Corpus{Dir: corpusDir, Goldens: goldenDir, Profile: profile, Gaps: knownGaps[profile], Partial: true}
}

// corpus returns the corpus traces that have a golden for profile.
func corpus(tb testing.TB, profile string) (traces []*trace.Trace, goldens [][]string) {
	tb.Helper()
	for _, k := range corpustest.Load(tb, modelCorpus(profile)) {
		traces = append(traces, k.Trace)
		goldens = append(goldens, k.Golden)
	}
	return traces, goldens
}

// knownGaps are the corpus traces the model is known to get wrong, per
// profile, each with the reason: a named gap with an open follow-up. The
// test requires them to still diverge, so a fix must also remove its entry.
var knownGaps = map[string]map[string]string{
	"linux-6.18": {
		// Follow-up (where the flow-control and stream-parser work
		// meet): after SO_RCVBUF shrinks under what is queued, the
		// 1000 bytes of line 20 reach the model's receive queue, but its
		// parser starts the next 3000-byte frame (over the new
		// sk_rcvbuf: EMSGSIZE) only after the first frame is read, while
		// 6.18's starts it on arrival and aborts (poll ERR, recv
		// -EAGAIN). 6.12 and 6.1 redirect to self as SK_PASS and agree.
		// Also listed in testdata/kernel-test/linux-6.18.expect (make run).
		"strp_err_self_redirect_rcvbuf_shrunk": "SO_RCVBUF shrunk under queued bytes: the model's parser meets the " +
			"next frame only after the first is read; 6.18's on arrival, and aborts",
	},
	"linux-6.12": {
		// Timing, not a rule to model: the receiver delays its ACK of
		// the 47424-byte segment that leaves at the start of the 10 MB
		// send (40 ms, TCP_DELACK_MIN). Under QEMU without KVM the send's
		// 2.6 MB of copying takes longer than that, so the delayed ACK
		// reaches the sender's backlog during the send and sk_flush_backlog
		// frees the skb in time for the send to take 47424 more bytes
		// (2655744, every run); on the 6.18 host and in the model the send
		// ends first and the next send takes them. The model fires timers
		// only between ops (docs/design.md).
		"tcp_window_nonreading_fill": "timing in the 6.12 TCG guest: the receiver's 40 ms delayed ACK fires " +
			"during the slow 10 MB send and frees 47424 bytes inside it (golden 2655744, then -EAGAIN); " +
			"the model fires timers between ops (2608320, then 47424)",
	},
}

// TestCorpus runs every kernel corpus trace with a golden on the model and
// compares the observations byte for byte (trace.DiffGolden).
func TestCorpus(t *testing.T) {
	for _, profile := range []string{"linux-6.18", "linux-6.12", "linux-6.1"} {
		t.Run(profile, func(t *testing.T) { corpustest.Check(t, New(), modelCorpus(profile)) })
	}
}

// switchCase is a profile switch and the corpus traces that show it:
// for each, the lines that diverge from the profile's goldens with the
// switch off.
type switchCase struct {
	name   string
	off    func(*behaviour)
	traces map[string][]int // trace -> the lines that must diverge
}

// checkSwitches checks that each switch of base is what its goldens
// need: with the switch off, the traces it cites diverge from base's
// goldens on the lines it explains, and with it on they agree (TestCorpus
// runs the rest).
func checkSwitches(t *testing.T, base behaviour, cases []switchCase) {
	t.Helper()
	traces, goldens := corpus(t, base.Name)
	byName := map[string]int{}
	for i, tr := range traces {
		byName[corpustest.Name(tr)] = i
	}
	for _, c := range cases {
		for name, lines := range c.traces {
			i, ok := byName[name]
			if !ok {
				t.Fatalf("%s: no %s golden for %s", c.name, base.Name, name)
			}
			for _, on := range []bool{true, false} {
				prof := base
				if !on {
					c.off(&prof)
				}
				opts, err := trace.ResolveOptions(traces[i], trace.Options{Profile: base.Name})
				if err != nil {
					t.Fatal(err)
				}
				obs, err := newRun(traces[i], opts, prof, nil).execute(context.Background())
				if err != nil {
					t.Fatalf("%s %s: %v", c.name, name, err)
				}
				var got []int
				for _, d := range trace.DiffGolden(obs, goldens[i]) {
					got = append(got, d.Line)
				}
				switch {
				case on && len(got) != 0:
					t.Errorf("%s on: %s diverges at lines %v", c.name, name, got)
				case !on && !slices.Equal(got, lines):
					t.Errorf("%s off: %s diverges at lines %v, want %v", c.name, name, got, lines)
				}
			}
		}
	}
}

// TestLinux612Switches checks each switch linux612 adds to 6.18's
// against the 6.12 goldens.
func TestLinux612Switches(t *testing.T) {
	checkSwitches(t, linux612, []switchCase{
		{"FIONREADRecvQueue", func(p *behaviour) { p.FIONREADRecvQueue = false }, map[string][]int{
			"kf_mixed_tcp_then_ingress_order": {13},
		}},
		{"SendmsgCountsAsked", func(p *behaviour) { p.SendmsgCountsAsked = false }, map[string][]int{
			"kf_cork_apply_stale_bytes":        {18},
			"kf_cork_apply_msg_more_hold":      {17, 19},
			"kf_cork61_apply3_send_counts":     {15, 21},
			"kf_cork61_new_element_releases":   {23, 25},
			"kf_cork61_shutdown_releases_held": {21, 27},
		}},
		{"SelfRedirectPass", func(p *behaviour) { p.SelfRedirectPass = false }, map[string][]int{
			// 21 and 23 are 6.18's known gap on this trace (knownGaps).
			"strp_err_self_redirect_rcvbuf_shrunk": {18, 21, 22, 23},
		}},
	})
}

// TestLinux61Switches checks each switch of linux61 against the 6.1
// goldens. SendmsgCountsAsked has no trace there: with SplicePagesCopied
// a push never leaves the copybreak stale, and a redirect frees the cork
// (behaviour.SendmsgCountsAsked).
func TestLinux61Switches(t *testing.T) {
	checkSwitches(t, linux61, []switchCase{
		{"SplicePagesCopied", func(p *behaviour) { p.SplicePagesCopied = false }, map[string][]int{
			"kf_cork_apply_stale_bytes":        {18, 19, 21},
			"kf_cork_apply_msg_more_hold":      {17, 18, 19, 20},
			"kf_cork61_apply3_send_counts":     {15, 20, 21, 22},
			"kf_cork61_new_element_releases":   {23, 24, 25, 26, 28, 30, 32},
			"kf_cork61_shutdown_releases_held": {21, 27, 28, 30},
		}},
	})
}

// TestFreeBSDCorpus runs the ports of FreeBSD's own SO_SPLICE tests
// (testdata/traces/freebsd, each naming its case and lines in
// tests/sys/kern/socket_splice.c) under profile freebsd-so-splice and
// compares them with goldens whose every asserted value is the test's;
// proxy_so_splice is no port but the SO_SPLICE form of the four-way proxy
// (fuzz/proxy.go), its golden the model's.
func TestFreeBSDCorpus(t *testing.T) {
	corpustest.Check(t, New(), corpustest.Corpus{Dir: "../../../testdata/traces/freebsd", Goldens: goldenDir, Profile: trace.FreeBSDProfile})
}
