package vm

import (
	"context"
	"errors"
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
// checks see only this process's VM dirs, not those of runs beside it
// (another package's tests, a user's splicecheck vm).
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "splicecheck-vmpkg-")
	if err == nil {
		os.Setenv("TMPDIR", tmp)
	}
	code := m.Run()
	if guestBin != "" {
		os.RemoveAll(filepath.Dir(guestBin))
	}
	if err == nil {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// leftovers reports QEMU processes and VM temp dirs that outlive a run.
func leftovers(t *testing.T) func() {
	t.Helper()
	before := vmTempDirs()
	return func() {
		t.Helper()
		// Only this process's children: QEMUs of other runs are not ours.
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(os.Getpid()), "-f", "qemu-system-x86_64.*SPLICECHECK_GUEST").Output()
		if s := strings.TrimSpace(string(out)); s != "" {
			t.Errorf("QEMU processes left behind: %s", s)
		}
		for d := range vmTempDirs() {
			if !before[d] {
				t.Errorf("temp dir left behind: %s", d)
			}
		}
	}
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

func TestBootCorruptImage(t *testing.T) {
	requireVM(t)
	defer leftovers(t)()
	img := writeJunk(t, 1<<20)
	_, err := Run(t.Context(), Config{Kernel: img, GuestBinary: guestBinary(t), Timeout: 2 * time.Minute}, []string{oneTrace(t)})
	checkOneLine(t, err, ErrBadImage)
}

func TestBootGuestPanics(t *testing.T) {
	kernel := requireVM(t)
	defer leftovers(t)()
	_, err := Run(t.Context(), Config{Kernel: kernel, GuestBinary: guestBinary(t), Timeout: 2 * time.Minute, fault: "panic"}, []string{oneTrace(t)})
	checkOneLine(t, err, ErrPanic)
	if !strings.Contains(err.Error(), "Kernel panic - not syncing") {
		t.Errorf("panic message missing: %v", err)
	}
}

// A guest that stops talking after hello is caught by the idle limit,
// not by the (much longer) wall-clock limit. The error says which fired:
// how long a boot takes on a busy machine is not the test's business.
func TestBootGuestHangs(t *testing.T) {
	kernel := requireVM(t)
	defer leftovers(t)()
	_, err := Run(t.Context(), Config{Kernel: kernel, GuestBinary: guestBinary(t), Timeout: 10 * time.Minute, Idle: 5 * time.Second, fault: "hang"}, []string{oneTrace(t)})
	checkOneLine(t, err, ErrHung)
	if !strings.Contains(err.Error(), "no output for 5s") {
		t.Errorf("not the idle limit: %v", err)
	}
}

func TestBootNoSockmap(t *testing.T) {
	kernel := requireVM(t)
	defer leftovers(t)()
	_, err := Run(t.Context(), Config{Kernel: kernel, GuestBinary: guestBinary(t), Timeout: 2 * time.Minute, fault: "nosockmap"}, []string{oneTrace(t)})
	checkOneLine(t, err, ErrNoSockmap)
}

// A cancelled run (Ctrl-C) kills QEMU and removes its temp dir.
func TestBootCancelled(t *testing.T) {
	kernel := requireVM(t)
	defer leftovers(t)()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err := Run(ctx, Config{Kernel: kernel, GuestBinary: guestBinary(t), fault: "hang"}, []string{oneTrace(t)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}
