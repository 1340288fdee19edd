package netstack

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/splicecheck/splicecheck/internal/corpustest"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// The netstack backend (the model on gVisor's TCP, transport.go and
// model/internal/linux/tcp_ext.go) against the goldens recorded on real kernels.

// corpus is testdata/traces/DIR with profile's goldens and the netstack
// backend's known divergences there.
func corpus(dir, profile string, gaps map[string]string) corpustest.Corpus {
	return corpustest.Corpus{Dir: filepath.Join("../testdata/traces", dir), Goldens: "../testdata/golden", Profile: profile, Gaps: gaps}
}

// strpRcvbufBridge is why strp_err_self_redirect_rcvbuf_shrunk diverges on
// every profile.
const strpRcvbufBridge = "the bridge: after SO_RCVBUF 1 (sk_rcvbuf 2304) the frame on ingress_msg keeps " +
	"sk_rmem_alloc over sk_rcvbuf, so rx takes no more bytes off gVisor's endpoint (extRcvLimit) and the " +
	"bytes that complete a frame and abort the parser on Linux stay there (no ERR, the frame is read); " +
	"Linux and RefTCP queue them"

// zerocopyBridge is why the MSG_ZEROCOPY traces that complete a send
// diverge: the completion chain (model/internal/linux/zerocopy.go) hangs
// on the reference TCP's skbs.
const zerocopyBridge = "the bridge: gVisor has no MSG_ZEROCOPY, and the bridge keeps no skbs whose release " +
	"would complete a send, so a zero-copy send is a copy: no id, no completion on the error queue, no POLLERR"

// kernelCorpusGVisor is the same list for the kernel corpus on every
// profile: the five flow-control traces pin Linux's buffer accounting,
// and gVisor's TCP has its own (its send buffer is not counted in skb
// truesize, its receive window is not tcp_select_window's).
var kernelCorpusGVisor = map[string]string{
	"strp_err_self_redirect_rcvbuf_shrunk": strpRcvbufBridge,
	"zc_tcp_completions":                   zerocopyBridge,
	"zc_tcp_abort_gives_id_back":           zerocopyBridge,
	"zc_tcp_partial_send":                  zerocopyBridge,
	"zc_tcp_split_skb":                     zerocopyBridge,
	"zc_skskb_receiver":                    zerocopyBridge,
	"zc_splice_receiver":                   zerocopyBridge,
	"zc_sockmap_pass":                      zerocopyBridge,
	"zc_sockmap_apply":                     zerocopyBridge,
	"zc_sockmap_cork":                      zerocopyBridge,
	"zc_sockmap_redirect_egress":           zerocopyBridge,
	"tcp_sndbuf_small": "gVisor: a 4096-byte SO_SNDBUF does not stop a 100000-byte send (gVisor frees send " +
		"buffer as ACKs arrive during the call); Linux's doubled 8192, counted in truesize, stops it at one skb (32741)",
	"tcp_window_nonreading_fill": "gVisor: buffer sizes: gVisor's 1 MiB send buffer and receive window take " +
		"1638454 bytes of a nonblocking 10 MiB send; Linux's autotuned buffers take far more (3904512 on 6.18)",
	"tcp_window_rcvbuf_small": "gVisor: after SO_RCVBUF 4096 gVisor's window still takes a whole segment " +
		"(65483 on loopback, 5792 at MTU 1500); Linux's receiver keeps one half-window skb (32741)",
	"tcp_window_truesize": "gVisor: its receive buffer is not counted in skb truesize, so a small SO_RCVBUF " +
		"admits bytes that Linux's receiver prunes or refuses",
	"tcp_window_rcvbuf_min": "gVisor: SO_RCVBUF 1024 takes 6096 bytes where Linux's SOCK_MIN_RCVBUF (2304, " +
		"counted in truesize) takes 2000, and its sender is not stopped by SOCK_MIN_SNDBUF",
}

// backendCorpora are the corpora the netstack backend is held to, each
// with the traces it is known to get wrong and the cause: gVisor (its TCP
// is not Linux's), the bridge, or the model. Every other trace must
// agree; a listed trace must still diverge, so that a fix removes its
// entry.
var backendCorpora = []corpustest.Corpus{
	corpus("kernel", "linux-6.18", kernelCorpusGVisor),
	corpus("kernel", "linux-6.12", kernelCorpusGVisor),
	corpus("kernel", "linux-6.1", kernelCorpusGVisor),
	plainTCPCorpus,
}

// plainTCPCorpus is plain TCP (no map or program), recorded on the 6.18
// host.
var plainTCPCorpus = corpus("plaintcp", "linux-6.18", map[string]string{
	"big_nodrain": "gVisor: buffer sizes: gVisor's receive window and 1 MiB send buffer take 1603936 bytes of a " +
		"non-blocking 5 MiB send; Linux's autotuned buffers take 3904512 (as RefTCP does)",
	"rcvbuf_small": "gVisor: after SO_RCVBUF 4096 on an established connection gVisor's window still takes a " +
		"whole segment (FIONREAD 65483 on loopback, 5792 between two hosts at MTU 1500); Linux's takes 32741",
	"sndbuf_small": "gVisor and the bridge: gVisor frees send buffer as the receiver's ACKs come in during the " +
		"system call (the bridge settles the stacks after every chunk it writes), so a small SO_SNDBUF " +
		"does not stop the send (663552 bytes); Linux processes those ACKs only at release_sock and stops at 32741",
	"sndbuf_probe_late": "gVisor: buffer sizes and timers: its 1 MiB send buffer takes 1114059 bytes of the " +
		"non-blocking 5 MiB send (Linux 3896179), its window after SO_RCVBUF 4096 a whole segment (FIONREAD 65483 " +
		"on loopback, 5792 at MTU 1500; Linux 32741), and no probe's ACK grows its send buffer two ops later: " +
		"the last one-byte send gets -EAGAIN where Linux takes it",
	"splice_big": "gVisor: the receive window: Linux's receiver takes 195557 of 200000 bytes (as RefTCP does) " +
		"(FIONREAD 64485 after two 64 KiB splices), gVisor's all of them (68928)",
})

func netstackBackend(tb testing.TB, opts TransportOptions) *model.Backend {
	tb.Helper()
	be, err := NewBackend(opts, model.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return be
}

// TestBackendCorpus runs the kernel corpus and the plain-TCP corpus on
// the netstack backend, on both topologies, and compares every trace
// with its golden: the agreeing set must be exactly the corpus less the
// named divergences.
func TestBackendCorpus(t *testing.T) {
	for _, topo := range []struct {
		name string
		opts TransportOptions
	}{{"loopback", TransportOptions{}}, {"twohost", TransportOptions{TwoHost: true}}} {
		be := netstackBackend(t, topo.opts)
		for _, c := range backendCorpora {
			t.Run(topo.name+"/"+filepath.Base(c.Dir)+"/"+c.Profile, func(t *testing.T) { corpustest.Check(t, be, c) })
		}
	}
}

// TestBackendDeterministic: the same trace gives the same observations,
// data included, run after run, although gVisor processes segments on
// goroutines of its own.
func TestBackendDeterministic(t *testing.T) {
	be := netstackBackend(t, TransportOptions{})
	for _, c := range []corpustest.Corpus{backendCorpora[0], plainTCPCorpus} {
		for _, k := range corpustest.Load(t, c) {
			tr := k.Trace
			var first []trace.Observation
			for run := 0; run < 3; run++ {
				obs, err := trace.Observe(context.Background(), be, tr, trace.Options{Profile: c.Profile})
				if err != nil {
					t.Fatalf("%s: %v", tr.File, err)
				}
				if run == 0 {
					first = obs
					continue
				}
				for i := range obs {
					a, b := first[i], obs[i]
					if a.String() != b.String() || !bytes.Equal(a.Result.Data, b.Result.Data) {
						t.Errorf("%s run %d: %s, first run: %s", tr.File, run, b, a)
					}
				}
			}
		}
	}
}

// TestBackendNoGoroutineSurvives: after a run on the netstack backend,
// whatever it left open or failed with, no goroutine is left: not the
// stacks' processors, nor timer callbacks, nor the model's threads.
func TestBackendNoGoroutineSurvives(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, opts := range []TransportOptions{{}, {TwoHost: true}} {
		be := netstackBackend(t, opts)
		cases := corpustest.Load(t, plainTCPCorpus)
		for _, k := range cases {
			if _, err := trace.Observe(context.Background(), be, k.Trace, trace.Options{Profile: "linux-6.18"}); err != nil {
				t.Fatal(err)
			}
		}
		// A run cut short: its context is already done.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := trace.Observe(ctx, be, cases[0].Trace, trace.Options{Profile: "linux-6.18"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("run with a cancelled context: %v", err)
		}
	}
	if after := settleGoroutines(before); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after the runs:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// TestBackendTransportFailure: a transport that cannot be built fails
// the run with model.ErrTransport wrapping its cause.
func TestBackendTransportFailure(t *testing.T) {
	be := netstackBackend(t, TransportOptions{Options: Options{MTU: 100}})
	tr, err := trace.Parse("t.trace", []byte("conn a b\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = trace.Observe(context.Background(), be, tr, trace.Options{})
	if !errors.Is(err, model.ErrTransport) || !errors.Is(err, errBadOption) {
		t.Fatalf("run on a transport with MTU 100: %v, want ErrTransport wrapping errBadOption", err)
	}
	if _, err := newTransport(TransportOptions{Options: Options{RealClock: true}}); !errors.Is(err, errBadOption) {
		t.Fatalf("newTransport(RealClock) = %v, want errBadOption", err)
	}
}

// TestCoverageOnNetstack: on the netstack backend no mirrored function is
// reached outside its scope (model.Coverage.Applies): the reference TCP's
// functions never run under gVisor's TCP. The model's TestCoverageScopes
// checks the same on the reference TCP.
func TestCoverageOnNetstack(t *testing.T) {
	be := netstackBackend(t, TransportOptions{})
	for _, p := range []string{"linux-6.18", "linux-6.1", "linux-6.18+loopback-splice-seq"} {
		var cov model.Coverage
		for _, k := range corpustest.Load(t, backendCorpora[0]) {
			res, err := trace.Run(context.Background(), be, k.Trace, trace.Options{Profile: p, Stats: true})
			if err != nil {
				continue // a named gap; TestBackendCorpus judges the runs
			}
			cov.Merge(&res.Stats.(*model.Stats).Coverage)
		}
		if cov.Runs() == 0 {
			t.Fatalf("%s: no run of the corpus succeeded", p)
		}
		for _, f := range cov.OutOfScope() {
			t.Errorf("%s: %v was reached on netstack, but its scope says it cannot run there", p, f)
		}
		n, m := cov.Count()
		t.Logf("%s: the corpus reaches %d/%d mirrored functions on netstack", p, n, m)
	}
}
