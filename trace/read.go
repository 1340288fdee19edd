package trace

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode/utf8"
)

// DefaultReadLimit is the most input a command reads for one trace unless
// told otherwise (8 MiB: about 600,000 ops of the corpus's shape).
const DefaultReadLimit = 8 << 20

// readBuf is the size of the read buffer; a line longer than it is read in
// pieces, each checked for NUL bytes, the limit and cancellation.
const readBuf = 64 << 10

// ParseFile reads and parses the trace at path, at most MaxSize bytes of
// it. Commands that read user input use ParseReader with their own limit.
func ParseFile(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, ErrRead, err)
	}
	defer f.Close()
	return ParseReader(context.Background(), path, f, MaxSize)
}

// ParseReader reads a trace from r line by line and parses it; file names
// it in errors. Invariants:
//   - it reads at most limit+1 bytes from r and holds at most one line
//     (never more than limit bytes) of input besides the parsed ops; more
//     than limit bytes is an error wrapping ErrTooLarge;
//   - a NUL byte anywhere, or a first line that is not UTF-8, is a
//     *ParseError wrapping ErrBinary at that byte;
//   - ctx is checked before every read: once it is done, ParseReader
//     returns an error wrapping ctx.Err() (a read already blocked in r
//     returns first; the caller unblocks it, for example by closing r);
//   - a trace without ops is an error wrapping ErrEmpty.
func ParseReader(ctx context.Context, file string, r io.Reader, limit int64) (*Trace, error) {
	t, err := parse(ctx, file, r, limit)
	if err != nil {
		return nil, err
	}
	if len(t.Ops) == 0 {
		return nil, fmt.Errorf("%s: %w", file, ErrEmpty)
	}
	return t, nil
}

// Parse parses a trace held in memory. file names it in errors. The first
// error stops parsing and is returned as a *ParseError. A trace without ops
// parses (generators and shrinkers make them).
func Parse(file string, src []byte) (*Trace, error) {
	return parse(context.Background(), file, bytes.NewReader(src), int64(len(src)))
}

func parse(ctx context.Context, file string, r io.Reader, limit int64) (*Trace, error) {
	p := newParser(file)
	lr := &lineReader{
		file:  file,
		br:    bufio.NewReaderSize(io.LimitReader(r, limit+1), readBuf),
		limit: limit,
	}
	for {
		line, err := lr.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := p.line(lr.n, string(line)); err != nil {
			return nil, err
		}
	}
	return p.finish()
}

// lineReader splits a trace into lines. It has read at most limit+1 bytes
// of input, and buf holds at most one line.
type lineReader struct {
	file  string
	br    *bufio.Reader
	limit int64
	read  int64 // bytes taken from br
	n     int   // the number of the line last returned
	buf   []byte
}

// next returns the next line without its "\n" or "\r\n", valid until the
// next call, or io.EOF after the last line.
func (lr *lineReader) next(ctx context.Context) ([]byte, error) {
	lr.n++
	lr.buf = lr.buf[:0]
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s:%d: reading the trace: %w", lr.file, lr.n, err)
		}
		chunk, err := lr.br.ReadSlice('\n')
		lr.read += int64(len(chunk))
		if lr.read > lr.limit {
			return nil, fmt.Errorf("%s: %w (%s)", lr.file, ErrTooLarge, FormatSize(lr.limit))
		}
		if i := bytes.IndexByte(chunk, 0); i >= 0 {
			return nil, lr.binary(len(lr.buf) + i)
		}
		lr.buf = append(lr.buf, chunk...)
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil, io.EOF:
			if err == io.EOF && len(lr.buf) == 0 {
				return nil, io.EOF
			}
			line := bytes.TrimSuffix(bytes.TrimSuffix(lr.buf, []byte("\n")), []byte("\r"))
			if lr.n == 1 && !utf8.Valid(line) {
				return nil, lr.binary(firstInvalid(line))
			}
			return line, nil
		default:
			return nil, fmt.Errorf("%s: %w: %w", lr.file, ErrRead, err)
		}
	}
}

func (lr *lineReader) binary(off int) error {
	return &ParseError{File: lr.file, Pos: Pos{lr.n, off + 1}, Msg: ErrBinary.Error(), Err: ErrBinary}
}

// firstInvalid is the offset of the first byte of b that is not UTF-8.
func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// FormatSize renders n bytes in the largest binary unit that divides it
// ("8 MiB", "3 KiB"), else in bytes ("1000 bytes").
func FormatSize(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n > 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// maxEcho is how much of a token an error echoes; errors of other packages
// (a profile's) that echo input are cut at maxEchoErr.
const (
	maxEcho    = 40
	maxEchoErr = 160
)

// echo is input text in an error message. It formats as %q or %s would,
// cut to max bytes (at a rune boundary) and followed by "…(N bytes)", so
// that an error line stays short whatever the input.
type echo struct {
	s   string
	max int
}

func (e echo) Format(f fmt.State, verb rune) {
	s, cut := e.s, false
	if len(s) > e.max {
		n := e.max
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], true
	}
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	io.WriteString(f, s)
	if cut {
		fmt.Fprintf(f, "…(%d bytes)", len(e.s))
	}
}

// echoArgs wraps the strings and errors among args in echo.
func echoArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = echo{v, maxEcho}
		case error:
			out[i] = echo{v.Error(), maxEchoErr}
		default:
			out[i] = a
		}
	}
	return out
}
