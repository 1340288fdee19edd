package fuzz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"pgregory.net/rapid"

	"github.com/splicecheck/splicecheck/trace"
)

// One proxy, four mechanisms. A proxy holds two connections: the client's
// (its end of it is the front) and its own to a backend (its end is the
// back), and moves the bytes that arrive on each to the other. A trace
// builds it in one of four forms, each written with the trace language's
// own ops, so that every form runs on every backend that has its ops:
//
//	so-splice  sosplice F B / sosplice B F          FreeBSD's SO_SPLICE, both ways
//	sockmap    two sockmaps, each with an sk_skb verdict redirecting to
//	           key 1 egress, B and F at key 1 before the programs, F and B
//	           at key 0 after: F's skbs go out through B, B's through F
//	splice     set F rcvtimeo L / set B rcvtimeo L /
//	           @T1 iocopy F B / @T1 shutdown B wr /
//	           @T2 iocopy B F / @T2 shutdown F wr, joined at the end:
//	           Go's io.Copy (splice(2) through a pipe) each way, the
//	           destination shut down for writing when the copy returns
//	readwrite  the same with `iocopy ... readwrite` (read/write in user space)
//
// The sockmap form relies on sock_map_link() (net/core/sock_map.c, v6.18)
// taking a map's programs at insert: the programs attached after B's and
// F's first inserts do not reach them there, so each socket ends with one
// verdict program, the one redirecting to the other.
//
// FindProxy recognises a form in a trace, Proxy.Rewrite turns it into
// another, and the proxy-parity property runs the trace's workload (its
// other ops) through all four and compares what the far ends see.

// Mech is how a proxy moves bytes.
type Mech uint8

const (
	ViaSoSplice  Mech = iota // FreeBSD SO_SPLICE (profile freebsd-so-splice)
	ViaSockmap               // sk_skb verdict redirecting to the other socket's egress
	ViaSplice                // io.Copy: splice(2) through a pipe, then shutdown(SHUT_WR)
	ViaReadwrite             // read(2)/write(2) in user space, then shutdown(SHUT_WR)
	numMechs
)

var mechNames = [numMechs]string{"so-splice", "sockmap", "splice", "readwrite"}

func (m Mech) String() string {
	if m < numMechs {
		return mechNames[m]
	}
	return fmt.Sprintf("Mech(%d)", uint8(m))
}

// MechByName returns the form named name (Mech.String).
func MechByName(name string) (Mech, bool) {
	for m, n := range mechNames {
		if n == name {
			return Mech(m), true
		}
	}
	return 0, false
}

// MarshalText writes the form's name (JSON).
func (m Mech) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// userSpace reports whether the proxy's own code sees the end of each
// direction (io.Copy returns) and passes it on with shutdown(SHUT_WR).
func (m Mech) userSpace() bool { return m == ViaSplice || m == ViaReadwrite }

// profileFor is the profile a form runs under when the trace's is p:
// FreeBSD's for SO_SPLICE, else p, or Linux's default base when p is
// FreeBSD's.
func (m Mech) profileFor(p string) string {
	switch {
	case m == ViaSoSplice:
		return trace.FreeBSDProfile
	case strings.HasPrefix(p, trace.FreeBSDProfile):
		return trace.DefaultBase
	}
	return p
}

// Proxy is a proxy form found in a trace (FindProxy).
type Proxy struct {
	Front, Back string
	Via         Mech
	// Life is the copy forms' deadline: the SO_RCVTIMEO of Front and
	// Back, which io.Copy takes as its read deadline (ms).
	Life  int64
	ops   []int     // the form's ops in the trace (setup, then joins)
	names [2]string // the form's maps (sockmap) or threads (copy forms)
}

// ProxyLife is the copy forms' deadline in the traces the generator
// writes (ms of trace time): long past any workload's end, so that only
// a FIN or an error ends a copy.
const ProxyLife = 60000

// proxyForm is form via's ops for a proxy between front and back: the
// setup, written where the proxy is, and the tail, written after the
// last op. names are the map and thread names the form may use.
func proxyForm(via Mech, front, back string, life int64, names [2]string) (setup, tail []string) {
	f, b, x, y := front, back, names[0], names[1]
	switch via {
	case ViaSoSplice:
		return []string{"sosplice " + f + " " + b, "sosplice " + b + " " + f}, nil
	case ViaSockmap:
		return []string{
			"map " + x + " sockmap 2", "map " + y + " sockmap 2",
			"insert " + x + " 1 " + b, "insert " + y + " 1 " + f,
			"prog " + x + " sk_skb redirect 1 egress", "prog " + y + " sk_skb redirect 1 egress",
			"insert " + x + " 0 " + f, "insert " + y + " 0 " + b,
		}, nil
	}
	rw := ""
	if via == ViaReadwrite {
		rw = " readwrite"
	}
	return []string{
			fmt.Sprintf("set %s rcvtimeo %d", f, life), fmt.Sprintf("set %s rcvtimeo %d", b, life),
			"@" + x + " iocopy " + f + " " + b + rw, "@" + x + " shutdown " + b + " wr",
			"@" + y + " iocopy " + b + " " + f + rw, "@" + y + " shutdown " + f + " wr",
		},
		[]string{"join " + x, "join " + y}
}

// FindProxy returns the first proxy form in t.
func FindProxy(t *trace.Trace) (Proxy, bool) {
	for i := range t.Ops {
		if p, ok := proxyAt(t, i); ok {
			return p, true
		}
	}
	return Proxy{}, false
}

// proxyAt recognises a form whose setup starts at op i: its ops, with
// any names, exactly as proxyForm writes them.
func proxyAt(t *trace.Trace, i int) (Proxy, bool) {
	o := &t.Ops[i]
	var p Proxy
	var names [2]string
	switch {
	case o.Kind == trace.OpSosplice:
		p = Proxy{Front: o.A, Back: o.B, Via: ViaSoSplice}
	case o.Kind == trace.OpMap && i+1 < len(t.Ops):
		p = Proxy{Via: ViaSockmap}
		names = [2]string{o.Map, t.Ops[i+1].Map}
		if n := i + 6; n+1 < len(t.Ops) {
			p.Front, p.Back = t.Ops[n].A, t.Ops[n+1].A
		}
	case o.Kind == trace.OpSet && o.Opt == trace.OptRcvtimeo && i+4 < len(t.Ops):
		p = Proxy{Front: o.A, Back: t.Ops[i+1].A, Via: ViaSplice, Life: o.Size}
		if t.Ops[i+2].Flags&trace.FlagReadwrite != 0 {
			p.Via = ViaReadwrite
		}
		names = [2]string{t.Ops[i+2].Thread, t.Ops[i+4].Thread}
	default:
		return Proxy{}, false
	}
	if p.Front == "" || p.Back == "" || p.Front == p.Back || names[0] == names[1] && p.Via != ViaSoSplice {
		return Proxy{}, false
	}
	p.names = names
	setup, tail := proxyForm(p.Via, p.Front, p.Back, p.Life, names)
	if i+len(setup) > len(t.Ops) {
		return Proxy{}, false
	}
	for k, l := range setup {
		if t.Ops[i+k].String() != l {
			return Proxy{}, false
		}
		p.ops = append(p.ops, i+k)
	}
	if tail == nil {
		return p, true
	}
	// The copy threads run the form's ops and their joins, nothing else.
	for k := i + len(setup); k < len(t.Ops); k++ {
		op := &t.Ops[k]
		switch {
		case op.Kind == trace.OpJoin && (op.Target == names[0] || op.Target == names[1]):
			p.ops = append(p.ops, k)
		case op.Thread == names[0] || op.Thread == names[1]:
			return Proxy{}, false
		}
	}
	if len(p.ops) != len(setup)+len(tail) {
		return Proxy{}, false
	}
	return p, true
}

// Rewrite returns t with the proxy built the via way instead, under the
// profile that form runs on; the other ops keep their order.
func (p Proxy) Rewrite(t *trace.Trace, via Mech) (*trace.Trace, error) {
	var taken []string // the trace's names but the form's own, which go with it
	for _, n := range append(slices.Clone(t.MapNames), t.ThreadNames...) {
		if n != p.names[0] && n != p.names[1] {
			taken = append(taken, n)
		}
	}
	names := [2]string{fresh("proxy_fwd", taken), fresh("proxy_rev", taken)}
	life := p.Life
	if life == 0 {
		life = ProxyLife
	}
	setup, tail := proxyForm(via, p.Front, p.Back, life, names)
	head := *t
	head.Ops, head.Profile = nil, via.profileFor(t.Profile)
	var b strings.Builder
	b.WriteString(head.Format())
	for i := range t.Ops {
		if i == p.ops[0] {
			b.WriteString(strings.Join(setup, "\n") + "\n")
		}
		if !slices.Contains(p.ops, i) {
			b.WriteString(t.Ops[i].String() + "\n")
		}
	}
	for _, l := range tail {
		b.WriteString(l + "\n")
	}
	return trace.Parse(t.File, []byte(b.String()))
}

// fresh is base, or base with a number, that is not in taken.
func fresh(base string, taken []string) string {
	name := base
	for n := 2; slices.Contains(taken, name); n++ {
		name = fmt.Sprintf("%s%d", base, n)
	}
	return name
}

// workload is the indexes of t's ops that are not the proxy's.
func (p Proxy) workload(t *trace.Trace) []int {
	var w []int
	for i := range t.Ops {
		if !slices.Contains(p.ops, i) {
			w = append(w, i)
		}
	}
	return w
}

// farEndOp reports whether op is a far end's: not a conn (the same
// whatever the proxy), not an op on the proxy's own sockets.
func (p Proxy) farEndOp(op *trace.Op) bool {
	return op.Kind != trace.OpConn && op.A != p.Front && op.A != p.Back
}

// farEnds maps each of the proxy's sockets to the other end of its
// connection (the client for Front, the backend for Back).
func (p Proxy) farEnds(t *trace.Trace) map[string]string {
	ends := map[string]string{}
	for i := range t.Ops {
		if op := &t.Ops[i]; op.Kind == trace.OpConn {
			for _, s := range [2][2]string{{op.A, op.B}, {op.B, op.A}} {
				if s[0] == p.Front || s[0] == p.Back {
					ends[s[0]] = s[1]
				}
			}
		}
	}
	return ends
}

// ProxyVariant is a trace's workload run through another proxy form.
type ProxyVariant struct {
	Via   Mech
	Trace *trace.Trace
	Obs   []trace.Observation
	Err   error
}

// runVariants runs r's trace through every other proxy form when it has
// one (r.Variants), for the proxy-parity property.
func (r *Execution) runVariants(ctx context.Context, sut trace.Backend) {
	p, ok := FindProxy(r.Trace)
	if !ok || r.Err != nil {
		return
	}
	for via := Mech(0); via < numMechs; via++ {
		if via == p.Via {
			continue
		}
		vt, err := p.Rewrite(r.Trace, via)
		if err != nil {
			continue // a name the rewrite cannot place: not judged
		}
		v := ProxyVariant{Via: via, Trace: vt}
		v.Obs, v.Err = trace.Observe(ctx, sut, vt, trace.Options{})
		r.Variants = append(r.Variants, v)
	}
}

// ErrNoProxy: a trace given to RunProxy has no proxy form.
var ErrNoProxy = errors.New("no proxy form (sosplice, sockmap, splice or readwrite, as docs/design.md writes them)")

// ProxyReport is a trace's workload run through several proxy forms
// (RunProxy): one row per op of the far ends, the differences the
// mechanisms are known to have, and the first one they are not.
type ProxyReport struct {
	Vias      []Mech
	Rows      []ProxyRow
	Diffs     []ProxyDiff // between the first form and each other
	Violation *Violation  // proxy-parity's, nil when it holds
}

// ProxyRow is one workload op and its result through each form.
type ProxyRow struct {
	Line    int
	Op      string
	Results []trace.Result
}

// RunProxy runs t's workload through each of vias on b (each form under
// the profile it runs on, Mech.profileFor) and compares the far ends'
// results as proxy-parity does.
func RunProxy(ctx context.Context, b trace.Backend, t *trace.Trace, vias []Mech) (*ProxyReport, error) {
	p, ok := FindProxy(t)
	if !ok {
		return nil, ErrNoProxy
	}
	rep := &ProxyReport{Vias: vias}
	var runs []proxyRun
	for _, via := range vias {
		vt, err := p.Rewrite(t, via)
		if err != nil {
			return nil, fmt.Errorf("%s form: %w", via, err)
		}
		obs, err := trace.Observe(ctx, b, vt, trace.Options{})
		if err != nil {
			return nil, fmt.Errorf("%s form: %w", via, err)
		}
		vp, _ := FindProxy(vt)
		runs = append(runs, proxyRun{vp, vt, obs})
	}
	w := p.workload(t)
	for k, i := range w {
		op := &t.Ops[i]
		if !p.farEndOp(op) {
			continue
		}
		row := ProxyRow{Line: op.Pos.Line, Op: op.String()}
		for _, r := range runs {
			row.Results = append(row.Results, r.obs[r.p.workload(r.t)[k]].Result)
		}
		rep.Rows = append(rep.Rows, row)
	}
	for _, r := range runs[1:] {
		diffs, err := compareProxies(runs[0], r, linesOf(t, w))
		rep.Diffs = append(rep.Diffs, diffs...)
		if v, ok := AsViolation(err); ok && rep.Violation == nil {
			rep.Violation = v
		}
	}
	return rep, nil
}

// proxyDiff is one difference the mechanisms are known to have, named
// by what the far end sees and why.
//
//   - "eof": a far end's FIN (shutdown wr, close) reaches the other far
//     end only through the user-space forms, whose io.Copy returns at EOF
//     and whose proxy then shuts the destination down. SO_SPLICE
//     dissolves the splice at the source's EOF without a shutdown of the
//     sink (so_splice_xfer(), sys/kern/uipc_socket.c, 4d0f7fdd); an sk_skb
//     verdict sees only the source's data skbs, and its redirect sends
//     their bytes out through the target (sk_psock_backlog(),
//     net/core/skmsg.c, v6.18), while the FIN stays with the source's own
//     TCP (tcp_fin(), net/ipv4/tcp_input.c, v6.18: CLOSE_WAIT).
//   - "rst": a far end's RST, likewise, ends the user-space copy with
//     ECONNRESET (tcp_reset(), net/ipv4/tcp_input.c, v6.18), and the
//     proxy passes it on as a FIN: the other far end reads EOF, not
//     ECONNRESET. SO_SPLICE and sk_skb pass nothing on.
//
// In both the far end of a user-space form reads EOF where the others
// time out (-EAGAIN), and that end's later reads follow from it.
var proxyDiffs = []string{"eof", "rst"}

// checkProxy is the proxy-parity property: every far end of the proxy
// sees the same results in every form (r.Variants), except the named
// differences of proxyDiffs.
func checkProxy(r *Execution) error {
	p, ok := FindProxy(r.Trace)
	if !ok || len(r.Variants) == 0 || r.Err != nil || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	own := proxyRun{p, r.Trace, r.Obs}
	for _, v := range r.Variants {
		vp, ok := FindProxy(v.Trace)
		if v.Err != nil || !ok || len(v.Obs) != len(v.Trace.Ops) {
			continue // the variant's own run is the other properties' to judge
		}
		if _, err := compareProxies(own, proxyRun{vp, v.Trace, v.Obs}, linesOf(r.Trace, p.workload(r.Trace))); err != nil {
			return err
		}
	}
	return nil
}

type proxyRun struct {
	p   Proxy
	t   *trace.Trace
	obs []trace.Observation
}

// ProxyDiff is a named difference between two forms of one proxy: at
// the workload op on Line, far end End read EOF through the user-space
// form User and timed out through Other, because of Why (proxyDiffs).
type ProxyDiff struct {
	Line        int
	End         string
	Why         string
	User, Other Mech
}

// linesOf is the lines of t's ops at indexes w.
func linesOf(t *trace.Trace, w []int) []int {
	lines := make([]int, len(w))
	for k, i := range w {
		lines[k] = t.Ops[i].Pos.Line
	}
	return lines
}

// compareProxies compares the far ends' results in a and b, op by op of
// the workload: the named differences, or the first difference that
// proxyDiffs does not name. lines are the workload's lines, to report.
func compareProxies(a, b proxyRun, lines []int) ([]ProxyDiff, error) {
	wa, wb := a.p.workload(a.t), b.p.workload(b.t)
	if len(wa) != len(wb) {
		return nil, nil
	}
	var diffs []ProxyDiff
	ends := a.p.farEnds(a.t)
	across := map[string]string{ends[a.p.Front]: ends[a.p.Back], ends[a.p.Back]: ends[a.p.Front]}
	ended := map[string]string{} // far end → "eof" or "rst", once it ended its side
	split := map[string]string{} // far end → the named difference its reads follow from
	for k := range wa {
		op := &a.t.Ops[wa[k]]
		if !a.p.farEndOp(op) {
			continue
		}
		ra, rb := a.obs[wa[k]], b.obs[wb[k]]
		if _, done := split[op.A]; !done && !sameObs(ra, rb) {
			why := ended[across[op.A]]
			if op.Kind != trace.OpRecv || why == "" || !proxyEOFGap(a.p.Via, ra, b.p.Via, rb) {
				v := violation(op, "proxy-differs", a.p.Via.String()+"/"+b.p.Via.String(),
					"%s: %s through %s, %s through %s", op, ra.Result, a.p.Via, rb.Result, b.p.Via)
				v.Line = lines[k]
				return diffs, v
			}
			split[op.A] = why
			d := ProxyDiff{Line: lines[k], End: op.A, Why: why, User: a.p.Via, Other: b.p.Via}
			if !d.User.userSpace() {
				d.User, d.Other = d.Other, d.User
			}
			diffs = append(diffs, d)
		}
		switch {
		case op.Kind == trace.OpClose && op.Flags&trace.FlagRST != 0:
			ended[op.A] = "rst"
		case (op.Kind == trace.OpClose || op.Kind == trace.OpShutdown && op.How != trace.ShutRD) && ended[op.A] == "":
			ended[op.A] = "eof"
		}
	}
	return diffs, nil
}

// proxyEOFGap reports whether ra and rb are the named gap: EOF through a
// user-space form, a timeout (-EAGAIN) through one that is not.
func proxyEOFGap(va Mech, ra trace.Observation, vb Mech, rb trace.Observation) bool {
	eof := func(o trace.Observation) bool { return o.Result.Err == 0 && o.Result.N == 0 && o.Result.Word == "" }
	timeout := func(o trace.Observation) bool { return o.Result.Err == syscall.EAGAIN }
	return va.userSpace() && !vb.userSpace() && eof(ra) && timeout(rb) ||
		vb.userSpace() && !va.userSpace() && eof(rb) && timeout(ra)
}

// sameObs reports whether two observations of one op agree: result and
// data.
func sameObs(a, b trace.Observation) bool {
	return a.Result.String() == b.Result.String() && string(a.Result.Data) == string(b.Result.Data)
}

// ProxyTrace returns a generator of proxy traces: a client c connected to
// the proxy's front pf, the proxy's back pb connected to a backend b, the
// proxy in form via, and a workload of sends each read whole on the
// other side, then (most of the time) one far end's end: shutdown,
// close or close with RST, a read on the other far end to see what of it
// came through, and after a half-close more bytes the other way. Every
// read is bounded by SO_RCVTIMEO (c: 100 ms, b: 115 ms, never due
// together); after a close, only that probe follows, so that no send
// depends on what a dead direction did with its bytes.
func ProxyTrace(via Mech) *rapid.Generator[*trace.Trace] {
	return rapid.Custom(func(t *rapid.T) *trace.Trace {
		var b strings.Builder
		w := func(f string, a ...any) { fmt.Fprintf(&b, f+"\n", a...) }
		w("conn c pf")
		w("conn pb b")
		setup, tail := proxyForm(via, "pf", "pb", ProxyLife, [2]string{"proxy_fwd", "proxy_rev"})
		b.WriteString(strings.Join(setup, "\n") + "\n")
		w("set c rcvtimeo 100")
		w("set b rcvtimeo 115")
		other := map[string]string{"c": "b", "b": "c"}
		size := func() int {
			return rapid.SampledFrom([]int{1, 7, 100, 1000, 4096, 16384, 40000}).Draw(t, "size")
		}
		exchange := func(from string) {
			n := size()
			w("send %s %d", from, n)
			if k := rapid.IntRange(0, n-1).Draw(t, "split"); k > 0 && rapid.Bool().Draw(t, "tworeads") {
				w("recv %s %d waitall", other[from], k)
				n -= k
			}
			w("recv %s %d waitall", other[from], n)
		}
		dirs := []string{"c", "b"}
		for range rapid.IntRange(0, 5).Draw(t, "rounds") {
			exchange(rapid.SampledFrom(dirs).Draw(t, "dir"))
		}
		if rapid.IntRange(0, 3).Draw(t, "end") > 0 {
			x := rapid.SampledFrom(dirs).Draw(t, "ender")
			how := rapid.SampledFrom([]string{"shutdown %s wr", "close %s", "close %s rst"}).Draw(t, "how")
			w(how, x)
			w("recv %s 1", other[x])
			if strings.HasPrefix(how, "shutdown") {
				for range rapid.IntRange(0, 2).Draw(t, "after") {
					exchange(other[x])
				}
				if rapid.Bool().Draw(t, "bothend") {
					w(rapid.SampledFrom([]string{"shutdown %s wr", "close %s", "close %s rst"}).Draw(t, "how2"), other[x])
					w("recv %s 1", x)
				}
			}
		}
		for _, l := range tail {
			w("%s", l)
		}
		tr, err := trace.Parse("proxy.trace", []byte(b.String()))
		if err != nil {
			panic(fmt.Sprintf("generated proxy trace does not parse: %v\n%s", err, b.String()))
		}
		return tr
	})
}
