package fuzz

import (
	"syscall"

	"github.com/splicecheck/splicecheck/trace"
)

// destinations answers where a send's bytes may be read, from the
// trace's maps, programs, pairs and iocopies: the closure of the paths
// Linux gives them, over every map state from the send on (so that work
// deferred past a later insert or delete is covered). A byte read
// anywhere else was misrouted.
//
// The paths: the sender's sk_msg verdict (pass: TCP to its peer;
// redirect ingress to the socket at the key; redirect egress out of that
// socket by tcp_bpf_push, so TCP to its peer; drop: nowhere); without
// one, TCP to the peer; a loopback-splice pair, to the paired socket's
// ring. TCP bytes arriving at X meet X's sk_skb verdict, as X's maps
// stand from the send on (pass: X; redirect ingress: the socket at the
// key; egress: skb_send_sock out of that socket, a send through its
// proto and so its own sk_msg verdict); without one, X. An iocopy that
// reads a destination sends the bytes on from its destination socket.
type destinations struct {
	t     *trace.Trace
	peer  map[string]string
	memo  map[destKey]map[string]bool
	pairs map[string][]string // successful pairs (`pair`, `conn ... pair`), both ways
	// iocopy lists the trace's iocopy ops (source, destination).
	iocopy [][2]string
	// splices: sockets the trace splices from.
	splices map[string]bool
	// state[k] is the maps as they stand before the k-th op to complete
	// (completionOrder); pos[i] is op i's k.
	state []mapState
	pos   []int
}

type destKey struct {
	snd string
	op  int
}

// mapState is every map's keys and programs at one point of the trace.
type mapState map[string]*mapSnap

type mapSnap struct {
	keys     map[int64]string
	msg, skb []*trace.Prog
	// linked are sockets whose update failed with E2BIG on a full
	// sockhash: sock_hash_update_common() (net/core/sock_map.c, v6.18)
	// runs sock_map_link() first, which gives a psock that lives on (in
	// another map, or paired) the map's programs, and does not take
	// them back when the element cannot be allocated.
	linked map[string]bool
}

// has reports whether s is in m, or holds m's programs (linked): the
// paths of m's programs are added for it; the plain paths a socket
// outside every map takes are kept (a link only widens them).
func (m *mapSnap) has(s string) bool { return inKeys(m.keys, s) || m.linked[s] }

func newDestinations(r *Execution) *destinations {
	d := &destinations{t: r.Trace, peer: map[string]string{}, memo: map[destKey]map[string]bool{}, pairs: map[string][]string{},
		splices: map[string]bool{}}
	cur := mapState{}
	order := completionOrder(r)
	if order == nil {
		order = make([]int, len(r.Trace.Ops)) // several threads, no model order: trace order, best effort
		for i := range order {
			order[i] = i
		}
	}
	d.pos = make([]int, len(r.Trace.Ops))
	for k, i := range order {
		d.pos[i] = k
		op := &r.Trace.Ops[i]
		d.state = append(d.state, cur.clone())
		res := r.Obs[i].Result
		if op.Kind == trace.OpSplice {
			d.splices[op.A] = true
		}
		if op.Kind == trace.OpIOCopy || op.Kind == trace.OpSosplice { // it moves bytes even when it fails or is cut short (a splice: by its worker, from src to dst)
			d.iocopy = append(d.iocopy, [2]string{op.A, op.B})
		}
		if op.Kind == trace.OpConn {
			// The connection exists whatever its pairing returned.
			d.peer[op.A], d.peer[op.B] = op.B, op.A
		}
		if op.Kind == trace.OpInsert && res.Err == syscall.E2BIG && res.Note == "" {
			// (A sockmap checks the key first and links nothing; taking
			// every E2BIG as a link only widens the paths.)
			if m := cur[op.Map]; m != nil {
				linked := map[string]bool{op.A: true}
				for s := range m.linked {
					linked[s] = true
				}
				m.linked = linked
			}
		}
		if res.Err != 0 || res.Note != "" {
			continue
		}
		switch op.Kind {
		case trace.OpConn:
			if op.Flags&trace.FlagPair != 0 { // paired at the ESTABLISHED callbacks
				d.pairs[op.A] = append(d.pairs[op.A], op.B)
				d.pairs[op.B] = append(d.pairs[op.B], op.A)
			}
		case trace.OpMap:
			cur[op.Map] = &mapSnap{keys: map[int64]string{}}
		case trace.OpProg:
			if m := cur[op.Map]; m != nil {
				if op.Prog.Type == trace.SkMsg {
					m.msg = append(m.msg, op.Prog)
				} else {
					m.skb = append(m.skb, op.Prog)
				}
			}
		case trace.OpInsert:
			if m := cur[op.Map]; m != nil {
				m.keys[op.Key] = op.A
			}
		case trace.OpDelete:
			if m := cur[op.Map]; m != nil {
				delete(m.keys, op.Key)
			}
		case trace.OpPair:
			d.pairs[op.A] = append(d.pairs[op.A], op.B)
			d.pairs[op.B] = append(d.pairs[op.B], op.A)
		}
	}
	d.state = append(d.state, cur.clone())
	return d
}

func (s mapState) clone() mapState {
	out := mapState{}
	for name, m := range s {
		keys := make(map[int64]string, len(m.keys))
		for k, v := range m.keys {
			keys[k] = v
		}
		out[name] = &mapSnap{keys: keys, msg: m.msg, skb: m.skb, linked: m.linked}
	}
	return out
}

// reach returns the sockets that may read the bytes snd's op i sent. The
// map states are taken in the order the ops completed: a send from
// another thread may run before an insert that precedes it in the trace.
func (d *destinations) reach(snd string, i int) map[string]bool {
	k := destKey{snd, i}
	if got, ok := d.memo[k]; ok {
		return got
	}
	out := map[string]bool{}
	d.memo[k] = out
	d.fromSender(snd, d.pos[i], out, map[string]bool{})
	return out
}

// fromSender adds where a send of snd at position i (of the completion
// order) may go: a user's, or the
// kernel's (an egress redirect's skb_send_sock, io.Copy's writes), which
// meet the same sk_msg verdict. The verdict is that of every map snd was
// in up to the send: leaving a map does not take the sk_msg program off
// a psock that lives on in another (sock_map_del_link stops only the
// stream parser and verdict).
func (d *destinations) fromSender(snd string, i int, out, seen map[string]bool) {
	if seen["send:"+snd] {
		return
	}
	seen["send:"+snd] = true
	for _, q := range d.pairs[snd] {
		d.add(q, i, out, seen)
	}
	verdictNow := false
	for _, m := range d.state[i] {
		if inKeys(m.keys, snd) && len(m.msg) > 0 {
			verdictNow = true
		}
	}
	if !verdictNow {
		d.arrive(d.peer[snd], i, out, seen)
	}
	done := map[string]bool{}
	for j := 0; j <= i && j < len(d.state); j++ {
		for name, m := range d.state[j] {
			if done[name] || !m.has(snd) || len(d.state[i][name].msgProgs()) == 0 {
				continue
			}
			done[name] = true
			for _, p := range d.state[i][name].msgProgs() {
				switch p.Verdict {
				case trace.VerdictPass:
					d.arrive(d.peer[snd], i, out, seen)
				case trace.VerdictRedirect:
					from := i
					if p.HasApply || p.HasCork {
						// A window (or a cork) that began at an earlier
						// send keeps the target its verdict picked then.
						from = 0
					}
					for _, y := range d.atKey(name, p.Key, from) {
						if p.Ingress {
							d.add(y, i, out, seen)
						} else {
							d.arrive(d.peer[y], i, out, seen) // tcp_bpf_push out of y, past y's own verdict
						}
					}
				}
				if p.HasApply || p.HasCork {
					d.arrive(d.peer[snd], i, out, seen) // what apply leaves to the next verdict, or a cork's flush
				}
			}
		}
	}
}

// msgProgs returns m's sk_msg programs (none for a map not made yet).
func (m *mapSnap) msgProgs() []*trace.Prog {
	if m == nil {
		return nil
	}
	return m.msg
}

// arrive adds where TCP bytes that reach x may go.
func (d *destinations) arrive(x string, i int, out, seen map[string]bool) {
	if x == "" || seen["arrive:"+x] {
		return
	}
	seen["arrive:"+x] = true
	verdictAlways := true // x has an sk_skb verdict in every state from i on
	for j := i; j < len(d.state); j++ {
		has := false
		for _, m := range d.state[j] {
			if inKeys(m.keys, x) && len(m.skb) > 0 {
				has = true
			}
		}
		verdictAlways = verdictAlways && has
	}
	if !verdictAlways || d.splices[x] || d.parser(x, i) {
		// No verdict at some point, or splice(2), whose tcp_splice_read
		// reads sk_receive_queue past any verdict or parser, or a stream
		// parser, which may abort (__strp_recv: a frame over sk_rcvbuf;
		// strp_msg_timeout) and leave the bytes on sk_receive_queue for
		// good, where a tcp_recvmsg that began before the socket joined
		// the map, or runs after it left, reads them.
		d.add(x, i, out, seen)
	}
	for j := i; j < len(d.state); j++ {
		for name, m := range d.state[j] {
			if !m.has(x) {
				continue
			}
			for _, p := range m.skb {
				switch p.Verdict {
				case trace.VerdictPass:
					d.add(x, i, out, seen)
				case trace.VerdictRedirect:
					for _, y := range d.atKey(name, p.Key, i) {
						if p.Ingress {
							d.add(y, i, out, seen)
						} else {
							d.fromSender(y, i, out, seen) // skb_send_sock out of y
						}
					}
				}
			}
		}
	}
}

// parser reports whether x is in a map with an sk_skb stream parser in a
// state from i on.
func (d *destinations) parser(x string, i int) bool {
	for j := i; j < len(d.state); j++ {
		for _, m := range d.state[j] {
			if !m.has(x) {
				continue
			}
			for _, p := range m.skb {
				if p.Parser != 0 {
					return true
				}
			}
		}
	}
	return false
}

// add makes r a destination, and follows an iocopy that reads it.
func (d *destinations) add(r string, i int, out, seen map[string]bool) {
	out[r] = true
	for _, c := range d.iocopy {
		if c[0] == r {
			d.fromSender(c[1], i, out, seen)
		}
	}
}

// atKey returns the sockets at key in map name from op i on.
func (d *destinations) atKey(name string, key int64, i int) []string {
	var out []string
	for j := i; j < len(d.state); j++ {
		if m := d.state[j][name]; m != nil {
			if s, ok := m.keys[key]; ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func inKeys(keys map[int64]string, s string) bool {
	for _, v := range keys {
		if v == s {
			return true
		}
	}
	return false
}
