package linux

import (
	"context"
	"slices"
	"testing"

	"github.com/splicecheck/splicecheck/internal/corpustest"
	"github.com/splicecheck/splicecheck/trace"
)

// fixDir holds the traces that validate this project's kernel fixes
// (fixes.go), and fixGoldenDir what the 6.12.118 kernels built with each
// fix printed for them (`make fix-validate`, recorded with `splicecheck
// vm --record` in a guest of linux-6.12+fix-cork-copybreak and of
// linux-6.12+fix-psock-delete-seq).
const (
	fixDir       = "../../../testdata/traces/fixes"
	fixGoldenDir = "../../../testdata/golden/fixes"
)

// fixCases are the fix profiles, the traces that validate each, and the
// lines on which the same trace, run without the fix (linux-6.12),
// diverges from the fixed kernel's golden: what the fix changes.
var fixCases = []struct {
	profile string
	glob    string
	off     func(*behaviour)
	lines   map[string][]int
}{
	{"linux-6.12+fix-cork-copybreak", "cork_*.trace", func(p *behaviour) { p.CorkCopyAtEnd = false }, map[string][]int{
		// send returns 32767 for 32697 (SendmsgCountsAsked over the
		// skipped bytes), and the peer gets 32830 bytes, stale ones
		// among them, where the fixed kernel sends the 32760 sent.
		"cork_copy_position_all_bytes": {17, 19, 20},
		// 1010 for 1000, and 30 bytes on the target's ingress queue
		// where the fixed kernel queues the 20 sent.
		"cork_copy_position_redirect_ingress": {15, 16, 17},
	}},
	{"linux-6.12+fix-psock-delete-seq", "psock_*.trace", func(p *behaviour) { p.StopStrpSeq = false }, map[string][]int{
		// FIONREAD 65 and -EAGAIN (the kernel WARNs) where the fixed
		// kernel reports and returns the 5 bytes sent after the delete;
		// FIONREAD 65 at the FIN where it reports 0.
		"psock_delete_later_bytes": {18, 19, 21},
		// FIONREAD 120 (msg_tot_len plus tcp_inq over the same 60
		// bytes) where the fixed kernel reports 60; then 65 and -EAGAIN
		// where it reports and returns the 5 bytes sent after the delete.
		"psock_stop_strp_psock_survives": {18, 21, 22},
	}},
}

// TestFixGoldens runs each fix's traces on the model under the fix's
// profile and compares them with the fixed kernel's goldens byte for
// byte; then, with the fix's switch off, checks that they diverge on
// exactly the lines the fix changes.
func TestFixGoldens(t *testing.T) {
	for _, c := range fixCases {
		t.Run(c.profile, func(t *testing.T) {
			corpus := corpustest.Corpus{Dir: fixDir, Glob: c.glob, Goldens: fixGoldenDir, Profile: c.profile}
			if n := corpustest.Check(t, New(), corpus); n != len(c.lines) {
				t.Errorf("%d traces agree, want %d", n, len(c.lines))
			}
			on, err := ParseProfile(c.profile)
			if err != nil {
				t.Fatal(err)
			}
			off := on
			c.off(&off)
			for _, k := range corpustest.Load(t, corpus) {
				want, ok := c.lines[k.Name]
				if !ok {
					t.Errorf("%s: no expected divergence listed", k.Name)
					continue
				}
				opts, err := trace.ResolveOptions(k.Trace, trace.Options{Profile: c.profile})
				if err != nil {
					t.Fatal(err)
				}
				obs, err := newRun(k.Trace, opts, off, nil).execute(context.Background())
				if err != nil {
					t.Fatalf("%s: %v", k.Name, err)
				}
				var got []int
				for _, d := range trace.DiffGolden(obs, k.Golden) {
					got = append(got, d.Line)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s without the fix diverges from the fixed kernel at lines %v, want %v", k.Name, got, want)
				}
			}
		})
	}
}

// TestFixProfiles checks that each fix profile sets its switch, on any
// base, and nothing else.
func TestFixProfiles(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   func(behaviour) bool
	}{
		{"linux-6.12+fix-cork-copybreak", func(p behaviour) bool {
			return p.CorkCopyAtEnd && !p.StopStrpSeq && p.SendmsgCountsAsked && p.TCP == tcpGuest612
		}},
		{"linux-6.12+fix-psock-delete-seq", func(p behaviour) bool {
			return p.StopStrpSeq && !p.CorkCopyAtEnd && p.FIONREADRecvQueue && p.TCP == tcpGuest612
		}},
		{"fix-cork-copybreak", func(p behaviour) bool { return p.CorkCopyAtEnd && p.TCP == tcpHost618 }},
		{"linux-6.1+fix-psock-delete-seq+fix-cork-copybreak", func(p behaviour) bool {
			return p.StopStrpSeq && p.CorkCopyAtEnd && p.SplicePagesCopied
		}},
	} {
		if p, err := ParseProfile(c.name); err != nil || !c.ok(p) {
			t.Errorf("ParseProfile(%q) = %+v, %v", c.name, p, err)
		}
	}
}
