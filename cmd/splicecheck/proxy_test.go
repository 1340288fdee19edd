package main

import (
	"strings"
	"testing"
)

// TestProxyCommand: the corpus proxy compared four ways on the model
// holds proxy-parity with its two named differences per user-space form
// (the client's FIN and the backend's RST reach the other far end as EOF
// through splice and readwrite only); a trace without a proxy and a bad
// --via are one-line errors, exit 2.
func TestProxyCommand(t *testing.T) {
	trace := "../../testdata/traces/kernel/proxy_sockmap.trace"
	code, out, errOut := runCLI(t, "proxy", trace)
	if code != 0 {
		t.Fatalf("proxy %s: exit %d\n%s%s", trace, code, out, errOut)
	}
	for _, want := range []string{
		":31: b: eof (splice: EOF, so-splice: timeout)",
		":35: c: rst (readwrite: EOF, so-splice: timeout)",
		"proxy-parity holds: 4 named differences",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{
		{"proxy", "../../testdata/traces/kernel/msg_pass_plain.trace"},
		{"proxy", "--via", "sockmap", trace},
		{"proxy", "--backend", "vm", trace},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != exitBadInput || out != "" || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and one line on stderr", args, code, out, errOut, exitBadInput)
		}
	}
}
