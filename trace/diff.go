package trace

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Divergence is one place where two runs of a trace disagree.
type Divergence struct {
	Index  int    // op index; -1 for a difference in length alone
	Line   int    // trace line of the op
	Op     string // canonical op text
	A, B   string // the two rendered results; "" when that side has no observation
	Reason string // what differs, for a human
}

func (d Divergence) String() string {
	return fmt.Sprintf("%d: %s: %s\n  a: %s\n  b: %s", d.Line, d.Op, d.Reason, orMissing(d.A), orMissing(d.B))
}

func orMissing(s string) string {
	if s == "" {
		return "(no observation)"
	}
	return s
}

// Diff compares two runs of one trace byte for byte: the rendered results
// and the full data, not only its digest. It returns every divergence, in
// trace order.
func Diff(a, b []Observation) []Divergence {
	var out []Divergence
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			out = append(out, Divergence{Index: i, Line: b[i].Line, Op: b[i].Op, B: b[i].Result.String(), Reason: "only in b"})
			continue
		case i >= len(b):
			out = append(out, Divergence{Index: i, Line: a[i].Line, Op: a[i].Op, A: a[i].Result.String(), Reason: "only in a"})
			continue
		}
		x, y := a[i], b[i]
		d := Divergence{Index: i, Line: x.Line, Op: x.Op, A: x.Result.String(), B: y.Result.String()}
		switch {
		case x.Op != y.Op || x.Line != y.Line:
			d.Reason = fmt.Sprintf("different ops (%d: %s vs %d: %s)", x.Line, x.Op, y.Line, y.Op)
		case x.Result.HasData && y.Result.HasData && !bytes.Equal(x.Result.Data, y.Result.Data):
			d.Reason = dataReason(x.Result.Data, y.Result.Data)
		case d.A != d.B:
			d.Reason = "results differ"
		default:
			continue
		}
		out = append(out, d)
	}
	return out
}

// dataReason describes where two buffers first differ.
func dataReason(a, b []byte) string {
	for k := 0; k < len(a) && k < len(b); k++ {
		if a[k] != b[k] {
			return fmt.Sprintf("data differs at byte %d: a=%#02x b=%#02x", k, a[k], b[k])
		}
	}
	return fmt.Sprintf("data lengths differ: %d vs %d", len(a), len(b))
}

// Compare compares two runs of one trace: byte for byte (Diff), or,
// when one of them is a recording (RunResult.Recorded), through full
// SHA-256 digests of long data (DiffGolden), the recording's lines on
// its own side.
func Compare(a, b RunResult) []Divergence {
	switch {
	case b.Recorded:
		return DiffGolden(a.Obs, goldenLines(b.Obs))
	case a.Recorded:
		d := DiffGolden(b.Obs, goldenLines(a.Obs))
		for i := range d {
			d[i].A, d[i].B = d[i].B, d[i].A
		}
		return d
	}
	return Diff(a.Obs, b.Obs)
}

// goldenLines are a recording's lines, as ReadGolden read them.
func goldenLines(obs []Observation) []string {
	out := make([]string, len(obs))
	for i, o := range obs {
		out[i] = o.GoldenString()
	}
	return out
}

// Golden returns the backend of the observations recorded under dir
// (GoldenPath): its Run reads the golden file of the trace for the
// run's profile and returns a recording (RunResult.Recorded): one
// observation per golden line `LINE: OP => RESULT`, RESULT as it was
// rendered (Result.Word), so that GoldenString gives the line back.
func Golden(dir string) Backend { return goldenBackend{dir} }

type goldenBackend struct{ dir string }

func (goldenBackend) Name() string { return "golden" }

func (g goldenBackend) Run(_ context.Context, t *Trace, opts Options) (RunResult, error) {
	if opts.Stats {
		return RunResult{}, fmt.Errorf("golden: %w", ErrNoStats)
	}
	if opts.Timeline {
		return RunResult{}, fmt.Errorf("golden: %w", ErrNoTimeline)
	}
	lines, err := ReadGolden(GoldenPath(g.dir, opts.Profile, t))
	if err != nil {
		return RunResult{}, err
	}
	obs, err := ParseRecorded(GoldenPath(g.dir, opts.Profile, t), lines)
	if err != nil {
		return RunResult{}, err
	}
	return RunResult{Obs: obs, Recorded: true}, nil
}

// ParseRecorded reads golden-form lines `LINE: OP => RESULT` (file names
// them in errors) as a recording: each RESULT as it was rendered
// (Result.Word), so that GoldenString gives the line back.
func ParseRecorded(file string, lines []string) ([]Observation, error) {
	obs := make([]Observation, len(lines))
	for i, l := range lines {
		head, result, ok1 := strings.Cut(l, " => ")
		line, op, ok2 := strings.Cut(head, ": ")
		n, err := strconv.Atoi(line)
		if !ok1 || !ok2 || err != nil {
			return nil, fmt.Errorf("%s:%d: %w: not LINE: OP => RESULT", file, i+1, ErrSyntax)
		}
		obs[i] = Observation{Line: n, Op: op, Result: Word(result)}
	}
	return obs, nil
}

// GoldenPath is where the golden observations of t for profile live
// under dir: dir/PROFILE/NAME.out, NAME being t's file name without its
// extension.
func GoldenPath(dir, profile string, t *Trace) string {
	name := strings.TrimSuffix(filepath.Base(t.File), filepath.Ext(t.File))
	return filepath.Join(dir, profile, name+".out")
}

// WriteGolden writes observations in the golden format: one GoldenString
// line per op.
func WriteGolden(w io.Writer, obs []Observation) error {
	bw := bufio.NewWriter(w)
	for _, o := range obs {
		if _, err := fmt.Fprintln(bw, o.GoldenString()); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadGolden reads a golden file written by WriteGolden.
func ReadGolden(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read golden: %w", err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// DiffGolden compares a run (a) against golden lines (b). Long data is
// compared through its full SHA-256, so the comparison is exact.
func DiffGolden(obs []Observation, golden []string) []Divergence {
	var out []Divergence
	for i := 0; i < len(obs) || i < len(golden); i++ {
		var got, want string
		if i < len(obs) {
			got = obs[i].GoldenString()
		}
		if i < len(golden) {
			want = golden[i]
		}
		if got == want {
			continue
		}
		d := Divergence{Index: i, A: got, B: want, Reason: "differs from golden"}
		if i < len(obs) {
			d.Line, d.Op = obs[i].Line, obs[i].Op
		}
		out = append(out, d)
	}
	return out
}
