package fuzz

import "github.com/splicecheck/splicecheck/trace"

// Known is a known failure: the signature (property, kind and site of
// the Violation) of a defect a profile has because the kernel or the
// patch it models does, with the reason. A failure that matches no Known
// of its profile is NEW: `splicecheck check` reports it, writes its
// counterexample and exits 1, whatever property it is of.
type Known struct {
	Property, Kind, Site string
	Reason               string
}

// Signature is the "kind@site" a Violation must have to match k.
func (k Known) Signature() string {
	v := Violation{Kind: k.Kind, Site: k.Site}
	return v.Signature()
}

// KnownFailures are each profile's known failures. A known failure that a
// campaign does not meet is fine: it needs a trace the campaign may not
// reach. Each reason names the kernel behaviour, verified on the kernel
// backend or in the patch's source.
var KnownFailures = map[string][]Known{
	"linux-6.18": mainlineFailures,
	"linux-6.1":  mainlineFailures,
	// The splice_read patches fix what splice(2) misses: EOF no longer
	// comes before the ingress data.
	"linux-6.18+splice-copy":         append(without(mainlineFailures, spliceEOF), spliceTimeoutErr),
	"linux-6.18+splice-zerocopy":     append(without(mainlineFailures, spliceEOF), spliceTimeoutErr),
	"linux-6.18+loopback-splice":     rfcFailures,
	"linux-6.18+loopback-splice-seq": moduleFailures,
	// 6.12.118 runs the same tcp_bpf.c and skmsg.c paths these failures
	// come from (the differences, model/internal/linux/profile.go's linux612, are two
	// counts: FIONREAD without a verdict and what sendmsg returns), and
	// the RFC and the module are validated on it: the same known failures.
	"linux-6.12":                     mainlineFailures,
	"linux-6.12+loopback-splice":     rfcFailures,
	"linux-6.12+loopback-splice-seq": moduleFailures,
	// This project's fixes of two kernel findings (docs/findings/,
	// model/internal/linux/fixes.go), each validated on 6.12.118: the
	// base's known failures. fix-psock-delete-seq accounts the bytes of
	// a stream parser's socket when the parser stops; the psock-drop and
	// copied_seq-hole failures stay reachable through a stream verdict
	// without a parser, whose path it does not change.
	"linux-6.18+fix-cork-copybreak":   mainlineFailures,
	"linux-6.18+fix-psock-delete-seq": mainlineFailures,
	"linux-6.12+fix-cork-copybreak":   mainlineFailures,
	"linux-6.12+fix-psock-delete-seq": mainlineFailures,
	trace.FreeBSDProfile: {{"so-splice-limits", "over-max", "counter-reset", counterReset},
		{"so-splice-limits", "not-dissolved-at-max", "counter-reset", counterReset + "; its own tally then reaches max " +
			"while the reset counter is short of it, and the splice goes on"},
		{"no-lost-wakeup", "lost-wakeup", "tcp_recvmsg_locked/so-splice-source",
			"FreeBSD's design, as the model has it: while a socket is a splice's source its data wake-ups go to the " +
				"splice's worker (so_splice diverts the receive upcall; sorwakeup calls splice_push), not to its readers, " +
				"so a reader blocked on it sleeps with bytes queued that the worker cannot move (the sink is full) until " +
				"they move, the splice ends or its own timeout"},
		{"reads-agree", "poll-misses-data", "splice-source",
			"FreeBSD's own behaviour, read in uipc_socket.c at freebsd-src 4d0f7fdd: sopoll_generic reports no POLLIN " +
				"for the data of a spliced source (L4403-4405), while soreceive_generic has no splice check and returns " +
				"what is queued there (L2727-2730), the reader and the splice worker taking turns under " +
				"SOCK_IO_RECV_LOCK: a poller sees nothing where a reader gets bytes"}},
}

// counterReset is FreeBSD's counter reset by a refused re-splice
// (so-splice-limits' finding).
const counterReset = "model-only, read in uipc_socket.c at freebsd-src 4d0f7fdd: so_splice zeroes the source's so_splice_sent " +
	"(L1670) before it refuses a second splice of a busy source (EBUSY, L1681), and so_splice_xfer limits a " +
	"transfer to max less so_splice_sent (L606): after a refused re-splice the live splice moves up to max " +
	"bytes more than it had (testdata/traces/freebsd/finding_counter_reset_overrun.trace)"

// zcPush is why a socket under an sk_msg program hands out MSG_ZEROCOPY
// ids by push, not by send.
const zcPush = "tcp_bpf_sendmsg keeps the sender's flags, MSG_ZEROCOPY among them, and tcp_bpf_push calls " +
	"tcp_sendmsg_locked once per scatterlist element it pushes (per applied window; corked sends together), each " +
	"call taking an id (msg_zerocopy_realloc): a 64 KiB send is two ids, a 50-byte send under apply 10 five, two " +
	"sends corked into one push one (testdata/traces/kernel/zc_sockmap_pass.trace, zc_sockmap_apply.trace, " +
	"zc_sockmap_cork.trace; the same on 6.1, 6.12 and 6.18)"

// zerocopyFailures are mainline's MSG_ZEROCOPY failures: what the
// kernel does to zero-copy sends on a socket in a sockmap with an sk_msg
// program (zerocopy-completions).
var zerocopyFailures = []Known{
	{"zerocopy-completions", "extra-ids", "sk_msg/pass", zcPush},
	{"zerocopy-completions", "extra-ids", "sk_msg/apply", zcPush},
	{"zerocopy-completions", "never-completed", "sk_msg/apply", zcPush},
	{"zerocopy-completions", "extra-ids", "sk_msg/cork", zcPush},
	{"zerocopy-completions", "never-completed", "sk_msg/cork", zcPush},
	{"zerocopy-completions", "never-completed", "sk_msg/drop",
		"a drop verdict with an apply window drops the bytes it covers and lets the send return the rest, which no " +
			"tcp_sendmsg_locked carries: a send that returned bytes takes no id (testdata/traces/kernel/zc_sockmap_drop_apply.trace)"},
	{"zerocopy-completions", "never-completed", "sk_msg/redirect-ingress",
		"bpf_tcp_ingress copies a redirected send into the target's ingress_msg without tcp_sendmsg_locked: the " +
			"send takes no id and is never completed (testdata/traces/kernel/zc_sockmap_redirect_ingress.trace)"},
	{"zerocopy-completions", "never-completed", "sk_msg/redirect-egress",
		"tcp_bpf_sendmsg_redir pushes a redirected send through the target (tcp_bpf_push_locked), so the id is taken " +
			"from the target's counter when it has SO_ZEROCOPY, never from the sender's (testdata/traces/kernel/zc_sockmap_redirect_egress.trace)"},
	{"zerocopy-completions", "ids-without-sends", "sk_msg/redirect-target",
		"the target of an egress redirect with SO_ZEROCOPY on gets the ids and completions of the sender's zero-copy " +
			"sends (tcp_bpf_push_locked with the sender's flags; testdata/traces/kernel/zc_sockmap_redirect_egress.trace)"},
}

// zcRingKnown: MSG_ZEROCOPY sends through a loopback-splice ring.
var zcRingKnown = Known{"zerocopy-completions", "never-completed", "ring",
	"a paired socket's send that takes the ring is copied into it (splice_send_ring, the module's " +
		"splice_prot_sendmsg) without tcp_sendmsg_locked: it takes no MSG_ZEROCOPY id and is never completed; only " +
		"a send that falls back to TCP is (testdata/traces/loopback/rfc_zerocopy_ring_never_completes.trace, " +
		"measured on 6.12.118 with the RFC and with the tcp_splice module)"}

// rfcFailures are the known failures of Cong Wang's RFC as posted
// (loopback-splice), on either base.
var rfcFailures = with(mainlineFailures, join(ringUnlocked, rfcTransparency, rendezvousPsock, []Known{zcRingKnown,
	{"stream-integrity", "reordered", "ring/tcp",
		"the posted RFC's defect (a): splice_send_ring checks the peer's sk_receive_queue while older TCP bytes are " +
			"in flight (on netstack: segments held on the link), and its ring bytes overtake them; and " +
			"tcp_bpf_splice_recvmsg's ring-then-queue read lets TCP bytes overtake ring bytes"},
	{"eof-after-data", "eof-early", "ring", rfcEOF},
	{"no-stranded-data", "stranded", "ring/eof", rfcEOF},
	{"no-teardown-leak", "leak", "splice-pair",
		"the posted RFC's defect (b): each side holds a psock reference on the other and only sk_psock_drop " +
			"unpairs, so a closed pair is never released"},
})...)

// moduleFailures are the known failures of the multikernel/tcp_splice
// module's ordering fix (loopback-splice-seq), on either base.
var moduleFailures = with(mainlineFailures, join(ringUnlocked, []Known{zcRingKnown,
	{"no-lost-wakeup", "lost-wakeup", "splice_send_wait/concurrent-senders",
		"the module's splice_prot_sendmsg takes no socket lock, so two threads sending on one paired socket are two " +
			"producers on a single-producer ring: a sender waiting for space misses the wake-up the other's write consumed"},
	{"eof-after-data", "eof-early", "ring", moduleCloseEOF},
	{"transparent", "eof-early", "ring", moduleCloseEOF},
	{"no-stranded-data", "stranded", "ring/eof", moduleCloseEOF},
	{"no-stranded-data", "stranded", "ring/unpaired", moduleCloseEOF},
	{"no-livelock", "livelock", "splice_recvmsg_merge",
		"the module's splice_recvmsg_merge goes round again while sk_receive_queue is non-empty " +
			"(splice_recv_deliverable), before its timeout test, so it spins on bytes tcp_recvmsg cannot return: the " +
			"copied_seq hole mainline leaves when a stream-verdict socket loses its psock (measured on 6.12.118 with " +
			"tcp_splice.ko: testdata/traces/findings/seq_merge_spins_on_tcp_hole.trace, a dontwait recv never returns)"},
	{"eof-after-data", "eof-early", "recv", "the module's splice_recvmsg_merge ends a read (0, EOF) once its channel " +
		"is unpaired and its ring empty, without waiting for the FIN: the peer's close unpairs at once (splice_teardown " +
		"before tcp_close), so its TCP bytes still in flight then are read after the EOF (by the module's source)"},
	{"stream-integrity", "reordered", "ring/tcp", moduleMapSendReorders},
	{"transparent", "reordered", "ring/tcp", moduleMapSendReorders},
	{"no-stranded-data", "stranded", "ingress_msg/verdict", "the module's splice_recvmsg_merge calls the base proto's " +
		"recvmsg only while sk_receive_queue is non-empty: a socket paired after it joined a map with an sk_skb verdict " +
		"(the kfunc installs its clone over tcp_bpf's proto) never reads the messages the verdict put on ingress_msg " +
		"(by the module's source; a sock_ops program that inserts, then pairs, reaches it)"},
	{"no-teardown-leak", "leak", "splice-pair", "a socket paired after it got a psock (splice_install saves tcp_bpf's " +
		"proto as its base) that then joins another map gets tcp_bpf's proto again (tcp_bpf_update_proto), and its " +
		"close runs the psock's saved close (tcp_close), not the module's: splice_teardown never runs, and the channel, " +
		"its ring, the sock reference and the module reference leak (by the module's source)"},
})...)

// ringFIONREAD: no FIONREAD counts the ring.
const ringFIONREAD = "FIONREAD does not count ring bytes: the RFC keeps its base's tcp_bpf_ioctl (msg_tot_len; on " +
	"6.12 plus tcp_inq without a verdict) and the module does not override ioctl, and neither adds the ring's count"

// pairedIngressReason: a paired socket's receive path has no
// ingress_msg read.
const pairedIngressReason = "model-only, not yet confirmed on a kernel carrying the patch: a paired socket reads its " +
	"ring and sk_receive_queue, so messages redirected onto its ingress_msg (an sk_msg ingress redirect, or its own " +
	"sk_skb verdict in a second map) stay there (the same trace unpaired reads them on 6.18)"

// peekPartialReason: MSG_PEEK after a partial read of an ingress message.
const peekPartialReason = "MSG_PEEK on a socket whose first ingress message was partly read returns -EAGAIN while the " +
	"rest of the message waits on ingress_msg (reproduced on the 6.18 kernel backend: parser 100, send 100, recv 1, " +
	"recv 100 peek)"

// copiedSeqOvershoot: tcp_bpf_strp_read_sock and tcp_bpf_recvmsg_parser
// disagree on the bytes of sk's own messages (a 6.18 finding).
const copiedSeqOvershoot = "two stream-parser reads before a recv: tcp_bpf_strp_read_sock sets copied_seq to the " +
	"parser's cursor less only its own read's ingress bytes, tcp_bpf_recvmsg_parser adds every message it reads, and " +
	"copied_seq passes rcv_nxt; tcp_data_ready (tcp_epollin_ready) then never runs the parser for later bytes, and " +
	"tcp_bpf_recvmsg_parser returns -EAGAIN at entry with messages waiting (reproduced on the 6.18 kernel backend: " +
	"testdata/traces/findings/strparser_copied_seq_overshoot.trace)"

// copiedSeqAheadSleep: the overshoot above outlives the psock.
const copiedSeqAheadSleep = "a stream parser's overshoot (see stranded@strparser/copied-seq-ahead) leaves copied_seq " +
	"past rcv_nxt after the socket leaves its map: tcp_data_ready (tcp_epollin_ready: rcv_nxt - copied_seq <= 0) " +
	"calls no sk_data_ready for the skbs that arrive later, so a reader sleeping in sk_wait_data for them " +
	"(tcp_recvmsg_locked, tcp_splice_read) is never woken and times out with them queued (the blocking recv times " +
	"out on the 6.18 kernel backend too: parser 2303, sends of 767, 767, 769, 2302, recv, send 1, delete, recv)"

// join concatenates lists of known failures.
func join(lists ...[]Known) []Known {
	var out []Known
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// ringUnlocked: the ring is single-consumer, and neither the
// RFC's tcp_bpf_splice_recvmsg ("Caller must NOT hold sk's socket lock")
// nor the module's splice_recvmsg serialises a socket's readers: two
// threads reading one paired socket both copy out the bytes at ring_tail.
// The same for writers: splice_send_ring runs outside lock_sock in both
// (the RFC's tcp_bpf_splice_sendmsg, the module's splice_prot_sendmsg),
// so two threads sending on one paired socket are two producers. And the
// RFC's ring is invisible to MSG_PEEK ("PEEK is not implemented against
// the ring", tcp_bpf_splice_recvmsg), as is the module's.
var ringUnlocked = join(concurrentRing("stream-integrity", "duplicated", "reordered", "corrupted", "lost"),
	concurrentRing("model-sound", "ring-invariant"), []Known{
		{"ring-content", "overread", "ring/concurrent-readers", ringReadersReason},
		{"ring-content", "corrupted", "ring/concurrent-readers", ringReadersReason},
		{"ring-content", "overread", "ring/concurrent-writers", ringWritersReason},
		{"ring-content", "corrupted", "ring/concurrent-writers", ringWritersReason},
		{"reads-agree", "eagain-after-poll", "ring/peek", ringPeekReason},
		{"no-stranded-data", "stranded", "ring/peek", ringPeekReason},
		{"no-stranded-data", "stranded", "ring/before-psock", "a recv that began before its socket had a psock (or a " +
			"pair) runs tcp_recvmsg to the end: it waits on sk_receive_queue and never reads the ring the pairing set up"},
		{"no-stranded-data", "stranded", "ingress_msg/paired", pairedIngressReason},
		{"reads-agree", "fionread-overcounts", "paired", pairedIngressReason + "; FIONREAD (msg_tot_len) counts them"},
		{"reads-agree", "eagain-after-poll", "paired", pairedIngressReason + "; poll (tcp_bpf_is_readable) sees them"},
		{"reads-agree", "eagain-after-fionread", "paired", pairedIngressReason + "; FIONREAD (msg_tot_len) counts them"},
		{"reads-agree", "fionread-undercounts", "ring/peek", "FIONREAD counts neither the ring (see fionread-undercounts@ring) " +
			"nor, on 6.18, sk_receive_queue (see fionread-undercounts@psock), while a peek returns the TCP bytes the ring " +
			"bytes precede (see peek-differs@ring)"},
		{"no-stranded-data", "stranded", "ring/verdict", ringVerdictReason},
		{"reads-agree", "eagain-after-poll", "ring/verdict", ringVerdictReason},
		{"reads-agree", "eagain-after-fionread", "ring/verdict", ringVerdictReason},
		{"reads-agree", "eagain-after-fionread", "ring/peek", ringPeekReason},
		{"reads-agree", "peek-misses-data", "ring", "MSG_PEEK does not look into the ring: tcp_bpf_splice_recvmsg " +
			"returns 0 for MSG_PEEK (\"PEEK is not implemented against the ring\") and the peek reads the empty TCP queue"},
		{"reads-agree", "peek-differs", "ring", "MSG_PEEK does not look into the ring, so a peek returns TCP bytes that ring " +
			"bytes precede"},
		{"reads-agree", "fionread-undercounts", "ring", ringFIONREAD},
		{"reads-agree", "fionread-undercounts", "ring/verdict", ringFIONREAD},
		{"stream-integrity", "reordered", "ring/sk_msg", skMsgOvertakesRing},
		{"transparent", "eof-early", "ring/bypass-verdict", "ring bytes never meet the reader's sk_skb verdict (see " +
			"differs@ring/bypass-verdict): a socket the base's verdict feeds sees EOF instead"},
		{"transparent", "differs", "ring/bypass-verdict", "ring bytes never meet the reader's sk_skb verdict (the RFC: " +
			"\"no skb, no sk_msg, and no verdict-program involvement on the splice fast path\"; the module likewise): " +
			"bytes the base redirects on, or drops, stay in the paired socket's ring"},
		{"transparent", "reordered", "ring/sk_msg", skMsgOvertakesRing},
		{"stream-integrity", "lost", "ring/strparser", "model-only, not yet confirmed on a kernel carrying the patch: a paired " +
			"socket that also has a stream parser misses bytes its peer sent before the ring took over"},
	})

// concurrentRing lists, for property, each kind at both concurrent ring
// sites (ringUnlocked).
func concurrentRing(property string, kinds ...string) []Known {
	var out []Known
	for _, k := range kinds {
		out = append(out, Known{property, k, "ring/concurrent-readers", ringReadersReason},
			Known{property, k, "ring/concurrent-writers", ringWritersReason})
	}
	return out
}

const moduleCloseEOF = "the multikernel/tcp_splice module tears a pair down from close and from unhash: a peer's " +
	"close lets the receiver drain its ring before EOF (measured: loopback/seq_close_drains_ring.trace), but a RST, " +
	"or any entry into TCP_CLOSE, destroys the receiver's channel and frees its ring with the unread bytes " +
	"(measured: loopback/seq_rst_frees_ring.trace)"

// moduleMapSendReorders: a paired sender in a map sends by TCP.
const moduleMapSendReorders = "a map insert of a paired sender replaces the module's proto clone by tcp_bpf's " +
	"(tcp_bpf_update_proto builds it from tcp_prot), so its bytes go by TCP after ring_seq was frozen, and the " +
	"receiver's splice_recvmsg_merge, which reads queued TCP first, delivers them ahead of older ring bytes " +
	"(measured on 6.12.118 with tcp_splice.ko: testdata/traces/loopback/seq_insert_sender_reorders.trace)"

const ringVerdictReason = "a paired socket with an sk_skb verdict program receives by tcp_bpf_recvmsg_parser, which " +
	"has no ring path (the RFC adds the ring read to tcp_bpf_recvmsg only), while poll (tcp_bpf_is_readable) counts the " +
	"ring: its ring bytes are stranded"

const rfcEOF = "the posted RFC's defect (b): tcp_bpf_splice_recvmsg returns EOF on RCV_SHUTDOWN after an empty " +
	"ring read, with bytes sent before the FIN landing in the ring meanwhile"

const ringPeekReason = "MSG_PEEK does not look into the ring (tcp_bpf_splice_recvmsg returns 0 for it), while " +
	"poll and FIONREAD see ring bytes: a peek right after finds nothing"

const skMsgOvertakesRing = "a paired socket in a map with an sk_msg program sends by tcp_bpf_sendmsg, not the " +
	"ring (pairing is the RFC's, whose TCP_BPF_TX proto has no ring path), and overtakes its bytes still in the ring " +
	"(testdata/traces/counterexamples/pair_then_msg_prog_reorders.trace)"

const ringReadersReason = "the ring has one consumer, but the ring read takes no socket lock (the RFC's " +
	"tcp_bpf_splice_recvmsg, the module's splice_recvmsg): two threads reading one paired socket both copy the bytes at " +
	"ring_tail and both advance it"

const ringWritersReason = "the ring has one producer, but splice_send_ring takes no socket lock (the RFC's " +
	"tcp_bpf_splice_sendmsg, the module's splice_prot_sendmsg): two threads sending on one paired socket both write at " +
	"ring_head"

// rendezvousPsock: what `conn A B pair` changes against the base besides
// the ring (checkTransparent's "psock/rendezvous").
var rendezvousPsock = []Known{
	{"transparent", "differs", "psock/rendezvous", rendezvousReason},
	{"transparent", "eof-early", "psock/rendezvous", rendezvousReason},
	{"transparent", "reordered", "psock/rendezvous", rendezvousReason},
}

const rendezvousReason = "pairing at the ESTABLISHED callbacks puts both ends in the sock_ops program's sockhash, so " +
	"each has a psock from the connection on, which outlives its leaving a map of the trace and keeps the programs " +
	"that map gave it (sock_map_del_link stops only the stream parser and verdict); on the base the program does " +
	"not load (no bpf_sock_splice_pair) and the same socket has no psock outside the trace's maps (on " +
	"loopback-splice-seq the model's psock is the RFC's: the module pairs without one)"

// rfcTransparency: the RFC's defects as the transparency property sees
// them against its base, linux-6.18 or linux-6.12 (the same runs, judged
// by what the base gives).
var rfcTransparency = []Known{
	{"transparent", "reordered", "ring/tcp", "the RFC's defect (a), seen against its base, linux-6.18 or linux-6.12 " +
		"(see stream-integrity)"},
	{"transparent", "reordered", "ring/sk_msg", skMsgOvertakesRing + ", seen against its base, linux-6.18 or linux-6.12"},
	{"transparent", "eof-early", "ring", "the RFC's defect (b), seen against its base, linux-6.18 or linux-6.12 " +
		"(see eof-after-data)"},
}

// spliceTimeoutErr: the splice_read patches read through tcp_bpf_recvmsg_parser.
var spliceTimeoutErr = Known{"transparent", "eof-early", "splice/peer",
	"model-only (the splice_read patches are not built here): on a socket with a stream parser the patches' " +
		"splice_read reads through tcp_bpf_recvmsg_parser (copy_splice_read, tcp_bpf_splice_read_parser), which " +
		"returns -EAGAIN when its wait times out without taking sk_err; the stream parser's message timeout (the " +
		"same SO_RCVTIMEO) sets sk_err to ETIMEDOUT, which the base's tcp_splice_read returns, and under the patch " +
		"the socket's next send fails with it instead, so its peer reads EOF where the base delivered the bytes"}

var spliceEOF = Known{"eof-after-data", "eof-early", "splice",
	"splice(2) on a socket with a psock never sees its ingress queue: tcp_splice_read returns 0 as if at EOF " +
		"(the splice-copy and splice-zerocopy series fix it)"}

var mainlineFailures = append([]Known{
	spliceEOF,
	{"stream-integrity", "reordered", "tcp/ingress",
		"tcp_bpf_recvmsg reads ingress_msg before sk_receive_queue: bytes that went by TCP (sent before the socket " +
			"gained its redirect, or passed) come after later bytes redirected into ingress_msg " +
			"(testdata/traces/kernel/kf_mixed_tcp_then_ingress_order.trace, recorded on 6.18)"},
	{"eof-after-data", "eof-early", "strparser",
		"a stream parser with fixed-size frames holds the start of a frame until the rest arrives (strp_data_ready); " +
			"a FIN before the rest ends the stream with those bytes never delivered, by recv or splice"},
	{"no-lost-wakeup", "lost-wakeup", "tcp_recvmsg_locked/copied_seq-hole", copiedSeqHole},
	{"reads-agree", "fionread-undercounts", "psock",
		"FIONREAD on a socket with a psock counts one queue only: 6.18's tcp_bpf_ioctl returns the psock's msg_tot_len " +
			"(ingress_msg), not sk_receive_queue; 6.1's tcp_ioctl counts sk_receive_queue, not ingress_msg (both seen on " +
			"the kernel backends); 6.12.118's adds sk_receive_queue only when the psock has no verdict program"},
	{"no-lost-wakeup", "lost-wakeup", "tcp_msg_wait_data/strparser",
		"a reader blocked in tcp_bpf_recvmsg_parser waits for ingress_msg or sk_receive_queue, but a stream parser " +
			"waiting for the rest of a frame leaves bytes on sk_receive_queue without waking it: it sleeps to its timeout"},
	{"no-lost-wakeup", "lost-wakeup", "tcp_splice_read/strparser", strparserHolds},
	{"no-lost-wakeup", "lost-wakeup", "tcp_splice_read/copied_seq-hole", copiedSeqHole},
	{"no-lost-wakeup", "lost-wakeup", "tcp_recvmsg_locked/strparser", strparserHolds},
	{"no-lost-wakeup", "lost-wakeup", "tcp_msg_wait_data/sk_receive_queue", selfRedirectReason},
	{"no-lost-wakeup", "lost-wakeup", "tcp_splice_read/sk_receive_queue", selfRedirectReason},
	{"no-lost-wakeup", "lost-wakeup", "tcp_recvmsg_locked/sk_receive_queue", selfRedirectReason},
	{"eof-after-data", "eof-early", "verdict",
		"with an sk_skb verdict the bytes reach ingress_msg by the psock's verdict path while the FIN stays on " +
			"sk_receive_queue: a reader that runs before the verdict has queued them finds ingress_msg empty and " +
			"RCV_SHUTDOWN set, and returns EOF (reproduced on the 6.18 kernel backend: sk_skb pass, send 1000, " +
			"shutdown wr, recv in a thread)"},
	{"eof-after-data", "eof-early", "psock-drop",
		"sk_psock_drop frees the bytes the psock took off sk_receive_queue (its ingress_msg) without advancing " +
			"copied_seq; after the FIN a reader sees EOF with FIONREAD still counting them (reproduced on the 6.18 kernel backend)"},
	{"stream-integrity", "lost", "strparser",
		"a stream parser eats the bytes of a frame it has not completed (copied_seq moves past them); splice(2), " +
			"which reads sk_receive_queue, then returns the bytes after them (reproduced on the 6.18 kernel backend)"},
	{"stream-integrity", "lost", "psock-drop",
		"a socket that leaves a map with a stream parser loses the bytes its psock held: sk_psock_drop frees them " +
			"without advancing copied_seq (testdata/traces/findings/psock_delete_strparser_seq_warn.trace, on 6.18)"},
	{"no-teardown-leak", "leak", "strp_init",
		"a socket whose stream parser a delete stopped (sk_psock_stop_strp: strp_stop frees nothing) while another map " +
			"kept its psock gets a parser again when it joins a map with one: strp_init zeroes the strparser in place and " +
			"the skb of the frame it was assembling leaks (sock_map_link, net/core/sock_map.c; read in the 6.12.118 tree, " +
			"no trace can observe the leak)"},
	{"model-sound", "crash", "strp_init",
		"as leak@strp_init, with the frame's message timer (SO_RCVTIMEO) still queued: strp_init zeroes the queued " +
			"delayed work and the kernel panics when it fires (NULL pointer dereference in __queue_work, in the timer " +
			"softirq), reproduced in the Debian 6.1.192 and 6.12.118 guests: " +
			"testdata/traces/findings/panic/strp_reinit_armed_timer.trace, never to be run on the host"},
	{"errno-contract", "impossible-errno", "recv/verdict-gone",
		"a socket that leaves its sk_skb verdict map but stays in another keeps its psock and now reads by " +
			"tcp_bpf_recvmsg, which has no is_next_msg_fin check: the FIN message the verdict queued on ingress_msg makes " +
			"sk_msg_recvmsg return -EFAULT instead of EOF (reproduced on the 6.18 kernel backend: " +
			"testdata/traces/findings/verdict_gone_fin_efault.trace)"},
	{"errno-contract", "impossible-errno", "recv/verdict-late",
		"a socket that joins a map with an sk_skb verdict while already in a map without one keeps the proto its psock " +
			"got first (tcp_bpf_recvmsg, no is_next_msg_fin check): the FIN message the verdict queues makes recv return " +
			"-EFAULT instead of EOF (reproduced on the 6.18 kernel backend: " +
			"testdata/traces/findings/verdict_late_fin_efault.trace)"},
	{"reads-agree", "eagain-after-fionread", "strparser", parserEntryEAGAIN},
	{"reads-agree", "fionread-overcounts", "strparser", parserEntryEAGAIN + "; and 6.1's tcp_inq also counts the " +
		"bytes a stream parser holds for a frame not yet whole, which no read returns"},
	{"reads-agree", "eagain-after-poll", "strparser", parserEntryEAGAIN},
	{"reads-agree", "eagain-after-shutdown", "psock",
		"a socket with a psock does not end reads at SHUT_RD: tcp_bpf_recvmsg_parser, finding no message, returns " +
			"-EAGAIN to a non-blocking read after shutdown(SHUT_RD) where tcp_recvmsg returns 0 (reproduced on the 6.18 " +
			"kernel backend)"},
	{"no-stranded-data", "stranded", "ingress_msg/before-psock",
		"a recv that began before its socket joined a map runs tcp_recvmsg to the end: it waits on " +
			"sk_receive_queue while the new psock's verdict moves the bytes to ingress_msg, which it never reads " +
			"(sk_psock_verdict_data_ready takes the skbs with tcp_read_skb)"},
	{"stream-integrity", "duplicated", "copied-seq-rewound@tcp_bpf_recvmsg_parser",
		"read in tcp_bpf.c (v6.18), not reproduced: tcp_bpf_recvmsg_parser writes back the copied_seq it read on entry " +
			"when a wait ends with no message, so the bytes a tcp_recvmsg that began before the psock (see " +
			"stranded@ingress_msg/before-psock) copied meanwhile count as unread again and the next read of " +
			"sk_receive_queue returns them twice; the model's trace (a parser frame above a small SO_RCVBUF) runs into the " +
			"README's small-buffers gap on the 6.18 kernel backend, where the readers split the bytes without a rewind"},
	{"stream-integrity", "duplicated", "copied-seq-rewound@tcp_read_skb",
		"a socket that joins a map with an sk_skb verdict after a read took part of a queued skb: tcp_read_skb hands the " +
			"verdict the whole skb, and the bytes the read returned are delivered again (reproduced on the 6.18 kernel " +
			"backend: send 100, recv 7, then the verdict redirects all 100)"},
	{"reads-agree", "peek-misses-data", "psock", peekPartialReason},
	{"no-stranded-data", "stranded", "strparser/copied-seq-ahead@tcp_bpf_recvmsg_parser", copiedSeqOvershoot},
	{"no-stranded-data", "stranded", "ingress_msg/copied-seq-ahead@tcp_bpf_recvmsg_parser", copiedSeqOvershoot},
	{"no-lost-wakeup", "lost-wakeup", "tcp_recvmsg_locked/copied_seq-ahead", copiedSeqAheadSleep},
	{"no-lost-wakeup", "lost-wakeup", "tcp_splice_read/copied_seq-ahead", copiedSeqAheadSleep},
	{"no-stranded-data", "stranded", "ingress_msg/eof",
		"bytes redirected into a socket's ingress_msg after its sk_skb verdict queued the peer's FIN (an empty " +
			"message): tcp_bpf_recvmsg_parser returns 0 at the FIN message (is_next_msg_fin) and the bytes behind it " +
			"are never read (reproduced on the 6.18 kernel backend)"},
	{"no-stranded-data", "stranded", "peer-write-queue/apply",
		"an sk_msg program that applies or corks makes tcp_bpf_push send each piece of an element with MSG_MORE while " +
			"more of it remains; tcp_push corks (TCP_NAGLE_CORK) and, with nothing in flight, no ACK releases the " +
			"segment (reproduced on the 6.18 kernel backend: testdata/traces/kernel/kf_cork_apply_msg_more_hold.trace)"},
	{"no-stranded-data", "stranded", "strparser/stale-need-bytes",
		"read in strparser.c and tcp_bpf.c (v6.18), not reproduced: __strp_recv sets need_bytes only when tcp_inq " +
			"falls short of the rest of the message, and tcp_inq still counts the socket's own ingress messages " +
			"(tcp_bpf_strp_read_sock holds copied_seq back for them), so a read that adds to the message without " +
			"completing it leaves need_bytes stale; once copied_seq catches up, strp_data_ready waits for more than " +
			"the message misses and the whole frame stays on sk_receive_queue (a frame 4096: sends 4095, 1000, then " +
			"1365, 1365, 1366)"},
	{"no-stranded-data", "stranded", "ingress_msg/rcv-queue",
		"tcp_bpf_recvmsg_parser first runs the verdict on what sk_receive_queue holds and returns -EAGAIN when bytes " +
			"stay there (a frame the parser has not completed), without reading the messages waiting on ingress_msg " +
			"(reproduced on the 6.18 kernel backend)"},
	{"no-stranded-data", "stranded", "ingress_msg/peek", peekPartialReason},
	{"reads-agree", "eagain-after-poll", "psock-gone",
		"after the socket leaves the map, poll reports IN for the bytes its psock took and freed (tcp_inq counts " +
			"them), while recv finds nothing (reproduced on the 6.18 kernel backend)"},
	{"reads-agree", "fionread-overcounts", "psock-gone",
		"after the socket leaves the map, FIONREAD (tcp_inq) still counts the bytes its psock took off " +
			"sk_receive_queue and freed with it, while reads find nothing (reproduced on the 6.18 kernel backend)"},
	{"reads-agree", "fionread-overcounts", "self-redirect", selfRedirectReason},
	{"reads-agree", "eagain-after-poll", "self-redirect", selfRedirectReason},
	{"reads-agree", "eagain-after-fionread", "self-redirect", selfRedirectReason},
	{"reads-agree", "peek-misses-data", "self-redirect",
		"behind a stream parser whose verdict redirects into the socket's own ingress (6.18: through ingress_skb and " +
			"the backlog), a MSG_PEEK runs the parser at tcp_bpf_recvmsg_parser's entry and returns -EAGAIN while a " +
			"frame's start stays on sk_receive_queue; the next read finds the redirected frame on ingress_msg " +
			"(reproduced on the 6.18 kernel backend: redirect 0 ingress parser 1152, 1000 bytes queued before the " +
			"insert, three sends of 384, recv 1152 peek -EAGAIN, recv 100 returns 100)"},
	{"reads-agree", "eagain-after-fionread", "psock-gone",
		"after the socket leaves the map, FIONREAD (tcp_inq) still counts the bytes its psock took off " +
			"sk_receive_queue and freed with it, while recv finds nothing"},
}, zerocopyFailures...)

const selfRedirectReason = "a socket whose sk_skb verdict redirects into its own ingress queue stops seeing its " +
	"later bytes after the first read: they stay on sk_receive_queue, reads return -EAGAIN (a blocking reader sleeps " +
	"to its timeout), and FIONREAD and poll report only what ingress_msg still holds (reproduced on the 6.18 kernel " +
	"backend: conn c1 c2; sk_skb redirect 0 ingress with c2 at key 0; send, recv, send; and with a partial first read, " +
	"poll IN then -EAGAIN)"

const parserEntryEAGAIN = "tcp_bpf_recvmsg_parser returns -EAGAIN at entry while a frame the stream parser has not " +
	"completed is on sk_receive_queue, even with messages waiting on ingress_msg, which FIONREAD (6.18: msg_tot_len; " +
	"6.1: tcp_inq) and poll count (reproduced on the 6.18 kernel backend: parser 100, sends of 1000, 10, 10, 1, " +
	"FIONREAD 1000, recv -EAGAIN)"

const copiedSeqHole = "a socket that leaves a stream-verdict map keeps the copied_seq hole of the bytes its psock " +
	"took (sk_psock_drop frees them without advancing copied_seq); tcp_recvmsg_locked and tcp_splice_read then wait " +
	"on skbs past the hole that they can never return, and sleep to their timeout although bytes are queued (seen " +
	"on the 6.18 kernel backend)"

const strparserHolds = "a stream parser owns the bytes of a frame it has not completed: they sit on sk_receive_queue " +
	"and the parser wakes nobody until the frame is whole, so a reader waiting for new skbs there (tcp_splice_read, " +
	"tcp_recvmsg_locked) sleeps to its timeout"

// with returns base and extra, extra's entries replacing base's of the
// same property and signature.
func with(base []Known, extra ...Known) []Known {
	out := append([]Known(nil), extra...)
	for _, k := range base {
		if !containsKnown(extra, k) {
			out = append(out, k)
		}
	}
	return out
}

// without returns base less the given entries.
func without(base []Known, drop ...Known) []Known {
	var out []Known
	for _, k := range base {
		if !containsKnown(drop, k) {
			out = append(out, k)
		}
	}
	return out
}

func containsKnown(list []Known, k Known) bool {
	for _, x := range list {
		if x.Property == k.Property && x.Kind == k.Kind && x.Site == k.Site {
			return true
		}
	}
	return false
}

// MatchKnown returns the known failure of profile that v is, if any.
func MatchKnown(profile string, v *Violation) (Known, bool) {
	for _, k := range KnownFailures[profile] {
		if k.Property == v.Property && k.Kind == v.Kind && k.Site == v.Site {
			return k, true
		}
	}
	return Known{}, false
}

// KnownOf returns the known failures of profile's property.
func KnownOf(profile, property string) []Known {
	var out []Known
	for _, k := range KnownFailures[profile] {
		if k.Property == property {
			out = append(out, k)
		}
	}
	return out
}
