package linux

import (
	"slices"
	"strings"

	"github.com/splicecheck/splicecheck/trace"
)

// timeline records a run's events for trace.Options.Timeline: the
// slices of its threads, their ops and sleeps, the kernel contexts the
// scheduler runs, and the lengths of the queues the model keeps, on
// virtual time (trace.Timeline).
//
// The scheduler and the runner call its hooks at the points where
// control moves (sched.run, sched.runKernel, run.runOp, abortStep,
// teardown); every hook is a method that does nothing on a nil
// *timeline, which is what a run without a timeline has, so that the
// kernel-mirror code only carries one call and a run that records
// nothing pays a nil check. The hooks read model state and never
// change it: no reach (coverage), no yield point, no cursor refresh.
//
// Memory: at most headCap+tailCap events are kept; past that the
// first headCap and the last tailCap stay, and an event pushed out of
// the tail only leaves its counter value behind (carry), logged again at
// the gap so that the queues' lengths stay right after it.
type timeline struct {
	k       *kernel
	step    int
	head    []trace.TimelineEvent
	tail    []trace.TimelineEvent // a ring once full: next is its oldest
	next    int
	headCap int
	tailCap int
	dropped int
	// last is each counter's value as last logged; carry the value of
	// each counter whose latest event was pushed out of the tail.
	last  map[counterKey]int64
	carry map[counterKey]int64
}

// counterKey names one queue of one object: a counter series.
type counterKey struct{ obj, queue string }

// timelineCap bounds the events of one run's log (about 100 bytes
// each): the minimized counterexamples it is for have a few hundred;
// a livelock that yields 400,000 times keeps its first and last ones.
const timelineCap = 20000

// newTimeline returns a recorder for k's run that keeps at most
// capacity events, a quarter of them from the start of the run.
func newTimeline(k *kernel, capacity int) *timeline {
	return &timeline{k: k, headCap: capacity / 4, tailCap: capacity - capacity/4,
		last: map[counterKey]int64{}, carry: map[counterKey]int64{}}
}

// The hooks. Each is inlined where it is called: a nil check, and the
// recording out of line (record, marked noinline so that no hook grows
// past the inliner's budget).

// slice: the scheduler gives t the CPU.
func (tl *timeline) slice(t *task) {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventRun}, t, nil, nil)
	}
}

// parked: t gave the CPU back (it sleeps, yields, or ended its op).
func (tl *timeline) parked(t *task) {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventPark}, t, nil, nil)
	}
}

// opStart: t starts op i.
func (tl *timeline) opStart(t *task, i int) {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventOpStart, Op: i}, t, nil, nil)
	}
}

// opEnd: t's op i returned res.
func (tl *timeline) opEnd(t *task, i int, res *trace.Result) {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventOpEnd, Op: i}, t, nil, res)
	}
}

// kernelStart: kernel context w starts, on the system call of on (nil:
// on the scheduler).
func (tl *timeline) kernelStart(w *kwork, on *task) {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventKernelStart}, on, w, nil)
	}
}

// kernelEnd: kernel context w returned (or panicked).
func (tl *timeline) kernelEnd(w *kwork) {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventKernelEnd}, nil, w, nil)
	}
}

// abortStart and abortEnd bracket a step of the runner's op-timeout
// escalation of t's op: a kernel context of the runner's.
func (tl *timeline) abortStart(t *task) {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventKernelStart}, nil, &kwork{name: "op timeout of " + t.Name, abort: true}, nil)
	}
}

func (tl *timeline) abortEnd(t *task) {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventKernelEnd}, nil, &kwork{name: "op timeout of " + t.Name, abort: true}, nil)
	}
}

// teardownStart and teardownEnd bracket the cleanup after the trace
// (run.teardown).
func (tl *timeline) teardownStart() {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventKernelStart}, nil, &teardownWork, nil)
	}
}

func (tl *timeline) teardownEnd() {
	if tl != nil {
		tl.record(trace.TimelineEvent{Kind: trace.EventKernelEnd}, nil, &teardownWork, nil)
	}
}

// teardownWork names the teardown on the timeline: it is no kwork.
var teardownWork = kwork{name: "close every descriptor, run what is pending", teardown: true}

// fault: the run fails with err here.
func (tl *timeline) fault(err error) {
	if tl != nil && err != nil {
		tl.emit(trace.TimelineEvent{Kind: trace.EventFault, Name: err.Error()})
	}
}

// record logs ev (its Kind, and Op for an op) of thread t (for a kernel
// context, the thread whose system call runs it, or nil), of kernel
// context w, with result res (EventOpEnd). After every event that ends
// something the queues are sampled.
//
//go:noinline
func (tl *timeline) record(ev trace.TimelineEvent, t *task, w *kwork, res *trace.Result) {
	switch ev.Kind {
	case trace.EventKernelStart, trace.EventKernelEnd:
		ev.Lane, ev.Name = kernelLane(w), w.name
		if t != nil {
			ev.On = t.Name
		}
	case trace.EventPark:
		ev.Lane, ev.Name = t.Name, parkReason(t)
	case trace.EventOpStart, trace.EventOpEnd:
		ev.Lane = t.Name
		if res != nil {
			ev.Name = res.String()
		}
	default:
		ev.Lane = t.Name
	}
	tl.emit(ev)
	if ev.Kind != trace.EventRun && ev.Kind != trace.EventKernelStart {
		tl.sample()
	}
}

// kernelLane is the kind of kernel context w is: the runner's op
// timeout, the teardown, softirq work (and a segment a held transport
// delivers), the stream parser's work and timer, a timer, else a
// kworker's work (the psock backlog, RCU releases, a delayed work).
func kernelLane(w *kwork) string {
	switch {
	case w.abort:
		return "runner"
	case w.teardown:
		return "teardown"
	case w.softirq || w.name == "segment_deliver":
		return "softirq"
	case strings.HasPrefix(w.name, "strp_"):
		return "strparser"
	case w.settleTimer || w.due != 0 && !w.boundary:
		return "timer"
	}
	return "kworker"
}

// parkReason says why t gave the CPU back: it sleeps (in the kernel
// function its wait names), yields (an exploring schedule's yield
// point), or "" when its op ended.
func parkReason(t *task) string {
	switch {
	case t.w != nil && t.w.what != "":
		return "sleeps in " + t.w.what
	case t.w != nil:
		return "sleeps"
	case t.running && !t.dead:
		return "yields"
	}
	return ""
}

// emit logs ev at the next step (a counter: at the current one) and the
// run's virtual time.
func (tl *timeline) emit(ev trace.TimelineEvent) {
	if ev.Kind == trace.EventCounter {
		ev.Step = max(tl.step-1, 0)
	} else {
		ev.Step = tl.step
		tl.step++
	}
	ev.At = tl.k.s.Now()
	if len(tl.head) < tl.headCap {
		tl.head = append(tl.head, ev)
		return
	}
	if len(tl.tail) < tl.tailCap {
		tl.tail = append(tl.tail, ev)
		return
	}
	old := tl.tail[tl.next]
	if old.Kind == trace.EventCounter {
		tl.carry[counterKey{old.Lane, old.Name}] = old.Value
	}
	tl.dropped++
	tl.tail[tl.next] = ev
	tl.next = (tl.next + 1) % tl.tailCap
}

// sample logs the queues whose lengths changed since they were last
// logged: per socket in connection order, its sk_receive_queue, its
// psock's ingress_skb and ingress_msg, its splice pipe (bytes), its
// psock's references (0 without one: a teardown leak shows as a count
// that never drops), and the four cursors of the loopback-splice ring
// it reads.
func (tl *timeline) sample() {
	for _, sk := range tl.k.sockSeq {
		n := 0
		for _, skb := range sk.SkReceiveQueue.all() {
			n += skb.Len
		}
		tl.counter(sk.Name, "sk_receive_queue", int64(n))
		if p := sk.SkUserData; p != nil {
			n = 0
			for _, skb := range p.IngressSkb.all() {
				n += skb.Len
			}
			tl.counter(sk.Name, "ingress_skb", int64(n))
			tl.counter(sk.Name, "ingress_msg", int64(p.MsgTotLen))
			tl.counter(sk.Name, "psock refcnt", int64(p.Refcnt))
		} else {
			tl.counter(sk.Name, "psock refcnt", 0)
		}
		if sk.pipe != nil {
			tl.counter(sk.Name, "pipe", int64(sk.pipe.Bytes()))
		}
	}
	for _, sp := range tl.k.splice.all {
		if sp.Ring == nil || sp.freed || sp.Psock == nil || sp.Psock.Sk == nil {
			continue
		}
		c, name := sp.Ring.Cursors(), sp.Psock.Sk.Name
		tl.counter(name, "ring head", int64(c.Head))
		tl.counter(name, "ring tail", int64(c.Tail))
		tl.counter(name, "ring cached_tail", int64(c.CachedTail))
		tl.counter(name, "ring cached_head", int64(c.CachedHead))
	}
}

// counter logs queue of obj at v if that differs from its last value
// (a series that was never logged counts as 0).
func (tl *timeline) counter(obj, queue string, v int64) {
	key := counterKey{obj, queue}
	if last, ok := tl.last[key]; ok && last == v || !ok && v == 0 {
		return
	}
	tl.last[key] = v
	tl.emit(trace.TimelineEvent{Kind: trace.EventCounter, Lane: obj, Name: queue, Value: v})
}

// finish returns the log (nil without a recorder): the head, then, if
// events were dropped, the counters they carried, then the tail.
func (tl *timeline) finish() *trace.Timeline {
	if tl == nil {
		return nil
	}
	out := &trace.Timeline{Steps: tl.step, Events: slices.Clone(tl.head)}
	tail := append(slices.Clone(tl.tail[tl.next:]), tl.tail[:tl.next]...)
	if tl.dropped > 0 {
		out.Dropped, out.Gap = tl.dropped, len(out.Events)
		keys := make([]counterKey, 0, len(tl.carry))
		for k := range tl.carry {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b counterKey) int {
			return strings.Compare(a.obj+"\x00"+a.queue, b.obj+"\x00"+b.queue)
		})
		for _, k := range keys {
			out.Events = append(out.Events, trace.TimelineEvent{Step: tail[0].Step, At: tail[0].At, Kind: trace.EventCounter,
				Lane: k.obj, Name: k.queue, Value: tl.carry[k]})
		}
	}
	out.Events = append(out.Events, tail...)
	return out
}
