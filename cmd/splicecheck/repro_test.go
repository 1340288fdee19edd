package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
