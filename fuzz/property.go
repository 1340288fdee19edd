package fuzz

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// ErrProperty marks a property violation; Violation errors wrap it.
var ErrProperty = errors.New("property violated")

// Execution is one run a property judges: the trace and what the backend
// observed (one observation per op, in trace order), or the error that
// stopped the run.
type Execution struct {
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
	// Timeline is the run's event log (ReplayTimeline); nil when not
	// asked for, and on a backend that keeps none.
	Timeline *trace.Timeline
	// Base is the same trace run on the base profile of a patch profile
	// (Bases), for the transparent property; nil when there is none.
	Base      []trace.Observation
	BaseStats *model.Stats
	BaseErr   error
	// Variants are the same workload through the other forms of the
	// trace's proxy (FindProxy), for the proxy-parity property; nil when
	// the trace has none.
	Variants []ProxyVariant

	streams *trace.Streams // computed on demand
}

// Property is one checker of docs/design.md's properties. Check
// returns nil when r satisfies it (or the property does not apply to r),
// else an error wrapping ErrProperty that says where.
type Property struct {
	Name  string
	Doc   string
	Check func(r *Execution) error
}

// Properties are the checkers campaigns run, in table order.
var Properties = []Property{
	{"model-sound", "the run ends without a model invariant failure, leak or deadlock", checkSound},
	{"page-ownership", "no page is used or put after it was freed, get_page never touches slab memory, no slab object reaches a pipe, nothing is left after teardown", checkPages},
	{"no-lost-wakeup", "no thread sleeps while the condition it waits for holds", checkWakeups},
	{"no-livelock", "no op loops forever without making progress or sleeping", checkLivelock},
	{"no-teardown-leak", "once both sockets of a pair are closed, their psocks and ring are released", checkLeaks},
	{"stream-integrity", "every byte read (recv, pipe) is a byte some possible sender sent, in its order, once; none lost mid-stream where nothing in the trace lets Linux lose it", checkIntegrity},
	{"ring-content", "bytes read out of a loopback-splice ring are the bytes written into it, in order", checkRingContent},
	{"eof-after-data", "a reader sees EOF only after every byte its peer sent before the FIN, unless a reset the trace explains came first", checkEOF},
	{"reads-agree", "FIONREAD, poll and MSG_PEEK agree with what the next recv returns, both ways", checkReadsAgree},
	{"no-stranded-data", "a recv does not come back empty (EAGAIN, EOF, a timeout) while its socket's ingress_msg or ring holds bytes it returns", checkStranded},
	{"errno-contract", "no data op fails with an error its arguments rule out: EFAULT (every buffer is the caller's own), EIO", checkErrnos},
	{"apply-windows", "an sk_msg verdict that calls bpf_msg_apply_bytes(N) holds for the next N bytes sent and runs again after them (a drop's window is given up by the sends it fails)", checkApplyWindows},
	{"map-bounds", "a sockmap refuses keys at or past its size (insert and delete), as sock_map_update_common and sock_map_delete_elem do", checkMapBounds},
	{"zerocopy-completions", "every MSG_ZEROCOPY send that returns bytes takes one id and is completed exactly once, in contiguous increasing ranges that name no send that never was", checkZerocopy},
	{"so-splice-limits", "a FreeBSD splice moves at most its max, is dissolved by reaching it and only by it, its counter never reports more than it moved, and its idle timeout dissolves it when due, never before", checkSoSplice},
	{"so-splice-conserves", "the bytes a FreeBSD splice source's peer sent leave the source in order, each once, none skipped, between its splices and its reads", checkSpliceConserves},
	{"proxy-parity", "a proxy built four ways (SO_SPLICE, an sk_skb egress redirect, splice(2), read/write) gives its far ends the same results, but for the differences it names: a FIN or RST passed on as EOF by the user-space proxies only", checkProxy},
	{"transparent", "a patch profile gives every receiver the bytes its base profile gives (the patch claims to be invisible to applications)", checkTransparent},
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

// faultViolation turns a model run error into a Violation with the
// fault's kind and site (model.Fault), or kind "model-error".
func faultViolation(err error) *Violation {
	var f *model.Fault
	if errors.As(err, &f) {
		return &Violation{Kind: f.Kind, Site: f.Site, Msg: err.Error()}
	}
	return &Violation{Kind: "model-error", Msg: err.Error()}
}

// runErrors are the model's run errors that properties of their own
// report; checkSound reports every other.
var runErrors = []error{model.ErrLostWakeup, model.ErrLivelock, model.ErrLeak, model.ErrPageOwnership}

// checkSound fails a run that returned an error (the model reports its
// invariant checks and deadlocks that way), except the lost wakeups,
// livelocks, leaks and page faults that properties of their own report.
func checkSound(r *Execution) error {
	if r.Err == nil {
		return nil
	}
	for _, e := range runErrors {
		if errors.Is(r.Err, e) {
			return nil
		}
	}
	v := faultViolation(r.Err)
	v.Msg = "the run failed: " + v.Msg
	return v
}

// failsWith returns a check that fails a run the model stopped with an
// error wrapping target.
func failsWith(target error) func(*Execution) error {
	return func(r *Execution) error {
		if errors.Is(r.Err, target) {
			return faultViolation(r.Err)
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

func checkReference(r *Execution) error {
	if r.Ref == nil && r.RefErr == nil {
		return nil
	}
	if (r.Err == nil) != (r.RefErr == nil) {
		return &Violation{Kind: "run-error", Msg: fmt.Sprintf("run error %v, reference error %v", r.Err, r.RefErr)}
	}
	if divs := trace.Diff(r.Obs, r.Ref); len(divs) > 0 {
		return &Violation{Kind: "differs", Msg: fmt.Sprintf("%d ops differ from the reference, first: %s", len(divs), divs[0])}
	}
	return nil
}

// checkMapBounds: an insert or delete at a key at or past a sockmap's
// size never succeeds (-E2BIG, -EINVAL, or a socket check's error first).
func checkMapBounds(r *Execution) error {
	if len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	size := map[string]int64{}
	for i := range r.Trace.Ops {
		op := &r.Trace.Ops[i]
		res := r.Obs[i].Result
		switch op.Kind {
		case trace.OpMap:
			if op.MapType == trace.SockMap && res.Err == 0 {
				size[op.Map] = op.Size
			}
		case trace.OpInsert, trace.OpDelete:
			if n, ok := size[op.Map]; ok && op.Key >= n && res.Err == 0 && res.Note == "" {
				return violation(op, "key-out-of-range", op.Kind.String(), "%s at key %d of sockmap %s (size %d) succeeded", op.Kind, op.Key, op.Map, n)
			}
		}
	}
	return nil
}

// checkStranded: a recv that returned nothing while the socket's
// ingress_msg or loopback-splice ring held bytes, its stream parser sat
// on a whole message, or its peer held bytes unsent for good
// (model.Stats.Stranded) left them stranded. The site is the queue
// ("ingress_msg", "ring", "strparser/whole-frame" (or
// "strparser/stale-need-bytes" when the parser waits on a need_bytes a
// later read left stale, StrpStaleNeed of model.Stats.Stranded), "peer-write-queue",
// with "/apply" when an sk_msg program applies or corks),
// with "/peek" for a MSG_PEEK recv, "/before-psock" for a recv that began
// before the socket had a psock, "/eof" for one that returned EOF,
// "/unpaired" for a ring whose pair is gone,
// "/rcv-queue" when sk_receive_queue held bytes too on a socket with an
// sk_skb program, and "/verdict" for any other socket in a map with an
// sk_skb program (which receives by tcp_bpf_recvmsg_parser).
func checkStranded(r *Execution) error {
	if r.Stats == nil || len(r.Stats.Stranded) == 0 || len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	rt := routesOf(r.Trace)
	s := r.Stats.Stranded[0]
	op := &r.Trace.Ops[s.Op]
	ahead := overshot(r, op.A) // the function that moved copied_seq past rcv_nxt, if one did
	site, n := "ingress_msg", s.Ingress
	switch {
	case s.Ring > 0:
		site, n = "ring", s.Ring
	case s.Ingress > 0:
	case s.Readable && s.PeerHeld == 0 && !s.StrpStalled:
		site = "sk_receive_queue"
	case s.StrpStalled:
		site = "strparser/whole-frame"
		if s.StrpStaleNeed {
			site = "strparser/stale-need-bytes"
		}
		if ahead != "" {
			site = "strparser/copied-seq-ahead@" + ahead
		}
		return violation(op, "stranded", site, "recv on %s returned %s while its stream parser had a whole message on sk_receive_queue, unparsed, with no parse pending",
			op.A, r.Obs[s.Op].Result)
	default:
		site = "peer-write-queue"
		if msgApplies(r.Trace) {
			site += "/apply"
		}
		return violation(op, "stranded", site, "recv on %s returned %s while its peer held %d bytes unsent, with nothing in flight and the window open (held for a MSG_MORE that never ends)",
			op.A, r.Obs[s.Op].Result, s.PeerHeld)
	}
	res := r.Obs[s.Op].Result
	switch {
	case op.Flags&trace.FlagPeek != 0:
		site += "/peek"
	case s.BeforePsock:
		site += "/before-psock"
	case res.Err == 0 && res.N == 0:
		site += "/eof"
	case s.Ring > 0 && s.Unpaired:
		site += "/unpaired"
	case s.Ring == 0 && s.Paired:
		site += "/paired"
	case s.Ring == 0 && ahead != "":
		site += "/copied-seq-ahead@" + ahead
	case s.Ring == 0 && s.RcvQueue && rt.skb[op.A]:
		site += "/rcv-queue"
	case rt.skb[op.A]:
		site += "/verdict"
	}
	if s.Ingress == 0 && s.Ring == 0 {
		return violation(op, "stranded", site, "recv on %s returned %s while bytes waited at copied_seq in its sk_receive_queue, which it reads itself",
			op.A, r.Obs[s.Op].Result)
	}
	return violation(op, "stranded", site, "recv on %s returned %s while %d bytes waited in its %s",
		op.A, r.Obs[s.Op].Result, n, strings.SplitN(site, "/", 2)[0])
}

// overshot returns the kernel function that moved sock's copied_seq
// past rcv_nxt in the run (model.Stats.Overshoots), "" if none did.
func overshot(r *Execution, sock string) string {
	for _, o := range r.Stats.Overshoots {
		if o.Sock == sock {
			return o.Fn
		}
	}
	return ""
}

// msgApplies reports whether t attaches an sk_msg program that calls
// bpf_msg_apply_bytes or bpf_msg_cork_bytes: tcp_bpf_push then sends the
// part of a scatterlist element it may send with MSG_MORE.
func msgApplies(t *trace.Trace) bool {
	for _, op := range t.Ops {
		if op.Kind == trace.OpProg && op.Prog.Type == trace.SkMsg && (op.Prog.HasApply || op.Prog.HasCork) {
			return true
		}
	}
	return false
}

// impossibleErrnos are errors no op of a trace can get on Linux: every
// buffer a runner passes is its own (no EFAULT), and no device is behind
// a TCP socket (no EIO).
var impossibleErrnos = map[syscall.Errno]bool{syscall.EFAULT: true, syscall.EIO: true}

// checkErrnos: no op failed with an impossible error (errno-contract).
// A socket whose splice the runner cut (it shuts the socket down to end
// the wait, see checkEOF) is not judged after that: the trace no longer
// says what state it is in.
// The site is the op, with "/verdict-gone" for a recv on a socket that
// left every map with an sk_skb program but is still in a map (it keeps
// its psock, and reads by tcp_bpf_recvmsg).
func checkErrnos(r *Execution) error {
	if len(r.Obs) != len(r.Trace.Ops) {
		return nil
	}
	m := newMembership()
	cut := map[string]bool{} // sockets the runner shut down to end a blocked splice
	for i := range r.Trace.Ops {
		op := &r.Trace.Ops[i]
		m.apply(op, r.Obs[i].Result)
		if op.Kind == trace.OpSplice && r.Obs[i].Result.Note != "" {
			cut[op.A] = true
			continue
		}
		if e := r.Obs[i].Result.Err; impossibleErrnos[e] && !cut[op.A] {
			site := op.Kind.String()
			switch {
			case op.Kind == trace.OpRecv && m.skb[op.A] == 0 && m.any[op.A] > 0 && m.hadSkb[op.A]:
				site += "/verdict-gone"
			case op.Kind == trace.OpRecv && m.lateSkb[op.A]:
				site += "/verdict-late"
			}
			return violation(op, "impossible-errno", site, "%s on %s failed with %s", op.Kind, op.A, trace.ErrnoName(e))
		}
	}
	return nil
}

// membership follows which maps each socket is in, op by op.
type membership struct {
	keys     map[string]map[int64]string // map -> key -> socket
	skbMap   map[string]bool             // maps with an sk_skb program
	skb, any map[string]int              // per socket: sk_skb maps and maps it is in
	hadSkb   map[string]bool             // it was in an sk_skb map once
	// lateSkb: it joined an sk_skb map while already in a map without
	// one (its psock's proto was chosen without a verdict).
	lateSkb map[string]bool
}

func newMembership() *membership {
	return &membership{keys: map[string]map[int64]string{}, skbMap: map[string]bool{}, skb: map[string]int{},
		any: map[string]int{}, hadSkb: map[string]bool{}, lateSkb: map[string]bool{}}
}

func (m *membership) apply(op *trace.Op, res trace.Result) {
	if res.Err != 0 || res.Note != "" {
		return
	}
	leave := func(s, mp string) {
		m.any[s]--
		if m.skbMap[mp] {
			m.skb[s]--
		}
	}
	switch op.Kind {
	case trace.OpConn:
		if op.Flags&trace.FlagPair != 0 { // both ends in the pairing program's sockhash, which has no program
			m.any[op.A]++
			m.any[op.B]++
		}
	case trace.OpMap:
		m.keys[op.Map] = map[int64]string{}
	case trace.OpProg:
		if op.Prog.Type == trace.SkSkb {
			m.skbMap[op.Map] = true
			for _, s := range m.keys[op.Map] {
				m.skb[s]++
				m.hadSkb[s] = true
			}
		}
	case trace.OpInsert, trace.OpDelete:
		ks := m.keys[op.Map]
		if ks == nil {
			return
		}
		if old, ok := ks[op.Key]; ok {
			leave(old, op.Map)
			delete(ks, op.Key)
		}
		if op.Kind == trace.OpInsert {
			ks[op.Key] = op.A
			if m.skbMap[op.Map] {
				if m.any[op.A] > 0 && m.skb[op.A] == 0 {
					m.lateSkb[op.A] = true
				}
				m.skb[op.A]++
				m.hadSkb[op.A] = true
			}
			m.any[op.A]++
		}
	}
}
