package linux

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// runLines runs src on the model (default FIFO policy) and returns the
// observation lines.
func runLines(t *testing.T, src string) []string {
	t.Helper()
	tr, err := trace.Parse("t.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	obs, err := trace.Observe(context.Background(), New(), tr, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range obs {
		out = append(out, o.String())
	}
	return out
}

const pairedSetup = `profile loopback-splice
conn a b
map m sockhash 2
insert m 0 a
insert m 1 b
`

// TestSplicePair checks bpf_sock_splice_pair's validation and errnos as
// posted, and that the op is refused without the RFC.
func TestSplicePair(t *testing.T) {
	got := runLines(t, `profile loopback-splice
conn a b
conn c d
map m sockhash 4
insert m 0 a
pair a b
insert m 1 b
pair a a
pair a b
pair b a
insert m 2 c
insert m 3 d
shutdown c wr
pair c d
close d
pair c d
`)
	check := func(prefix, res string) {
		t.Helper()
		for _, g := range got {
			if strings.HasPrefix(g, prefix) {
				if !strings.HasSuffix(g, "=> "+res) {
					t.Errorf("%s, want %s", g, res)
				}
				return
			}
		}
		t.Errorf("no line %q in %q", prefix, got)
	}
	check("6: pair a b", "-ENOENT")
	check("8: pair a a", "-EINVAL")
	check("9: pair a b", "ok")
	check("10: pair b a", "-EEXIST")
	check("14: pair c d", "-EINVAL") // c is FIN_WAIT, d CLOSE_WAIT: splice_state_ok fails
	check("16: pair c d", "-EBADF")

	plain := runLines(t, "profile linux-6.18\nconn a b\npair a b\n")
	if plain[1] != "3: pair a b => -EOPNOTSUPP" {
		t.Errorf("linux-6.18: %s", plain[1])
	}
}

// TestSpliceDataPath checks the posted data path without races: ring
// capacity and the TCP fallback on a full ring, the fallback while the
// peer's receive queue holds bytes, ring-first draining, FIONREAD (ring
// bytes invisible), poll (tcp_bpf_is_readable), MSG_PEEK (ring
// invisible: the sk_msg path waits, then -EAGAIN), EAGAIN and EOF.
func TestSpliceDataPath(t *testing.T) {
	got := runLines(t, pairedSetup+`pair a b
send a 20000
fionread b
poll b
recv b 100 peek dontwait
recv b 20000
poll b
recv b 20000
send a "tcp"
recv b 1
send a "more"
recv b 100
set b nonblock on
recv b 10
set b nonblock off
set b busypoll 50
@t1 recv b 10
send a "wake"
join t1
shutdown a wr
recv b 10
`)
	want := []string{
		"7: send a 20000 => 20000",
		"8: fionread b => 0",
		"9: poll b => IN|OUT",
		// MSG_PEEK skips the ring and peeks the TCP tail: it shows bytes
		// 16383.. while the next recv returns bytes 0.. from the ring.
		"10: recv b 100 peek dontwait => 100 ",
		"11: recv b 20000 => 16383 ", // the ring (CIRC_SPACE leaves a byte)
		"12: poll b => IN|OUT",       // the 3617 TCP bytes
		"13: recv b 20000 => 3617 ",
		"14: send a \"tcp\" => 3",
		"15: recv b 1 => 1 \"t\"", // "tcp" went to the ring: the queue was empty
		"16: send a \"more\" => 4",
		"17: recv b 100 => 6 \"cpmore\"",
		"18: set b nonblock on => ok",
		"19: recv b 10 => -EAGAIN",
		"22: @t1 recv b 10 => 4 \"wake\"",
		"26: recv b 10 => 0 \"\"",
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
}

// TestSpliceFallbackOnQueuedTCP: while b's receive queue holds TCP bytes
// the sender stays on TCP; the receiver reads them through tcp_recvmsg.
func TestSpliceFallbackOnQueuedTCP(t *testing.T) {
	got := runLines(t, pairedSetup+`send a "early"
pair a b
send a "late"
fionread b
recv b 100
`)
	// "early" went by TCP before the pair; "late" finds the queue
	// non-empty and follows it by TCP (FIONREAD counts neither: 6.18's
	// tcp_bpf_ioctl reports msg_tot_len).
	if got[len(got)-1] != `10: recv b 100 => 9 "earlylate"` {
		t.Errorf("got %q", got)
	}
}

// TestPairedSocketBehaviours pins two things a sock_ops program can run
// into with the RFC's pairing and the module's:
//   - a pair across connections: the RFC's bpf_sock_splice_pair checks
//     the two sockets' states, not that they are peers, so c1's bytes
//     reach b2, whose own peer sent nothing; the module pairs by the
//     connection's 4-tuple (chan_register_and_pair), so b2 and c1 only
//     park and c1's bytes go by TCP to its own peer: b2 reads nothing;
//   - a paired sender that gains an sk_msg program: its sendmsg is then
//     tcp_bpf_sendmsg, not the ring's (the RFC sets the ring's sendmsg on
//     TCP_BPF_BASE only; with the module, tcp_bpf_update_proto replaces
//     its proto clone), so its next bytes overtake the ones still in the
//     ring (measured on 6.12.118 with tcp_splice.ko:
//     testdata/traces/loopback/seq_insert_sender_reorders.trace).
func TestPairedSocketBehaviours(t *testing.T) {
	for _, c := range []struct{ file, want, wantSeq string }{
		{"late_pair_crosses_connections", "\x00\xff\n", "-EAGAIN"},  // c1's 3 bytes through the pair (RFC)
		{"pair_then_msg_prog_reorders", "\x00\xff\n", "\x00\xff\n"}, // the TCP bytes before the ring's "TCP1"
	} {
		tr := loadTrace(t, scenarioDir+c.file+".trace")
		for _, profile := range []string{"linux-6.18+loopback-splice", "linux-6.18+loopback-splice-seq"} {
			obs, err := trace.Observe(context.Background(), New(), tr, trace.Options{Profile: profile})
			if err != nil {
				t.Fatalf("%s on %s: %v", c.file, profile, err)
			}
			want := c.want
			if profile == "linux-6.18+loopback-splice-seq" {
				want = c.wantSeq
			}
			last := obs[len(obs)-1]
			got := string(last.Result.Data)
			if last.Result.Err != 0 {
				got = last.Result.String()
			}
			if got != want {
				t.Errorf("%s on %s: %s => %v, want %q", c.file, profile, last.Op, last.Result, want)
			}
		}
	}
}

// TestRedirectLoopClosedPair: both ends of a pair are closed while kernel
// work feeds itself (an sk_msg egress redirect of b2 to itself). The
// dropped psocks' destroy works wait behind it; that is not a leak.
func TestRedirectLoopClosedPair(t *testing.T) {
	tr := loadTrace(t, scenarioDir+"redirect_loop_closed_pair.trace")
	b, err := NewWithConfig(Config{Liveness: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trace.Observe(context.Background(), b, tr, trace.Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestConnPairRendezvous: `conn A B pair` leaves both ends in the pairing
// program's sockhash, a map no trace op names: each keeps a psock that a
// trace map's delete does not drop, a later `pair` of either finds it
// paired (-EEXIST), and close takes the socket out of the sockhash
// (sock_map_close).
func TestConnPairRendezvous(t *testing.T) {
	tr, err := trace.Parse("t.trace", []byte(`profile loopback-splice
conn a b pair
conn c d
map m sockhash 2
insert m 0 a
insert m 1 c
delete m 0
pair a b
pair c a
send a "x"
`))
	if err != nil {
		t.Fatal(err)
	}
	opts, prof, err := resolveRun(tr, trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := New().runPolicy(context.Background(), tr, opts, prof, nil, false)
	if err != nil || o.Err != nil {
		t.Fatalf("%v, %v", err, o.Err)
	}
	var got []string
	for _, ob := range o.Obs {
		got = append(got, ob.String())
	}
	for _, w := range []string{"2: conn a b pair => ok", "7: delete m 0 => ok", "8: pair a b => -EEXIST", "9: pair c a => -EEXIST", `10: send a "x" => 1`} {
		if !slices.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
	k := o.r.k
	if _, named := k.maps["rendezvous"]; named || k.rendezvous == nil {
		t.Fatalf("the rendezvous sockhash is %v, named by the trace %v", k.rendezvous, named)
	}
	for _, name := range []string{"a", "b"} {
		sk := k.socks[name]
		if p := skPsock(sk); p == nil || len(p.Links) != 1 || p.Links[0].Map != k.rendezvous || !skPsockIsSpliced(p) {
			t.Errorf("%s: psock %+v, want one link, to the rendezvous sockhash, and paired", name, p)
		}
		if k.rendezvous.lookup(rendezvousKey(sk, k.peerOf(sk))) != sk {
			t.Errorf("%s not in the rendezvous sockhash under its 4-tuple", name)
		}
	}
	if len(k.splice.writes) != 1 || k.splice.writes[0].Reader != "b" {
		t.Errorf("ring writes %+v, want a's one into b's ring", k.splice.writes)
	}
	// close a: sock_map_close unlinks it from the rendezvous sockhash.
	tr2, err := trace.Parse("t.trace", []byte("profile loopback-splice\nconn a b pair\nclose a\n"))
	if err != nil {
		t.Fatal(err)
	}
	o, err = New().runPolicy(context.Background(), tr2, opts, prof, nil, false)
	if err != nil || o.Err != nil {
		t.Fatalf("%v, %v", err, o.Err)
	}
	k = o.r.k
	a, b := k.socks["a"], k.socks["b"]
	if k.rendezvous.lookup(rendezvousKey(a, b)) != nil || k.rendezvous.lookup(rendezvousKey(b, a)) != b {
		t.Errorf("after close a: a still in the rendezvous sockhash, or b gone")
	}
}
