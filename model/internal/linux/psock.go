package linux

import (
	"syscall"
	"time"
)

// Verdicts of the kernel's enum __sk_action.
const (
	skDropV     = 0 // __SK_DROP
	skPassV     = 1 // __SK_PASS
	skRedirectV = 2 // __SK_REDIRECT
	skNoneV     = 3 // __SK_NONE
)

// psock state bits (enum sk_psock_state_bits).
const (
	skPsockTxEnabled     = 1 << 0 // SK_PSOCK_TX_ENABLED
	skPsockRxStrpEnabled = 1 << 1 // SK_PSOCK_RX_STRP_ENABLED
)

// skPsockProgs mirrors struct sk_psock_progs (include/linux/skmsg.h,
// v6.18).
type skPsockProgs struct {
	MsgParser     *prog // BPF_SK_MSG_VERDICT
	StreamParser  *prog // BPF_SK_SKB_STREAM_PARSER
	StreamVerdict *prog // BPF_SK_SKB_STREAM_VERDICT
	SkbVerdict    *prog // BPF_SK_SKB_VERDICT
}

// sockMapLink mirrors struct sk_psock_link (include/linux/skmsg.h, v6.18):
// the psock is in Map at Key, in the slot or element identified by Raw
// (link_raw).
type sockMapLink struct {
	Map *bpfMap
	Key int64
	Raw int64
}

// psock mirrors struct sk_psock (include/linux/skmsg.h, v6.18).
//
// Ownership: the psock is referenced (Refcnt) by each map link and,
// transiently, by every path that took sk_psock_get; when Refcnt drops to
// zero sk_psock_drop detaches it from the socket (SkUserData = nil, proto
// restored) and queues sk_psock_destroy, which frees IngressMsg,
// IngressSkb and Cork and puts SkRedir and the socket. The psock holds a
// reference on Sk (sock_hold) and on SkRedir.
//
// Invariants (CheckQueues): MsgTotLen equals the sum of the Sg.Size of
// the messages on IngressMsg; a psock without skPsockTxEnabled accepts no
// new message.
type psock struct {
	Sk           *sock
	SkRedir      *sock
	ApplyBytes   int
	CorkBytes    int
	Eval         int
	RedirIngress bool
	Cork         *skMsg
	Progs        skPsockProgs
	IngressSkb   skbQueue
	IngressMsg   []*skMsg
	// MsgTotLen is msg_tot_len: bytes queued on IngressMsg (the field
	// tcp_bpf_ioctl reports; 6.18.y backport of "bpf, sockmap: Fix
	// FIONREAD for sockmap").
	MsgTotLen int
	State     int
	Refcnt    int
	Links     []sockMapLink

	SkProto         *proto
	SavedDataReady  func(*sock)
	SavedWriteSpace func(*sock)

	// WorkState mirrors psock->work_state: a partially handled skb.
	WorkLen, WorkOff int
	workQueued       bool
	destroyed        bool

	strp *strparser

	// Splice is the loopback splice state (psock->splice, profile
	// loopback-splice, splice_loopback.go); nil until the first pair.
	Splice *skPsockSplice
}

// skPsock mirrors sk_psock() (include/linux/skmsg.h, v6.18): the psock
// attached to sk, if any.
func skPsock(sk *sock) *psock {
	sk.k.reach(fnSkPsock)
	return sk.SkUserData
}

// skPsockGet mirrors sk_psock_get() (include/linux/skmsg.h, v6.18): take a
// reference unless the psock is gone or dying.
func skPsockGet(sk *sock) *psock {
	sk.k.reach(fnSkPsockGet)
	p := sk.SkUserData
	if p == nil || p.Refcnt == 0 {
		return nil
	}
	p.Refcnt++
	return p
}

// skPsockPut mirrors sk_psock_put() (include/linux/skmsg.h, v6.18): the
// last reference drops the psock.
func (k *kernel) skPsockPut(sk *sock, p *psock) {
	k.reach(fnSkPsockPut)
	p.Refcnt--
	if p.Refcnt == 0 {
		k.skPsockDrop(sk, p)
	}
}

func (p *psock) testState(bit int) bool { return p.State&bit != 0 }

// skPsockInit mirrors sk_psock_init() (net/core/skmsg.c, v6.18).
func (k *kernel) skPsockInit(sk *sock) *psock {
	k.reach(fnSkPsockInit)
	p := &psock{
		Sk: sk, Eval: skNoneV, SkProto: sk.SkProt,
		SavedWriteSpace: sk.SkWriteSpace, State: skPsockTxEnabled, Refcnt: 1,
	}
	sk.SkUserData = p
	sockHold(sk)
	return p
}

// Second bug zoo: the mutations of this file (mutation.go).
var (
	mutIngressQueueHead = registerMutation("ingress-queue-head",
		"sk_psock_queue_msg adds the message at the head of ingress_msg (list_add for list_add_tail): readers get messages out of order")
	mutIngressExtraSkbGet = registerMutation("ingress-enqueue-extra-skb-get",
		"sk_psock_skb_ingress_enqueue takes skb_get even without take_ref: the skb of a message passed to its own socket is never freed")
	mutDropNoEatSkb = registerMutation("drop-verdict-no-eat-skb",
		"sk_psock_verdict_apply frees a dropped skb without tcp_eat_skb: copied_seq stays behind and tcp_poll reports stale EPOLLIN")
	mutDestroyNoZapIngress = registerMutation("destroy-no-zap-ingress",
		"sk_psock_destroy forgets __sk_psock_zap_ingress: messages still on ingress_msg at teardown leak their pages")
)

// skPsockQueueMsg mirrors sk_psock_queue_msg() (include/linux/skmsg.h,
// v6.18): append msg to ingress_msg if the psock still transmits, else free
// it. It reports whether msg was queued.
func (k *kernel) skPsockQueueMsg(p *psock, msg *skMsg) bool {
	k.reach(fnSkPsockQueueMsg)
	if p.testState(skPsockTxEnabled) {
		msg.markTags(TagIngress)
		if k.mutated(mutIngressQueueHead) {
			p.IngressMsg = append([]*skMsg{msg}, p.IngressMsg...)
		} else {
			p.IngressMsg = append(p.IngressMsg, msg)
		}
		p.MsgTotLen += msg.Sg.Size
		return true
	}
	k.skMsgFree(msg)
	return false
}

// skPsockDequeueMsg mirrors sk_psock_dequeue_msg() (include/linux/skmsg.h,
// v6.18).
func (p *psock) skPsockDequeueMsg() *skMsg {
	p.Sk.k.reach(fnPsockSkPsockDequeueMsg)
	if len(p.IngressMsg) == 0 {
		return nil
	}
	msg := p.IngressMsg[0]
	p.IngressMsg[0] = nil
	p.IngressMsg = p.IngressMsg[1:]
	p.MsgTotLen -= msg.Sg.Size
	return msg
}

// skPsockPeekMsg mirrors sk_psock_peek_msg() (include/linux/skmsg.h,
// v6.18).
func (p *psock) skPsockPeekMsg() *skMsg {
	p.Sk.k.reach(fnPsockSkPsockPeekMsg)
	if len(p.IngressMsg) == 0 {
		return nil
	}
	return p.IngressMsg[0]
}

// skPsockQueueEmpty mirrors sk_psock_queue_empty() (include/linux/skmsg.h,
// v6.18).
func skPsockQueueEmpty(p *psock) bool {
	p.Sk.k.reach(fnSkPsockQueueEmpty)
	return p == nil || len(p.IngressMsg) == 0
}

// skPsockDataReady mirrors sk_psock_data_ready() (include/linux/skmsg.h,
// v6.18): wake readers through the socket's original data_ready.
func skPsockDataReady(sk *sock, p *psock) {
	sk.k.reach(fnSkPsockDataReady)
	if p.SavedDataReady != nil {
		p.SavedDataReady(sk)
	} else {
		sk.SkDataReady(sk)
	}
}

// kfreeSkMsg mirrors kfree_sk_msg() (include/linux/skmsg.h, v6.18): consume
// the message's skb.
func (k *kernel) kfreeSkMsg(msg *skMsg) {
	k.reach(fnKfreeSkMsg)
	if msg.Skb != nil {
		k.freeSkb(msg.Skb)
		msg.Skb = nil
	}
}

var mutPeekConsumes = registerMutation("peek-consumes",
	"__sk_msg_recvmsg consumes the bytes it copies even under MSG_PEEK")

// msgReader is where __sk_msg_recvmsg moves the bytes of each
// scatterlist element: the read actor abstraction of Jiayuan Chen's
// "tcp_bpf: refactor recvmsg with read actor abstraction" (bpf-next v1
// 3/7, March 2026). recvmsg's actor copies to the user's iov (iovIter);
// the zero-copy splice_read's hands pages to a pipe (spliceActor). On
// mainline the actor is always the copy (copy_page_to_iter).
type msgReader interface {
	// left is the room left: bytes the reader still takes.
	left() int
	// actor moves up to n bytes at p[off:] and returns how many it took;
	// 0 means no room.
	actor(p *page, off, n int) int
}

// skMsgRecvmsg mirrors __sk_msg_recvmsg() (net/core/skmsg.c, v6.18 with
// the copied_from_self and msg_tot_len fixes): move bytes from the
// ingress messages through dst's actor, consuming unless MSG_PEEK. It
// returns the bytes moved, or -EFAULT when the first element holds
// nothing (a FIN message), and the bytes that came from sk's own stream.
func (k *kernel) skMsgRecvmsg(sk *sock, p *psock, dst msgReader, flags int) (copied int, err syscall.Errno, fromSelf int) {
	k.reach(fnSkMsgRecvmsg)
	peek := flags&msgPeek != 0
	length := dst.left()
	msgRx := p.skPsockPeekMsg()
	idx := 0 // msgRx's position on IngressMsg (the list walk of sk_psock_next_msg)
	for copied != length {
		if msgRx == nil {
			break
		}
		self := msgRx.Sk == sk
		i := msgRx.Sg.Start
		var sge *scatterlist
		for {
			sge = msgRx.elem(i)
			n := sge.Length
			if copied+n > length {
				n = length - copied
			}
			if n > 0 {
				n = dst.actor(sge.Page, sge.Offset, n)
			}
			if n == 0 {
				if copied == 0 {
					return 0, errEFAULT, fromSelf
				}
				if !peek {
					// Unlike Linux's copy fault (out: with sg.start left
					// on the elements already emptied, which no trace
					// reaches: the copy actor always takes what it is
					// offered), the zero-copy actor stops at a full
					// pipe, a normal event: the message keeps its
					// progress, else the next read would meet an empty
					// element and fail with -EFAULT.
					msgRx.Sg.Start = i
				}
				return copied, errOK, fromSelf
			}
			copied += n
			if self {
				fromSelf += n
			}
			if !peek || k.mutated(mutPeekConsumes) {
				page := sge.Page
				sge.Offset += n
				sge.Length -= n
				msgRx.Sg.Size -= n
				p.MsgTotLen -= n
				if sge.Length == 0 {
					i = skMsgIterVarNext(i)
					if msgRx.Skb == nil {
						k.pages.putPage(page)
					}
				}
			} else {
				if n != sge.Length {
					return copied, errOK, fromSelf
				}
				i = skMsgIterVarNext(i)
			}
			if copied == length {
				break
			}
			if i == msgRx.Sg.End || sge.Last {
				break
			}
		}
		if peek {
			// sk_psock_next_msg.
			idx++
			if idx >= len(p.IngressMsg) {
				break
			}
			msgRx = p.IngressMsg[idx]
			continue
		}
		msgRx.Sg.Start = i
		if sge.Length == 0 && (i == msgRx.Sg.End || sge.Last) {
			m := p.skPsockDequeueMsg()
			k.kfreeSkMsg(m)
		}
		msgRx = p.skPsockPeekMsg()
	}
	return copied, errOK, fromSelf
}

var mutPollMissesIngress = registerMutation("poll-misses-ingress",
	"the proto has no sock_is_readable (as before \"skmsg: Extract and reuse sk_msg_is_readable()\", v5.16): poll ignores ingress_msg")

// skMsgIsReadable mirrors sk_msg_is_readable() (net/core/skmsg.c, v6.18):
// poll's view of ingress_msg.
func skMsgIsReadable(sk *sock) bool {
	sk.k.reach(fnSkMsgIsReadable)
	p := skPsock(sk)
	return p != nil && len(p.IngressMsg) > 0 && !sk.k.mutated(mutPollMissesIngress)
}

// skPsockStop mirrors sk_psock_stop() (net/core/skmsg.c, v6.18): no more
// transmission, free the cork.
func (k *kernel) skPsockStop(p *psock) {
	k.reach(fnSkPsockStop)
	p.State &^= skPsockTxEnabled
	k.skPsockCorkFree(p)
}

// skPsockCorkFree mirrors sk_psock_cork_free() (include/linux/skmsg.h,
// v6.18).
func (k *kernel) skPsockCorkFree(p *psock) {
	k.reach(fnSkPsockCorkFree)
	if p.Cork != nil {
		k.skMsgFree(p.Cork)
		p.Cork = nil
	}
}

// skPsockDrop mirrors sk_psock_drop() (net/core/skmsg.c, v6.18): detach the
// psock from the socket and queue its destruction (an RCU work on
// system_wq).
func (k *kernel) skPsockDrop(sk *sock, p *psock) {
	k.reach(fnSkPsockDrop)
	if k.prof.LoopbackSplice {
		k.tcpBpfSpliceUnpair(p) // RFC bpf-next 2026-06, net/core/skmsg.c
	}
	k.skPsockRestoreProto(sk, p)
	sk.SkUserData = nil
	if p.Progs.StreamParser != nil {
		k.skPsockStopStrp(sk, p)
	} else if p.Progs.StreamVerdict != nil || p.Progs.SkbVerdict != nil {
		k.skPsockStopVerdict(sk, p)
	}
	k.skPsockStop(p)
	k.s.queueWork("sk_psock_destroy", func() { k.skPsockDestroy(p) })
}

// skPsockRestoreProto mirrors sk_psock_restore_proto()
// (include/linux/skmsg.h, v6.18) → tcp_bpf_update_proto(restore)
// (net/ipv4/tcp_bpf.c, v6.18).
func (k *kernel) skPsockRestoreProto(sk *sock, p *psock) {
	k.reach(fnSkPsockRestoreProto)
	sk.SkWriteSpace = p.SavedWriteSpace
	sk.SkProt = p.SkProto
}

// skPsockDestroy mirrors sk_psock_destroy() (net/core/skmsg.c, v6.18): free
// what the psock holds.
func (k *kernel) skPsockDestroy(p *psock) {
	k.reach(fnSkPsockDestroy)
	p.destroyed = true
	if p.strp != nil {
		k.strpDone(p.strp)
	}
	if !k.mutated(mutDestroyNoZapIngress) {
		k.skPsockZapIngress(p)
	}
	p.Progs = skPsockProgs{}
	p.Links = nil
	k.skPsockCorkFree(p)
	if p.SkRedir != nil {
		sockPut(p.SkRedir)
		p.SkRedir = nil
	}
	if k.prof.LoopbackSplice {
		k.tcpBpfSpliceDestroy(p) // RFC bpf-next 2026-06, net/core/skmsg.c
	}
	sockPut(p.Sk)
}

// skPsockZapIngress mirrors __sk_psock_zap_ingress() (net/core/skmsg.c,
// v6.18): drop ingress_skb and purge ingress_msg.
func (k *kernel) skPsockZapIngress(p *psock) {
	k.reach(fnSkPsockZapIngress)
	for skb := p.IngressSkb.dequeue(); skb != nil; skb = p.IngressSkb.dequeue() {
		skb.BpfRedir = nil
		k.freeSkb(skb)
	}
	for _, msg := range p.IngressMsg {
		p.MsgTotLen -= msg.Sg.Size
		k.skMsgFree(msg)
	}
	p.IngressMsg = nil
}

// skPsockMapVerd mirrors sk_psock_map_verd() (net/core/skmsg.c, v6.18).
func skPsockMapVerd(verdict int, redir bool) int {
	reach(fnSkPsockMapVerd)
	if verdict == skPass {
		if redir {
			return skRedirectV
		}
		return skPassV
	}
	return skDropV
}

// skPsockStartVerdict mirrors sk_psock_start_verdict() (net/core/skmsg.c,
// v6.18).
func (k *kernel) skPsockStartVerdict(sk *sock, p *psock) {
	k.reach(fnSkPsockStartVerdict)
	if p.SavedDataReady != nil {
		return
	}
	p.SavedDataReady = sk.SkDataReady
	sk.SkDataReady = k.skPsockVerdictDataReady
	sk.SkWriteSpace = k.skPsockWriteSpace
}

// skPsockStopVerdict mirrors sk_psock_stop_verdict() (net/core/skmsg.c,
// v6.18).
func (k *kernel) skPsockStopVerdict(sk *sock, p *psock) {
	k.reach(fnSkPsockStopVerdict)
	p.Progs.StreamVerdict = nil
	p.Progs.SkbVerdict = nil
	if p.SavedDataReady == nil {
		return
	}
	sk.SkDataReady = p.SavedDataReady
	p.SavedDataReady = nil
}

// skPsockWriteSpace mirrors sk_psock_write_space() (net/core/skmsg.c,
// v6.18): kick the backlog work, then the original write_space.
func (k *kernel) skPsockWriteSpace(sk *sock) {
	k.reach(fnSkPsockWriteSpace)
	p := skPsock(sk)
	var ws func(*sock)
	if p != nil {
		if p.testState(skPsockTxEnabled) {
			k.scheduleWork(p, 0)
		}
		ws = p.SavedWriteSpace
	}
	if ws != nil {
		ws(sk)
	}
}

// skPsockVerdictDataReady mirrors sk_psock_verdict_data_ready()
// (net/core/skmsg.c, v6.18): run the verdict on every queued skb
// (tcp_read_skb), then wake readers.
func (k *kernel) skPsockVerdictDataReady(sk *sock) {
	k.reach(fnSkPsockVerdictDataReady)
	if sk.released {
		return // sk->sk_socket is NULL once the file is released
	}
	copied := k.tcp.ReadSkb(sk, k.skPsockVerdictRecv)
	if copied >= 0 {
		if p := skPsock(sk); p != nil {
			skPsockDataReady(sk, p)
		}
	}
}

// skPsockVerdictRecv mirrors sk_psock_verdict_recv() (net/core/skmsg.c,
// v6.18): run the stream (or skb) verdict program on skb and apply the
// verdict. It takes ownership of skb and returns its length, or a negative
// errno.
func (k *kernel) skPsockVerdictRecv(sk *sock, skb *skBuff) int {
	k.reach(fnSkPsockVerdictRecv)
	n := skb.Len
	p := skPsock(sk)
	if p == nil {
		k.tcp.EatSkb(sk, skb)
		k.freeSkb(skb)
		return 0
	}
	ret := skDropV
	prog := p.Progs.StreamVerdict
	if prog == nil {
		prog = p.Progs.SkbVerdict
	}
	if prog != nil {
		skb.BpfRedir, skb.BpfIngress = nil, false
		v := prog.runSkb(k, skb)
		ret = skPsockMapVerd(v, skb.BpfRedir != nil)
	}
	if err := k.skPsockVerdictApply(p, skb, ret); err < 0 {
		n = err
	}
	return n
}

// skPsockVerdictApply mirrors sk_psock_verdict_apply() (net/core/skmsg.c,
// v6.18). It takes ownership of skb. With SelfRedirectPass (6.12.118,
// Debian 6.1) a redirect with BPF_F_INGRESS to the psock's own socket is
// an SK_PASS, as there.
func (k *kernel) skPsockVerdictApply(p *psock, skb *skBuff, verdict int) int {
	k.reach(fnSkPsockVerdictApply)
	if k.prof.SelfRedirectPass && verdict == skRedirectV && skb.BpfIngress && skb.BpfRedir == p.Sk {
		verdict = skPassV
	}
	err := 0
	switch verdict {
	case skPassV:
		err = -int(errEIO)
		skOther := p.Sk
		if skOther.SockDead || !p.testState(skPsockTxEnabled) {
			break // out_free
		}
		skb.BpfIngress = true
		if p.IngressSkb.empty() {
			off, n := 0, skb.Len
			if skb.BpfStrparser {
				off, n = skb.StrpOffset, skb.StrpFullLen
			}
			err = k.skPsockSkbIngressSelf(p, skb, off, n, false)
		}
		if err < 0 {
			if p.testState(skPsockTxEnabled) {
				p.IngressSkb.tail(skb)
				k.scheduleWork(p, 0)
				err = 0
			}
			if err < 0 {
				break // out_free
			}
		}
		return err
	case skRedirectV:
		k.tcp.EatSkb(p.Sk, skb)
		return k.skPsockSkbRedirect(p, skb)
	}
	// __SK_DROP, out_free.
	skb.BpfRedir = nil
	if !k.mutated(mutDropNoEatSkb) {
		k.tcp.EatSkb(p.Sk, skb)
	}
	k.freeSkb(skb)
	return err
}

// skPsockSkbRedirect mirrors sk_psock_skb_redirect() (net/core/skmsg.c,
// v6.18): queue skb on the target's ingress_skb and kick its backlog work.
func (k *kernel) skPsockSkbRedirect(from *psock, skb *skBuff) int {
	k.reach(fnSkPsockSkbRedirect)
	other := skb.BpfRedir
	if other == nil {
		k.freeSkb(skb)
		return -int(errEIO)
	}
	po := skPsock(other)
	if po == nil || other.SockDead || !po.testState(skPsockTxEnabled) {
		skb.BpfRedir = nil
		k.freeSkb(skb)
		return -int(errEIO)
	}
	po.IngressSkb.tail(skb)
	k.scheduleWork(po, 0)
	return 0
}

// scheduleWork mirrors schedule_delayed_work(&psock->work, delay)
// (include/linux/workqueue.h, v6.18): the backlog work runs as a kernel
// context (at once, or after the next op for a delay of a jiffy or more).
// A work already queued is not queued twice.
func (k *kernel) scheduleWork(p *psock, jiffies int) {
	k.reach(fnScheduleWork)
	if p.workQueued {
		return
	}
	p.workQueued = true
	run := func() {
		p.workQueued = false
		k.skPsockBacklog(p)
	}
	if jiffies == 0 {
		k.s.queueWork("sk_psock_backlog", run)
	} else {
		k.s.deferWork("sk_psock_backlog", time.Duration(jiffies)*time.Millisecond, run)
	}
}

// skPsockSkbIngressSelf mirrors sk_psock_skb_ingress_self()
// (net/core/skmsg.c, v6.18): put an skb from sk's own stream on its
// ingress_msg (no memory check: the skb is already charged to sk). With
// takeRef the message takes a reference of its own (skb_get) and the caller
// keeps its; without, the message takes over the caller's. On failure the
// caller keeps the skb.
func (k *kernel) skPsockSkbIngressSelf(p *psock, skb *skBuff, off, n int, takeRef bool) int {
	k.reach(fnSkPsockSkbIngressSelf)
	msg := newSkMsg()
	sk := p.Sk
	skSetOwnerR(skb, sk)
	msg.Sk = sk
	if skb.BpfStrparser && p.strp != nil {
		p.strp.ingressBytes += n // psock->ingress_bytes
	}
	return k.skPsockSkbIngressEnqueue(skb, off, n, p, sk, msg, takeRef)
}

// skPsockSkbIngress mirrors sk_psock_skb_ingress() (net/core/skmsg.c,
// v6.18): like the self variant for an skb of another socket, after
// checking the receive memory. The backlog calls it: the message always
// takes its own reference.
func (k *kernel) skPsockSkbIngress(p *psock, skb *skBuff, off, n int) int {
	k.reach(fnSkPsockSkbIngress)
	sk := p.Sk
	if skb.Sk == sk {
		return k.skPsockSkbIngressSelf(p, skb, off, n, true)
	}
	// sk_psock_create_ingress_msg.
	if sk.SkRmemAlloc > sk.SkRcvbuf {
		return -int(errEAGAIN)
	}
	msg := newSkMsg()
	skSetOwnerR(skb, sk)
	return k.skPsockSkbIngressEnqueue(skb, off, n, p, sk, msg, true)
}

// skPsockSkbIngressEnqueue mirrors sk_psock_skb_ingress_enqueue()
// (net/core/skmsg.c, v6.18): map the skb's bytes [off, off+n) into the
// message (skb_to_sgvec), hand the skb to the message (msg->skb =
// take_ref ? skb_get(skb) : skb), queue it and wake readers.
func (k *kernel) skPsockSkbIngressEnqueue(skb *skBuff, off, n int, p *psock, sk *sock, msg *skMsg, takeRef bool) int {
	k.reach(fnSkPsockSkbIngressEnqueue)
	if sgvecElems(skb, off, n) > maxMsgFrags {
		// skb_to_sgvec fails when the fragments (frags and frag_list:
		// a stream parser's message aggregates skbs) outnumber
		// MAX_MSG_FRAGS; the skb is linearized and mapped again
		// (net/core/skmsg.c, as in gregkh/linux 1861d369).
		k.skbLinearize(skb)
	}
	num := skbToSgvec(skb, msg, off, n)
	msg.Sg.Start = 0
	msg.Sg.Size = n
	msg.Sg.End = num
	if takeRef || k.mutated(mutIngressExtraSkbGet) {
		skb.skbGet()
	}
	msg.Skb = skb
	k.skPsockQueueMsg(p, msg)
	skPsockDataReady(sk, p)
	return n
}

// sgvecElems is the number of scatterlist elements skb_to_sgvec needs
// for the bytes [off, off+n) of skb.
func sgvecElems(skb *skBuff, off, n int) int {
	num := 0
	for _, f := range skb.Frags {
		if n <= 0 {
			break
		}
		if off >= f.Size {
			off -= f.Size
			continue
		}
		num++
		n -= f.Size - off
		off = 0
	}
	return num
}

// skbToSgvec mirrors skb_to_sgvec() (net/core/skbuff.c, v6.18): one
// scatterlist element per fragment piece of [off, off+n), the last one
// marked. It returns the number of elements.
func skbToSgvec(skb *skBuff, msg *skMsg, off, n int) int {
	reach(fnSkbToSgvec)
	num := 0
	for _, f := range skb.Frags {
		if n == 0 {
			break
		}
		if off >= f.Size {
			off -= f.Size
			continue
		}
		m := f.Size - off
		if m > n {
			m = n
		}
		msg.Sg.Data[num] = scatterlist{Page: f.Page, Offset: f.Off + off, Length: m}
		num++
		n -= m
		off = 0
	}
	if num > 0 {
		msg.Sg.Data[num-1].Last = true
	}
	return num
}

// skPsockBacklog mirrors sk_psock_backlog() (net/core/skmsg.c, v6.18): the
// work that moves redirected skbs into a psock's socket, ingress or egress.
func (k *kernel) skPsockBacklog(p *psock) {
	k.reach(fnSkPsockBacklog)
	if p.destroyed || skPsock(p.Sk) != p {
		return
	}
	if skPsockGet(p.Sk) == nil {
		return
	}
	defer k.skPsockPut(p.Sk, p)
	for handled := 0; ; handled++ {
		skb := p.IngressSkb.peek()
		if skb == nil {
			break
		}
		if handled == backlogBatch {
			// Unlike Linux, which keeps looping while redirects feed
			// the queue (a kworker spinning on a redirect loop), the
			// model requeues the work so that time and threads go on.
			k.scheduleWork(p, 0)
			return
		}
		off, n := 0, skb.Len
		if skb.BpfStrparser {
			off, n = skb.StrpOffset, skb.StrpFullLen
		}
		if p.WorkLen != 0 {
			n, off = p.WorkLen, p.WorkOff
		}
		ingress := skb.BpfIngress
		skb.BpfRedir, skb.BpfIngress = nil, false
		for {
			ret := -int(errEIO)
			if !p.Sk.SockDead {
				ret = k.skPsockHandleSkb(p, skb, off, n, ingress)
			}
			if ret <= 0 {
				if ret == -int(errEAGAIN) {
					if p.testState(skPsockTxEnabled) {
						p.WorkLen, p.WorkOff = n, off
						skb.BpfIngress = ingress
						k.scheduleWork(p, 1)
					}
					return
				}
				// Hard errors break the pipe (sk_psock_report_error)
				// and stop: the skb stays on ingress_skb until
				// sk_psock_destroy drops it. An ingress that returned 0
				// queued a message for a zero-length skb (a redirected
				// FIN) with a reference of its own (take_ref), so both
				// hold it.
				e := syscall.Errno(-ret)
				if ret == 0 {
					e = errEPIPE
				}
				p.Sk.SkErr = e
				p.Sk.SkErrorReport(p.Sk)
				p.State &^= skPsockTxEnabled
				return
			}
			off += ret
			n -= ret
			if n == 0 {
				break
			}
		}
		p.WorkLen, p.WorkOff = 0, 0
		// The entire skb is sent: dequeue it and drop the backlog's
		// reference (an ingress message holds its own).
		p.IngressSkb.dequeue()
		k.freeSkb(skb)
	}
}

// backlogBatch bounds the skbs one run of the backlog work handles.
const backlogBatch = 64

// skPsockHandleSkb mirrors sk_psock_handle_skb() (net/core/skmsg.c, v6.18):
// egress sends the bytes out of the psock's socket (skb_send_sock), ingress
// queues them on its ingress_msg.
func (k *kernel) skPsockHandleSkb(p *psock, skb *skBuff, off, n int, ingress bool) int {
	k.reach(fnSkPsockHandleSkb)
	if !ingress {
		sk := p.Sk
		if !k.tcp.StreamIsWriteable(sk) {
			return -int(errEAGAIN)
		}
		return k.skbSendSock(sk, skb, off, n)
	}
	return k.skPsockSkbIngress(p, skb, off, n)
}

// skbSendSock mirrors skb_send_sock() (net/core/skbuff.c, v6.18): sendmsg
// through the socket's proto (MSG_DONTWAIT|MSG_SPLICE_PAGES) from the
// kworker, fragment by fragment.
func (k *kernel) skbSendSock(sk *sock, skb *skBuff, off, n int) int {
	k.reach(fnSkbSendSock)
	if sk.released {
		return -int(errEINVAL)
	}
	buf := make([]byte, n)
	tags := skb.copyBitsTagged(off, buf)
	sent, err := sk.SkProt.Sendmsg(k.s.kernelTask, sk, newSrcKernel(buf, tags), msgDontwait|msgNosignal)
	if err != 0 {
		if sent > 0 {
			return sent
		}
		return -int(err)
	}
	return sent
}

// CheckQueues verifies the psock queue invariants and returns a
// description of the first violation, or "".
func (p *psock) CheckQueues() string {
	total := 0
	for _, m := range p.IngressMsg {
		if s := m.CheckRing(); s != "" {
			return "ingress msg: " + s
		}
		total += m.Sg.Size
	}
	if total != p.MsgTotLen {
		return "msg_tot_len differs from the bytes on ingress_msg"
	}
	return ""
}
