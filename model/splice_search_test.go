package model

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// The loopback splice campaign: scenario traces (testdata/traces/loopback)
// are searched for schedules that violate a property; what is found is
// shrunk and must equal the counterexample saved under
// testdata/traces/counterexamples (SPLICECHECK_UPDATE=1 rewrites them).

const (
	scenarioDir = "../testdata/traces/loopback/"
	ceDir       = "../testdata/traces/counterexamples/"
)

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

// ringOvertakesTCP accepts the violations of defect (a): b received "X"
// (sent by ring after the 16400 pattern bytes) before the last of them.
func ringOvertakesTCP(o *Outcome, v error) bool {
	if !errors.Is(v, ErrStreamOrder) {
		return false
	}
	got := o.Received("b")
	x := bytes.IndexByte(got, 'X')
	want := trace.Pattern(0, 16400)
	return x >= 0 && x < len(want) && bytes.Equal(got[:x], want[:x])
}

// tcpOvertakesRing accepts the receiver-side variant: b received pattern
// bytes from the TCP tail before older pattern bytes still in the ring.
func tcpOvertakesRing(o *Outcome, v error) bool {
	return errors.Is(v, ErrStreamOrder) && !ringOvertakesTCP(o, v)
}

var rfcDefects = []struct {
	name     string // the counterexample's file
	scenario string
	strategy string
	kind     error
	accept   func(*Outcome, error) bool
}{
	// (a) splice_send_ring: "skb_queue_empty(&peer_sk->sk_receive_queue)" is
	// checked while older TCP bytes are still in flight: the ring bytes
	// written next overtake them.
	{"ring_overtakes_inflight_tcp", "order_inflight", trace.StrategyPCT, ErrStreamOrder, ringOvertakesTCP},
	// (a') tcp_bpf_splice_recvmsg: "copied = splice_ring_read(...); if
	// (copied) return copied;" then "if (!skb_queue_empty(...)) return 0;":
	// the ring was empty when read, the sender filled it and sent its TCP
	// tail before the queue check, so TCP bytes overtake older ring bytes.
	{"tcp_overtakes_ring", "order_inflight", trace.StrategyRandom, ErrStreamOrder, tcpOvertakesRing},
	// (b) tcp_bpf_splice_recvmsg: "if (sk->sk_shutdown & RCV_SHUTDOWN)
	// return 0; /* EOF */" runs after a ring read that found nothing; the
	// sender's last bytes and FIN land in between: EOF before the bytes.
	{"eof_before_ring_bytes", "eof_race", trace.StrategyRandom, ErrDataAfterEOF, nil},
	// (b) net/core/skmsg.c sk_psock_drop: "tcp_bpf_splice_unpair(psock);"
	// is the only unpair, and "Each side keeps a psock ref on the other"
	// (bpf_sock_splice_pair) means no paired psock ever reaches it.
	{"close_leaks_pair", "close_leak", trace.StrategyRandom, ErrLeak, nil},
}

func TestRFCDefects(t *testing.T) {
	for _, c := range rfcDefects {
		t.Run(c.name, func(t *testing.T) {
			tr := loadTrace(t, scenarioDir+c.scenario+".trace")
			cfg := SearchConfig{Strategy: c.strategy, Runs: 150, Accept: c.accept}
			start := time.Now()
			found, err := New().Search(context.Background(), tr, trace.Options{}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if found.Violation == nil || !errors.Is(found.Violation, c.kind) {
				t.Fatalf("no %v in %d runs", c.kind, found.Runs)
			}
			t.Logf("found after %d runs in %v: %v", found.Runs, time.Since(start), found.Violation)
			res, err := New().Shrink(context.Background(), tr, trace.Options{}, cfg, c.kind)
			if err != nil {
				t.Fatal(err)
			}
			got := res.Counterexample.Format()
			path := ceDir + c.name + ".trace"
			if os.Getenv("SPLICECHECK_UPDATE") != "" {
				head := "# " + c.name + ": " + res.Violation.Error() + "\n# Found by `" + c.strategy + "` search of testdata/traces/loopback/" + c.scenario + ".trace, shrunk (TestRFCDefects).\n"
				if err := os.WriteFile(path, []byte(head+got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			saved := loadTrace(t, path)
			if !trace.Equal(saved, res.Counterexample) {
				t.Errorf("shrunk counterexample differs from %s:\n%s", path, got)
			}
			// The saved trace replays the violation through its schedule.
			o, err := New().ExploreRun(context.Background(), saved, trace.Options{}, schedulePolicy(saved.Schedule))
			if err != nil {
				t.Fatal(err)
			}
			if v := o.CheckProperties(); v == nil || !errors.Is(v, c.kind) || c.accept != nil && !c.accept(o, v) {
				t.Errorf("replaying %s: got %v, want %v", path, v, c.kind)
			}
		})
	}
}

// orderingOrLiveness accepts what loopback-splice-seq must never do:
// reorder a stream, lose a wakeup, deadlock, break a ring invariant. Its
// teardown loss (TestSeqCloseLosesRingBytes) is not accepted here.
func orderingOrLiveness(o *Outcome, v error) bool {
	return errors.Is(v, ErrStreamOrder) || errors.Is(v, ErrLostWakeup) || errors.Is(v, ErrDeadlock) || errors.Is(v, ErrRing)
}

// TestSeqHoldsOrdering searches loopback-splice-seq on the scenarios that
// break the RFC: stream order, no EOF before data and a clean teardown
// hold on every run. SPLICECHECK_SEARCH_RUNS raises the runs per strategy
// (a campaign); the default keeps the test fast.
func TestSeqHoldsOrdering(t *testing.T) {
	runs := 400
	if s := os.Getenv("SPLICECHECK_SEARCH_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("SPLICECHECK_SEARCH_RUNS: %v", err)
		}
		runs = n
	}
	for _, sc := range []string{"order_inflight", "eof_race", "close_leak", "wake_race", "close_rst_during_send", "map_delete_live"} {
		tr := loadTrace(t, scenarioDir+sc+".trace")
		for _, cfg := range []SearchConfig{
			{Strategy: trace.StrategyRandom, Runs: runs, Accept: orderingOrLiveness},
			{Strategy: trace.StrategyPCT, Depth: 3, Runs: runs, Accept: orderingOrLiveness},
			{Strategy: StrategyExhaustive, Runs: runs, MaxBranch: 10, Accept: orderingOrLiveness},
		} {
			res, err := New().Search(context.Background(), tr, trace.Options{Profile: "loopback-splice-seq"}, cfg)
			if err != nil {
				t.Fatalf("%s %s: %v", sc, cfg.Strategy, err)
			}
			if res.Violation != nil {
				t.Errorf("%s %s: %v\n%s", sc, cfg.Strategy, res.Violation, res.Counterexample.Format())
			}
			if res.Runs == 0 {
				t.Errorf("%s %s: no run", sc, cfg.Strategy)
			}
		}
	}
}

// TestTeardownScenarios searches the SO_LINGER{1,0} and map-delete
// teardown scenarios on both loopback profiles for every property of
// CheckProperties. loopback-splice-seq keeps its streams in order, loses
// no wakeup and releases everything; its unpair, reached here from a
// reset or from the map delete too, ends a read with bytes still in the
// ring, the module's known loss. The posted RFC also keeps order and
// liveness there; it leaks the pair in both, as on every close (defect
// (b), close_leaks_pair: neither a reset nor leaving the map reaches
// sk_psock_drop while the peer holds its reference), and the map delete
// scenario meets its EOF race (defect (b), eof_before_ring_bytes).
func TestTeardownScenarios(t *testing.T) {
	// known holds each profile's known defects, excluded from the search
	// so that it goes on looking for anything else: the module's unpair
	// loss on loopback-splice-seq; on the RFC, the pair leak and its
	// EOF-before-ring-bytes race (eof_before_ring_bytes), which the map
	// delete scenario reaches as EOF, then the ring's last byte.
	known := map[string][]error{
		"loopback-splice-seq": {ErrDataAfterEOF},
		"loopback-splice":     {ErrLeak, ErrDataAfterEOF},
	}
	isKnown := func(prof string, v error) bool {
		for _, k := range known[prof] {
			if errors.Is(v, k) {
				return true
			}
		}
		return false
	}
	for _, sc := range []string{"close_rst_during_send", "map_delete_live"} {
		tr := loadTrace(t, scenarioDir+sc+".trace")
		for prof := range known {
			for _, strategy := range []string{trace.StrategyRandom, trace.StrategyPCT} {
				cfg := SearchConfig{Strategy: strategy, Depth: 3, Runs: 300,
					Accept: func(_ *Outcome, v error) bool { return !isKnown(prof, v) }}
				res, err := New().Search(context.Background(), tr, trace.Options{Profile: prof}, cfg)
				if err != nil {
					t.Fatalf("%s %s %s: %v", sc, prof, strategy, err)
				}
				if res.Violation != nil {
					t.Errorf("%s on %s (%s): %v\n%s", sc, prof, strategy, res.Violation, res.Counterexample.Format())
				}
			}
		}
		// The RFC leaks the pair on every schedule.
		cfg := SearchConfig{Strategy: trace.StrategyRandom, Runs: 50,
			Accept: func(_ *Outcome, v error) bool { return errors.Is(v, ErrLeak) }}
		res, err := New().Search(context.Background(), tr, trace.Options{Profile: "loopback-splice"}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(res.Violation, ErrLeak) || res.Runs != 1 {
			t.Errorf("%s on the RFC: %v after %d runs, want the pair leak on the first", sc, res.Violation, res.Runs)
		}
	}
}

// TestSeqOrderingFixed: the schedules that break the RFC leave
// loopback-splice-seq's streams intact and its pair released.
func TestSeqOrderingFixed(t *testing.T) {
	for _, c := range rfcDefects {
		tr := loadTrace(t, ceDir+c.name+".trace")
		o, err := New().ExploreRun(context.Background(), tr, trace.Options{Profile: "loopback-splice-seq"}, schedulePolicy(tr.Schedule))
		if err != nil {
			t.Fatal(err)
		}
		if v := o.CheckProperties(); v != nil && orderingOrLiveness(o, v) {
			t.Errorf("%s on loopback-splice-seq: %v", c.name, v)
		}
	}
}

// TestSeqCloseLosesRingBytes: the module's teardown from close clears
// both peers (chan_unpair), and its receiver's "if
// (!rcu_access_pointer(s->peer)) break; /* pair gone */" then ends the
// read with ring bytes unread: a sender that closes right after sending
// loses them, with no race at all (the FIFO schedule). The RFC, which
// never unpairs, delivers them.
func TestSeqCloseLosesRingBytes(t *testing.T) {
	src := pairedSetup + "pair a b\nsend a \"X\"\nclose a\nrecv b 100\n"
	for prof, want := range map[string]string{"loopback-splice-seq": `9: recv b 100 => 0 ""`, "loopback-splice": `9: recv b 100 => 1 "X"`} {
		tr, err := trace.Parse("t.trace", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		o, err := New().ExploreRun(context.Background(), tr, trace.Options{Profile: prof}, &PicksPolicy{})
		if err != nil {
			t.Fatal(err)
		}
		if got := o.Obs[len(o.Obs)-1].String(); got != want {
			t.Errorf("%s: %s, want %s", prof, got, want)
		}
		v := o.CheckProperties()
		if lost := errors.Is(v, ErrDataAfterEOF); lost != (prof == "loopback-splice-seq") {
			t.Errorf("%s: property check %v", prof, v)
		}
	}
}

// TestLostWakeupMutation: without the smp_mb() of splice_wake_sync the
// search finds a receiver asleep with data in its ring; with the barrier
// the same schedules find none.
func TestLostWakeupMutation(t *testing.T) {
	tr := loadTrace(t, scenarioDir+"wake_race.trace")
	cfg := SearchConfig{Strategy: StrategyExhaustive, Runs: 3000}
	clean, err := New().Search(context.Background(), tr, trace.Options{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if clean.Violation != nil || !clean.Exhausted {
		t.Fatalf("unmutated: violation %v, exhausted %v after %d runs", clean.Violation, clean.Exhausted, clean.Runs)
	}
	b, err := NewWithConfig(Config{Mutations: []string{"splice-wake-no-barrier"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Search(context.Background(), tr, trace.Options{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.Violation, ErrLostWakeup) {
		t.Fatalf("mutated: got %v after %d runs, want a lost wakeup", res.Violation, res.Runs)
	}
	if !strings.Contains(res.Violation.Error(), "splice_recv_wait") {
		t.Errorf("lost wakeup not in splice_recv_wait: %v", res.Violation)
	}
	t.Logf("lost wakeup after %d runs (of %d schedules): %v", res.Runs, clean.Runs, res.Violation)
	// The schedule replays it.
	ce := res.Counterexample
	ce2, err := trace.Parse("ce.trace", []byte(ce.Format()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trace.Run(context.Background(), b, ce2, trace.Options{}); !errors.Is(err, ErrLostWakeup) {
		t.Errorf("replay of\n%s: %v, want a lost wakeup", ce.Format(), err)
	}
}

// TestReplayCounterexamples100 replays every saved counterexample 100
// times through trace.Run: the observation output is identical each time.
func TestReplayCounterexamples100(t *testing.T) {
	for _, c := range rfcDefects {
		tr := loadTrace(t, ceDir+c.name+".trace")
		var first string
		for i := 0; i < 100; i++ {
			obs, err := trace.Run(context.Background(), New(), tr, trace.Options{})
			if err != nil {
				t.Fatalf("%s run %d: %v", c.name, i, err)
			}
			var b strings.Builder
			for _, o := range obs {
				b.WriteString(o.String())
				b.WriteByte('\n')
			}
			if i == 0 {
				first = b.String()
			} else if b.String() != first {
				t.Fatalf("%s run %d differs:\n%s\nfirst:\n%s", c.name, i, b.String(), first)
			}
		}
	}
}

// TestRingRefKeepsRingAlive: a receiver's close races a sender's ring
// copy on loopback-splice-seq (whose close tears the pair down). Some
// schedules kill ring_ref while the sender holds it; none frees the ring
// under the sender (spliceRingWrite panics if it does) or leaks it.
func TestRingRefKeepsRingAlive(t *testing.T) {
	tr := loadTrace(t, scenarioDir+"close_during_send.trace")
	b := New()
	inFlight := 0
	for seed := uint64(0); seed < 300; seed++ {
		o, err := b.ExploreRun(context.Background(), tr, trace.Options{}, NewRandomPolicy(seed))
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

// TestSeqMergeSpinsOnTCPHole replays the campaign's livelock on
// loopback-splice-seq: the module's merge loop spins on a copied_seq hole
// in sk_receive_queue. The posted RFC, whose receive path ends with
// -EAGAIN there, and mainline do not spin.
func TestSeqMergeSpinsOnTCPHole(t *testing.T) {
	tr := loadTrace(t, ceDir+"seq_merge_spins_on_tcp_hole.trace")
	if _, err := trace.Run(context.Background(), New(), tr, trace.Options{}); !errors.Is(err, ErrLivelock) {
		t.Fatalf("loopback-splice-seq: %v, want a livelock", err)
	}
	obs, err := trace.Run(context.Background(), New(), tr, trace.Options{Profile: "loopback-splice"})
	if err != nil {
		t.Fatalf("loopback-splice: %v", err)
	}
	if got := obs[len(obs)-1].Result.String(); got != "-EAGAIN" {
		t.Errorf("loopback-splice: last recv %s, want -EAGAIN", got)
	}
}
