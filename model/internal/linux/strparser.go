package linux

import (
	"fmt"
	"syscall"
	"time"
)

// strparser mirrors the parts of struct strparser (include/net/strparser.h,
// v6.18) a psock uses: the message being assembled and the parser state.
//
// Ownership: head holds page references to the bytes of the incomplete
// message (strp->skb_head); a complete message becomes its own skb (with
// its own references) handed to the verdict.
type strparser struct {
	psock   *psock
	sk      *sock
	head    *skBuff
	fullLen int // the parser's answer for the message being assembled; 0 before
	stopped bool
	// timerGen invalidates the message timer when the message completes.
	timerGen int
	// timerPending: msg_timer_work is queued (armed by strp_start_timer,
	// neither cancelled nor fired).
	timerPending bool
	// ingressBytes counts the bytes of this read passed to sk's own
	// ingress queue (psock->ingress_bytes).
	ingressBytes int
	// copiedSeq is psock->copied_seq: the parser's read cursor in the
	// socket's stream (tcp_read_sock_noack), separate from copied_seq.
	copiedSeq uint32
	// needBytes is strp->need_bytes: the bytes still missing from a
	// message whose length is known; until the socket holds that many,
	// arriving data stays on sk_receive_queue.
	needBytes int
	// needHead is the length of the message being assembled when
	// needBytes was set (strpNeedStale).
	needHead   int
	workQueued bool
	// startNxt is rcv_nxt when the parser started: bytes before it
	// arrived with no strp_data_ready (strpStalled).
	startNxt uint32
}

// skPsockInitStrp mirrors sk_psock_init_strp() (net/core/skmsg.c, v6.18)
// → strp_init() (net/strparser/strparser.c, v6.18).
//
// A psock whose parser a delete stopped (sk_psock_stop_strp: strp_stop,
// nothing freed or cancelled) while another map kept it gets a parser
// again when it joins a map with one: strp_init zeroes the strparser in
// place. A frame it was assembling is forgotten: Linux leaks its skb;
// unlike Linux the model frees it and counts it (strpInitLeaks, a "leak"
// at "strp_init" with Config.Liveness). A message timer still queued is
// zeroed under the timer wheel: when it fires, delayed_work_timer_fn
// queues the work on a NULL workqueue and the kernel panics (NULL
// pointer dereference in __queue_work, in the timer softirq; measured
// in the Debian 6.1.192 and 6.12.118 guests, never run on the host).
// The model stops the run there with a "crash" at "strp_init"
// (ErrKernelCrash): what the trace would observe next is a dead kernel.
func (k *kernel) skPsockInitStrp(sk *sock, p *psock) {
	k.reach(fnSkPsockInitStrp)
	if old := p.strp; old != nil {
		if old.timerPending {
			panic(kernelCrash{"strp_init", fmt.Sprintf("%s joins a stream-parser map again while the message timer of "+
				"the parser a delete stopped is queued: strp_init zeroes the queued delayed work, and the kernel "+
				"panics when it fires (NULL workqueue in __queue_work)", sk.Name)})
		}
		if old.head != nil {
			k.strpInitLeaks++
			k.freeSkb(old.head)
			old.head = nil
		}
	}
	p.strp = &strparser{psock: p, sk: sk, copiedSeq: k.tcp.CopiedSeq(sk), startNxt: k.tcp.CopiedSeq(sk) + uint32(k.tcp.Inq(sk))}
	p.State |= skPsockRxStrpEnabled
}

// skPsockStartStrp mirrors sk_psock_start_strp() (net/core/skmsg.c, v6.18).
func (k *kernel) skPsockStartStrp(sk *sock, p *psock) {
	k.reach(fnSkPsockStartStrp)
	if p.SavedDataReady != nil {
		return
	}
	p.SavedDataReady = sk.SkDataReady
	sk.SkDataReady = k.skPsockStrpDataReady
	sk.SkWriteSpace = k.skPsockWriteSpace
}

// skPsockStopStrp mirrors sk_psock_stop_strp() (net/core/skmsg.c, v6.18).
// With StopStrpSeq (patch fix-psock-delete-seq), as patched by
// testdata/patches/bpf-sockmap-stop-strp-copied-seq.patch: copied_seq
// moves up to the parser's cursor (psock->copied_seq), accounting the
// bytes tcp_bpf_strp_read_sock passed to the socket's own ingress_msg,
// which no tcp_bpf_recvmsg_parser will account now (fixes.go).
func (k *kernel) skPsockStopStrp(sk *sock, p *psock) {
	k.reach(fnSkPsockStopStrp)
	p.Progs.StreamParser = nil
	if p.SavedDataReady == nil {
		return
	}
	sk.SkDataReady = p.SavedDataReady
	p.SavedDataReady = nil
	if p.strp != nil {
		p.strp.stopped = true // strp_stop
		// The patch: copied_seq = psock->copied_seq when the socket is
		// TCP, SK_PSOCK_RX_STRP_ENABLED (psock->copied_seq was set by
		// sk_psock_init_strp) and after(psock->copied_seq, copied_seq).
		if k.prof.StopStrpSeq && p.testState(skPsockRxStrpEnabled) && int32(p.strp.copiedSeq-k.tcp.CopiedSeq(sk)) > 0 {
			k.setCopiedSeq(sk, p.strp.copiedSeq, "sk_psock_stop_strp")
		}
	}
}

// strpDone mirrors strp_done() (net/strparser/strparser.c, v6.18): free the
// message being assembled.
func (k *kernel) strpDone(s *strparser) {
	k.reach(fnStrpDone)
	s.stopped = true
	if s.head != nil {
		k.freeSkb(s.head)
		s.head = nil
	}
	s.cancelTimer() // cancel_delayed_work_sync
}

// cancelTimer is cancel_delayed_work(&strp->msg_timer_work).
func (s *strparser) cancelTimer() {
	s.timerGen++
	s.timerPending = false
}

// mutStrpNeedBytesOffByOne is a bug of the second zoo (mutation.go).
var mutStrpNeedBytesOffByOne = registerMutation("strp-need-bytes-off-by-one",
	"strp_data_ready waits while the queue holds <= need_bytes (for <): a message that arrives exactly complete is not parsed")

// skPsockStrpDataReady mirrors sk_psock_strp_data_ready()
// (net/core/skmsg.c, v6.18) → strp_data_ready() (net/strparser/strparser.c,
// v6.18): parse at once, or from the strparser work when a task owns the
// socket.
func (k *kernel) skPsockStrpDataReady(sk *sock) {
	k.reach(fnSkPsockStrpDataReady)
	p := skPsock(sk)
	if p == nil || p.strp == nil {
		return
	}
	s := p.strp
	if s.stopped {
		return
	}
	if sk.Owned {
		if !s.workQueued {
			s.workQueued = true
			k.s.queueWork("strp_work", func() {
				s.workQueued = false
				if s.stopped || sk.Owned {
					return
				}
				k.strpReadSock(s)
			})
		}
		return
	}
	if s.needBytes > 0 && (k.tcp.Inq(sk) < s.needBytes || k.mutated(mutStrpNeedBytesOffByOne) && k.tcp.Inq(sk) == s.needBytes) {
		return // strp_peek_len < need_bytes: wait for the whole message
	}
	k.strpReadSock(s)
}

// strpReadSock mirrors strp_read_sock() (net/strparser/strparser.c, v6.18)
// → tcp_bpf_strp_read_sock() (net/ipv4/tcp_bpf.c, v6.18): feed the receive
// queue to the parser; copied_seq advances except for the bytes passed to
// sk's own ingress queue, which tcp_bpf_recvmsg_parser accounts when it
// reads them.
func (k *kernel) strpReadSock(s *strparser) {
	k.reach(fnStrpReadSock)
	sk := s.sk
	s.ingressBytes = 0
	desc := &readDesc{Count: 1} // "give more than one skb per call"
	copied := k.tcp.ReadSock(sk, &s.copiedSeq, desc, func(desc *readDesc, skb *skBuff, off, n int) int {
		return k.strpRecv(s, desc, skb, off, n)
	})
	if copied < 0 {
		return
	}
	k.setCopiedSeq(sk, s.copiedSeq-uint32(s.ingressBytes), "tcp_bpf_strp_read_sock")
	k.tcp.RcvSpaceAdjust(sk)
	k.tcp.CleanupRbuf(sk, copied-s.ingressBytes)
}

// strpRecv mirrors __strp_recv() (net/strparser/strparser.c, v6.18):
// append the bytes to the message being assembled, ask the parser for
// its length, and hand every complete message to the verdict. It eats
// everything it is given, except after a parser error (a message longer
// than sk_rcvbuf: EMSGSIZE): strp_parser_err frees the message in
// progress and aborts, and the bytes of this skb not yet part of a
// complete message are not eaten, so they stay on sk_receive_queue.
func (k *kernel) strpRecv(s *strparser, desc *readDesc, skb *skBuff, off, n int) int {
	k.reach(fnStrpRecv)
	if s.stopped {
		// Unlike Linux, whose __strp_recv checks only strp->paused: a
		// parser stopped by an abort earlier in this read_sock gets the
		// rest of the skb again there, parses a new frame, fails the
		// same length check (or none was failed: stopped by a timeout or
		// a delete, then no read reaches here) and eats nothing, which
		// is what returning 0 at once does.
		return 0
	}
	// The message skbs are clones of the TCP skbs (skb_clone): each
	// carries the truesize of the skb it was cloned from, so a large skb
	// cut into small messages charges its truesize once per message.
	chunk := skb.cloneRange(off, n)
	if s.head == nil {
		s.head = chunk
		s.head.Truesize = skb.Truesize
	} else {
		s.head.Frags = append(s.head.Frags, chunk.Frags...)
		s.head.Len += chunk.Len
		s.head.Truesize += skb.Truesize
		chunk.Frags = nil
	}
	accum := s.head.Len - n // bytes of the message before this chunk
	eaten := 0              // bytes of this chunk in messages handed on
	for s.head != nil && !s.stopped {
		if s.fullLen == 0 {
			parser := s.psock.Progs.StreamParser
			l := s.head.Len
			if parser != nil {
				l = parser.runParser(s.head.Len)
			}
			if l == 0 {
				// Need more header to determine the length.
				if accum == 0 {
					s.startTimer()
				}
				break
			}
			if l > s.sk.SkRcvbuf {
				// strp_parser_err: the message in progress is freed,
				// and what this call has not eaten stays queued.
				k.freeSkb(s.head)
				s.head = nil
				k.strpAbort(s, syscall.EMSGSIZE)
				return eaten
			}
			s.fullLen = l
		}
		if s.head.Len < s.fullLen {
			// Message not complete yet. If the socket does not hold
			// the rest, wait for it (need_bytes) and stop reading.
			if s.fullLen-accum > k.tcp.Inq(s.sk) {
				if accum == 0 {
					s.startTimer()
				}
				s.needBytes = s.fullLen - s.head.Len
				s.needHead = s.head.Len
				desc.Count = 0
			}
			break
		}
		s.needBytes = 0
		// The message is the head itself when it holds exactly the
		// message; else a clone of its first fullLen bytes, and the
		// head, pulled past them, starts the next message (in Linux a
		// fresh clone of the last skb at the next offset; pulling keeps
		// the work linear in the messages an skb holds).
		msg := s.head
		s.head = nil
		if msg.Len > s.fullLen {
			s.head = msg
			msg = s.head.cloneRange(0, s.fullLen)
			msg.Truesize = s.head.Truesize
			k.pages.pullFront(s.head, s.fullLen)
			s.head.Truesize = skb.Truesize // a clone of the last skb
		}
		msg.BpfStrparser = true
		msg.StrpOffset, msg.StrpFullLen = 0, s.fullLen
		eaten += s.fullLen - accum
		s.fullLen = 0
		s.cancelTimer()
		accum = 0
		k.skPsockStrpRead(s, msg)
	}
	return n
}

// startTimer mirrors strp_start_timer() (net/strparser/strparser.c, v6.18):
// a message that is not complete within the socket's SO_RCVTIMEO aborts the
// parser.
func (s *strparser) startTimer() {
	s.sk.k.reach(fnStrparserStartTimer)
	to := s.sk.SkRcvtimeo
	if to == 0 || to == maxTimeout {
		return
	}
	s.timerGen++ // mod_delayed_work: one queued timer
	gen := s.timerGen
	s.timerPending = true
	k := s.sk.k
	k.s.addTimer("strp_msg_timeout", time.Duration(to), func() {
		if s.timerGen != gen {
			return // cancelled, or armed again
		}
		s.timerPending = false
		if !s.stopped && s.head != nil {
			k.strpAbort(s, errETIMEDOUT)
		}
	})
}

// strpStalled reports whether s holds, with the bytes past its cursor on
// sk_receive_queue, a whole message no larger than sk_rcvbuf that it has
// not parsed, with nothing left to make it parse: not stopped, no strp
// work queued, the socket not owned (its release would run the backlog),
// and some of the bytes arrived after the parser started (with a
// strp_data_ready). strp_data_ready parses as soon as tcp_inq reaches
// need_bytes, so in Linux a reader never finds a parser in that state.
// Unlike bytes queued before the psock, which wait for a read's
// tcp_data_ready (the known -EAGAIN at tcp_bpf_recvmsg_parser's entry).
func (k *kernel) strpStalled(s *strparser) bool {
	if s == nil || s.stopped || s.workQueued || s.sk.Owned {
		return false
	}
	sk := s.sk
	nxt := k.tcp.CopiedSeq(sk) + uint32(k.tcp.Inq(sk))
	if int32(nxt-s.startNxt) <= 0 {
		return false
	}
	have := 0 // data bytes past the parser's cursor (a FIN is no byte)
	for _, skb := range sk.SkReceiveQueue.all() {
		from := skb.Seq
		if int32(s.copiedSeq-from) > 0 {
			from = s.copiedSeq
		}
		if n := int(int32(skb.Seq + uint32(skb.Len) - from)); n > 0 {
			have += n
		}
	}
	if s.head != nil {
		have += s.head.Len
	}
	if have == 0 {
		return false
	}
	frame := s.fullLen
	if frame == 0 {
		frame = have
		if parser := s.psock.Progs.StreamParser; parser != nil {
			frame = parser.runParser(have)
		}
	}
	return frame > 0 && frame <= have && frame <= sk.SkRcvbuf
}

// strpNeedStale reports whether s waits on a need_bytes that a later
// read made stale (Stats.Stranded's StrpStaleNeed; not a kernel function).
func (s *strparser) strpNeedStale() bool {
	// __strp_recv() (net/strparser/strparser.c, v6.18) sets
	// strp->need_bytes only when the socket does not hold the rest of
	// the message (tcp_inq, which counts the bytes of sk's own ingress
	// messages until tcp_bpf_recvmsg_parser reads them), and a later read
	// that adds to the message without completing it leaves need_bytes
	// as it was, larger than what the message still misses.
	return s != nil && s.needBytes > 0 && s.head != nil && s.head.Len != s.needHead
}

// strpAbort mirrors strp_abort_strp() (net/strparser/strparser.c,
// v6.18), the strparser's abort_parser for a psock: cancel the message
// timer; once stopped, nothing more; else stop, free the message being
// assembled and forget need_bytes (the skb_head leak fix, in 6.12.86 and
// 6.12.118's tree; before it the head waited for strp_done, which no
// trace can tell apart: its bytes were eaten already), and report err on
// the socket (sk_err, sk_error_report). The bytes left on
// sk_receive_queue stay there: strp_data_ready()
// (net/strparser/strparser.c, v6.18) returns at once for a stopped parser.
func (k *kernel) strpAbort(s *strparser, err syscall.Errno) {
	k.reach(fnStrpAbort)
	s.cancelTimer()
	if s.stopped {
		return
	}
	s.stopped = true
	if s.head != nil {
		k.freeSkb(s.head)
		s.head = nil
	}
	s.needBytes = 0
	s.sk.SkErr = err
	s.sk.SkErrorReport(s.sk)
}

// skPsockStrpRead mirrors sk_psock_strp_read() (net/core/skmsg.c, v6.18):
// the verdict for one parsed message.
func (k *kernel) skPsockStrpRead(s *strparser, skb *skBuff) {
	k.reach(fnSkPsockStrpRead)
	sk := s.sk
	p := skPsock(sk)
	if p == nil {
		k.freeSkb(skb)
		return
	}
	ret := skDropV
	if prog := p.Progs.StreamVerdict; prog != nil {
		skb.BpfRedir, skb.BpfIngress = nil, false
		v := prog.runSkb(k, skb)
		skb.BpfStrparser = true
		ret = skPsockMapVerd(v, skb.BpfRedir != nil)
	}
	skb.Sk = nil // skb->sk = NULL: not charged to anyone yet
	k.skPsockVerdictApply(p, skb, ret)
}
