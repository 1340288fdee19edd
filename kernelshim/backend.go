package kernelshim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Config tunes the kernel backend. The zero value is the default.
type Config struct {
	// SettleWindow is how long the observable state of a run (every
	// socket's poll mask and FIONREAD, the namespace's /proc/net/tcp, and
	// the scheduler state of every thread blocked in an op) must stay
	// unchanged after an op before the op returns. It lets work the op set
	// off asynchronously in the kernel (loopback softirq, psock backlog
	// work, strparser work, wakeups of blocked threads) finish first, so
	// that the next op sees the same state on every run. Zero means
	// DefaultSettleWindow.
	SettleWindow time.Duration
	// SettleMax bounds the wait for a settled state (a thread copying a
	// gigabyte keeps changing it). Zero means DefaultSettleMax.
	SettleMax time.Duration

	// testPairKind, when set, replaces the kernel's pairing kfunc
	// detection (tests use pairProbe).
	testPairKind pairKind

	// testHook, when set, is called at the start of every Exec (tests use
	// it to inject panics).
	testHook func(c *trace.Call)
}

// Defaults of Config.
const (
	DefaultSettleWindow = 1 * time.Millisecond
	DefaultSettleMax    = 100 * time.Millisecond
)

// Backend is the `kernel` backend: every trace op runs on this machine's
// kernel, in a fresh network namespace per trace, the way a C test in
// tools/testing/selftests/bpf would run it. It is safe for concurrent use;
// every Open is independent.
type Backend struct {
	cfg Config

	pairOnce sync.Once
	pairSup  pairSupport
}

// pairSupport detects the pairing kfunc once per backend (detectPair).
func (b *Backend) pairSupport() pairSupport {
	b.pairOnce.Do(func() {
		if b.cfg.testPairKind != pairNone {
			b.pairSup = pairSupport{kind: b.cfg.testPairKind}
			return
		}
		b.pairSup = detectPair()
	})
	return b.pairSup
}

var (
	_ trace.Backend = (*Backend)(nil)
	_ trace.Opener  = (*Backend)(nil)
)

// New returns the kernel backend. It does not touch the kernel; Open checks
// privileges (see Available).
func New(cfg Config) *Backend {
	if cfg.SettleWindow <= 0 {
		cfg.SettleWindow = DefaultSettleWindow
	}
	if cfg.SettleMax <= 0 {
		cfg.SettleMax = DefaultSettleMax
	}
	return &Backend{cfg: cfg}
}

// Name returns "kernel".
func (b *Backend) Name() string { return "kernel" }

// Run runs t op by op (trace.RunOps) on executors Open prepares.
func (b *Backend) Run(ctx context.Context, t *trace.Trace, opts trace.Options) (trace.RunResult, error) {
	return trace.RunOps(ctx, b, t, opts)
}

// Open prepares one run of t: it checks privileges (errors wrap
// ErrNoPrivilege or ErrNoBPF) and creates the run's network namespace with
// loopback up. For a trace with a `conn A B pair` it also detects the
// pairing kfunc (once per backend) and, when there is one, sets the run's
// pairing up (pair.go): loading BTF and the program takes a second or two
// under QEMU TCG, which would eat the op's timeout if the conn did it. The profile in opts does not change what the kernel does:
// the live kernel is the authority for its own behaviour, whatever the
// trace names.
func (b *Backend) Open(ctx context.Context, t *trace.Trace, opts trace.Options) (trace.Executor, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	var pair *pairer
	if pairs(t) {
		if sup := b.pairSupport(); sup.kind != pairNone {
			var err error
			if pair, err = newPairer(sup); err != nil {
				return nil, err
			}
		}
	}
	ns, err := newNetns()
	if err != nil {
		if pair != nil {
			pair.close()
		}
		return nil, err
	}
	return newExecutor(b.cfg, opts, t, ns, pair), nil
}

// pairs reports whether t has a `conn A B pair`.
func pairs(t *trace.Trace) bool {
	for i := range t.Ops {
		if op := &t.Ops[i]; op.Kind == trace.OpConn && op.Flags&trace.FlagPair != 0 {
			return true
		}
	}
	return false
}
