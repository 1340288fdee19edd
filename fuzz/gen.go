package fuzz

import (
	"fmt"
	"slices"
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
	// Pair allows pairing, `conn A B pair` and `pair A B` (loopback-splice
	// profiles). EstablishedPairOnly keeps to `conn A B pair`: the
	// tcp_splice module's kfunc is made for the ESTABLISHED callbacks
	// (module/main.c), and a kernel answers a late pair -EOPNOTSUPP.
	Pair, EstablishedPairOnly bool
	// Splice weights the traces toward the splice_read paths (the
	// splice-copy and splice-zerocopy profiles): ingress redirects and
	// sk_skb verdicts feeding a socket that splices into its pipe, pipe
	// reads, pipe resizes, and receivers with rx copybreak, whose bytes
	// sit in slab memory.
	Splice bool
	// KernelSafe keeps to ops that cannot block forever on a real kernel,
	// where the runner would have to force them out: every read is bounded
	// by SO_RCVTIMEO or O_NONBLOCK (or is MSG_DONTWAIT), every send is
	// MSG_DONTWAIT, every splice is SPLICE_F_NONBLOCK (a full pipe) on a
	// socket with SO_RCVTIMEO or O_NONBLOCK, and iocopy sources carry an
	// SO_RCVTIMEO.
	KernelSafe bool
	// SoSplice adds FreeBSD's SO_SPLICE ops (profile freebsd-so-splice):
	// splices between any two sockets (chains, loops, a connection's two
	// ends), with and without max and idle, unsplices and resplices, and
	// reads of the counter.
	SoSplice bool
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
	// nonblock: sockets whose fd has O_NONBLOCK (a `set S nonblock on`
	// the generator wrote last).
	nonblock map[string]bool
	// noRead: receivers of a shapeNeverRead trace, which no op reads
	// (op() writes a fionread instead).
	noRead map[string]bool
	// pinned: sockets whose O_NONBLOCK op() leaves on (the only bound
	// of their reads on a kernel-safe trace); sendOwned: sockets whose
	// sends on a kernel-safe trace only the shape writes (it keeps
	// count of them). Both are the stream-parser shape's (parserSetup).
	pinned, sendOwned map[string]bool
	// parserMaps: maps with an sk_skb stream parser (line() notes every
	// such prog). On a kernel-safe trace op() inserts into them only a
	// pinned socket (see op's insert).
	parserMaps map[string]bool
	// routeSocks: the sockets of the shape's route; op() writes no
	// iocopy between two of them, which would feed itself until the
	// runner's timeout (seconds of model time per trace).
	routeSocks map[string]bool
	// peerMap is the map of the KERNEL-FACTS "peer" topology when the
	// trace has it with an apply window (peer): op() may move its
	// redirect target (retarget).
	peerMap string
	// shapeOp, when set, draws one op of the trace's shape (see shape).
	shapeOp func()
	// tail is written after the last op, before the joins; shapeTail,
	// when set, may add to it once the ops are drawn.
	tail      []string
	shapeTail func()
}

type genMap struct {
	name string
	size int
}

func (g *genState) line(format string, args ...any) {
	l := fmt.Sprintf(format, args...)
	if f := strings.Fields(l); len(f) > 3 && f[0] == "prog" && f[2] == "sk_skb" && slices.Contains(f, "parser") {
		g.parserMaps[f[1]] = true
	}
	g.b.WriteString(l + "\n")
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
	g := &genState{t: t, cfg: cfg, timeo: map[string]bool{}, nonblock: map[string]bool{}, noRead: map[string]bool{},
		routeSocks: map[string]bool{}, pinned: map[string]bool{}, sendOwned: map[string]bool{}, parserMaps: map[string]bool{}}
	pl := g.drawPlan()
	nconn := rapid.IntRange(min(max(cfg.MinConns, pl.conns), cfg.MaxConns), cfg.MaxConns).Draw(t, "conns")
	// On loopback-splice profiles a1/a2 are paired: three times in four
	// at their ESTABLISHED callbacks (`conn a1 a2 pair`, what runs on a
	// patched kernel), else late, by `pair a1 a2` after the setup (the
	// kfunc called from a later callback, on psocks from a map). Under
	// the old mix each other connection is paired at establishment a
	// quarter of the time; op() adds late pairs after data.
	// A kernel answers every late pair -EOPNOTSUPP (docs/design.md), so
	// KernelSafe traces pair at establishment only.
	latePair := cfg.Pair && !cfg.KernelSafe && rapid.IntRange(0, 3).Draw(t, "latepair") == 0
	latePair = latePair && !cfg.EstablishedPairOnly // drawn all the same: the other draws stay as they were
	for i := 0; i < nconn; i++ {
		a, b := fmt.Sprintf("%c1", 'a'+i), fmt.Sprintf("%c2", 'a'+i)
		g.socks = append(g.socks, a, b)
		pair := ""
		switch {
		case !cfg.Pair:
		case i == 0:
			if !latePair {
				pair = " pair"
			}
		case pl.shape == shapeOld && rapid.IntRange(0, 3).Draw(t, "connpair") == 0:
			pair = " pair"
		}
		g.line("conn %s %s%s", a, b, pair)
	}
	pl.place(g)
	// The random maps take sockets the shape's maps do not, most of the
	// time: a socket whose psock already has a program of the same kind
	// cannot join another map with one (sock_map_link() (net/core/sock_map.c,
	// v6.18): -EBUSY), and the shape's topology would be lost.
	insertable := g.socks
	if len(pl.reserved) > 0 && rapid.IntRange(0, 7).Draw(t, "noisyinserts") != 0 {
		insertable = nil
		for _, s := range g.socks {
			if !pl.reserved[s] {
				insertable = append(insertable, s)
			}
		}
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
		if len(insertable) == 0 {
			ninsert = 0
		}
		for j := 0; j < ninsert; j++ {
			g.line("insert %s %d %s", m.name, rapid.IntRange(0, m.size).Draw(t, "key"), rapid.SampledFrom(insertable).Draw(t, "insertsock"))
		}
	}
	if pl.shape != shapeOld {
		// The shape brings its own topology.
	} else if cfg.Splice {
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
	if latePair {
		// The late form of the pair on the first connection: both ends
		// in a map of their own (pairing needs psocks), then paired.
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
	pl.setup(g)
	minOps := 1
	if g.shapeOp != nil {
		// Room for the shape's own ops among the random ones.
		minOps = min(8, cfg.MaxOps)
	}
	nops := rapid.IntRange(minOps, cfg.MaxOps).Draw(t, "ops")
	for i := 0; i < nops; i++ {
		if g.shapeOp != nil {
			if rapid.IntRange(0, 2).Draw(t, "shapeop") != 0 {
				g.shapeOp()
				continue
			}
		} else if cfg.Splice && rapid.IntRange(0, 2).Draw(t, "spliceop") == 0 {
			g.spliceOp()
			continue
		}
		g.op()
	}
	if g.shapeTail != nil {
		g.shapeTail()
	}
	for _, l := range g.tail {
		g.line("%s", l)
	}
	for _, th := range g.threads {
		g.line("join %s", th)
	}
	if cfg.KernelSafe {
		return ownTimeouts(g.b.String())
	}
	return g.b.String()
}

// ownTimeouts gives every read that may block (a recv without dontwait,
// a splice, an iocopy's source) an SO_RCVTIMEO of its own, set on the
// read's thread just before it: 22, 32, 42, ... ms (cycling after 412),
// none equal to another read's or to a socket's first one (20, 35, 50,
// ...). Two reads blocked together, of one socket or two, then never
// time out at the same trace instant: the model would settle such a tie
// by the order the reads started, a kernel by which real timer fires
// first, a millisecond or two apart (README, Known gaps, runner time).
func ownTimeouts(src string) string {
	var b strings.Builder
	k := 0
	for _, l := range strings.SplitAfter(src, "\n") {
		f := strings.Fields(l)
		thread := ""
		if len(f) > 0 && strings.HasPrefix(f[0], "@") {
			thread, f = f[0]+" ", f[1:]
		}
		if len(f) >= 2 && (f[0] == "recv" && !slices.Contains(f, "dontwait") || f[0] == "splice" || f[0] == "iocopy") {
			fmt.Fprintf(&b, "%sset %s rcvtimeo %d\n", thread, f[1], 22+10*(k%40))
			k++
		}
		b.WriteString(l)
	}
	return b.String()
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

// sizes are the op sizes the generator draws: small ones, a page, the
// loopback-splice ring (16 KiB: a read that empties it exactly leaves
// what the sender sent by TCP when it was full) and a large one.
var sizes = []int{0, 1, 7, 64, 100, 1000, 4096, 16384, 65536}

// bufSizes are the SO_RCVBUF and SO_SNDBUF values the generator draws:
// below the minimum (doubled to SOCK_MIN_RCVBUF), small, a little under
// the defaults, and far above them (capped at rmem_max, wmem_max).
var bufSizes = []int{1024, 4096, 65536, 1 << 20}

// op draws one data or control op, weighted toward sends and reads.
func (g *genState) op() {
	t := g.t
	s := g.sock("sock")
	kind := rapid.SampledFrom([]string{
		"send", "send", "send", "send", "recv", "recv", "recv", "splice", "splice", "pipe",
		"fionread", "fionread", "poll", "state", "shutdown", "close", "set", "insert", "delete",
		"sleep", "iocopy", "thread", "thread", "pair", "fill", "tsend", "probe", "probe", "lastbytes", "retarget",
		"zerocopy", "errqueue",
	}).Draw(t, "op")
	if g.cfg.SoSplice && rapid.IntRange(0, 2).Draw(t, "sosplice") == 0 {
		kind = rapid.SampledFrom([]string{"sosplice", "sosplice", "unsplice", "getsplice"}).Draw(t, "soop")
	}
	if g.cfg.KernelSafe && (kind == "tsend" || kind == "thread" && rapid.Bool().Draw(t, "thread2")) {
		// Kernel-safe traces keep the cross-check's weights: one thread
		// op in about 25. They fill windows and buffers (MSG_DONTWAIT
		// sends): refTCP runs Linux's flow control (model/internal/linux/tcp_ref_flow.go).
		kind = "poll"
	}
	if g.cfg.KernelSafe && g.sendOwned[s] && kind == "send" {
		// The shape counts what it sends there (parserSetup).
		kind = "poll"
	}
	if g.noRead[s] && (kind == "recv" || kind == "splice" || kind == "pipe" || kind == "iocopy" || kind == "thread") {
		// A receiver that is never read (shapeNeverRead).
		kind = "fionread"
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
		fl += g.flag("zerocopy") // MSG_ZEROCOPY: an id when SO_ZEROCOPY is on
		g.line("send %s %s%s", s, data, fl)
		if rapid.IntRange(0, 3).Draw(t, "sendprobe") == 0 {
			// The receiver's view right after the bytes arrive.
			g.probe(tcpPeer(s))
		}
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
	case "sosplice":
		// Mostly forward, an accepted end (X2) into the connecting end
		// of a later connection (Y1, Y > X), so that splices chain; a
		// third of the time into any other socket, so that they may
		// loop (X2 into X1 is FreeBSD's splice_loop). A loop moves its
		// bytes round for as long as it lasts, so a splice that may
		// close one has a max.
		var sinks []string
		for _, c := range g.socks {
			if c[1] == '1' && c[0] > s[0] && s[1] == '2' {
				sinks = append(sinks, c)
			}
		}
		loop := len(sinks) == 0 || rapid.IntRange(0, 2).Draw(t, "anysink") == 0
		if loop {
			sinks = slices.DeleteFunc(slices.Clone(g.socks), func(c string) bool { return c == s })
		}
		sink := rapid.SampledFrom(sinks).Draw(t, "sink")
		opts := ""
		hasMax := rapid.IntRange(0, 2).Draw(t, "max") == 0
		hasIdle := rapid.IntRange(0, 3).Draw(t, "idle") == 0
		hasMax = hasMax || loop
		if hasMax {
			opts += fmt.Sprintf(" max %d", rapid.SampledFrom([]int{1, 10, 129, 1000, 16384}).Draw(t, "maxn"))
		}
		if hasIdle {
			opts += fmt.Sprintf(" idle %d", rapid.SampledFrom([]int{1, 50, 500}).Draw(t, "idlems"))
		}
		g.line("sosplice %s %s%s", s, sink, opts)
		switch rapid.IntRange(0, 3).Draw(t, "spliceload") {
		case 0:
			// More than the sink's buffers hold when its far end does
			// not read (the smallest Linux allows): the splice's sosend
			// takes part of a chunk.
			g.line("set %s sndbuf 4608", sink)
			g.line("set %s rcvbuf 2304", tcpPeer(sink))
			g.line("send %s %d dontwait", tcpPeer(s), rapid.SampledFrom([]int{10000, 100000}).Draw(t, "bigsend"))
		case 1:
			// Traffic after a while, past a short idle timeout.
			g.line("sleep %d", rapid.SampledFrom([]int{20, 60}).Draw(t, "splicesleep"))
			g.line("send %s %d", tcpPeer(s), rapid.SampledFrom([]int{1, 100}).Draw(t, "latesend"))
		}
	case "unsplice", "getsplice":
		g.line("%s %s", kind, s)
	case "zerocopy":
		// SO_ZEROCOPY, mostly on: zero-copy sends then take ids.
		g.line("set %s zerocopy %s", s, rapid.SampledFrom([]string{"on", "on", "on", "off"}).Draw(t, "zc"))
	case "errqueue":
		g.line("errqueue %s %d", s, rapid.IntRange(1, 4).Draw(t, "errqueue"))
	case "shutdown":
		how := rapid.SampledFrom([]string{"wr", "rd", "rdwr"}).Draw(t, "how")
		g.line("shutdown %s %s", s, how)
		if how != "wr" && !g.noRead[s] && rapid.Bool().Draw(t, "shutread") {
			g.boundaryReads(s)
		} else if how != "rd" && !g.noRead[tcpPeer(s)] && rapid.IntRange(0, 2).Draw(t, "finread") == 0 {
			// The peer's reads once the FIN is in.
			g.line("sleep %d", rapid.IntRange(1, 10).Draw(t, "finsleep"))
			g.boundaryReads(tcpPeer(s))
		}
	case "close":
		g.line("close %s%s", s, g.flag("rst"))
		if p := tcpPeer(s); !g.noRead[p] && rapid.IntRange(0, 3).Draw(t, "closeread") == 0 {
			// The peer's reads once the FIN or RST is in.
			g.line("sleep %d", rapid.IntRange(1, 10).Draw(t, "closesleep"))
			g.boundaryReads(p)
		}
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
			nb := rapid.SampledFrom([]string{"on", "off"}).Draw(t, "nb")
			if g.pinned[s] {
				nb = "on"
			}
			g.line("set %s nonblock %s", s, nb)
			g.nonblock[s] = nb == "on"
		case 2:
			g.line("set %s rcvbuf %d", s, rapid.SampledFrom(bufSizes).Draw(t, "rcvbuf"))
		default:
			g.line("set %s sndbuf %d", s, rapid.SampledFrom(bufSizes).Draw(t, "sndbuf"))
		}
	case "insert":
		m := rapid.SampledFrom(g.maps).Draw(t, "map")
		key := rapid.IntRange(0, m.size).Draw(t, "key")
		if g.cfg.KernelSafe && g.parserMaps[m.name] && !g.pinned[s] {
			// A socket whose parser a delete stopped while another map
			// kept its psock gets a new one here (strp_init zeroes it in
			// place); with its message timer queued, the kernel panics
			// when it fires (findings/panic/strp_reinit_armed_timer.trace).
			// Only sockets without SO_RCVTIMEO (pinned) join such a map
			// after the setup on a kernel-safe trace.
			g.line("state %s", s)
			return
		}
		g.line("insert %s %d %s", m.name, key, s)
	case "delete":
		m := rapid.SampledFrom(g.maps).Draw(t, "map")
		g.line("delete %s %d", m.name, rapid.IntRange(0, m.size).Draw(t, "key"))
	case "sleep":
		g.line("sleep %d", rapid.IntRange(1, 20).Draw(t, "ms"))
	case "iocopy":
		d := g.sock("dst")
		if d == s || !g.timeo[s] || g.routeSocks[s] && g.routeSocks[d] || g.cfg.KernelSafe && d == tcpPeer(s) {
			// (KernelSafe: `iocopy a1 a2` writes into a2 what a2 sends
			// back to a1, its own source: the copy feeds itself until
			// its deadline, and how much it moves by then is the
			// kernel's speed, not its semantics (seeds 216, 361 of
			// 0..1499 moved 4268 to 24000 bytes on as many runs).
			// Model-only campaigns keep the loop.)
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
	case "probe":
		g.probe(s)
	case "retarget":
		if g.peerMap == "" {
			g.line("state %s", s)
			return
		}
		g.retarget()
	case "lastbytes":
		g.lastBytes(s)
	case "pair":
		if !g.cfg.Pair || g.cfg.KernelSafe || g.cfg.EstablishedPairOnly {
			g.line("state %s", s)
			return
		}
		// A late pair, after data: a sock_ops program at a later
		// callback pairs the two ends of one flow (the RFC's selftest
		// looks the peer up by its 4-tuple); the kfunc itself does
		// not check that they are peers, which
		// linux.TestPairedSocketBehaviours pins.
		g.line("pair %s %s", s, tcpPeer(s))
	}
}

// probe writes a consistency probe of s: poll or FIONREAD, then the
// non-blocking read right after, which must agree with it (reads-agree,
// both ways). Apart, the two rarely meet. A never-read receiver gets the
// observation alone.
func (g *genState) probe(s string) {
	g.line("%s %s", rapid.SampledFrom([]string{"poll", "fionread"}).Draw(g.t, "probe"), s)
	if !g.noRead[s] {
		g.line("recv %s %d dontwait%s", s, rapid.SampledFrom(sizes[1:]).Draw(g.t, "probesize"), g.flag("peek"))
	}
}

// boundaryReads writes one to three reads of s right after a shutdown
// boundary (its own SHUT_RD, or its peer's FIN or RST): a MSG_DONTWAIT
// recv, a peek, a splice with or without bytes already in the pipe, each
// bounded (O_NONBLOCK first when s has no timeout), so that a read that
// would wait instead of seeing EOF, the error, or data at once fails with
// EAGAIN, which the properties judge. tcp_recvmsg() and
// tcp_splice_read() (net/ipv4/tcp.c, v6.18) both break out on
// RCV_SHUTDOWN, SOCK_DONE and sk_err before they look at the timeout;
// tcp_bpf_recvmsg() (net/ipv4/tcp_bpf.c, v6.18) returns 0 once
// tcp_msg_wait_data() sees RCV_SHUTDOWN.
func (g *genState) boundaryReads(s string) {
	t := g.t
	if !g.timeo[s] && !g.nonblock[s] && rapid.IntRange(0, 3).Draw(t, "boundarynb") != 0 {
		g.line("set %s nonblock on", s)
		g.nonblock[s] = true
	}
	for range rapid.IntRange(1, 3).Draw(t, "boundaryreads") {
		switch rapid.IntRange(0, 4).Draw(t, "boundaryread") {
		case 0, 1:
			g.line("recv %s %d dontwait", s, rapid.SampledFrom(sizes[1:]).Draw(t, "boundaryrecv"))
		case 2:
			g.line("recv %s %d dontwait peek", s, rapid.SampledFrom(sizes[1:]).Draw(t, "boundarypeek"))
		case 3:
			if !g.timeo[s] && !g.nonblock[s] {
				g.line("recv %s %d dontwait", s, rapid.SampledFrom(sizes[1:]).Draw(t, "boundaryrecv"))
				continue
			}
			g.line("splice %s %d nonblock", s, rapid.SampledFrom(sizes[1:]).Draw(t, "boundarysplice"))
		default:
			if !g.timeo[s] && !g.nonblock[s] {
				g.line("fionread %s", s)
				continue
			}
			// A splice, a partial pipe read, a splice into the pipe
			// that still holds bytes.
			g.line("splice %s %d nonblock", s, rapid.SampledFrom([]int{1, 100, 4096}).Draw(t, "boundarysplice1"))
			g.line("pipe %s %d", s, rapid.SampledFrom([]int{1, 7}).Draw(t, "boundarypipe"))
			g.line("splice %s %d nonblock", s, rapid.SampledFrom(sizes[1:]).Draw(t, "boundarysplice2"))
		}
	}
}

// lastBytes closes s at the boundary of tcp_close()'s data_was_unread
// test (net/ipv4/tcp.c, v6.18: any unread byte turns the FIN into a RST):
// it drains s, has the peer send 0, 1 or 2 bytes, closes s and reads on
// the peer, which must see EOF or ECONNRESET accordingly (eof-after-data).
// A never-read receiver is left alone.
func (g *genState) lastBytes(s string) {
	peer := tcpPeer(s)
	if g.noRead[s] || g.noRead[peer] {
		g.line("fionread %s", s)
		return
	}
	g.line("recv %s 65536 dontwait", s)
	if n := rapid.IntRange(0, 2).Draw(g.t, "unread"); n > 0 {
		g.line("send %s %d dontwait", peer, n)
		g.line("sleep 5")
	}
	g.line("close %s", s)
	g.line("sleep 5")
	g.line("recv %s 100 dontwait", peer)
}

// ringRace writes a sender and a reader thread on the pair a1/a2 that
// start together (both join a thread that sleeps a millisecond, so
// neither runs before the other is dispatched): the sender fills the
// peer's ring and sends the rest by TCP, then sends again; the reader
// drains the ring meanwhile. Half the time the sender sends one message
// that the ring takes whole instead, to a reader that may already sleep:
// the ring's wake-up is then the only one. Under an exploring schedule the TCP tail
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
	if rapid.Bool().Draw(t, "raceringonly") {
		// Ring only: a send that fits in the ring while the reader goes
		// to sleep on it, with no TCP tail whose arrival would wake the
		// reader anyway: splice_wake_sync's wake-up is the only one
		// (the loopback corpus's wake_race).
		g.line("@%s recv %s %d", rcv, to, rapid.SampledFrom([]int{100, 16383}).Draw(t, "racerecv"))
		g.line("@%s send %s %q", snd, from, rapid.SampledFrom([]string{"X", "MSG1", "hello\n"}).Draw(t, "racemsg"))
	} else {
		g.line("@%s send %s 16400", snd, from)
		g.line("@%s send %s %q", snd, from, rapid.SampledFrom([]string{"X", "MSG1", "hello\n"}).Draw(t, "racetail"))
		g.line("@%s recv %s 16383", rcv, to)
		g.line("@%s recv %s 100", rcv, to)
	}
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
// findings/seq_merge_spins_on_tcp_hole.trace).
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
//
// With an apply window, a second map without programs, mk, holds a2 and
// b2 half the time: a target op() moves out of m's key 1 (retarget)
// keeps its psock, and what the window sent it stays readable.
func (g *genState) peer(m, opts string) {
	g.line("map %s sockmap 2", m)
	g.line("prog %s sk_msg redirect 1 ingress%s", m, opts)
	g.line("insert %s 0 a1", m)
	g.line("insert %s 1 a2", m)
	if strings.Contains(opts, "apply") && len(g.socks) >= 4 {
		g.peerMap = m
		if rapid.Bool().Draw(g.t, "peerkeep") {
			g.line("map mk sockhash 2")
			g.line("insert mk 0 a2")
			g.line("insert mk 1 b2")
		}
	}
}

// retarget moves the redirect target of the peer topology's map (key
// 1) between sends: another socket, a2 again, or none. A verdict that
// calls bpf_msg_apply_bytes keeps the target it picked for the whole
// window (psock->sk_redir, tcp_bpf_send_verdict() (net/ipv4/tcp_bpf.c,
// v6.18)) and looks the key up again for the next one, so where the
// bytes go shows where windows end. It sends a few bytes on a1 after.
func (g *genState) retarget() {
	t := g.t
	switch rapid.IntRange(0, 3).Draw(t, "retarget") {
	case 0:
		g.line("delete %s 1", g.peerMap)
	case 1:
		g.line("insert %s 1 a2", g.peerMap)
	default:
		g.line("insert %s 1 %s", g.peerMap, rapid.SampledFrom([]string{"b2", "b2", "b1", "a1"}).Draw(t, "retargetsock"))
	}
	for range rapid.IntRange(0, 2).Draw(t, "retargetsends") {
		g.line("send a1 %d dontwait", rapid.SampledFrom([]int{1, 7, 10, 64, 100, 1000}).Draw(t, "retargetsend"))
	}
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
				g.nonblock["a2"] = true
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

// The shapes of a trace. shapeOld is the mix the generator always drew:
// random maps and programs, the KERNEL-FACTS peer topology, the splice
// topologies on a2, the loopback-splice pair. Each other shape aims at a
// kernel path the old mix reaches rarely or never: it sets up a topology
// of its own (in maps of its own, r0, r1, rd, rp, rq, rs) and then draws
// two thirds of the trace's ops from its own op stream (genState.shapeOp),
// the rest from op(). On loopback-splice profiles the pair stays on
// a1/a2 and a shape takes other connections, except a quarter of the
// time, when it may touch the pair.
const (
	shapeOld          = iota
	shapeRedirect     // redirects between connections (routeSetup)
	shapeSlabFrag     // slab-backed ingress spliced into a part-used task_frag (slabSetup)
	shapePartial      // sk_skb pass, partial reads (partialSetup)
	shapeParserRcvbuf // stream-parser frames near or above sk_rcvbuf (parserSetup)
	shapeNeverRead    // a receiver that is never read (neverReadSetup)
	numShapes
)

// shapeWeights are the percentages of traces of each shape, indexed by
// shape; the old mix keeps the majority. KernelSafe traces never get
// shapeSlabFrag (rx copybreak is a no-op on the kernel backend, and
// crosscheck compares with one).
func (c GenConfig) shapeWeights() [numShapes]int {
	switch {
	case c.KernelSafe:
		return [numShapes]int{shapeOld: 58, shapeRedirect: 14, shapePartial: 9, shapeParserRcvbuf: 8, shapeNeverRead: 11}
	case c.Splice:
		return [numShapes]int{shapeOld: 53, shapeRedirect: 14, shapeSlabFrag: 16, shapePartial: 5, shapeParserRcvbuf: 7, shapeNeverRead: 5}
	}
	return [numShapes]int{shapeOld: 58, shapeRedirect: 18, shapeSlabFrag: 1, shapePartial: 8, shapeParserRcvbuf: 9, shapeNeverRead: 6}
}

// plan is a trace's shape, drawn before its connections so that the
// shape gets as many as it needs.
type plan struct {
	shape    int
	route    route           // shapeRedirect, shapeNeverRead
	touch    bool            // on a pair profile, the shape may use the paired connection
	conns    int             // connections the shape needs
	letters  []byte          // its connections, in use order (place)
	reserved map[string]bool // sockets the shape's maps take (place)
}

// drawPlan draws the trace's shape (shapeWeights) and, for the routed
// shapes, the route's kind.
func (g *genState) drawPlan() *plan {
	t := g.t
	pl := &plan{shape: shapeOld, reserved: map[string]bool{}}
	n := rapid.IntRange(0, 99).Draw(t, "shape")
	for sh, w := range g.cfg.shapeWeights() {
		if n < w {
			pl.shape = sh
			break
		}
		n -= w
	}
	switch pl.shape {
	case shapeOld:
		return pl
	case shapeRedirect:
		pl.route.kind = rapid.IntRange(routeMsgIngress, numRouteKinds-1).Draw(t, "routekind")
		pl.conns = len(routeHops[pl.route.kind]) + 1
	case shapeNeverRead:
		pl.route.kind = rapid.IntRange(routePlain, numRouteKinds-1).Draw(t, "neverreadroute")
		if g.cfg.KernelSafe && rapid.Bool().Draw(t, "neverreadplain") {
			// Half of the kernel-safe never-read traces fill a plain
			// TCP receiver: Linux's flow control (refTCP's tcp_ref_flow.go)
			// against the kernel's, with large sends and SO_RCVBUF/
			// SO_SNDBUF small and large.
			pl.route.kind = routePlain
		}
		pl.conns = len(routeHops[pl.route.kind]) + 1
	default:
		pl.conns = 1
	}
	if g.cfg.Pair {
		pl.touch = rapid.IntRange(0, 3).Draw(t, "touchpair") == 0
		if !pl.touch {
			pl.conns++ // the pair's connection, a, is not the shape's
		}
	}
	return pl
}

// place picks the shape's connections among the trace's (not a, the
// pair's, on a pair profile unless pl.touch) and the sockets its maps
// will take.
func (pl *plan) place(g *genState) {
	if pl.shape == shapeOld {
		return
	}
	var avail []byte
	for i := 0; i < len(g.socks)/2; i++ {
		if c := byte('a' + i); c != 'a' || !g.cfg.Pair || pl.touch {
			avail = append(avail, c)
		}
	}
	if len(avail) == 0 {
		avail = []byte{'a'}
	}
	pl.letters = rapid.Permutation(avail).Draw(g.t, "letters")
	switch pl.shape {
	case shapeRedirect, shapeNeverRead:
		pl.route.place(pl.letters)
		for _, s := range pl.route.inserts {
			pl.reserved[s] = true
		}
		// The source's own programs would decide its sends; dst may get
		// an sk_skb pass (routeSetup).
		pl.reserved[pl.route.src] = true
		pl.reserved[pl.route.dst] = true
	default:
		pl.reserved[string(pl.letters[0])+"1"] = true
		pl.reserved[string(pl.letters[0])+"2"] = true
	}
}

// setup writes the shape's topology and sets genState.shapeOp.
func (pl *plan) setup(g *genState) {
	switch pl.shape {
	case shapeRedirect:
		g.routeSetup(&pl.route)
		g.readerSetup(pl.route.dst)
		r := &pl.route
		g.shapeOp = func() { g.routeOp(r) }
	case shapeNeverRead:
		g.neverReadSetup(&pl.route)
	case shapeSlabFrag:
		g.slabSetup(pl.letters[0])
	case shapePartial:
		g.partialSetup(pl.letters[0])
	case shapeParserRcvbuf:
		g.parserSetup(pl.letters[0])
	}
}

// Route kinds: how bytes sent on a route's source reach its destination.
// x, y, z are the route's connections in order (route.place).
const (
	routePlain               = iota // x1 → x2, plain TCP
	routeMsgIngress                 // x1's sk_msg redirects into y2's ingress_msg
	routeMsgEgress                  // x1's sk_msg redirects out of y1, to y2
	routeSkbIngress                 // x2's sk_skb verdict redirects what it receives into y2's ingress_msg
	routeSkbEgress                  // x2's sk_skb verdict redirects what it receives out of y1, to y2
	routeMsgEgressSkbIngress        // x1 → out of y1 → y2's verdict → z2's ingress_msg
	routeMsgEgressSkbEgress         // x1 → out of y1 → y2's verdict → out of z1 → z2
	routeSkbEgressSkbIngress        // x2's verdict → out of y1 → y2's verdict → z2's ingress_msg
	routeSkbEgressSkbEgress         // x2's verdict → out of y1 → y2's verdict → out of z1 → z2
	numRouteKinds
)

// routeHop is one redirect of a route: by an sk_msg program (on the
// sender, only the first hop) or an sk_skb stream verdict (on the
// receiver), with BPF_F_INGRESS or not.
type routeHop struct{ msg, ingress bool }

var routeHops = [numRouteKinds][]routeHop{
	routePlain:               nil,
	routeMsgIngress:          {{msg: true, ingress: true}},
	routeMsgEgress:           {{msg: true}},
	routeSkbIngress:          {{ingress: true}},
	routeSkbEgress:           {{}},
	routeMsgEgressSkbIngress: {{msg: true}, {ingress: true}},
	routeMsgEgressSkbEgress:  {{msg: true}, {}},
	routeSkbEgressSkbIngress: {{}, {ingress: true}},
	routeSkbEgressSkbEgress:  {{}, {}},
}

// route is a redirect topology: the bytes src sends end up readable on
// dst. Hop i's map r<i> holds from[i] and to[i].
type route struct {
	kind     int
	src, dst string
	from, to []string
	inserts  []string // every socket the route's maps take
}

// place assigns the route's sockets on the connections letters (reused
// when there are fewer than the route's hops need).
func (r *route) place(letters []byte) {
	conn := func(i int) string { return string(letters[i%len(letters)]) }
	r.src = conn(0) + "1"
	rx := conn(0) + "2" // where the bytes arrive by TCP
	for i, h := range routeHops[r.kind] {
		from, next := rx, conn(i+1)
		if h.msg {
			from = r.src
		}
		to := next + "1"
		if h.ingress {
			to = next + "2"
		}
		r.from, r.to = append(r.from, from), append(r.to, to)
		r.inserts = append(r.inserts, from, to)
		rx = next + "2"
	}
	r.dst = rx
}

// routeSetup writes the route's maps, one per hop, and, a quarter of the
// time when the last hop leaves by TCP, an sk_skb pass (with or without
// a stream parser) on dst, so that the redirected stream lands on dst's
// ingress_msg through its own verdict.
//
// An sk_msg hop is tcp_bpf_send_verdict() → tcp_bpf_sendmsg_redir()
// (net/ipv4/tcp_bpf.c, v6.18): bpf_tcp_ingress() onto the target's
// ingress_msg, or tcp_bpf_push_locked() out of it, in apply_bytes
// pieces and after cork_bytes when the program asks. An sk_skb hop is
// sk_psock_verdict_apply() (net/core/skmsg.c, v6.18): the skb goes to
// the target psock's ingress_skb and sk_psock_backlog() moves it, by
// sk_psock_skb_ingress() (which backs off while the target's sk_rmem_alloc
// is over its sk_rcvbuf) or skb_send_sock() out of the target.
func (g *genState) routeSetup(r *route) {
	t := g.t
	g.routeSocks[r.src], g.routeSocks[r.dst] = true, true
	for _, s := range r.inserts {
		g.routeSocks[s] = true
	}
	for i, h := range routeHops[r.kind] {
		m := fmt.Sprintf("r%d", i)
		typ := rapid.SampledFrom([]string{"sockmap", "sockhash"}).Draw(t, "routemaptype")
		g.line("map %s %s 2", m, typ)
		g.maps = append(g.maps, genMap{m, 2})
		// The target's key: 1 usually, 0 (and the source at 1) sometimes.
		kf, kt := 0, 1
		if rapid.IntRange(0, 3).Draw(t, "routekeys") == 0 {
			kf, kt = 1, 0
		}
		dir := "egress"
		if h.ingress {
			dir = "ingress"
		}
		if h.msg {
			g.line("prog %s sk_msg redirect %d %s%s", m, kt, dir, g.msgOpts())
		} else {
			g.line("prog %s sk_skb redirect %d %s%s", m, kt, dir, g.skbParser([]string{"all", "100", "1000"}))
		}
		ins := [][2]any{{kf, r.from[i]}, {kt, r.to[i]}}
		if rapid.Bool().Draw(t, "routeinsorder") {
			ins[0], ins[1] = ins[1], ins[0]
		}
		for _, in := range ins {
			g.line("insert %s %d %s", m, in[0], in[1])
		}
	}
	hops := routeHops[r.kind]
	if (len(hops) == 0 || !hops[len(hops)-1].ingress) && rapid.IntRange(0, 3).Draw(t, "dstpass") == 0 {
		g.line("map rd sockmap 1")
		g.line("prog rd sk_skb pass%s", g.skbParser([]string{"all", "10", "100", "1000"}))
		g.line("insert rd 0 %s", r.dst)
		g.maps = append(g.maps, genMap{"rd", 1})
	}
}

// msgOpts draws an sk_msg program's apply and cork words (none most of
// the time).
func (g *genState) msgOpts() string {
	t := g.t
	var o string
	if rapid.IntRange(0, 2).Draw(t, "routeapply") == 0 {
		o += fmt.Sprintf(" apply %d", rapid.SampledFrom([]int{1, 10, 100, 1000, 4096}).Draw(t, "routeapplyn"))
	}
	if rapid.IntRange(0, 3).Draw(t, "routecork") == 0 {
		o += fmt.Sprintf(" cork %d", rapid.SampledFrom([]int{1, 10, 100, 1000, 4096}).Draw(t, "routecorkn"))
	}
	return o
}

// skbParser draws the parser words of an sk_skb program: none two times
// in three, else one of lengths.
func (g *genState) skbParser(lengths []string) string {
	if rapid.IntRange(0, 2).Draw(g.t, "hasskbparser") != 0 {
		return ""
	}
	return " parser " + rapid.SampledFrom(lengths).Draw(g.t, "skbparser")
}

// readerSetup bounds the reads of s: an SO_RCVTIMEO or O_NONBLOCK, or
// nothing (then recvs are MSG_DONTWAIT and a splice sets O_NONBLOCK
// first, see spliceBounded). Kernel-safe traces have a timeout already.
func (g *genState) readerSetup(s string) {
	if g.timeo[s] || g.cfg.KernelSafe {
		return
	}
	switch rapid.IntRange(0, 2).Draw(g.t, "readersetup") {
	case 0:
		g.line("set %s rcvtimeo %d", s, rapid.IntRange(5, 50).Draw(g.t, "readertimeo"))
		g.timeo[s] = true
	case 1:
		g.line("set %s nonblock on", s)
		g.nonblock[s] = true
	}
}

// newThread names a fresh thread, joined at the end of the trace.
func (g *genState) newThread() string {
	th := fmt.Sprintf("t%d", len(g.threads)+1)
	g.threads = append(g.threads, th)
	return th
}

// canThread reports whether the trace may start a thread of its shape.
func (g *genState) canThread() bool { return g.cfg.Threads && !g.cfg.KernelSafe }

// sendSized writes a send of n pattern bytes on s (MSG_DONTWAIT on
// kernel-safe traces, for 16 KiB and more, and half the time).
func (g *genState) sendSized(s string, n int) {
	fl := ""
	if g.cfg.KernelSafe || n >= 16383 || rapid.Bool().Draw(g.t, "shapedontwait") {
		fl = " dontwait"
	}
	g.line("send %s %d%s", s, n, fl)
}

// recvBounded writes a recv of n bytes from s that cannot block for
// ever: MSG_DONTWAIT unless s has a timeout or O_NONBLOCK; flags are
// extra flag words.
func (g *genState) recvBounded(s string, n int, flags string) {
	if !g.timeo[s] && !g.nonblock[s] || rapid.IntRange(0, 3).Draw(g.t, "shapedw") == 0 {
		flags += " dontwait"
	}
	g.line("recv %s %d%s", s, n, flags)
}

// spliceBounded writes a SPLICE_F_NONBLOCK splice of n bytes from s,
// after setting O_NONBLOCK on s if nothing else bounds its wait:
// tcp_splice_read() (net/ipv4/tcp.c, v6.18) takes its timeout from the
// socket (sock_rcvtimeo), SPLICE_F_NONBLOCK concerns only the pipe.
func (g *genState) spliceBounded(th, s string, n int) {
	if !g.timeo[s] && !g.nonblock[s] {
		g.line("set %s nonblock on", s)
		g.nonblock[s] = true
	}
	if th != "" {
		g.line("@%s splice %s %d nonblock", th, s, n)
		return
	}
	g.line("splice %s %d nonblock", s, n)
}

var routeSendSizes = []int{1, 7, 100, 1000, 4096, 16383, 16400, 65536}

// routeOp draws an op of a shapeRedirect trace: sends on the route's
// source (some in a sender thread) and reads of its destination, by recv
// (small ones and peeks among them), splice and pipe reads, reader
// threads, FIONREAD and poll; rarely the source's FIN, which the route
// carries (sk_psock_verdict_apply() (net/core/skmsg.c, v6.18) hands the
// FIN skb on too). Reads of the destination meet redirected bytes on
// its ingress_msg in tcp_bpf_recvmsg() (net/ipv4/tcp_bpf.c, v6.18), or
// on its sk_receive_queue after an egress hop.
func (g *genState) routeOp(r *route) {
	t := g.t
	switch rapid.IntRange(0, 11).Draw(t, "routeop") {
	case 0, 1, 2:
		if rapid.IntRange(0, 4).Draw(t, "routetext") == 0 {
			g.line("send %s %q%s", r.src, rapid.SampledFrom([]string{"MSG1", "x", "hello\n"}).Draw(t, "routetextdata"),
				map[bool]string{true: " dontwait", false: ""}[g.cfg.KernelSafe])
			return
		}
		g.sendSized(r.src, rapid.SampledFrom(routeSendSizes).Draw(t, "routesend"))
	case 3:
		g.recvBounded(r.dst, rapid.SampledFrom(sizes[1:]).Draw(t, "routerecv"), g.flag("peek"))
	case 4:
		g.recvBounded(r.dst, rapid.SampledFrom([]int{1, 7, 100}).Draw(t, "routerecvsmall"), "")
	case 5, 6:
		g.spliceBounded("", r.dst, rapid.SampledFrom([]int{100, 1000, 4096, 65536}).Draw(t, "routesplice"))
	case 7:
		g.line("pipe %s %d", r.dst, rapid.SampledFrom([]int{100, 4096, 65536}).Draw(t, "routepipe"))
	case 8:
		if !g.canThread() || !g.timeo[r.dst] {
			g.line("fionread %s", r.dst)
			return
		}
		g.line("@%s recv %s %d", g.newThread(), r.dst, rapid.SampledFrom(sizes[1:]).Draw(t, "routetrecv"))
	case 9:
		if !g.canThread() {
			g.line("poll %s", r.dst)
			return
		}
		g.line("@%s send %s %d", g.newThread(), r.src, rapid.SampledFrom([]int{1, 100, 16383, 16400}).Draw(t, "routetsend"))
	case 10:
		if rapid.Bool().Draw(t, "routeprobe") {
			g.probe(r.dst)
			return
		}
		g.line("%s %s", rapid.SampledFrom([]string{"fionread", "poll", "state"}).Draw(t, "routeobs"), r.dst)
	default:
		switch rapid.IntRange(0, 3).Draw(t, "routerare") {
		case 0:
			g.line("shutdown %s wr", r.src)
		case 1:
			g.line("sleep %d", rapid.IntRange(1, 20).Draw(t, "routesleep"))
		default:
			g.line("fionread %s", r.dst)
		}
	}
}

// slabSetup writes a receiver s2 (the connection c) with rx copybreak
// large enough that every segment it gets is slab-backed, fed by plain
// TCP or its own sk_skb verdict (pass, or a redirect to itself), then
// sends from s1 of 16 KiB and more and a large splice of s2 and a pipe
// read; slabOp goes on with more of the same.
//
// A zero-copy splice of slab data copies it into the splicing task's
// task_frag first, linear_to_page() called from spd_fill_page()
// (net/core/skbuff.c, v6.18) for tcp_splice_read(), and from the splice
// actor of the splice-zerocopy series' tcp_bpf_splice_read(): when a
// segment is larger than the room left in the 32 KiB frag page (sends
// and earlier splices of the same task use it, and pipe buffers keep
// the page), the copy is cut short and skb_page_frag_refill() (net/core/sock.c,
// v6.18) starts a new page.
func (g *genState) slabSetup(c byte) {
	t := g.t
	s1, s2 := string(c)+"1", string(c)+"2"
	g.line("set %s rxcopybreak %d", s2, rapid.SampledFrom([]int{16384, 32768, 65536, 1 << 20}).Draw(t, "slabcopybreak"))
	switch rapid.IntRange(0, 3).Draw(t, "slabtopo") {
	case 2:
		g.line("map rs sockmap 1")
		g.line("prog rs sk_skb pass%s", rapid.SampledFrom([]string{"", "", " parser all"}).Draw(t, "slabparser"))
		g.line("insert rs 0 %s", s2)
	case 3:
		g.line("map rs sockmap 1")
		g.line("prog rs sk_skb redirect 0 ingress")
		g.line("insert rs 0 %s", s2)
	}
	if rapid.Bool().Draw(t, "slabpipesize") {
		g.line("set %s pipesize %d", s2, rapid.SampledFrom([]int{262144, 1 << 20}).Draw(t, "slabpipesz"))
	}
	g.readerSetup(s2)
	for range rapid.IntRange(2, 4).Draw(t, "slabsends") {
		g.line("send %s %d dontwait", s1, rapid.SampledFrom([]int{16383, 30000, 20000, 32768}).Draw(t, "slabsend"))
	}
	g.spliceBounded("", s2, rapid.SampledFrom([]int{65536, 100000, 1 << 20}).Draw(t, "slabsplice"))
	g.line("pipe %s %d", s2, rapid.SampledFrom([]int{65536, 100000}).Draw(t, "slabpipe"))
	g.shapeOp = func() { g.slabOp(s1, s2) }
}

// slabOp draws an op of a shapeSlabFrag trace: more large sends and
// splices (some in other threads, with task_frags of their own), pipe
// reads, pipe resizes, recvs. A send between two splices carves its
// bytes out of the same task_frag page (tcp_sendmsg_locked() →
// sk_page_frag_refill(), net/ipv4/tcp.c, v6.18) while pipe buffers
// still hold it, so the next linear_to_page() finds less room.
func (g *genState) slabOp(s1, s2 string) {
	t := g.t
	switch rapid.IntRange(0, 9).Draw(t, "slabop") {
	case 0, 1:
		g.line("send %s %d dontwait", s1, rapid.SampledFrom([]int{100, 4096, 16383, 30000, 32768}).Draw(t, "slabsend"))
	case 2, 3:
		g.spliceBounded("", s2, rapid.SampledFrom([]int{30000, 65536, 100000, 1 << 20}).Draw(t, "slabsplice"))
	case 4:
		g.line("pipe %s %d", s2, rapid.SampledFrom([]int{4096, 65536, 100000}).Draw(t, "slabpipe"))
	case 5:
		g.recvBounded(s2, rapid.SampledFrom([]int{100, 16383}).Draw(t, "slabrecv"), "")
	case 6:
		th := ""
		if g.canThread() {
			th = g.newThread()
		}
		g.spliceBounded(th, s2, rapid.SampledFrom([]int{30000, 65536}).Draw(t, "slabtsplice"))
	case 7:
		n := rapid.SampledFrom([]int{16383, 30000}).Draw(t, "slabtsend")
		if g.canThread() {
			g.line("@%s send %s %d dontwait", g.newThread(), s1, n)
			return
		}
		g.line("send %s %d dontwait", s1, n)
	case 8:
		g.line("set %s pipesize %d", s2, rapid.SampledFrom([]int{4096, 65536, 1 << 20}).Draw(t, "slabpipesz"))
	default:
		g.line("%s %s", rapid.SampledFrom([]string{"fionread", "poll", "state"}).Draw(t, "slabobs"), s2)
	}
}

// partialSetup writes an sk_skb pass verdict on c2, with a stream parser
// half the time, and a first send from c1; partialOp reads c2 in pieces
// smaller than what arrives (and than the parser's frames): 1, 7, 100
// bytes, peeks, MSG_WAITALL, recvs and splices in turn.
//
// The reads go through tcp_bpf_recvmsg_parser() (net/ipv4/tcp_bpf.c,
// v6.18) and sk_msg_recvmsg() (net/core/skmsg.c, v6.18), which leave a
// partly read message at the head of ingress_msg (sg.start and the
// element's offset advanced, the skb kept), and, on the splice profiles,
// the splice actors that share that walk.
func (g *genState) partialSetup(c byte) {
	t := g.t
	s1, s2 := string(c)+"1", string(c)+"2"
	typ := rapid.SampledFrom([]string{"sockmap", "sockhash"}).Draw(t, "partialmaptype")
	g.line("map rp %s 1", typ)
	parser, frame := "", 0
	if rapid.Bool().Draw(t, "partialhasparser") {
		w := rapid.SampledFrom([]string{"all", "7", "10", "100", "1000"}).Draw(t, "partialparser")
		parser = " parser " + w
		fmt.Sscan(w, &frame)
	}
	g.line("prog rp sk_skb pass%s", parser)
	g.line("insert rp 0 %s", s2)
	g.maps = append(g.maps, genMap{"rp", 1})
	g.readerSetup(s2)
	if g.cfg.KernelSafe && frame > 0 {
		// No message timer (strp_start_timer() runs it for sk_rcvtimeo):
		// a frame left incomplete would be aborted by the runner's clock
		// on the kernel and not in the model (README, Known gaps, runner
		// time). O_NONBLOCK bounds the reads instead, as in parserSetup.
		g.kernelSafeNoTimer(s2)
	}
	g.sendSized(s1, rapid.SampledFrom([]int{100, 1000, 4096}).Draw(t, "partialfirst"))
	g.shapeOp = func() {
		if frame > 0 && rapid.IntRange(0, 5).Draw(t, "partialsplit") == 0 {
			g.splitFrame(s1, s2, frame)
			return
		}
		g.partialOp(s1, s2)
	}
}

// partialOp draws an op of a shapePartial trace: reads shorter than a
// message, which sk_msg_recvmsg() (net/core/skmsg.c, v6.18) leaves
// partly consumed at the head of ingress_msg (or, peeking, untouched).
func (g *genState) partialOp(s1, s2 string) {
	t := g.t
	small := []int{1, 7, 100}
	switch rapid.IntRange(0, 10).Draw(t, "partialop") {
	case 0, 1:
		if rapid.IntRange(0, 3).Draw(t, "partialtext") == 0 {
			g.line("send %s %q%s", s1, rapid.SampledFrom([]string{"MSG1", "x", "hello\n"}).Draw(t, "partialtextdata"),
				map[bool]string{true: " dontwait", false: ""}[g.cfg.KernelSafe])
			return
		}
		g.sendSized(s1, rapid.SampledFrom([]int{1, 7, 10, 100, 1000, 4096}).Draw(t, "partialsend"))
	case 2, 3:
		g.recvBounded(s2, rapid.SampledFrom(small).Draw(t, "partialrecv"), "")
	case 4:
		g.recvBounded(s2, rapid.SampledFrom(small).Draw(t, "partialpeek"), " peek")
	case 5:
		if g.timeo[s2] {
			// Bounded by the timeout when short.
			g.line("recv %s %d waitall", s2, rapid.SampledFrom([]int{7, 100, 1000}).Draw(t, "partialwaitall"))
			return
		}
		g.recvBounded(s2, rapid.SampledFrom(small).Draw(t, "partialrecv"), "")
	case 6:
		g.spliceBounded("", s2, rapid.SampledFrom([]int{1, 7, 100, 1000}).Draw(t, "partialsplice"))
	case 7:
		g.line("pipe %s %d", s2, rapid.SampledFrom([]int{1, 7, 100, 4096}).Draw(t, "partialpipe"))
	case 8:
		// A recv, a splice and a recv in a row.
		g.recvBounded(s2, rapid.SampledFrom(small).Draw(t, "partialrecv"), "")
		g.spliceBounded("", s2, rapid.SampledFrom(small).Draw(t, "partialsplice"))
		g.recvBounded(s2, rapid.SampledFrom(small).Draw(t, "partialrecv"), "")
	case 9:
		g.line("%s %s", rapid.SampledFrom([]string{"fionread", "poll"}).Draw(t, "partialobs"), s2)
	default:
		if !g.canThread() || !g.timeo[s2] {
			g.line("fionread %s", s2)
			return
		}
		g.line("@%s recv %s %d", g.newThread(), s2, rapid.SampledFrom(small).Draw(t, "partialtrecv"))
	}
}

// sockMinRcvbuf is SOCK_MIN_RCVBUF (include/net/sock.h, v6.18:
// TCP_SKB_MIN_TRUESIZE, 2048 + 256), the floor of sk_rcvbuf.
const sockMinRcvbuf = 2304

// skRcvbuf is sk_rcvbuf after SO_RCVBUF v: __sock_set_rcvbuf()
// (net/core/sock.c, v6.18) doubles it and floors it at SOCK_MIN_RCVBUF.
func skRcvbuf(v int) int { return max(2*v, sockMinRcvbuf) }

// parserKSBudget is how many bytes a kernel-safe trace sends to a socket
// whose stream parser may have aborted: the bytes stay on
// sk_receive_queue, and past about 2 KiB behind an sk_rcvbuf of 2304 the
// kernel's receive window and truesize accounting (not modelled: README,
// Known gaps, small buffers) decide what arrives.
const parserKSBudget = 1500

// parserShape is the state of a shapeParserRcvbuf trace: c1 sends, c2
// has the stream parser.
type parserShape struct {
	s1, s2 string
	n      int  // the parser's frame length
	shrink bool // frames fit sk_rcvbuf until an op shrinks it
	shrunk bool // the shrink was written
	egress bool // the verdict sends each frame back out of c2, to c1
	// sent counts the bytes sent to c2 since its insert (sentMod: of
	// the frame in progress); late the bytes sent once the parser may
	// have aborted, which kernel-safe traces keep under parserKSBudget.
	sent, late int
	inMap      bool // c2 is in rq (a delete takes it out, an insert back)
	deleted    bool // a delete was written
}

// abortable reports whether c2's parser may have aborted: its frames
// are over sk_rcvbuf from the start, or the shrink was written.
func (ps *parserShape) abortable() bool { return !ps.shrink || ps.shrunk }

// parserSetup writes c2 with an sk_skb verdict behind a stream parser
// (map rq) whose frames are longer than sk_rcvbuf, at once (a small
// SO_RCVBUF before or after the insert) or from a later op on (frames
// that fit until SO_RCVBUF shrinks under them), and parserOp sends
// frames whole, split over sends, short or long, reads c2 every way,
// sends from it, shrinks its SO_RCVBUF, and deletes it from rq (and
// inserts it again).
//
// __strp_recv() (net/strparser/strparser.c, v6.18) aborts the parser
// with EMSGSIZE when a new frame's length is over sk_rcvbuf:
// strp_abort_strp() stops it, sets sk_err and reports it; the bytes stay
// on sk_receive_queue, where tcp_bpf_recvmsg_parser() (net/ipv4/tcp_bpf.c,
// v6.18) returns -EAGAIN at entry while they wait and poll shows IN and
// ERR, and a send returns the error (tcp_sendmsg clearing it,
// tcp_bpf_sendmsg with an sk_msg program not). After the delete
// (sock_map_unref() → sk_psock_drop(), the parser stopped and detached)
// tcp_recvmsg() returns them. A frame that fits waits with need_bytes for
// its rest, with the message timer (sk_rcvtimeo) running: strp_msg_timeout()
// aborts with ETIMEDOUT. The verdict passes the frames (reads of c2 find
// them on its ingress_msg), redirects them into c2's own ingress_msg, or
// out of c2 back to c1; an sk_msg program on rq sometimes takes c2's
// sends; the insert sometimes comes after bytes are queued, which the
// parser then meets at the first read (tcp_data_ready()).
//
// Kernel-safe traces give c2 no SO_RCVTIMEO but O_NONBLOCK: the message
// timer then never runs (it would expire by the runner's clock: README,
// Known gaps, runner time), and every read of c2 is bounded. They send
// whole frames only until the shrink, which a read of everything c2
// holds precedes (an ingress frame dropped by a later delete would
// leave copied_seq behind the queue: the kernel warns), and at most
// parserKSBudget bytes once the parser may have aborted.
func (g *genState) parserSetup(c byte) {
	t := g.t
	ps := &parserShape{s1: string(c) + "1", s2: string(c) + "2"}
	s1, s2 := ps.s1, ps.s2
	ks := g.cfg.KernelSafe
	ps.shrink = rapid.Bool().Draw(t, "parsershrink")
	rb := 0 // the SO_RCVBUF of the setup, none when 0
	if ps.shrink {
		ps.n = rapid.SampledFrom([]int{sockMinRcvbuf + 1, 3000, 4096, 8192}).Draw(t, "parsershrinkframe")
		if !ks && rapid.Bool().Draw(t, "parsershrinkrb") {
			rb = 65536
		}
	} else {
		rb = rapid.SampledFrom([]int{1, 1024, 2048, 4096}).Draw(t, "parserrcvbuf")
		rcv := skRcvbuf(rb)
		frames := []int{rcv + 1, 2 * rcv, 16384}
		if !ks {
			frames = []int{rcv / 2, rcv - 1, rcv, rcv + 1, 2 * rcv, 16384}
		}
		ps.n = rapid.SampledFrom(frames).Draw(t, "parserframe")
	}
	late := rb != 0 && rapid.IntRange(0, 3).Draw(t, "parserlaterbuf") == 0
	if rb != 0 && !late {
		g.line("set %s rcvbuf %d", s2, rb)
	}
	g.line("map rq sockmap 1")
	switch rapid.IntRange(0, 4).Draw(t, "parserverdict") {
	case 0, 1:
		g.line("prog rq sk_skb pass parser %d", ps.n)
	case 2:
		g.line("prog rq sk_skb redirect 0 ingress parser %d", ps.n)
	default:
		ps.egress = true
		g.line("prog rq sk_skb redirect 0 egress parser %d", ps.n)
	}
	if rapid.IntRange(0, 2).Draw(t, "parsermsgprog") == 0 {
		g.line("prog rq sk_msg pass")
	}
	if rapid.IntRange(0, 3).Draw(t, "parserprequeue") == 0 {
		// Bytes queued before the psock: the parser meets them at the
		// first read of c2.
		n := rapid.SampledFrom([]int{100, 1000}).Draw(t, "parserprequeuen")
		if ps.shrink {
			n = ps.n
		}
		g.line("send %s %d dontwait", s1, n)
		ps.count(n)
	}
	g.line("insert rq 0 %s", s2)
	ps.inMap = true
	g.maps = append(g.maps, genMap{"rq", 1})
	if late {
		g.line("set %s rcvbuf %d", s2, rb)
	}
	if rapid.IntRange(0, 3).Draw(t, "parsersndbuf") == 0 {
		g.line("set %s sndbuf %d", s1, rapid.SampledFrom([]int{1024, 4096}).Draw(t, "parsersndbufn"))
	}
	if ks {
		g.kernelSafeNoTimer(s2)
		g.sendOwned[s1] = true
	} else {
		g.readerSetup(s2)
	}
	g.shapeOp = func() { g.parserOp(ps) }
}

// kernelSafeNoTimer gives s, a socket with a stream parser on a
// kernel-safe trace, no SO_RCVTIMEO (zero: MAX_SCHEDULE_TIMEOUT, so
// strp_start_timer() (net/strparser/strparser.c, v6.18) never arms the
// message timer) and O_NONBLOCK, which op() leaves on, to bound its reads.
func (g *genState) kernelSafeNoTimer(s string) {
	g.line("set %s rcvtimeo 0", s)
	g.line("set %s nonblock on", s)
	g.timeo[s], g.nonblock[s] = false, true
	g.pinned[s] = true
}

// count records n bytes sent to c2.
func (ps *parserShape) count(n int) {
	ps.sent += n
	if ps.abortable() {
		ps.late += n
	}
}

// sentMod is how far into a frame c2's stream is.
func (ps *parserShape) sentMod() int { return ps.sent % ps.n }

// parserSend writes a send of n bytes from c1 to c2 (MSG_DONTWAIT).
func (g *genState) parserSend(ps *parserShape, n int) {
	g.line("send %s %d dontwait", ps.s1, n)
	ps.count(n)
}

// parserOp draws an op of a shapeParserRcvbuf trace (see parserSetup):
// sends of a frame less one, a frame, one more, two, half of one, and
// frames split over sends (the need_bytes wait and the frame boundary
// inside an skb, in __strp_recv() (net/strparser/strparser.c, v6.18));
// reads of c2 by recv, splice and threads, FIONREAD, poll; c1's reads
// (an egress verdict sends the frames back to it, and c2's own sends);
// c2's sends; the shrink of its SO_RCVBUF; its delete from rq and
// insert back.
func (g *genState) parserOp(ps *parserShape) {
	t := g.t
	s1, s2, n := ps.s1, ps.s2, ps.n
	ks := g.cfg.KernelSafe
	// The shrink and the delete come early enough that ops follow them.
	if ps.shrink && !ps.shrunk && ps.sent > 0 && (!ks || ps.sentMod() == 0) && rapid.IntRange(0, 3).Draw(t, "parsershrinknow") == 0 {
		g.parserShrink(ps)
		return
	}
	if ps.abortable() && ps.sent > 0 && rapid.IntRange(0, 7).Draw(t, "parserdelnow") == 0 {
		g.parserDelete(ps)
		return
	}
	switch rapid.IntRange(0, 15).Draw(t, "parserop") {
	case 10, 11:
		switch {
		case !ks:
			ps.count(n)
			g.splitFrame(s1, s2, n)
		case ps.abortable():
			g.parserSmallSend(ps)
		case ps.sentMod() == 0 && ps.sent+n <= 4*n:
			ps.count(n)
			g.splitFrame(s1, s2, n)
		default:
			g.line("poll %s", s2)
		}
	case 0, 1, 2:
		switch {
		case !ks:
			g.parserSend(ps, rapid.SampledFrom([]int{n - 1, n, n + 1, 2 * n, n / 2, 1000}).Draw(t, "parsersend"))
		case ps.abortable():
			g.parserSmallSend(ps)
		case ps.sentMod() == 0 && ps.sent+n <= 4*n:
			g.parserSend(ps, rapid.SampledFrom([]int{n, 2 * n}).Draw(t, "parserkssend"))
		default:
			g.line("fionread %s", s2)
		}
	case 3:
		g.recvBounded(s2, rapid.SampledFrom([]int{100, n, 65536}).Draw(t, "parserrecv"), "")
	case 4:
		g.spliceBounded("", s2, rapid.SampledFrom([]int{n, 65536}).Draw(t, "parsersplice"))
	case 5:
		g.line("pipe %s 65536", s2)
	case 6:
		g.line("%s %s", rapid.SampledFrom([]string{"fionread", "poll", "state"}).Draw(t, "parserobs"), s2)
	case 7:
		if ps.egress || rapid.Bool().Draw(t, "parserreads1") {
			g.recvBounded(s1, 65536, "")
			return
		}
		g.line("poll %s", s1)
	case 8:
		if !g.canThread() || !g.timeo[s2] {
			g.line("fionread %s", s2)
			return
		}
		g.line("@%s recv %s %d", g.newThread(), s2, n)
	case 12:
		// c2's own send: the error of an aborted parser, once.
		g.line("send %s %d dontwait", s2, rapid.SampledFrom([]int{1, 10, 100}).Draw(t, "parsers2send"))
	case 13:
		g.parserShrink(ps)
	case 14:
		g.parserDelete(ps)
	default:
		if ks {
			g.line("poll %s", s2)
			return
		}
		g.line("sleep %d", rapid.IntRange(1, 60).Draw(t, "parsersleep"))
	}
}

// parserSmallSend writes a short send to c2, for a parser that may have
// aborted (kernel-safe traces: within parserKSBudget).
func (g *genState) parserSmallSend(ps *parserShape) {
	n := rapid.SampledFrom([]int{1, 100, 500, 1000}).Draw(g.t, "parsersmallsend")
	if g.cfg.KernelSafe && ps.late+n > parserKSBudget {
		g.line("fionread %s", ps.s2)
		return
	}
	g.parserSend(ps, n)
}

// parserShrink writes, once, the SO_RCVBUF under c2's frame length of a
// shrinking trace: the parser aborts at the next frame's first byte.
// Kernel-safe traces shrink only between frames, after a read of all
// that c2 holds.
func (g *genState) parserShrink(ps *parserShape) {
	t := g.t
	if !ps.shrink || ps.shrunk || g.cfg.KernelSafe && ps.sentMod() != 0 {
		g.line("fionread %s", ps.s2)
		return
	}
	if g.cfg.KernelSafe {
		g.line("recv %s 65536 dontwait", ps.s2)
	}
	v := rapid.SampledFrom([]int{1, 1024}).Draw(t, "parsershrinkto")
	if ps.n > 4096 && rapid.Bool().Draw(t, "parsershrinkmid") {
		v = 2048 // sk_rcvbuf 4096
	}
	g.line("set %s rcvbuf %d", ps.s2, v)
	ps.shrunk = true
	if rapid.Bool().Draw(t, "parsershrinksend") {
		g.parserSmallSend(ps) // the next frame's first bytes
	}
}

// parserDelete writes c2's delete from rq, with the reads right after it
// half the time (tcp_recvmsg() now: the bytes the aborted parser left,
// then its error), or, once deleted, its insert back: a new psock and
// stream parser (sk_psock_init_strp(), net/core/skmsg.c, v6.18) that
// starts at copied_seq.
func (g *genState) parserDelete(ps *parserShape) {
	t := g.t
	if ps.inMap {
		g.line("delete rq 0")
		ps.inMap, ps.deleted = false, true
		if rapid.Bool().Draw(t, "parserdelreads") {
			g.line("fionread %s", ps.s2)
			g.line("recv %s 65536 dontwait", ps.s2)
			g.line("recv %s 65536 dontwait", ps.s2)
		}
		return
	}
	g.line("insert rq 0 %s", ps.s2)
	ps.inMap = true
}

// splitFrame sends one n-byte stream-parser frame from s1 in two or
// three pieces, the last exactly completing it (n-1 then 1, 1 then n-1,
// halves, thirds), then reads s2 as the very next op: a MSG_DONTWAIT or
// bounded recv of the frame, or a peek. __strp_recv() (net/strparser/strparser.c,
// v6.18) waits with need_bytes until the frame is whole and must hand it
// to the verdict on the piece that completes it (strp_data_ready()
// compares tcp_inq() with need_bytes); tcp_bpf_recvmsg_parser()
// (net/ipv4/tcp_bpf.c, v6.18) then finds it on ingress_msg.
func (g *genState) splitFrame(s1, s2 string, n int) {
	t := g.t
	if n < 2 {
		g.line("send %s %d dontwait", s1, n)
		return
	}
	var parts []int
	switch rapid.IntRange(0, 3).Draw(t, "splitform") {
	case 0:
		parts = []int{n - 1, 1}
	case 1:
		parts = []int{1, n - 1}
	case 2:
		parts = []int{n / 2, n - n/2}
	default:
		if n < 3 {
			parts = []int{n - 1, 1}
			break
		}
		parts = []int{n / 3, n / 3, n - 2*(n/3)}
	}
	for _, p := range parts {
		g.line("send %s %d dontwait", s1, p)
	}
	if g.noRead[s2] {
		g.line("fionread %s", s2)
		return
	}
	switch rapid.IntRange(0, 3).Draw(t, "splitread") {
	case 0:
		g.recvBounded(s2, n, " peek")
	case 1:
		g.line("recv %s %d dontwait", s2, rapid.SampledFrom([]int{n, 2 * n, 65536}).Draw(t, "splitrecvsize"))
	default:
		g.recvBounded(s2, rapid.SampledFrom([]int{n, 65536}).Draw(t, "splitrecvsize"), "")
	}
}

// neverReadSetup writes a route (any kind, plain TCP among them) whose
// destination no op reads, often with a small SO_RCVBUF on it and a
// small SO_SNDBUF on the source; neverReadOp fills it (MSG_DONTWAIT
// sends, and blocking sends in sender threads), and the trace ends with
// FIONREAD and poll of the receiver and, when a sender may still be
// blocked, its close, which resets the connection and wakes the sender.
//
// This reaches the full-buffer paths: sk_stream_wait_memory()
// (net/core/stream.c, v6.18) in tcp_sendmsg_locked() and, on an egress
// redirect, in the target's push; sk_psock_skb_ingress() backing off
// (-EAGAIN, sk_psock_backlog() requeues) while the target's
// sk_rmem_alloc is over sk_rcvbuf (net/core/skmsg.c, v6.18); and
// tcp_close() (net/ipv4/tcp.c, v6.18) of a socket with unread data.
// Kernel-safe traces send MSG_DONTWAIT only: a few KiB on a redirect
// route, and on plain TCP up to megabytes, which fill the window and the
// send buffer (refTCP's flow control is Linux's, model/internal/linux/tcp_ref_flow.go).
func (g *genState) neverReadSetup(r *route) {
	t := g.t
	g.routeSetup(r)
	g.noRead[r.dst] = true
	if rapid.Bool().Draw(t, "nrrcvbuf") {
		g.line("set %s rcvbuf %d", r.dst, rapid.SampledFrom(bufSizes).Draw(t, "nrrcvbufn"))
	}
	if rapid.IntRange(0, 3).Draw(t, "nrsndbuf") == 0 {
		g.line("set %s sndbuf %d", r.src, rapid.SampledFrom(bufSizes).Draw(t, "nrsndbufn"))
	}
	ksSizes := []int{1000, 4096}
	if r.kind == routePlain {
		ksSizes = []int{1000, 4096, 16400, 65536, 200000, 1 << 20, 5 << 20}
	}
	blocked := false // a sender thread may be blocked at the end
	ksSent := 0
	g.shapeOp = func() {
		switch rapid.IntRange(0, 8).Draw(t, "nrop") {
		case 0, 1, 2:
			if g.cfg.KernelSafe {
				if ksSent < 8 {
					ksSent++
					g.line("send %s %d dontwait", r.src, rapid.SampledFrom(ksSizes).Draw(t, "nrkssend"))
					return
				}
				g.line("fionread %s", r.dst)
				return
			}
			g.line("send %s %d dontwait", r.src, rapid.SampledFrom([]int{16400, 65536}).Draw(t, "nrfill"))
		case 3:
			g.sendSized(r.src, rapid.SampledFrom([]int{1, 100, 1000, 4096}).Draw(t, "nrsend"))
		case 4:
			if !g.canThread() {
				g.line("poll %s", r.src)
				return
			}
			blocked = true
			g.line("@%s send %s %d", g.newThread(), r.src, rapid.SampledFrom([]int{16400, 65536}).Draw(t, "nrtsend"))
		case 5, 6:
			g.line("%s %s", rapid.SampledFrom([]string{"fionread", "poll", "state"}).Draw(t, "nrobs"), r.dst)
		case 7:
			g.line("poll %s", r.src)
		default:
			if g.cfg.KernelSafe {
				g.line("fionread %s", r.dst)
				return
			}
			g.line("sleep %d", rapid.IntRange(1, 20).Draw(t, "nrsleep"))
		}
	}
	g.tail = append(g.tail, "fionread "+r.dst, "poll "+r.dst)
	g.shapeTail = func() {
		if blocked || rapid.Bool().Draw(t, "nrclose") {
			g.tail = append(g.tail, "close "+r.dst+g.flag("rst"))
		}
	}
}
