package netstack

import (
	"context"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// connPairTrace pairs a and b at their ESTABLISHED callbacks, then sends
// each way and reads: on a loopback-splice profile every byte takes the
// ring, which FIONREAD does not count.
const connPairTrace = `conn a b pair
send a "hello"
fionread b
recv b 100
send b "back"
recv a 100
`

// TestConnPair runs `conn a b pair` on the model and on the netstack
// backend (both topologies): on the loopback-splice profiles the
// ESTABLISHED callbacks pair a and b and the bytes move through the
// rings (bpf_sock_splice_pair and splice_send_ring reached, one ring
// write per direction); on linux-6.18, which has no pairing kfunc, the
// conn reports -EOPNOTSUPP, inserts nothing and the connection is plain
// TCP.
func TestConnPair(t *testing.T) {
	tr, err := trace.Parse("connpair.trace", []byte(connPairTrace))
	if err != nil {
		t.Fatal(err)
	}
	fn := func(name string) model.Fn {
		f, ok := model.LookupFn(name)
		if !ok {
			t.Fatalf("no mirrored function %s", name)
		}
		return f
	}
	callbacks, rfcKfunc, link := fn("sockOpsSplicePair"), fn("bpfSockSplicePair"), fn("sockMapLink")
	modKfunc := fn("bpfTcpSplicePair")
	ringSend, seqRingSend := fn("spliceSendRing"), fn("spliceSeqSendRing")
	for _, be := range []*model.Backend{
		model.New(),
		netstackBackend(t, TransportOptions{}),
		netstackBackend(t, TransportOptions{TwoHost: true}),
	} {
		for _, c := range []struct {
			profile  string
			conn     string
			fionread string
			ring     model.Fn // the ring send path, or 0 for plain TCP
		}{
			{"linux-6.18+loopback-splice", "ok", "0", ringSend},
			{"linux-6.18+loopback-splice-seq", "ok", "0", seqRingSend},
			{"linux-6.18", "-EOPNOTSUPP", "5", 0},
		} {
			name := be.Name() + "/" + c.profile
			res, err := trace.Run(context.Background(), be, tr, trace.Options{Profile: c.profile, Stats: true})
			obs, st := res.Obs, res.Stats.(*model.Stats)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var got []string
			for _, o := range obs {
				got = append(got, o.String())
			}
			want := []string{
				"1: conn a b pair => " + c.conn,
				`2: send a "hello" => 5`,
				"3: fionread b => " + c.fionread,
				`4: recv b 100 => 5 "hello"`,
				`5: send b "back" => 4`,
				`6: recv a 100 => 4 "back"`,
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s:\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			cov := &st.Coverage
			paired := c.ring != 0
			// The module pairs through its own registry: no rendezvous
			// sockhash, no sock_map_link (splice_seq.go).
			module := c.profile == "linux-6.18+loopback-splice-seq"
			kfunc := rfcKfunc
			if module {
				kfunc = modKfunc
			}
			rendezvous := paired && !module
			if cov.Reached(callbacks) != rendezvous || cov.Reached(kfunc) != paired || cov.Reached(link) != rendezvous {
				t.Errorf("%s: reached %s %v, %s %v, %s %v; want %v", name, callbacks.Kernel(), cov.Reached(callbacks),
					kfunc.Kernel(), cov.Reached(kfunc), link.Kernel(), cov.Reached(link), paired)
			}
			if paired && !cov.Reached(c.ring) {
				t.Errorf("%s: the ring send path %s not reached", name, c.ring.Kernel())
			}
			var dirs []string
			for _, w := range st.RingWrites {
				dirs = append(dirs, w.Sock+">"+w.Reader)
			}
			wantDirs := ""
			if paired {
				wantDirs = "a>b b>a"
			}
			if strings.Join(dirs, " ") != wantDirs {
				t.Errorf("%s: ring writes %q, want %q", name, dirs, wantDirs)
			}
		}
	}
}
