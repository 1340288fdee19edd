package fuzz

import (
	"fmt"
	"strings"

	"github.com/splicecheck/splicecheck/trace"
	"pgregory.net/rapid"
)

// GenConfig shapes generated traces.
type GenConfig struct {
	MinConns, MaxConns int // connections (2 sockets each); default 2..4
	MinMaps, MaxMaps   int // maps; default 1..2
	MaxOps             int // data and control ops after setup; default 24
	// Threads allows ops in threads other than main (blocking recv with an
	// SO_RCVTIMEO bound, joined before the trace ends).
	Threads bool
	// Pair allows `pair` (loopback-splice profiles).
	Pair bool
	// Splice weights the traces toward the splice_read paths (the
	// splice-copy and splice-zerocopy profiles): ingress redirects and
	// sk_skb verdicts feeding a socket that splices into its pipe, pipe
	// reads, pipe resizes, and receivers with rx copybreak, whose bytes
	// sit in slab memory.
	Splice bool
	// KernelSafe keeps to ops that cannot block forever on a real kernel,
	// where the runner would have to force them out: every read is bounded
	// by SO_RCVTIMEO, every send is MSG_DONTWAIT, every splice is
	// SPLICE_F_NONBLOCK (a full pipe) on a socket with SO_RCVTIMEO, and
	// iocopy sources carry an SO_RCVTIMEO.
	KernelSafe bool
}

func (c GenConfig) withDefaults() GenConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MinConns, 2)
	def(&c.MaxConns, 4)
	def(&c.MinMaps, 1)
	def(&c.MaxMaps, 2)
	def(&c.MaxOps, 24)
	if c.MaxConns < c.MinConns {
		c.MaxConns = c.MinConns
	}
	if c.MaxMaps < c.MinMaps {
		c.MaxMaps = c.MinMaps
	}
	return c
}

// Trace returns a generator of valid random traces: 2-4 connections, 1-2
// maps with random canned programs, random inserts, then a random mix of
// every data and control op.
func Trace(cfg GenConfig) *rapid.Generator[*trace.Trace] {
	cfg = cfg.withDefaults()
	return rapid.Custom(func(t *rapid.T) *trace.Trace {
		src := genSource(t, cfg)
		tr, err := trace.Parse("generated.trace", []byte(src))
		if err != nil {
			// A generator bug, never an input error: fail loudly.
			panic(fmt.Sprintf("generated trace does not parse: %v\n%s", err, src))
		}
		return tr
	})
}

type genState struct {
	t       *rapid.T
	cfg     GenConfig
	b       strings.Builder
	socks   []string
	maps    []genMap
	threads []string
	timeo   map[string]bool // sockets with an SO_RCVTIMEO set
}

type genMap struct {
	name string
	size int
}

func (g *genState) line(format string, args ...any) {
	fmt.Fprintf(&g.b, format+"\n", args...)
}

func (g *genState) sock(label string) string {
	return rapid.SampledFrom(g.socks).Draw(g.t, label)
}

// tcpPeer is the other end of s's connection (a1 ↔ a2).
func tcpPeer(s string) string {
	if s[1] == '1' {
		return s[:1] + "2"
	}
	return s[:1] + "1"
}

func genSource(t *rapid.T, cfg GenConfig) string {
	g := &genState{t: t, cfg: cfg, timeo: map[string]bool{}}
	nconn := rapid.IntRange(cfg.MinConns, cfg.MaxConns).Draw(t, "conns")
	for i := 0; i < nconn; i++ {
		a, b := fmt.Sprintf("%c1", 'a'+i), fmt.Sprintf("%c2", 'a'+i)
		g.socks = append(g.socks, a, b)
		g.line("conn %s %s", a, b)
	}
	nmap := rapid.IntRange(cfg.MinMaps, cfg.MaxMaps).Draw(t, "maps")
	for i := 0; i < nmap; i++ {
		m := genMap{fmt.Sprintf("m%d", i), rapid.IntRange(1, 2*nconn).Draw(t, "mapsize")}
		g.maps = append(g.maps, m)
		g.line("map %s %s %d", m.name, rapid.SampledFrom([]string{"sockmap", "sockhash"}).Draw(t, "maptype"), m.size)
		nprog := rapid.IntRange(0, 2).Draw(t, "progs")
		for j := 0; j < nprog; j++ {
			g.line("prog %s %s", m.name, g.prog(m))
		}
		ninsert := rapid.IntRange(0, m.size+1).Draw(t, "inserts")
		for j := 0; j < ninsert; j++ {
			g.line("insert %s %d %s", m.name, rapid.IntRange(0, m.size).Draw(t, "key"), g.sock("insertsock"))
		}
	}
	if cfg.Splice {
		g.spliceSetup()
	} else if !cfg.KernelSafe && !cfg.Pair && rapid.IntRange(0, 3).Draw(t, "peer") == 0 {
		// A quarter of the traces get the KERNEL-FACTS "peer" topology:
		// a1's sends go to a2's ingress queue (in apply_bytes pieces, some
		// of the time), so readers of a2, threads among them, wait on
		// psock data.
		g.peer("mr", rapid.SampledFrom([]string{"", " apply 10", " apply 100", " apply 1000"}).Draw(t, "peerapply"))
	}
	if cfg.KernelSafe {
		// Bound every blocking read so timing never decides an outcome,
		// with a different timeout per socket (20, 35, 50, ... ms): two
		// reads that start together never time out at the same instant,
		// which a live kernel would settle either way.
		for i, s := range g.socks {
			g.line("set %s rcvtimeo %d", s, kernelSafeTimeo(i))
			g.timeo[s] = true
		}
	}
	if cfg.Pair {
		// A loopback-splice pair on the first connection: both ends in a
		// map of their own (pairing needs psocks), then paired.
		g.line("map mp sockhash 2")
		g.line("insert mp 0 a1")
		g.line("insert mp 1 a2")
		g.line("pair a1 a2")
	}
	if cfg.Threads && !cfg.KernelSafe {
		// Reader threads need a bounded wait; give half the sockets one
		// up front, so that blocked readers (and their wake-ups) are common.
		for _, s := range g.socks {
			if rapid.Bool().Draw(t, "timeo") {
				g.line("set %s rcvtimeo %d", s, rapid.IntRange(5, 50).Draw(t, "timeoms"))
				g.timeo[s] = true
			}
		}
	}
	if cfg.Pair && cfg.Threads && !cfg.KernelSafe && rapid.IntRange(0, 3).Draw(t, "ringrace") == 0 {
		g.ringRace()
	}
	// Rare: the module's merge then spins to the livelock bound (about
	// 0.1 s a trace, fifty times an ordinary one).
	if cfg.Pair && !cfg.KernelSafe && rapid.IntRange(0, 127).Draw(t, "seqhole") == 0 {
		g.seqHole()
	}
	nops := rapid.IntRange(1, cfg.MaxOps).Draw(t, "ops")
	for i := 0; i < nops; i++ {
		if cfg.Splice && rapid.IntRange(0, 2).Draw(t, "spliceop") == 0 {
			g.spliceOp()
			continue
		}
		g.op()
	}
	for _, th := range g.threads {
		g.line("join %s", th)
	}
	return g.b.String()
}

// prog draws the words after `prog M`.
func (g *genState) prog(m genMap) string {
	t := g.t
	typ := rapid.SampledFrom([]string{"sk_msg", "sk_skb"}).Draw(t, "progtype")
	var w []string
	w = append(w, typ)
	switch rapid.IntRange(0, 3).Draw(t, "verdict") {
	case 0:
		w = append(w, "pass")
	case 1:
		w = append(w, "drop")
	default:
		w = append(w, fmt.Sprintf("redirect %d %s", rapid.IntRange(0, m.size).Draw(t, "redirkey"),
			rapid.SampledFrom([]string{"ingress", "egress"}).Draw(t, "dir")))
	}
	if typ == "sk_msg" {
		if rapid.IntRange(0, 3).Draw(t, "hasapply") == 0 {
			w = append(w, fmt.Sprintf("apply %d", rapid.SampledFrom([]int{1, 10, 100, 1000, 4096}).Draw(t, "apply")))
		}
		if rapid.IntRange(0, 3).Draw(t, "hascork") == 0 {
			w = append(w, fmt.Sprintf("cork %d", rapid.SampledFrom([]int{1, 10, 100, 1000, 4096}).Draw(t, "cork")))
		}
	} else if rapid.IntRange(0, 3).Draw(t, "hasparser") == 0 {
		w = append(w, "parser "+rapid.SampledFrom([]string{"all", "1", "10", "100"}).Draw(t, "parser"))
	}
	return strings.Join(w, " ")
}

var sizes = []int{0, 1, 7, 64, 100, 1000, 4096, 65536}

// op draws one data or control op, weighted toward sends and reads.
func (g *genState) op() {
	t := g.t
	s := g.sock("sock")
	kind := rapid.SampledFrom([]string{
		"send", "send", "send", "send", "recv", "recv", "recv", "splice", "splice", "pipe",
		"fionread", "fionread", "poll", "state", "shutdown", "close", "set", "insert", "delete",
		"sleep", "iocopy", "thread", "thread", "pair", "fill", "tsend",
	}).Draw(t, "op")
	if g.cfg.KernelSafe && (kind == "fill" || kind == "tsend" || kind == "thread" && rapid.Bool().Draw(t, "thread2")) {
		// Kernel-safe traces keep the cross-check's weights: one thread
		// op in about 25 and no fills, whose full windows and buffers
		// the model does not time as the kernel does (see README, Known
		// gaps).
		kind = "poll"
	}
	switch kind {
	case "tsend":
		// A sender thread: with a reader thread on the peer, the sends
		// and reads interleave under an exploring schedule.
		if !g.cfg.Threads || g.cfg.KernelSafe {
			g.line("fionread %s", s)
			return
		}
		th := fmt.Sprintf("t%d", len(g.threads)+1)
		g.threads = append(g.threads, th)
		g.line("@%s send %s %d", th, s, rapid.SampledFrom([]int{1, 100, 16383, 16400}).Draw(t, "tsendsize"))
	case "fill":
		// Fill the path: windows, send buffers, a redirect target's
		// queue (full buffers and partial sends).
		for range 2 {
			g.line("send %s 16400 dontwait", s)
		}
	case "send":
		var data string
		switch rapid.IntRange(0, 2).Draw(t, "form") {
		case 0:
			data = fmt.Sprintf("%d", rapid.SampledFrom(sizes).Draw(t, "sendsize"))
		case 1:
			data = fmt.Sprintf("%q", rapid.SampledFrom([]string{"MSG1", "TCP1", "x", "hello\n", ""}).Draw(t, "text"))
		default:
			data = `x"00ff0a"`
		}
		fl := g.flag("dontwait")
		if g.cfg.KernelSafe {
			fl = " dontwait"
		}
		g.line("send %s %s%s", s, data, fl)
	case "recv":
		fl := g.flag("peek")
		if !g.timeo[s] || rapid.Bool().Draw(t, "dw") {
			fl += " dontwait"
		}
		g.line("recv %s %d%s", s, rapid.SampledFrom(sizes[1:]).Draw(t, "recvsize"), fl)
	case "splice":
		fl := g.flag("nonblock")
		if g.cfg.KernelSafe {
			fl = " nonblock"
		}
		g.line("splice %s %d%s", s, rapid.SampledFrom(sizes[1:]).Draw(t, "splicesize"), fl)
	case "pipe":
		g.line("pipe %s %d", s, rapid.SampledFrom(sizes[1:]).Draw(t, "pipesize"))
	case "fionread", "poll", "state":
		g.line("%s %s", kind, s)
	case "shutdown":
		g.line("shutdown %s %s", s, rapid.SampledFrom([]string{"wr", "rd", "rdwr"}).Draw(t, "how"))
	case "close":
		g.line("close %s%s", s, g.flag("rst"))
	case "set":
		switch rapid.IntRange(0, 3).Draw(t, "opt") {
		case 0:
			if g.cfg.KernelSafe {
				// Keep the socket's own timeout (see Trace).
				break
			}
			g.line("set %s rcvtimeo %d", s, rapid.IntRange(1, 50).Draw(t, "timeo"))
			g.timeo[s] = true
		case 1:
			g.line("set %s nonblock %s", s, rapid.SampledFrom([]string{"on", "off"}).Draw(t, "nb"))
		case 2:
			g.line("set %s rcvbuf %d", s, rapid.SampledFrom([]int{1024, 4096, 65536}).Draw(t, "rcvbuf"))
		default:
			g.line("set %s sndbuf %d", s, rapid.SampledFrom([]int{1024, 4096, 65536}).Draw(t, "sndbuf"))
		}
	case "insert":
		m := rapid.SampledFrom(g.maps).Draw(t, "map")
		g.line("insert %s %d %s", m.name, rapid.IntRange(0, m.size).Draw(t, "key"), s)
	case "delete":
		m := rapid.SampledFrom(g.maps).Draw(t, "map")
		g.line("delete %s %d", m.name, rapid.IntRange(0, m.size).Draw(t, "key"))
	case "sleep":
		g.line("sleep %d", rapid.IntRange(1, 20).Draw(t, "ms"))
	case "iocopy":
		d := g.sock("dst")
		if d == s || !g.timeo[s] {
			g.line("fionread %s", s)
			return
		}
		g.line("iocopy %s %s", s, d)
	case "thread":
		if !g.cfg.Threads || !g.timeo[s] {
			g.line("poll %s", s)
			return
		}
		th := fmt.Sprintf("t%d", len(g.threads)+1)
		g.threads = append(g.threads, th)
		g.line("@%s recv %s %d", th, s, rapid.SampledFrom(sizes[1:]).Draw(t, "trecvsize"))
	case "pair":
		if !g.cfg.Pair {
			g.line("state %s", s)
			return
		}
		// A sock_ops program pairs the two ends of one flow (the
		// RFC's selftest looks the peer up by its 4-tuple); the
		// kfunc itself does not check that they are peers, which
		// model.TestPairedSocketBehaviours pins.
		g.line("pair %s %s", s, tcpPeer(s))
	}
}

// ringRace writes a sender and a reader thread on the pair a1/a2 that
// start together (both join a thread that sleeps a millisecond, so
// neither runs before the other is dispatched): the sender fills the
// peer's ring and sends the rest by TCP, then sends again; the reader
// drains the ring meanwhile. Under an exploring schedule the TCP tail
// may still be in flight when the next send finds the reader's receive
// queue empty (the loopback-splice RFC's defect (a)). The reader takes
// all that the ring-only profile's sender needs, and main joins both
// before the trace goes on: the ring has one producer and one consumer,
// and no later op sends or reads on the pair while the race runs.
func (g *genState) ringRace() {
	t := g.t
	n := len(g.threads)
	gate, snd, rcv := fmt.Sprintf("t%d", n+1), fmt.Sprintf("t%d", n+2), fmt.Sprintf("t%d", n+3)
	g.threads = append(g.threads, gate, snd, rcv) // no later op takes their names
	from, to := "a1", "a2"
	if rapid.Bool().Draw(t, "racedir") {
		from, to = to, from
	}
	g.line("@%s sleep 1", gate)
	g.line("@%s join %s", rcv, gate)
	g.line("@%s join %s", snd, gate)
	g.line("@%s send %s 16400", snd, from)
	g.line("@%s send %s %q", snd, from, rapid.SampledFrom([]string{"X", "MSG1", "hello\n"}).Draw(t, "racetail"))
	g.line("@%s recv %s 16383", rcv, to)
	g.line("@%s recv %s 100", rcv, to)
	for _, th := range []string{rcv, snd, gate} {
		g.line("join %s", th)
	}
}

// seqHole writes a paired socket whose own TCP stream gets a copied_seq
// hole: a1 joins a map with a stream verdict (sk_skb pass) and an sk_msg
// egress redirect to a2, so its sends come back to it by TCP and its
// verdict queues them on ingress_msg without advancing copied_seq; then
// a1 leaves the map (deleted, or another socket takes its key) while its
// pair keeps the psock, sends again, and reads. The module's
// splice_recvmsg_merge spins on such a hole (the livelock of
// counterexamples/seq_merge_spins_on_tcp_hole.trace).
func (g *genState) seqHole() {
	t := g.t
	g.line("map mh sockhash 2")
	g.line("prog mh sk_msg redirect 0 egress")
	g.line("prog mh sk_skb pass")
	g.line("insert mh 1 a1")
	g.line("insert mh 0 a2")
	g.line("send a1 %q dontwait", rapid.SampledFrom([]string{"MSG1", "x", "hello\n"}).Draw(t, "holemsg"))
	if other := g.sock("holeother"); other != "a1" && other != "a2" {
		g.line("insert mh 1 %s", other)
	} else {
		g.line("delete mh 1")
	}
	g.line("send a1 %d dontwait", rapid.IntRange(1, 4096).Draw(t, "holesize"))
	for range rapid.IntRange(1, 2).Draw(t, "holereads") {
		g.line("recv a1 %d dontwait", rapid.SampledFrom([]int{100, 1000, 65536}).Draw(t, "holeread"))
	}
}

// peer writes the KERNEL-FACTS "peer" topology in a map of its own, m:
// a1's sends go to a2's ingress queue (opts: the program's apply/cork
// words, if any).
func (g *genState) peer(m, opts string) {
	g.line("map %s sockmap 2", m)
	g.line("prog %s sk_msg redirect 1 ingress%s", m, opts)
	g.line("insert %s 0 a1", m)
	g.line("insert %s 1 a2", m)
}

// spliceSetup adds, most of the time, a map ms that feeds a2's ingress
// queue from a1 (the KERNEL-FACTS "peer" topology, an sk_msg redirect)
// or from a2's own stream (an sk_skb pass or self redirect), and gives a2
// rx copybreak half the time.
func (g *genState) spliceSetup() {
	t := g.t
	switch rapid.IntRange(0, 3).Draw(t, "splicetopo") {
	case 0:
		return
	case 1:
		g.peer("ms", "")
	case 2:
		g.line("map ms sockmap 1")
		g.line("prog ms sk_skb pass%s", rapid.SampledFrom([]string{"", "", " parser all", " parser 100"}).Draw(t, "spliceparser"))
		g.line("insert ms 0 a2")
	default:
		g.line("map ms sockmap 1")
		g.line("prog ms sk_skb redirect 0 ingress")
		g.line("insert ms 0 a2")
	}
	if rapid.Bool().Draw(t, "copybreak") {
		g.line("set a2 rxcopybreak %d", rapid.SampledFrom([]int{64, 1000, 65536}).Draw(t, "copybreaksize"))
	}
}

// spliceOp draws an op of the splice path on a2, the socket spliceSetup
// feeds, or a send into it from a1.
func (g *genState) spliceOp() {
	t := g.t
	switch rapid.IntRange(0, 5).Draw(t, "spliceopkind") {
	case 0, 1:
		fl := " nonblock"
		if !g.cfg.KernelSafe && rapid.Bool().Draw(t, "splicenb") {
			fl = ""
			if !g.timeo["a2"] {
				g.line("set a2 nonblock on")
			}
		}
		g.line("splice a2 %d%s", rapid.SampledFrom(sizes[1:]).Draw(t, "splicesize"), fl)
	case 2:
		g.line("pipe a2 %d", rapid.SampledFrom(sizes[1:]).Draw(t, "pipereadsize"))
	case 3:
		g.line("set a2 pipesize %d", rapid.SampledFrom([]int{1, 4096, 8192, 65536, 1 << 20}).Draw(t, "pipesz"))
	default:
		g.line("send a1 %d dontwait", rapid.SampledFrom(sizes[1:]).Draw(t, "splicesend"))
	}
}

// flag returns " word" half the time.
func (g *genState) flag(word string) string {
	if rapid.Bool().Draw(g.t, word) {
		return " " + word
	}
	return ""
}

// kernelSafeTimeo is the SO_RCVTIMEO (ms) of the i-th socket of a
// KernelSafe trace.
func kernelSafeTimeo(i int) int { return 20 + 15*i }
