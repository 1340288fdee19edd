package trace

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// endless yields head once, then line forever, counting what it gave.
type endless struct {
	head, line string
	given      int64
	lines      int
	onLine     func(n int) // called after each line it yields, if set
	buf        []byte
}

func (e *endless) Read(b []byte) (int, error) {
	for len(e.buf) < len(b) {
		if e.head != "" {
			e.buf, e.head = append(e.buf, e.head...), ""
			continue
		}
		e.buf = append(e.buf, e.line...)
		e.lines++
		if e.onLine != nil {
			e.onLine(e.lines)
		}
	}
	n := copy(b, e.buf)
	e.buf = e.buf[:copy(e.buf, e.buf[n:])]
	e.given += int64(n)
	return n, nil
}

// An endless reader of valid ops is cut at the limit: it is read no
// further than the limit and a buffer, and the parse allocates a small
// multiple of the limit.
func TestParseReaderStopsAtLimit(t *testing.T) {
	const limit = 1 << 20
	r := &endless{head: "conn a1 a2\n", line: "poll a1 # " + strings.Repeat("c", 500) + "\n"}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ParseReader(context.Background(), "inf.trace", r, limit)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if want := "inf.trace: trace larger than the read limit (1 MiB)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if r.given > limit+readBuf+int64(len(r.line)) {
		t.Errorf("read %d bytes past a limit of %d", r.given, limit)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*limit {
		t.Errorf("allocated %d bytes for a limit of %d", alloc, limit)
	}
}

// A canceled context stops the parse of an endless reader.
func TestParseReaderCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &endless{head: "conn a1 a2\n", line: "send a1 10\n", onLine: func(n int) {
		if n == 10_000 {
			cancel()
		}
	}}
	_, err := ParseReader(ctx, "inf.trace", r, 1<<40)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// Binary input is one short line at the first NUL or non-UTF-8 byte.
func TestParseReaderBinary(t *testing.T) {
	elf := append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 4096)...)
	for name, c := range map[string]struct {
		src  []byte
		want string
	}{
		"elf":            {elf, "b.trace:1:8: not a trace (binary data)"},
		"zeros":          {make([]byte, 1<<20), "b.trace:1:1: not a trace (binary data)"},
		"latin1":         {[]byte("conn a1 a2 # caf\xe9\n"), "b.trace:1:17: not a trace (binary data)"},
		"nul on line 2":  {[]byte("conn a1 a2\nsend a1 \"\x00\"\n"), "b.trace:2:10: not a trace (binary data)"},
		"nul in a chunk": {[]byte("conn a1 a2\n# " + strings.Repeat("x", 3*readBuf) + "\x00\n"), "b.trace:2:196611: not a trace (binary data)"},
	} {
		_, err := ParseReader(context.Background(), "b.trace", bytes.NewReader(c.src), DefaultReadLimit)
		if !errors.Is(err, ErrBinary) || !errors.Is(err, ErrSyntax) || err.Error() != c.want {
			t.Errorf("%s: err = %v, want %s", name, err, c.want)
		}
	}
	// Invalid UTF-8 after the first line is left to the syntax.
	if _, err := ParseReader(context.Background(), "b.trace", strings.NewReader("conn a1 a2 # x\n# caf\xe9\n"), DefaultReadLimit); err != nil {
		t.Errorf("latin1 comment on line 2: %v", err)
	}
}

// An error echoes at most maxEcho bytes of a token, however long.
func TestErrorEchoIsShort(t *testing.T) {
	long := strings.Repeat("z", 1<<20)
	for _, src := range []string{
		long + "\n",
		"conn a1 a2\nsend a1 " + long + "\n",
		"conn a1 a2\nsend a1 \"" + long + "\\q\"\n",
		"conn a1 " + strings.ToUpper(long) + "\n",
		"profile " + long + "\n",
		"conn a1 a2\nrecv a1 1 " + long + "\n",
	} {
		_, err := Parse("x.trace", []byte(src))
		if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "…(1048") {
			t.Errorf("error for a 1 MB token: %.300v (%d bytes)", err, len(err.Error()))
		}
	}
	_, err := Parse("x.trace", []byte("conn a1 a2\nsend a1 \"abc\\q\"\n"))
	if want := `x.trace:2:9: bad escape in "abc\q"`; err == nil || err.Error() != want {
		t.Errorf("short token: %v, want %s", err, want)
	}
}

// ParseReader refuses a trace without ops; Parse (for generated traces)
// does not.
func TestParseReaderEmpty(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# only a comment\n", "profile linux-6.1\n"} {
		_, err := ParseReader(context.Background(), "e.trace", strings.NewReader(src), DefaultReadLimit)
		if !errors.Is(err, ErrEmpty) || !strings.HasPrefix(err.Error(), "e.trace: no ops") {
			t.Errorf("%q: err = %v, want ErrEmpty", src, err)
		}
		if _, err := Parse("e.trace", []byte(src)); err != nil {
			t.Errorf("Parse(%q): %v", src, err)
		}
	}
}

// The limit is exact: limit bytes parse, limit+1 do not.
func TestParseReaderLimitExact(t *testing.T) {
	src := "conn a1 a2\npoll a1\n"
	n := int64(len(src))
	if _, err := ParseReader(context.Background(), "l.trace", strings.NewReader(src), n); err != nil {
		t.Errorf("limit = size: %v", err)
	}
	if _, err := ParseReader(context.Background(), "l.trace", strings.NewReader(src), n-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("limit = size-1: %v", err)
	}
}

// A read error is ErrRead with the reader's error.
func TestParseReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("conn a1 a2\n"), iotestErr{boom})
	_, err := ParseReader(context.Background(), "r.trace", r, DefaultReadLimit)
	if !errors.Is(err, ErrRead) || !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{100: "100 bytes", 1 << 10: "1 KiB", 8 << 20: "8 MiB", 2 << 30: "2 GiB", 1500: "1500 bytes"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
