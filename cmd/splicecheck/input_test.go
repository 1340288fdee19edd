package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// oneShortLine fails unless s is one line of at most max bytes.
func oneShortLine(t *testing.T, what, s string, max int) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") || len(s) > max {
		t.Errorf("%s: want one line under %d bytes, got %d bytes: %.300q", what, max, len(s), s)
	}
}

// Input that is not a trace is refused with one short line and exit 2,
// before anything runs.
func TestBadTraceInputExit2(t *testing.T) {
	dir := t.TempDir()
	elf := filepath.Join(dir, "elf")
	os.WriteFile(elf, append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64<<10)...), 0o644)
	empty := writeTrace(t, "empty.trace", "# nothing\n\n")
	token := writeTrace(t, "token.trace", strings.Repeat("z", 1<<20)+"\n")
	big := writeTrace(t, "big.trace", "conn a1 a2\n"+strings.Repeat("poll a1\n", 200))
	// A sparse 1 GiB file: refused for its size before a byte is read
	// (read, it would be binary data).
	huge := filepath.Join(dir, "huge.trace")
	if err := os.WriteFile(huge, nil, 0o644); err != nil || os.Truncate(huge, 1<<30) != nil {
		t.Fatal("cannot make a sparse file")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "/dev/zero"}, "/dev/zero:1:1: not a trace (binary data)"},
		{[]string{"diff", "--a", "model", "--b", "netstack", "/dev/zero"}, "/dev/zero:1:1: not a trace (binary data)"},
		{[]string{"run", dir}, dir + ": cannot read trace: is a directory"},
		{[]string{"run", elf}, elf + ":1:8: not a trace (binary data)"},
		{[]string{"run", empty}, empty + ": no ops"},
		{[]string{"run", token}, token + `:1:1: unknown op "zzzz`},
		{[]string{"run", "--max-trace-size", "1K", big}, big + ": trace larger than the read limit (1611 bytes; the limit is 1 KiB); --max-trace-size raises it"},
		{[]string{"run", huge}, huge + ": trace larger than the read limit (1073741824 bytes; the limit is 8 MiB); --max-trace-size raises it"},
		{[]string{"run", filepath.Join(dir, "missing.trace")}, "no such file"},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != exitBadInput || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: code %d stdout %q stderr %.300q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
		oneShortLine(t, strings.Join(c.args, " "), errOut, 200)
	}
}

func TestMaxTraceSizeFlag(t *testing.T) {
	p := writeTrace(t, "ok.trace", "conn a1 a2\npoll a1\n")
	for _, v := range []string{"19", "1K", "8m", "2G", "1073741824"} {
		if code, _, errOut := runCLI(t, "run", "--max-trace-size", v, p); code != exitOK {
			t.Errorf("--max-trace-size %s: code %d %s", v, code, errOut)
		}
	}
	if code, _, _ := runCLI(t, "run", "--max-trace-size", "18", p); code != exitBadInput {
		t.Errorf("--max-trace-size 18 on a 19-byte trace: code %d", code)
	}
	for _, v := range []string{"0", "-1", "12X", "K", "1.5M", "+3", "99999999999G"} {
		code, _, errOut := runCLI(t, "run", "--max-trace-size", v, p)
		last := errOut[strings.LastIndex(strings.TrimSuffix(errOut, "\n"), "\n")+1:]
		if code != exitBadInput || !strings.Contains(last, "-max-trace-size") {
			t.Errorf("--max-trace-size %s: code %d, last line %q", v, code, last)
		}
	}
}

// withStdin makes "-" read src for the test.
func withStdin(t *testing.T, r io.Reader) {
	old := stdin
	stdin = r
	t.Cleanup(func() { stdin = old })
}

// "-" reads the trace from standard input, once.
func TestTraceFromStdin(t *testing.T) {
	withStdin(t, strings.NewReader("conn a1 a2\nsend a1 \"hi\"\nrecv a2 10\n"))
	code, out, errOut := runCLI(t, "run", "-")
	if code != exitOK || out != "1: conn a1 a2 => ok\n2: send a1 \"hi\" => 2\n3: recv a2 10 => 2 \"hi\"\n" {
		t.Errorf("run -: code %d stdout %q stderr %q", code, out, errOut)
	}
	withStdin(t, strings.NewReader("conn a1 a2\nfrob a1\n"))
	if code, _, errOut := runCLI(t, "run", "-"); code != exitBadInput || errOut != "<stdin>:2:1: unknown op \"frob\"\n" {
		t.Errorf("run - with a bad trace: code %d stderr %q", code, errOut)
	}
	withStdin(t, strings.NewReader("conn a1 a2\n"))
	if code, _, errOut := runCLI(t, "diff", "--a", "model", "--b", "netstack", "-"); code != exitOK {
		t.Errorf("diff -: code %d stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"run", "-", "-"}, {"vm", "--kernel", "k", "-"}} {
		if code, _, errOut := runCLI(t, args...); code != exitBadInput || !strings.HasPrefix(errOut, "splicecheck "+args[0]+": -: ") {
			t.Errorf("%v: code %d stderr %q", args, code, errOut)
		}
	}
}

// blockedReader blocks in Read until closed, saying when it has started.
type blockedReader struct {
	started chan struct{}
	release chan struct{}
}

func (r *blockedReader) Read([]byte) (int, error) {
	close(r.started)
	<-r.release
	return 0, io.EOF
}

// A read blocked on standard input (a terminal, an idle pipe) returns
// once the context is canceled, with an error wrapping context.Canceled.
func TestReadBlockedStdinCanceled(t *testing.T) {
	r := &blockedReader{started: make(chan struct{}), release: make(chan struct{})}
	defer close(r.release)
	withStdin(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	var in traceInput
	in.limit = trace.DefaultReadLimit
	go func() {
		<-r.started
		cancel()
	}()
	_, err := in.read(ctx, "-")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A canceled context stops the read of an endless input (the /dev/zero
// of a trace: valid ops forever) with an error wrapping context.Canceled.
func TestReadEndlessCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	withStdin(t, &opsForever{onOp: func(n int) {
		if n == 100_000 {
			cancel()
		}
	}})
	in := traceInput{limit: 1 << 40}
	if _, err := in.read(ctx, "-"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// opsForever yields "conn a1 a2" and then "poll a1" forever.
type opsForever struct {
	n    int
	onOp func(n int)
}

func (r *opsForever) Read(b []byte) (int, error) {
	const op = "poll a1\n"
	if r.n == 0 {
		r.n++
		return copy(b, "conn a1 a2\n"), nil
	}
	k := 0
	for len(b)-k >= len(op) {
		k += copy(b[k:], op)
		r.n++
		r.onOp(r.n)
	}
	return k, nil
}
