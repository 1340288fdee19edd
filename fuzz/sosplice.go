package fuzz

import (
	"time"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// checkSoSplice: FreeBSD's SO_SPLICE limits (profile freebsd-so-splice,
// on the model: Stats.Splices). A splice with a max moves at most max
// bytes ("over-max"), and one that moved max is dissolved by it, so the
// next bytes stay on the source ("not-dissolved-at-max"); one dissolved
// for its max moved exactly max ("early-dissolve"). A getsplice never
// reports more than the socket's latest splice has moved by the end of
// the run ("counter-overcounts"). The site is the way the splice ended,
// or "counter-reset" for an overrun, or a max reached without
// dissolving, after a refused sosplice on its source
// (FreeBSD's so_splice zeroes so_splice_sent before its busy checks, and
// so_splice_xfer's limit is max less that counter).
func checkSoSplice(r *Execution) error {
	if r.Stats == nil || len(r.Stats.Splices) == 0 || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	latest := map[string]int64{} // the moved bytes of each source's latest splice up to the op
	next := 0
	for i := range r.Trace.Ops {
		for next < len(r.Stats.Splices) && r.Stats.Splices[next].Op <= i {
			sp := r.Stats.Splices[next]
			latest[sp.Src] = sp.Moved
			op := &r.Trace.Ops[sp.Op]
			where := site(sp.End)
			if refusedResplice(r, sp) {
				where = "counter-reset"
			}
			switch {
			case sp.Max > 0 && sp.Moved > sp.Max:
				return violation(op, "over-max", where, "the splice %s -> %s (max %d) moved %d bytes", sp.Src, sp.Dst, sp.Max, sp.Moved)
			case sp.Max > 0 && sp.Moved == sp.Max && sp.End != "max":
				return violation(op, "not-dissolved-at-max", where, "the splice %s -> %s moved its max (%d) and was not dissolved by it (end: %s)", sp.Src, sp.Dst, sp.Max, site(sp.End))
			case sp.End == "max" && sp.Moved != sp.Max:
				return violation(op, "early-dissolve", "max", "the splice %s -> %s ended for its max (%d) after %d bytes", sp.Src, sp.Dst, sp.Max, sp.Moved)
			}
			next++
		}
		op := &r.Trace.Ops[i]
		if res := r.Obs[i].Result; op.Kind == trace.OpGetsplice && res.Err == 0 && res.N > latest[op.A] {
			return violation(op, "counter-overcounts", "getsplice", "getsplice %s reported %d bytes; its latest splice moved %d in all", op.A, res.N, latest[op.A])
		}
	}
	return checkSpliceTimeouts(r)
}

// spliceTick is how late past its due time the model may fire a splice's
// timeout: the next op boundary or timer event (virtual time).
const spliceTick = 10 * time.Millisecond

// checkSpliceTimeouts: a splice with an idle timeout is dissolved by it
// when the timeout has passed since it was made, not before
// ("timeout-early") and not more than a tick later ("timeout-late";
// FreeBSD's so_splice arms the callout once, at the splice: a lifetime,
// not re-armed by traffic), and one that outlived its timeout by more
// than a tick without it was not dissolved by it ("timeout-missed").
func checkSpliceTimeouts(r *Execution) error {
	for _, sp := range r.Stats.Splices {
		op := &r.Trace.Ops[sp.Op]
		switch {
		case sp.End == "timeout" && sp.Ended-sp.Made < sp.Idle:
			return violation(op, "timeout-early", "timeout", "the splice %s -> %s (idle %v) timed out %v after it was made", sp.Src, sp.Dst, sp.Idle, sp.Ended-sp.Made)
		case sp.End == "timeout" && sp.Ended-sp.Made > sp.Idle+spliceTick:
			return violation(op, "timeout-late", "timeout", "the splice %s -> %s (idle %v) timed out only %v after it was made", sp.Src, sp.Dst, sp.Idle, sp.Ended-sp.Made)
		case sp.Idle > 0 && sp.End == "" && r.Stats.Elapsed-sp.Made > sp.Idle+spliceTick:
			return violation(op, "timeout-missed", "live", "the splice %s -> %s (idle %v) still lasted %v after it was made", sp.Src, sp.Dst, sp.Idle, r.Stats.Elapsed-sp.Made)
		case sp.Idle > 0 && sp.End != "" && sp.End != "timeout" && sp.Ended-sp.Made > sp.Idle+spliceTick:
			return violation(op, "timeout-missed", sp.End, "the splice %s -> %s (idle %v) ended (%s) only %v after it was made", sp.Src, sp.Dst, sp.Idle, sp.End, sp.Ended-sp.Made)
		}
	}
	return nil
}

// checkSpliceConserves is the so-splice-conserves property (profile
// freebsd-so-splice, on the model: Stats.Departures): the bytes a
// socket's peer sent leave the socket's receive queue in the order they
// were sent, each once, none skipped, whether its splices move them or a
// recv reads them: nothing is lost or repeated when a splice is made,
// moves a chunk, reaches its max, times out or is unspliced. The site is
// where the stream jumped: "splice" (between two moves of a splice),
// "unsplice" (from a move to a read), "resplice" (from a read to a move),
// "read". Not judged: a socket another op also reads (iocopy), a peer
// whose sends may go round a splice loop, or whose offsets are not the
// trace's (sends from several threads).
func checkSpliceConserves(r *Execution) error {
	if r.Stats == nil || len(r.Stats.Splices) == 0 || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	rt := routesOf(r.Trace)
	st := trace.StreamsOf(r.Trace, r.Obs)
	skip := map[string]bool{}
	for _, op := range r.Trace.Ops {
		if op.Kind == trace.OpIOCopy {
			skip[op.A] = true
		}
	}
	type cursor struct {
		next   int64
		splice bool
		op     int
	}
	at := map[string]*cursor{}
	for _, d := range r.Stats.Departures {
		peer := rt.peer[d.Src]
		if d.Sender < 0 || d.Sender >= len(r.Stats.TagSocks) || r.Stats.TagSocks[d.Sender] != peer ||
			skip[d.Src] || rt.looped[peer] || st.Opaque[peer] {
			continue
		}
		c := at[d.Src]
		if c == nil {
			c = &cursor{}
			at[d.Src] = c
		}
		if d.Off != c.next {
			where := spliceJump(c.splice, d.Splice)
			kind := "lost"
			if d.Off < c.next {
				kind = "repeated"
			}
			var op *trace.Op
			if !d.Splice {
				op = &r.Trace.Ops[d.Op]
			} else if c.op >= 0 && !c.splice {
				op = &r.Trace.Ops[c.op]
			}
			return violation(op, kind, where, "%s's bytes left %s's receive queue at offset %d (%s) after offset %d", peer, d.Src, d.Off, departureHow(d.Splice), c.next-1)
		}
		c.next, c.splice, c.op = d.Off+d.Len, d.Splice, d.Op
	}
	return nil
}

func departureHow(splice bool) string {
	if splice {
		return "moved by its splice"
	}
	return "read by a recv"
}

// spliceJump names a jump in a source's departures by what took the
// bytes before it and after.
func spliceJump(before, after bool) string {
	switch {
	case before && after:
		return "splice"
	case before:
		return "unsplice"
	case after:
		return "resplice"
	}
	return "read"
}

// refusedResplice reports whether a sosplice on sp's source was refused
// after sp was made (while it may have lasted).
func refusedResplice(r *Execution, sp model.SpliceRecord) bool {
	for i := sp.Op + 1; i < len(r.Trace.Ops); i++ {
		if op := &r.Trace.Ops[i]; op.Kind == trace.OpSosplice && op.A == sp.Src && r.Obs[i].Result.Err != 0 {
			return true
		}
	}
	return false
}

func site(end string) string {
	if end == "" {
		return "live"
	}
	return end
}
