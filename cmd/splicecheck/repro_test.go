package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/kernelshim/repro"
	"github.com/splicecheck/splicecheck/trace"
)

// repro --c writes the reproducer with the counterexample's verdict and
// profile in its opening comment; -o writes it to a file.
func TestReproCommand(t *testing.T) {
	const ce = "../../testdata/traces/counterexamples/tcp_overtakes_ring.trace"
	code, out, errOut := runCLI(t, "repro", "--c", ce)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"Kernel profile: loopback-splice.", // the header's profile
		"property: stream-integrity",       // the verdict
		`"@t1 recv b 16383"`,               // the op table
		"int main(void)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the reproducer lacks %q", want)
		}
	}
	file := filepath.Join(t.TempDir(), "r.c")
	if code, _, errOut := runCLI(t, "repro", "--c", "-o", file, "--profile", "linux-6.12+loopback-splice", ce); code != exitOK {
		t.Fatalf("-o: exit %d, %s", code, errOut)
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "Kernel profile: linux-6.12+loopback-splice.") {
		t.Errorf("-o %s: %v, profile line missing", file, err)
	}
}

// Bad input is one line and exit 2: a FreeBSD op names its position.
func TestReproBadInput(t *testing.T) {
	bsd := writeTrace(t, "bsd.trace", "profile freebsd-so-splice\nconn a b\nconn c d\nsosplice b c\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"repro", bsd}, "--c"},
		{[]string{"repro", "--c", bsd}, "bsd.trace:4:1: "},
		{[]string{"repro", "--c"}, "want one TRACE"},
		{[]string{"repro", "--c", "--profile", "linux-9.9", bsd}, "--profile"},
		{[]string{"repro", "--c", "-o", filepath.Join(t.TempDir(), "no", "such", "r.c"), "../../testdata/traces/kernel/skb_drop.trace"}, "-o"},
		{[]string{"repro", "--c", "--bogus", bsd}, "bogus"},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != exitBadInput || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q; want exit %d and one line with %q", c.args, code, len(out), errOut, exitBadInput, c.want)
		}
	}
}

// The findings' reports carry their C reproducers
// (docs/findings/NAME.repro.c): each is what repro --c writes for its
// trace now, but for the generator's version (SPLICECHECK_UPDATE=1
// rewrites them). A change of the runtime or of the trace must reach the
// report.
func TestFindingReproducersCurrent(t *testing.T) {
	for doc, file := range map[string]string{
		"cork-stale-bytes": "../../testdata/traces/kernel/kf_cork_apply_stale_bytes.trace",
		"psock-delete-seq": "../../testdata/traces/findings/psock_delete_strparser_seq_warn.trace",
	} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := trace.Parse(strings.TrimPrefix(file, "../../"), src)
		if err != nil {
			t.Fatal(err)
		}
		h := reproHeader(tr, src, "")
		h.Generator = "splicecheck repro --c"
		want, err := repro.C(tr, h)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("../../docs/findings", doc+".repro.c")
		if os.Getenv("SPLICECHECK_UPDATE") != "" {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != string(want) {
			t.Errorf("%s is not what repro --c writes for %s now (%v): SPLICECHECK_UPDATE=1 go test -run %s rewrites it", path, file, err, t.Name())
		}
	}
}
