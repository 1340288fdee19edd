package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/splicecheck/splicecheck/trace"
)

// IsGuestInit reports whether this process is /init of a splicecheck VM.
func IsGuestInit() bool {
	return os.Getpid() == 1 && os.Getenv(guestEnv) == "qemu"
}

// GuestInit is /init in the VM: it sets the machine up, runs the traces of
// the initramfs on backend and powers off. PID 1 must never exit (the
// kernel would panic), so every failure, backendErr included, is reported
// as a fatal frame before powering off. It returns only outside PID 1.
// open is called after /proc is mounted: backends probe the kernel through
// it and may cache what they find.
func GuestInit(open func() (trace.Backend, error)) int {
	setupErr := mountAll()
	backend, err := open()
	setupErr = errors.Join(setupErr, err)
	out, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		// Without the data port nothing can be reported; the host sees a
		// guest that never says hello and reports the console.
		fmt.Fprintf(os.Stderr, "splicecheck guest: open /dev/ttyS1: %v\n", err)
		powerOff()
		return 1
	}
	var index []string
	if js, err := os.ReadFile("/traces/index.json"); err != nil {
		setupErr = errors.Join(setupErr, err)
	} else if err := json.Unmarshal(js, &index); err != nil {
		setupErr = errors.Join(setupErr, err)
	}
	files := make([]string, len(index))
	for i := range index {
		files[i] = fmt.Sprintf("/traces/%04d.trace", i)
	}
	code := guestRun(backend, out, files, index, setupErr)
	out.Sync()
	syscall.Sync()
	if os.Getpid() == 1 {
		powerOff()
	}
	return code
}

// GuestMain is `splicecheck guest`: the same guest work under a runner that
// provides the machine (vng), writing frames to w.
func GuestMain(backend trace.Backend, w io.Writer, files []string) int {
	return guestRun(backend, w, files, files, nil)
}

func guestRun(backend trace.Backend, w io.Writer, files, names []string, setupErr error) int {
	fw := &frameWriter{w: w}
	fault := os.Getenv("SPLICECHECK_GUEST_FAULT")
	var u syscall.Utsname
	syscall.Uname(&u)
	if err := fw.write(kindHello, helloPayload{Release: cstr(u.Release[:]), Version: cstr(u.Version[:])}); err != nil {
		return 1
	}
	switch fault {
	case "panic":
		// PID 1 exiting makes the kernel panic ("Attempted to kill init!").
		os.Exit(1)
	case "hang":
		sleepForever()
	}
	if err := probeSockmap(fault); err != nil {
		fw.write(kindFatal, fatalPayload{Kind: "nosockmap", Error: err.Error()})
		return 1
	}
	if setupErr != nil {
		fw.write(kindFatal, fatalPayload{Kind: "setup", Error: setupErr.Error()})
		return 1
	}
	opts := trace.Options{}
	if d, err := time.ParseDuration(os.Getenv("SPLICECHECK_OP_TIMEOUT")); err == nil {
		opts.OpTimeout = d
	}
	for i, f := range files {
		tp := tracePayload{Index: i, File: names[i]}
		t, err := trace.ParseFile(f)
		if err == nil {
			var obs []trace.Observation
			if obs, err = trace.Run(context.Background(), backend, t, opts); err == nil {
				tp.Obs = toPayload(obs)
			}
		}
		if err != nil {
			tp.Error = err.Error()
		}
		if err := fw.write(kindTrace, tp); err != nil {
			return 1
		}
	}
	if err := fw.write(kindDone, donePayload{Count: len(files)}); err != nil {
		return 1
	}
	return 0
}

// probeSockmap checks that the kernel can create a sockmap
// (CONFIG_BPF_SYSCALL and CONFIG_BPF_STREAM_PARSER / NET_SOCK_MSG).
func probeSockmap(fault string) error {
	if fault == "nosockmap" {
		return fmt.Errorf("%w: sockmap probe forced to fail", errGuestFault)
	}
	if err := features.HaveMapType(ebpf.SockMap); err != nil {
		return fmt.Errorf("probe BPF_MAP_TYPE_SOCKMAP: %w", err)
	}
	return nil
}

// mountAll mounts what the kernel backend needs and raises RLIMIT_MEMLOCK
// (kernels before 5.11 charge BPF memory to it; docs/kernel-facts.md
// warns against cilium/ebpf/rlimit in PID 1).
func mountAll() error {
	var errs []error
	for _, m := range []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := syscall.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s: %w", m.dst, err))
		}
	}
	lim := syscall.Rlimit{Cur: ^uint64(0), Max: ^uint64(0)}
	if err := syscall.Setrlimit(8 /* RLIMIT_MEMLOCK */, &lim); err != nil {
		errs = append(errs, fmt.Errorf("raise RLIMIT_MEMLOCK: %w", err))
	}
	return errors.Join(errs...)
}

func powerOff() {
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	sleepForever()
}

// sleepForever blocks without tripping the Go runtime's deadlock detector,
// which would end PID 1 (and panic the kernel) if every goroutine blocked on
// a channel.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func cstr(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func toPayload(obs []trace.Observation) []obsPayload {
	out := make([]obsPayload, len(obs))
	for i, o := range obs {
		r := o.Result
		out[i] = obsPayload{Line: o.Line, Op: o.Op, N: r.N, Err: int(r.Err), Word: r.Word, Data: r.Data, HasData: r.HasData, Note: r.Note}
	}
	return out
}

func (tp tracePayload) run() TraceRun {
	tr := TraceRun{File: tp.File, Err: tp.Error}
	for _, p := range tp.Obs {
		r := trace.Result{N: p.N, Err: syscall.Errno(p.Err), Word: p.Word, Note: p.Note}
		if p.HasData {
			r = r.WithData(p.Data)
		}
		tr.Obs = append(tr.Obs, trace.Observation{Line: p.Line, Op: p.Op, Result: r})
	}
	return tr
}
