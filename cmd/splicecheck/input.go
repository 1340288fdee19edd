package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/trace"
)

// stdin is what a trace argument "-" reads; tests replace it.
var stdin io.Reader = os.Stdin

// stdinName names standard input in errors and output.
const stdinName = "<stdin>"

// headSize is how much of each trace's input is kept for its
// counterexample header (fuzz.ReadHeader), which is at its start.
const headSize = 16 << 10

// traceInput reads the trace arguments of a command: paths, or "-" for
// standard input, each through the --max-trace-size limit. It keeps the
// first headSize bytes of each, so that nothing is read twice.
type traceInput struct {
	limit byteSize
	heads map[*trace.Trace][]byte
}

// register adds --max-trace-size to fs.
func (in *traceInput) register(fs *flag.FlagSet) {
	in.limit = trace.DefaultReadLimit
	fs.Var(&in.limit, "max-trace-size", "refuse a trace file larger than `SIZE` (bytes, or with a K, M or G suffix); the parsed trace\nis held in memory, about 160 bytes an op")
}

// parseAll parses every trace before anything runs, so that bad input
// anywhere is reported before any backend is touched. "-" (standard
// input) may appear once, and only when stdinOK.
func (in *traceInput) parseAll(ctx context.Context, paths []string, stdinOK bool) ([]*trace.Trace, error) {
	if len(paths) == 0 {
		return nil, usagef("no trace files given")
	}
	dashes := 0
	for _, p := range paths {
		if p == "-" {
			dashes++
		}
	}
	switch {
	case dashes > 0 && !stdinOK:
		return nil, usagef("-: this command reads its traces by path, not from standard input")
	case dashes > 1:
		return nil, usagef("-: standard input given %d times", dashes)
	}
	var out []*trace.Trace
	for _, p := range paths {
		t, err := in.read(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// read parses the trace at path ("-": standard input). It returns once ctx
// is done even when a read is blocked (a terminal, an idle pipe), with an
// error wrapping ctx.Err().
func (in *traceInput) read(ctx context.Context, path string) (*trace.Trace, error) {
	r, name, err := openTrace(path)
	if err != nil {
		return nil, err
	}
	if f, ok := r.(*os.File); ok {
		// A regular file's size is known: refuse it before reading it.
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > int64(in.limit) {
			f.Close()
			return nil, fmt.Errorf("%s: %w (%d bytes; the limit is %s); --max-trace-size raises it", name, trace.ErrTooLarge, st.Size(), trace.FormatSize(int64(in.limit)))
		}
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
		// Closing unblocks a read of a pipe or FIFO; a read of a
		// terminal goes on until the process exits.
		defer context.AfterFunc(ctx, func() { c.Close() })()
	}
	head := &headWriter{max: headSize}
	type result struct {
		t   *trace.Trace
		err error
	}
	done := make(chan result, 1)
	go func() {
		t, err := trace.ParseReader(ctx, name, io.TeeReader(r, head), int64(in.limit))
		done <- result{t, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: reading the trace: %w", name, ctx.Err())
	}
	if errors.Is(res.err, trace.ErrTooLarge) {
		return nil, fmt.Errorf("%w; --max-trace-size raises it", res.err)
	}
	if res.err != nil {
		return nil, res.err
	}
	if in.heads == nil {
		in.heads = map[*trace.Trace][]byte{}
	}
	in.heads[res.t] = head.b
	return res.t, nil
}

// header returns the counterexample header of t, read from the start of
// its input.
func (in *traceInput) header(t *trace.Trace) (fuzz.Header, bool) {
	return fuzz.ReadHeader(in.heads[t])
}

// openTrace opens a trace argument and names it for errors. Anything that
// cannot be read as a file (missing, a directory) wraps trace.ErrRead.
func openTrace(path string) (io.Reader, string, error) {
	if path == "-" {
		return stdin, stdinName, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", trace.ErrRead, err)
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, "", fmt.Errorf("%s: %w: is a directory", path, trace.ErrRead)
	}
	return f, path, nil
}

// headWriter keeps the first max bytes written to it.
type headWriter struct {
	b   []byte
	max int
}

func (h *headWriter) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// byteSize is a flag value of bytes: a positive number with an optional
// K, M or G suffix (binary units, either case).
type byteSize int64

// String is the size as Set reads it: "8M", "1500".
func (s *byteSize) String() string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "G"}, {20, "M"}, {10, "K"}} {
		if *s > 0 && *s%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", *s>>u.shift, u.name)
		}
	}
	return strconv.FormatInt(int64(*s), 10)
}

func (s *byteSize) Set(v string) error {
	num, shift := v, 0
	if i := len(v) - 1; i > 0 {
		switch v[i] {
		case 'k', 'K':
			num, shift = v[:i], 10
		case 'm', 'M':
			num, shift = v[:i], 20
		case 'g', 'G':
			num, shift = v[:i], 30
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	switch {
	case err != nil || strings.HasPrefix(num, "+"):
		return errors.New("want bytes, or a number with a K, M or G suffix, like 8M")
	case n <= 0:
		return errors.New("must be positive")
	case n > 1<<(62-shift):
		return errors.New("too large")
	}
	*s = byteSize(n << shift)
	return nil
}
