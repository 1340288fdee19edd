package trace

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// NoCount is Result.N for a result that carries no count (an errno alone,
// or a word).
const NoCount = -1

// Result is what one op returned. Exactly one rendering applies:
//
//	Word != ""            the word: ok, IN|OUT, ESTABLISHED
//	N == NoCount, Err     -ERRNO
//	N >= 0                N, then " -ERRNO" if Err is set (iocopy's (n, err))
//
// then the data, if HasData, then " (Note)" if Note is set.
type Result struct {
	N       int64
	Err     syscall.Errno
	Word    string
	Data    []byte
	HasData bool
	Note    string // who produced an unusual result, e.g. "runner" for its timeout
}

// OK is the result of a setup or control op that succeeded.
func OK() Result { return Result{N: NoCount, Word: "ok"} }

// Count is a byte count or number.
func Count(n int64) Result { return Result{N: n} }

// Fail is a failed op: -ERRNO.
func Fail(e syscall.Errno) Result { return Result{N: NoCount, Err: e} }

// Word is a mask or state word.
func Word(w string) Result { return Result{N: NoCount, Word: w} }

// WithData returns r carrying data (a copy is not made).
func (r Result) WithData(b []byte) Result {
	if b == nil {
		b = []byte{}
	}
	r.Data, r.HasData = b, true
	return r
}

// RunnerTimeout is the result of an op the runner gave up on.
func RunnerTimeout() Result {
	r := Fail(syscall.ETIMEDOUT)
	r.Note = "runner"
	return r
}

// String renders the result as the contract's RESULT.
func (r Result) String() string { return r.render(12) }

// render renders with digestHex hex digits of sha256 for long data.
func (r Result) render(digestHex int) string {
	var b strings.Builder
	switch {
	case r.Word != "":
		b.WriteString(r.Word)
	case r.N < 0:
		b.WriteString("-" + ErrnoName(r.Err))
	default:
		b.WriteString(strconv.FormatInt(r.N, 10))
		if r.Err != 0 {
			b.WriteString(" -" + ErrnoName(r.Err))
		}
	}
	if r.HasData {
		b.WriteByte(' ')
		b.WriteString(renderData(r.Data, digestHex))
	}
	if r.Note != "" {
		b.WriteString(" (" + r.Note + ")")
	}
	return b.String()
}

// MaxQuoted is the longest data rendered with %q; longer data is rendered
// as its length and digest.
const MaxQuoted = 64

func renderData(d []byte, digestHex int) string {
	if len(d) <= MaxQuoted {
		return strconv.Quote(string(d))
	}
	sum := sha256.Sum256(d)
	return fmt.Sprintf("len=%d sha256=%s", len(d), hex.EncodeToString(sum[:])[:digestHex])
}

// Observation is one line of a run's output.
type Observation struct {
	Line   int    // line of the op in the trace file
	Op     string // canonical op text (Op.String)
	Result Result
}

// String renders `LINE: OP => RESULT`.
func (o Observation) String() string {
	return fmt.Sprintf("%d: %s => %s", o.Line, o.Op, o.Result)
}

// GoldenString renders the observation for a golden file: as String, but
// long data carries its full SHA-256, so a golden comparison is exact.
func (o Observation) GoldenString() string {
	return fmt.Sprintf("%d: %s => %s", o.Line, o.Op, o.Result.render(64))
}

// Pattern returns n pattern bytes starting at stream offset off: the byte
// at offset i is i % 251.
func Pattern(off, n int64) []byte {
	b := make([]byte, n)
	fillPattern(b, off)
	return b
}

func fillPattern(b []byte, off int64) {
	v := off % 251
	for i := range b {
		b[i] = byte(v)
		v++
		if v == 251 {
			v = 0
		}
	}
}

// patternChunk is the length of each slice PatternBuffers returns but the
// last: a multiple of the pattern's period, so that every slice starts at
// the same phase, and large enough that MaxSize takes at most 512 slices
// (below IOV_MAX, 1024, for one sendmsg).
const patternChunk = 251 * 8192

// patternBuf holds patternChunk+251 pattern bytes from offset 0, shared
// read-only by every PatternBuffers.
var patternBuf = sync.OnceValue(func() []byte {
	b := make([]byte, patternChunk+251)
	fillPattern(b, 0)
	return b
})

// PatternBuffers returns the n pattern bytes starting at stream offset off
// as slices of one shared, read-only 2 MiB buffer, in order: a send of up
// to MaxSize pattern bytes needs no buffer of its own (callers must not
// write to them).
func PatternBuffers(off, n int64) [][]byte {
	src := patternBuf()[off%251:]
	var bufs [][]byte
	for n > 0 {
		k := min(n, patternChunk)
		bufs = append(bufs, src[:k:k])
		n -= k
	}
	return bufs
}
