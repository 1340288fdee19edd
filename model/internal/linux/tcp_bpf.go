package linux

import "syscall"

// tcp_bpf_prots configurations.
const (
	tcpBpfBase = iota // TCP_BPF_BASE
	tcpBpfTx          // TCP_BPF_TX
	tcpBpfRx          // TCP_BPF_RX
	tcpBpfTxRx        // TCP_BPF_TXRX
)

var tcpBpfConfigNames = [...]string{"tcp_bpf_base", "tcp_bpf_tx", "tcp_bpf_rx", "tcp_bpf_txrx"}

// tcpBpfProto mirrors tcp_bpf_rebuild_protos() (net/ipv4/tcp_bpf.c,
// v6.18): the base proto with close, recvmsg, sock_is_readable and (6.18)
// ioctl replaced; TX adds sendmsg; RX and TXRX read through the parser
// variant of recvmsg.
func (k *kernel) tcpBpfProto(base *proto, config int) *proto {
	k.reach(fnTcpBpfProto)
	p := *base
	p.Name = tcpBpfConfigNames[config]
	p.Close = k.sockMapClose
	p.Recvmsg = k.tcpBpfRecvmsg
	p.SockIsReadable = skMsgIsReadable
	if k.prof.LoopbackSplice && !k.prof.SpliceSeq {
		// RFC bpf-next 2026-06: TCP_BPF_BASE gets the splice sendmsg
		// (TX and TXRX override it below) and tcp_bpf_is_readable.
		// The tcp_splice module (SpliceSeq) runs on a mainline tcp_bpf.
		p.Sendmsg = k.tcpBpfSpliceSendmsg
		p.SockIsReadable = tcpBpfIsReadable
	}
	if k.prof.TCPBpfIoctl {
		p.Ioctl = k.tcpBpfIoctl
	}
	if config == tcpBpfTx || config == tcpBpfTxRx {
		p.Sendmsg = k.tcpBpfSendmsg
	}
	if config == tcpBpfRx || config == tcpBpfTxRx {
		p.Recvmsg = k.tcpBpfRecvmsgParser
	}
	if f := k.tcpBpfSpliceReadFor(config); f != nil {
		p.SpliceRead = f
	}
	return &p
}

// tcpBpfUpdateProto mirrors tcp_bpf_update_proto(sk, psock, false)
// (net/ipv4/tcp_bpf.c, v6.18): pick the proto by the psock's programs.
func (k *kernel) tcpBpfUpdateProto(sk *sock, p *psock) {
	k.reach(fnTcpBpfUpdateProto)
	config := tcpBpfBase
	if p.Progs.MsgParser != nil {
		config = tcpBpfTx
	}
	if p.Progs.StreamVerdict != nil || p.Progs.SkbVerdict != nil {
		if config == tcpBpfTx {
			config = tcpBpfTxRx
		} else {
			config = tcpBpfRx
		}
	}
	base := p.SkProto
	if k.prof.SpliceSeq {
		// tcp_bpf_prots[TCP_BPF_IPV4] are built from tcp_prot, not from
		// the proto the psock saved: a tcp_splice clone (splice_seq.go)
		// is bypassed while the socket has a psock.
		base = k.tcpProt()
	}
	sk.SkProt = k.tcpBpfProto(base, config)
}

// tcpBpfIoctl mirrors tcp_bpf_ioctl() (net/ipv4/tcp_bpf.c, v6.18) as the
// 6.18.y host runs it (the backport of "bpf, sockmap: Fix FIONREAD for
// sockmap"): SIOCINQ reports the bytes on the psock's ingress_msg
// (msg_tot_len) and nothing of sk_receive_queue.
//
// With FIONREADRecvQueue it mirrors tcp_bpf_ioctl() (net/ipv4/tcp_bpf.c,
// v6.12.118, with "bpf, sockmap: Account for receive queue in FIONREAD
// without a verdict program"): without a psock it answers as tcp_ioctl,
// and a psock with neither a stream nor an skb verdict adds tcp_inq to
// msg_tot_len, for the peer's bytes stay on sk_receive_queue there.
//
// The loopback-splice RFC leaves tcp_bpf_ioctl alone, so bytes in a paired
// socket's ring are never counted: on the RFC's 6.12.118 kernel, FIONREAD
// is 0 with "hello" in the ring, and 3617 (the TCP tail) with 16383 bytes
// in the ring before it (testdata/traces/loopback/rfc_fionread_ring.trace).
func (k *kernel) tcpBpfIoctl(t *task, sk *sock, cmd int) (int, syscall.Errno) {
	k.reach(fnTcpBpfIoctl)
	if cmd != siocinq {
		return k.tcpIoctl(t, sk, cmd)
	}
	if sk.State == tcpListen {
		return 0, errEINVAL
	}
	inq := 0
	p := skPsockGet(sk)
	if p == nil && k.prof.FIONREADRecvQueue {
		return k.tcpIoctl(t, sk, cmd)
	}
	if p != nil {
		inq = p.MsgTotLen
		if k.prof.FIONREADRecvQueue && p.Progs.StreamVerdict == nil && p.Progs.SkbVerdict == nil {
			inq += k.tcp.Inq(sk)
		}
		if !k.mutated(mutIoctlNoPsockPut) {
			k.skPsockPut(sk, p)
		}
	}
	return inq, errOK
}

// The bug zoo's mutations of this file (mutation.go).
var (
	mutApplyIngressLoss = registerMutation("apply-ingress-loss",
		"bpf_tcp_ingress: apply_bytes ends mid-element without stepping back, losing the element's rest (fixed in v6.2 by \"bpf, sockmap: Fix data loss caused by using apply_bytes on ingress redirect\")")
	mutIngressNoWakeup = registerMutation("ingress-no-wakeup",
		"bpf_tcp_ingress queues the message without sk_psock_data_ready: a blocked reader sleeps through it")
	mutSenderNoPsockRef = registerMutation("sender-no-psock-ref",
		"tcp_bpf_sendmsg uses the psock without holding a reference: a map delete racing the sender frees it under it")
	mutRedirectSockPutTwice = registerMutation("redirect-sock-put-twice",
		"tcp_bpf_send_verdict keeps eval across more_data iterations, so a redirect puts sk_redir again on each (fixed in v6.1 by \"bpf, sockmap: Fix repeated calls to sock_put() when msg has more_data\")")
	mutFinMsgEfault = registerMutation("fin-msg-efault",
		"tcp_bpf_recvmsg_parser returns sk_msg_recvmsg's -EFAULT for the FIN message instead of EOF (as before \"bpf, sockmap: Handle fin correctly\", v6.4)")
	mutCopiedSeqDrift = registerMutation("copied-seq-drift",
		"tcp_bpf_recvmsg_parser does not advance copied_seq by the bytes read from its own stream: FIONREAD (tcp_inq) and the window drift")
)

// Second bug zoo: more mutations of this file (mutation.go).
var (
	mutIoctlNoPsockPut = registerMutation("ioctl-no-psock-put",
		"tcp_bpf_ioctl takes the psock for SIOCINQ and never puts it: the psock outlives the socket's teardown")
	mutApplyBytesNoDecrement = registerMutation("apply-bytes-no-decrement",
		"sk_msg_apply_bytes never lowers apply_bytes by the bytes sent: the verdict is not rerun when the window is used up")
	mutPushMoreOnLast = registerMutation("push-more-on-last",
		"tcp_bpf_push tests size <= sge->length for MSG_MORE: every piece, the last too, goes with MSG_MORE and TCP holds it")
	mutRedirNoPsockPut = registerMutation("redir-no-psock-put",
		"tcp_bpf_sendmsg_redir returns without sk_psock_put on the target: each redirected send leaks a psock reference")
	mutVerdictDropsIngressFlag = registerMutation("verdict-drops-ingress-flag",
		"sk_psock_msg_verdict does not carry BPF_F_INGRESS into redir_ingress: an ingress redirect is sent out of the target instead")
)

// bpfTCPIngress mirrors bpf_tcp_ingress() (net/ipv4/tcp_bpf.c, v6.18): move
// apply_bytes (or all) of msg into a new message on sk's ingress_msg and
// wake sk's readers. The pages move with the elements; an element split
// between the two messages gets a second page reference.
func (k *kernel) bpfTCPIngress(t *task, sk *sock, p *psock, msg *skMsg, applyBytes int) syscall.Errno {
	k.reach(fnBpfTCPIngress)
	apply := applyBytes != 0
	tmp := &skMsg{} // kzalloc: no end marker
	sk.lockSock(t)
	tmp.Sg.Start = msg.Sg.Start
	i := msg.Sg.Start
	for {
		sge := msg.elem(i)
		size := sge.Length
		if apply && applyBytes < size {
			size = applyBytes
		}
		skMsgXfer(tmp, msg, i, size)
		if sge.Length != 0 {
			getPage(tmp.elem(i).Page)
		}
		i = skMsgIterVarNext(i)
		tmp.Sg.End = i
		if apply {
			applyBytes -= size
			if applyBytes == 0 {
				if sge.Length != 0 && !k.mutated(mutApplyIngressLoss) {
					i = skMsgIterVarPrev(i)
				}
				break
			}
		}
		if i == msg.Sg.End {
			break
		}
	}
	msg.Sg.Start = i
	k.skPsockQueueMsg(p, tmp)
	if !k.mutated(mutIngressNoWakeup) {
		skPsockDataReady(sk, p)
	}
	sk.releaseSock()
	return errOK
}

// tcpBpfPush mirrors tcp_bpf_push() (net/ipv4/tcp_bpf.c, v6.18): send
// apply_bytes (or all) of msg out of sk with MSG_SPLICE_PAGES, element by
// element, each but an element's last piece with MSG_MORE. 6.1.y has the
// same function; its TCP copies the pieces instead (tcpBpfSendPiece).
//
// Precondition: the caller owns sk.
func (k *kernel) tcpBpfPushLocked(t *task, sk *sock, msg *skMsg, applyBytes, flags int) syscall.Errno {
	k.reach(fnTcpBpfPushLocked)
	sk.sockOwnedByMe(t)
	apply := applyBytes != 0
	for {
		sge := msg.elem(msg.Sg.Start)
		size := sge.Length
		if apply && applyBytes < size {
			size = applyBytes
		}
		off := sge.Offset
		page := sge.Page
		for {
			f := flags
			if (size < sge.Length || k.mutated(mutPushMoreOnLast) && size == sge.Length) && msg.Sg.Start != msg.Sg.End {
				f |= msgMore
			}
			ret, err := k.tcpBpfSendPiece(t, sk, page, off, size, f)
			if ret <= 0 {
				return err
			}
			if apply {
				applyBytes -= ret
			}
			msg.Sg.Size -= ret
			sge.Offset += ret
			sge.Length -= ret
			if ret == size {
				break
			}
			size -= ret
			off += ret
		}
		if sge.Length == 0 {
			k.pages.putPage(page)
			msg.Sg.Start = skMsgIterVarNext(msg.Sg.Start)
			*sge = scatterlist{}
			if msg.Sg.Start == msg.Sg.End {
				break
			}
		}
		if apply && applyBytes == 0 {
			break
		}
	}
	return errOK
}

// tcpBpfSendmsgRedir mirrors tcp_bpf_sendmsg_redir() (net/ipv4/tcp_bpf.c,
// v6.18): ingress into the target's psock, or push out of the target.
func (k *kernel) tcpBpfSendmsgRedir(t *task, sk *sock, ingress bool, msg *skMsg, bytes, flags int) syscall.Errno {
	k.reach(fnTcpBpfSendmsgRedir)
	p := skPsockGet(sk)
	if p == nil {
		return errEPIPE
	}
	var err syscall.Errno
	if ingress {
		err = k.bpfTCPIngress(t, sk, p, msg, bytes)
	} else {
		sk.lockSock(t)
		err = k.tcpBpfPushLocked(t, sk, msg, bytes, flags)
		sk.releaseSock()
	}
	if !k.mutated(mutRedirNoPsockPut) {
		k.skPsockPut(sk, p)
	}
	return err
}

// skPsockMsgVerdict mirrors sk_psock_msg_verdict() (net/core/skmsg.c,
// v6.18): run the sk_msg verdict and record apply_bytes and the redirect
// target in the psock.
func (k *kernel) skPsockMsgVerdict(sk *sock, p *psock, msg *skMsg) int {
	k.reach(fnSkPsockMsgVerdict)
	prog := p.Progs.MsgParser
	if prog == nil {
		return skPassV
	}
	k.noteMsgVerdict(sk)
	ret := skPsockMapVerd(prog.runMsg(msg), msg.SkRedir != nil)
	p.ApplyBytes = msg.ApplyBytes
	if ret == skRedirectV {
		if p.SkRedir != nil {
			sockPut(p.SkRedir)
			p.SkRedir = nil
		}
		if msg.SkRedir == nil {
			return skDropV
		}
		p.RedirIngress = msg.Flags&bpfFIngress != 0 && !k.mutated(mutVerdictDropsIngressFlag)
		p.SkRedir = msg.SkRedir
		sockHold(p.SkRedir)
	}
	return ret
}

// skMsgApplyBytes mirrors sk_msg_apply_bytes() (include/linux/skmsg.h,
// v6.18).
func (k *kernel) skMsgApplyBytes(p *psock, bytes int) {
	k.reach(fnSkMsgApplyBytes)
	if p.ApplyBytes != 0 {
		if bytes > p.ApplyBytes {
			p.ApplyBytes = 0
		} else if !k.mutated(mutApplyBytesNoDecrement) {
			p.ApplyBytes -= bytes
		}
	}
}

// tcpBpfSendVerdictLocked mirrors tcp_bpf_send_verdict() (net/ipv4/tcp_bpf.c,
// v6.18): run the verdict (once per apply_bytes window), cork, then pass,
// redirect or drop tosend bytes, looping while the message has data. With
// CorkCopyAtEnd (patch fix-cork-copybreak), as patched by
// testdata/patches/bpf-sockmap-cork-copy-position.patch.
//
// Precondition: the caller owns sk. The socket lock is dropped around a
// redirect, as in the kernel.
func (k *kernel) tcpBpfSendVerdictLocked(t *task, sk *sock, p *psock, msg *skMsg, copied *int, flags int) syscall.Errno {
	k.reach(fnTcpBpfSendVerdictLocked)
	sk.sockOwnedByMe(t)
	enospc := msg.full()
	delta := 0
	eval := skNoneV
	for {
		if p.Eval == skNoneV {
			delta = msg.Sg.Size
			p.Eval = k.skPsockMsgVerdict(sk, p, msg)
			delta -= msg.Sg.Size
		}
		if msg.CorkBytes != 0 && msg.CorkBytes > msg.Sg.Size && !enospc {
			p.CorkBytes = msg.CorkBytes - msg.Sg.Size
			if p.Cork == nil {
				p.Cork = &skMsg{}
			}
			if k.prof.CorkCopyAtEnd {
				// tcp_bpf_cork_copy_at_end() (net/ipv4/tcp_bpf.c,
				// testdata/patches/bpf-sockmap-cork-copy-position.patch):
				// every byte msg holds was copied in, so the next
				// send copies after the last one, not at a copybreak
				// that tcp_bpf_push's advance of the element left
				// stale (fixes.go).
				if msg.Sg.Size == 0 {
					msg.Sg.Curr, msg.Sg.Copybreak = msg.Sg.Start, 0
				} else {
					last := skMsgIterVarPrev(msg.Sg.End)
					msg.Sg.Curr, msg.Sg.Copybreak = last, msg.Sg.Data[last].Length
				}
			}
			if p.Cork != msg {
				*p.Cork = *msg // memcpy(psock->cork, msg, sizeof(*msg))
			}
			return errOK
		}
		tosend := msg.Sg.Size
		if p.ApplyBytes != 0 && p.ApplyBytes < tosend {
			tosend = p.ApplyBytes
		}
		if !k.mutated(mutRedirectSockPutTwice) {
			eval = skNoneV
		}
		var ret syscall.Errno
		cork := false
		switch p.Eval {
		case skPassV:
			ret = k.tcpBpfPushLocked(t, sk, msg, tosend, flags)
			if ret != 0 {
				*copied -= k.skMsgFree(msg)
				break
			}
			k.skMsgApplyBytes(p, tosend)
		case skRedirectV:
			redirIngress := p.RedirIngress
			skRedir := p.SkRedir
			k.skMsgApplyBytes(p, tosend)
			if p.ApplyBytes == 0 {
				eval = p.Eval
				p.Eval = skNoneV
				p.SkRedir = nil
			}
			if p.Cork != nil {
				cork = true
				p.Cork = nil
			}
			sk.releaseSock()
			ret = k.tcpBpfSendmsgRedir(t, skRedir, redirIngress, msg, tosend, flags)
			if eval == skRedirectV {
				sockPut(skRedir)
			}
			sk.lockSock(t)
			if ret != 0 {
				free := k.skMsgFree(msg)
				if !cork {
					*copied -= free
				}
			}
			if cork {
				k.skMsgFree(msg)
				msg = nil
				ret = 0
			}
		default: // __SK_DROP
			// The whole message goes, not only tosend bytes
			// (sk_msg_free since the memleak fix; measured on 6.18:
			// a cork left holding the rest would be sent later).
			k.skMsgFree(msg)
			k.skMsgApplyBytes(p, tosend)
			*copied -= tosend + delta
			return errEACCES
		}
		if ret != 0 {
			return ret
		}
		if p.ApplyBytes == 0 {
			p.Eval = skNoneV
			if p.SkRedir != nil {
				sockPut(p.SkRedir)
				p.SkRedir = nil
			}
		}
		if msg != nil && msg.Sg.Data[msg.Sg.Start].Page != nil && msg.Sg.Data[msg.Sg.Start].Length != 0 {
			continue // more_data
		}
		return errOK
	}
}

// tcpBpfSendmsg mirrors tcp_bpf_sendmsg() (net/ipv4/tcp_bpf.c, v6.18):
// copy the user's data into an sk_msg (or the cork), account cork_bytes,
// and hand it to the verdict.
func (k *kernel) tcpBpfSendmsg(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno) {
	k.reach(fnTcpBpfSendmsg)
	p := skPsockGet(sk)
	if p != nil && k.mutated(mutSenderNoPsockRef) {
		p.Refcnt-- // as if sk_psock(sk) had been used without a reference
	}
	if p == nil {
		return k.tcpProt().Sendmsg(t, sk, src, flags)
	}
	size := src.left()
	copied := 0
	var err syscall.Errno
	sk.lockSock(t)
	to := maxTimeout
	if flags&msgDontwait != 0 {
		to = 0
	}
	for src.left() > 0 {
		enospc := false
		if sk.SkErr != 0 {
			err = sk.SkErr
			break
		}
		cp := src.left()
		if !k.tcp.StreamMemoryFree(sk) {
			// wait_for_sndbuf.
			sk.nospace = true
			if e := k.skStreamWaitMemoryLocked(t, sk, &to); e != 0 {
				err = e
				break
			}
			continue
		}
		var msgTx *skMsg
		if p.Cork != nil {
			msgTx = p.Cork
		} else {
			msgTx = newSkMsg()
		}
		osize := msgTx.Sg.Size
		if e := k.skMsgAlloc(t, msgTx, msgTx.Sg.Size+cp, msgTx.Sg.End-1); e != 0 {
			enospc = true
			cp = msgTx.Sg.Size - osize
		}
		n, e := msgTx.memcopyFromIter(src, cp)
		if e != 0 {
			// The kernel jumps to out_err with err still 0 (the copy's
			// error is in ret): a send whose copy found no space (see
			// memcopyFromIter) returns what was copied before, or 0.
			// Before v6.13 (SendmsgCountsAsked) the copy's error is
			// err itself, and such a send returns -ENOSPC.
			k.skMsgTrim(msgTx, osize)
			if k.prof.SendmsgCountsAsked {
				err = e
			}
			break
		}
		// copied counts what was copied, not what was asked for ("tcp_bpf:
		// fix copied value in tcp_bpf_sendmsg", Levi Zim, v6.13). Before
		// it (tcp_bpf_sendmsg, net/ipv4/tcp_bpf.c, v6.12) copied counts
		// copy, the bytes asked for: a copy that skipped bytes leaves
		// msg_data_left, the loop asks for them again, and send returns
		// more than it was given.
		if k.prof.SendmsgCountsAsked {
			n = cp
		}
		copied += n
		if p.CorkBytes != 0 {
			if size > p.CorkBytes {
				p.CorkBytes = 0
			} else {
				p.CorkBytes -= size
			}
			if p.CorkBytes != 0 && !enospc {
				break
			}
			// All cork bytes are accounted: rerun the program.
			p.Eval = skNoneV
			p.CorkBytes = 0
		}
		if e := k.tcpBpfSendVerdictLocked(t, sk, p, msgTx, &copied, flags); e != 0 {
			err = e
			break
		}
	}
	if err != 0 {
		err = skStreamError(sk, err)
	}
	sk.releaseSock()
	k.skPsockPut(sk, p)
	if copied > 0 {
		return copied, errOK
	}
	return 0, err
}

// tcpMsgWaitDataLocked mirrors tcp_msg_wait_data() (net/ipv4/tcp_bpf.c,
// v6.18): one wait on the socket until ingress_msg or sk_receive_queue is
// non-empty (or a wake-up, or the timeout). It returns the condition after
// the wait (1 at once when the socket is shut down for reading).
//
// Precondition: the caller owns sk.
func (k *kernel) tcpMsgWaitDataLocked(t *task, sk *sock, p *psock, to timeo) bool {
	k.reach(fnTcpMsgWaitDataLocked)
	sk.sockOwnedByMe(t)
	if sk.SkShutdown&rcvShutdown != 0 {
		return true
	}
	if to == 0 {
		return false
	}
	return sk.skWaitEventLocked(t, &to, "tcp_msg_wait_data", func() string { return msgWaitWhy(sk, p) }, func() bool {
		return len(p.IngressMsg) > 0 || !sk.SkReceiveQueue.empty()
	})
}

// msgWaitWhy says what makes tcp_msg_wait_data's condition true, for a
// lost-wakeup report: ingress_msg, or sk_receive_queue, behind a stream
// parser ("strparser") or not.
func msgWaitWhy(sk *sock, p *psock) string {
	switch {
	case len(p.IngressMsg) > 0:
		return "ingress_msg"
	case p.strp != nil:
		return "strparser"
	}
	return "sk_receive_queue"
}

// isNextMsgFin mirrors is_next_msg_fin() (net/ipv4/tcp_bpf.c, v6.18): the
// next ingress message is the empty message of a FIN skb.
func isNextMsgFin(p *psock) bool {
	p.Sk.k.reach(fnIsNextMsgFin)
	m := p.skPsockPeekMsg()
	if m == nil {
		return false
	}
	sge := m.elem(m.Sg.Start)
	return sge.Length == 0 && m.Skb != nil && m.Skb.TCPFlags&tcphdrFIN != 0
}

// tcpBpfRecvmsgParser mirrors tcp_bpf_recvmsg_parser() (net/ipv4/tcp_bpf.c,
// v6.18.y): the recvmsg of sockets with a stream verdict (tcpBpfReadParser
// with the copy actor).
func (k *kernel) tcpBpfRecvmsgParser(t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno) {
	k.reach(fnTcpBpfRecvmsgParser)
	return k.tcpBpfReadParser(t, sk, dst, flags, flags&msgDontwait != 0, func() (int, syscall.Errno) {
		return k.tcp.Recvmsg(t, sk, dst, flags)
	})
}

// tcpBpfReadParser is the body of tcp_bpf_recvmsg_parser() (net/ipv4/tcp_bpf.c,
// v6.18.y) with its actor abstracted (msgReader, as Jiayuan Chen's series
// does it): it reads only ingress_msg; a wait that ends without a message
// returns -EAGAIN even when it ended because sk_receive_queue became
// non-empty (the skb is yet to be verdicted), and copied_seq is written
// back from the value read at entry plus the bytes that came from sk's
// own stream. nonblock selects the timeout (sock_rcvtimeo); noPsock reads
// a socket whose psock went away.
func (k *kernel) tcpBpfReadParser(t *task, sk *sock, dst msgReader, flags int, nonblock bool, noPsock func() (int, syscall.Errno)) (int, syscall.Errno) {
	k.reach(fnTcpBpfReadParser)
	peek := flags&msgPeek != 0
	if dst.left() == 0 {
		return 0, errOK
	}
	p := skPsockGet(sk)
	if p == nil {
		return noPsock()
	}
	sk.lockSock(t)
	seq := k.tcp.CopiedSeq(sk)
	copied := 0
	var err syscall.Errno
	// Data queued before the verdict ran (pre-accept data, or data that
	// arrived while the socket had no verdict): run it now.
	if !sk.SkReceiveQueue.empty() {
		k.tcp.DataReady(sk)
		if !sk.SkReceiveQueue.empty() {
			err = errEAGAIN
			goto out
		}
	}
	for {
		var fromSelf int
		copied, err, fromSelf = k.skMsgRecvmsg(sk, p, dst, flags)
		if err == errEFAULT {
			if isNextMsgFin(p) && !k.mutated(mutFinMsgEfault) {
				copied, err = 0, errOK
				seq++
				goto out
			}
			// Unlike Linux, a copy fault cannot happen otherwise.
			goto out
		}
		if !k.mutated(mutCopiedSeqDrift) {
			seq += uint32(fromSelf)
		}
		if copied != 0 {
			goto out
		}
		if sk.SockDone {
			goto out
		}
		if sk.SkErr != 0 {
			err = sk.sockError()
			goto out
		}
		if sk.SkShutdown&rcvShutdown != 0 {
			goto out
		}
		if sk.State == tcpClose {
			err = errENOTCONN
			goto out
		}
		to := sk.sockRcvtimeo(nonblock)
		if to == 0 {
			err = errEAGAIN
			goto out
		}
		data := k.tcpMsgWaitDataLocked(t, sk, p, to)
		if data && !skPsockQueueEmpty(p) {
			continue // msg_bytes_ready
		}
		err = errEAGAIN
		goto out
	}
out:
	if !peek {
		k.setCopiedSeq(sk, seq, "tcp_bpf_recvmsg_parser")
	}
	k.tcp.RcvSpaceAdjust(sk)
	if copied > 0 {
		k.tcp.CleanupRbuf(sk, copied)
	}
	sk.releaseSock()
	k.skPsockPut(sk, p)
	return copied, err
}

// tcpBpfRecvmsg mirrors tcp_bpf_recvmsg() (net/ipv4/tcp_bpf.c, v6.18): the
// recvmsg of sockets whose psock has no stream verdict (tcpBpfRead with the
// copy actor, after the loopback splice RFC's receive path where that
// profile applies).
func (k *kernel) tcpBpfRecvmsg(t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno) {
	k.reach(fnTcpBpfRecvmsg)
	if dst.left() == 0 {
		return 0, errOK
	}
	tcpRead := func() (int, syscall.Errno) { return k.tcp.Recvmsg(t, sk, dst, flags) }
	p := skPsockGet(sk)
	if p == nil {
		return tcpRead()
	}
	if n, err, done := k.tcpBpfSpliceRecvDispatch(t, sk, p, dst, flags); done {
		k.skPsockPut(sk, p)
		return n, err
	}
	return k.tcpBpfRead(t, sk, p, dst, flags, flags&msgDontwait != 0, tcpRead)
}

// tcpBpfRead is the body of tcp_bpf_recvmsg() (v6.18) with its actor
// abstracted (msgReader, as Jiayuan Chen's series does it): ingress
// messages come first; plain TCP data is read through tcpRead (tcp_recvmsg,
// or tcp_splice_read for splice) when ingress_msg is empty. It takes over
// the caller's reference on p. nonblock selects the timeout
// (sock_rcvtimeo).
func (k *kernel) tcpBpfRead(t *task, sk *sock, p *psock, dst msgReader, flags int, nonblock bool, tcpRead func() (int, syscall.Errno)) (int, syscall.Errno) {
	if !sk.SkReceiveQueue.empty() && skPsockQueueEmpty(p) {
		k.skPsockPut(sk, p)
		return tcpRead()
	}
	sk.lockSock(t)
	for {
		copied, err, _ := k.skMsgRecvmsg(sk, p, dst, flags)
		if err == 0 && copied == 0 {
			to := sk.sockRcvtimeo(nonblock)
			data := k.tcpMsgWaitDataLocked(t, sk, p, to)
			if data {
				if !skPsockQueueEmpty(p) {
					continue // msg_bytes_ready
				}
				sk.releaseSock()
				k.skPsockPut(sk, p)
				return tcpRead()
			}
			sk.releaseSock()
			k.skPsockPut(sk, p)
			return 0, errEAGAIN
		}
		sk.releaseSock()
		k.skPsockPut(sk, p)
		return copied, err
	}
}
