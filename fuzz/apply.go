package fuzz

import (
	"iter"
	"syscall"

	"github.com/splicecheck/splicecheck/trace"
)

// checkApplyWindows follows the apply windows of an sk_msg verdict that
// calls bpf_msg_apply_bytes(N): the verdict it returns holds for the
// next N bytes the sender sends, over as many sendmsg calls as they
// take, and the program runs again on the byte after them
// (bpf_msg_apply_bytes() in bpf-helpers(7); tcp_bpf_send_verdict() and
// sk_msg_apply_bytes() (net/ipv4/tcp_bpf.c, include/linux/skmsg.h,
// v6.18): psock->eval stays set, and sk_psock_msg_verdict() is not
// called, until apply_bytes is used up).
//
// It judges a sender S that joined one map M once, with M's one sk_msg
// program (apply N, no cork) attached before, and that no other path
// sends through (no sends of S in other threads, no iocopy into it, no
// pair, no sk_skb egress redirect in M: egressInto), up to the first op that could change S's psock (a delete or
// replace of S's key, a close, an sk_msg program attached to M later,
// a shutdown):
//
//   - pass and redirect: while every send returned its whole size, the
//     program ran ceil(T/N) times for the T bytes sent so far (its runs
//     are what a BPF program that counts them in a map sees,
//     model.Stats.MsgVerdicts) ("apply-window-runs");
//   - drop: the first send runs it once and psock->eval stays
//     __SK_DROP (tcp_bpf_send_verdict() returns before it resets eval);
//     each send of s bytes (s <= 4096, one sk_msg) gives up
//     tosend = min(s, what is left of the window) and returns s - tosend,
//     or -EACCES when that is 0; once the window is used up every send
//     fails ("apply-window-drop").
func checkApplyWindows(r *Execution) error {
	if r.Err != nil || r.Stats == nil || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	runs := map[int]map[string]int{} // op -> sock -> verdict runs
	for _, v := range r.Stats.MsgVerdicts {
		if runs[v.Op] == nil {
			runs[v.Op] = map[string]int{}
		}
		runs[v.Op][v.Sock] += v.Runs
	}
	for _, s := range sockets(r.Trace) {
		if v := applyWindow(r, s, runs); v != nil {
			return v
		}
	}
	return nil
}

// applyWindow judges sender s (checkApplyWindows).
func applyWindow(r *Execution, s string, runs map[int]map[string]int) (v *Violation) {
	ops := r.Trace.Ops
	ins := -1
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Kind == trace.OpInsert && op.A == s:
			if ins >= 0 {
				return nil // joined twice (or tried to)
			}
			ins = i
		case op.Kind == trace.OpSend && op.A == s && op.Thread != "":
			return nil
		case op.Kind == trace.OpIOCopy && op.B == s:
			return nil
		case op.Kind == trace.OpPair && (op.A == s || op.B == s):
			return nil
		case op.Kind == trace.OpConn && op.Flags&trace.FlagPair != 0 && (op.A == s || op.B == s):
			return nil
		}
	}
	if ins < 0 || r.Obs[ins].Result.Err != 0 || r.Obs[ins].Result.Note != "" {
		return nil
	}
	m, key := ops[ins].Map, ops[ins].Key
	var prog *trace.Prog
	nprog := 0
	mapOK := false
	for i := 0; i < ins; i++ {
		op := &ops[i]
		res := r.Obs[i].Result
		if op.Map != m || res.Err != 0 || res.Note != "" {
			continue
		}
		switch op.Kind {
		case trace.OpMap:
			mapOK, nprog, prog = true, 0, nil
		case trace.OpProg:
			if op.Prog.Type == trace.SkMsg {
				nprog++
				prog = op.Prog
			}
		}
	}
	if !mapOK || nprog != 1 || egressInto(r, m) {
		return nil
	}
	switch {
	case prog.HasApply && !prog.HasCork && prog.Apply > 0 && prog.Apply < 1<<31:
	case prog.HasCork && !prog.HasApply && prog.Cork > 0 && prog.Cork <= 4096 && prog.Verdict != trace.VerdictDrop:
		return corkWindow(r, s, ins, m, key, prog, runs)
	default:
		return nil
	}
	n := prog.Apply
	var win []windowStart // redirect ingress: where each window began
	var total int64       // pass, redirect: bytes sent
	defer func() {
		if v == nil && len(win) > 0 {
			v = windowTargets(r, s, n, win, win[0].off+total)
		}
	}()
	var nruns int     // pass, redirect: runs during the sends judged
	left := int64(-1) // drop: what is left of the window (-1: not begun)
	for i, size := range sendsOf(ops, s, ins, m, key) {
		op, res := &ops[i], r.Obs[i].Result
		if size < 0 || res.Note != "" {
			return nil
		}
		if prog.Verdict == trace.VerdictDrop {
			if size == 0 {
				continue
			}
			if left < 0 {
				left = n
			}
			tosend := size // apply_bytes 0: the whole message
			if left > 0 {
				tosend = min(left, size)
			}
			want := size - tosend
			got := res.N
			switch res.Err {
			case 0:
			case syscall.EACCES:
				got = 0
			default:
				return nil // an error before the verdict (a reset, a shutdown)
			}
			switch {
			case left == 0 && got > 0:
				return violation(op, "apply-window-drop", "past-window",
					"send on %s returned %d under a drop verdict whose apply window of %d bytes was used up (every send fails with EACCES then)", s, got, n)
			case size > 4096:
				return nil // several sk_msgs: the window's use is not known
			case got != want || want == 0 && res.Err != syscall.EACCES:
				return violation(op, "apply-window-drop", "in-window",
					"send of %d bytes on %s returned %s under a drop verdict with %d of its %d-byte apply window left; want %d (EACCES for 0)",
					size, s, res, left, n, want)
			}
			if left > 0 {
				left -= tosend
			}
			continue
		}
		if res.Err != 0 || res.N != size {
			return nil // the rest is not judged: a redirect that failed, a short send
		}
		if prog.Verdict == trace.VerdictRedirect && prog.Ingress && size > 0 && r.Stats.TagSocks != nil {
			start := streamOff(r, i)
			for w := (total + n - 1) / n * n; w < total+size; w += n {
				// Window w/n begins in this send: the verdict runs here
				// and picks the socket at the program's key now.
				win = append(win, windowStart{off: start + w - total, target: keyAt(r, m, prog.Key, i)})
			}
		}
		total += size
		nruns += runs[i][s]
		if want := int((total + n - 1) / n); nruns != want {
			site := "pass"
			if prog.Verdict == trace.VerdictRedirect {
				site = "redirect"
			}
			return violation(op, "apply-window-runs", site,
				"%s's sk_msg program (apply %d) ran %d times for the %d bytes sent so far; it runs again after every %d bytes, so %d", s, n, nruns, total, n, want)
		}
	}
	return nil
}

// sendsOf yields the index and size of each send of s after op ins; at
// the first op that may change s's psock (psockMayChange), where a
// window's accounting can no longer be followed, it yields that op's
// index with size -1 and stops.
func sendsOf(ops []trace.Op, s string, ins int, m string, key int64) iter.Seq2[int, int64] {
	return func(yield func(int, int64) bool) {
		for i := ins + 1; i < len(ops); i++ {
			op := &ops[i]
			if psockMayChange(op, s, m, key) {
				yield(i, -1)
				return
			}
			if op.Kind != trace.OpSend || op.A != s {
				continue
			}
			size := op.Size
			if op.Form != trace.DataPattern {
				size = int64(len(op.Data))
			}
			if !yield(i, size) {
				return
			}
		}
	}
}

// psockMayChange reports whether op may change what sender s's psock
// runs, s having joined map m at key: the ops after which
// checkApplyWindows stops following s.
func psockMayChange(op *trace.Op, s, m string, key int64) bool {
	switch {
	case op.Kind == trace.OpDelete && op.Map == m && op.Key == key,
		op.Kind == trace.OpInsert && op.Map == m && op.Key == key,
		op.Kind == trace.OpMap && op.Map == m,
		op.Kind == trace.OpProg && op.Map == m && op.Prog.Type == trace.SkMsg,
		op.Kind == trace.OpClose && op.A == s,
		op.Kind == trace.OpShutdown && op.A == s:
		return true
	}
	return false
}

// corkWindow judges sender s whose sk_msg program (pass or redirect)
// calls bpf_msg_cork_bytes(C) and not bpf_msg_apply_bytes: the first
// message runs it; a message shorter than C is corked, and the program
// runs again only once the sends have brought the C bytes, on the whole
// corked message (bpf_msg_cork_bytes() in bpf-helpers(7); tcp_bpf_sendmsg()
// (net/ipv4/tcp_bpf.c, v6.18) counts psock->cork_bytes down by each send's
// size and resets psock->eval when it reaches 0). A message of C bytes or
// more is decided at once, and with no apply window the next message
// runs the program again. Sends of at most 4096 bytes that return their
// whole size are followed ("apply-window-runs", site "cork").
func corkWindow(r *Execution, s string, ins int, m string, key int64, prog *trace.Prog, runs map[int]map[string]int) *Violation {
	ops := r.Trace.Ops
	c := prog.Cork
	var pending int64 // bytes the cork still waits for (0: no cork)
	want, got := 0, 0
	var total int64
	for i, size := range sendsOf(ops, s, ins, m, key) {
		op, res := &ops[i], r.Obs[i].Result
		if size < 0 || res.Note != "" || res.Err != 0 || res.N != size || size > 4096 {
			return nil
		}
		total += size
		got += runs[i][s]
		switch {
		case size == 0:
		case pending == 0:
			want++
			if size < c {
				pending = c - size
			}
		case size >= pending:
			want++
			pending = 0
		default:
			pending -= size
		}
		if got != want {
			return violation(op, "apply-window-runs", "cork",
				"%s's sk_msg program (cork %d) ran %d times for the %d bytes sent so far; the cork windows they make want %d", s, c, got, total, want)
		}
	}
	return nil
}

// egressInto reports whether map m has an sk_skb program that redirects
// to egress: skb_send_sock() out of the socket at its key sends through
// that socket's proto, tcp_bpf_sendmsg() (sendmsg_unlocked() → sock_sendmsg(),
// net/core/skbuff.c, v6.18), so the socket's own sk_msg verdict decides
// bytes no send op of the trace made.
func egressInto(r *Execution, m string) bool {
	for i, op := range r.Trace.Ops {
		if op.Kind == trace.OpProg && op.Map == m && op.Prog.Type == trace.SkSkb && op.Prog.Verdict == trace.VerdictRedirect &&
			!op.Prog.Ingress && r.Obs[i].Result.Err == 0 {
			return true
		}
	}
	return false
}

// windowStart is where an apply window of a sender began: its first
// byte's stream offset, and the socket at the redirect's key then (""
// when none).
type windowStart struct {
	off    int64
	target string
}

// streamOff is the stream offset of send op i's first byte.
func streamOff(r *Execution, i int) int64 {
	if r.streams == nil {
		r.streams = trace.StreamsOf(r.Trace, r.Obs)
	}
	return r.streams.Off[i]
}

// keyAt returns the socket at key of map m just before op i, by the
// successful inserts and deletes before it ("" when none; "?" when an op
// of another thread may have changed m).
func keyAt(r *Execution, m string, key int64, i int) string {
	at := ""
	for j := 0; j < len(r.Trace.Ops); j++ {
		op := &r.Trace.Ops[j]
		if op.Map != m || op.Key != key || op.Kind != trace.OpInsert && op.Kind != trace.OpDelete {
			continue
		}
		if op.Thread != "" {
			return "?"
		}
		if j >= i {
			break
		}
		if res := r.Obs[j].Result; res.Err != 0 || res.Note != "" {
			continue
		}
		if op.Kind == trace.OpInsert {
			at = op.A
		} else {
			at = ""
		}
	}
	return at
}

// windowTargets checks, for sender s whose sk_msg verdict redirects to
// ingress with apply n, that every byte of a window that anyone read
// (sent by the sends followed, below end) was
// read by the socket the window's verdict picked: the verdict holds for
// the whole window (psock->sk_redir stays set while apply_bytes lasts,
// tcp_bpf_send_verdict() (net/ipv4/tcp_bpf.c, v6.18)), whatever the map
// holds meanwhile, and the next window's verdict looks the key up again
// ("apply-window-target"). A run with an iocopy (which sends bytes on)
// is not judged.
func windowTargets(r *Execution, s string, n int64, win []windowStart, end int64) *Violation {
	for _, op := range r.Trace.Ops {
		if op.Kind == trace.OpIOCopy {
			return nil
		}
	}
	for _, w := range win {
		if w.target == "?" {
			return nil
		}
	}
	idx := -1
	for k, name := range r.Stats.TagSocks {
		if name == s {
			idx = k
		}
	}
	if idx < 0 {
		return nil
	}
	for i, tags := range r.Stats.ReadTags {
		rd := &r.Trace.Ops[i]
		for _, tg := range tags {
			if !tg.Known() || tg.Sock() != idx || tg.Off() < win[0].off || tg.Off() >= end {
				continue
			}
			w := win[(tg.Off()-win[0].off)/n]
			if w.target != rd.A {
				return violation(rd, "apply-window-target", "redirect-ingress",
					"%s read %s's stream byte at offset %d, of the apply window (%d bytes) at offset %d whose verdict redirected to %q",
					rd.A, s, tg.Off(), n, w.off, w.target)
			}
		}
	}
	return nil
}
