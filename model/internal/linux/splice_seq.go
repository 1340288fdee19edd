package linux

import (
	"syscall"
)

// This file is profile loopback-splice-seq: the out-of-tree
// multikernel/tcp_splice module (tcp_splice 8536cf7) on a mainline
// kernel, its functions cited as `fn() (module/FILE.c, tcp_splice
// 8536cf7)`. It shares only the ring (splice_ring_*) and its checks with
// the RFC (splice_loopback.go); the rest is the module's:
//
//   - pairing by bpf_tcp_splice_pair(skops) at both ESTABLISHED
//     callbacks: a per-socket channel (struct tcp_splice_chan) in the
//     module's own side table, paired by 4-tuple through its pairing
//     registry (splice_state.c) -- no sockmap, no sk_psock;
//   - each paired socket's sk_prot swapped for a clone of its proto with
//     sendmsg, recvmsg, close, unhash (the model: tcp_done), destroy and
//     sock_is_readable replaced (splice_install); ioctl and poll stay the
//     base proto's, so FIONREAD counts TCP bytes only and EPOLLOUT is the
//     TCP send buffer's, never the ring's space;
//   - once the peer is installed the ring is the only data path: no TCP
//     fallback, a full ring blocks the sender (-EAGAIN with
//     MSG_DONTWAIT, a short count when some bytes went); before that,
//     and after an unpair, sendmsg is the base proto's (TCP);
//   - the first ring write freezes ring_seq (the sender's write_seq); the
//     receiver merges the two paths (splice_recvmsg_merge): queued TCP
//     first, ring bytes once copied_seq reached the peer's ring_seq, or
//     at EOF, or after an unpair; MSG_PEEK sees TCP only;
//   - teardown (splice_teardown) runs from close and from unhash (a
//     socket entering TCP_CLOSE: a RST received, the end of the close
//     handshake): unpair (both ends' ->unpaired, wake both), restore the
//     base proto, kill the channel's ring_ref (the ring this socket
//     reads is freed with it, unread bytes included).
//
// The module's real defects the model keeps, since its code has them:
//
//   - a map insert of a paired socket (sock_map_update) replaces the
//     clone by tcp_bpf's proto, built from tcp_prot for IPv4
//     (tcp_bpf_update_proto), not from the clone: the module's sendmsg
//     and recvmsg are bypassed until the psock is dropped. A receiver in
//     a map cannot read its ring (the bytes wait there until it leaves
//     the map); a sender in a map sends by TCP after ring_seq is frozen,
//     and the peer's merge, which reads queued TCP first, delivers those
//     bytes ahead of older ring bytes (loopback/seq_insert_sender_reorders);
//   - ring bytes are invisible to FIONREAD (no ioctl override) and to
//     MSG_PEEK (deferred to TCP);
//   - a RST (or any entry into TCP_CLOSE) tears the receiver down and
//     frees its ring with unread bytes in it.
//
// Unlike the module: the model has no addresses, so the pairing key is
// the connection (the two sockets' places in the run's connection order)
// rather than the sorted 4-tuple and netns; the proto clone is built per
// install, not cached per base proto (its identity is never observed);
// there is no MSG_OOB (the module sends it by TCP), no SO_SNDTIMEO,
// no signals, and allocation never fails.

// tcpSpliceChan mirrors struct tcp_splice_chan (module/tcp_splice.h,
// tcp_splice 8536cf7): one per paired socket. Ring is the ring the peer
// writes into and this socket reads from; it lives in the embedded
// skPsockSplice so that the ring helpers and checks shared with the RFC
// (spliceRingWrite, spliceRingRead, checkRings, spliceLeaks) apply.
// skPsockSplice's Psock is a stand-in that names the socket and records
// the channel's destruction (destroyed); it is no sk_psock and is never
// attached to the socket (the module's sockets have none). Its Peer is
// unused: the channel's peer is Peer below.
//
// Ownership: allocated by chan_alloc with a sock_hold; chan_destroy
// unlinks it and kills RingRef; the release (a kernel context) frees the
// ring and drops the sock reference.
type tcpSpliceChan struct {
	*skPsockSplice
	Sk        *sock
	Peer      *tcpSpliceChan // NULL after unpair
	BaseProt  *proto         // sk_prot before the swap
	Installed bool           // our proto swapped in; the teardown claim
	clone     *proto         // the proto splice_install swapped in
	Unpaired  bool           // the peer was set, then torn down
	key       [2]int         // pair_key: the connection
	inPairTbl bool
}

// tcpSpliceTables mirrors the module's two hash tables (splice_state.c):
// splice_tbl (sock → channel) and pair_tbl (channels waiting for their
// peer, by key).
type tcpSpliceTables struct {
	bySock  map[*sock]*tcpSpliceChan
	pairTbl []*tcpSpliceChan
}

// chanLookup mirrors chan_lookup() (module/splice_state.c, tcp_splice
// 8536cf7).
func (k *kernel) chanLookup(sk *sock) *tcpSpliceChan {
	k.reach(fnChanLookup)
	return k.tsp.bySock[sk]
}

// chanGetOrAlloc mirrors chan_get_or_alloc() with chan_alloc()
// (module/splice_state.c, tcp_splice 8536cf7): the socket's channel,
// allocated with its ring and a sock reference on first use.
func (k *kernel) chanGetOrAlloc(sk *sock) *tcpSpliceChan {
	k.reach(fnChanGetOrAlloc)
	if c := k.chanLookup(sk); c != nil {
		return c
	}
	s := &skPsockSplice{Psock: &psock{Sk: sk}}
	c := &tcpSpliceChan{skPsockSplice: s, Sk: sk}
	s.RingRef = percpuRef{count: 1, release: func() { k.chanRefRelease(c) }}
	k.spliceRingAlloc(s)
	sockHold(sk)
	if k.tsp.bySock == nil {
		k.tsp.bySock = map[*sock]*tcpSpliceChan{}
	}
	k.tsp.bySock[sk] = c
	k.splice.all = append(k.splice.all, s)
	return c
}

// chanRefRelease mirrors chan_ref_release() (module/splice_state.c,
// tcp_splice 8536cf7): free the ring and the channel, drop the sock
// reference. A kernel context (percpu_ref's release after RCU).
func (k *kernel) chanRefRelease(c *tcpSpliceChan) {
	k.reach(fnChanRefRelease)
	k.s.queueWork("chan_ref_release", func() {
		k.spliceRingFree(c.skPsockSplice)
		c.freed = true
		c.Psock.destroyed = true
		sockPut(c.Sk)
	})
}

// chanRegisterAndPair mirrors chan_register_and_pair()
// (module/splice_state.c, tcp_splice 8536cf7): the second end of a
// connection to register finds the first (same key, unpaired) and links
// the two; the first parks in the pairing registry.
func (k *kernel) chanRegisterAndPair(self *tcpSpliceChan, key [2]int) {
	k.reach(fnChanRegisterAndPair)
	if self.Peer != nil {
		return
	}
	self.key = key
	var peer *tcpSpliceChan
	for _, e := range k.tsp.pairTbl {
		if e != self && e.Peer == nil && e.key == key {
			peer = e
			break
		}
	}
	if peer != nil {
		self.Peer, peer.Peer = peer, self
	} else if !self.inPairTbl {
		k.tsp.pairTbl = append(k.tsp.pairTbl, self)
		self.inPairTbl = true
	}
}

// chanUnpair mirrors chan_unpair() (module/splice_state.c, tcp_splice
// 8536cf7): clear both peer links, mark both ends torn down, wake both.
func (k *kernel) chanUnpair(c *tcpSpliceChan) {
	k.reach(fnChanUnpair)
	peer := c.Peer
	if peer != nil {
		c.Unpaired = true
		c.Peer = nil
		if peer.Peer == c {
			peer.Unpaired = true
			peer.Peer = nil
		}
	}
	k.spliceWake(c.Sk)
	if peer != nil {
		k.spliceWake(peer.Sk)
	}
}

// chanDestroy mirrors chan_destroy() (module/splice_state.c, tcp_splice
// 8536cf7): unlink the channel from both tables and kill its ring_ref.
func (k *kernel) chanDestroy(c *tcpSpliceChan) {
	k.reach(fnChanDestroy)
	delete(k.tsp.bySock, c.Sk)
	if c.inPairTbl {
		for i, e := range k.tsp.pairTbl {
			if e == c {
				k.tsp.pairTbl = append(k.tsp.pairTbl[:i:i], k.tsp.pairTbl[i+1:]...)
				break
			}
		}
		c.inPairTbl = false
	}
	if c.RingRef.kill() {
		k.splice.killedInFlight++
	}
}

// bpfTcpSplicePair mirrors the kfunc bpf_tcp_splice_pair() (module/main.c,
// tcp_splice 8536cf7) on skops->sk = sk: validate (ESTABLISHED or
// SYN_RECV; the model has no repair mode or urgent data), register and
// pair the socket's channel, and install the module's proto.
func (k *kernel) bpfTcpSplicePair(sk *sock) syscall.Errno {
	k.reach(fnBpfTcpSplicePair)
	if sk == nil {
		return errEINVAL
	}
	if sk.State != tcpEstablished && sk.State != tcpSynRecv {
		return errEINVAL
	}
	peer := k.peerOf(sk)
	if peer == nil {
		return errEINVAL
	}
	// splice_make_key: the connection, the same from either end.
	key := [2]int{min(sk.idx, peer.idx), max(sk.idx, peer.idx)}
	c := k.chanGetOrAlloc(sk)
	k.chanRegisterAndPair(c, key)
	return k.spliceInstall(sk)
}

// spliceInstall mirrors splice_install() with clone_get()
// (module/splice_proto.c, tcp_splice 8536cf7): save sk_prot as the base
// and swap in its clone with the module's overrides.
func (k *kernel) spliceInstall(sk *sock) syscall.Errno {
	k.reach(fnSpliceInstall)
	c := k.chanLookup(sk)
	if c == nil {
		return errENOENT
	}
	if c.Installed {
		return errOK
	}
	base := sk.SkProt
	clone := *base
	clone.Name = base.Name + "+tcp_splice"
	clone.Sendmsg = k.spliceSeqSendmsg
	clone.Recvmsg = k.spliceSeqRecvmsg
	clone.Close = k.spliceSeqClose
	clone.SockIsReadable = spliceSeqIsReadable
	c.BaseProt, c.clone = base, &clone
	c.Installed = true
	sk.SkProt = &clone
	return errOK
}

// connPairModule is `conn A B pair` with the module: its sock_ops program
// calls bpf_tcp_splice_pair at A's ACTIVE_ESTABLISHED callback (A parks
// in the pairing registry) and at B's PASSIVE_ESTABLISHED callback, with
// B still in SYN_RECV (B finds A and pairs). conn is one atomic step in
// the model, so both run at its end; on a kernel the accept returns
// after B's callback, so no byte of the trace precedes the pairing.
func (k *kernel) connPairModule(a, b *sock) syscall.Errno {
	if err := k.bpfTcpSplicePair(a); err != 0 {
		return err
	}
	st := b.State
	if st == tcpEstablished {
		b.State = tcpSynRecv
	}
	err := k.bpfTcpSplicePair(b)
	b.State = st
	return err
}

// pairModule is the trace's late `pair A B` with the module: its kfunc,
// which takes skops->sk only, at a later callback of A and then of B.
// The two pair only when they are the two ends of one connection (the
// pairing key); otherwise each parks in the registry, installed but
// unpaired (its sends go by TCP). It returns the first errno.
func (k *kernel) pairModule(a, b *sock) syscall.Errno {
	if err := k.bpfTcpSplicePair(a); err != 0 {
		return err
	}
	return k.bpfTcpSplicePair(b)
}

// writeSeqer is implemented by transports that expose a socket's
// write_seq (refTCP); the ring_seq boundary needs it.
type writeSeqer interface {
	WriteSeq(sk *sock) uint32
}

// WriteSeq returns tp->write_seq.
func (r *refTCP) WriteSeq(sk *sock) uint32 { return tcpSk(sk).WriteSeq }

// spliceSeqSendmsg mirrors splice_prot_sendmsg() (module/splice_proto.c,
// tcp_splice 8536cf7): the base proto's sendmsg until the peer is
// installed (and again once it is gone), else freeze ring_seq at the
// first ring write and send through the ring only.
func (k *kernel) spliceSeqSendmsg(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno) {
	k.reach(fnSpliceSeqSendmsg)
	c := k.chanLookup(sk)
	if c == nil {
		return 0, errEPIPE // WARN_ON_ONCE
	}
	if p := c.Peer; p == nil || !p.Installed || p.Ring == nil {
		return c.BaseProt.Sendmsg(t, sk, src, flags)
	}
	if !c.RingActive {
		c.RingSeq = k.tcp.(writeSeqer).WriteSeq(sk)
		c.RingActive = true // smp_wmb: published before the first ring byte
	}
	return k.spliceSeqSendRing(t, sk, c, src, flags)
}

// spliceSeqSendRing mirrors splice_send_ring() (module/splice_proto.c,
// tcp_splice 8536cf7): push the whole message through the peer's ring,
// waking the peer after each write, blocking on a full ring (-EAGAIN
// with MSG_DONTWAIT; a short count once bytes went); a gone pair or
// SEND_SHUTDOWN is -EPIPE, an error -sk_err.
func (k *kernel) spliceSeqSendRing(t *task, sk *sock, self *tcpSpliceChan, src *srcIter, flags int) (int, syscall.Errno) {
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
		var peerS *tcpSpliceChan
		space := 0
		if peer.Installed && peer.Ring != nil {
			space = peer.Ring.Space()
			if space > 0 && peer.RingRef.tryGetLive() {
				peerS = peer
			}
		}
		if peerS != nil {
			k.yieldCur("splice_send_ring: space found, before splice_ring_write")
			done := k.spliceRingWrite(sk, peerS.skPsockSplice, src, min(src.left(), space))
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

// spliceSendReady mirrors splice_send_ready() (module/splice_proto.c,
// tcp_splice 8536cf7): the sender can go on (ring space) or must stop
// (pair gone, error, shutdown).
func spliceSendReady(sk *sock, self *tcpSpliceChan) bool {
	sk.k.reach(fnSpliceSendReady)
	p := self.Peer
	return p == nil || sk.SkErr != 0 || sk.SkShutdown&sendShutdown != 0 ||
		p.Installed && p.Ring != nil && p.Ring.Space() > 0
}

// Second bug zoo: the mutations of this file (mutation.go).
var (
	mutSeqRingReadyStrict = registerMutation("seq-ring-ready-strict",
		"loopback splice seq: splice_ring_ready tests copied_seq after ring_seq (> 0 for >= 0): ring bytes wait for EOF when TCP is exactly drained")
	mutSeqRecvNoWakeSend = registerMutation("seq-recv-no-wake-send",
		"loopback splice seq: splice_recvmsg_merge frees ring space without splice_wake_send: a sender blocked on a full ring sleeps on")
)

// spliceSeqRingReady mirrors splice_ring_ready() (module/splice_proto.c,
// tcp_splice 8536cf7) and the merge's own test: ring bytes are next in
// stream order (the peer switched to the ring and copied_seq reached its
// ring_seq), or eof allows flushing them.
func (k *kernel) spliceSeqRingReady(sk *sock, s *tcpSpliceChan, eof bool) bool {
	k.reach(fnSpliceSeqRingReady)
	peer := s.Peer
	if peer == nil || !spliceRingHasData(s.skPsockSplice) || !peer.RingActive {
		return false
	}
	d := int32(k.tcp.CopiedSeq(sk) - peer.RingSeq)
	if k.mutated(mutSeqRingReadyStrict) {
		return eof || d > 0
	}
	return eof || d >= 0
}

// spliceSeqDeliverable mirrors splice_recv_deliverable()
// (module/splice_proto.c, tcp_splice 8536cf7).
func (k *kernel) spliceSeqDeliverable(sk *sock, s *tcpSpliceChan) bool {
	k.reach(fnSpliceSeqDeliverable)
	return !sk.SkReceiveQueue.empty() || k.spliceSeqRingReady(sk, s, false)
}

// spliceSeqRecvmsg mirrors splice_prot_recvmsg() and
// splice_recvmsg_merge() (module/splice_proto.c, tcp_splice 8536cf7):
// the ordered merge of TCP and ring bytes. It fills the buffer from both
// paths in stream order and blocks only when nothing is deliverable.
// MSG_PEEK, and the TCP path, go to the base proto's recvmsg (tcp_recvmsg:
// the module's sockets have no psock). After an unpair, the ring's bytes
// are drained before EOF (->unpaired).
func (k *kernel) spliceSeqRecvmsg(t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno) {
	k.reach(fnSpliceSeqRecvmsg)
	s := k.chanLookup(sk)
	if s == nil {
		return 0, errEPIPE // WARN_ON_ONCE
	}
	base := s.BaseProt
	if flags&msgPeek != 0 {
		return base.Recvmsg(t, sk, dst, flags)
	}
	to := sk.sockRcvtimeo(flags&msgDontwait != 0)
	total := 0
	var err syscall.Errno
	for dst.left() > 0 {
		eof := sk.SkShutdown&rcvShutdown != 0 || sk.SkErr != 0
		var ringReady bool
		if s.Peer != nil {
			ringReady = k.spliceSeqRingReady(sk, s, eof)
		} else {
			// Torn down: the peer's last ring bytes are still valid;
			// parked (never paired): the ring is empty.
			ringReady = s.Unpaired && spliceRingHasData(s.skPsockSplice)
		}
		if ringReady && sk.SkReceiveQueue.empty() {
			if n := k.spliceRingRead(s.skPsockSplice, dst, dst.left()); n > 0 {
				total += n
				if peer := s.Peer; peer != nil && !k.mutated(mutSeqRecvNoWakeSend) {
					k.spliceWake(peer.Sk) // splice_wake_send: EPOLLOUT
				}
				continue
			}
		}
		if !sk.SkReceiveQueue.empty() {
			n, e := base.Recvmsg(t, sk, dst, flags|msgDontwait)
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
		if s.Unpaired && !spliceRingHasData(s.skPsockSplice) {
			break // pair torn down, ring drained
		}
		if k.spliceSeqDeliverable(sk, s) || sk.SkShutdown&rcvShutdown != 0 && spliceRingHasData(s.skPsockSplice) {
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

// spliceSeqRecvReady mirrors splice_recv_ready() (module/splice_proto.c,
// tcp_splice 8536cf7): a parked (never paired) channel keeps waiting, a
// torn-down one wakes.
func (k *kernel) spliceSeqRecvReady(sk *sock, s *tcpSpliceChan) bool {
	k.reach(fnSpliceSeqRecvReady)
	return k.spliceSeqDeliverable(sk, s) || sk.SkErr != 0 || sk.SkShutdown&rcvShutdown != 0 || s.Unpaired
}

// spliceSeqIsReadable mirrors splice_prot_is_readable()
// (module/splice_proto.c, tcp_splice 8536cf7): ring bytes count once
// they are next in stream order; else the base proto's readability
// (tcp_prot has none).
func spliceSeqIsReadable(sk *sock) bool {
	sk.k.reach(fnSpliceSeqIsReadable)
	c := sk.k.chanLookup(sk)
	if c == nil {
		return false
	}
	if sk.k.spliceSeqRingReady(sk, c, false) {
		return true
	}
	if c.BaseProt.SockIsReadable != nil {
		return c.BaseProt.SockIsReadable(sk)
	}
	return false
}

// spliceTeardown mirrors splice_teardown() (module/splice_proto.c,
// tcp_splice 8536cf7): the first caller claims the teardown (installed),
// unpairs, restores the base proto and destroys the channel. It returns
// the base proto, nil when sk has no channel.
func (k *kernel) spliceTeardown(sk *sock) *proto {
	k.reach(fnSpliceTeardown)
	c := k.chanLookup(sk)
	if c == nil {
		return nil
	}
	base := c.BaseProt
	if c.Installed {
		c.Installed = false
		k.chanUnpair(c)
		sk.SkProt = base
		k.chanDestroy(c)
	}
	return base
}

// spliceSeqClose mirrors splice_prot_close() (module/splice_proto.c,
// tcp_splice 8536cf7): teardown, then the base proto's close.
func (k *kernel) spliceSeqClose(t *task, sk *sock) {
	k.reach(fnSpliceSeqClose)
	base := k.spliceTeardown(sk)
	if base == nil {
		base = sk.SkProt
	}
	base.Close(t, sk)
}

// spliceSeqUnhash is splice_prot_unhash() (module/splice_proto.c,
// tcp_splice 8536cf7) as tcp_set_state(TCP_CLOSE) reaches it through
// sk_prot->unhash: a socket that enters CLOSE while our proto is
// installed (a RST received, the close handshake's end) is torn down
// there, its ring freed with any unread bytes. The base unhash has no
// observable effect in the model. A socket whose sk_prot is not the
// clone (in a map: tcp_bpf's proto) is not torn down here.
func (k *kernel) spliceSeqUnhash(sk *sock) {
	if c := k.chanLookup(sk); c != nil && sk.SkProt == c.clone {
		k.spliceTeardown(sk)
	}
}
