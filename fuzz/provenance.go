package fuzz

import (
	"bytes"
	"fmt"

	"github.com/splicecheck/splicecheck/trace"
)

// chunk is a run of bytes a socket consumed: a recv's data, or what a
// splice took into the socket's pipe (known once pipe reads return it).
type chunk struct {
	data  []byte
	n     int
	known bool
	op    int // the op that consumed it
}

// consumption returns what sock consumed in the run, in trace order:
// each non-peek recv's data and each splice's bytes, the latter filled
// from the pipe reads that returned them (a pipe returns its oldest
// bytes first). It stops at a chunk whose bytes are not known (spliced
// and never read out, or cut short by the runner). ok is false when the
// socket is read from more than one thread (the order is the kernel's),
// or a pipe read returned more than was spliced (v says so).
func consumption(r *Run, sock string) (chunks []chunk, v *Violation, ok bool) {
	thread := ""
	type pending struct{ chunk, filled int }
	var pipe []pending
	cut := len(r.Trace.Ops)
	for i := range r.Trace.Ops {
		op := &r.Trace.Ops[i]
		if op.A != sock || (op.Kind != trace.OpRecv && op.Kind != trace.OpSplice && op.Kind != trace.OpPipe) {
			continue
		}
		if thread != "" && thread != op.ThreadName() {
			return nil, nil, false
		}
		thread = op.ThreadName()
		res := r.Obs[i].Result
		if res.Note != "" && op.Kind != trace.OpRecv {
			cut = min(cut, i) // the runner cut a splice or pipe read: the pipe is unknown from here
		}
		if res.Err != 0 || res.N <= 0 || i >= cut {
			continue
		}
		switch op.Kind {
		case trace.OpRecv:
			if op.Flags&trace.FlagPeek == 0 {
				chunks = append(chunks, chunk{data: res.Data, n: len(res.Data), known: true, op: i})
			}
		case trace.OpSplice:
			chunks = append(chunks, chunk{data: make([]byte, 0, res.N), n: int(res.N), op: i})
			pipe = append(pipe, pending{chunk: len(chunks) - 1})
		case trace.OpPipe:
			d := res.Data
			for len(d) > 0 {
				if len(pipe) == 0 {
					return nil, violation(op, "overread", "pipe", "%s's pipe returned %d bytes more than were spliced into it", sock, len(d)), true
				}
				c := &chunks[pipe[0].chunk]
				take := min(len(d), c.n-len(c.data))
				c.data = append(c.data, d[:take]...)
				d = d[take:]
				if len(c.data) == c.n {
					c.known = true
					pipe = pipe[1:]
				}
			}
		}
	}
	for i, c := range chunks {
		if !c.known {
			return chunks[:i], nil, true
		}
	}
	return chunks, nil, true
}

// provenance follows every byte a run's receivers consumed back to the
// send it came from (sender, stream offset), over every stream: plain
// TCP, redirects (ingress, egress, sk_skb), the loopback-splice ring and
// pipes. A receiver's bytes must be in-order runs of its possible
// senders' streams (routes): never corrupted, never delivered twice,
// never out of order, and never lost mid-stream where nothing in the
// trace lets Linux lose them.
//
// Bytes carry no tag, so a run is attributed by its content: the
// longest match among the possible senders, preferring the sender's next
// byte, then a later one (a gap), then an earlier one not yet delivered
// (a reordering), then one already delivered (a duplicate).
type provenance struct {
	r      *Run
	st     *trace.Streams
	rt     *routes
	deliv  map[string][]bool
	cursor map[[2]string]int
	last   map[[2]string][2]int // the last run delivered from S to R: [start, end)
	gaps   []gap
	sendAt map[string][][2]int64 // per sender: (stream offset, op index) of each accepted send
}

type gap struct {
	rcv, snd string
	from, to int
	op       int
	next     [2]int // the run read after the gap
}

func newProvenance(r *Run) *provenance {
	p := &provenance{r: r, st: trace.StreamsOf(r.Trace, r.Obs), rt: routesOf(r.Trace),
		deliv: map[string][]bool{}, cursor: map[[2]string]int{}, last: map[[2]string][2]int{},
		sendAt: map[string][][2]int64{}}
	for s, b := range p.st.Sent {
		p.deliv[s] = make([]bool, len(b))
	}
	for i, op := range r.Trace.Ops {
		if op.Kind == trace.OpSend && r.Obs[i].Result.N > 0 {
			p.sendAt[op.A] = append(p.sendAt[op.A], [2]int64{p.st.Off[i], int64(i)})
		}
	}
	return p
}

// candidates are the senders whose bytes rcv may get, its peer first;
// nil when one of them is opaque (its bytes cannot be told).
func (p *provenance) candidates(rcv string) []string {
	peer := p.rt.peer[rcv]
	if !p.rt.foreign[rcv] {
		if p.st.Opaque[peer] {
			return nil
		}
		return []string{peer}
	}
	out := []string{peer}
	for _, s := range sockets(p.r.Trace) {
		if p.st.Opaque[s] {
			return nil
		}
		if s != peer {
			out = append(out, s) // rcv too: a redirect can bring a socket's own bytes back
		}
	}
	return out
}

// match classes, best first.
const (
	inOrder = iota
	gapAhead
	back
	dup
)

type cand struct {
	snd   string
	off   int
	n     int
	class int
}

// matchLen is how many bytes of tail match s's stream at off, stopping
// at a byte already delivered unless dupOK.
func (p *provenance) matchLen(s string, off int, tail []byte, dupOK bool) int {
	st, dl := p.st.Sent[s], p.deliv[s]
	n := 0
	for n < len(tail) && off+n < len(st) && st[off+n] == tail[n] && (dupOK || !dl[off+n]) {
		n++
	}
	return n
}

// best finds the best run of tail in s's stream, cursor cur.
func (p *provenance) best(s string, tail []byte, cur int) cand {
	st, dl := p.st.Sent[s], p.deliv[s]
	b := cand{snd: s}
	consider := func(off, class int) {
		n := p.matchLen(s, off, tail, class == dup)
		if n > b.n || n == b.n && n > 0 && class < b.class {
			b = cand{snd: s, off: off, n: n, class: class}
		}
	}
	if cur < len(st) {
		consider(cur, inOrder)
	}
	for _, m := range []int{8, 4, 2, 1} {
		m = min(m, len(tail))
		pre := tail[:m]
		found := false
		// The nearest undelivered occurrence ahead, the earliest
		// undelivered one behind, the earliest delivered one.
		for from, tries := cur+1, 0; from < len(st) && tries < 64; tries++ {
			i := bytes.Index(st[from:], pre)
			if i < 0 {
				break
			}
			if o := from + i; !dl[o] {
				consider(o, gapAhead)
				found = true
				break
			}
			from += i + 1
		}
		seenBack, seenDup := false, false
		for from, tries := 0, 0; from < min(cur, len(st)) && tries < 64 && !(seenBack && seenDup); tries++ {
			i := bytes.Index(st[from:min(cur+m, len(st))], pre)
			if i < 0 || from+i >= cur {
				break
			}
			o := from + i
			if !dl[o] && !seenBack {
				consider(o, back)
				seenBack, found = true, true
			} else if dl[o] && !seenDup {
				consider(o, dup)
				seenDup, found = true, true
			}
			from = o + 1
		}
		if found || m == 1 {
			break
		}
	}
	return b
}

// follow attributes rcv's consumed bytes and returns the first
// violation.
func (p *provenance) follow(rcv string) *Violation {
	chunks, v, ok := consumption(p.r, rcv)
	if v != nil || !ok {
		return v
	}
	cands := p.candidates(rcv)
	if cands == nil {
		return nil
	}
	var all []byte
	var opOf []int // op of each byte's chunk, by chunk start
	for _, c := range chunks {
		for range c.data {
			opOf = append(opOf, c.op)
		}
		all = append(all, c.data...)
	}
	cur := cand{class: -1}
	for pos := 0; pos < len(all); {
		op := &p.r.Trace.Ops[opOf[pos]]
		if cur.class >= 0 {
			key := [2]string{rcv, cur.snd}
			if n := p.matchLen(cur.snd, p.cursor[key], all[pos:pos+1], false); n == 1 {
				p.take(rcv, cur.snd, p.cursor[key], 1)
				pos++
				continue
			}
		}
		var ties []cand
		for _, s := range cands {
			c := p.best(s, all[pos:], p.cursor[[2]string{rcv, s}])
			switch better := p.better(c, ties, len(all)-pos); {
			case better > 0:
				ties = append(ties[:0], c)
			case better == 0:
				ties = append(ties, c)
			}
		}
		b := p.breakTie(rcv, cands, ties, all[pos:])
		if b.n == 0 || b.class != inOrder && b.n < 4 && p.substituted(rcv, cands, all[pos:]) {
			return violation(op, "corrupted", p.site(rcv), "%s read byte %#x at its stream position %d that none of %v sent there",
				rcv, all[pos], pos, cands)
		}
		key := [2]string{rcv, b.snd}
		switch b.class {
		case gapAhead:
			p.gaps = append(p.gaps, gap{rcv: rcv, snd: b.snd, from: p.cursor[key], to: b.off, op: opOf[pos], next: [2]int{b.off, b.off + b.n}})
		case back:
			return violation(op, "reordered", p.reorderSite(rcv, b), "%s read %d bytes of %s's stream at offset %d after bytes up to offset %d",
				rcv, b.n, b.snd, b.off, p.cursor[key])
		case dup:
			return violation(op, "duplicated", p.site(rcv), "%s read %d bytes of %s's stream at offset %d that were already delivered",
				rcv, b.n, b.snd, b.off)
		}
		p.take(rcv, b.snd, b.off, b.n)
		p.last[key] = [2]int{b.off, b.off + b.n}
		pos += b.n
		cur = b
	}
	return nil
}

// substituted reports whether tail is the next bytes of one of cands
// with its first byte changed: a corrupted byte, not a jump.
func (p *provenance) substituted(rcv string, cands []string, tail []byte) bool {
	if len(tail) < 2 {
		return false
	}
	for _, s := range cands {
		cur := p.cursor[[2]string{rcv, s}]
		if cur < len(p.st.Sent[s]) && p.matchLen(s, cur+1, tail[1:], false) >= min(4, len(tail)-1) {
			return true
		}
	}
	return false
}

func (p *provenance) take(rcv, snd string, off, n int) {
	for i := off; i < off+n; i++ {
		p.deliv[snd][i] = true
	}
	key := [2]string{rcv, snd}
	p.cursor[key] = max(p.cursor[key], off+n)
}

// site is "ring" when rcv's ring was written, else "".
func (p *provenance) site(rcv string) string {
	if p.r.Stats != nil {
		for _, w := range p.r.Stats.RingWrites {
			if w.Reader == rcv {
				return "ring"
			}
		}
	}
	return ""
}

// inRing reports whether any byte of s's stream in [from, to) was
// written into rcv's ring.
func (p *provenance) inRing(s, rcv string, from, to int) bool {
	if p.r.Stats == nil {
		return false
	}
	for _, w := range p.r.Stats.RingWrites {
		if w.Sock == s && w.Reader == rcv && w.Off >= 0 && int(w.Off) < to && int(w.Off)+w.Bytes > from {
			return true
		}
	}
	return false
}

// sendOp is the op index of s's send that carried stream offset off.
func (p *provenance) sendOp(s string, off int) int {
	op := -1
	for _, x := range p.sendAt[s] {
		if int(x[0]) <= off {
			op = int(x[1])
		}
	}
	return op
}

// reorderSite names the paths of a reordering: b is the late run, the
// last run delivered before it from the same sender the one that
// overtook it. "ring" when both went through rcv's ring, "ring/tcp" when
// one did ("ring/sk_msg" when the other was sent through an sk_msg
// program), "route-change" when the sender's or receiver's maps changed
// between the two sends (the bytes may have taken different paths:
// sk_receive_queue and ingress_msg), else "".
func (p *provenance) reorderSite(rcv string, b cand) string {
	return p.pathsSite(b.snd, rcv, [2]int{b.off, b.off + b.n}, p.last[[2]string{rcv, b.snd}])
}

// pathsSite is reorderSite for snd's late range and the range over
// that overtook it.
func (p *provenance) pathsSite(snd, rcv string, late, over [2]int) string {
	b := cand{snd: snd, off: late[0], n: late[1] - late[0]}
	lateRing := p.inRing(b.snd, rcv, late[0], late[1])
	overRing := p.inRing(b.snd, rcv, over[0], over[1])
	lateOp, overOp := p.sendOp(b.snd, b.off), p.sendOp(b.snd, over[0])
	switch {
	case lateRing && overRing:
		return "ring"
	case lateRing || overRing:
		tcpOp := lateOp
		if lateRing {
			tcpOp = overOp
		}
		if tcpOp >= 0 && p.rt.skMsgAt[tcpOp][b.snd] {
			return "ring/sk_msg"
		}
		return "ring/tcp"
	case lateOp >= 0 && overOp >= 0 && p.rt.changedBetween(b.snd, rcv, min(lateOp, overOp), max(lateOp, overOp)):
		return "route-change"
	}
	return ""
}

// lost reports a gap in an exclusive stream (a receiver skipped bytes of
// its only sender and read later ones) whose bytes nobody got.
func (p *provenance) lost() *Violation {
	for _, g := range p.gaps {
		if !p.rt.exclusive(g.snd, g.rcv) {
			continue
		}
		for i := g.from; i < g.to; i++ {
			if !p.deliv[g.snd][i] {
				if site := p.pathsSite(g.snd, g.rcv, [2]int{i, g.to}, g.next); site == "ring/tcp" || site == "ring/sk_msg" {
					// Not read by the end, but overtaken on another
					// path: the gap's bytes may still be queued.
					return violation(&p.r.Trace.Ops[g.op], "reordered", site, "%s read %s's stream at offset %d before the %d bytes at offset %d, which took the other path",
						g.rcv, g.snd, g.next[0], g.to-i, i)
				}
				site := p.site(g.rcv)
				switch {
				case p.rt.psockDrop[g.rcv]:
					site = "psock-drop"
				case site == "ring" && p.rt.parser[g.rcv]:
					site = "ring/strparser"
				}
				return violation(&p.r.Trace.Ops[g.op], "lost", site, "%s skipped %d bytes of %s's stream at offset %d (read later bytes, nobody read these)",
					g.rcv, g.to-i, g.snd, i)
			}
		}
	}
	return nil
}

// checkIntegrity: every receiver's bytes are in-order runs of its
// possible senders' streams, none corrupted, duplicated or reordered,
// none lost mid-stream on a stream with a single path.
func checkIntegrity(r *Run) error {
	if r.Err != nil || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	p := newProvenance(r)
	for _, s := range sockets(r.Trace) {
		if v := p.follow(s); v != nil {
			return v
		}
	}
	if v := p.lost(); v != nil {
		return v
	}
	return nil
}

// sockets lists a trace's sockets in connection order.
func sockets(t *trace.Trace) []string {
	var out []string
	for _, op := range t.Ops {
		if op.Kind == trace.OpConn {
			out = append(out, op.A, op.B)
		}
	}
	return out
}

// checkRingContent: every ring read returned the bytes written into the
// ring at that place (the model's ring shadow, model.Stats.RingFaults).
func checkRingContent(r *Run) error {
	if r.Stats == nil || len(r.Stats.RingFaults) == 0 {
		return nil
	}
	f := r.Stats.RingFaults[0]
	return &Violation{Kind: f.Kind, Site: f.Site, Msg: fmt.Sprintf("%s's ring: %s", f.Reader, f.Msg)}
}

// breakTie chooses among equally good runs the one after which the next
// run is best: a run of a few bytes may match two senders, and only what
// follows tells whose it was.
func (p *provenance) breakTie(rcv string, cands []string, ties []cand, tail []byte) cand {
	if len(ties) == 1 || ties[0].n == 0 {
		return ties[0]
	}
	best, bestClass := ties[0], dup+1
	for _, c := range ties {
		key := [2]string{rcv, c.snd}
		oldCur := p.cursor[key]
		var marked []int
		for i := c.off; i < c.off+c.n; i++ {
			if !p.deliv[c.snd][i] {
				p.deliv[c.snd][i] = true
				marked = append(marked, i)
			}
		}
		p.cursor[key] = max(oldCur, c.off+c.n)
		next := inOrder
		if rest := tail[c.n:]; len(rest) > 0 {
			next = dup + 1
			for _, s := range cands {
				if n := p.best(s, rest, p.cursor[[2]string{rcv, s}]); n.n > 0 && n.class < next {
					next = n.class
				}
			}
		}
		for _, i := range marked {
			p.deliv[c.snd][i] = false
		}
		p.cursor[key] = oldCur
		if next < bestClass {
			best, bestClass = c, next
		}
	}
	return best
}

// better compares c with the current best runs (all equal): 1 when c is
// better, 0 when as good, -1 when worse. A good run (at least 4 bytes,
// or as far as its sender's stream or the receiver's bytes go) beats a
// run that is not; among good runs the class decides first (in order,
// then a gap, then an earlier byte, then a duplicate), then the length;
// among runs that are not good, the length, then the class.
func (p *provenance) better(c cand, best []cand, left int) int {
	if len(best) == 0 {
		return 1
	}
	b := best[0]
	good := func(x cand) bool {
		return x.n >= 4 || x.n > 0 && (x.n == left || x.off+x.n == len(p.st.Sent[x.snd]))
	}
	cmp := func(x, y int) int {
		switch {
		case x < y:
			return 1
		case x > y:
			return -1
		}
		return 0
	}
	gc, gb := good(c), good(b)
	switch {
	case gc && !gb:
		return 1
	case !gc && gb:
		return -1
	case gc:
		if r := cmp(c.class, b.class); r != 0 {
			return r
		}
		return cmp(b.n, c.n)
	}
	if r := cmp(b.n, c.n); r != 0 {
		return r
	}
	return cmp(c.class, b.class)
}
