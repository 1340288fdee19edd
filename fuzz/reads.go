package fuzz

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// checkEOF: a recv or splice that returns 0 (EOF) on a socket whose
// bytes all come from its peer, and all of whose peer's bytes go to it,
// must come after every byte the peer's sends were accepted with before
// its FIN (shutdown SHUT_WR or close). Exempt: a reader that shut its own
// receive side, and a reset the trace explains before the EOF (close
// rst of either end; the peer closing with bytes unread, or receiving
// bytes after it closed, which makes it answer with RST).
func checkEOF(r *Execution) error {
	if r.Err != nil || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	rt := routesOf(r.Trace)
	accepted := map[string]int64{} // bytes each socket's sends were accepted with
	consumed := map[string]int64{} // bytes each socket read (recv, splice)
	atFIN := map[string]int64{}    // accepted when the socket sent its FIN
	closed := map[string]bool{}
	reset := map[string]bool{} // a reset the trace explains reached this connection
	// rstDue: the socket's peer closed with bytes unread (or with
	// SO_LINGER 0): its next read that finds no data must report
	// ECONNRESET, not EOF. Plain sockets only (never in a map).
	rstDue := map[string]bool{}
	inMap := map[string]bool{}
	finSent := map[string]bool{}
	shutRD := map[string]bool{}
	ringFrom := map[[2]string]bool{}
	if r.Stats != nil {
		for _, w := range r.Stats.RingWrites {
			ringFrom[[2]string{w.Sock, w.Reader}] = true
		}
	}
	order := completionOrder(r)
	if order == nil {
		return nil
	}
	for _, i := range order {
		op := &r.Trace.Ops[i]
		res := r.Obs[i].Result
		peer := rt.peer[op.A]
		if res.Err != 0 {
			delete(rstDue, op.A) // sk_err is reported once, to whichever call completes first
		}
		if res.Note != "" && op.Kind == trace.OpSplice {
			shutRD[op.A] = true // the runner may have shut it for reading to end the splice
		}
		switch op.Kind {
		case trace.OpInsert, trace.OpPair:
			for _, s := range op.Sockets() {
				inMap[s], inMap[rt.peer[s]] = true, true
			}
		case trace.OpConn:
			if op.Flags&trace.FlagPair != 0 && res.Err == 0 { // in the pairing program's sockhash
				inMap[op.A], inMap[op.B] = true, true
			}
		case trace.OpSend:
			if closed[peer] {
				reset[op.A], reset[peer] = true, true
			}
			if res.N > 0 {
				accepted[op.A] += res.N
			}
		case trace.OpShutdown, trace.OpClose:
			if op.Kind == trace.OpShutdown && op.How != trace.ShutWR {
				shutRD[op.A] = true
			}
			if op.Kind == trace.OpClose {
				// Under an exploring schedule the peer's bytes may still
				// be in flight at the close (unread by nobody: a FIN, and
				// the RST only when they arrive after it), so the reset
				// is due only when every send has been delivered, as the
				// default schedule and the kernel runner's settle ensure.
				unread := rt.exclusive(peer, op.A) && !rt.foreign[op.A] && consumed[op.A] < accepted[peer] && !exploring(r.Trace)
				// A FIN sent before (shutdown wr) reached the peer first:
				// it reads EOF (SOCK_DONE) before any error.
				if (unread || op.Flags&trace.FlagRST != 0) && !finSent[op.A] && !inMap[op.A] && !inMap[peer] && res.Err == 0 &&
					!r.streamsOpaque(peer) && !r.streamsOpaque(op.A) {
					rstDue[peer] = true
				}
				closed[op.A] = true
				// Unread bytes at close: RST (tcp_close). Only a socket
				// whose bytes are all its peer's can be counted.
				if op.Flags&trace.FlagRST != 0 || rt.foreign[op.A] || !rt.exclusive(peer, op.A) || consumed[op.A] < accepted[peer] {
					reset[op.A], reset[peer] = true, true
				}
			}
			if _, done := atFIN[op.A]; !done && (op.Kind == trace.OpClose || op.How != trace.ShutRD) {
				atFIN[op.A] = accepted[op.A]
			}
			if op.Kind == trace.OpShutdown && op.How != trace.ShutRD {
				finSent[op.A] = true
			}
		case trace.OpRecv, trace.OpSplice:
			if res.Err != 0 || res.Note != "" || op.Kind == trace.OpRecv && op.Flags&trace.FlagPeek != 0 {
				continue
			}
			if res.N == 0 && op.Size > 0 && rstDue[op.A] && !shutRD[op.A] && op.Kind == trace.OpRecv && consumed[op.A] >= accepted[peer] {
				return violation(op, "eof-instead-of-reset", "", "%s read EOF, but %s closed with bytes unread (or SO_LINGER 0): "+
					"it sent a RST, and the first read that finds no data reports ECONNRESET (tcp_close, tcp_reset)", op.A, peer)
			}
			if res.N > 0 {
				consumed[op.A] += res.N
				continue
			}
			fin, sentFIN := atFIN[peer]
			if op.Size == 0 || !sentFIN || consumed[op.A] >= fin || shutRD[op.A] || reset[op.A] ||
				rt.foreign[op.A] || !rt.exclusive(peer, op.A) || r.streamsOpaque(peer) {
				continue
			}
			site := "recv"
			switch {
			case rt.psockDrop[op.A]:
				site = "psock-drop"
			case fin-consumed[op.A] < rt.frame[op.A]:
				site = "strparser"
			case rt.skb[op.A] && !ringFrom[[2]string{peer, op.A}]:
				site = "verdict"
			case op.Kind == trace.OpSplice:
				site = "splice"
			case ringFrom[[2]string{peer, op.A}]:
				site = "ring"
			}
			return violation(op, "eof-early", site, "%s saw EOF after reading %d bytes; %s sent %d before its FIN", op.A, consumed[op.A], peer, fin)
		}
	}
	return nil
}

// streamsOpaque reports whether s's stream cannot be counted (sends in
// several threads, or cut by the runner, or written by iocopy).
func (r *Execution) streamsOpaque(s string) bool {
	if r.streams == nil {
		r.streams = trace.StreamsOf(r.Trace, r.Obs)
	}
	return r.streams.Opaque[s]
}

// checkReadsAgree: in a trace with one thread, what FIONREAD, poll and a
// MSG_PEEK recv say of a socket agrees with the recv that follows at
// once, both ways:
//   - FIONREAD > 0 or poll IN, then a non-blocking recv fails with
//     EAGAIN ("eagain-after-fionread", "eagain-after-poll");
//   - FIONREAD n, then a recv of more than n returns more than n
//     ("fionread-undercounts");
//   - poll without IN, then a non-blocking recv returns data
//     ("poll-misses-data");
//   - a peek returns data that the recv after it does not start with
//     ("peek-differs"), or EAGAIN where the recv after it gets data
//     ("peek-misses-data").
//
// The site is "psock-gone" when the socket had left a map whose sk_skb
// program had taken its bytes (the bytes its psock freed) before the
// pair of ops; "ring",
// "ring/peek", "ring/verdict" for a ring's reader; "strparser" for an
// EAGAIN behind a stream parser; "self-redirect" when its verdict
// redirects into its own ingress; "paired" for a loopback-splice pair's
// socket whose ingress_msg held bytes; "psock" when it was in a map;
// else "".
func checkReadsAgree(r *Execution) error {
	if r.Err != nil || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	if v := checkShutRead(r); v != nil {
		return v
	}
	rt := routesOf(r.Trace)
	if v := checkFIONREADBound(r, rt); v != nil {
		return v
	}
	if len(r.Trace.ThreadNames) > 1 {
		return nil
	}
	if v := checkFIONREADDrain(r, rt); v != nil {
		return v
	}
	inMap := map[string]bool{}
	ringReader := map[string]bool{}
	if r.Stats != nil {
		for _, w := range r.Stats.RingWrites {
			ringReader[w.Reader] = true
		}
	}
	for i := 1; i < len(r.Trace.Ops); i++ {
		op, prev := &r.Trace.Ops[i], &r.Trace.Ops[i-1]
		if prev.Kind == trace.OpInsert {
			inMap[prev.A] = true
		}
		if prev.Kind == trace.OpConn && prev.Flags&trace.FlagPair != 0 && r.Obs[i-1].Result.Err == 0 {
			inMap[prev.A], inMap[prev.B] = true, true // in the pairing program's sockhash
		}
		if op.Kind != trace.OpRecv || prev.A != op.A || r.Obs[i].Result.Note != "" || r.Obs[i-1].Result.Note != "" {
			continue
		}
		res, pr := r.Obs[i].Result, r.Obs[i-1].Result
		site := ""
		switch {
		case rt.droppedBefore(op.A, i-1):
			site = "psock-gone"
		case ringReader[op.A] && op.Flags&trace.FlagPeek != 0:
			site = "ring/peek"
		case ringReader[op.A] && rt.skb[op.A]:
			site = "ring/verdict"
		case ringReader[op.A]:
			site = "ring"
		case rt.parser[op.A] && res.Err == syscall.EAGAIN:
			site = "strparser" // a frame not yet whole on sk_receive_queue
		case rt.selfRedirect[op.A]:
			site = "self-redirect"
		case rt.paired[op.A] && strandedIngress(r, i):
			site = "paired" // its reads skip ingress_msg
		case inMap[op.A]:
			site = "psock"
		}
		if splicedAt(r, op.A, i-1) {
			site = "splice-source" // FreeBSD: no psock, whatever map ops the trace tried
		}
		nonblock := op.Flags&trace.FlagDontwait != 0
		got := res.Err == 0 && res.N > 0
		// more: the recv may be held to have found no more than the op
		// before it saw. Not under an exploring schedule, which may
		// deliver a segment between the two ops (unless every byte came
		// out of a ring, which a send fills at once), nor for a recv
		// that may sleep until more arrives.
		more := nonblock && (!exploring(r.Trace) || ringOnly(r, i))
		switch {
		case prev.Kind == trace.OpFIONREAD && pr.Err == 0 && pr.N > 0 && res.Err == syscall.EAGAIN:
			return violation(op, "eagain-after-fionread", site, "recv on %s failed with EAGAIN right after FIONREAD reported %d bytes", op.A, pr.N)
		case prev.Kind == trace.OpFIONREAD && pr.Err == 0 && pr.N >= 0 && more && got && res.N > pr.N && op.Size > pr.N:
			if !strings.HasPrefix(site, "ring") && (inMap[op.A] || rt.psockDrop[op.A]) {
				site = "psock" // which queue FIONREAD counts is the psock's question
			}
			return violation(op, "fionread-undercounts", site, "FIONREAD on %s reported %d bytes, the recv right after returned %d", op.A, pr.N, res.N)
		case prev.Kind == trace.OpPoll && pr.Err == 0 && pollIn(pr.Word) && res.Err == syscall.EAGAIN:
			return violation(op, "eagain-after-poll", site, "recv on %s failed with EAGAIN right after poll reported IN", op.A)
		case prev.Kind == trace.OpPoll && pr.Err == 0 && !pollIn(pr.Word) && more && got:
			return violation(op, "poll-misses-data", site, "poll on %s reported %s, the non-blocking recv right after returned %d bytes", op.A, pr.Word, res.N)
		case prev.Kind == trace.OpPoll && pr.Err == 0 && !pollIn(pr.Word) && more && res.Err == 0 && res.N == 0 && op.Size > 0 && op.Flags&trace.FlagPeek == 0:
			return violation(op, "poll-misses-eof", site, "poll on %s reported %s, the non-blocking recv right after returned EOF", op.A, pr.Word)
		case prev.Kind == trace.OpRecv && prev.Flags&trace.FlagPeek != 0 && op.Flags&trace.FlagPeek == 0:
			peekGot := pr.Err == 0 && pr.N > 0
			if peekGot && got {
				n := min(len(pr.Data), len(res.Data))
				if !bytes.Equal(pr.Data[:n], res.Data[:n]) {
					return violation(op, "peek-differs", site, "MSG_PEEK on %s returned %d bytes the recv right after does not start with", op.A, pr.N)
				}
			}
			if pr.Err == syscall.EAGAIN && got && prev.Size > 0 && !exploring(r.Trace) {
				return violation(op, "peek-misses-data", site, "MSG_PEEK on %s failed with EAGAIN, the recv right after returned %d bytes", op.A, res.N)
			}
		}
	}
	return nil
}

// overcountSite is the site of FIONREAD counting more than s can read:
// "psock-gone" when s left a map with an sk_skb program (the bytes its
// psock freed), "strparser" when s was in a map with a stream parser (a
// frame not yet whole), "self-redirect" when its verdict redirects into
// its own ingress (bytes it then never sees), "paired" for a
// loopback-splice pair's socket (its reads skip ingress_msg), else "".
func (r *routes) overcountSite(s string) string {
	switch {
	case r.psockDrop[s]:
		return "psock-gone"
	case r.parser[s]:
		return "strparser"
	case r.selfRedirect[s]:
		return "self-redirect"
	case r.paired[s]:
		return "paired"
	}
	return ""
}

// checkFIONREADBound: FIONREAD on a socket fed by its peer alone never
// exceeds what the peer's sends were accepted with less what the socket
// has read (recv, splice), in the order the ops completed
// ("fionread-overcounts": FIONREAD counts bytes no send made, or bytes
// already read; the site is overcountSite's).
func checkFIONREADBound(r *Execution, rt *routes) *Violation {
	order := completionOrder(r)
	if order == nil {
		return nil
	}
	st := trace.StreamsOf(r.Trace, r.Obs)
	accepted, consumed := map[string]int64{}, map[string]int64{}
	for _, i := range order {
		op := &r.Trace.Ops[i]
		res := r.Obs[i].Result
		switch op.Kind {
		case trace.OpSend:
			if res.N > 0 {
				accepted[op.A] += res.N
			}
		case trace.OpRecv, trace.OpSplice:
			if res.N > 0 && res.Err == 0 && (op.Kind == trace.OpSplice || op.Flags&trace.FlagPeek == 0) {
				consumed[op.A] += res.N
			}
		case trace.OpFIONREAD:
			s, peer := op.A, rt.peer[op.A]
			if res.Err != 0 || rt.foreign[s] || rt.iocopySrc[s] || st.Opaque[peer] {
				continue
			}
			if limit := accepted[peer] - consumed[s]; res.N > limit {
				return violation(op, "fionread-overcounts", rt.overcountSite(s), "FIONREAD on %s reported %d bytes; %s's sends were accepted with %d and %s has read %d",
					s, res.N, peer, accepted[peer], s, consumed[s])
			}
		}
	}
	return nil
}

// checkFIONREADDrain: FIONREAD n on a socket, then reads of it alone
// (nothing else runs on any socket meanwhile but FIONREAD, poll and
// state) until one finds nothing (EAGAIN): they return n bytes at least
// ("fionread-overcounts": FIONREAD counted bytes no read can have; the
// site is overcountSite's).
func checkFIONREADDrain(r *Execution, rt *routes) *Violation {
	ops := r.Trace.Ops
	for i := range ops {
		fr := r.Obs[i].Result
		if ops[i].Kind != trace.OpFIONREAD || fr.Err != 0 || fr.N <= 0 {
			continue
		}
		s := ops[i].A
		var got int64
	window:
		for j := i + 1; j < len(ops); j++ {
			op, res := &ops[j], r.Obs[j].Result
			switch {
			case res.Note != "":
				break window
			case op.A == s && (op.Kind == trace.OpFIONREAD || op.Kind == trace.OpPoll || op.Kind == trace.OpState):
			case op.A == s && op.Kind == trace.OpRecv && op.Flags&trace.FlagPeek == 0 && res.Err == 0 && res.N > 0:
				got += res.N
			case op.A == s && op.Kind == trace.OpRecv && res.Err == syscall.EAGAIN:
				if got < fr.N {
					return violation(op, "fionread-overcounts", rt.overcountSite(s), "FIONREAD on %s reported %d bytes; the reads after it returned %d, then EAGAIN", s, fr.N, got)
				}
				break window
			default:
				break window
			}
		}
	}
	return nil
}

// ringOnly reports whether every byte op i read came out of a
// loopback-splice ring (its tags, model.TagRing).
func ringOnly(r *Execution, i int) bool {
	if r.Stats == nil {
		return false
	}
	tags := r.Stats.ReadTags[i]
	for _, t := range tags {
		if t.Paths()&model.TagRing == 0 {
			return false
		}
	}
	return len(tags) > 0
}

// strandedIngress reports whether op i, a recv, came back empty while
// its socket's ingress_msg held bytes (model.Stats.Stranded).
func strandedIngress(r *Execution, i int) bool {
	if r.Stats == nil {
		return false
	}
	for _, s := range r.Stats.Stranded {
		if s.Op == i && s.Ingress > 0 {
			return true
		}
	}
	return false
}

// exploring reports whether t runs under an exploring schedule (random,
// PCT or picks), which may hold segments in flight between ops.
func exploring(t *trace.Trace) bool {
	return t.Schedule != nil && t.Schedule.Strategy != ""
}

// completionOrder returns the op indexes in the order the ops
// completed: the model's (Stats.Done), or trace order for a trace with
// one thread; nil when neither is known.
func completionOrder(r *Execution) []int {
	if r.Stats != nil && len(r.Stats.Done) == len(r.Trace.Ops) {
		return r.Stats.Done
	}
	if len(r.Trace.ThreadNames) > 1 {
		return nil
	}
	order := make([]int, len(r.Trace.Ops))
	for i := range order {
		order[i] = i
	}
	return order
}

// checkShutRead: once a socket is shut down for reading (SHUT_RD or
// SHUT_RDWR), a recv or splice on it returns at once, with data or 0
// (tcp_recvmsg and tcp_splice_read break on RCV_SHUTDOWN), never
// EAGAIN ("eagain-after-shutdown"): judged in the order the ops
// completed, so a recv that began before the shutdown and timed out
// first is not held to it.
//
// The same holds once the peer's FIN is in and every byte the peer's
// sends were accepted with has been read ("eagain-after-fin"): judged on
// plain connections (neither end in a map or paired, no iocopy on
// either) under the default schedule, which delivers each segment
// before the next op; tcp_recvmsg_locked() and tcp_splice_read()
// (net/ipv4/tcp.c, v6.18) break out on SOCK_DONE before they look at the
// timeout.
func checkShutRead(r *Execution) *Violation {
	shut, inMap := map[string]bool{}, map[string]bool{}
	rt := routesOf(r.Trace)
	finIn := map[string]bool{}     // the peer's FIN has reached the socket
	accepted := map[string]int64{} // bytes each socket's sends were accepted with
	consumed := map[string]int64{} // bytes each socket read (recv, splice)
	plain := !exploring(r.Trace)   // FIN timing is known
	// threaded: sockets an op of another thread than main uses; their
	// close may wait for that op (the file stays open while a call on it
	// runs, so no FIN goes out), and only a shutdown is taken as a FIN.
	threaded := map[string]bool{}
	for _, op := range r.Trace.Ops {
		if op.Kind == trace.OpIOCopy {
			inMap[op.A], inMap[op.B] = true, true
			inMap[rt.peer[op.A]], inMap[rt.peer[op.B]] = true, true
		}
		if op.Thread != "" {
			for _, s := range op.Sockets() {
				threaded[s] = true
			}
		}
	}
	// piped: bytes spliced into the socket's pipe and not read back; a
	// splice into a pipe that may be full fails with EAGAIN before it
	// looks at the socket (splice's wait_for_space).
	piped := map[string]int64{}
	order := completionOrder(r)
	if order == nil {
		return nil // several threads, and no completion order to follow
	}
	for _, i := range order {
		op := &r.Trace.Ops[i]
		res := r.Obs[i].Result
		switch {
		case op.Kind == trace.OpSplice && res.Err == 0 && res.N > 0:
			piped[op.A] += res.N
		case op.Kind == trace.OpPipe && res.Err == 0 && res.N > 0:
			piped[op.A] -= res.N
		}
		switch {
		case op.Kind == trace.OpSend && res.N > 0 && res.Note == "":
			accepted[op.A] += res.N
		case (op.Kind == trace.OpRecv && op.Flags&trace.FlagPeek == 0 || op.Kind == trace.OpSplice) && res.N > 0 && res.Err == 0 && res.Note == "":
			consumed[op.A] += res.N
		case op.Kind == trace.OpSend && res.Note != "":
			inMap[op.A] = true // a send the runner cut: its count is not known
		case (op.Kind == trace.OpClose && !threaded[op.A] || op.Kind == trace.OpShutdown && op.How != trace.ShutRD) && res.Err == 0 && res.Note == "":
			if p := rt.peer[op.A]; p != "" {
				finIn[p] = true
			}
		}
		switch {
		case op.Kind == trace.OpInsert || op.Kind == trace.OpPair:
			inMap[op.A] = true
			if op.Kind == trace.OpPair {
				inMap[op.B] = true
			}
		case op.Kind == trace.OpConn && op.Flags&trace.FlagPair != 0 && res.Err == 0:
			inMap[op.A], inMap[op.B] = true, true
		case op.Kind == trace.OpShutdown && op.How != trace.ShutWR && res.Err == 0:
			shut[op.A] = true
		case op.Kind == trace.OpSplice && piped[op.A] > 0:
			// The pipe holds bytes: it may be full (its slots, not
			// its bytes, run out).
		case (op.Kind == trace.OpRecv || op.Kind == trace.OpSplice) && shut[op.A] && res.Err == syscall.EAGAIN && res.Note == "":
			site := ""
			if inMap[op.A] {
				site = "psock"
			}
			return violation(op, "eagain-after-shutdown", site, "%s on %s failed with EAGAIN after it was shut down for reading", op.Kind, op.A)
		case (op.Kind == trace.OpRecv || op.Kind == trace.OpSplice) && plain && finIn[op.A] && res.Err == syscall.EAGAIN && res.Note == "" &&
			!inMap[op.A] && !inMap[rt.peer[op.A]] && consumed[op.A] >= accepted[rt.peer[op.A]]:
			return violation(op, "eagain-after-fin", op.Kind.String(), "%s on %s failed with EAGAIN after its peer's FIN, with every byte the peer sent read", op.Kind, op.A)
		}
	}
	return nil
}

// pollIn reports whether a poll result word has IN.
func pollIn(w string) bool {
	for _, f := range strings.Split(w, "|") {
		if f == "IN" {
			return true
		}
	}
	return false
}

// Bases maps each patch profile to the profile it claims to be
// transparent against, for the transparent property: the patch may
// change how bytes travel, not which bytes a receiver gets in which
// order. The differences each patch is meant to make (and that the
// property therefore tolerates) are:
//   - loopback-splice, loopback-splice-seq (the RFC's "applications need
//     no changes", seed 002): bytes travel by the ring instead of TCP;
//     `pair` and `conn ... pair` succeed (they fail with EOPNOTSUPP on
//     the base, where `conn ... pair` inserts nothing, so the base's
//     ends have no psock); reads may return more or less at once
//     (compared as streams, not per op);
//   - splice-copy, splice-zerocopy (the splice_read series): splice(2)
//     on a psock socket reads ingress_msg instead of returning 0 or
//     EAGAIN, so the bytes recv would return come through the pipe.
var Bases = map[string]string{
	"linux-6.18+loopback-splice":     "linux-6.18",
	"linux-6.18+loopback-splice-seq": "linux-6.18",
	"linux-6.18+splice-copy":         "linux-6.18",
	"linux-6.18+splice-zerocopy":     "linux-6.18",
	// The RFC and the module as validated on 6.12.118, against their own base.
	"linux-6.12+loopback-splice":     "linux-6.12",
	"linux-6.12+loopback-splice-seq": "linux-6.12",
}

// checkTransparent compares, for each socket read in one thread, the
// bytes it consumed on the patch profile with those it consumed on the
// base (Execution.Base), by their provenance tags: one sequence of (sender,
// offset) must be a prefix of the other. At the first difference the
// patch read a byte the base read later ("reordered", with the sites of
// stream-integrity: "ring/tcp", "ring/sk_msg", ...), or one the base
// never read there ("differs"). A patch sequence that is a strict prefix
// of the base's and ends at an EOF where the base's same op returned
// data is "eof-early" ("ring" when the socket's ring was written).
// Sockets whose senders send from several threads are not compared
// (their order is the kernels', not the trace's), nor, on the splice
// profiles, sockets that splice with a psock (the base's splice is what
// the patch fixes).
//
// A socket paired by `conn ... pair` has a psock on the patch (the
// pairing program's sockhash holds it) and none on the base, where the
// program does not load; in a trace that also puts such a socket in a
// map of its own, the psock's lifetime and protos differ between the
// two, so a difference the sites above do not explain is put down to
// that ("psock/rendezvous").
func checkTransparent(r *Execution) error {
	v := transparentDiff(r)
	if v == nil {
		return nil
	}
	if v.Site == "" && rendezvousInMap(r.Trace) {
		v.Site = "psock/rendezvous"
	}
	return v
}

// rendezvousInMap reports whether a socket paired by `conn ... pair` is
// also inserted in a map of the trace.
func rendezvousInMap(t *trace.Trace) bool {
	paired := map[string]bool{}
	for _, op := range t.Ops {
		switch {
		case op.Kind == trace.OpConn && op.Flags&trace.FlagPair != 0:
			paired[op.A], paired[op.B] = true, true
		case op.Kind == trace.OpInsert && paired[op.A]:
			return true
		}
	}
	return false
}

// transparentDiff is checkTransparent's comparison.
func transparentDiff(r *Execution) *Violation {
	if r.Base == nil || r.Err != nil || r.BaseErr != nil || len(r.Base) != len(r.Trace.Ops) || len(r.Obs) != len(r.Trace.Ops) ||
		r.Stats == nil || r.BaseStats == nil || r.Stats.TagSocks == nil {
		return nil
	}
	base := &Execution{Trace: r.Trace, Obs: r.Base, Stats: r.BaseStats}
	p := newProvenance(r)
	spliceProfile := strings.Contains(r.Trace.Profile, "+splice-")
	for _, s := range sockets(r.Trace) {
		if len(p.st.Opaque) > 0 && (p.rt.foreign[s] || p.st.Opaque[p.rt.peer[s]]) {
			continue
		}
		if spliceProfile && splicesWithPsock(r.Trace, s) || p.rt.iocopySrc[s] {
			continue // the base's splice is what the patch fixes; an iocopy shares the reads
		}
		pc, _, ok1 := consumption(r, s)
		bc, _, ok2 := consumption(base, s)
		if !ok1 || !ok2 {
			continue
		}
		pt, bt := flattenTags(pc), flattenTags(bc)
		if pt == nil || bt == nil {
			continue
		}
		if v := p.compareSenders(r, s, pc, pt, bt); v != nil {
			return v
		}
		if len(pt) >= len(bt) {
			continue
		}
		ring := false
		for _, w := range r.Stats.RingWrites {
			ring = ring || w.Reader == s
		}
		for i := range r.Trace.Ops {
			op := &r.Trace.Ops[i]
			if op.A == s && op.Kind == trace.OpShutdown && op.How != trace.ShutWR {
				// After SHUT_RD a read with nothing queued yet returns 0:
				// EOF or data depends on when the bytes arrive.
				break
			}
			res, bres := r.Obs[i].Result, r.Base[i].Result
			if op.A == s && op.Kind == trace.OpRecv && op.Flags&trace.FlagPeek == 0 && op.Size > 0 &&
				res.Err == 0 && res.N == 0 && res.Note == "" && bres.Err == 0 && bres.N > 0 {
				site := ""
				switch {
				case ring:
					site = "ring"
				case spliceProfile && splicesWithPsock(r.Trace, p.rt.peer[s]):
					// The peer spliced: what the patch's splice_read
					// left on it changed what it sent.
					site = "splice/peer"
				}
				if t := r.BaseStats.ReadTags[i]; len(t) > 0 && t[0].Known() && t[0].Sock() < len(r.Stats.TagSocks) {
					if p.inOtherRing(r.Stats.TagSocks[t[0].Sock()], s, -1) {
						site = "ring/bypass-verdict" // the base's bytes went into another socket's ring
					}
				}
				return violation(op, "eof-early", site, "%s saw EOF after %d bytes where its base profile (%s) read %d more",
					s, len(pt), Bases[r.Trace.Profile], bres.N)
			}
		}
	}
	return nil
}

// compareSenders compares, sender by sender, the provenance tags of what
// socket s read on the patch (pt, in chunks pc) with what it read on the
// base (bt): each sender's bytes must come in the same order on both,
// one a prefix of the other. How two senders' bytes interleave is the
// kernels' timing, not the patch's, so it is not compared.
func (p *provenance) compareSenders(r *Execution, s string, pc []chunk, pt, bt []model.Tag) *Violation {
	psBy, pos := bySender(pt)
	bsBy, _ := bySender(bt)
	keys := make([]int, 0, len(psBy))
	for k := range psBy {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ps, bs := psBy[k], bsBy[k]
		n := min(len(ps), len(bs))
		for d := 0; d < n; d++ {
			if ps[d]&^pathBits == bs[d]&^pathBits {
				continue
			}
			op := &r.Trace.Ops[opAt(pc, pos[k][d])]
			socks := r.Stats.TagSocks
			name := func(t model.Tag) string {
				if t.Known() && t.Sock() < len(socks) {
					return fmt.Sprintf("%s's byte at offset %d", socks[t.Sock()], t.Off())
				}
				return "an untagged byte"
			}
			if ps[d]&model.TagRing != 0 && !slices.ContainsFunc(bs, func(t model.Tag) bool { return t&^pathBits == ps[d]&^pathBits }) {
				// A ring byte the base never delivered here at all (its
				// verdict dropped or redirected it): not a reorder but the
				// ring bypassing the reader's verdict.
				return violation(op, "differs", "ring/bypass-verdict", "%s read %s, which its base profile (%s) never delivered to it (read %s instead)",
					s, name(ps[d]), Bases[r.Trace.Profile], name(bs[d]))
			}
			for j := d + 1; j < len(ps); j++ {
				if ps[j]&^pathBits == bs[d]&^pathBits {
					site := ""
					if bs[d].Sock() == ps[d].Sock() && bs[d].Known() {
						site = p.orderSite(socks[bs[d].Sock()], s, ps[j], ps[d])
					}
					return violation(op, "reordered", site, "%s read %s where its base profile (%s) read %s, which it read later",
						s, name(ps[d]), Bases[r.Trace.Profile], name(bs[d]))
				}
			}
			if ps[d].Known() && bs[d].Known() && ps[d].Sock() == bs[d].Sock() && ps[d].Off() > bs[d].Off() {
				// The patch skipped ahead: the bytes it skipped may wait
				// on the other path (the ring, or TCP).
				snd := socks[bs[d].Sock()]
				late := bs[d] &^ pathBits
				if p.ringWritten(snd, s, late.Off()) || p.forwardedIntoRing(snd, s) {
					late |= model.TagRing
				}
				if site := p.orderSite(snd, s, late, ps[d]); strings.HasPrefix(site, "ring/") {
					return violation(op, "reordered", site, "%s read %s where its base profile (%s) read %s, which took the other path",
						s, name(ps[d]), Bases[r.Trace.Profile], name(bs[d]))
				}
			}
			site := pathSite(ps[d])
			if bs[d].Known() && bs[d].Sock() < len(socks) && p.inOtherRing(socks[bs[d].Sock()], s, bs[d].Off()) {
				site = "ring/bypass-verdict" // the base's byte went into another socket's ring instead
			}
			return violation(op, "differs", site, "%s read %s where its base profile (%s) read %s",
				s, name(ps[d]), Bases[r.Trace.Profile], name(bs[d]))
		}
	}
	return nil
}

// bySender splits tags by sender, with each tag's index in tags.
func bySender(tags []model.Tag) (map[int][]model.Tag, map[int][]int) {
	by, pos := map[int][]model.Tag{}, map[int][]int{}
	for i, t := range tags {
		by[t.Sock()] = append(by[t.Sock()], t)
		pos[t.Sock()] = append(pos[t.Sock()], i)
	}
	return by, pos
}

// pathBits are a tag's path bits (model.Tag.Paths).
const pathBits = model.TagRing | model.TagIngress | model.TagRingReaders | model.TagRingWriters

// flattenTags returns the tags of cs's bytes in order, nil when a chunk
// has none.
func flattenTags(cs []chunk) []model.Tag {
	var t []model.Tag
	for _, c := range cs {
		if len(c.tags) != len(c.data) {
			return nil
		}
		t = append(t, c.tags...)
	}
	if t == nil {
		t = []model.Tag{}
	}
	return t
}

// opAt is the op of the chunk holding byte off.
func opAt(cs []chunk, off int) int {
	for _, c := range cs {
		if off < len(c.data) {
			return c.op
		}
		off -= len(c.data)
	}
	return cs[len(cs)-1].op
}

// splicesWithPsock reports whether s splices after it was inserted in a
// map (a `conn ... pair` inserts both ends in the pairing program's).
func splicesWithPsock(t *trace.Trace, s string) bool {
	inMap := false
	for _, op := range t.Ops {
		switch {
		case op.Kind == trace.OpInsert && op.A == s:
			inMap = true
		case op.Kind == trace.OpConn && op.Flags&trace.FlagPair != 0 && (op.A == s || op.B == s):
			inMap = true
		case op.Kind == trace.OpSplice && op.A == s && inMap:
			return true
		}
	}
	return false
}

// splicedAt reports whether s was a FreeBSD splice's source while op i
// ran (model.Stats.Splices).
func splicedAt(r *Execution, s string, i int) bool {
	if r.Stats == nil {
		return false
	}
	for _, sp := range r.Stats.Splices {
		if sp.Src == s && sp.LiveAt(i) {
			return true
		}
	}
	return false
}
