package fuzz

import (
	"fmt"
	"strings"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// chunk is a run of bytes a socket consumed: a recv's data, or what a
// splice took into the socket's pipe (known once pipe reads return it),
// with the bytes' tags when the run kept them.
type chunk struct {
	data  []byte
	tags  []model.Tag
	n     int
	known bool
	op    int // the op that consumed it
}

// consumption returns what sock consumed in the run, in the order the
// ops completed (the model's; trace order on other backends):
// each non-peek recv's data and each splice's bytes, the latter filled
// from the pipe reads that returned them (a pipe returns its oldest
// bytes first). It stops at a chunk whose bytes are not known (spliced
// and never read out, or cut short by the runner). oneThread is false
// when the socket is read from more than one thread (then trace order is
// not the order of the reads); v is set when a pipe read returned more
// than was spliced.
func consumption(r *Execution, sock string) (chunks []chunk, v *Violation, oneThread bool) {
	thread := ""
	oneThread = true
	type pending struct{ chunk int }
	var pipe []pending
	cut := false
	var readTags map[int][]model.Tag
	order := make([]int, len(r.Trace.Ops))
	for i := range order {
		order[i] = i
	}
	if r.Stats != nil {
		readTags = r.Stats.ReadTags
		if len(r.Stats.Done) == len(r.Trace.Ops) {
			order = r.Stats.Done // the model's completion order
		}
	}
	for _, i := range order {
		op := &r.Trace.Ops[i]
		if op.A != sock || (op.Kind != trace.OpRecv && op.Kind != trace.OpSplice && op.Kind != trace.OpPipe) {
			continue
		}
		if thread != "" && thread != op.ThreadName() {
			oneThread = false
		}
		thread = op.ThreadName()
		res := r.Obs[i].Result
		if res.Note != "" && op.Kind != trace.OpRecv {
			cut = true // the runner cut a splice or pipe read: the pipe is unknown from here
		}
		if res.Err != 0 || res.N <= 0 || cut {
			continue
		}
		switch op.Kind {
		case trace.OpRecv:
			if op.Flags&trace.FlagPeek == 0 {
				chunks = append(chunks, chunk{data: res.Data, tags: readTags[i], n: len(res.Data), known: true, op: i})
			}
		case trace.OpSplice:
			c := chunk{data: make([]byte, 0, res.N), n: int(res.N), op: i}
			if readTags != nil {
				c.tags = make([]model.Tag, 0, res.N)
			}
			chunks = append(chunks, c)
			pipe = append(pipe, pending{chunk: len(chunks) - 1})
		case trace.OpPipe:
			d, t := res.Data, readTags[i]
			for len(d) > 0 {
				if len(pipe) == 0 {
					return nil, violation(op, "overread", "pipe", "%s's pipe returned %d bytes more than were spliced into it", sock, len(d)), oneThread
				}
				c := &chunks[pipe[0].chunk]
				take := min(len(d), c.n-len(c.data))
				c.data = append(c.data, d[:take]...)
				if c.tags != nil && len(t) >= take {
					c.tags = append(c.tags, t[:take]...)
				}
				d = d[take:]
				if len(t) >= take {
					t = t[take:]
				}
				if len(c.data) == c.n {
					c.known = true
					pipe = pipe[1:]
				}
			}
		}
	}
	for i, c := range chunks {
		if !c.known {
			return chunks[:i], nil, oneThread
		}
	}
	return chunks, nil, oneThread
}

// checkIntegrity follows every byte a receiver read (recv, and pipe
// reads of what splice took) back to the send it came from, by the tag
// the model carried with it (model.Config.Provenance): sender and stream
// offset, and the paths it took. Over every stream (plain TCP,
// redirects, the loopback-splice ring, pipes) a byte must be the byte
// its sender sent at that offset ("corrupted"), be read once
// ("duplicated"), come after the bytes its sender sent before it on the
// same socket ("reordered", for a receiver read from one thread), and a
// receiver that skips bytes of a sender whose bytes can only reach it,
// and reads later ones, must find the skipped ones read by nobody only
// where the trace explains it ("lost"). A run without tags (another
// backend) is not judged.
func checkIntegrity(r *Execution) error {
	if r.Err != nil || r.Stats == nil || r.Stats.TagSocks == nil || len(r.Obs) != len(r.Trace.Ops) {
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

// provenance is the state of checkIntegrity over one run.
type provenance struct {
	r      *Execution
	st     *trace.Streams
	rt     *routes
	deliv  map[string][]bool       // per sender: stream offsets read so far
	next   map[[2]string]int64     // per (receiver, sender): the offset after the highest read
	top    map[[2]string]model.Tag // per (receiver, sender): the tag of the highest read
	gaps   []gap
	sendAt map[string][][2]int64 // per sender: (stream offset, op index) of each accepted send
	dest   *destinations
}

type gap struct {
	rcv, snd string
	from, to int64
	op       int
	after    model.Tag // the byte read after the gap
}

func newProvenance(r *Execution) *provenance {
	p := &provenance{r: r, st: trace.StreamsOf(r.Trace, r.Obs), rt: routesOf(r.Trace),
		deliv: map[string][]bool{}, next: map[[2]string]int64{}, top: map[[2]string]model.Tag{},
		sendAt: map[string][][2]int64{}, dest: newDestinations(r)}
	for i, op := range r.Trace.Ops {
		if op.Kind == trace.OpSend && r.Obs[i].Result.N > 0 {
			p.sendAt[op.A] = append(p.sendAt[op.A], [2]int64{p.st.Off[i], int64(i)})
		}
	}
	return p
}

// delivered marks snd's offset off read and reports whether it already
// was.
func (p *provenance) delivered(snd string, off int64) bool {
	d := p.deliv[snd]
	if int64(len(d)) <= off {
		d = append(d, make([]bool, off+1-int64(len(d)))...)
		p.deliv[snd] = d
	}
	was := d[off]
	d[off] = true
	return was
}

func (p *provenance) wasDelivered(snd string, off int64) bool {
	d := p.deliv[snd]
	return off < int64(len(d)) && d[off]
}

// follow checks the bytes rcv read, in the order it read them.
func (p *provenance) follow(rcv string) *Violation {
	chunks, v, oneThread := consumption(p.r, rcv)
	if v != nil {
		return v
	}
	socks := p.r.Stats.TagSocks
	for _, c := range chunks {
		tags := c.tags
		if len(tags) != len(c.data) {
			continue // no tags for this read
		}
		op := &p.r.Trace.Ops[c.op]
		for i, b := range c.data {
			tag := tags[i]
			if !tag.Known() && tag.Paths()&model.TagRingReaders != 0 {
				return violation(op, "duplicated", pathSite(tag), "%s read a byte (%#x) out of its ring that another reader had taken", rcv, b)
			}
			if !tag.Known() || tag.Sock() >= len(socks) {
				return violation(op, "untagged", "", "%s read a byte (%#x) that no send of the run made: the model made it, or lost its tag", rcv, b)
			}
			snd, off := socks[tag.Sock()], tag.Off()
			if p.st.Opaque[snd] {
				// Sends from several threads, cut by the runner, or
				// iocopy's: their offsets overlap or are not the
				// trace's, so they are not followed.
				continue
			}
			{
				sent := p.st.Sent[snd]
				if off >= int64(len(sent)) {
					return violation(op, "corrupted", pathSite(tag), "%s read a byte of %s's stream at offset %d; %s had sent only %d",
						rcv, snd, off, snd, len(sent))
				}
				if sent[off] != b {
					return violation(op, "corrupted", pathSite(tag), "%s read %#x for %s's stream byte at offset %d, which is %#x",
						rcv, b, snd, off, sent[off])
				}
			}
			if op := p.sendOp(snd, off); op >= 0 && !p.dest.reach(snd, op)[rcv] {
				return violation(&p.r.Trace.Ops[c.op], "misrouted", pathSite(tag), "%s read %s's stream byte at offset %d, which no path of the trace's maps, programs and pairs leads to it",
					rcv, snd, off)
			}
			if p.delivered(snd, off) {
				return violation(op, "duplicated", p.dupSite(rcv, tag), "%s read %s's stream byte at offset %d, which was already read", rcv, snd, off)
			}
			if !oneThread || p.rt.looped[snd] {
				continue // a looped byte may come round after later ones
			}
			key := [2]string{rcv, snd}
			switch next := p.next[key]; {
			case off < next:
				return violation(op, "reordered", p.orderSite(snd, rcv, tag, p.top[key]),
					"%s read %s's stream byte at offset %d after the byte at offset %d", rcv, snd, off, next-1)
			case off > next:
				p.gaps = append(p.gaps, gap{rcv: rcv, snd: snd, from: next, to: off, op: c.op, after: tag})
			}
			if off+1 > p.next[key] {
				p.next[key], p.top[key] = off+1, tag
			}
		}
	}
	return nil
}

// dupSite names where a byte rcv read twice came from: the kernel
// function that moved rcv's copied_seq back over bytes already read
// (model.Stats.Rewinds), or else the paths the byte took.
func (p *provenance) dupSite(rcv string, tag model.Tag) string {
	for _, w := range p.r.Stats.Rewinds {
		if w.Sock == rcv {
			return "copied-seq-rewound@" + w.Fn
		}
	}
	return pathSite(tag)
}

// pathSite names the paths a byte took, for a violation's site.
func pathSite(t model.Tag) string {
	switch p := t.Paths(); {
	case p&model.TagRingReaders != 0:
		return "ring/concurrent-readers"
	case p&model.TagRingWriters != 0:
		return "ring/concurrent-writers"
	case p&model.TagRing != 0:
		return "ring"
	case p&model.TagIngress != 0:
		return "ingress"
	}
	return ""
}

// orderSite names the paths of a reordering: late is the byte read late,
// over the one of a higher offset read before it. "ring" when both came
// through the ring (the ring reordered), "ring/tcp" when one did
// ("ring/sk_msg" when the other was sent while the sender was in a map
// with an sk_msg program), "tcp/ingress" when one came through
// ingress_msg and the other through sk_receive_queue, else "" (the same
// path reordered).
func (p *provenance) orderSite(snd, rcv string, late, over model.Tag) string {
	if s := pathSite(late | over); strings.HasPrefix(s, "ring/concurrent") {
		return s
	}
	lr, or := late.Paths()&model.TagRing != 0, over.Paths()&model.TagRing != 0
	li, oi := late.Paths()&model.TagIngress != 0, over.Paths()&model.TagIngress != 0
	switch {
	case lr && or:
		return "ring"
	case lr != or:
		tcp := late
		if lr {
			tcp = over
		}
		if op := p.sendOp(snd, tcp.Off()); op >= 0 && p.rt.skMsgAt[op][snd] {
			return "ring/sk_msg"
		}
		return "ring/tcp"
	case li != oi:
		return "tcp/ingress"
	}
	return ""
}

// sendOp is the op index of snd's send that carried stream offset off,
// -1 if unknown.
func (p *provenance) sendOp(snd string, off int64) int {
	op := -1
	for _, x := range p.sendAt[snd] {
		if x[0] <= off {
			op = int(x[1])
		}
	}
	return op
}

// ringWritten reports whether snd's stream byte at off was written into
// rcv's ring.
func (p *provenance) ringWritten(snd, rcv string, off int64) bool {
	for _, w := range p.r.Stats.RingWrites {
		if w.Sock == snd && w.Reader == rcv && w.Off >= 0 && w.Off <= off && off < w.Off+int64(w.Bytes) {
			return true
		}
	}
	return false
}

// forwardedIntoRing reports whether another socket than snd wrote into
// rcv's ring: a route that forwards snd's bytes (a redirect onto a paired
// socket) may have put them there, at offsets of the forwarder's stream
// that RingWrites cannot map back to snd's.
func (p *provenance) forwardedIntoRing(snd, rcv string) bool {
	for _, w := range p.r.Stats.RingWrites {
		if w.Reader == rcv && w.Sock != snd {
			return true
		}
	}
	return false
}

// inOtherRing reports whether snd's byte at stream offset off (any of
// its bytes, for off < 0) may have gone into the ring of a socket other
// than rcv: written there by snd itself, or by a socket that forwards
// snd's bytes (an egress redirect out of a paired socket, whose
// sendmsg is the ring's), at offsets of the forwarder's stream that
// RingWrites cannot map back to snd's; such a write counts when snd's
// sends may reach its reader (destinations).
func (p *provenance) inOtherRing(snd, rcv string, off int64) bool {
	for _, w := range p.r.Stats.RingWrites {
		if w.Reader == rcv {
			continue
		}
		if w.Sock == snd && (off < 0 || w.Off >= 0 && w.Off <= off && off < w.Off+int64(w.Bytes)) {
			return true
		}
		if w.Sock != snd && p.sentReaches(snd, off, w.Reader) {
			return true
		}
	}
	return false
}

// sentReaches reports whether the send of snd's byte at off (any of its
// sends, for off < 0) may be read by rcv (destinations).
func (p *provenance) sentReaches(snd string, off int64, rcv string) bool {
	if off >= 0 {
		op := p.sendOp(snd, off)
		return op >= 0 && p.dest.reach(snd, op)[rcv]
	}
	for _, at := range p.sendAt[snd] {
		if p.dest.reach(snd, int(at[1]))[rcv] {
			return true
		}
	}
	return false
}

// lost reports a gap in an exclusive stream (a receiver skipped bytes of
// its only sender and read later ones) whose bytes nobody read. Skipped
// bytes that took the other path than the byte read after them (TCP and
// the ring) may still be queued: that is a reordering ("ring/tcp").
func (p *provenance) lost() *Violation {
	for _, g := range p.gaps {
		if !p.rt.exclusive(g.snd, g.rcv) {
			continue
		}
		for off := g.from; off < g.to; off++ {
			if p.wasDelivered(g.snd, off) {
				continue
			}
			op := &p.r.Trace.Ops[g.op]
			inRing, afterRing := p.ringWritten(g.snd, g.rcv, off), g.after.Paths()&model.TagRing != 0
			if inRing != afterRing {
				site := "ring/tcp"
				if op := p.sendOp(g.snd, off); !inRing && op >= 0 && p.rt.skMsgAt[op][g.snd] {
					site = "ring/sk_msg"
				}
				return violation(op, "reordered", site, "%s read %s's stream byte at offset %d before the %d bytes at offset %d, which took the other path and were not read",
					g.rcv, g.snd, g.to, g.to-off, off)
			}
			site := pathSite(g.after)
			switch {
			case p.rt.psockDrop[g.rcv]:
				site = "psock-drop"
			case p.rt.parser[g.rcv]:
				site = "strparser"
			case inRing:
				site = "ring"
			}
			return violation(op, "lost", site, "%s skipped %d bytes of %s's stream at offset %d (read later bytes, nobody read these)",
				g.rcv, g.to-off, g.snd, off)
		}
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
func checkRingContent(r *Execution) error {
	if r.Stats == nil || len(r.Stats.RingFaults) == 0 {
		return nil
	}
	f := r.Stats.RingFaults[0]
	return &Violation{Kind: f.Kind, Site: f.Site, Msg: fmt.Sprintf("%s's ring: %s", f.Reader, f.Msg)}
}
