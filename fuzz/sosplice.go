package fuzz

import (
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
// or "counter-reset" for an overrun after a refused sosplice on its source
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
			switch {
			case sp.Max > 0 && sp.Moved > sp.Max:
				where := site(sp.End)
				if refusedResplice(r, sp) {
					where = "counter-reset"
				}
				return violation(op, "over-max", where, "the splice %s -> %s (max %d) moved %d bytes", sp.Src, sp.Dst, sp.Max, sp.Moved)
			case sp.Max > 0 && sp.Moved == sp.Max && sp.End != "max":
				return violation(op, "not-dissolved-at-max", site(sp.End), "the splice %s -> %s moved its max (%d) and was not dissolved by it (end: %s)", sp.Src, sp.Dst, sp.Max, site(sp.End))
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
	return nil
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
