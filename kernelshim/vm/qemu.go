package vm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// guestEnv is the kernel command-line variable that makes /init run as the
// splicecheck guest; the kernel passes KEY=value arguments it does not
// know to init as environment variables.
const guestEnv = "SPLICECHECK_GUEST"

// sessionEnv=1 on the kernel command line makes the guest serve requests
// (Session) instead of running the initramfs's traces (Run).
const sessionEnv = "SPLICECHECK_SESSION"

// qemuArgs is the QEMU command line for one run, or for one boot of a
// session's guest.
func qemuArgs(cfg Config, accel, initrd, consoleLog string, session bool) []string {
	cpu := "max"
	if accel == "kvm" {
		cpu = "host"
	}
	// no_timer_check: a TCG vCPU starved by a loaded host misses the
	// ticks the boot's IO-APIC timer check counts, and the kernel
	// panicked ("IO-APIC + timer doesn't work!") under make test beside
	// stress-ng; the check is for broken hardware, not a VM's.
	appendLine := []string{"console=ttyS0", "panic=-1", "loglevel=4", "no_timer_check", guestEnv + "=qemu"}
	if cfg.OpTimeout > 0 {
		appendLine = append(appendLine, "SPLICECHECK_OP_TIMEOUT="+cfg.OpTimeout.String())
	}
	if cfg.TimeScale > 1 {
		appendLine = append(appendLine, "SPLICECHECK_TIME_SCALE="+strconv.Itoa(cfg.TimeScale))
	}
	if cfg.fault != "" {
		appendLine = append(appendLine, "SPLICECHECK_GUEST_FAULT="+cfg.fault)
	}
	if session {
		appendLine = append(appendLine, sessionEnv+"=1")
	}
	return []string{
		"-accel", accel, "-cpu", cpu,
		"-m", fmt.Sprint(cfg.Memory), "-smp", fmt.Sprint(cfg.CPUs),
		"-kernel", cfg.Kernel, "-initrd", initrd,
		"-append", strings.Join(appendLine, " "),
		"-nographic", "-nodefaults", "-no-reboot", "-monitor", "none",
		"-serial", "file:" + consoleLog, // ttyS0: the kernel console
		"-serial", "stdio", // ttyS1: the guest's frames
	}
}

// buildInitramfs writes the guest's initramfs to path: the guest binary as
// /init, the traces under /traces with an index (none for a session) and,
// when repros is not nil, each trace's static C reproducer beside it
// (NNNN.bin, which the guest runs instead of the trace: Config.Repro), the
// modules under /modules (module.go), and the device nodes the kernel
// opens before devtmpfs is mounted.
func buildInitramfs(path, guestBinary string, traces, repros, modules []string) error {
	bin, err := os.ReadFile(guestBinary)
	if err != nil {
		return fmt.Errorf("read guest binary: %w", err)
	}
	a := NewInitramfs()
	a.AddFile("init", bin, 0o755)
	a.AddCharDev("dev/console", 5, 1)
	a.AddCharDev("dev/null", 1, 3)
	for _, d := range []string{"proc", "sys", "tmp"} {
		a.AddDir(d)
	}
	if err := addModules(a, modules); err != nil {
		return err
	}
	var index []string
	for i, p := range traces {
		src, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read trace: %w", err)
		}
		a.AddFile(fmt.Sprintf("traces/%04d.trace", i), src, 0o644)
		if repros != nil {
			bin, err := os.ReadFile(repros[i])
			if err != nil {
				return fmt.Errorf("read reproducer: %w", err)
			}
			a.AddFile(fmt.Sprintf("traces/%04d.bin", i), bin, 0o755)
		}
		index = append(index, p)
	}
	if traces != nil {
		js, _ := json.Marshal(index)
		a.AddFile("traces/index.json", js, 0o644)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create initramfs: %w", err)
	}
	if _, err := a.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runQEMU boots the kernel with the guest initramfs and collects frames
// from ttyS1 until the guest reports done and powers off.
func runQEMU(ctx context.Context, cfg Config, paths []string) (res *Result, err error) {
	if _, err := exec.LookPath(cfg.QEMU); err != nil {
		return nil, fmt.Errorf("%w: %s not found (apt-get install qemu-system-x86): %w", ErrNoRunner, cfg.QEMU, err)
	}
	td, err := makeTempDir("")
	if err != nil {
		return nil, err
	}
	defer td.release()
	tmp := td.path
	initrd, consoleLog := filepath.Join(tmp, "initramfs.gz"), filepath.Join(tmp, "console.log")
	var repros []string
	if cfg.Repro {
		if repros, err = compileRepros(ctx, tmp, paths); err != nil {
			return nil, err
		}
	}
	if err := buildInitramfs(initrd, cfg.GuestBinary, paths, repros, cfg.Modules); err != nil {
		return nil, err
	}
	accel := detectAccel()
	cmd := exec.Command(cfg.QEMU, qemuArgs(cfg, accel, initrd, consoleLog, false)...)
	return supervise(ctx, cfg, cmd, len(paths), func() []string { return readLines(consoleLog) }, accel)
}

// supervise starts cmd, whose stdout carries the guest's frames, and
// collects a Result. It kills the whole process group on every exit path.
// console returns the console lines seen so far (for error reports); for a
// runner that shares one channel, the non-frame lines are used instead.
func supervise(ctx context.Context, cfg Config, cmd *exec.Cmd, ntraces int, console func() []string, accel string) (res *Result, err error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrNoRunner, cmd.Path, err)
	}
	exited := make(chan error, 1)
	var waitOnce bool
	kill := func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	defer func() {
		kill()
		if !waitOnce {
			<-exited
		}
	}()

	frames := make(chan frame)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	defer close(quit)
	noise := &consoleTail{max: 8}
	go func() {
		fr := newFrameReader(stdout)
		fr.Noise = noise.add
		for {
			f, err := fr.read()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case frames <- f:
			case <-quit:
				return
			}
		}
	}()
	go func() { exited <- cmd.Wait() }()

	res = &Result{Accel: accel}
	tail := func() string {
		t := &consoleTail{max: 6}
		for _, l := range console() {
			t.add(l)
		}
		for _, l := range noise.lines {
			t.add(l)
		}
		return t.String()
	}
	overall := time.NewTimer(cfg.Timeout)
	defer overall.Stop()
	// The idle limit runs from the guest's first frame (its hello) on:
	// until then only the wall-clock limit bounds the boot, which a TCG
	// guest on a loaded machine can stretch past two minutes.
	idle := time.NewTimer(cfg.Idle)
	idle.Stop()
	defer idle.Stop()
	gotHello, done := false, false
	for !done {
		select {
		case <-ctx.Done():
			res.Total = time.Since(start)
			if res.Release == "" {
				return nil, fmt.Errorf("vm: %w", ctx.Err())
			}
			return res, fmt.Errorf("vm: %w after %d of %d traces", ctx.Err(), len(res.Runs), ntraces)
		case <-overall.C:
			return nil, fmt.Errorf("%w: no end after %v (wall-clock limit); console: %s", ErrHung, cfg.Timeout, tail())
		case <-idle.C:
			return nil, fmt.Errorf("%w: no output for %v; console: %s", ErrHung, cfg.Idle, tail())
		case err := <-readErr:
			// EOF, or os.ErrClosed when cmd.Wait (which closes the pipe
			// once QEMU exits) won the race against the last read.
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				return nil, err
			}
			// The guest's channel closed: QEMU is exiting. Classify below.
			waitOnce = true
			werr := <-exited
			return nil, classifyExit(werr, gotHello, stderr.String(), console(), tail())
		case f := <-frames:
			idle.Reset(cfg.Idle)
			switch f.kind {
			case kindHello:
				var h helloPayload
				json.Unmarshal(f.payload, &h)
				res.Release, res.Modules, gotHello = h.Release, h.Modules, true
				cfg.progress(0, start)
			case kindFatal:
				var fp fatalPayload
				json.Unmarshal(f.payload, &fp)
				return nil, fatalError(cfg, res.Release, fp)
			case kindTrace:
				var tp tracePayload
				if err := json.Unmarshal(f.payload, &tp); err != nil {
					return nil, fmt.Errorf("%w: trace frame: %w", ErrTransport, err)
				}
				if len(res.Runs) == 0 {
					res.BootToFirst = time.Since(start)
				}
				res.Runs = append(res.Runs, tp.run())
				cfg.progress(len(res.Runs), start)
			case kindDone:
				done = true
			}
		}
	}
	res.Total = time.Since(start)
	if len(res.Runs) != ntraces {
		return nil, fmt.Errorf("%w: %d of %d traces reported", ErrGuest, len(res.Runs), ntraces)
	}
	// Let the guest power off; the deferred kill ends it if it lingers.
	select {
	case <-exited:
		waitOnce = true
	case <-time.After(10 * time.Second):
	}
	return res, nil
}

// fatalError is the error a guest's fatal frame reports.
func fatalError(cfg Config, release string, fp fatalPayload) error {
	switch fp.Kind {
	case "nosockmap":
		return fmt.Errorf("%w (%s): %s", ErrNoSockmap, release, fp.Error)
	case "module":
		file := "?"
		if fp.Module >= 0 && fp.Module < len(cfg.Modules) {
			file = cfg.Modules[fp.Module]
		}
		if len(cfg.Modules) > 1 {
			file += fmt.Sprintf(" (%d of %d)", fp.Module+1, len(cfg.Modules))
		}
		return fmt.Errorf("--module %s: %w in guest %s: %s", file, ErrModule, release, fp.Error)
	}
	return fmt.Errorf("%w: %s", ErrGuest, fp.Error)
}

// classifyExit explains why QEMU ended before the guest said done.
func classifyExit(werr error, gotHello bool, stderr string, console []string, tail string) error {
	if p := panicLine(console); p != "" {
		return fmt.Errorf("%w: %s; console: %s", ErrPanic, p, tail)
	}
	if !gotHello {
		msg := firstLine(stderr)
		if msg == "" {
			msg = fmt.Sprintf("exit %v, console: %s", werr, tail)
		}
		return fmt.Errorf("%w: %s", ErrBadImage, msg)
	}
	return fmt.Errorf("%w: the VM stopped before the guest finished (%v); console: %s", ErrGuest, werr, tail)
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
