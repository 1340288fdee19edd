package kernelshim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

// testThread is a trace thread driven by a test, as the runner drives one:
// a goroutine locked to its OS thread and never unlocked.
type testThread struct {
	name string
	ch   chan func()
}

func startThread(t *testing.T, ex trace.Executor, name string) *testThread {
	t.Helper()
	th := &testThread{name: name, ch: make(chan func())}
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		errc <- ex.StartThread(name)
		for f := range th.ch {
			f()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(th.ch) })
	return th
}

// exec runs op i of tr on th and returns a channel for its result.
func (th *testThread) exec(ctx context.Context, ex trace.Executor, tr *trace.Trace, i int) <-chan trace.Result {
	res := make(chan trace.Result, 1)
	op := &tr.Ops[i]
	c := &trace.Call{Thread: th.name, Index: i, Op: op, Data: op.Data}
	th.ch <- func() { res <- ex.Exec(ctx, c) }
	return res
}

func parse(t testing.TB, src string) *trace.Trace {
	t.Helper()
	tr, err := trace.Parse("test.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func open(t *testing.T, tr *trace.Trace) *executor {
	t.Helper()
	testenv.RequireKernel(t, Available)
	ex, err := New(Config{}).Open(context.Background(), tr, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ex.(*executor)
}

// waitBlocked waits until Blocked(name) is want (settlePolls bounds the
// wait: a thread on a loaded machine may take seconds to reach its
// syscall).
func waitBlocked(t *testing.T, ex trace.Executor, name string, want bool) {
	t.Helper()
	if !pollUntil(settlePolls, func() bool { return ex.Blocked(name) == want }) {
		t.Fatalf("Blocked(%s) never became %v in %d polls", name, want, settlePolls)
	}
}

// Blocked is true exactly while a thread sleeps in its op's blocking
// syscall, and false for an idle thread and for a non-blocking op.
func TestBlockedRecv(t *testing.T) {
	tr := parse(t, "conn a b\n@t1 recv b 5\nsend a \"hello\"\n@t1 recv b 5 dontwait\n@t1 sleep 600000\n")
	ex := open(t, tr)
	defer ex.Close()
	main, t1 := startThread(t, ex, "main"), startThread(t, ex, "t1")
	ctx := context.Background()
	if r := <-main.exec(ctx, ex, tr, 0); r.String() != "ok" {
		t.Fatalf("conn: %v", r)
	}
	if ex.Blocked("t1") || ex.Blocked("main") {
		t.Fatal("idle threads reported blocked")
	}
	recv := t1.exec(ctx, ex, tr, 1)
	waitBlocked(t, ex, "t1", true)
	ts, err := readTask(ex.threads["t1"].tid, false)
	if err != nil || ts.state != 'S' || ts.syscall != unix.SYS_RECVFROM {
		t.Errorf("t1 blocked but /proc says %c in syscall %d (%v)", ts.state, ts.syscall, err)
	}
	if ex.Blocked("main") {
		t.Error("idle main reported blocked")
	}
	if r := <-main.exec(ctx, ex, tr, 2); r.String() != "5" {
		t.Fatalf("send: %v", r)
	}
	// The send's settle waited for t1 to wake: it is no longer blocked,
	// and its result comes (on a loaded machine, once t1 gets a CPU).
	if ex.Blocked("t1") {
		t.Fatal("recv not woken by send")
	}
	if r := <-recv; r.String() != `5 "hello"` {
		t.Errorf("recv: %v", r)
	}
	// A non-blocking recv is never blocked, even with nothing to read.
	dontwait := t1.exec(ctx, ex, tr, 3)
	for done := false; !done; {
		select {
		case r := <-dontwait:
			if r.String() != "-EAGAIN" {
				t.Errorf("recv dontwait: %v", r)
			}
			done = true
		default:
			if ex.Blocked("t1") {
				t.Fatal("recv dontwait reported blocked")
			}
		}
	}
	// A sleep is blocked until it ends: a ten-minute one, so that a
	// loaded machine cannot end it before it is seen blocked, ended by
	// its context (as the runner's timeout ends it).
	sleepCtx, endSleep := context.WithCancel(ctx)
	defer endSleep()
	sleep := t1.exec(sleepCtx, ex, tr, 4)
	waitBlocked(t, ex, "t1", true)
	endSleep()
	if r := <-sleep; r.String() != "-ETIMEDOUT (runner)" {
		t.Errorf("sleep ended by its context: %v", r)
	}
	if ex.Blocked("t1") {
		t.Error("t1 blocked after its sleep")
	}
}

// Through the runner: a blocked thread blocks only itself, every time.
func TestBlockedThroughRunner(t *testing.T) {
	const src = `conn a b
@t1 recv b 5
fionread b
send a "hello"
join t1
fionread b
@t2 recv a 3 waitall
send b "x"
state a
send b "yz"
join t2
`
	want := `1: conn a b => ok
2: @t1 recv b 5 => 5 "hello"
3: fionread b => 0
4: send a "hello" => 5
5: join t1 => ok
6: fionread b => 0
7: @t2 recv a 3 waitall => 3 "xyz"
8: send b "x" => 1
9: state a => ESTABLISHED
10: send b "yz" => 2
11: join t2 => ok
`
	for i := 0; i < 10; i++ {
		if got := mustRun(t, src); got != want {
			t.Fatalf("run %d:\n%s\nwant\n%s", i, got, want)
		}
	}
}

// An op that never returns is reported -ETIMEDOUT (runner), its thread is
// released (the watcher shuts the socket down), and the run goes on and
// cleans up, whatever syscall it was stuck in.
func TestTimeout(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int // the op that must time out; -1: the first op that times out
		check     map[int]string
	}{
		{"recv", "conn a b\nrecv b 10\nsend a \"x\"\nrecv b 10\n", 2, map[int]string{
			3: "1", // the run goes on; b is shut down for reading only
			4: `1 "x"`,
		}},
		{"splice-socket", "conn a b\nsplice b 10\nsend a \"x\"\n", 2, nil},
		{"splice-full-pipe", "conn a b\nsend a 1m\n" + strings.Repeat("splice b 1m\n", 16), -1, nil},
		// The watcher shut a down for writing: its FIN goes after the
		// data. It waits behind it (FIN_WAIT1), unless b's buffer took all
		// that was queued when the watcher struck and acked the FIN too
		// (FIN_WAIT2): how much was queued depends on timing, so either.
		{"send-full", "conn a b\nset a sndbuf 4k\nset b rcvbuf 4k\nsend a 16m\nstate a\n", 4, map[int]string{5: "FIN_WAIT1|FIN_WAIT2"}},
		{"iocopy-no-fin", "conn a b\nconn c d\nsend a \"x\"\niocopy b c\nrecv d 10 dontwait\n", 4, map[int]string{5: `1 "x"`}},
		{"sockmap-recv", "conn a b\nmap m sockmap 1\nprog m sk_msg pass\ninsert m 0 b\n@t1 recv b 10\nsleep 1\n", 5, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A timed-out op that is not released fails the run
			// (the runner's errStuck), whatever the machine's speed.
			obs, err := run(t, Config{}, tc.src, trace.Options{OpTimeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if tc.line < 0 {
				for _, o := range obs {
					if strings.Contains(o.Result.String(), "runner") {
						tc.line = o.Line
						break
					}
				}
				if tc.line < 0 {
					t.Fatalf("nothing timed out:\n%s", render(obs))
				}
			}
			for _, o := range obs {
				want, ok := tc.check[o.Line]
				switch {
				case o.Line == tc.line:
					if o.Result.String() != "-ETIMEDOUT (runner)" {
						t.Errorf("line %d: %s, want a runner timeout", o.Line, o)
					}
				case ok && !slices.Contains(strings.Split(want, "|"), o.Result.String()):
					t.Errorf("line %d: %s, want %s", o.Line, o, want)
				case !ok && strings.Contains(o.Result.String(), "runner"):
					t.Errorf("line %d timed out too: %s", o.Line, o)
				}
			}
		})
	}
}

// iocopy leaves both sockets with their own file status flags: Go's
// net.FileConn sets O_NONBLOCK on the shared open file description.
func TestIOCopyRestoresFlags(t *testing.T) {
	// After the copy, c blocks again: t1 waits until d sends.
	got := mustRun(t, `conn a b
conn c d
send a "copy"
close a
iocopy b c
@t1 recv c 10
send d "back"
join t1
recv d 10
`)
	want := `1: conn a b => ok
2: conn c d => ok
3: send a "copy" => 4
4: close a => ok
5: iocopy b c => 4
6: @t1 recv c 10 => 4 "back"
7: send d "back" => 4
8: join t1 => ok
9: recv d 10 => 4 "copy"
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// The flags themselves, after a copy that ends at EOF and after one
	// that ends at SO_RCVTIMEO's deadline.
	tr := parse(t, "conn a b\nconn c d\nsend a \"x\"\nset b rcvtimeo 50\niocopy b c\nclose a\niocopy b c\n")
	ex := open(t, tr)
	defer ex.Close()
	main := startThread(t, ex, "main")
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		<-main.exec(ctx, ex, tr, i)
	}
	flags := func(name string) int {
		fd, err := ex.sockFD(name)
		if err != nil {
			t.Fatal(err)
		}
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fl
	}
	b0, c0 := flags("b"), flags("c")
	for _, step := range []struct {
		i    int
		want string
	}{{4, "1 -ETIMEDOUT"}, {5, "ok"}, {6, "0"}} {
		if r := <-main.exec(ctx, ex, tr, step.i); r.String() != step.want {
			t.Fatalf("%s: %v, want %s", tr.Ops[step.i].String(), r, step.want)
		}
		if b1, c1 := flags("b"), flags("c"); b1 != b0 || c1 != c0 || b1&unix.O_NONBLOCK != 0 {
			t.Errorf("after %s: flags changed: b %#x -> %#x, c %#x -> %#x", tr.Ops[step.i].String(), b0, b1, c0, c1)
		}
	}
}

// A panic inside an op fails the run, and everything the run created is
// released all the same.
func TestCleanupOnPanic(t *testing.T) {
	testenv.RequireKernel(t, Available)
	// Warm up the once-per-process state (cilium/ebpf probes).
	mustRun(t, "conn a b\nmap m sockmap 1\nprog m sk_skb pass parser all\ninsert m 0 a\n")
	base := stableBaseline(t)
	cfg := Config{testHook: func(c *trace.Call) {
		if c.Op.Kind == trace.OpSend {
			panic("planted panic")
		}
	}}
	_, err := run(t, cfg, "conn a b\nmap m sockhash 2\nprog m sk_skb pass parser all\nprog m sk_msg pass\ninsert m 0 a\nsend b \"x\"\n@t1 recv a 1\n@t2 send a \"y\"\n", trace.Options{})
	if err == nil || !strings.Contains(err.Error(), "planted panic") {
		t.Fatalf("err = %v", err)
	}
	if after := awaitBaseline(t, base); !after.equal(base) {
		t.Errorf("leak after a panic:\nbefore %v\nafter  %v", base, after)
	}
}

// Every op on a socket the trace closed returns -EBADF.
func TestClosedSocketIsEBADF(t *testing.T) {
	got := mustRun(t, `conn a b
close a
send a "x"
recv a 1
splice a 1
pipe a 1
fionread a
poll a
state a
shutdown a wr
set a nonblock on
close a
iocopy a b
iocopy b a
map m sockmap 1
insert m 0 a
`)
	for _, line := range strings.Split(strings.TrimSpace(got), "\n")[2:] {
		if !strings.HasSuffix(line, "=> -EBADF") && !strings.HasSuffix(line, "map m sockmap 1 => ok") {
			t.Errorf("%s: want -EBADF", line)
		}
	}
}

// Every canned program form loads, passes the verifier and attaches, on
// both map types, and pair is not supported on a mainline kernel.
func TestProgramForms(t *testing.T) {
	// A socket's psock takes the programs of every map it is in, so each
	// map type gets its own sockets (else the insert fails with EBUSY).
	var b strings.Builder
	for _, mt := range []string{"sockmap", "sockhash"} {
		m := "m_" + mt
		fmt.Fprintf(&b, "conn a_%s b_%s\nmap %s %s 2\n", mt, mt, m, mt)
		for _, p := range []string{
			"sk_msg pass", "sk_msg drop", "sk_msg redirect 1 ingress", "sk_msg redirect 0 egress",
			"sk_msg pass apply 10", "sk_msg drop cork 100", "sk_msg redirect 1 ingress apply 1 cork 2",
			"sk_skb pass", "sk_skb drop", "sk_skb redirect 1 ingress", "sk_skb redirect 0 egress",
			"sk_skb pass parser 10", "sk_skb redirect 1 ingress parser all",
		} {
			fmt.Fprintf(&b, "prog %s %s\n", m, p)
		}
		fmt.Fprintf(&b, "insert %s 0 a_%s\ninsert %s 1 b_%s\n", m, mt, m, mt)
	}
	b.WriteString("pair a_sockmap b_sockmap\n")
	got := mustRun(t, b.String())
	lines := strings.Split(strings.TrimSpace(got), "\n")
	for _, line := range lines[:len(lines)-1] {
		if !strings.HasSuffix(line, "=> ok") {
			t.Errorf("%s: want ok", line)
		}
	}
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, "=> -EOPNOTSUPP") {
		t.Errorf("%s: want -EOPNOTSUPP", last)
	}
}

// Without privileges, Available (and Open) report one clear line wrapping
// ErrNoPrivilege. The test binary re-runs itself as user nobody.
func TestAvailableUnprivileged(t *testing.T) {
	if os.Getenv("KERNELSHIM_PROBE_CHILD") == "1" {
		err := Available()
		_, oerr := New(Config{}).Open(context.Background(), parse(t, "conn a b\n"), trace.Options{})
		fmt.Printf("is=%v open=%v\n%v", errors.Is(err, ErrNoPrivilege), errors.Is(oerr, ErrNoPrivilege), err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to user nobody")
	}
	dir, err := os.MkdirTemp("", "kernelshim-probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "kernelshim.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	src.Close()
	if cerr := dst.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	cmd := exec.Command(bin, "-test.run=^TestAvailableUnprivileged$")
	cmd.Env = append(os.Environ(), "KERNELSHIM_PROBE_CHILD=1")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	first, rest, _ := strings.Cut(string(out), "\n")
	msg, _, _ := strings.Cut(rest, "\n")
	if first != "is=true open=true" {
		t.Errorf("child: %q, want both errors to wrap ErrNoPrivilege", first)
	}
	if !strings.HasPrefix(msg, "kernel backend: ") || !strings.Contains(msg, "need root") || !strings.HasSuffix(msg, "running as uid 65534PASS") {
		t.Errorf("message %q", msg)
	}
}

// An iocopy in its own thread blocks only that thread while Go's netpoller
// waits, and is woken by main's ops, the same way every run.
func TestIOCopyInThread(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`conn a1 a2
conn b1 b2
@t1 iocopy a2 b1
send a1 "hello"
shutdown a1 wr
join t1
recv b2 10
`, `1: conn a1 a2 => ok
2: conn b1 b2 => ok
3: @t1 iocopy a2 b1 => 5
4: send a1 "hello" => 5
5: shutdown a1 wr => ok
6: join t1 => ok
7: recv b2 10 => 5 "hello"
`},
		{`conn a1 a2
conn b1 b2
map m sockmap 2
prog m sk_msg redirect 1 ingress
insert m 0 a1
insert m 1 a2
@t1 iocopy a2 b1
send a1 "hello"
shutdown a1 wr
join t1
recv a2 10
`, `1: conn a1 a2 => ok
2: conn b1 b2 => ok
3: map m sockmap 2 => ok
4: prog m sk_msg redirect 1 ingress => ok
5: insert m 0 a1 => ok
6: insert m 1 a2 => ok
7: @t1 iocopy a2 b1 => 0
8: send a1 "hello" => 5
9: shutdown a1 wr => ok
10: join t1 => ok
11: recv a2 10 => 5 "hello"
`},
	} {
		for i := 0; i < 5; i++ {
			if got := mustRun(t, tc.src); got != tc.want {
				t.Fatalf("run %d:\n%s\nwant\n%s", i, got, tc.want)
			}
		}
	}
}
