package kernelshim

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicecheck/splicecheck/trace"
)

// phase is what a trace thread is doing, for Blocked and settle.
type phase int32

const (
	phaseIdle    phase = iota // between ops
	phaseBusy                 // in an op, not in a syscall that may wait for another thread
	phaseSyscall              // in a syscall that may block (thread.sysno)
	phaseSleep                // in `sleep`
	phaseGoWait               // in iocopy, whose goroutine may park in Go's netpoller
	phaseSettle               // waiting for the run to settle after its op
)

// thread is one trace thread: a goroutine locked to the OS thread tid for
// the whole run. It is inside the run's network namespace from the start of
// its first op to the end of its last (see Exec).
type thread struct {
	name  string
	tid   int
	phase atomic.Int32
	sysno atomic.Int64 // the blocking syscall of phaseSyscall

	// Blocked's view of an iocopy's parked goroutine.
	parkMu     sync.Mutex
	parkPcount int64     // LOCKING: parkMu
	parkSince  time.Time // LOCKING: parkMu

	origNS int  // fd of the namespace the thread started in; -1 once closed (LOCKING: e.mu)
	inNS   bool // the thread is in the run's namespace (used only by the thread)
}

func (th *thread) set(p phase) { th.phase.Store(int32(p)) }
func (th *thread) get() phase  { return phase(th.phase.Load()) }

// enterSyscall marks th as about to make syscall nr, which may block; the
// caller returns th to phaseBusy when the syscall returns.
func (th *thread) enterSyscall(nr int) {
	th.sysno.Store(int64(nr))
	th.set(phaseSyscall)
}

// sock is a trace socket. fd is -1 once the trace closed it: every later
// op on it returns -EBADF. The pipe is the socket's own splice pipe,
// created on first use.
type sock struct {
	name         string
	fd           int
	pipeR, pipeW int
	rcvtimeo     time.Duration // last `set S rcvtimeo`, for iocopy
}

// sockMap is a trace map and the programs attached to it.
type sockMap struct {
	name  string
	typ   trace.MapType
	fd    int // -1 when `map` failed
	progs []attached
}

// executor runs one trace. Its state is guarded by mu; no lock is held
// across a syscall that may block, and a socket's fd is closed only under
// mu, so code holding mu may use any open fd without it being reused.
type executor struct {
	cfg  Config
	opts trace.Options // TimeScale stretches the trace's durations (opts.Scale)
	t    *trace.Trace
	ns   *netns

	mu      sync.Mutex
	threads map[string]*thread
	socks   map[string]*sock
	maps    map[string]*sockMap
	copies  map[*ioCopy]struct{} // iocopies in flight
	goHolds map[string]*goHold   // per socket, the iocopies that hold it non-blocking
	pair    *pairer              // nil unless the trace pairs and the kernel can
	fatal   error                // first internal failure; Close returns it
	closed  bool

	lastExec map[string]int // per thread, the index of its last op the runner passes to Exec
}

var _ trace.Executor = (*executor)(nil)

func newExecutor(cfg Config, opts trace.Options, t *trace.Trace, ns *netns, pair *pairer) *executor {
	return &executor{
		cfg: cfg, opts: opts, t: t, ns: ns, pair: pair,
		threads: map[string]*thread{},
		socks:   map[string]*sock{},
		maps:    map[string]*sockMap{},
		copies:  map[*ioCopy]struct{}{},
		goHolds: map[string]*goHold{},

		lastExec: lastExecs(t),
	}
}

// lastExecs returns, per thread, the index of its last op other than join
// (the runner handles join itself).
func lastExecs(t *trace.Trace) map[string]int {
	last := map[string]int{}
	for i := range t.Ops {
		if op := &t.Ops[i]; op.Kind != trace.OpJoin {
			last[op.ThreadName()] = i
		}
	}
	return last
}

// StartThread records the calling OS thread's id (for Blocked) and keeps
// an fd to its current network namespace, to return to after its last op.
// The thread enters the run's namespace lazily, in its first Exec.
func (e *executor) StartThread(name string) error {
	orig, err := currentNetns()
	if err != nil {
		return err
	}
	th := &thread{name: name, tid: unix.Gettid(), origNS: orig}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		unix.Close(orig)
		return fmt.Errorf("%w: StartThread after Close", ErrInternal)
	}
	e.threads[name] = th
	return nil
}

// leaveNetns returns th to the namespace it started in (setns(2)).
func (e *executor) leaveNetns(th *thread) {
	e.mu.Lock()
	orig := th.origNS
	e.mu.Unlock()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread stays in the run's namespace; the runner never
		// unlocks it, so it dies with the run.
		e.setFatal(fmt.Errorf("%w: thread %s: setns back: %w", ErrNetns, th.name, err))
		return
	}
	th.inNS = false
}

// setFatal records an internal failure; Close returns it, so the run fails
// instead of recording a wrong observation.
func (e *executor) setFatal(err error) {
	e.mu.Lock()
	if e.fatal == nil {
		e.fatal = err
	}
	e.mu.Unlock()
}

// internal reports an internal failure of op c and returns a placeholder
// result (the run fails anyway).
func (e *executor) internal(c *trace.Call, err error) trace.Result {
	e.setFatal(fmt.Errorf("%s:%d: %s: %w", e.t.File, c.Op.Pos.Line, c.Op, err))
	return trace.Fail(syscall.EIO)
}

// Exec runs one op on the calling thread, then waits until the run has
// settled (see Config.SettleWindow) unless ctx ended.
//
// The thread enters the run's network namespace (setns(2)) before its
// first op, and leaves it again after its last op, after an op that timed
// out (the runner may abandon the run) and when the op panics. So no
// thread is left in the namespace whatever happens to the run: the runner
// never unlocks its threads, and a locked goroutine that ends on the
// process's main thread wedges that thread for good instead of ending it.
func (e *executor) Exec(ctx context.Context, c *trace.Call) trace.Result {
	e.mu.Lock()
	th := e.threads[c.Thread]
	e.mu.Unlock()
	if th == nil {
		return e.internal(c, fmt.Errorf("%w: Exec on thread %q before StartThread", ErrInternal, c.Thread))
	}
	if !th.inNS {
		if err := e.ns.enter(); err != nil {
			return e.internal(c, err)
		}
		th.inNS = true
	}
	completed := false
	defer func() {
		if th.inNS && (!completed || ctx.Err() != nil || c.Index == e.lastExec[c.Thread]) {
			e.leaveNetns(th)
		}
		th.set(phaseIdle)
		e.mu.Lock()
		if e.closed && th.origNS >= 0 {
			// Close ran while this op was stuck; it left the fd to us.
			unix.Close(th.origNS)
			th.origNS = -1
		}
		e.mu.Unlock()
	}()
	th.set(phaseBusy)
	if e.cfg.testHook != nil {
		e.cfg.testHook(c)
	}
	res := e.do(ctx, th, c)
	switch {
	case ctx.Err() == nil:
		th.set(phaseSettle)
		e.settle(ctx, th)
	case errors.Is(context.Cause(ctx), trace.ErrOpTimeout):
		// The op's abort (a shutdown) may have woken other threads: they
		// must be seen running before the runner times out the next op.
		th.set(phaseSettle)
		e.settle(context.WithoutCancel(ctx), th)
	}
	completed = true
	return res
}

// do dispatches one op.
func (e *executor) do(ctx context.Context, th *thread, c *trace.Call) trace.Result {
	op := c.Op
	switch op.Kind {
	case trace.OpConn:
		return e.conn(ctx, th, c)
	case trace.OpMap:
		return e.newMap(op)
	case trace.OpProg:
		return e.prog(c)
	case trace.OpInsert:
		return e.insert(op)
	case trace.OpDelete:
		return e.delete(op)
	case trace.OpPair:
		// bpf_sock_splice_pair exists only with Cong Wang's loopback-splice
		// RFC applied; mainline kernels have no such operation.
		return trace.Fail(syscall.EOPNOTSUPP)
	case trace.OpSend:
		return e.send(ctx, th, op, c.Payload())
	case trace.OpRecv:
		return e.recv(ctx, th, op)
	case trace.OpSplice:
		return e.splice(ctx, th, op)
	case trace.OpPipe:
		return e.readPipe(op)
	case trace.OpIOCopy:
		return e.iocopy(ctx, th, c)
	case trace.OpFIONREAD:
		return e.fionread(op)
	case trace.OpPoll:
		return e.poll(op)
	case trace.OpState:
		return e.state(op)
	case trace.OpShutdown:
		return e.shutdown(op)
	case trace.OpClose:
		return e.close(op)
	case trace.OpSet:
		return e.set(op)
	case trace.OpSleep:
		return e.sleep(ctx, th, op)
	case trace.OpErrqueue:
		return e.errqueue(op)
	case trace.OpSosplice, trace.OpUnsplice, trace.OpGetsplice:
		return e.soSplice(op)
	}
	return e.internal(c, fmt.Errorf("%w: op kind %v not executable", ErrInternal, op.Kind))
}

// sleep blocks its thread for the op's milliseconds; Blocked reports it
// blocked throughout, since only time can end it.
func (e *executor) sleep(ctx context.Context, th *thread, op *trace.Op) trace.Result {
	th.set(phaseSleep)
	defer th.set(phaseBusy)
	t := time.NewTimer(e.opts.Scale(time.Duration(op.Size) * time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
		return trace.OK()
	case <-ctx.Done():
		return trace.RunnerTimeout()
	}
}

// Close releases everything the run created, on every exit path: iocopy
// connections, sockets (closed with SO_LINGER{1,0}, so that no orphan
// outlives the run, after a shutdown(SHUT_RDWR) that wakes any thread
// still blocked on them), pipes, programs (detached, then closed), maps
// and the namespace fd. It returns the first internal failure of the run
// joined with any cleanup failure.
func (e *executor) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("%w: Close called twice", ErrInternal)
	}
	e.closed = true
	errs := []error{e.fatal}
	stuck := false
	for _, th := range e.threads {
		if th.get() != phaseIdle {
			stuck = true
		}
	}
	for c := range e.copies {
		c.abort()
	}
	for _, name := range sortedKeys(e.socks) {
		s := e.socks[name]
		if stuck && s.fd >= 0 {
			unix.Shutdown(s.fd, unix.SHUT_RDWR)
		}
		if err := s.closeAll(true); err != nil {
			errs = append(errs, fmt.Errorf("%w: close socket %s: %w", ErrCleanup, name, err))
		}
	}
	for _, name := range sortedKeys(e.maps) {
		m := e.maps[name]
		if m.fd < 0 {
			continue
		}
		if err := detachAll(m.fd, m.progs); err != nil {
			errs = append(errs, fmt.Errorf("map %s: %w", name, err))
		}
		m.progs = nil
		if err := unix.Close(m.fd); err != nil {
			errs = append(errs, fmt.Errorf("%w: close map %s: %w", ErrCleanup, name, err))
		}
		m.fd = -1
	}
	if e.pair != nil {
		errs = append(errs, e.pair.close())
		e.pair = nil
	}
	for _, th := range e.threads {
		if th.get() == phaseIdle {
			unix.Close(th.origNS)
			th.origNS = -1
		} // else a stuck op's thread still needs it; it closes it itself
	}
	errs = append(errs, e.ns.close())
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// retryEINTR calls f until it fails with something other than EINTR. A
// signal delivered to a thread blocked in a syscall (Go's runtime sends
// some) must not surface as an observation; EAGAIN is never retried.
func retryEINTR(f func() error) error {
	for {
		err := f()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
