package trace

import (
	"context"
	"sync"
	"syscall"
	"time"
)

// fakeBackend is an in-memory stand-in for a kernel, for testing the runner
// and the differ only. conn makes two byte queues; send appends to the
// peer's; recv blocks until data, EOF (peer shut down) or its context ends.
// It lives only in tests: the CLI ships no fake.
type fakeBackend struct {
	mu        sync.Mutex
	closed    int           // Close calls
	threads   []string      // StartThread calls
	panicOn   Kind          // panic when executing this kind
	ignoreCtx bool          // recv never returns on ctx done (a stuck backend)
	release   chan struct{} // lets a stuck recv out at the end of a test
	onBlock   func()        // called when a recv first blocks
	// abortShuts makes a recv whose context ends shut its socket down
	// for reading, as the kernel backend's watcher does: other readers
	// of the socket see EOF.
	abortShuts   bool
	slowFIONREAD time.Duration // how long a fionread takes
}

func (f *fakeBackend) Name() string { return "fake" }

func (f *fakeBackend) Run(ctx context.Context, t *Trace, opts Options) (RunResult, error) {
	return RunOps(ctx, f, t, opts)
}

func (f *fakeBackend) Open(ctx context.Context, t *Trace, opts Options) (Executor, error) {
	e := &fakeExec{f: f, peer: map[string]string{}, rq: map[string][]byte{}, eof: map[string]bool{}, blocked: map[string]bool{}, waiting: map[string]string{}}
	e.cond = sync.NewCond(&e.mu)
	return e, nil
}

type fakeExec struct {
	f       *fakeBackend
	mu      sync.Mutex
	cond    *sync.Cond
	peer    map[string]string
	rq      map[string][]byte // receive queue per socket
	eof     map[string]bool
	blocked map[string]bool
	waiting map[string]string // thread -> the socket its recv waits on
}

func (e *fakeExec) StartThread(name string) error {
	e.f.mu.Lock()
	e.f.threads = append(e.f.threads, name)
	e.f.mu.Unlock()
	return nil
}

func (e *fakeExec) Blocked(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.blocked[name]
}

func (e *fakeExec) Close() error {
	e.f.mu.Lock()
	e.f.closed++
	e.f.mu.Unlock()
	return nil
}

func (e *fakeExec) Exec(ctx context.Context, c *Call) Result {
	op := c.Op
	if op.Kind == e.f.panicOn {
		panic("planted panic")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch op.Kind {
	case OpConn:
		e.peer[op.A], e.peer[op.B] = op.B, op.A
	case OpSend:
		p := e.peer[op.A]
		n := 0
		for _, b := range c.Payload() {
			e.rq[p] = append(e.rq[p], b...)
			n += len(b)
		}
		e.cond.Broadcast()
		return Count(int64(n))
	case OpShutdown:
		e.eof[e.peer[op.A]] = true
		e.cond.Broadcast()
	case OpFIONREAD:
		if d := e.f.slowFIONREAD; d > 0 {
			e.mu.Unlock()
			time.Sleep(d)
			e.mu.Lock()
		}
		return Count(int64(len(e.rq[op.A])))
	case OpSleep:
		e.blocked[c.Thread] = true
		e.mu.Unlock()
		select {
		case <-time.After(time.Duration(op.Size) * time.Millisecond):
		case <-ctx.Done():
		}
		e.mu.Lock()
		e.blocked[c.Thread] = false
	case OpRecv:
		if e.f.ignoreCtx {
			e.blocked[c.Thread] = true
			e.mu.Unlock()
			<-e.f.release
			e.mu.Lock()
			return Fail(syscall.EINTR)
		}
		stop := context.AfterFunc(ctx, func() {
			e.mu.Lock()
			e.cond.Broadcast()
			e.mu.Unlock()
		})
		defer stop()
		for len(e.rq[op.A]) == 0 && !e.eof[op.A] {
			if op.Flags&FlagDontwait != 0 {
				return Fail(syscall.EAGAIN)
			}
			if ctx.Err() != nil {
				if e.f.abortShuts {
					// As a kernel wake-up makes its tasks runnable at
					// once, the readers of op.A stop being blocked
					// before this op returns.
					e.eof[op.A] = true
					for th, s := range e.waiting {
						if s == op.A {
							e.blocked[th] = false
						}
					}
					e.cond.Broadcast()
				}
				return Fail(syscall.EINTR)
			}
			e.blocked[c.Thread] = true
			e.waiting[c.Thread] = op.A
			if e.f.onBlock != nil {
				go e.f.onBlock()
			}
			e.cond.Wait()
			e.blocked[c.Thread] = false
			delete(e.waiting, c.Thread)
		}
		n := min(int(op.Size), len(e.rq[op.A]))
		d := append([]byte(nil), e.rq[op.A][:n]...)
		e.rq[op.A] = e.rq[op.A][n:]
		return Count(int64(n)).WithData(d)
	}
	return OK()
}
