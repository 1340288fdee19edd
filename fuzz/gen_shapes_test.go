package fuzz

import (
	"fmt"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// genConfigs are the GenConfigs the campaign (checkProfile), the fuzz
// target and the model/kernel cross-check use.
var genConfigs = []struct {
	name string
	cfg  GenConfig
}{
	{"plain", GenConfig{Threads: true}},
	{"pair", GenConfig{Threads: true, Pair: true}},
	{"splice", GenConfig{Threads: true, Splice: true}},
	{"kernelsafe", GenConfig{Threads: true, KernelSafe: true}},
}

// connOf is the connection of socket s (a1 → a).
func connOf(s string) string { return s[:1] }

// traceFacts indexes a trace for the shape detectors.
type traceFacts struct {
	tr      *trace.Trace
	progs   map[string][]*trace.Prog // by map
	members map[string]map[int64]string
	reads   map[string]int // recv, splice, pipe, iocopy-source ops per socket
	sent    map[string]int64
}

func factsOf(tr *trace.Trace) *traceFacts {
	f := &traceFacts{tr: tr, progs: map[string][]*trace.Prog{}, members: map[string]map[int64]string{},
		reads: map[string]int{}, sent: map[string]int64{}}
	for i := range tr.Ops {
		op := &tr.Ops[i]
		switch op.Kind {
		case trace.OpProg:
			f.progs[op.Map] = append(f.progs[op.Map], op.Prog)
		case trace.OpInsert:
			if f.members[op.Map] == nil {
				f.members[op.Map] = map[int64]string{}
			}
			f.members[op.Map][op.Key] = op.A
		case trace.OpRecv, trace.OpSplice, trace.OpPipe, trace.OpIOCopy:
			f.reads[op.A]++
		case trace.OpSend:
			if op.Form == trace.DataPattern {
				f.sent[op.A] += op.Size
			} else {
				f.sent[op.A] += int64(len(op.Data))
			}
		}
	}
	return f
}

// crossRedirects returns, for every redirect program whose map holds its
// target and a socket of another connection, where the redirected bytes
// become readable (the target for ingress, its peer for egress) and the
// source socket.
type redirect struct {
	prog     *trace.Prog
	src, dst string
}

func (f *traceFacts) crossRedirects() []redirect {
	var out []redirect
	for m, progs := range f.progs {
		for _, p := range progs {
			if p.Verdict != trace.VerdictRedirect {
				continue
			}
			tgt, ok := f.members[m][p.Key]
			if !ok {
				continue
			}
			dst := tgt
			if !p.Ingress {
				dst = tcpPeer(tgt)
			}
			for k, s := range f.members[m] {
				if k != p.Key && connOf(s) != connOf(tgt) {
					out = append(out, redirect{p, s, dst})
				}
			}
		}
	}
	return out
}

// shapeCounts counts, over seeds [0, n), the traces of cfg that have
// each of the shapes the generator aims at; every trace must parse,
// round-trip, and (KernelSafe) be kernel-safe.
func shapeCounts(t *testing.T, cfg GenConfig, n int) map[string]int {
	g := Trace(cfg)
	counts := map[string]int{}
	for seed := range n {
		tr := g.Example(seed)
		src := tr.Format()
		tr2, err := trace.Parse("x", []byte(src))
		if err != nil || !trace.Equal(tr, tr2) {
			t.Fatalf("seed %d does not round-trip: %v\n%s", seed, err, src)
		}
		if cfg.KernelSafe {
			if err := kernelSafe(tr); err != nil {
				t.Fatalf("seed %d: %v\n%s", seed, err, src)
			}
		}
		for k := range shapesOf(tr) {
			counts[k]++
		}
	}
	return counts
}

// shapesOf names the shapes trace tr has.
func shapesOf(tr *trace.Trace) map[string]bool {
	f := factsOf(tr)
	has := map[string]bool{}
	dsts := map[string]bool{}
	for _, r := range f.crossRedirects() {
		dsts[r.dst] = true
		if f.reads[r.dst] == 0 {
			continue
		}
		kind := "skb"
		if r.prog.Type == trace.SkMsg {
			kind = "msg"
			if r.prog.HasApply || r.prog.HasCork {
				has["redirect-msg-apply-cork"] = true
			}
		}
		if r.prog.Ingress {
			has["redirect-"+kind+"-ingress"] = true
		} else {
			has["redirect-"+kind+"-egress"] = true
		}
		if r.src[:1] == "a" || r.dst[:1] == "a" {
			has["redirect-touches-a"] = true
		} else {
			has["redirect-off-a"] = true
		}
	}
	// A chain: an egress redirect whose destination is the source of
	// another cross-connection redirect.
	for _, r1 := range f.crossRedirects() {
		for _, r2 := range f.crossRedirects() {
			if !r1.prog.Ingress && r2.prog.Type == trace.SkSkb && r2.src == r1.dst && f.reads[r2.dst] > 0 {
				has["redirect-chain"] = true
			}
		}
	}
	copybreak := map[string]int64{}
	var rcvbuf = map[string]bool{}
	// shrunk: sockets whose SO_RCVBUF went small after bytes were sent to
	// them; deleted: maps a delete op names after a small SO_RCVBUF.
	shrunk, sentTo, deleted := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := range tr.Ops {
		op := &tr.Ops[i]
		switch {
		case op.Kind == trace.OpSend:
			sentTo[tcpPeer(op.A)] = true
		case op.Kind == trace.OpDelete && len(rcvbuf) > 0:
			deleted[op.Map] = true
		}
		switch {
		case op.Kind == trace.OpSet && op.Opt == trace.OptRxcopybreak:
			copybreak[op.A] = op.Size
		case op.Kind == trace.OpSet && op.Opt == trace.OptRcvbuf && op.Size <= 4096:
			rcvbuf[op.A] = true
			shrunk[op.A] = shrunk[op.A] || sentTo[op.A]
		case op.Kind == trace.OpSplice && copybreak[op.A] >= 16384 && op.Size >= 30000 && f.sent[tcpPeer(op.A)] >= 32766:
			has["slab-big-splice"] = true
		}
	}
	for m, progs := range f.progs {
		for _, p := range progs {
			if p.Type != trace.SkSkb || p.Verdict == trace.VerdictDrop {
				continue
			}
			for _, s := range f.members[m] {
				if p.Parser >= 1000 && rcvbuf[s] {
					has["parser-rcvbuf"] = true
					if shrunk[s] {
						has["parser-rcvbuf-shrunk"] = true
					}
					if deleted[m] {
						has["parser-rcvbuf-delete"] = true
					}
				}
				if p.Verdict != trace.VerdictPass {
					continue
				}
				small, splice := false, false
				for i := range tr.Ops {
					op := &tr.Ops[i]
					if op.A != s {
						continue
					}
					small = small || op.Kind == trace.OpRecv && op.Size <= 7
					splice = splice || op.Kind == trace.OpSplice
				}
				if small && splice {
					if p.Parser != 0 {
						has["skb-pass-parser-partial"] = true
					} else {
						has["skb-pass-partial"] = true
					}
				}
			}
		}
	}
	// A receiver never read: no read op at all, a FIONREAD of it, and
	// fed by a redirect or by at least 16 KiB from its peer (4000 bytes
	// on kernel-safe traces).
	for _, s := range tr.SocketNames {
		if f.reads[s] > 0 {
			continue
		}
		fion := false
		for i := range tr.Ops {
			fion = fion || tr.Ops[i].Kind == trace.OpFIONREAD && tr.Ops[i].A == s
		}
		if fion && (dsts[s] || f.sent[tcpPeer(s)] >= 4000) {
			has["never-read"] = true
			if f.sent[tcpPeer(s)] >= 32800 || dsts[s] {
				has["never-read-filled"] = true
			}
		}
	}
	return has
}

// kernelSafe checks GenConfig.KernelSafe's promise: every send is
// MSG_DONTWAIT, every splice SPLICE_F_NONBLOCK on a socket with an
// SO_RCVTIMEO or O_NONBLOCK, every recv MSG_DONTWAIT or on a socket
// with one of them, every iocopy source has an SO_RCVTIMEO.
func kernelSafe(tr *trace.Trace) error {
	timeo, nonblock := map[string]bool{}, map[string]bool{}
	for i := range tr.Ops {
		op := &tr.Ops[i]
		bad := ""
		switch op.Kind {
		case trace.OpSet:
			switch op.Opt {
			case trace.OptRcvtimeo:
				timeo[op.A] = op.Size > 0
			case trace.OptNonblock:
				nonblock[op.A] = op.Size != 0
			}
		case trace.OpSend:
			if op.Flags&trace.FlagDontwait == 0 {
				bad = "blocking send"
			}
		case trace.OpSplice:
			if op.Flags&trace.FlagNonblock == 0 || !timeo[op.A] && !nonblock[op.A] {
				bad = "unbounded splice"
			}
		case trace.OpRecv:
			if op.Flags&trace.FlagDontwait == 0 && !timeo[op.A] && !nonblock[op.A] {
				bad = "unbounded recv"
			}
		case trace.OpIOCopy:
			if !timeo[op.A] {
				bad = "unbounded iocopy"
			}
		}
		if bad != "" {
			return fmt.Errorf("line %d: %s", op.Pos.Line, bad)
		}
	}
	return nil
}

// The loopback-splice pair stays on a1/a2 whatever the shape, paired
// at establishment (`conn a1 a2 pair`) in most traces and late (`pair
// a1 a2` after the setup) in some; other connections are paired at
// establishment now and then, and op() adds late pairs after data.
func TestGenPairStaysOnA(t *testing.T) {
	g := Trace(GenConfig{Threads: true, Pair: true})
	const n = 300
	atConn, late, otherConns, opPairs := 0, 0, 0, 0
	for seed := range n {
		tr := g.Example(seed)
		a := 0 // pairings of a1/a2 at setup
		for i, op := range tr.Ops {
			switch {
			case op.Kind == trace.OpConn && op.Flags&trace.FlagPair != 0 && op.A == "a1":
				atConn++
				a++
			case op.Kind == trace.OpConn && op.Flags&trace.FlagPair != 0:
				otherConns++
			case op.Kind == trace.OpPair && op.A == "a1" && op.B == "a2" && tr.Ops[i-1].Kind == trace.OpInsert:
				late++
				a++
			case op.Kind == trace.OpPair:
				opPairs++
			}
		}
		if a != 1 {
			t.Fatalf("seed %d: a1/a2 paired %d times at setup\n%s", seed, a, tr.Format())
		}
	}
	t.Logf("%d traces: a1/a2 paired at conn %d, late %d; other conns paired at conn %d; late pairs among the ops %d",
		n, atConn, late, otherConns, opPairs)
	if atConn < n*6/10 || late < n/10 {
		t.Errorf("a1/a2 paired at conn in %d and late in %d of %d traces: want about 3/4 and 1/4", atConn, late, n)
	}
	if otherConns == 0 || opPairs == 0 {
		t.Errorf("no other connection paired at conn (%d) or no late pair among the ops (%d)", otherConns, opPairs)
	}
}

// New shapes are a minority: most traces keep the old mix.
func TestGenOldShapesKept(t *testing.T) {
	for _, c := range genConfigs {
		w := c.cfg.withDefaults().shapeWeights()
		total := 0
		for _, x := range w {
			total += x
		}
		if total != 100 {
			t.Errorf("%s: shape weights sum to %d", c.name, total)
		}
		if w[shapeOld] < 50 || w[shapeOld] > 70 {
			t.Errorf("%s: old shape weight %d%%, want 50-70%%", c.name, w[shapeOld])
		}
	}
}
