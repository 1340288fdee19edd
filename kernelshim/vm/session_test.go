package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// echoBackend answers every op with "ok" and records the options it ran
// with; it stands in for the kernel backend on the guest side.
type echoBackend struct{ opts []trace.Options }

func (b *echoBackend) Name() string { return "echo" }
func (b *echoBackend) Run(_ context.Context, t *trace.Trace, opts trace.Options) (trace.RunResult, error) {
	b.opts = append(b.opts, opts)
	obs := make([]trace.Observation, len(t.Ops))
	for i := range t.Ops {
		obs[i] = trace.Observation{Line: t.Ops[i].Pos.Line, Op: t.Ops[i].String(), Result: trace.OK()}
	}
	return trace.RunResult{Obs: obs}, nil
}

// The guest side of a session, over pipes: hello, ready, then one trace
// frame per run frame, with the request's id, and a fatal frame for a
// frame that is not a request.
func TestGuestServeProtocol(t *testing.T) {
	defer func(p func(string) error) { probe = p }(probe)
	probe = func(string) error { return nil }
	toGuest, hostW := io.Pipe()
	hostR, fromGuest := io.Pipe()
	be := &echoBackend{}
	done := make(chan int, 1)
	go func() {
		done <- guestServe(be, toGuest, fromGuest, guestSetup{})
		fromGuest.Close()
	}()
	fr := newFrameReader(hostR)
	next := func(kind string) frame {
		t.Helper()
		f, err := fr.read()
		if err != nil || f.kind != kind {
			t.Fatalf("frame %+v, %v; want %s", f, err, kind)
		}
		return f
	}
	next(kindHello)
	next(kindReady)
	fw := &frameWriter{w: hostW}
	src := "# a comment\n\nconn a b\n@t1 recv b 3\nsend a \"abc\"\n"
	tr, err := trace.Parse("x.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for id := 7; id <= 8; id++ {
		if err := fw.write(kindRun, runPayload{ID: id, File: "x.trace", Source: tr.Format(), Profile: "linux-6.1", OpTimeout: time.Second, Seed: 3}); err != nil {
			t.Fatal(err)
		}
		var tp tracePayload
		json.Unmarshal(next(kindTrace).payload, &tp)
		if tp.Index != id || tp.Error != "" || len(tp.Obs) != 3 || tp.Obs[1].Op != "@t1 recv b 3" {
			t.Fatalf("reply to %d: %+v", id, tp)
		}
	}
	if o := be.opts[0]; o.Profile != "linux-6.1" || o.OpTimeout != time.Second || o.Seed != 3 {
		t.Errorf("guest ran with %+v", o)
	}
	// A trace the guest cannot parse comes back as the trace's error.
	fw.write(kindRun, runPayload{ID: 9, File: "bad.trace", Source: "frob\n"})
	var tp tracePayload
	json.Unmarshal(next(kindTrace).payload, &tp)
	if tp.Index != 9 || !strings.Contains(tp.Error, "bad.trace:1:1") {
		t.Fatalf("bad trace: %+v", tp)
	}
	fw.write(kindDone, donePayload{})
	var fp fatalPayload
	json.Unmarshal(next(kindFatal).payload, &fp)
	if fp.Kind != "transport" {
		t.Fatalf("fatal %+v", fp)
	}
	if code := <-done; code != 1 {
		t.Fatalf("guestServe returned %d", code)
	}
}

// A refused module is the guest's first report after hello, and names
// the module's place in the list.
func TestGuestReportsModuleFirst(t *testing.T) {
	var out bytes.Buffer
	me := &moduleError{index: 1, name: "b.ko", detail: "finit_module: exec format error; kernel: Invalid ELF header magic"}
	if code := guestServe(&echoBackend{}, strings.NewReader(""), &out, guestSetup{module: me, err: errors.New("later")}); code != 1 {
		t.Fatalf("code %d", code)
	}
	fr := newFrameReader(&out)
	fr.read() // hello
	f, err := fr.read()
	var fp fatalPayload
	json.Unmarshal(f.payload, &fp)
	if err != nil || fp.Kind != "module" || fp.Module != 1 {
		t.Fatalf("%+v %v", fp, err)
	}
	cfg := Config{Modules: []string{"/x/a.ko", "/x/b.ko"}}
	merr := fatalError(cfg, "6.1.0", fp)
	if !errors.Is(merr, ErrModule) || !strings.HasPrefix(merr.Error(), "--module /x/b.ko (2 of 2): ") || !strings.Contains(merr.Error(), "Invalid ELF header magic") {
		t.Fatalf("host error: %v", merr)
	}
}

func TestCheckModules(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.ko")
	os.WriteFile(empty, nil, 0o644)
	good := filepath.Join(dir, "good.ko")
	os.WriteFile(good, []byte("\x7fELF"), 0o644)
	for _, c := range []struct {
		path string
		want error
	}{
		{filepath.Join(dir, "missing.ko"), os.ErrNotExist},
		{dir, ErrModule},
		{empty, ErrModule},
	} {
		err := checkModules([]string{good, c.path})
		if !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), "--module "+c.path+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %v naming the flag and file", c.path, err, c.want)
		}
	}
	if err := checkModules([]string{good}); err != nil {
		t.Error(err)
	}
}

// Modules go into the initramfs in the order given, with their names.
func TestInitramfsModules(t *testing.T) {
	dir := t.TempDir()
	bin, a, b := filepath.Join(dir, "init"), filepath.Join(dir, "z.ko"), filepath.Join(dir, "a.ko")
	os.WriteFile(bin, []byte("init"), 0o755)
	os.WriteFile(a, []byte("first"), 0o644)
	os.WriteFile(b, []byte("second"), 0o644)
	out := filepath.Join(dir, "i.gz")
	if err := buildInitramfs(out, bin, nil, nil, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	got := readNewc(t, f)
	if string(got["modules/0000.ko"].data) != "first" || string(got["modules/0001.ko"].data) != "second" ||
		string(got["modules/index.json"].data) != `["z.ko","a.ko"]` {
		t.Fatalf("modules: %q %q %q", got["modules/0000.ko"].data, got["modules/0001.ko"].data, got["modules/index.json"].data)
	}
	if _, ok := got["traces/index.json"]; ok {
		t.Error("a session's initramfs has a trace index")
	}
}

// Large payloads are compressed; both kinds decode the same.
func TestFramesCompressLargePayloads(t *testing.T) {
	var buf bytes.Buffer
	fw := &frameWriter{w: &buf}
	small := runPayload{ID: 1, Source: "conn a b\n"}
	large := runPayload{ID: 2, Source: strings.Repeat("send a \"xxxxxxxx\"\n", 200)}
	fw.write(kindRun, small)
	fw.write(kindRun, large)
	if buf.Len() > len(large.Source)/4 {
		t.Errorf("%d bytes on the wire for a %d-byte trace", buf.Len(), len(large.Source))
	}
	fr := newFrameReader(&buf)
	for _, want := range []runPayload{small, large} {
		f, err := fr.read()
		var got runPayload
		if err == nil {
			err = json.Unmarshal(f.payload, &got)
		}
		if err != nil || got.ID != want.ID || got.Source != want.Source {
			t.Fatalf("frame %d: %v", want.ID, err)
		}
	}
}

func TestSessionArgs(t *testing.T) {
	cfg := Config{Kernel: "/boot/vmlinuz"}.withDefaults()
	if a := strings.Join(qemuArgs(cfg, "tcg", "i", "c", true), " "); !strings.Contains(a, "SPLICECHECK_SESSION=1") {
		t.Errorf("session args: %s", a)
	}
	if a := strings.Join(qemuArgs(cfg, "tcg", "i", "c", false), " "); strings.Contains(a, "SPLICECHECK_SESSION") {
		t.Errorf("batch args: %s", a)
	}
	if _, err := NewSession(Config{Kernel: writeJunk(t, 8192), GuestBinary: staticBinary(t), Runner: RunnerVng}); !errors.Is(err, ErrBadRunner) {
		t.Errorf("vng session: %v", err)
	}
	_, err := NewSession(Config{Kernel: writeJunk(t, 8192), GuestBinary: staticBinary(t), Modules: []string{"/nonexistent/m.ko"}})
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "--module /nonexistent/m.ko: ") {
		t.Errorf("missing module: %v", err)
	}
}

// sessionModule is a module of the guest kernel's own tree that depends on
// nothing (Debian ships tcp_htcp.ko), or "".
func sessionModule(kernel string) string {
	rel := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	m := filepath.Join("/lib/modules", rel, "kernel/net/ipv4/tcp_htcp.ko")
	if _, err := os.Stat(m); err != nil {
		return ""
	}
	return m
}

func parseTrace(t *testing.T, src string) *trace.Trace {
	t.Helper()
	tr, err := trace.Parse("s.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// One session: a guest with a module boots once for several traces; a
// caller that gives up does not disturb the next trace; a guest that
// hangs on a trace, or panics, is killed and the next trace boots a fresh
// one. Three boots in all; Close leaves no QEMU and no temp dir.
func TestSessionLongLivedGuest(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel()
	cfg := Config{Kernel: kernel, GuestBinary: guestBinary(t)}
	mod := sessionModule(kernel)
	if mod != "" {
		cfg.Modules = []string{mod}
	}
	s, err := NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Boots != 1 || st.Release == "" || (mod != "" && strings.Join(st.Modules, ",") != "tcp_htcp") {
		t.Fatalf("after Start: %+v", st)
	}
	// Comments and blank lines: the guest runs the canonical form, and
	// the observations carry this file's lines.
	hi := parseTrace(t, "# greet\n\nconn a b\n\nsend a \"hi\"\n@t1 recv b 2\njoin t1\n")
	run := func(tr *trace.Trace) []trace.Observation {
		t.Helper()
		// A generous op timeout: a guest under TCG on a busy machine is
		// slow, and the results checked must not depend on it.
		obs, err := trace.Observe(ctx, s, tr, trace.Options{OpTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return obs
	}
	want := []string{`3: conn a b => ok`, `5: send a "hi" => 2`, `6: @t1 recv b 2 => 2 "hi"`, `7: join t1 => ok`}
	check := func(obs []trace.Observation) {
		t.Helper()
		var got []string
		for _, o := range obs {
			got = append(got, o.String())
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("observations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	check(run(hi))
	check(run(hi))

	// A caller that gives up: the guest is still sleeping when its
	// context ends; the next trace gets its own result.
	sleepy := parseTrace(t, "sleep 1500\n")
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.Run(short, sleepy, trace.Options{Profile: "linux-6.1", OpTimeout: 5 * time.Second})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned trace: %v", err)
	}
	check(run(hi))
	if st := s.Stats(); st.Boots != 1 || st.Abandoned != 1 {
		t.Fatalf("after the abandoned trace: %+v", st)
	}

	// A guest that hangs on a trace past its limit is killed...
	opts := trace.Options{Profile: "linux-6.1", OpTimeout: time.Second}
	s.cfg.TraceTimeout = 3 * time.Second
	_, err = s.run(ctx, hi, opts, "hang")
	s.cfg.TraceTimeout = 0
	checkOneLine(t, err, ErrHung)
	// ... and the next trace boots a fresh one.
	check(run(hi))
	// A guest kernel that panics on a trace: the trace's error carries
	// the panic; the next trace boots again.
	_, err = s.run(ctx, hi, opts, "panic")
	checkOneLine(t, err, ErrPanic)
	if !strings.Contains(err.Error(), "Kernel panic - not syncing") {
		t.Errorf("panic message missing: %v", err)
	}
	check(run(hi))
	st := s.Stats()
	if st.Boots != 3 || st.Traces != 5 {
		t.Fatalf("stats %+v, want 3 boots and 5 traces", st)
	}
	t.Logf("%d boots, first ready in %v; %d traces in %v", st.Boots, st.FirstReady, st.Traces, st.TraceTime)

	tmp, pids := s.tmp.path, s.pids
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s left behind: %v", tmp, err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("QEMU %d left behind: %v", pid, err)
		}
	}
	if _, err := s.Run(ctx, hi, opts); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// A module the kernel refuses fails the boot with the kernel's own words,
// on one line, and every later call with the same error, without booting
// again.
func TestSessionRefusedModule(t *testing.T) {
	kernel := requireVM(t)
	t.Parallel()
	junk := filepath.Join(t.TempDir(), "junk.ko")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not an ELF module "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(Config{Kernel: kernel, GuestBinary: guestBinary(t), Modules: []string{junk}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Start(t.Context())
	checkOneLine(t, err, ErrModule)
	for _, want := range []string{"--module " + junk + ": ", "finit_module: ", "kernel: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	_, err2 := trace.Observe(t.Context(), s, parseTrace(t, "conn a b\n"), trace.Options{})
	if !errors.Is(err2, ErrModule) || s.Stats().Boots != 1 {
		t.Errorf("second call: %v after %d boots", err2, s.Stats().Boots)
	}
	tmp := s.tmp.path
	s.Close()
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s left behind", tmp)
	}
}

func TestSplitModuleArg(t *testing.T) {
	for arg, want := range map[string][2]string{
		"m.ko":                            {"m.ko", ""},
		"/a/tcp_splice.ko:ring_kbytes=16": {"/a/tcp_splice.ko", "ring_kbytes=16"},
		"m.ko:a=1,b=2":                    {"m.ko", "a=1 b=2"},
		"/odd:dir/m.ko":                   {"/odd:dir/m.ko", ""},
	} {
		if p, params := splitModuleArg(arg); p != want[0] || params != want[1] {
			t.Errorf("splitModuleArg(%q) = %q, %q; want %q, %q", arg, p, params, want[0], want[1])
		}
	}
}
