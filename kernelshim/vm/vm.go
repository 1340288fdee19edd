package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Sentinel errors; match with errors.Is.
var (
	ErrNoRunner   = errors.New("vm runner not available")
	ErrBadImage   = errors.New("kernel image does not boot")
	ErrPanic      = errors.New("guest kernel panicked")
	ErrHung       = errors.New("guest hung")
	ErrNoSockmap  = errors.New("guest kernel has no sockmap support")
	ErrGuest      = errors.New("guest failed")
	ErrTransport  = errors.New("guest output damaged")
	ErrBadBinary  = errors.New("guest binary unusable")
	ErrBadRunner  = errors.New("unknown vm runner")
	ErrModule     = errors.New("kernel module does not load")
	ErrClosed     = errors.New("vm session closed")
	errGuestFault = errors.New("planted guest fault")
)

// Runner names how the VM is started.
const (
	RunnerQEMU = "qemu"
	RunnerVng  = "vng"
)

// Config describes one VM run.
type Config struct {
	Kernel      string        // kernel image (bzImage/vmlinuz)
	Runner      string        // RunnerQEMU (default) or RunnerVng
	GuestBinary string        // static splicecheck binary run in the guest
	Timeout     time.Duration // Run: wall-clock limit for the whole run; 0 = 5 min
	Idle        time.Duration // Run: limit with no guest output once the guest said hello (the boot has only Timeout); Session: see bootLimit; 0 = 60 s
	Memory      int           // MiB; 0 = 4096 (with 1 GiB, tcp_mem, sized from RAM, cuts sends short a host would take whole)
	CPUs        int           // 0 = 2
	OpTimeout   time.Duration // per-op timeout inside the guest; 0 = trace default
	TimeScale   int           // trace.Options.TimeScale inside the guest; 0 = real time
	QEMU        string        // QEMU binary; "" = qemu-system-x86_64
	Vng         string        // vng binary; "" = vng
	// Progress, if set, is called by Run (on its own goroutine) when the
	// guest says hello (ran 0) and after each trace's result, with the
	// traces reported so far and the time since QEMU started.
	Progress func(ran int, elapsed time.Duration)
	// Modules are kernel modules (.ko files) the guest loads with
	// finit_module, in this order, before it runs any trace.
	Modules []string
	// TraceTimeout bounds one trace's round trip through a Session's
	// guest, from the request to its result; past it the guest is
	// deemed hung, killed, and booted again for the next trace. 0 = a
	// minute plus twice the per-op timeout for each op.
	TraceTimeout time.Duration
	// Repro runs each trace of Run as its C reproducer
	// (kernelshim/repro), compiled -static on the host and carried in
	// the initramfs: the observations are what the C program printed,
	// a recording. Run only (the qemu runner).
	Repro bool

	// fault plants a guest failure ("panic", "hang", "nosockmap")
	// through the kernel command line; tests only.
	fault string
}

func (c Config) withDefaults() Config {
	if c.Runner == "" {
		c.Runner = RunnerQEMU
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.Idle <= 0 {
		c.Idle = 60 * time.Second
	}
	if c.Memory <= 0 {
		c.Memory = 4096
	}
	if c.CPUs <= 0 {
		c.CPUs = 2
	}
	if c.QEMU == "" {
		c.QEMU = "qemu-system-x86_64"
	}
	if c.Vng == "" {
		c.Vng = "vng"
	}
	return c
}

// progress calls Progress, if set.
func (c Config) progress(ran int, start time.Time) {
	if c.Progress != nil {
		c.Progress(ran, time.Since(start))
	}
}

// TraceRun is one trace's outcome in the guest.
type TraceRun struct {
	File string
	Obs  []trace.Observation
	Err  string // the guest could not run the trace at all
	// Warnings are what the guest's kernel logged as a warning or a bug
	// while the trace ran (a WARN splat, "TCP recvmsg seq # bug", ...),
	// each as its message; nil when it logged none (or the guest could
	// not read /dev/kmsg).
	Warnings []string
}

// Result is what a VM run brought back.
type Result struct {
	Release     string        // the guest's uname -r
	Accel       string        // "kvm" or "tcg" (qemu runner)
	Modules     []string      // loaded in the guest (/proc/modules), oldest first
	BootToFirst time.Duration // from QEMU start to the first trace result
	Total       time.Duration // from QEMU start to the end of the run
	Runs        []TraceRun
}

// Run boots cfg.Kernel, runs the traces at paths in the guest and returns
// their observations in order. When ctx ends first, Run returns, with an
// error wrapping ctx's, the Result of the traces the guest had reported
// (Runs holds fewer than len(paths)), or nil if it had reported none of
// them before the guest said hello.
func Run(ctx context.Context, cfg Config, paths []string) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := checkInputs(cfg, paths); err != nil {
		return nil, err
	}
	switch cfg.Runner {
	case RunnerQEMU:
		return runQEMU(ctx, cfg, paths)
	case RunnerVng:
		if cfg.Repro {
			return nil, fmt.Errorf("--runner vng: %w: C reproducers run under the qemu runner only", ErrBadRunner)
		}
		return runVng(ctx, cfg, paths)
	}
	return nil, fmt.Errorf("--runner %q: %w (want qemu or vng)", cfg.Runner, ErrBadRunner)
}

func checkInputs(cfg Config, paths []string) error {
	if err := checkMachine(cfg); err != nil {
		return err
	}
	if len(paths) == 0 {
		return errors.New("no trace files given")
	}
	return nil
}

// checkMachine checks what a boot needs from the host before anything
// starts: the image, the guest binary and the modules.
func checkMachine(cfg Config) error {
	st, err := os.Stat(cfg.Kernel)
	if err != nil {
		return fmt.Errorf("--kernel: %w", err)
	}
	if st.IsDir() || st.Size() < 4096 {
		return fmt.Errorf("--kernel %s: %w: not a kernel image (%d bytes)", cfg.Kernel, ErrBadImage, st.Size())
	}
	if err := checkStatic(cfg.GuestBinary); err != nil {
		return err
	}
	return checkModules(cfg.Modules)
}

// DefaultKernel returns SPLICECHECK_VM_KERNEL, else the newest Debian 6.1
// kernel in /boot (what `make vm-test` installs), else "".
func DefaultKernel() string {
	if k := os.Getenv("SPLICECHECK_VM_KERNEL"); k != "" {
		return k
	}
	m, _ := filepath.Glob("/boot/vmlinuz-6.1.*")
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}

// ansiRE matches the terminal escape sequences firmware writes to the console.
var ansiRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|c)`)

// consoleTail keeps the last lines of the guest console for error reports.
type consoleTail struct {
	lines []string
	max   int
}

func (c *consoleTail) add(line string) {
	line = ansiRE.ReplaceAllString(line, "")
	line = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, line))
	if line == "" {
		return
	}
	c.lines = append(c.lines, line)
	if len(c.lines) > c.max {
		c.lines = c.lines[len(c.lines)-c.max:]
	}
}

// String joins the tail on one line.
func (c *consoleTail) String() string {
	if len(c.lines) == 0 {
		return "(no console output)"
	}
	return strings.Join(c.lines, " | ")
}

// panicLine returns the kernel's panic message in the console, if any.
func panicLine(lines []string) string {
	for _, l := range lines {
		if i := strings.Index(l, "Kernel panic - not syncing"); i >= 0 {
			return l[i:]
		}
	}
	return ""
}

func absPaths(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}
