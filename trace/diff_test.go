package trace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestResultRendering(t *testing.T) {
	long := Pattern(0, 1000)
	cases := []struct {
		r    Result
		want string
	}{
		{OK(), "ok"},
		{Count(0), "0"},
		{Count(1000), "1000"},
		{Fail(syscall.EAGAIN), "-EAGAIN"},
		{Fail(syscall.ECONNRESET), "-ECONNRESET"},
		{Result{N: 0, Err: syscall.ETIMEDOUT}, "0 -ETIMEDOUT"},
		{Word("IN|OUT"), "IN|OUT"},
		{Count(5).WithData([]byte("hello")), `5 "hello"`},
		{Count(0).WithData(nil), `0 ""`},
		{Count(2).WithData([]byte{0, '"'}), `2 "\x00\""`},
		{Count(64).WithData(bytes.Repeat([]byte("a"), 64)), `64 "` + strings.Repeat("a", 64) + `"`},
		{Count(1000).WithData(long), "1000 len=1000 sha256=" + sha12(long)},
		{RunnerTimeout(), "-ETIMEDOUT (runner)"},
		{Fail(syscall.Errno(200)), "-E200"},
	}
	for _, c := range cases {
		if got := c.r.String(); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
	o := Observation{Line: 7, Op: "recv b 1000", Result: Count(1000).WithData(long)}
	if got := o.String(); got != "7: recv b 1000 => 1000 len=1000 sha256="+sha12(long) {
		t.Errorf("observation renders %s", got)
	}
	if g := o.GoldenString(); !strings.HasSuffix(g, "sha256="+sha64(long)) {
		t.Errorf("golden rendering %s lacks the full digest", g)
	}
}

func TestPattern(t *testing.T) {
	p := Pattern(249, 4)
	if !bytes.Equal(p, []byte{249, 250, 0, 1}) {
		t.Errorf("Pattern(249, 4) = %v", p)
	}
	if !bytes.Equal(Pattern(251*3+7, 1), []byte{7}) {
		t.Error("offset not reduced mod 251")
	}
}

func obs(results ...Result) []Observation {
	var out []Observation
	for i, r := range results {
		out = append(out, Observation{Line: i + 1, Op: "recv b 1000", Result: r})
	}
	return out
}

func TestDiffSameRunsAgree(t *testing.T) {
	a := obs(OK(), Count(1000).WithData(Pattern(0, 1000)), Fail(syscall.EAGAIN))
	b := obs(OK(), Count(1000).WithData(Pattern(0, 1000)), Fail(syscall.EAGAIN))
	if d := Diff(a, b); len(d) != 0 {
		t.Fatalf("identical runs diverge: %v", d)
	}
}

func TestDiffResults(t *testing.T) {
	d := Diff(obs(OK(), Count(3)), obs(OK(), Fail(syscall.EAGAIN)))
	if len(d) != 1 || d[0].Index != 1 || d[0].A != "3" || d[0].B != "-EAGAIN" || d[0].Reason != "results differ" {
		t.Fatalf("%+v", d)
	}
}

// Data is compared in full, byte for byte, not through its rendering: the
// reason names the first differing byte, which no digest can.
func TestDiffComparesFullData(t *testing.T) {
	x := Pattern(0, 1000)
	y := append([]byte(nil), x...)
	y[777] ^= 0xff
	d := Diff(obs(Count(1000).WithData(x)), obs(Count(1000).WithData(y)))
	want := fmt.Sprintf("data differs at byte 777: a=%#02x b=%#02x", x[777], y[777])
	if len(d) != 1 || d[0].Reason != want {
		t.Fatalf("got %+v, want reason %q", d, want)
	}
	d = Diff(obs(Count(3).WithData([]byte("abc"))), obs(Count(2).WithData([]byte("ab"))))
	if len(d) != 1 || d[0].Reason != "data lengths differ: 3 vs 2" {
		t.Fatalf("%+v", d)
	}
}

func TestDiffLengths(t *testing.T) {
	d := Diff(obs(OK(), OK()), obs(OK()))
	if len(d) != 1 || d[0].Reason != "only in a" || d[0].B != "" {
		t.Fatalf("%+v", d)
	}
	d = Diff(obs(OK()), obs(OK(), Count(1)))
	if len(d) != 1 || d[0].Reason != "only in b" {
		t.Fatalf("%+v", d)
	}
}

func TestGoldenRoundTrip(t *testing.T) {
	a := obs(OK(), Count(1000).WithData(Pattern(0, 1000)), RunnerTimeout())
	var buf bytes.Buffer
	if err := WriteGolden(&buf, a); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "g.out")
	if err := writeFile(path, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	g, err := ReadGolden(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffGolden(a, g); len(d) != 0 {
		t.Fatalf("run differs from its own golden: %v", d)
	}
	changed := obs(OK(), Count(1000).WithData(Pattern(1, 1000)), RunnerTimeout())
	if d := DiffGolden(changed, g); len(d) != 1 || d[0].Index != 1 {
		t.Fatalf("changed data not caught: %+v", d)
	}
	if d := DiffGolden(a[:2], g); len(d) != 1 || d[0].Index != 2 {
		t.Fatalf("missing observation not caught: %+v", d)
	}
}

// TestGoldenBackend: the recorded observations of a trace, read back as a
// backend's run, compare equal to the run they were recorded from (on
// either side of Compare), catch a change of long data through its full
// digest with the recording on its own side, and a line that is not
// `LINE: OP => RESULT` is a syntax error naming the file and line.
func TestGoldenBackend(t *testing.T) {
	tr, err := Parse("g.trace", []byte("conn a b\nsend a 1000\nrecv b 1000\n"))
	if err != nil {
		t.Fatal(err)
	}
	live := RunResult{Obs: []Observation{
		{Line: 1, Op: "conn a b", Result: OK()},
		{Line: 2, Op: "send a 1000", Result: Count(1000)},
		{Line: 3, Op: "recv b 1000", Result: Count(1000).WithData(Pattern(0, 1000))},
	}}
	dir := t.TempDir()
	path := GoldenPath(dir, "linux-6.18", tr)
	var buf bytes.Buffer
	if err := WriteGolden(&buf, live.Obs); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(path, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	rec, err := Run(context.Background(), Golden(dir), tr, Options{Profile: "linux-6.18"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Recorded || len(rec.Obs) != 3 || rec.Obs[2].Line != 3 || rec.Obs[2].Op != "recv b 1000" {
		t.Fatalf("recording %+v", rec)
	}
	if d := Compare(live, rec); len(d) != 0 {
		t.Fatalf("live vs its recording: %v", d)
	}
	if d := Compare(rec, live); len(d) != 0 {
		t.Fatalf("recording vs live: %v", d)
	}
	changed := RunResult{Obs: append(append([]Observation(nil), live.Obs[:2]...),
		Observation{Line: 3, Op: "recv b 1000", Result: Count(1000).WithData(Pattern(1, 1000))})}
	d := Compare(rec, changed)
	if len(d) != 1 || d[0].Index != 2 || !strings.Contains(d[0].A, rec.Obs[2].Result.Word) || d[0].B != changed.Obs[2].GoldenString() {
		t.Fatalf("changed data, recording as a: %+v", d)
	}
	if _, err := Run(context.Background(), Golden(dir), tr, Options{Profile: "linux-6.18", Stats: true}); !errors.Is(err, ErrNoStats) {
		t.Errorf("stats from a recording: %v", err)
	}
	if err := writeFile(path, []byte("1: conn a b => ok\nno arrow here\n")); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), Golden(dir), tr, Options{Profile: "linux-6.18"})
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("malformed golden: %v", err)
	}
}
