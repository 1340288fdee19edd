package trace

import "fmt"

// Kind is the kind of an op.
type Kind uint8

// The op kinds of the trace language. Operand use per kind is documented on Op.
const (
	OpInvalid   Kind = iota
	OpConn           // conn A B [pair]
	OpMap            // map M sockmap|sockhash N
	OpProg           // prog M sk_msg|sk_skb VERDICT [apply N] [cork N] [parser N|all]
	OpInsert         // insert M KEY S
	OpDelete         // delete M KEY
	OpPair           // pair A B
	OpSend           // send S DATA [dontwait] [zerocopy]
	OpRecv           // recv S N [peek] [dontwait] [waitall]
	OpSplice         // splice S N [nonblock]
	OpPipe           // pipe S N
	OpIOCopy         // iocopy SRC DST
	OpFIONREAD       // fionread S
	OpPoll           // poll S
	OpState          // state S
	OpShutdown       // shutdown S wr|rd|rdwr
	OpClose          // close S [rst]
	OpSet            // set S OPT VALUE
	OpSleep          // sleep MS
	OpJoin           // join T
	OpErrqueue       // errqueue S [N]
	OpSosplice       // sosplice A B [max N] [idle MS] (FreeBSD SO_SPLICE)
	OpUnsplice       // unsplice A (FreeBSD SO_SPLICE with fd -1)
	OpGetsplice      // getsplice A (FreeBSD getsockopt SO_SPLICE)
	numKinds
)

var kindNames = [numKinds]string{
	OpConn: "conn", OpMap: "map", OpProg: "prog", OpInsert: "insert",
	OpDelete: "delete", OpPair: "pair", OpSend: "send", OpRecv: "recv",
	OpSplice: "splice", OpPipe: "pipe", OpIOCopy: "iocopy",
	OpFIONREAD: "fionread", OpPoll: "poll", OpState: "state",
	OpShutdown: "shutdown", OpClose: "close", OpSet: "set",
	OpSleep: "sleep", OpJoin: "join", OpErrqueue: "errqueue",
	OpSosplice: "sosplice", OpUnsplice: "unsplice", OpGetsplice: "getsplice",
}

// FreeBSDOnly reports whether k is an op of FreeBSD's SO_SPLICE, which
// only profile FreeBSDProfile has (ResolveOptions refuses it elsewhere).
func (k Kind) FreeBSDOnly() bool { return k == OpSosplice || k == OpUnsplice || k == OpGetsplice }

// Kinds returns every valid op kind, in declaration order.
func Kinds() []Kind {
	ks := make([]Kind, 0, numKinds-1)
	for k := OpConn; k < numKinds; k++ {
		ks = append(ks, k)
	}
	return ks
}

func (k Kind) String() string {
	if k > OpInvalid && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

func kindByName(s string) (Kind, bool) {
	for k := OpConn; k < numKinds; k++ {
		if kindNames[k] == s {
			return k, true
		}
	}
	return OpInvalid, false
}

// Flags are the optional words of conn, recv, send, splice and close.
type Flags uint8

const (
	FlagDontwait  Flags = 1 << iota // send, recv: MSG_DONTWAIT
	FlagPeek                        // recv: MSG_PEEK
	FlagWaitall                     // recv: MSG_WAITALL
	FlagNonblock                    // splice: SPLICE_F_NONBLOCK
	FlagRST                         // close: SO_LINGER{1,0} first, so close sends RST
	FlagPair                        // conn: a sock_ops program pairs A and B at their ESTABLISHED callbacks
	FlagZerocopy                    // send: MSG_ZEROCOPY (completions on S's error queue when SO_ZEROCOPY is on)
	FlagReadwrite                   // iocopy: read(2)/write(2) through a buffer, never splice(2)
)

// flagWords lists flag words in canonical print order.
var flagWords = []struct {
	f    Flags
	word string
}{
	{FlagPeek, "peek"}, {FlagDontwait, "dontwait"}, {FlagWaitall, "waitall"},
	{FlagNonblock, "nonblock"}, {FlagRST, "rst"}, {FlagPair, "pair"},
	{FlagZerocopy, "zerocopy"}, {FlagReadwrite, "readwrite"},
}

// allowedFlags is which flags each op accepts.
var allowedFlags = map[Kind]Flags{
	OpConn:   FlagPair,
	OpSend:   FlagDontwait | FlagZerocopy,
	OpRecv:   FlagPeek | FlagDontwait | FlagWaitall,
	OpSplice: FlagNonblock,
	OpClose:  FlagRST,
	OpIOCopy: FlagReadwrite,
}

// MapType is a BPF map type usable in a trace.
type MapType uint8

const (
	SockMap  MapType = iota + 1 // BPF_MAP_TYPE_SOCKMAP
	SockHash                    // BPF_MAP_TYPE_SOCKHASH
)

func (m MapType) String() string {
	switch m {
	case SockMap:
		return "sockmap"
	case SockHash:
		return "sockhash"
	}
	return fmt.Sprintf("MapType(%d)", uint8(m))
}

// ProgType is the attach type of a canned verdict program.
type ProgType uint8

const (
	SkMsg ProgType = iota + 1 // BPF_PROG_TYPE_SK_MSG, attached as BPF_SK_MSG_VERDICT
	SkSkb                     // BPF_PROG_TYPE_SK_SKB, attached as BPF_SK_SKB_STREAM_VERDICT
)

func (p ProgType) String() string {
	switch p {
	case SkMsg:
		return "sk_msg"
	case SkSkb:
		return "sk_skb"
	}
	return fmt.Sprintf("ProgType(%d)", uint8(p))
}

// Verdict is what a canned program returns.
type Verdict uint8

const (
	VerdictPass     Verdict = iota + 1 // SK_PASS
	VerdictDrop                        // SK_DROP
	VerdictRedirect                    // bpf_{msg,sk}_redirect_map/hash(KEY, flags)
)

// ParserAll is Prog.Parser for `parser all`: the stream parser returns the
// whole skb's length.
const ParserAll = -1

// Prog is the program of an OpProg.
type Prog struct {
	Type    ProgType
	Verdict Verdict
	Key     int64 // redirect target key (VerdictRedirect only)
	Ingress bool  // redirect with BPF_F_INGRESS (VerdictRedirect only)

	HasApply bool  // sk_msg: call bpf_msg_apply_bytes(Apply)
	Apply    int64 //
	HasCork  bool  // sk_msg: call bpf_msg_cork_bytes(Cork)
	Cork     int64 //
	Parser   int64 // sk_skb: 0 none, N > 0 frames of N bytes, ParserAll
}

// Shutdown is the how of `shutdown`.
type Shutdown uint8

const (
	ShutRD   Shutdown = iota + 1 // SHUT_RD
	ShutWR                       // SHUT_WR
	ShutRDWR                     // SHUT_RDWR
)

func (s Shutdown) String() string {
	switch s {
	case ShutRD:
		return "rd"
	case ShutWR:
		return "wr"
	case ShutRDWR:
		return "rdwr"
	}
	return fmt.Sprintf("Shutdown(%d)", uint8(s))
}

// SockOpt is the option of `set`.
type SockOpt uint8

const (
	OptRcvtimeo SockOpt = iota + 1 // SO_RCVTIMEO, value in milliseconds
	OptNonblock                    // O_NONBLOCK on the fd, value 1 (on) or 0 (off)
	OptBusypoll                    // SO_BUSY_POLL, value in microseconds
	OptRcvbuf                      // SO_RCVBUF, bytes
	OptSndbuf                      // SO_SNDBUF, bytes
	// OptPipesize is fcntl(F_SETPIPE_SZ) on S's splice pipe, bytes; the
	// op returns the pipe's new capacity.
	OptPipesize
	// OptRxcopybreak: segments of at most V payload bytes reach S with
	// their payload in a slab-backed linear head, as a NIC driver's rx
	// copybreak leaves small frames (0: never). It changes no byte a
	// trace observes, only the memory the model's pages come from; the
	// kernel backend, on loopback, has no driver to set and accepts it
	// as a no-op.
	OptRxcopybreak
	// OptZerocopy is SO_ZEROCOPY, on (1) or off (0): a send with the
	// zerocopy flag takes the zero-copy path only while it is on.
	OptZerocopy
)

var sockOptNames = map[SockOpt]string{
	OptRcvtimeo: "rcvtimeo", OptNonblock: "nonblock", OptBusypoll: "busypoll",
	OptRcvbuf: "rcvbuf", OptSndbuf: "sndbuf", OptPipesize: "pipesize",
	OptRxcopybreak: "rxcopybreak", OptZerocopy: "zerocopy",
}

func (o SockOpt) String() string {
	if s, ok := sockOptNames[o]; ok {
		return s
	}
	return fmt.Sprintf("SockOpt(%d)", uint8(o))
}

// DataForm is how a send's payload was written.
type DataForm uint8

const (
	DataText    DataForm = iota + 1 // "text" with Go escapes
	DataHex                         // x"0a0b"
	DataPattern                     // N: N pattern bytes (see Pattern)
)

// Pos is a position in a trace file; Line and Col are 1-based.
type Pos struct {
	Line, Col int
}

// Op is one trace op. Which operands are meaningful depends on Kind:
//
//	conn A B [pair]       A, B, Flags
//	map M T N             Map, MapType, Size (entries)
//	prog M ...            Map, Prog
//	insert M KEY S        Map, Key, A
//	delete M KEY          Map, Key
//	pair A B              A, B
//	send S DATA           A, Form, Data (text, hex) or Size (pattern), Flags
//	recv S N              A, Size, Flags
//	splice S N            A, Size, Flags
//	pipe S N              A, Size
//	iocopy SRC DST [readwrite]  A (source), B (destination)
//	fionread|poll|state S A
//	shutdown S HOW        A, How
//	close S               A, Flags
//	set S OPT V           A, Opt, Size (the value)
//	sleep MS              Size (milliseconds)
//	join T                Target
//	errqueue S [N]        A, Size (the most notifications to read; default 1)
//	sosplice A B ...      A (source), B (sink), Size (max bytes; 0 unlimited), Key (idle, ms; 0 none)
//	unsplice|getsplice A  A
//
// Unused operands are zero. Thread is the empty string for thread main.
// The one-byte fields are together so that an Op is 152 bytes, not 184 (a
// parsed trace holds every op; trace.BenchmarkParse measures it).
type Op struct {
	Pos    Pos
	Thread string
	Kind   Kind

	MapType MapType
	Form    DataForm
	Flags   Flags
	How     Shutdown
	Opt     SockOpt

	A, B   string
	Map    string
	Key    int64
	Size   int64
	Data   []byte
	Prog   *Prog
	Target string
}

// ThreadName returns the op's thread, "main" for the unprefixed ones.
func (o *Op) ThreadName() string {
	if o.Thread == "" {
		return MainThread
	}
	return o.Thread
}

// MainThread is the thread unprefixed ops run in.
const MainThread = "main"

// Sockets returns the socket names the op uses, in operand order.
func (o *Op) Sockets() []string {
	switch o.Kind {
	case OpConn, OpPair, OpIOCopy, OpSosplice:
		return []string{o.A, o.B}
	case OpMap, OpProg, OpDelete, OpSleep, OpJoin:
		return nil
	}
	return []string{o.A}
}

// Schedule is the `schedule` directive: a seed for the model's scheduler,
// an explicit order of thread names, or one of the exploring strategies of
// the model's scheduler (Strategy non-empty):
//
//	schedule random SEED     seeded random choice at every decision point
//	schedule pct D SEED      PCT (probabilistic concurrency testing), depth D
//	schedule picks I I ...   explicit choices, one index per decision point
//
// A thread name never starts with a digit, so these forms are unambiguous.
type Schedule struct {
	Pos     Pos
	HasSeed bool
	Seed    uint64
	Threads []string

	Strategy string // "", StrategyRandom, StrategyPCT or StrategyPicks
	Depth    int    // StrategyPCT: the bug depth d
	Picks    []int  // StrategyPicks: the choice at each decision point
}

// The exploring strategies of a `schedule` directive.
const (
	StrategyRandom = "random"
	StrategyPCT    = "pct"
	StrategyPicks  = "picks"
)

// Trace is a parsed trace file.
type Trace struct {
	File        string
	Profile     string // from `profile P`; "" when absent
	ProfilePos  Pos
	Schedule    *Schedule // nil when absent
	Ops         []Op
	SocketNames []string // in order of definition by conn
	MapNames    []string // in order of definition by map
	ThreadNames []string // "main" first, then in order of first use
}
