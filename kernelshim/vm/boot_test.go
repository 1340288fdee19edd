package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/internal/testenv"
)

// Booting tests need QEMU and a kernel image: the Debian 6.1 kernel that
// `make vm-test` installs, or SPLICECHECK_VM_KERNEL. They skip with one line
// when either is missing, and fail instead under SPLICECHECK_REQUIRE_KERNEL=1.

func requireVM(t *testing.T) (kernel string) {
	t.Helper()
	miss := func(why string) {
		testenv.Unavailable(t, "VM test: "+why+" (make vm-deps installs it)")
	}
	if testing.Short() {
		t.Skip("boots a VM")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		miss("qemu-system-x86_64 not installed")
	}
	kernel = DefaultKernel()
	if kernel == "" {
		miss("no kernel image (/boot/vmlinuz-6.1* or SPLICECHECK_VM_KERNEL)")
	}
	return kernel
}

var (
	guestOnce sync.Once
	guestBin  string
	guestErr  error
)

// guestBinary builds the static splicecheck binary once per test run.
func guestBinary(t *testing.T) string {
	t.Helper()
	guestOnce.Do(func() {
		dir, err := os.MkdirTemp("", "splicecheck-vmtest-")
		if err != nil {
			guestErr = err
			return
		}
		guestBin = filepath.Join(dir, "splicecheck")
		cmd := exec.Command("go", "build", "-o", guestBin, "../../cmd/splicecheck")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			guestErr = errors.New(string(out))
		}
	})
	if guestErr != nil {
		t.Fatalf("build guest binary: %v", guestErr)
	}
	return guestBin
}

// TestMain gives the tests a temp dir of their own, so that the leftover
// check sees only this process's VM dirs, not those of runs beside it
// (another package's tests, a user's splicecheck vm), and runs that
// check once every test has ended: the booting tests run in parallel
// (a TCG boot on a loaded 2-core machine takes a minute or two, and
// eight of them one after another overran go test's 10 minutes), so one
// test's QEMU is not another's leftover.
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "splicecheck-vmpkg-")
	if err == nil {
		os.Setenv("TMPDIR", tmp)
	}
	code := m.Run()
	if err == nil {
		for _, l := range leftovers() {
			fmt.Fprintln(os.Stderr, "FAIL: left behind by the tests:", l)
			code = max(code, 1)
		}
	}
	if guestBin != "" {
		os.RemoveAll(filepath.Dir(guestBin))
	}
	if err == nil {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// leftovers lists the QEMU processes and VM temp dirs that outlived
// the tests.
func leftovers() []string {
	var out []string
	// Only this process's children: QEMUs of other runs are not ours.
	ps, _ := exec.Command("pgrep", "-P", strconv.Itoa(os.Getpid()), "-f", "qemu-system-x86_64.*SPLICECHECK_GUEST").Output()
	if s := strings.TrimSpace(string(ps)); s != "" {
		out = append(out, "QEMU processes "+s)
	}
	for d := range vmTempDirs() {
		out = append(out, "temp dir "+d)
	}
	return out
}

func vmTempDirs() map[string]bool {
	m, _ := filepath.Glob(filepath.Join(os.TempDir(), "splicecheck-vm-*"))
	out := map[string]bool{}
	for _, d := range m {
		out[d] = true
	}
	return out
}

func oneTrace(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "one.trace")
	os.WriteFile(p, []byte("conn a b\nsend a \"hi\"\nrecv b 2\n"), 0o644)
	return p
}

func checkOneLine(t *testing.T, err error, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	t.Logf("%v", err)
}

// bootTimeout is the wall-clock limit of the booting tests' runs, which
// assert the kind of failure, not its speed: it only stops a test that
// would otherwise hang, and it must not fire first on a slow boot.
const bootTimeout = 8 * time.Minute

func TestBootCorruptImage(t *testing.T) {
	requireVM(t)
	t.Parallel()
	img := writeJunk(t, 1<<20)
	_, err := Run(t.Context(), Config{Kernel: img, GuestBinary: guestBinary(t), Timeout: bootTimeout}, []string{oneTrace(t)})
	checkOneLine(t, err, ErrBadImage)
}

func TestBootGuestPanics(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel()
	_, err := Run(t.Context(), Config{Kernel: kernel, GuestBinary: guestBinary(t), Timeout: bootTimeout, fault: "panic"}, []string{oneTrace(t)})
	checkOneLine(t, err, ErrPanic)
	if !strings.Contains(err.Error(), "Kernel panic - not syncing") {
		t.Errorf("panic message missing: %v", err)
	}
}

// A guest that stops talking after hello is caught by the idle limit,
// not by the (much longer) wall-clock limit. The error says which fired:
// how long a boot takes on a busy machine is not the test's business, and
// the idle limit runs only from the hello on (a 5 s one fired during a
// loaded boot, before the guest had said anything, when it covered the
// boot too).
func TestBootGuestHangs(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel()
	_, err := Run(t.Context(), Config{Kernel: kernel, GuestBinary: guestBinary(t), Timeout: bootTimeout, Idle: 5 * time.Second, fault: "hang"}, []string{oneTrace(t)})
	checkOneLine(t, err, ErrHung)
	if !strings.Contains(err.Error(), "no output for 5s") {
		t.Errorf("not the idle limit: %v", err)
	}
}

func TestBootNoSockmap(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel()
	_, err := Run(t.Context(), Config{Kernel: kernel, GuestBinary: guestBinary(t), Timeout: bootTimeout, fault: "nosockmap"}, []string{oneTrace(t)})
	checkOneLine(t, err, ErrNoSockmap)
}

// A cancelled run (Ctrl-C) kills QEMU and removes its temp dir.
func TestBootCancelled(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err := Run(ctx, Config{Kernel: kernel, GuestBinary: guestBinary(t), fault: "hang"}, []string{oneTrace(t)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}
