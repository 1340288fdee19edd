package fuzz

import (
	"context"
	"syscall"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// mutRun runs src on linux-6.18 with the mutations named, as campaigns
// run the model.
func mutRun(t *testing.T, src string, muts ...string) *Execution {
	t.Helper()
	m, err := model.NewWithConfig(model.Config{Liveness: true, Provenance: true, Mutations: muts})
	if err != nil {
		t.Fatal(err)
	}
	tr := mustParse(t, src)
	tr.Profile = "linux-6.18"
	return runOne(context.Background(), m, nil, tr)
}

// Apply windows: the unmutated model re-runs the program after every N
// bytes (pass, redirect) and gives up a drop's window; a window that is
// never used up breaks both.
func TestApplyWindows(t *testing.T) {
	for _, c := range []struct{ name, src, kind string }{
		{"pass", `conn a1 a2
map m sockmap 2
prog m sk_msg pass apply 10
insert m 0 a1
send a1 7
send a1 7
send a1 100
recv a2 1000 dontwait
`, "apply-window-runs"},
		{"redirect", `conn a1 a2
map m sockmap 2
prog m sk_msg redirect 1 ingress apply 100
insert m 0 a1
insert m 1 a2
send a1 100
send a1 1
recv a2 1000 dontwait
`, "apply-window-runs"},
		{"drop", `conn a1 a2
map m sockmap 2
prog m sk_msg drop apply 10
insert m 0 a1
send a1 5
send a1 20
send a1 20
`, "apply-window-drop"},
		{"drop-past", `conn a1 a2
map m sockmap 2
prog m sk_msg drop apply 10
insert m 0 a1
send a1 100
send a1 100
`, "apply-window-drop"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mustHold(t, "apply-windows", mutRun(t, c.src))
			mustFail(t, "apply-windows", mutRun(t, c.src, "apply-bytes-no-decrement"), c.kind)
		})
	}
}

// Senders the property cannot follow are not judged: one that joins a
// second map, one that sends from two threads.
func TestApplyWindowsNotJudged(t *testing.T) {
	for _, src := range []string{`conn a1 a2
map m sockmap 2
map n sockmap 2
prog m sk_msg pass apply 10
insert m 0 a1
insert n 0 a1
send a1 100
`, `conn a1 a2
map m sockmap 2
prog m sk_msg pass apply 10
insert m 0 a1
@t1 send a1 100
send a1 100
join t1
`} {
		mustHold(t, "apply-windows", mutRun(t, src, "apply-bytes-no-decrement"))
	}
}

// The boundary reads the generator writes catch a splice that waits
// after SHUT_RD, and a frame completed by its second send that the
// parser leaves stranded.
func TestBoundaryReadShapes(t *testing.T) {
	shut := `conn a1 a2
shutdown a2 rd
set a2 nonblock on
splice a2 100 nonblock
recv a2 100 dontwait
`
	mustHold(t, "reads-agree", mutRun(t, shut))
	mustFail(t, "reads-agree", mutRun(t, shut, "splice-read-misses-shutdown"), "eagain-after-shutdown")
	split := `conn a1 a2
map rq sockmap 1
prog rq sk_skb pass parser 100
insert rq 0 a2
send a1 99 dontwait
send a1 1 dontwait
recv a2 100 dontwait
`
	mustHold(t, "no-stranded-data", mutRun(t, split))
	mustFail(t, "no-stranded-data", mutRun(t, split, "strp-need-bytes-off-by-one"), "strparser")
}

// Cork windows: the program runs on the first message and again once
// the cork's bytes have come.
func TestCorkWindows(t *testing.T) {
	r := mutRun(t, `conn a1 a2
map m sockmap 2
prog m sk_msg pass cork 10
insert m 0 a1
send a1 4
send a1 4
send a1 4
send a1 100
send a1 1
recv a2 1000 dontwait
`)
	mustHold(t, "apply-windows", r)
	got := 0
	for _, v := range r.Stats.MsgVerdicts {
		if v.Sock == "a1" {
			got += v.Runs
		}
	}
	if got != 4 {
		t.Fatalf("the program ran %d times, want 4 (4+4+4 corked, 100, 1)", got)
	}
}

// A window's bytes go where its verdict sent them, though the map
// changes inside it; the next window looks the key up again.
func TestApplyWindowTargets(t *testing.T) {
	// a2 stays in n, so that its psock outlives its key in m.
	src := `conn a1 a2
conn b1 b2
map m sockmap 2
prog m sk_msg redirect 1 ingress apply 10
insert m 0 a1
insert m 1 a2
map n sockmap 1
insert n 0 a2
send a1 6
insert m 1 b2
send a1 6
send a1 8
recv a2 100 dontwait
recv b2 100 dontwait
`
	r := mutRun(t, src)
	mustHold(t, "apply-windows", r)
	mustHold(t, "stream-integrity", r)
	if got := r.Obs[12].Result.N; got != 10 {
		t.Fatalf("a2 read %d bytes, want the first window's 10", got)
	}
	mustFail(t, "apply-windows", mutRun(t, src, "apply-bytes-no-decrement"), "apply-window")
}

// A socket whose update of a full sockhash fails with E2BIG keeps the
// map's programs when its psock lives on (sock_hash_update_common links
// first); a sockmap's E2BIG links nothing. Neither is misrouted.
func TestDestinationsFailedUpdate(t *testing.T) {
	for _, src := range []string{`conn a1 a2
conn d1 d2
map n sockmap 1
insert n 0 a1
map h sockhash 1
prog h sk_msg redirect 0 egress
insert h 0 d1
insert h 1 a1
send a1 100
recv d2 1000 dontwait
recv a2 1000 dontwait
`, `conn c1 c2
map m0 sockmap 1
prog m0 sk_msg redirect 0 ingress
insert m0 1 c2
send c2 100 dontwait
recv c1 1000 dontwait
`} {
		r := mutRun(t, src)
		mustHold(t, "stream-integrity", r)
		n := int64(0)
		for i, op := range r.Trace.Ops {
			if op.Kind == trace.OpRecv {
				n += max(r.Obs[i].Result.N, 0)
			}
		}
		if n != 100 {
			t.Fatalf("the receivers read %d bytes, want the 100 sent:\n%s", n, src)
		}
	}
}

// After the peer's FIN, with every byte read, each read kind returns 0
// at once; an EAGAIN there fails reads-agree.
func TestEAGAINAfterFIN(t *testing.T) {
	src := `conn a1 a2
send a1 10
shutdown a1 wr
set a2 nonblock on
recv a2 100 dontwait
recv a2 100 dontwait
recv a2 100 dontwait peek
splice a2 100 nonblock
`
	r := mutRun(t, src)
	mustHold(t, "reads-agree", r)
	for _, i := range []int{5, 6, 7} {
		if res := r.Obs[i].Result; res.Err != 0 || res.N != 0 {
			t.Fatalf("op %d after the FIN: %v, want 0", i, res)
		}
	}
	r.Obs[7].Result = trace.Result{Err: syscall.EAGAIN, N: -1}
	mustFail(t, "reads-agree", r, "eagain-after-fin")
}

// A close while another thread's recv still runs on the socket sends no
// FIN (the file stays open until the call returns): the peer's EAGAIN
// is no eagain-after-fin.
func TestEAGAINAfterCloseWithReader(t *testing.T) {
	mustHold(t, "reads-agree", mutRun(t, `conn a1 a2
@t1 recv a2 64
close a2
recv a1 64 dontwait
join t1
`))
}
