package linux

import (
	"fmt"
	"strings"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Stats is the copy accounting of one run: for each kind of data op, the
// payload bytes the ops moved and the bytes the modelled kernel copied
// (memcpy) to move them. A page reference handed from one owner to
// another (a fragment spliced into a pipe, an sk_msg element moved to
// another psock) is not a copy.
//
// What counts as a copy is what Linux copies on the modelled path, not
// what the model does internally: copy_from_iter of a send and
// copy_to_iter of a recv or a pipe read (one per byte), linear_to_page in
// skb_splice_bits, the reads of copy_splice_read into fresh pages, the
// zero-copy splice actor's copy of slab-backed data, the read(2)/write(2)
// pair of io.Copy's generic fallback, a driver's rx copybreak (kernel
// context). splice(pipe → socket) and skb_send_sock hand pages over in
// Linux (MSG_SPLICE_PAGES) and count nothing, although the model copies
// there (see the package documentation, "Unlike Linux").
type Stats struct {
	// Ops is keyed by op name: send, recv, splice, pipe, iocopy.
	Ops map[string]*opStats
	// Kernel counts copies made in kernel context, on nobody's behalf
	// (rx copybreak). Its Moved is zero.
	Kernel opStats
	// RingWrites are the run's loopback-splice ring writes, in order,
	// each with the TCP segments held in flight when it was made (as
	// Outcome.RingWrites).
	RingWrites []RingWrite
	// RingFaults are the ring reads that returned other bytes than the
	// ring was written with (ringShadow), in order.
	RingFaults []ringFault
	// ReadTags are, with Config.Provenance, the tags of the bytes each
	// read op returned (recv, pipe), by op index; TagSocks names the
	// sockets of Tag.Sock.
	ReadTags map[int][]Tag
	TagSocks []string
	// Stranded lists the recv ops that returned nothing (EAGAIN, EOF, or
	// the runner's timeout) while bytes waited that nothing would bring:
	// on the socket's own queues a read returns (a psock's ingress_msg, a
	// loopback-splice ring), behind a stalled stream parser, or in the
	// peer's write queue held for good.
	Stranded []stranded
	// Rewinds lists, in order, each time a kernel function moved a
	// socket's copied_seq backwards: the bytes between the two values
	// are read again by whatever reads sk_receive_queue next.
	Rewinds []rewind
	// Overshoots lists each time a kernel function moved a socket's
	// copied_seq past rcv_nxt (By: how far): tcp_data_ready then sees
	// no data (tcp_epollin_ready) and calls no sk_data_ready until
	// rcv_nxt catches up.
	Overshoots []rewind
	// MsgVerdicts lists, in order, the runs of sk_msg verdict programs
	// (sk_psock_msg_verdict): what a BPF program that counts its own
	// runs in a map would see.
	MsgVerdicts []msgVerdict
	// Done lists the op indexes in the order the ops completed (ops in
	// other threads may complete out of trace order).
	Done []int
	// Coverage is the set of mirrored kernel functions the run reached.
	Coverage Coverage
	// ZerocopyIDs is, by socket, the MSG_ZEROCOPY ids the socket's
	// counter (sk_zckey) had handed out when the trace's ops ended, for
	// every socket that handed out any: what the completions on its
	// error queue can name, [0, ZerocopyIDs).
	ZerocopyIDs map[string]uint32
	// NoZerocopy: the run's TCP has no MSG_ZEROCOPY (the bridge to an
	// external TCP: gVisor has none), so its zero-copy sends are copies
	// that take no id.
	NoZerocopy bool
	// Splices lists FreeBSD's SO_SPLICE splices (profile
	// freebsd-so-splice) in the order they were made, with what each
	// moved and how it ended.
	Splices []SpliceRecord
	// Departures lists, with Config.Provenance on a profile with
	// SO_SPLICE, the bytes that left each socket's receive queue, in the
	// order they left: moved by its splice or read by a recv.
	Departures []Departure
	// Elapsed is the run's virtual time when its ops had all ended.
	Elapsed time.Duration
}

// SpliceRecord is one splice of a run: made by op Op (sosplice Src Dst
// max Max idle Idle; 0: none) at virtual time Made, Moved bytes moved,
// and End how it dissolved, at virtual time Ended, op EndOp being the
// last dispatched then: "max", "eof", "error", "timeout", "unsplice",
// or "" while it lasts.
type SpliceRecord struct {
	Op          int
	Src, Dst    string
	Max         int64
	Idle        time.Duration
	Moved       int64
	End         string
	Made, Ended time.Duration
	EndOp       int
}

// LiveAt reports whether the splice lasted while op i ran: made before
// it, not ended before it was dispatched.
func (sp SpliceRecord) LiveAt(i int) bool {
	return sp.Op < i && (sp.End == "" || sp.EndOp >= i)
}

// Departure is a run of bytes that left socket Src's receive queue: Len bytes of the stream of socket Sender (a Stats.TagSocks
// index) from offset Off, moved by Src's splice (Splice) or read by a
// recv op (Op, its index).
type Departure struct {
	Src      string
	Sender   int
	Off, Len int64
	Splice   bool
	Op       int
}

// InFlightRingWrite returns the first ring write made while TCP payload
// was held in flight on the transport's wire, if any: the sender found
// its peer's receive queue empty while older TCP bytes had not arrived
// (the loopback-splice RFC's defect (a) window).
func (s *Stats) InFlightRingWrite() (RingWrite, bool) {
	if s == nil {
		return RingWrite{}, false
	}
	for _, w := range s.RingWrites {
		if w.HeldBytes > 0 {
			return w, true
		}
	}
	return RingWrite{}, false
}

// opStats is the accounting of one op kind.
type opStats struct {
	Calls  int64 // ops run
	Moved  int64 // bytes they returned (sent, received, spliced, read, copied)
	Copied int64 // payload bytes copied on their behalf
}

// PerByte is Copied/Moved: copies per byte moved (0 when nothing moved).
func (o opStats) PerByte() float64 {
	if o.Moved == 0 {
		return 0
	}
	return float64(o.Copied) / float64(o.Moved)
}

// statOps are the op kinds that move payload, in table order.
var statOps = []trace.Kind{trace.OpSend, trace.OpRecv, trace.OpSplice, trace.OpPipe, trace.OpIOCopy}

// userCopies: the ops whose every byte moved is one copy between user
// memory and the kernel.
var userCopies = map[trace.Kind]bool{trace.OpSend: true, trace.OpRecv: true, trace.OpPipe: true}

func newStats() *Stats {
	s := &Stats{Ops: map[string]*opStats{}, ReadTags: map[int][]Tag{}}
	for _, k := range statOps {
		s.Ops[k.String()] = &opStats{}
	}
	return s
}

// opAcct returns the accounting of op kind k, or nil for ops that move no
// payload.
func (s *Stats) opAcct(k trace.Kind) *opStats { return s.Ops[k.String()] }

// chargeCopy counts n bytes copied on behalf of the op the running task
// is executing, or of kernel context when no task runs one.
func (k *kernel) chargeCopy(n int) {
	if t := k.s.cur; t != nil && t.acct != nil {
		t.acct.Copied += int64(n)
		return
	}
	k.stats.Kernel.Copied += int64(n)
}

// endOp accounts a finished op of kind kind that returned res.
func (s *Stats) endOp(acct *opStats, kind trace.Kind, res trace.Result) {
	acct.Calls++
	if res.Err != 0 || res.Word != "" || res.N <= 0 {
		return
	}
	acct.Moved += res.N
	if userCopies[kind] {
		acct.Copied += res.N
	}
}

// String renders the table `splicecheck run --stats` prints.
func (s *Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %8s %12s %12s %12s\n", "op", "calls", "bytes", "copied", "copies/byte")
	row := func(name string, o opStats) {
		fmt.Fprintf(&b, "%-8s %8d %12d %12d %12.2f\n", name, o.Calls, o.Moved, o.Copied, o.PerByte())
	}
	for _, k := range statOps {
		if o := s.Ops[k.String()]; o.Calls > 0 {
			row(k.String(), *o)
		}
	}
	if s.Kernel.Copied > 0 {
		fmt.Fprintf(&b, "%-8s %8s %12s %12d %12s\n", "kernel", "-", "-", s.Kernel.Copied, "-")
	}
	return b.String()
}

// rewind is a write of copied_seq behind its value (or past rcv_nxt,
// Stats.Overshoots): Fn (the kernel function) set Sock's copied_seq By
// bytes back (ahead).
type rewind struct {
	Sock string
	Fn   string
	By   int
}

// setCopiedSeq writes sk's copied_seq for the kernel function fn,
// recording a rewind when it moves backwards.
func (k *kernel) setCopiedSeq(sk *sock, seq uint32, fn string) {
	cur := k.tcp.CopiedSeq(sk)
	if back := int32(cur - seq); back > 0 {
		k.stats.Rewinds = append(k.stats.Rewinds, rewind{Sock: sk.Name, Fn: fn, By: int(back)})
	}
	if ahead := int32(seq-cur) - int32(k.tcp.Inq(sk)); ahead > 0 && !sk.SockDone {
		k.stats.Overshoots = append(k.stats.Overshoots, rewind{Sock: sk.Name, Fn: fn, By: int(ahead)})
	}
	k.tcp.SetCopiedSeq(sk, seq)
}

// stranded is a recv that returned nothing while bytes waited for it.
type stranded struct {
	Op      int // the op index
	Ingress int // bytes on the psock's ingress_msg
	Ring    int // bytes in the socket's loopback-splice ring
	// BeforePsock: the recv began before the socket had a psock: it
	// runs tcp_recvmsg, which never looks at ingress_msg.
	BeforePsock bool
	// RcvQueue: sk_receive_queue held bytes too when the recv returned.
	RcvQueue bool
	// Unpaired: the ring's pair was gone (the peer unpaired); Paired:
	// the socket has a live pair.
	Unpaired, Paired bool
	// StrpStalled: when the recv began, the socket's stream parser had a
	// whole message on sk_receive_queue that it had not parsed, with no
	// parse pending (kernel.strpStalled).
	StrpStalled bool
	// StrpStaleNeed: the stalled parser waited on a need_bytes that a
	// later read of the same message left larger than what it misses
	// (strpNeedStale).
	StrpStaleNeed bool
	// PeerHeld is the bytes the peer held unsent then, with nothing in
	// flight and the window open (refTCP.peerHeld): only its next send
	// without MSG_MORE transmits them.
	PeerHeld int
	// Readable: the recv was non-blocking and, when it began, the socket
	// had no sk_skb verdict (so its recv reads sk_receive_queue itself)
	// and bytes waited there at copied_seq.
	Readable bool
}

// tcpReadable reports whether sk reads sk_receive_queue itself (no
// sk_skb verdict takes its skbs) and holds bytes there at copied_seq,
// which tcp_recvmsg returns.
func (k *kernel) tcpReadable(sk *sock) bool {
	if p := skPsock(sk); p != nil && (p.Progs.StreamVerdict != nil || p.Progs.SkbVerdict != nil) {
		return false
	}
	seq := k.tcp.CopiedSeq(sk)
	for _, skb := range sk.SkReceiveQueue.all() {
		if off := int32(seq - skb.Seq); off >= 0 && int(off) < skb.Len {
			return true
		}
	}
	return false
}

// noteStranded records op i, a recv of sk by t that returned nothing, if
// sk's ingress_msg or ring held bytes then, or when it began its stream
// parser was stalled or sk_receive_queue held bytes it reads itself
// (Stats.Stranded).
func (k *kernel) noteStranded(i int, sk *sock, t *task) {
	if sk == nil {
		return
	}
	s := stranded{Op: i, BeforePsock: t.recvPlain, RcvQueue: !sk.SkReceiveQueue.empty(), StrpStalled: t.recvStrpStalled,
		StrpStaleNeed: t.recvStrpStale,
		Readable:      t.recvQueueReadable}
	if p := skPsock(sk); p != nil {
		s.Ingress = p.MsgTotLen
		if sp := p.Splice; sp != nil && sp.Ring != nil && !sp.freed {
			s.Ring = sp.Ring.Len()
			s.Unpaired = sp.Peer == nil
			s.Paired = sp.Peer != nil
		}
	}
	if h, ok := k.tcp.(interface{ peerHeld(*sock) int }); ok {
		s.PeerHeld = h.peerHeld(sk)
	}
	if s.Ingress > 0 || s.Ring > 0 || s.StrpStalled || s.PeerHeld > 0 || s.Readable {
		k.stats.Stranded = append(k.stats.Stranded, s)
	}
}

// msgVerdict is one run of a socket's sk_msg verdict program: during
// trace op Op (-1: outside any op) on the sending socket Sock.
type msgVerdict struct {
	Op   int
	Sock string
	Runs int // consecutive runs of the same op and socket
}

// noteMsgVerdict records a run of sk's sk_msg verdict (Stats.MsgVerdicts),
// counting it into the last record when that is of the same op and
// socket (a send under a 1-byte apply window runs the verdict per byte).
func (k *kernel) noteMsgVerdict(sk *sock) {
	op := -1
	if t := k.s.cur; t != nil && t.running {
		op = t.op
	}
	v := k.stats.MsgVerdicts
	if n := len(v); n > 0 && v[n-1].Op == op && v[n-1].Sock == sk.Name {
		v[n-1].Runs++
		return
	}
	k.stats.MsgVerdicts = append(v, msgVerdict{Op: op, Sock: sk.Name, Runs: 1})
}
