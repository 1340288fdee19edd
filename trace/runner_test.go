package trace

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Trace {
	t.Helper()
	tr, err := Parse("test.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func runFake(t *testing.T, f *fakeBackend, src string, opts Options) ([]Observation, error) {
	t.Helper()
	return Observe(context.Background(), f, mustParse(t, src), opts)
}

func render(obs []Observation) string {
	var b strings.Builder
	for _, o := range obs {
		b.WriteString(o.String() + "\n")
	}
	return b.String()
}

// A blocked op blocks only its own thread: main goes on and wakes it.
func TestRunnerThreadBlocksOnlyItself(t *testing.T) {
	f := &fakeBackend{}
	obs, err := runFake(t, f, `conn a b
@t1 recv b 5
fionread b
send a "hello"
join t1
fionread b
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `1: conn a b => ok
2: @t1 recv b 5 => 5 "hello"
3: fionread b => 0
4: send a "hello" => 5
5: join t1 => ok
6: fionread b => 0
`
	if got := render(obs); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if f.closed != 1 {
		t.Errorf("Close called %d times", f.closed)
	}
	if strings.Join(f.threads, ",") != "main,t1" {
		t.Errorf("threads started: %v", f.threads)
	}
}

// The same trace with the recv in main blocks main, so the send behind it
// never runs and the recv times out.
func TestRunnerMainBlocks(t *testing.T) {
	obs, err := runFake(t, &fakeBackend{}, "conn a b\nrecv b 5\nsend a \"x\"\n", Options{OpTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := obs[1].String(); got != "2: recv b 5 => -ETIMEDOUT (runner)" {
		t.Errorf("got %s", got)
	}
	if got := obs[2].String(); got != "3: send a \"x\" => 1" {
		t.Errorf("got %s", got)
	}
}

// join waits for every op dispatched to the target before it, and a thread
// blocked in join lets the dispatcher go on.
func TestRunnerJoin(t *testing.T) {
	obs, err := runFake(t, &fakeBackend{}, `conn a b
@t1 sleep 30
@t1 send a "late"
@t2 join t1
@t2 fionread b
fionread b
join t2
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// main's fionread runs while t1 sleeps: nothing yet. t2 joined t1 first.
	if got := obs[5].Result.String(); got != "0" {
		t.Errorf("main fionread = %s, want 0 (t1 still asleep)", got)
	}
	if got := obs[4].Result.String(); got != "4" {
		t.Errorf("t2 fionread after join = %s, want 4", got)
	}
}

// Pattern data continues at each socket's own stream offset.
func TestRunnerPatternOffsets(t *testing.T) {
	obs, err := runFake(t, &fakeBackend{}, `conn a b
send a "xy"
send a 3
send b 2
recv b 10
recv a 10
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(obs[4].Result.Data); got != "xy\x02\x03\x04" {
		t.Errorf("b received %q", got)
	}
	if got := string(obs[5].Result.Data); got != "\x00\x01" {
		t.Errorf("a received %q", got)
	}
}

func TestRunnerPanicIsAnErrorAndCloses(t *testing.T) {
	f := &fakeBackend{panicOn: OpPoll}
	_, err := runFake(t, f, "conn a b\n@t1 poll a\nfionread a\n", Options{})
	if err == nil || !strings.Contains(err.Error(), "planted panic") || !strings.Contains(err.Error(), "test.trace:2") {
		t.Fatalf("err = %v", err)
	}
	if f.closed != 1 {
		t.Errorf("Close called %d times after a panic", f.closed)
	}
}

func TestRunnerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeBackend{onBlock: cancel}
	_, err := Run(ctx, f, mustParse(t, "conn a b\n@t1 recv b 1\nsleep 5000\n"), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if f.closed != 1 {
		t.Errorf("Close called %d times", f.closed)
	}
}

// A backend whose op ignores its cancellation is declared stuck: the run
// fails with errStuck and the backend is closed. The recv returns only
// when the test ends (release), so a runner that never gave up would
// not return at all (go test's timeout then names this test); how long
// giving up takes is not asserted (abandonGrace is shortened only to
// keep the test short).
func TestRunnerStuckBackend(t *testing.T) {
	defer func(g time.Duration) { abandonGrace = g }(abandonGrace)
	abandonGrace = 50 * time.Millisecond
	f := &fakeBackend{ignoreCtx: true, release: make(chan struct{})}
	defer close(f.release)
	_, err := runFake(t, f, "conn a b\nrecv b 1\n", Options{OpTimeout: 10 * time.Millisecond})
	if !errors.Is(err, errStuck) {
		t.Fatalf("err = %v", err)
	}
	if f.closed != 1 {
		t.Errorf("Close called %d times", f.closed)
	}
}

func TestRunnerBadProfile(t *testing.T) {
	_, err := runFake(t, &fakeBackend{}, "conn a b\n", Options{Profile: "linux-9.9"})
	if !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveOptions(t *testing.T) {
	tr := mustParse(t, "profile linux-6.1\nconn a b\n")
	o, _ := ResolveOptions(tr, Options{})
	if o.Profile != "linux-6.1" || o.OpTimeout != DefaultOpTimeout {
		t.Errorf("from trace: %+v", o)
	}
	o, _ = ResolveOptions(tr, Options{Profile: "splice-copy"})
	if o.Profile != "linux-6.18+splice-copy" {
		t.Errorf("flag must override the directive: %+v", o)
	}
	o, _ = ResolveOptions(mustParse(t, "conn a b\n"), Options{})
	if o.Profile != DefaultBase {
		t.Errorf("default: %+v", o)
	}
}

// PatternBuffers covers any offset and length with slices of one shared
// buffer, each but the last a whole number of periods, and reads like
// Pattern.
func TestPatternBuffers(t *testing.T) {
	for _, c := range []struct{ off, n int64 }{{0, 0}, {0, 1}, {250, 3}, {1000, patternChunk}, {77, 2*patternChunk + 5}} {
		bufs := PatternBuffers(c.off, c.n)
		var got []byte
		for i, b := range bufs {
			if i < len(bufs)-1 && len(b) != patternChunk {
				t.Errorf("off %d n %d: slice %d has %d bytes, want %d", c.off, c.n, i, len(b), patternChunk)
			}
			got = append(got, b...)
		}
		if !bytes.Equal(got, Pattern(c.off, c.n)) {
			t.Errorf("off %d n %d: PatternBuffers differs from Pattern", c.off, c.n)
		}
	}
	if n := len(PatternBuffers(0, MaxSize)); n > 1024 {
		t.Errorf("MaxSize takes %d slices, more than IOV_MAX", n)
	}
}

// A join has no timeout of its own: joining a thread whose op times out
// reports ok once that op has ended.
func TestRunnerJoinBlockedThread(t *testing.T) {
	obs, err := runFake(t, &fakeBackend{}, "conn a b\n@t1 recv b 1\njoin t1\n", Options{OpTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := obs[1].Result.String(); got != "-ETIMEDOUT (runner)" {
		t.Errorf("recv = %s, want the runner's timeout", got)
	}
	if got := obs[2].Result.String(); got != "ok" {
		t.Errorf("join = %s, want ok", got)
	}
}

// Timeouts due together fire one at a time, in op order, each after the
// ops the previous abort ended have settled: the first reader times out,
// its abort (a shutdown) gives the others EOF, on every run.
func TestRunnerTimeoutsOneAtATime(t *testing.T) {
	src := "conn a b\n@t1 recv b 1\n@t2 recv b 1\n@t3 recv b 1\n@t4 recv b 1\n"
	for run := 0; run < 10; run++ {
		obs, err := runFake(t, &fakeBackend{abortShuts: true}, src, Options{OpTimeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"ok", "-ETIMEDOUT (runner)", `0 ""`, `0 ""`, `0 ""`}
		for i, w := range want {
			if got := obs[i].Result.String(); got != w {
				t.Fatalf("run %d: op %d = %s, want %s", run, i+1, got, w)
			}
		}
	}
}

// Dispatching takes no trace time: a reader blocked while the later ops
// are dispatched is not timed out before they all are, however long
// they take, and gets the bytes the last op sends.
func TestRunnerDispatchTakesNoTraceTime(t *testing.T) {
	src := "conn a b\n@t1 recv b 1\nfionread a\nfionread a\nfionread a\nsend a \"x\"\n"
	opts := Options{OpTimeout: 100 * time.Millisecond}
	obs, err := runFake(t, &fakeBackend{slowFIONREAD: 4 * opts.OpTimeout}, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := obs[1].Result.String(); got != `1 "x"` {
		t.Errorf("recv = %s, want the byte sent last", got)
	}
}

// TestRunOpsRefusesStats: an op-by-op backend keeps no account of a run,
// so a run that asks for one is refused before the backend opens it.
func TestRunOpsRefusesStats(t *testing.T) {
	f := &fakeBackend{}
	_, err := Run(context.Background(), f, mustParse(t, "conn a b\n"), Options{Stats: true})
	if !errors.Is(err, ErrNoStats) {
		t.Fatalf("got %v, want ErrNoStats", err)
	}
	if f.closed != 0 || len(f.threads) != 0 {
		t.Errorf("the backend was opened: %d closes, threads %v", f.closed, f.threads)
	}
}

// TestResolvedOptionsCarryTheProfile: ResolveOptions parses the profile
// once and the options carry it (Parsed); options whose Profile changed
// since, or were never resolved, parse it when asked.
func TestResolvedOptionsCarryTheProfile(t *testing.T) {
	o, err := ResolveOptions(mustParse(t, "profile splice-copy\nconn a b\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.parsed.String() != "linux-6.18+splice-copy" {
		t.Fatalf("resolved options carry %q", o.parsed)
	}
	if p, err := o.Parsed(); err != nil || !p.Has("splice-copy") {
		t.Errorf("Parsed() = %v, %v", p, err)
	}
	o.Profile = "linux-6.1"
	if p, err := o.Parsed(); err != nil || p.Base != "linux-6.1" || p.Has("splice-copy") {
		t.Errorf("after a change of Profile, Parsed() = %v, %v", p, err)
	}
	if _, err := (Options{Profile: "linux-2.6"}).Parsed(); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unresolved unknown profile: %v", err)
	}
}

// TestFreeBSDOpsNeedTheirProfile: the SO_SPLICE ops resolve only under
// FreeBSDProfile; elsewhere the error names the op's position.
func TestFreeBSDOpsNeedTheirProfile(t *testing.T) {
	tr := mustParse(t, "conn a b\nconn c d\nsosplice b c max 10\n")
	if _, err := ResolveOptions(tr, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), ":3:1: ") {
		t.Errorf("linux-6.18: %v", err)
	}
	if _, err := ResolveOptions(tr, Options{Profile: FreeBSDProfile}); err != nil {
		t.Errorf("%s: %v", FreeBSDProfile, err)
	}
}
