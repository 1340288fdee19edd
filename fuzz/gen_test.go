package fuzz

import (
	"testing"

	"github.com/splicecheck/splicecheck/trace"
	"pgregory.net/rapid"
)

// Every generated trace parses, round-trips, and stays within its config.
func TestTraceGeneratorValid(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := GenConfig{Threads: rapid.Bool().Draw(rt, "threads"), KernelSafe: rapid.Bool().Draw(rt, "safe")}
		tr := Trace(cfg).Draw(rt, "trace")
		tr2, err := trace.Parse("x", []byte(tr.Format()))
		if err != nil || !trace.Equal(tr, tr2) {
			rt.Fatalf("does not round-trip: %v\n%s", err, tr.Format())
		}
		conns := 0
		for _, op := range tr.Ops {
			switch op.Kind {
			case trace.OpConn:
				conns++
				if op.Flags&trace.FlagPair != 0 {
					rt.Fatalf("conn pair generated without GenConfig.Pair")
				}
			case trace.OpPair:
				rt.Fatalf("pair generated without GenConfig.Pair")
			case trace.OpRecv:
				if op.Thread != "" && !cfg.Threads {
					rt.Fatalf("thread op without GenConfig.Threads")
				}
			}
		}
		if conns < 2 || conns > 4 {
			rt.Fatalf("%d connections", conns)
		}
	})
}

// The same seed gives the same trace: campaigns are reproducible.
func TestTraceGeneratorSeeded(t *testing.T) {
	g := Trace(GenConfig{Threads: true})
	for seed := 0; seed < 20; seed++ {
		a, b := g.Example(seed), g.Example(seed)
		if a.Format() != b.Format() {
			t.Fatalf("seed %d gives two traces", seed)
		}
	}
	if g.Example(1).Format() == g.Example(2).Format() && g.Example(3).Format() == g.Example(4).Format() {
		t.Fatal("different seeds give the same traces")
	}
}

// Over many traces every op kind appears.
func TestTraceGeneratorCoversEveryOp(t *testing.T) {
	seen := map[trace.Kind]bool{}
	for _, safe := range []bool{true, false} {
		g := Trace(GenConfig{Threads: true, Pair: true, KernelSafe: safe})
		for seed := 0; seed < 300; seed++ {
			for _, op := range g.Example(seed).Ops {
				seen[op.Kind] = true
				if safe && op.Kind == trace.OpPair {
					// A kernel answers every late pair -EOPNOTSUPP.
					t.Errorf("seed %d: a kernel-safe trace has a late pair: %s", seed, op.String())
				}
			}
		}
	}
	// FreeBSD's SO_SPLICE ops, on their profile only.
	g := Trace(GenConfig{Threads: true, SoSplice: true})
	spliced, loops := 0, 0
	for seed := 0; seed < 300; seed++ {
		tr := g.Example(seed)
		for _, op := range tr.Ops {
			seen[op.Kind] = true
			if op.Kind == trace.OpSosplice {
				spliced++
				forward := op.A[1] == '2' && op.B[1] == '1' && op.B[0] > op.A[0]
				if !forward && op.Size == 0 {
					t.Errorf("seed %d: %s may close a loop and has no max", seed, op.String())
				}
			}
		}
		for _, l := range routesOf(tr).looped {
			if l {
				loops++
				break
			}
		}
	}
	if loops < 30 {
		t.Errorf("%d of 300 freebsd traces have a splice loop, want at least 30", loops)
	}
	for _, k := range trace.Kinds() {
		if !seen[k] {
			t.Errorf("op %s never generated in 3 x 300 traces", k)
		}
	}
	t.Logf("%d sosplice ops in 300 freebsd traces, %d with a loop", spliced, loops)
}

// Over seeds 0..999 of each config the campaign uses, every trace
// parses and round-trips, kernel-safe traces stay kernel-safe, and each
// shape the generator aims at appears (KernelSafe and the splice shape
// only where they are generated).
func TestGenShapesCovered(t *testing.T) {
	const min = 10
	want := map[string][]string{
		"plain": {"redirect-msg-ingress", "redirect-msg-egress", "redirect-skb-ingress", "redirect-skb-egress",
			"redirect-chain", "redirect-msg-apply-cork", "skb-pass-partial", "skb-pass-parser-partial",
			"parser-rcvbuf", "parser-rcvbuf-shrunk", "parser-rcvbuf-delete", "never-read", "never-read-filled"},
		"splice": {"redirect-msg-ingress", "redirect-msg-egress", "redirect-skb-ingress", "redirect-skb-egress",
			"redirect-chain", "slab-big-splice", "skb-pass-partial", "parser-rcvbuf", "parser-rcvbuf-shrunk",
			"parser-rcvbuf-delete", "never-read-filled"},
		"kernelsafe": {"redirect-msg-ingress", "redirect-msg-egress", "redirect-skb-ingress", "redirect-skb-egress",
			"redirect-chain", "skb-pass-partial", "skb-pass-parser-partial", "parser-rcvbuf", "parser-rcvbuf-shrunk",
			"parser-rcvbuf-delete", "never-read", "never-read-filled"},
	}
	want["pair"] = append(append([]string{}, want["plain"]...), "redirect-off-a", "redirect-touches-a")
	for _, c := range genConfigs {
		t.Run(c.name, func(t *testing.T) {
			counts := shapeCounts(t, c.cfg, 1000)
			t.Logf("%s: %v", c.name, counts)
			for _, k := range want[c.name] {
				if counts[k] < min {
					t.Errorf("%s: shape %s in %d traces of 1000, want at least %d", c.name, k, counts[k], min)
				}
			}
		})
	}
}
