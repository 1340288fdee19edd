package main

import (
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

	"github.com/splicecheck/splicecheck/internal/procstat"
	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/kernelshim/vm"
)

// The vm backend's flags are checked before anything boots: each mistake
// is one line naming the flag (and the file), exit 2.
func TestVMBackendFlags(t *testing.T) {
	p := writeTrace(t, "ok.trace", "conn a b\n")
	dir := t.TempDir()
	img := filepath.Join(dir, "bzImage")
	os.WriteFile(img, make([]byte, 8192), 0o644)
	bin := tinyStatic(t)
	missing := filepath.Join(dir, "missing.ko")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--module", "x.ko", p}, "--module is an option of the vm backend"},
		{[]string{"run", "--kernel", img, p}, "--kernel is an option of the vm backend"},
		{[]string{"diff", "--a", "model", "--b", "kernel", "--guest-binary", bin, p}, "--guest-binary is an option"},
		{[]string{"run", "--backend", "vm", p}, "--kernel: required"},
		{[]string{"check", "--diff", "vm", "--traces", "1"}, "--kernel: required"},
		{[]string{"run", "--backend", "vm", "--kernel", filepath.Join(dir, "nope"), p}, "--kernel: "},
		{[]string{"run", "--backend", "vm", "--kernel", img, "--guest-binary", bin, "--module", missing, p}, "--module " + missing + ": "},
		{[]string{"diff", "--a", "model", "--b", "vm", "--kernel", img, "--guest-binary", bin, "--module", dir, p}, "--module " + dir + ": "},
		{[]string{"check", "--diff", "vm", "--kernel", img, "--guest-binary", bin, "--module", missing, "--traces", "1"}, "--module " + missing + ": "},
		{[]string{"vm", "--kernel", img, "--guest-binary", bin, "--module", missing, p}, "--module " + missing + ": "},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != exitBadInput || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSuffix(errOut, "\n"), "\n") != 0 {
			t.Errorf("%v: code %d, stderr %q; want exit 2 and one line with %q", c.args, code, errOut, c.want)
		}
	}
	if code, out, _ := runCLI(t, "profiles"); code != exitOK || strings.Contains(out, "not built") || !strings.Contains(out, "vm") {
		t.Errorf("profiles: code %d\n%s", code, out)
	}
}

// A guest's refusal of a module, a bad image or a panicking guest is the
// user's input: exit 2, one line.
func TestVMErrorsAreBadInput(t *testing.T) {
	for _, s := range []error{vm.ErrModule, vm.ErrBadImage, vm.ErrNoSockmap, vm.ErrPanic, vm.ErrHung} {
		var stderr strings.Builder
		err := fmt.Errorf("--b vm: --module /x.ko: %w: finit_module: exec format error; kernel: Invalid ELF header magic", s)
		if code := report(&stderr, "diff", err); code != exitBadInput || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: code %d, stderr %q", s, code, stderr.String())
		}
	}
}

// tinyStatic builds a small static program that passes for the guest
// binary where only its form is checked.
func tinyStatic(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\nfunc main() {}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\ngo 1.26\n"), 0o644)
	cmd := exec.Command("go", "build", "-o", "bin", ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build static binary: %v\n%s", err, out)
	}
	return filepath.Join(dir, "bin")
}

// requireVM returns the kernel image the booting tests use, or skips
// (fails under SPLICECHECK_REQUIRE_KERNEL=1) when QEMU or the image is
// missing.
func requireVM(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		testenv.Unavailable(t, "VM test: qemu-system-x86_64 not installed (make vm-deps installs it)")
	}
	k := vm.DefaultKernel()
	if k == "" {
		testenv.Unavailable(t, "VM test: no kernel image (/boot/vmlinuz-6.1* or SPLICECHECK_VM_KERNEL; make vm-deps installs it)")
	}
	return k
}

var (
	guestOnce sync.Once
	guestDir  string
	guestErr  error
)

// guestBinary builds the static splicecheck binary once for the booting
// tests (this test binary is not static); TestMain removes it.
func guestBinary(t *testing.T) string {
	t.Helper()
	guestOnce.Do(func() {
		guestDir, guestErr = os.MkdirTemp("", "splicecheck-cmdtest-")
		if guestErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(guestDir, "splicecheck"), ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			guestErr = errors.New(string(out))
		}
	})
	if guestErr != nil {
		t.Fatalf("build guest binary: %v", guestErr)
	}
	return filepath.Join(guestDir, "splicecheck")
}

func TestMain(m *testing.M) {
	if os.Getenv(signalHelperEnv) == "1" {
		signalHelper()
	}
	if os.Getenv(workerEnv) == "1" {
		// A worker of check --jobs (or a shard a test starts): this
		// binary is the CLI.
		ctx, stop := signalContext()
		code := mainWithArgs(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	code := m.Run()
	if guestDir != "" {
		os.RemoveAll(guestDir)
	}
	os.Exit(code)
}

// diff --a model --b vm boots one guest for all its traces, which agree
// with the model's linux-6.1 profile.
func TestDiffModelVM(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel() // the two guests boot together: a TCG boot takes minutes on a loaded machine
	var traces []string
	for _, n := range []string{"close_and_closed_ops", "threads_sleep_join", "test_sockmap_drop"} {
		traces = append(traces, filepath.Join("..", "..", "testdata", "traces", "kernel", n+".trace"))
	}
	args := append([]string{"diff", "--a", "model", "--b", "vm", "--kernel", kernel, "--guest-binary", guestBinary(t), "--profile", "linux-6.1"}, traces...)
	code, out, errOut := runCLI(t, args...)
	if code != exitOK || !strings.Contains(out, "3 traces: 3 agree, 0 diverge") || !strings.Contains(errOut, ": 1 boot, ") || !strings.Contains(errOut, "3 traces in") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("%s", strings.TrimSpace(errOut))
}

// check --diff vm runs the campaign's traces through one guest and
// prints the table with the agrees-with-reference row (a divergence, if
// the few traces show one, is shrunk on the same guest).
func TestCheckDiffVM(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel() // the two guests boot together: a TCG boot takes minutes on a loaded machine
	out := t.TempDir()
	code, stdout, errOut := runCLI(t, "check", "--diff", "vm", "--kernel", kernel, "--guest-binary", guestBinary(t),
		"--profile", "linux-6.1", "--traces", "3", "--out", out)
	if (code != exitOK && code != exitDivergence) || !strings.Contains(stdout, "agrees-with-reference") || !strings.Contains(errOut, ": 1 boot, ") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, errOut)
	}
	t.Logf("exit %d\n%s%s", code, stdout, errOut)
}

// Interrupting vm once the guest has reported a trace: exit 130, one line
// saying interrupted and how far it got, the trace reported so far in the
// output, and no QEMU or temp dir left behind.
func TestVMInterruptedKeepsResults(t *testing.T) {
	kernel := requireVM(t)
	bin := guestBinary(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	first := writeTrace(t, "first.trace", "conn a b\nsend a 3\n")
	long := writeTrace(t, "long.trace", "sleep 600000\n")
	started := make(chan struct{})
	saved := newVMProgress
	defer func() { newVMProgress = saved }()
	newVMProgress = func(*env, int) func(int, time.Duration) {
		return func(ran int, _ time.Duration) {
			if ran == 1 {
				close(started)
			}
		}
	}
	code, out, errOut := runInterrupted(t, started, "vm", "--kernel", kernel, "--guest-binary", bin,
		"--against", "none", "--record", t.TempDir(), "--timeout", "20m", "--vm-timeout", "30m", first, long)
	if code != exitInterrupted || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "interrupted") || !strings.Contains(errOut, "1 of 2") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, first) || strings.Contains(out, long) && !strings.Contains(out, "interrupted") {
		t.Errorf("stdout:\n%s", out)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
	if qemus := childQEMUs(t); len(qemus) != 0 {
		t.Errorf("QEMU left running: %v", qemus)
	}
}

// childQEMUs lists the QEMU processes whose parent is this process.
func childQEMUs(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		l, ok := procstat.Parse(b)
		if ok && string(l.Field(4)) == strconv.Itoa(os.Getpid()) && strings.HasPrefix(string(l.Comm), "qemu") {
			out = append(out, pid)
		}
	}
	return out
}

// vm reports what the guest's kernel logged as warnings while each trace
// ran, and --fail-on-warn makes them exit 1: on Debian's 6.1 the psock
// delete finding trips "TCP recvmsg seq # bug" in tcp_recvmsg_locked
// (testdata/traces/findings/psock_delete_strparser_seq_warn.trace), a
// plain trace nothing.
func TestVMReportsKernelWarnings(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel() // the guests boot together: a TCG boot takes minutes on a loaded machine
	plain := filepath.Join("..", "..", "testdata", "traces", "kernel", "close_and_closed_ops.trace")
	warns := filepath.Join("..", "..", "testdata", "traces", "findings", "psock_delete_strparser_seq_warn.trace")
	code, out, errOut := runCLI(t, "vm", "--kernel", kernel, "--guest-binary", guestBinary(t), "--against", "none",
		"--record", t.TempDir(), "--fail-on-warn", plain, warns)
	if code != exitDivergence || !strings.Contains(out, warns+": guest kernel warned: TCP recvmsg seq # bug") ||
		strings.Contains(out, plain+": guest kernel warned") || !strings.Contains(out, "guest kernel warned during 1 trace\n") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
