package fuzz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
	"pgregory.net/rapid"
)

// spliceTrace generates splice-path traces: a1's bytes
// reach a2's psock ingress queue (an sk_msg redirect from a1, or a2's own
// sk_skb verdict, with or without rx copybreak, so some of them sit in
// slab memory), and a random sequence of sends from a1, splices of a2
// into its pipe, pipe reads, reads, pipe resizes and teardown of either
// end. Every read of a2 is non-blocking.
func spliceTrace(profile string) *rapid.Generator[*trace.Trace] {
	return rapid.Custom(func(t *rapid.T) *trace.Trace {
		var b strings.Builder
		line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
		line("profile %s", profile)
		line("conn a1 a2")
		switch rapid.IntRange(0, 2).Draw(t, "topology") {
		case 0:
			line("map m sockmap 2")
			line("prog m sk_msg redirect 1 ingress")
			line("insert m 0 a1")
			line("insert m 1 a2")
		case 1:
			line("map m sockmap 1")
			line("prog m sk_skb pass%s", rapid.SampledFrom([]string{"", " parser all"}).Draw(t, "parser"))
			line("insert m 0 a2")
		default:
			line("map m sockmap 1")
			line("prog m sk_skb redirect 0 ingress")
			line("insert m 0 a2")
		}
		if rapid.Bool().Draw(t, "copybreak") {
			line("set a2 rxcopybreak %d", rapid.SampledFrom([]int{100, 4096, 65536}).Draw(t, "copybreaksize"))
		}
		line("set a2 nonblock on")
		n := rapid.IntRange(1, 30).Draw(t, "ops")
		for range n {
			size := rapid.SampledFrom([]int{1, 7, 100, 1000, 4096, 20000, 65536}).Draw(t, "size")
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1, 2:
				line("send a1 %d dontwait", size)
			case 3, 4:
				line("splice a2 %d%s", size, rapid.SampledFrom([]string{"", " nonblock"}).Draw(t, "nb"))
			case 5, 6:
				line("pipe a2 %d", size)
			case 7:
				line("recv a2 %d", size)
			case 8:
				line("set a2 pipesize %d", rapid.SampledFrom([]int{1, 8192, 65536}).Draw(t, "pipesz"))
			default:
				line(rapid.SampledFrom([]string{"shutdown a1 wr", "close a1", "close a1 rst", "close a2", "fionread a2", "poll a2"}).Draw(t, "ctl"))
			}
		}
		tr, err := trace.Parse("splice.trace", []byte(b.String()))
		if err != nil {
			panic(fmt.Sprintf("generated trace does not parse: %v\n%s", err, b.String()))
		}
		return tr
	})
}

// checkSplice is the property over one run: every byte a2 got by
// recv or out of its pipe is the next byte of a1's stream, and the page
// ownership invariants hold through teardown (no use or put after free,
// no get_page on slab memory, no slab object in a pipe, nothing left).
func checkSplice(r *Execution) error {
	if err := checkPages(r); err != nil {
		return err
	}
	if err := checkSound(r); err != nil {
		return err
	}
	return checkIntegrity(r)
}

// TestSpliceProperties runs random splice-path traces on each profile with
// a splice_read for sockmap and checks checkSplice on every run.
func TestSpliceProperties(t *testing.T) {
	for _, profile := range []string{"linux-6.18+splice-copy", "linux-6.18+splice-zerocopy", "linux-6.1+splice-zerocopy"} {
		t.Run(profile, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				tr := spliceTrace(profile).Draw(rt, "trace")
				r := runOne(context.Background(), provModel(t), nil, tr)
				if err := checkSplice(r); err != nil {
					rt.Fatalf("%v\n%s", err, tr.Format())
				}
			})
		})
	}
}

// TestSplicePlantedBugs plants each bug of the zero-copy actor and checks
// that the same traces find it: the page-ownership property fails, and
// Minimize shrinks the trace to a counterexample that still fails it on
// replay and passes without the mutation.
func TestSplicePlantedBugs(t *testing.T) {
	const profile = "linux-6.18+splice-zerocopy"
	for _, mutation := range []string{"zerocopy-no-get-page", "zerocopy-slab-to-pipe"} {
		t.Run(mutation, func(t *testing.T) {
			mb, err := model.NewWithConfig(model.Config{Mutations: []string{mutation}, Provenance: true})
			if err != nil {
				t.Fatal(err)
			}
			fails := func(tr *trace.Trace) bool {
				return errors.Is(checkSplice(runOne(context.Background(), mb, nil, tr)), ErrProperty)
			}
			gen := spliceTrace(profile)
			for seed := range 2000 {
				tr := gen.Example(seed)
				if !fails(tr) {
					continue
				}
				small := Minimize(tr, fails)
				if !fails(small) {
					t.Fatalf("the shrunk trace no longer fails:\n%s", small.Format())
				}
				if err := checkSplice(runOne(context.Background(), provModel(t), nil, small)); err != nil {
					t.Fatalf("the unmutated model fails the shrunk trace too: %v\n%s", err, small.Format())
				}
				if len(small.Ops) > len(tr.Ops) || len(small.Ops) > 12 {
					t.Errorf("shrunk to %d ops (from %d):\n%s", len(small.Ops), len(tr.Ops), small.Format())
				}
				t.Logf("seed %d: %d ops shrunk to %d:\n%s", seed, len(tr.Ops), len(small.Ops), small.Format())
				return
			}
			t.Fatalf("%s: no failure in 2000 traces", mutation)
		})
	}
}

// TestSpliceZerocopyFullPipeProgress replays the rapid counterexample of
// TestSpliceProperties/linux-6.1+splice-zerocopy (2026-12-05, tcpwin
// before its rebase): sixteen 1-byte sk_msg ingress messages, a 1-byte
// pipe read, then a splice that fills the pipe mid-message. Without
// b74ad82 (the read actor keeps the message's progress at a full pipe)
// sk_psock_destroy puts a page twice at teardown (double-put@skMsgFreeElem).
func TestSpliceZerocopyFullPipeProgress(t *testing.T) {
	src := "profile linux-6.1+splice-zerocopy\nconn a1 a2\nmap m sockmap 2\nprog m sk_msg redirect 1 ingress\n" +
		"insert m 0 a1\ninsert m 1 a2\nset a2 nonblock on\nsend a1 1 dontwait\nsplice a2 1\nsplice a2 1\n" +
		strings.Repeat("send a1 1 dontwait\n", 14) +
		"send a1 20000 dontwait\npipe a2 1\nsend a1 20000 dontwait\nsplice a2 65536\n"
	tr, err := trace.Parse("full_pipe.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSplice(runOne(context.Background(), provModel(t), nil, tr)); err != nil {
		t.Fatal(err)
	}
}
