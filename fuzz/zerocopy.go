package fuzz

import (
	"sort"

	"github.com/splicecheck/splicecheck/trace"
)

// checkZerocopy: MSG_ZEROCOPY's promise to an application. Every send
// with MSG_ZEROCOPY on a socket with SO_ZEROCOPY that returns at least
// one byte takes the next id of the socket's counter, and is completed
// exactly once: the completions an `errqueue` reads are contiguous,
// increasing ranges from 0 that name no id beyond the sends made so far
// (kind "completed-twice", "completion-gap", "extra-ids"); and, on the
// model (Stats.ZerocopyIDs), the counter at the end has handed out exactly
// one id per such send: more ("extra-ids") names sends that never were,
// fewer ("never-completed") leaves a send the application waits on for
// ever; a socket that made no such send hands out none
// ("ids-without-sends": a redirect target's counter moved by another
// socket's sends). The site is the path the socket's zero-copy sends
// took (zcPath). A backend without MSG_ZEROCOPY (the netstack bridge,
// Stats.NoZerocopy) is not judged.
func checkZerocopy(r *Execution) error {
	if len(r.Obs) != len(r.Trace.Ops) || r.Stats != nil && r.Stats.NoZerocopy {
		return nil
	}
	d := newDestinations(r)
	on := map[string]bool{}
	sent := map[string]uint32{}  // ids the application is owed
	next := map[string]uint32{}  // the next id a completion must start at
	site := map[string]zcPath{}  // the most telling path of the socket's sends
	targets := map[string]bool{} // egress redirect targets
	for i := range r.Trace.Ops {
		op := &r.Trace.Ops[i]
		res := r.Obs[i].Result
		switch op.Kind {
		case trace.OpSet:
			if op.Opt == trace.OptZerocopy && res.Err == 0 {
				on[op.A] = op.Size != 0
			}
		case trace.OpSend:
			p, target := zcPathOf(d, op.A, i)
			if p == zcEgress {
				targets[target] = true
			}
			if op.Flags&trace.FlagZerocopy != 0 && on[op.A] && res.Err == 0 && res.N > 0 {
				sent[op.A]++
				site[op.A] = max(site[op.A], p)
			}
		case trace.OpErrqueue:
			ns, _ := trace.ParseErrqueue(res)
			for _, n := range ns {
				s := op.A
				switch {
				case n.Info < next[s]:
					return violation(op, "completed-twice", site[s].String(), "%s completes [%d,%d], but ids up to %d were completed already", s, n.Info, n.Data, next[s]-1)
				case n.Info > next[s]:
					return violation(op, "completion-gap", site[s].String(), "%s completes [%d,%d], skipping ids %d to %d", s, n.Info, n.Data, next[s], n.Info-1)
				case n.Data >= sent[s] && sent[s] > 0:
					return violation(op, "extra-ids", site[s].String(), "%s completes [%d,%d], but made only %d zero-copy sends", s, n.Info, n.Data, sent[s])
				case n.Data >= sent[s]:
					return violation(op, "ids-without-sends", zcTarget.String(), "%s completes [%d,%d], but made no zero-copy send", s, n.Info, n.Data)
				}
				next[s] = n.Data + 1
			}
		}
	}
	if r.Stats == nil {
		return nil
	}
	socks := make([]string, 0, len(sent)+len(r.Stats.ZerocopyIDs))
	for s := range sent {
		socks = append(socks, s)
	}
	for s := range r.Stats.ZerocopyIDs {
		if _, ok := sent[s]; !ok {
			socks = append(socks, s)
		}
	}
	sort.Strings(socks)
	for _, s := range socks {
		ids, owed := r.Stats.ZerocopyIDs[s], sent[s]
		switch {
		case owed == 0 && ids > 0:
			p := zcTarget
			if !targets[s] {
				p = site[s]
			}
			return violation(nil, "ids-without-sends", p.String(), "%s made no zero-copy send, but its counter handed out %d ids", s, ids)
		case ids > owed:
			return violation(nil, "extra-ids", site[s].String(), "%s made %d zero-copy sends, but its counter handed out %d ids: completions name sends that never were", s, owed, ids)
		case ids < owed:
			return violation(nil, "never-completed", site[s].String(), "%s made %d zero-copy sends, but its counter handed out only %d ids: %d will never be completed", s, owed, ids, owed-ids)
		}
	}
	return nil
}

// zcPath is the way a socket's sends leave it, as far as MSG_ZEROCOPY's
// ids are concerned, ordered from the least to the most telling: a
// socket whose sends took several paths is judged at the greatest.
type zcPath uint8

const (
	zcTCP     zcPath = iota // tcp_sendmsg: one call, one id
	zcPass                  // an sk_msg pass verdict: tcp_bpf_push, one tcp_sendmsg_locked per scatterlist element
	zcApply                 // with bpf_msg_apply_bytes: one per applied window
	zcCork                  // with bpf_msg_cork_bytes: sends pushed together
	zcDrop                  // an sk_msg drop verdict
	zcEgress                // an sk_msg redirect to another socket's egress
	zcIngress               // an sk_msg redirect to another socket's ingress
	zcTarget                // the target of another socket's egress redirect
	zcRing                  // a socket paired for the loopback splice: sends may take the ring
)

var zcPathNames = [...]string{"tcp", "sk_msg/pass", "sk_msg/apply", "sk_msg/cork", "sk_msg/drop",
	"sk_msg/redirect-egress", "sk_msg/redirect-ingress", "sk_msg/redirect-target", "ring"}

func (p zcPath) String() string { return zcPathNames[p] }

// zcPathOf returns the path a send on s by op i takes, as the maps
// stand before it (destinations' map states; the last sk_msg program a
// map got is its verdict), and for an egress redirect its target.
func zcPathOf(d *destinations, s string, i int) (zcPath, string) {
	st := d.state[d.pos[i]]
	names := make([]string, 0, len(st))
	for name := range st {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m := st[name]
		progs := m.msgProgs()
		if len(progs) == 0 || !inKeys(m.keys, s) {
			continue
		}
		switch p := progs[len(progs)-1]; {
		case p.Verdict == trace.VerdictDrop:
			return zcDrop, ""
		case p.Verdict == trace.VerdictRedirect && p.Ingress:
			return zcIngress, ""
		case p.Verdict == trace.VerdictRedirect:
			return zcEgress, m.keys[p.Key]
		case p.HasCork:
			return zcCork, ""
		case p.HasApply:
			return zcApply, ""
		}
		return zcPass, ""
	}
	if len(d.pairs[s]) > 0 {
		// A paired socket in a map with an sk_msg program sends by
		// tcp_bpf_sendmsg, not the ring (see rfcFailures).
		return zcRing, ""
	}
	return zcTCP, ""
}
