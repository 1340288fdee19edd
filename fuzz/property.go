package fuzz

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// ErrProperty marks a property violation; Violation errors wrap it.
var ErrProperty = errors.New("property violated")

// Run is one execution a property judges: the trace and what the backend
// observed (one observation per op, in trace order), or the error that
// stopped the run.
type Run struct {
	Trace *trace.Trace
	Obs   []trace.Observation
	Err   error
	// Ref is the same trace run on the reference (the unmutated model of
	// the same profile, or the live kernel under `check --diff kernel`);
	// nil when there is none.
	Ref    []trace.Observation
	RefErr error
	// Skipped: a run took longer than the campaign allows; it is not
	// judged.
	Skipped bool
	// Stats is a model backend's account of the run (its ring writes,
	// with the segments held in flight at each); nil on other backends
	// and for a run that failed.
	Stats *model.Stats
}

// Property is one checker of ../shared/DESIGN.md's properties. Check
// returns nil when r satisfies it (or the property does not apply to r),
// else an error wrapping ErrProperty that says where.
type Property struct {
	Name  string
	Doc   string
	Check func(r *Run) error
}

// Properties are the checkers campaigns run, in table order.
var Properties = []Property{
	{"model-sound", "the run ends without a model invariant failure, leak or deadlock", checkSound},
	{"page-ownership", "no page is used or put after it was freed, get_page never touches slab memory, no slab object reaches a pipe, nothing is left after teardown", checkPages},
	{"no-lost-wakeup", "no thread sleeps while the condition it waits for holds", checkWakeups},
	{"no-livelock", "no op loops forever without making progress or sleeping", checkLivelock},
	{"no-teardown-leak", "once both sockets of a pair are closed, their psocks and ring are released", checkLeaks},
	{"stream-integrity", "bytes read from a plain stream are its sent bytes, in order, never duplicated or invented", checkIntegrity},
	{"eof-after-data", "a reader sees EOF only after every byte sent before the FIN (unless there was a reset)", checkEOF},
	{"eagain-when-empty", "recv reports EAGAIN only when nothing is readable: not right after FIONREAD or poll said there was", checkEAGAIN},
	{"agrees-with-reference", "the observations equal the reference run's (the unmutated profile, or the kernel)", checkReference},
}

// PropertyByName returns the named property.
func PropertyByName(name string) (Property, bool) {
	for _, p := range Properties {
		if p.Name == name {
			return p, true
		}
	}
	return Property{}, false
}

// runErrors are the model's run errors that properties of their own
// report; checkSound reports every other.
var runErrors = []error{model.ErrLostWakeup, model.ErrLivelock, model.ErrLeak, model.ErrPageOwnership}

// checkSound fails a run that returned an error (the model reports its
// invariant checks and deadlocks that way), except the lost wakeups,
// livelocks, leaks and page faults that properties of their own report.
func checkSound(r *Run) error {
	if r.Err == nil {
		return nil
	}
	for _, e := range runErrors {
		if errors.Is(r.Err, e) {
			return nil
		}
	}
	return fmt.Errorf("%w: the run failed: %w", ErrProperty, r.Err)
}

// failsWith returns a check that fails a run the model stopped with an
// error wrapping target.
func failsWith(target error) func(*Run) error {
	return func(r *Run) error {
		if errors.Is(r.Err, target) {
			return fmt.Errorf("%w: %w", ErrProperty, r.Err)
		}
		return nil
	}
}

var (
	// checkPages: a page-ownership fault, or memory left after teardown.
	checkPages = failsWith(model.ErrPageOwnership)
	// checkLivelock: an op that looped without end.
	checkLivelock = failsWith(model.ErrLivelock)
	// checkWakeups: a lost wakeup.
	checkWakeups = failsWith(model.ErrLostWakeup)
	// checkLeaks: a closed pair, or a psock, not released.
	checkLeaks = failsWith(model.ErrLeak)
)

func checkReference(r *Run) error {
	if r.Ref == nil && r.RefErr == nil {
		return nil
	}
	if (r.Err == nil) != (r.RefErr == nil) {
		return fmt.Errorf("%w: run error %v, reference error %v", ErrProperty, r.Err, r.RefErr)
	}
	if divs := trace.Diff(r.Obs, r.Ref); len(divs) > 0 {
		return fmt.Errorf("%w: %d ops differ from the reference, first: %s", ErrProperty, len(divs), divs[0])
	}
	return nil
}

// plainStreams returns the peer of every socket whose incoming stream is
// plain: bytes come only from its peer's sends, unaltered. A socket is
// excluded when it or its peer was ever in a map with a program that does
// not pass (drop and redirect move or discard bytes), when it is an iocopy
// source (iocopy reads it) or its peer an iocopy destination (the bytes
// written are the source's), when its peer sends from more than one thread
// or it reads from more than one (their order is not trace order), when
// a send of its peer was cut short by the runner's timeout (how much it
// moved is unknown), or when it was in a map with a stream parser that
// had a delete (the psock's bytes are lost then, on Linux too).
func plainStreams(r *Run) map[string]string {
	t := r.Trace
	peer := map[string]string{}
	for _, op := range t.Ops {
		if op.Kind == trace.OpConn {
			peer[op.A], peer[op.B] = op.B, op.A
		}
	}
	notPass := map[string]bool{}
	parser := map[string]bool{} // maps with a stream parser
	for _, op := range t.Ops {
		if op.Kind == trace.OpProg && op.Prog.Verdict != trace.VerdictPass {
			notPass[op.Map] = true
		}
		if op.Kind == trace.OpProg && op.Prog.Parser != 0 {
			parser[op.Map] = true
		}
	}
	inserted := map[string][]string{} // sockets inserted in each map
	bad := map[string]bool{}
	reader := map[string]string{}
	sender := map[string]string{}
	for i, op := range t.Ops {
		switch op.Kind {
		case trace.OpSend:
			if th, ok := sender[op.A]; ok && th != op.ThreadName() {
				bad[peer[op.A]] = true
			}
			if i < len(r.Obs) && r.Obs[i].Result.Note == "runner" {
				// Cut short by the runner: what it moved is unknown.
				bad[peer[op.A]] = true
			}
			sender[op.A] = op.ThreadName()
		case trace.OpInsert:
			if notPass[op.Map] {
				bad[op.A], bad[peer[op.A]] = true, true
			}
			inserted[op.Map] = append(inserted[op.Map], op.A)
		case trace.OpDelete:
			// A socket leaving a map with a stream parser loses the
			// bytes its psock held, as Linux does
			// (testdata/traces/findings/psock_delete_strparser_seq_warn.trace:
			// sk_psock_drop frees them without advancing copied_seq).
			if parser[op.Map] {
				for _, s := range inserted[op.Map] {
					bad[s] = true
				}
			}
		case trace.OpIOCopy:
			bad[op.A], bad[peer[op.B]] = true, true
		case trace.OpRecv, trace.OpSplice, trace.OpPipe:
			if th, ok := reader[op.A]; ok && th != op.ThreadName() {
				bad[op.A] = true
			}
			reader[op.A] = op.ThreadName()
		}
	}
	plain := map[string]string{}
	for s, p := range peer {
		if !bad[s] {
			plain[s] = p
		}
	}
	return plain
}

// sentStreams returns what each socket's sends were accepted with: the
// first n bytes of each send that returned n, pattern bytes numbered by
// the bytes accepted before (trace.Pattern), as the runners number them.
func sentStreams(r *Run) map[string][]byte {
	sent := map[string][]byte{}
	off := map[string]int64{}
	for i, op := range r.Trace.Ops {
		res := r.Obs[i].Result
		switch {
		case op.Kind == trace.OpSend && res.N > 0:
			data := op.Data
			if op.Form == trace.DataPattern {
				data = trace.Pattern(off[op.A], op.Size)
			}
			n := min(int(res.N), len(data))
			sent[op.A] = append(sent[op.A], data[:n]...)
			off[op.A] += res.N
		case op.Kind == trace.OpIOCopy && res.N > 0:
			off[op.B] += res.N
		}
	}
	return sent
}

// checkIntegrity follows every plain stream: each non-peek recv must
// return the next bytes of its peer's accepted sends, a peek the bytes at
// the current offset without consuming them; a splice consumes the next n
// bytes into the socket's pipe and a pipe read must return the pipe's
// oldest bytes. After a splice the runner cut short the stream is not
// followed any further.
func checkIntegrity(r *Run) error { return streamIntegrity(r, plainStreams(r)) }

// streamIntegrity is checkIntegrity over the given streams: plain maps a
// receiving socket to the socket whose sends it must receive.
func streamIntegrity(r *Run, plain map[string]string) error {
	if r.Err != nil || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	sent := sentStreams(r)
	read := map[string]int{}    // stream offset of the next byte to read
	pipe := map[string][]byte{} // bytes spliced and not yet piped out
	cut := map[string]bool{}    // a splice was cut short by the runner
	for i := range r.Trace.Ops {
		op := &r.Trace.Ops[i]
		res := r.Obs[i].Result
		p, ok := plain[op.A]
		if !ok {
			continue
		}
		if res.Err != 0 {
			if op.Kind == trace.OpSplice && res.Note == "runner" {
				// The runner's watcher got the splice out by shutting
				// the socket down for reading or, if it was waiting for
				// pipe space, by discarding the pipe (the kernel
				// backend's guard). Which one is not observable: from
				// here on what the pipe holds is unknown.
				cut[op.A] = true
			}
			continue
		}
		if cut[op.A] {
			continue
		}
		stream := sent[p]
		next := func(n int) ([]byte, error) {
			off := read[op.A]
			if off+n > len(stream) {
				return nil, violation(op, "unspecified", "", "%s read %d bytes at offset %d; its peer %s had sent only %d", op.A, n, off, p, len(stream))
			}
			return stream[off : off+n], nil
		}
		switch op.Kind {
		case trace.OpRecv:
			want, err := next(len(res.Data))
			if err != nil {
				return err
			}
			if !bytes.Equal(res.Data, want) {
				return violation(op, "unspecified", "", "%s read %d bytes at stream offset %d that %s did not send there (%s)",
					op.A, len(res.Data), read[op.A], p, firstDiff(res.Data, want))
			}
			if op.Flags&trace.FlagPeek == 0 {
				read[op.A] += len(res.Data)
			}
		case trace.OpSplice:
			want, err := next(int(res.N))
			if err != nil {
				return err
			}
			pipe[op.A] = append(pipe[op.A], want...)
			read[op.A] += int(res.N)
		case trace.OpPipe:
			q := pipe[op.A]
			if len(res.Data) > len(q) || !bytes.Equal(res.Data, q[:len(res.Data)]) {
				return violation(op, "unspecified", "", "%s's pipe returned %d bytes that are not the oldest spliced (%d spliced, unread)", op.A, len(res.Data), len(q))
			}
			pipe[op.A] = q[len(res.Data):]
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

func firstDiff(got, want []byte) string {
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d is %#x, sent %#x", i, got[i], want[i])
		}
	}
	return "equal"
}

// checkEOF: on a plain stream, a recv that returns 0 (EOF) must come
// after every byte the peer's sends were accepted with before the peer's
// shutdown(SHUT_WR) or close was read. Runs with a reset (close rst,
// ECONNRESET or EPIPE anywhere on the connection) are exempt: Linux
// discards data on RST; so is a reader that shut its own receive side.
func checkEOF(r *Run) error {
	if r.Err != nil || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	plain := plainStreams(r)
	reset := map[string]bool{}
	for i, op := range r.Trace.Ops {
		e := r.Obs[i].Result.Err
		if (op.Kind == trace.OpClose && op.Flags&trace.FlagRST != 0) || e == syscall.ECONNRESET || e == syscall.EPIPE {
			for _, s := range op.Sockets() {
				reset[s] = true
			}
		}
	}
	accepted := map[string]int64{} // bytes each socket's sends were accepted with
	atFIN := map[string]int64{}    // accepted when the socket sent its FIN (-1: not yet)
	read := map[string]int64{}
	shutRD := map[string]bool{} // the reader shut its own receive side: recv returns 0 at once
	for i := range r.Trace.Ops {
		op := &r.Trace.Ops[i]
		res := r.Obs[i].Result
		switch op.Kind {
		case trace.OpSend:
			if res.N > 0 {
				accepted[op.A] += res.N
			}
		case trace.OpShutdown, trace.OpClose:
			if op.Kind == trace.OpShutdown && op.How != trace.ShutWR {
				shutRD[op.A] = true
			}
			if _, done := atFIN[op.A]; !done && (op.Kind == trace.OpClose || op.How != trace.ShutRD) {
				atFIN[op.A] = accepted[op.A]
			}
		case trace.OpRecv, trace.OpSplice:
			p, ok := plain[op.A]
			if !ok || reset[op.A] || reset[p] || shutRD[op.A] || res.Err != 0 {
				continue
			}
			if op.Kind == trace.OpRecv && op.Flags&trace.FlagPeek != 0 {
				continue
			}
			if res.N > 0 {
				read[op.A] += res.N
				continue
			}
			fin, sentFIN := atFIN[p]
			if op.Size > 0 && sentFIN && read[op.A] < fin {
				return violation(op, "unspecified", "", "%s saw EOF after reading %d bytes; %s sent %d before its FIN", op.A, read[op.A], p, fin)
			}
		}
	}
	return nil
}

// checkEAGAIN: a non-blocking recv that fails with EAGAIN right after a
// FIONREAD that reported bytes, or a poll that reported POLLIN, of the
// same socket (the op just before, in thread main, no other thread in the
// trace) contradicts it.
func checkEAGAIN(r *Run) error {
	if r.Err != nil || len(r.Obs) != len(r.Trace.Ops) || len(r.Trace.ThreadNames) > 1 {
		return nil
	}
	for i := 1; i < len(r.Trace.Ops); i++ {
		op, prev := &r.Trace.Ops[i], &r.Trace.Ops[i-1]
		if op.Kind != trace.OpRecv || prev.A != op.A || r.Obs[i].Result.Err != syscall.EAGAIN {
			continue
		}
		pr := r.Obs[i-1].Result
		switch {
		case prev.Kind == trace.OpFIONREAD && pr.Err == 0 && pr.N > 0:
			return violation(op, "unspecified", "", "recv on %s failed with EAGAIN right after FIONREAD reported %d bytes", op.A, pr.N)
		case prev.Kind == trace.OpPoll && pr.Err == 0 && pollIn(pr.Word):
			return violation(op, "unspecified", "", "recv on %s failed with EAGAIN right after poll reported IN", op.A)
		}
	}
	return nil
}
