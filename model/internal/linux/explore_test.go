package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// The loopback splice scenarios (testdata/traces/loopback) and the
// counterexamples schedule search found in them
// (testdata/traces/counterexamples; fuzz.TestSearchRFCDefects finds,
// shrinks and judges them). Here: what the model does with them, no
// verdicts.

const (
	scenarioDir = "../../../testdata/traces/loopback/"
	ceDir       = "../../../testdata/traces/counterexamples/"
)

// rfcCounterexamples are the RFC's defects that schedule search found
// (fuzz.TestSearchRFCDefects).
var rfcCounterexamples = []string{"ring_overtakes_inflight_tcp", "tcp_overtakes_ring", "eof_before_ring_bytes", "close_leaks_pair"}

func loadTrace(t *testing.T, path string) *trace.Trace {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trace.Parse(path, src)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestExploreRunIsTheDirective: ExploreRun under a policy runs the trace
// as Run does with that policy's `schedule` directive, and the
// run's Picks replay it: same observations, same error, same account.
// Schedule search (fuzz.SearchSchedules) relies on it: what it judges is
// what `splicecheck run` replays.
func TestExploreRunIsTheDirective(t *testing.T) {
	b, err := NewWithConfig(Config{Liveness: true, Provenance: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, sc := range []string{"order_inflight", "eof_race", "close_leak", "map_delete_live"} {
		tr := loadTrace(t, scenarioDir+sc+".trace")
		for seed := uint64(0); seed < 20; seed++ {
			for _, s := range []*trace.Schedule{
				{Strategy: trace.StrategyRandom, Seed: seed},
				{Strategy: trace.StrategyPCT, Depth: 3, Seed: seed},
			} {
				o, err := b.ExploreRun(ctx, tr, trace.Options{}, s)
				if err != nil {
					t.Fatal(err)
				}
				withDirective := *tr
				withDirective.Schedule = s
				obs, st, err := runWithStats(b, ctx, &withDirective, trace.Options{})
				picks := *tr
				picks.Schedule = &trace.Schedule{Strategy: trace.StrategyPicks, Picks: o.Picks}
				po, perr := b.ExploreRun(ctx, &picks, trace.Options{}, picks.Schedule)
				if perr != nil {
					t.Fatal(perr)
				}
				for what, got := range map[string]*Outcome{"directive": {Obs: obs, Stats: st, Err: err}, "picks": po} {
					divs := trace.Diff(got.Obs, o.Obs)
					if len(divs) > 0 || fmt.Sprint(got.Err) != fmt.Sprint(o.Err) || (got.Stats == nil) != (o.Stats == nil) ||
						got.Stats != nil && (len(got.Stats.RingWrites) != len(o.Stats.RingWrites) || len(got.Stats.ReadTags) != len(o.Stats.ReadTags)) {
						t.Fatalf("%s %+v: %s run differs from ExploreRun: %v, error %v, ExploreRun's %v", sc, *s, what, divs, got.Err, o.Err)
					}
				}
			}
		}
	}
}

// TestNextPicksEnumerates: following NextPicks from `schedule picks`
// with no choices visits distinct schedules until it reports none is
// left, and each prefix it gives is a run's own choices up to the
// branch it takes.
func TestNextPicksEnumerates(t *testing.T) {
	tr := loadTrace(t, scenarioDir+"wake_race.trace")
	seen := map[string]bool{}
	var prefix []int
	for runs := 1; ; runs++ {
		if runs > 5000 {
			t.Fatal("enumeration did not end in 5000 runs")
		}
		o, err := New().explore(context.Background(), tr, trace.Options{}, &picksPolicy{Picks: prefix})
		if err != nil {
			t.Fatal(err)
		}
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		for i, p := range prefix {
			if o.Picks[i] != p {
				t.Fatalf("run %d took %v, not its prefix %v", runs, o.Picks, prefix)
			}
		}
		key := fmt.Sprint(o.Picks)
		if seen[key] {
			t.Fatalf("run %d repeats schedule %v", runs, o.Picks)
		}
		seen[key] = true
		next, ok := o.NextPicks(24)
		if !ok {
			t.Logf("%d schedules", runs)
			if runs < 2 {
				t.Fatal("wake_race has a single schedule")
			}
			return
		}
		prefix = next
	}
}

// TestSeqCloseDrainsRingBytes: a sender that closes right after sending
// loses no ring byte. The module's teardown from close marks both ends
// unpaired (chan_unpair), and splice_recvmsg_merge drains a torn-down
// pair's ring before it reports EOF (ring_ready = unpaired &&
// splice_ring_has_data); the RFC never unpairs and delivers them too.
// Measured on 6.12.118 with tcp_splice.ko:
// testdata/traces/loopback/seq_close_drains_ring.trace.
func TestSeqCloseDrainsRingBytes(t *testing.T) {
	src := pairedSetup + "pair a b\nsend a \"X\"\nclose a\nrecv b 100\nrecv b 100\n"
	for _, prof := range []string{"loopback-splice-seq", "loopback-splice"} {
		tr, err := trace.Parse("t.trace", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		o, err := New().explore(context.Background(), tr, trace.Options{Profile: prof}, &picksPolicy{})
		if err != nil {
			t.Fatal(err)
		}
		if o.Err != nil {
			t.Fatalf("%s: %v", prof, o.Err)
		}
		if got, want := o.Obs[len(o.Obs)-2].String(), `9: recv b 100 => 1 "X"`; got != want {
			t.Errorf("%s: %s, want %s", prof, got, want)
		}
		if prof == "loopback-splice-seq" {
			if got, want := o.Obs[len(o.Obs)-1].String(), `10: recv b 100 => 0 ""`; got != want {
				t.Errorf("%s: %s, want %s (EOF once the ring is drained)", prof, got, want)
			}
		}
	}
}

// TestReplayCounterexamples100 replays every saved counterexample 100
// times through trace.Run: the observation output is identical each time.
func TestReplayCounterexamples100(t *testing.T) {
	for _, name := range rfcCounterexamples {
		tr := loadTrace(t, ceDir+name+".trace")
		var first []trace.Observation
		for i := 0; i < 100; i++ {
			obs, err := trace.Observe(context.Background(), New(), tr, trace.Options{})
			if err != nil {
				t.Fatalf("%s run %d: %v", name, i, err)
			}
			if i == 0 {
				first = obs
			} else if divs := trace.Diff(obs, first); len(divs) > 0 {
				t.Fatalf("%s run %d differs from the first: %v", name, i, divs)
			}
		}
	}
}

// TestRingRefKeepsRingAlive: a receiver's close races a sender's ring
// copy on loopback-splice-seq (whose close tears the pair down). Some
// schedules kill ring_ref while the sender holds it; none frees the ring
// under the sender (spliceRingWrite panics if it does) or leaks it. The
// runs are not torn down, so the ring is b's own close's to free.
func TestRingRefKeepsRingAlive(t *testing.T) {
	tr := loadTrace(t, scenarioDir+"close_during_send.trace")
	opts, prof, err := resolveRun(tr, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := New()
	inFlight := 0
	for seed := uint64(0); seed < 300; seed++ {
		o, err := b.runPolicy(context.Background(), tr, opts, prof, newRandomPolicy(seed), false)
		if err != nil {
			t.Fatal(err)
		}
		if o.Err != nil {
			t.Fatalf("seed %d: %v", seed, o.Err)
		}
		inFlight += o.r.k.splice.killedInFlight
		for _, s := range o.r.k.splice.all {
			if s.Psock.Sk.Name == "b" && !s.freed {
				t.Fatalf("seed %d: b's ring not released after its close", seed)
			}
		}
	}
	if inFlight == 0 {
		t.Fatal("no schedule killed ring_ref with a sender in flight")
	}
	t.Logf("%d of 300 schedules killed ring_ref under an in-flight sender", inFlight)
}

// TestSeqMergeSpinsOnTCPHole replays the module's livelock, measured on
// 6.12.118 with tcp_splice.ko (testdata/traces/findings): the merge loop
// spins on TCP bytes behind a copied_seq hole in sk_receive_queue. The
// posted RFC does not spin.
func TestSeqMergeSpinsOnTCPHole(t *testing.T) {
	tr := loadTrace(t, "../../../testdata/traces/findings/seq_merge_spins_on_tcp_hole.trace")
	if _, err := trace.Observe(context.Background(), New(), tr, trace.Options{}); !errors.Is(err, ErrLivelock) {
		t.Fatalf("loopback-splice-seq: %v, want a livelock", err)
	}
	// The RFC's a1 keeps its psock (the rendezvous sockhash holds it)
	// and reads "MSG1" from ingress_msg: no hole, no spin.
	if _, err := trace.Observe(context.Background(), New(), tr, trace.Options{Profile: "loopback-splice"}); err != nil {
		t.Fatalf("loopback-splice: %v", err)
	}
}
