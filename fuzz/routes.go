package fuzz

import "github.com/splicecheck/splicecheck/trace"

// routes is what a trace lets bytes do, read from its setup ops alone
// (maps, programs, inserts, deletes, iocopy): who can receive whose
// bytes and where Linux may lose or reorder them. It over-approximates
// where bytes may go, so that a property built on it never calls a path
// Linux takes a bug.
type routes struct {
	peer map[string]string
	// foreign: the socket may receive bytes that are not its peer's
	// sends: it was in a map with a redirect program (an ingress target,
	// or an sk_skb verdict socket redirecting to itself), or its peer
	// was (an egress target sends out of its peer).
	foreign map[string]bool
	// diverted: the socket's sends may go elsewhere than its peer, or be
	// held or dropped on the way: it was in a map with an sk_msg program
	// that does not simply pass (or applies or corks), or its peer was in
	// a map with an sk_skb program that does not pass.
	diverted map[string]bool
	// psockDrop: the socket was in a map with an sk_skb program and left a
	// map afterwards (a delete or a replacing insert): sk_psock_drop then
	// frees what its psock held without advancing copied_seq, so Linux
	// loses those bytes mid-stream
	// (testdata/traces/findings/psock_delete_strparser_seq_warn.trace).
	psockDrop map[string]bool
	// psockDropAt is the op index of the socket's first such leave.
	psockDropAt map[string]int
	// skMsgAt[i] is the set of sockets that were, before op i, in a map
	// with an sk_msg program (their sends went by tcp_bpf_sendmsg).
	skMsgAt []map[string]bool
	// iocopySrc: an iocopy reads the socket (its bytes go on to another).
	iocopySrc map[string]bool
	// forward: the sockets whose received bytes an iocopy or a FreeBSD
	// splice sends on, mapped to the sockets those bytes arrive at (the
	// destinations' peers), over the whole trace.
	forward map[string][]string
	// looped: the sender's bytes may come round a forwarding cycle (a
	// splice loop) and arrive again after later ones (loopedSenders).
	looped map[string]bool
	// selfRedirect: the socket was in a map whose sk_skb verdict
	// redirects into its own ingress queue (the key holds it).
	selfRedirect map[string]bool
	// frame is, per socket in a map with a fixed-size stream parser
	// (`parser N`), the largest N: up to N-1 bytes of a frame that never
	// completes stay with the parser (strp_data_ready waits for the rest).
	frame map[string]int64
	// parser: the socket was in a map with a stream parser; skb: in a
	// map with an sk_skb program; paired: named by a `pair` op or a
	// `conn ... pair`.
	parser, skb, paired map[string]bool
	// changes lists, per socket, the op indexes where its map membership
	// or its maps' programs changed (a route change: bytes sent before
	// and after may take different paths).
	changes map[string][]int
}

type mapInfo struct {
	members           map[string]bool
	redirect, skbProg bool
	msgNotPass        bool // sk_msg drop, redirect, apply or cork
	skbNotPass        bool
	msgProg           bool
	frame             int64 // the largest fixed parser frame
	parser            bool
	keys              map[int64]string
}

func routesOf(t *trace.Trace) *routes {
	r := &routes{
		peer: map[string]string{}, foreign: map[string]bool{}, diverted: map[string]bool{},
		psockDrop: map[string]bool{}, psockDropAt: map[string]int{}, changes: map[string][]int{}, frame: map[string]int64{}, parser: map[string]bool{}, skb: map[string]bool{}, iocopySrc: map[string]bool{}, selfRedirect: map[string]bool{},
		paired: map[string]bool{}, skMsgAt: make([]map[string]bool, len(t.Ops)),
		forward: map[string][]string{},
	}
	maps := map[string]*mapInfo{}
	// First pass: every program a map ever has (a program attached
	// after an insert still applies to later traffic).
	for _, op := range t.Ops {
		switch op.Kind {
		case trace.OpConn:
			r.peer[op.A], r.peer[op.B] = op.B, op.A
			if op.Flags&trace.FlagPair != 0 {
				r.paired[op.A], r.paired[op.B] = true, true
			}
		case trace.OpIOCopy:
			r.iocopySrc[op.A] = true
			r.forward[op.A] = append(r.forward[op.A], r.peer[op.B])
		case trace.OpSosplice:
			// A FreeBSD splice, like an iocopy, reads its source and
			// sends the bytes on from its sink: the sink's peer gets
			// bytes its own peer did not send.
			r.iocopySrc[op.A] = true
			r.foreign[r.peer[op.B]] = true
			r.forward[op.A] = append(r.forward[op.A], r.peer[op.B])
		case trace.OpPair:
			r.paired[op.A], r.paired[op.B] = true, true
		case trace.OpMap:
			maps[op.Map] = &mapInfo{members: map[string]bool{}, keys: map[int64]string{}}
		case trace.OpProg:
			m := maps[op.Map]
			if m == nil {
				continue
			}
			p := op.Prog
			if p.Verdict == trace.VerdictRedirect {
				m.redirect = true
			}
			if p.Type == trace.SkMsg {
				m.msgProg = true
				if p.Verdict != trace.VerdictPass || p.HasApply || p.HasCork {
					m.msgNotPass = true
				}
			} else {
				m.skbProg = true
				if p.Verdict != trace.VerdictPass {
					m.skbNotPass = true
				}
				m.frame = max(m.frame, p.Parser)
				m.parser = m.parser || p.Parser != 0
			}
		}
	}
	cur := map[string]bool{} // in a map with an sk_msg program now
	for i, op := range t.Ops {
		r.skMsgAt[i] = copySet(cur)
		switch op.Kind {
		case trace.OpInsert, trace.OpDelete:
			m := maps[op.Map]
			if m == nil {
				continue
			}
			if old, ok := m.keys[op.Key]; ok && !(op.Kind == trace.OpInsert && old == op.A) {
				delete(m.keys, op.Key)
				r.changes[old] = append(r.changes[old], i)
				r.changes[r.peer[old]] = append(r.changes[r.peer[old]], i)
				if m.skbProg {
					if !r.psockDrop[old] {
						r.psockDropAt[old] = i
					}
					r.psockDrop[old] = true
				}
			}
			if op.Kind == trace.OpDelete {
				continue
			}
			s := op.A
			m.keys[op.Key] = s
			m.members[s] = true
			r.changes[s] = append(r.changes[s], i)
			r.changes[r.peer[s]] = append(r.changes[r.peer[s]], i)
			if m.msgProg {
				cur[s] = true
			}
		case trace.OpProg:
			if m := maps[op.Map]; m != nil {
				for s := range m.members {
					r.changes[s] = append(r.changes[s], i)
					r.changes[r.peer[s]] = append(r.changes[r.peer[s]], i)
				}
			}
		}
	}
	for _, op := range t.Ops {
		if op.Kind == trace.OpProg && op.Prog.Type == trace.SkSkb && op.Prog.Verdict == trace.VerdictRedirect {
			r.selfRedirectKey(t, op.Map, op.Prog.Key)
		}
	}
	for _, m := range maps {
		for s := range m.members {
			if m.redirect {
				r.foreign[s] = true
				r.foreign[r.peer[s]] = true
			}
			if m.msgNotPass {
				r.diverted[s] = true
			}
			if m.skbNotPass {
				r.diverted[r.peer[s]] = true
			}
			r.frame[s] = max(r.frame[s], m.frame)
			r.parser[s] = r.parser[s] || m.parser
			r.skb[s] = r.skb[s] || m.skbProg
		}
	}
	r.looped = r.loopedSenders()
	return r
}

// loopedSenders returns the senders whose bytes, arriving at their peer,
// can reach a forwarding cycle (forward): such bytes may go round again
// and be read after bytes their sender sent later, or never.
func (r *routes) loopedSenders() map[string]bool {
	// cyclic[s]: a forwarding path from s comes back to a socket on it.
	onCycle := map[string]bool{}
	state := map[string]int{} // 0 unseen, 1 on the DFS stack, 2 done
	var dfs func(s string)
	dfs = func(s string) {
		state[s] = 1
		for _, n := range r.forward[s] {
			switch state[n] {
			case 0:
				dfs(n)
			case 1:
				onCycle[n] = true
			}
		}
		state[s] = 2
	}
	for s := range r.forward {
		if state[s] == 0 {
			dfs(s)
		}
	}
	reaches := func(from string) bool {
		seen := map[string]bool{}
		stack := []string{from}
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if onCycle[s] {
				return true
			}
			if seen[s] {
				continue
			}
			seen[s] = true
			stack = append(stack, r.forward[s]...)
		}
		return false
	}
	looped := map[string]bool{}
	if len(onCycle) == 0 {
		return looped
	}
	for snd, rcv := range r.peer {
		looped[snd] = reaches(rcv)
	}
	return looped
}

// droppedBefore reports whether s left a map with an sk_skb program
// before op i (psockDrop).
func (r *routes) droppedBefore(s string, i int) bool {
	at, ok := r.psockDropAt[s]
	return ok && at < i
}

func copySet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// exclusive reports whether every byte s sends can only reach r, and
// only r's own reads take them: r is s's peer, s's sends are not
// diverted, and no iocopy reads r.
func (r *routes) exclusive(s, rcv string) bool {
	return r.peer[s] == rcv && !r.diverted[s] && !r.iocopySrc[rcv]
}

// changedBetween reports whether s's or rcv's route changed between ops
// i and j (i < j).
func (r *routes) changedBetween(s, rcv string, i, j int) bool {
	for _, x := range []string{s, rcv} {
		for _, c := range r.changes[x] {
			if c > i && c < j {
				return true
			}
		}
	}
	return false
}

// selfRedirectKey marks the sockets ever inserted at key of map name: an
// sk_skb redirect to that key sends their own bytes back to them.
func (r *routes) selfRedirectKey(t *trace.Trace, name string, key int64) {
	for _, op := range t.Ops {
		if op.Kind == trace.OpInsert && op.Map == name && op.Key == key {
			r.selfRedirect[op.A] = true
		}
	}
}
