package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/splicecheck/splicecheck/kernelshim"
	"github.com/splicecheck/splicecheck/kernelshim/repro"
	"github.com/splicecheck/splicecheck/trace"
	"golang.org/x/sys/unix"
)

// IsGuestInit reports whether this process is /init of a splicecheck VM.
func IsGuestInit() bool {
	return os.Getpid() == 1 && os.Getenv(guestEnv) == "qemu"
}

// guestSetup is what went wrong while the guest set itself up, reported
// after the hello frame.
type guestSetup struct {
	err    error        // mounts, the backend, the data port
	module *moduleError // the first module the kernel refused
	// repros: a batch of the qemu runner, whose traces may have their C
	// reproducers beside them (Config.Repro).
	repros bool
}

// GuestInit is /init in the VM: it sets the machine up, loads the modules
// of the initramfs, and either runs the traces of the initramfs (a batch,
// Run) or serves trace requests from the host until it is killed (a
// session, Session), on backend. PID 1 must never exit (the kernel would
// panic), so every failure, backendErr included, is reported as a fatal
// frame before powering off. It returns only outside PID 1. open is called
// after /proc is mounted and the modules are loaded: backends probe the
// kernel through it and may cache what they find.
func GuestInit(open func() (trace.Backend, error)) int {
	var setup guestSetup
	setup.err = mountAll()
	setup.module = loadModuleDir("/" + moduleDir)
	backend, err := open()
	setup.err = errors.Join(setup.err, err)
	port, err := os.OpenFile("/dev/ttyS1", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		// Without the data port nothing can be reported; the host sees a
		// guest that never says hello and reports the console.
		fmt.Fprintf(os.Stderr, "splicecheck guest: open /dev/ttyS1: %v\n", err)
		powerOff()
		return 1
	}
	if rc, err := port.SyscallConn(); err != nil {
		setup.err = errors.Join(setup.err, err)
	} else {
		var rawErr error
		rc.Control(func(fd uintptr) { rawErr = makeRaw(int(fd)) })
		setup.err = errors.Join(setup.err, rawErr)
		// The host's requests arrive a FIFO trigger's worth of bytes per
		// interrupt; 14 instead of the 16550A's default 8 takes a trace
		// in 2.6 times faster under TCG. Best effort: other UARTs lack it.
		os.WriteFile("/sys/class/tty/ttyS1/rx_trig_bytes", []byte("14"), 0)
	}
	var code int
	if os.Getenv(sessionEnv) == "1" {
		code = guestServe(backend, port, port, setup)
	} else {
		var index []string
		if js, err := os.ReadFile("/traces/index.json"); err != nil {
			setup.err = errors.Join(setup.err, err)
		} else if err := json.Unmarshal(js, &index); err != nil {
			setup.err = errors.Join(setup.err, err)
		}
		files := make([]string, len(index))
		for i := range index {
			files[i] = fmt.Sprintf("/traces/%04d.trace", i)
		}
		setup.repros = true
		code = guestRun(backend, port, files, index, setup)
	}
	port.Sync()
	syscall.Sync()
	if os.Getpid() == 1 {
		powerOff()
	}
	return code
}

// GuestMain is `splicecheck guest`: the same guest work under a runner that
// provides the machine (vng), writing frames to w. The modules (host
// paths, which the guest sees) are loaded first, in order.
func GuestMain(backend trace.Backend, w io.Writer, files, modules []string) int {
	var setup guestSetup
	setup.module = loadModuleArgs(modules)
	return guestRun(backend, w, files, files, setup)
}

// guestStart writes the hello frame and reports, as a fatal frame, the
// first thing that keeps the guest from running traces. It returns
// whether the guest can go on.
func guestStart(fw *frameWriter, setup guestSetup, fault string) bool {
	var u syscall.Utsname
	syscall.Uname(&u)
	if err := fw.write(kindHello, helloPayload{Release: cstr(u.Release[:]), Version: cstr(u.Version[:]), Modules: loadedModules()}); err != nil {
		return false
	}
	switch fault {
	case "panic":
		// PID 1 exiting makes the kernel panic ("Attempted to kill init!").
		os.Exit(1)
	case "hang":
		sleepForever()
	}
	if me := setup.module; me != nil {
		fw.write(kindFatal, fatalPayload{Kind: "module", Error: me.detail, Module: me.index})
		return false
	}
	if err := probe(fault); err != nil {
		fw.write(kindFatal, fatalPayload{Kind: "nosockmap", Error: err.Error()})
		return false
	}
	if setup.err != nil {
		fw.write(kindFatal, fatalPayload{Kind: "setup", Error: setup.err.Error()})
		return false
	}
	return true
}

func guestRun(backend trace.Backend, w io.Writer, files, names []string, setup guestSetup) int {
	fw := &frameWriter{w: w}
	if !guestStart(fw, setup, os.Getenv("SPLICECHECK_GUEST_FAULT")) {
		return 1
	}
	opts := trace.Options{}
	if d, err := time.ParseDuration(os.Getenv("SPLICECHECK_OP_TIMEOUT")); err == nil {
		opts.OpTimeout = d
	}
	if k, err := strconv.Atoi(os.Getenv("SPLICECHECK_TIME_SCALE")); err == nil {
		opts.TimeScale = k
	}
	kl := openKmsg()
	for i, f := range files {
		tp := tracePayload{Index: i, File: names[i]}
		t, err := trace.ParseFile(f)
		if err == nil {
			var obs []trace.Observation
			if bin := strings.TrimSuffix(f, ".trace") + ".bin"; setup.repros && fileExists(bin) {
				obs, err = repro.Exec(context.Background(), bin, opts.TimeScale) // Config.Repro
			} else {
				obs, err = trace.Observe(context.Background(), backend, t, opts)
			}
			if err == nil {
				tp.Obs = toPayload(obs)
			}
		}
		if err != nil {
			tp.Error = err.Error()
		}
		tp.Warnings = kernelWarnings(kl)
		if err := fw.write(kindTrace, tp); err != nil {
			return 1
		}
	}
	if err := fw.write(kindDone, donePayload{Count: len(files)}); err != nil {
		return 1
	}
	return 0
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// guestServe is a session guest: after hello and ready it runs each trace
// the host sends on in and writes its observations to out, one request at
// a time, until the host kills the machine. It returns only when the
// channel fails (the host is then told, if it can be).
func guestServe(backend trace.Backend, in io.Reader, out io.Writer, setup guestSetup) int {
	fw := &frameWriter{w: out}
	if !guestStart(fw, setup, os.Getenv("SPLICECHECK_GUEST_FAULT")) {
		return 1
	}
	if err := fw.write(kindReady, readyPayload{}); err != nil {
		return 1
	}
	fr := newFrameReader(in)
	kl := openKmsg()
	for {
		f, err := fr.read()
		if err == nil && f.kind != kindRun {
			err = fmt.Errorf("%w: a %s frame from the host, want run", ErrTransport, f.kind)
		}
		var rp runPayload
		if err == nil {
			if err = json.Unmarshal(f.payload, &rp); err != nil {
				err = fmt.Errorf("%w: run frame: %w", ErrTransport, err)
			}
		}
		if err != nil {
			fw.write(kindFatal, fatalPayload{Kind: "transport", Error: err.Error()})
			return 1
		}
		tp := serveOne(backend, rp)
		tp.Warnings = kernelWarnings(kl)
		if err := fw.write(kindTrace, tp); err != nil {
			return 1
		}
	}
}

// serveOne runs one requested trace.
func serveOne(backend trace.Backend, rp runPayload) tracePayload {
	switch rp.Fault {
	case "panic":
		os.Exit(1) // PID 1: the kernel panics
	case "hang":
		sleepForever()
	}
	tp := tracePayload{Index: rp.ID, File: rp.File}
	t, err := trace.Parse(rp.File, []byte(rp.Source))
	if err == nil {
		opts := trace.Options{Profile: rp.Profile, OpTimeout: rp.OpTimeout, Seed: rp.Seed, TimeScale: rp.TimeScale}
		var obs []trace.Observation
		if obs, err = trace.Observe(context.Background(), backend, t, opts); err == nil {
			tp.Obs = toPayload(obs)
		}
	}
	if err != nil {
		tp.Error = err.Error()
	}
	return tp
}

// openKmsg follows the guest kernel's log from now on, or returns nil
// when it cannot (no /dev/kmsg: the runs then report no warnings).
func openKmsg() *kernelshim.Kmsg {
	kl, err := kernelshim.OpenKmsg()
	if err != nil {
		return nil
	}
	return kl
}

// kernelWarnings returns the warnings kl's kernel logged since the last
// call: the ones a trace that just ran made it log.
func kernelWarnings(kl *kernelshim.Kmsg) []string {
	if kl == nil {
		return nil
	}
	w, _ := kl.Warnings()
	return w
}

// makeRaw puts the data port into raw mode at 115200 baud: no echo (the
// host's requests would come back as noise), no line editing or signal
// characters, no CR/LF translation, reads returning as soon as a byte is
// there.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("data port: get termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | unix.B115200
	t.Ispeed, t.Ospeed = 115200, 115200
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("data port: set termios: %w", err)
	}
	return nil
}

// probe is probeSockmap; tests of the guest side outside a VM replace it.
var probe = probeSockmap

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

// mountAll mounts what the kernel backend needs (cgroup2 too, at
// /sys/fs/cgroup) and raises RLIMIT_MEMLOCK
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
	// cgroup v2, where `conn A B pair` attaches its sock_ops program. Best
	// effort: a kernel without CONFIG_CGROUPS has no /sys/fs/cgroup, and
	// only a pair conn needs it (it reports the missing mount itself).
	syscall.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, "")
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
	tr := TraceRun{File: tp.File, Err: tp.Error, Warnings: tp.Warnings}
	for _, p := range tp.Obs {
		r := trace.Result{N: p.N, Err: syscall.Errno(p.Err), Word: p.Word, Note: p.Note}
		if p.HasData {
			r = r.WithData(p.Data)
		}
		tr.Obs = append(tr.Obs, trace.Observation{Line: p.Line, Op: p.Op, Result: r})
	}
	return tr
}
