package model

import "syscall"

// This file is profile loopback-splice-seq: the RFC's pairing and ring
// (splice_loopback.go) with the ordering fix of the out-of-tree
// multikernel/tcp_splice module (module/splice_proto.c, read 2026-11):
//
//   - once paired the ring is the sender's only data path: no per-write
//     TCP fallback, a full ring blocks the sender (splice_send_wait) and
//     the receiver wakes it when it frees space (splice_wake_send);
//   - the first ring write freezes ring_seq, the sender's write_seq: every
//     earlier byte went by TCP, no later byte does;
//   - the receiver merges the two paths in stream order
//     (splice_recvmsg_merge): TCP bytes first, ring bytes only once its
//     copied_seq reached the peer's ring_seq (or at EOF), and it
//     re-decides against fresh state before reporting EOF;
//   - teardown runs from close (the module's close handler), not only
//     from sk_psock_drop, so the pair's psock references are dropped.
//
// Unlike the module, pairing stays the RFC's (psocks and a sockhash, not
// a private registry), and both sides are installed at once by the pair.
// The module pairs through its own registry keyed by the 4-tuple
// (bpf_tcp_splice_pair at both ESTABLISHED callbacks) with no psock and
// no sockhash: where `conn A B pair` gives both ends a psock in the
// rendezvous sockhash (connPair), the module's sockets have none, so a
// later map insert or delete meets a psock here that the module lacks.

// writeSeqer is implemented by transports that expose a socket's
// write_seq (RefTCP); the ring_seq boundary needs it.
type writeSeqer interface {
	WriteSeq(sk *Sock) uint32
}

// WriteSeq returns tp->write_seq.
func (r *RefTCP) WriteSeq(sk *Sock) uint32 { return tcpSk(sk).WriteSeq }

// spliceSeqSendmsg mirrors splice_prot_sendmsg() (multikernel/tcp_splice
// module/splice_proto.c): TCP until the pair is installed, then freeze
// ring_seq at the first ring write and send through the ring only.
func (k *kernel) spliceSeqSendmsg(t *Task, sk *Sock, src *srcIter, flags int) (int, syscall.Errno) {
	k.reach(fnSpliceSeqSendmsg)
	p := skPsockGet(sk)
	if p == nil {
		return k.tcpProt().Sendmsg(t, sk, src, flags)
	}
	defer k.skPsockPut(sk, p)
	self := p.Splice
	if self == nil || self.Peer == nil || self.Peer.Splice == nil || self.Peer.Splice.Ring == nil {
		return k.tcpProt().Sendmsg(t, sk, src, flags)
	}
	if !self.RingActive {
		self.RingSeq = k.tcp.(writeSeqer).WriteSeq(sk)
		self.RingActive = true // smp_wmb: published before the first ring byte
	}
	return k.spliceSeqSendRing(t, sk, self, src, flags)
}

// spliceSeqSendRing mirrors the module's splice_send_ring(): push the
// whole message through the peer's ring, waking the peer after each
// write, blocking on a full ring (-EAGAIN with MSG_DONTWAIT); a gone pair
// or SEND_SHUTDOWN is -EPIPE, an error is -sk_err.
func (k *kernel) spliceSeqSendRing(t *Task, sk *Sock, self *SkPsockSplice, src *srcIter, flags int) (int, syscall.Errno) {
	k.reach(fnSpliceSeqSendRing)
	to := maxTimeout // sock_sndtimeo: the model has no SO_SNDTIMEO
	if flags&msgDontwait != 0 {
		to = 0
	}
	self.senders++
	defer func() { self.senders-- }()
	total := 0
	fail := func(err syscall.Errno) (int, syscall.Errno) {
		if total > 0 {
			return total, errOK
		}
		return 0, err
	}
	for src.left() > 0 {
		peer := self.Peer
		switch {
		case peer == nil:
			return fail(errEPIPE)
		case sk.SkErr != 0:
			return fail(sk.SkErr)
		case sk.SkShutdown&sendShutdown != 0:
			return fail(errEPIPE)
		}
		var peerS *SkPsockSplice
		space := 0
		if ps := peer.Splice; ps != nil && ps.Ring != nil {
			space = ps.Ring.Space()
			if space > 0 && ps.RingRef.tryGetLive() {
				peerS = ps
			}
		}
		if peerS != nil {
			k.yieldCur("splice_send_ring: space found, before splice_ring_write")
			done := k.spliceRingWrite(sk, peerS, src, min(src.left(), space))
			peerS.RingRef.put()
			if done > 0 {
				total += done
				if p := self.Peer; p != nil {
					k.spliceWakeSync(p.Sk, nil)
				}
				continue
			}
		}
		if to == 0 {
			return fail(errEAGAIN)
		}
		to = t.waitEvent(&sk.Wq, to, self.concurrency("splice_send_wait"), func() bool { return spliceSendReady(sk, self) })
	}
	return total, errOK
}

// spliceSendReady mirrors the module's splice_send_ready(): the sender
// can go on (ring space) or must stop (pair gone, error, shutdown).
func spliceSendReady(sk *Sock, self *SkPsockSplice) bool {
	sk.k.reach(fnSpliceSendReady)
	p := self.Peer
	return p == nil || sk.SkErr != 0 || sk.SkShutdown&sendShutdown != 0 ||
		p.Splice != nil && p.Splice.Ring != nil && p.Splice.Ring.Space() > 0
}

// Second bug zoo: the mutations of this file (mutation.go).
var (
	mutSeqRingReadyStrict = registerMutation("seq-ring-ready-strict",
		"loopback splice seq: splice_ring_ready tests copied_seq after ring_seq (> 0 for >= 0): ring bytes wait for EOF when TCP is exactly drained")
	mutSeqRecvNoWakeSend = registerMutation("seq-recv-no-wake-send",
		"loopback splice seq: splice_recvmsg_merge frees ring space without splice_wake_send: a sender blocked on a full ring sleeps on")
)

// spliceSeqRingReady mirrors the module's splice_ring_ready(): ring bytes
// are next in stream order (the peer switched to the ring and copied_seq
// reached its ring_seq), or eof allows flushing them.
func (k *kernel) spliceSeqRingReady(sk *Sock, s *SkPsockSplice, eof bool) bool {
	k.reach(fnSpliceSeqRingReady)
	peer := s.Peer
	if peer == nil || !spliceRingHasData(s) || peer.Splice == nil || !peer.Splice.RingActive {
		return false
	}
	d := int32(k.tcp.CopiedSeq(sk) - peer.Splice.RingSeq)
	if k.mutated(mutSeqRingReadyStrict) {
		return eof || d > 0
	}
	return eof || d >= 0
}

// spliceSeqDeliverable mirrors splice_recv_deliverable().
func (k *kernel) spliceSeqDeliverable(sk *Sock, s *SkPsockSplice) bool {
	k.reach(fnSpliceSeqDeliverable)
	return !sk.SkReceiveQueue.empty() || k.spliceSeqRingReady(sk, s, false)
}

// spliceSeqRecvmsg mirrors splice_recvmsg_merge() (multikernel/tcp_splice
// module/splice_proto.c): the ordered merge of TCP and ring bytes. It
// fills the buffer from both paths in stream order and blocks only when
// nothing is deliverable. MSG_PEEK, and the TCP path, go to the base
// proto's recvmsg (tcp_bpf_recvmsg: the psock's ingress_msg, then TCP).
func (k *kernel) spliceSeqRecvmsg(t *Task, sk *Sock, p *SkPsock, dst *iovIter, flags int) (int, syscall.Errno) {
	k.reach(fnSpliceSeqRecvmsg)
	// splice_base_recvmsg: the recvmsg of the proto the module cloned,
	// the socket's tcp_bpf proto (a pair needs psocks): ingress_msg
	// first, then TCP.
	baseRecv := func(flags int) (int, syscall.Errno) {
		tcpRead := func() (int, syscall.Errno) { return k.tcp.Recvmsg(t, sk, dst, flags) }
		bp := skPsockGet(sk)
		if bp == nil {
			return tcpRead()
		}
		return k.tcpBpfRead(t, sk, bp, dst, flags, flags&msgDontwait != 0, tcpRead)
	}
	if flags&msgPeek != 0 {
		return baseRecv(flags)
	}
	s := p.Splice
	to := sk.sockRcvtimeo(flags&msgDontwait != 0)
	total := 0
	var err syscall.Errno
	for dst.left() > 0 {
		eof := sk.SkShutdown&rcvShutdown != 0 || sk.SkErr != 0
		if k.spliceSeqRingReady(sk, s, eof) && sk.SkReceiveQueue.empty() {
			if n := k.spliceRingRead(s, dst, dst.left()); n > 0 {
				total += n
				if peer := s.Peer; peer != nil && !k.mutated(mutSeqRecvNoWakeSend) {
					k.spliceWake(peer.Sk) // splice_wake_send: EPOLLOUT
				}
				continue
			}
		}
		if !sk.SkReceiveQueue.empty() {
			n, e := baseRecv(flags | msgDontwait)
			if n > 0 {
				total += n
				continue
			}
			if e != 0 && e != errEAGAIN {
				if total > 0 {
					break
				}
				return 0, e
			}
		}
		if total > 0 {
			break
		}
		t.yieldPoint("splice_recvmsg_merge: nothing delivered, before re-deciding")
		if sk.SkErr != 0 {
			err = sk.SkErr
			break
		}
		if s.Peer == nil {
			break // pair gone
		}
		if k.spliceSeqDeliverable(sk, s) || sk.SkShutdown&rcvShutdown != 0 && spliceRingHasData(s) {
			continue
		}
		if sk.SkShutdown&rcvShutdown != 0 {
			break // EOF, both paths drained
		}
		if to == 0 {
			err = errEAGAIN
			break
		}
		k.spliceBusyLoop(t, sk, func() bool { return k.spliceSeqRecvReady(sk, s) })
		if k.spliceSeqDeliverable(sk, s) {
			continue
		}
		to = t.waitEvent(&sk.Wq, to, "splice_recv_wait", func() bool { return k.spliceSeqRecvReady(sk, s) })
	}
	if total > 0 {
		return total, errOK
	}
	return 0, err
}

// spliceSeqRecvReady mirrors the module's splice_recv_ready().
func (k *kernel) spliceSeqRecvReady(sk *Sock, s *SkPsockSplice) bool {
	k.reach(fnSpliceSeqRecvReady)
	return k.spliceSeqDeliverable(sk, s) || sk.SkErr != 0 || sk.SkShutdown&rcvShutdown != 0 || s.Peer == nil
}

// spliceSeqIsReadable mirrors splice_prot_is_readable(): ring bytes count
// once they are next in stream order; else the base readability.
func spliceSeqIsReadable(sk *Sock) bool {
	sk.k.reach(fnSpliceSeqIsReadable)
	p := skPsock(sk)
	if p == nil {
		return false
	}
	if s := p.Splice; s != nil && sk.k.spliceSeqRingReady(sk, s, false) {
		return true
	}
	return skMsgIsReadable(sk)
}

// spliceSeqClose is the module's teardown from close (splice_teardown
// from the close handler): unpair first, dropping the pair's psock
// references, then the sockmap close.
func (k *kernel) spliceSeqClose(t *Task, sk *Sock) {
	if p := skPsockGet(sk); p != nil {
		k.tcpBpfSpliceUnpair(p)
		k.skPsockPut(sk, p)
	}
	k.sockMapClose(t, sk)
}
