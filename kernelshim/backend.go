package kernelshim

import (
	"context"
	"fmt"
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
}

var _ trace.Backend = (*Backend)(nil)

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

// Open prepares one run of t: it checks privileges (errors wrap
// ErrNoPrivilege or ErrNoBPF) and creates the run's network namespace with
// loopback up. The profile in opts does not change what the kernel does:
// the live kernel is the authority for its own behaviour, whatever the
// trace names.
func (b *Backend) Open(ctx context.Context, t *trace.Trace, opts trace.Options) (trace.Executor, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	ns, err := newNetns()
	if err != nil {
		return nil, err
	}
	return newExecutor(b.cfg, t, ns), nil
}
