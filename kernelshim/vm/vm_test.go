package vm

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readNewc parses a newc archive: name → (mode, rdev, data).
func readNewc(t *testing.T, r io.Reader) map[string]entry {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]entry{}
	hex := func(s []byte) uint32 {
		v, err := strconv.ParseUint(string(s), 16, 32)
		if err != nil {
			t.Fatalf("bad hex %q", s)
		}
		return uint32(v)
	}
	for off := 0; ; {
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		mode, size := hex(h[14:22]), int(hex(h[54:62]))
		major, minor, namesize := hex(h[78:86]), hex(h[86:94]), int(hex(h[94:102]))
		name := string(b[off+110 : off+110+namesize-1])
		off += 110 + namesize
		off += (4 - off%4) % 4
		data := b[off : off+size]
		off += size
		off += (4 - off%4) % 4
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out[name] = entry{mode: mode, data: data, major: major, minor: minor}
	}
}

func TestInitramfsNewc(t *testing.T) {
	a := NewInitramfs()
	a.AddFile("init", []byte("#!binary"), 0o755)
	a.AddFile("traces/0000.trace", []byte("conn a b\n"), 0o644)
	a.AddCharDev("dev/console", 5, 1)
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, &buf)
	if e := got["init"]; e.mode != modeReg|0o755 || string(e.data) != "#!binary" {
		t.Errorf("init: %+v", e)
	}
	if e := got["dev/console"]; e.mode != modeChar|0o600 || e.major != 5 || e.minor != 1 {
		t.Errorf("console: %+v", e)
	}
	for _, d := range []string{"dev", "traces"} {
		if got[d].mode != modeDir|0o755 {
			t.Errorf("parent dir %s missing: %+v", d, got[d])
		}
	}
	if string(got["traces/0000.trace"].data) != "conn a b\n" {
		t.Error("trace content")
	}
}

func TestFramesSurviveNoise(t *testing.T) {
	var buf bytes.Buffer
	fw := &frameWriter{w: &buf}
	fw.write(kindHello, helloPayload{Release: "6.1.0"})
	// printk interleaved before, after and on the same line as a frame.
	buf.WriteString("[    1.234] random: crng init done\n[ 2.0] a line without newline ")
	fw.write(kindTrace, tracePayload{File: "x.trace", Obs: []obsPayload{{Line: 1, Op: "conn a b", N: -1, Word: "ok"}}})
	buf.WriteString("\r\n")
	fw.write(kindDone, donePayload{Count: 1})
	var noise []string
	fr := newFrameReader(&buf)
	fr.Noise = func(l string) { noise = append(noise, l) }
	var kinds []string
	for {
		f, err := fr.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, f.kind)
	}
	if strings.Join(kinds, ",") != "hello,trace,done" {
		t.Fatalf("frames %v", kinds)
	}
	if len(noise) != 2 || !strings.Contains(noise[0], "crng") {
		t.Fatalf("noise %q", noise)
	}
}

func TestFramesDetectDamage(t *testing.T) {
	var good bytes.Buffer
	(&frameWriter{w: &good}).write(kindDone, donePayload{Count: 3})
	s := good.String()
	damaged := strings.Replace(s, "done:", "done:A", 1) // corrupt the payload
	if _, err := newFrameReader(strings.NewReader(damaged)).read(); !errors.Is(err, ErrTransport) {
		t.Errorf("corrupt payload: %v", err)
	}
	truncated := s[:len(s)/2] + "\n"
	if _, err := newFrameReader(strings.NewReader(truncated)).read(); !errors.Is(err, ErrTransport) {
		t.Errorf("truncated frame: %v", err)
	}
	var gap bytes.Buffer
	fw := &frameWriter{w: &gap, seq: 1}
	fw.write(kindDone, donePayload{})
	if _, err := newFrameReader(&gap).read(); !errors.Is(err, ErrTransport) {
		t.Errorf("sequence gap: %v", err)
	}
}

func TestDetectAccelFlags(t *testing.T) {
	if !hasVirtFlag([]byte("processor : 0\nflags\t\t: fpu vme vmx sse\n")) || !hasVirtFlag([]byte("flags : svm lm\n")) {
		t.Error("vmx/svm not found")
	}
	if hasVirtFlag([]byte("flags\t: fpu vme hypervisor vmxx\nvmx: yes\n")) {
		t.Error("false positive")
	}
	if a := detectAccel(); a != "kvm" && a != "tcg" {
		t.Errorf("detectAccel = %q", a)
	}
}

func TestCheckStatic(t *testing.T) {
	if err := checkStatic("/bin/sh"); !errors.Is(err, ErrBadBinary) || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("dynamic binary: %v", err)
	}
	if err := checkStatic(os.DevNull); !errors.Is(err, ErrBadBinary) {
		t.Errorf("not ELF: %v", err)
	}
	if err := checkStatic(""); !errors.Is(err, ErrBadBinary) {
		t.Errorf("empty: %v", err)
	}
}

func TestQEMUArgs(t *testing.T) {
	cfg := Config{Kernel: "/boot/vmlinuz", OpTimeout: 3 * time.Second, fault: "hang"}.withDefaults()
	args := strings.Join(qemuArgs(cfg, "tcg", "/tmp/i.gz", "/tmp/c.log", false), " ")
	for _, want := range []string{
		"-accel tcg -cpu max", "-m 4096 -smp 2", "-kernel /boot/vmlinuz -initrd /tmp/i.gz",
		"console=ttyS0 panic=-1 loglevel=4 no_timer_check", "SPLICECHECK_GUEST=qemu", "SPLICECHECK_OP_TIMEOUT=3s", "SPLICECHECK_GUEST_FAULT=hang",
		"-no-reboot", "-serial file:/tmp/c.log -serial stdio",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, args)
		}
	}
	if a := strings.Join(qemuArgs(cfg, "kvm", "i", "c", false), " "); !strings.Contains(a, "-accel kvm -cpu host") {
		t.Errorf("kvm args: %s", a)
	}
}

// The vng command line is tested without vng present.
func TestVngArgs(t *testing.T) {
	cfg := Config{Kernel: "/src/linux/arch/x86/boot/bzImage", GuestBinary: "/w/bin/splicecheck", OpTimeout: time.Second}.withDefaults()
	got := vngArgs(cfg, []string{"/w/t/a.trace", "/w/it's here.trace"})
	want := []string{
		"--run", "/src/linux/arch/x86/boot/bzImage", "--memory", "4096M", "--cpus", "2", "--user", "root",
		"--append", "loglevel=0",
		"--exec", `/w/bin/splicecheck guest --timeout 1s /w/t/a.trace '/w/it'\''s here.trace'`,
	}
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	cfg.Modules = []string{"/m/a.ko", "/m/b c.ko"}
	if got := vngArgs(cfg, []string{"/t.trace"}); got[len(got)-1] != `/w/bin/splicecheck guest --timeout 1s --module /m/a.ko --module '/m/b c.ko' /t.trace` {
		t.Fatalf("modules: %q", got[len(got)-1])
	}
}

func TestVngMissingSaysHowToGetIt(t *testing.T) {
	kernel := writeJunk(t, 8192)
	bin := staticBinary(t)
	_, err := Run(t.Context(), Config{Kernel: kernel, GuestBinary: bin, Runner: RunnerVng, Vng: "vng-not-installed-here"}, []string{"x.trace"})
	if !errors.Is(err, ErrNoRunner) || !strings.Contains(err.Error(), "install virtme-ng") {
		t.Fatalf("err = %v", err)
	}
}

func TestBadInputs(t *testing.T) {
	bin := staticBinary(t)
	if _, err := Run(t.Context(), Config{Kernel: "/nonexistent", GuestBinary: bin}, []string{"x"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing kernel: %v", err)
	}
	if _, err := Run(t.Context(), Config{Kernel: writeJunk(t, 100), GuestBinary: bin}, []string{"x"}); !errors.Is(err, ErrBadImage) {
		t.Errorf("tiny kernel: %v", err)
	}
	if _, err := Run(t.Context(), Config{Kernel: writeJunk(t, 8192), GuestBinary: bin, Runner: "xen"}, []string{"x"}); !errors.Is(err, ErrBadRunner) {
		t.Errorf("bad runner: %v", err)
	}
}

func writeJunk(t *testing.T, n int) string {
	p := t.TempDir() + "/junk.img"
	if err := os.WriteFile(p, bytes.Repeat([]byte{0x5a}, n), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// staticBinary builds a small static program to stand in for the guest
// binary where only its form is checked.
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(dir+"/main.go", []byte("package main\nfunc main() {}\n"), 0o644)
	os.WriteFile(dir+"/go.mod", []byte("module x\ngo 1.26\n"), 0o644)
	cmd := exec.Command("go", "build", "-o", "bin", ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build static binary: %v\n%s", err, out)
	}
	return dir + "/bin"
}

func TestConsoleTailSanitises(t *testing.T) {
	c := &consoleTail{max: 2}
	c.add("\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1.16)\r")
	c.add("   ")
	c.add("[ 1.0] one")
	c.add("[ 2.0] two")
	if got := c.String(); got != "[ 1.0] one | [ 2.0] two" {
		t.Errorf("tail %q", got)
	}
	c = &consoleTail{max: 5}
	c.add("\x1bc\x1b[?7l\x1b[2JSeaBIOS (version 1.16)\r")
	if got := c.String(); got != "SeaBIOS (version 1.16)" {
		t.Errorf("escapes kept: %q", got)
	}
	if got := panicLine([]string{"a", "[ 2.8] Kernel panic - not syncing: Attempted to kill init!"}); got != "Kernel panic - not syncing: Attempted to kill init!" {
		t.Errorf("panic line %q", got)
	}
}
