package fuzz

import (
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
// pair), up to the first op that could change S's psock (a delete or
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
func checkApplyWindows(r *Run) error {
	if r.Err != nil || r.Stats == nil || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	runs := map[int]map[string]int{} // op -> sock -> verdict runs
	for _, v := range r.Stats.MsgVerdicts {
		if runs[v.Op] == nil {
			runs[v.Op] = map[string]int{}
		}
		runs[v.Op][v.Sock]++
	}
	for _, s := range sockets(r.Trace) {
		if v := applyWindow(r, s, runs); v != nil {
			return v
		}
	}
	return nil
}

// applyWindow judges sender s (checkApplyWindows).
func applyWindow(r *Run, s string, runs map[int]map[string]int) *Violation {
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
	if !mapOK || nprog != 1 || !prog.HasApply || prog.HasCork || prog.Apply <= 0 || prog.Apply >= 1<<31 {
		return nil
	}
	n := prog.Apply
	var total int64   // pass, redirect: bytes sent
	var nruns int     // pass, redirect: runs during the sends judged
	left := int64(-1) // drop: what is left of the window (-1: not begun)
	for i := ins + 1; i < len(ops); i++ {
		op := &ops[i]
		res := r.Obs[i].Result
		switch {
		case op.Kind == trace.OpDelete && op.Map == m && op.Key == key,
			op.Kind == trace.OpInsert && op.Map == m && op.Key == key,
			op.Kind == trace.OpMap && op.Map == m,
			op.Kind == trace.OpProg && op.Map == m && op.Prog.Type == trace.SkMsg,
			op.Kind == trace.OpClose && op.A == s,
			op.Kind == trace.OpShutdown && op.A == s:
			return nil
		case op.Kind != trace.OpSend || op.A != s:
			continue
		}
		size := op.Size
		if op.Form != trace.DataPattern {
			size = int64(len(op.Data))
		}
		if res.Note != "" {
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
			if res.Err != 0 {
				got = 0
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
