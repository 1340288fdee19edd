package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestCheckCoverage: check's table has a coverage row, N/M per profile;
// --coverage lists each profile's unreached functions after it, one per
// line (kernel name, Go name, file), and only functions of the profile.
// The campaign's verdicts are not this test's concern: a property may
// fail (exit 1).
func TestCheckCoverage(t *testing.T) {
	ran := func(code int) bool { return code == exitOK || code == exitDivergence }
	code, out, errOut := runCLI(t, "check", "--profile", "linux-6.18,linux-6.18+loopback-splice-seq", "--traces", "10", "--out", t.TempDir())
	row := regexp.MustCompile(`(?m)^coverage +([0-9]+)/([0-9]+) mirrored functions +([0-9]+)/([0-9]+) mirrored functions$`)
	if !ran(code) || !row.MatchString(out) {
		t.Fatalf("no coverage row: code %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "not reached") {
		t.Fatalf("the unreached functions listed without --coverage:\n%s", out)
	}

	code, out, errOut = runCLI(t, "check", "--profile", "linux-6.18,linux-6.18+loopback-splice-seq", "--traces", "10", "--coverage", "--out", t.TempDir())
	m := row.FindStringSubmatch(out)
	if !ran(code) || m == nil {
		t.Fatalf("--coverage: code %d\n%s%s", code, out, errOut)
	}
	head := regexp.MustCompile(`(?m)^(\S+): ([0-9]+) of ([0-9]+) mirrored functions not reached \([0-9]+ runs\):$`)
	heads := head.FindAllStringSubmatch(out, -1)
	if len(heads) != 2 || heads[0][1] != "linux-6.18" || heads[1][1] != "linux-6.18+loopback-splice-seq" {
		t.Fatalf("--coverage: want one list per profile, in order:\n%s", out)
	}
	// The lists agree with the row: N reached of M, so M-N listed.
	for i, h := range heads {
		reached, all := m[1+2*i], m[2+2*i]
		if h[3] != all || atoi(t, h[2]) != atoi(t, all)-atoi(t, reached) {
			t.Errorf("%s: row says %s/%s, list says %s of %s not reached", h[1], reached, all, h[2], h[3])
		}
	}
	_, list, _ := strings.Cut(out, heads[0][0])
	list6_18, listSeq, _ := strings.Cut(list, heads[1][0])
	line := regexp.MustCompile(`^  [a-z_0-9]+ +[A-Za-z.]+ +[a-z_]+\.go *$`)
	for _, l := range strings.Split(list6_18+listSeq, "\n") {
		if l != "" && !line.MatchString(l) {
			t.Errorf("unreached line %q is not `kernel_name goName file.go`", l)
		}
	}
	// The loopback-splice-seq module's functions belong to its profile
	// only: never listed for linux-6.18.
	if strings.Contains(list6_18, "splice_seq.go") || strings.Contains(list6_18, "splice_loopback.go") {
		t.Errorf("linux-6.18 lists functions of the loopback-splice profiles:\n%s", list6_18)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("%q is not a number", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
