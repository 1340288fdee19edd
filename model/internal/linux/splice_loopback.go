package linux

import (
	"fmt"
	"syscall"
	"time"

	"github.com/splicecheck/splicecheck/ringbuf"
	"github.com/splicecheck/splicecheck/trace"
)

// This file is profile loopback-splice: Cong Wang's RFC "tcp: opportunistic
// loopback splice for BPF-paired sockets" (bpf-next, 2026-06-12), patches 1
// (bpf_sock_splice_pair, the per-direction ring, splice_send_ring,
// tcp_bpf_splice_recvmsg, teardown), 2 (busy-poll of the ring) and 4
// (SO_BUSY_POLL from BPF: the trace's `set S busypoll US` stands for it),
// exactly as posted, bugs included. Functions cite "(net/ipv4/tcp_bpf.c,
// RFC bpf-next 2026-06)" or net/core/skmsg.c of the same series.
//
// Pairing comes in two forms. `conn A B pair` is the sock_ops program of
// patch 3 as its selftest runs it: both ends go into the program's
// rendezvous sockhash at their ESTABLISHED callbacks and the passive end
// pairs with the active one (connPair). `pair A B` is that program
// reduced to its kfunc call at any later moment: bpf_sock_splice_pair(
// peer = B, skops->sk = A), on sockets that already have psocks.

func init() {
	patches["loopback-splice"] = func(p *behaviour) { p.LoopbackSplice = true }
	patches["loopback-splice-seq"] = func(p *behaviour) { p.LoopbackSplice, p.SpliceSeq = true, true }
}

// spliceRingSize is SPLICE_RING_SIZE: 16 KiB per direction (a ring holds
// at most spliceRingSize-1 bytes, CIRC_SPACE keeping one byte free).
const spliceRingSize = 16 * 1024

// mutSpliceWakeNoBarrier removes the smp_mb() of splice_wake_sync()
// (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06): the producer's load of
// waitqueue_active() (include/linux/wait.h, v6.18) is satisfied before its
// store of ring_head is visible (the store-buffer reordering x86 allows),
// so a receiver that queues itself and tests the ring in between sleeps
// with data in the ring and nobody wakes it.
var mutSpliceWakeNoBarrier = registerMutation("splice-wake-no-barrier",
	"loopback splice: splice_wake_sync without smp_mb, waitqueue_active read before the ring_head publish (lost wakeup)")

// skPsockSplice mirrors struct sk_psock_splice (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): the splice state of one psock. Ring is the ring this
// socket reads (ring_buf); the paired sender writes into it.
//
// Ownership: allocated lazily by the first bpf_sock_splice_pair on the
// psock and kept for the psock's lifetime; tcp_bpf_splice_destroy kills
// RingRef and the release (a kernel context) frees the ring and the
// state once no sender holds a reference. Peer holds a psock reference
// (sk_psock_get) on the peer while paired.
//
// LOCKING: the kernel's ->lock serialises only allocation and teardown;
// the model runs one context at a time, so the pair lock is implicit.
// The data path is lock-free: Ring's cursors are published with release
// stores (ringbuf).
type skPsockSplice struct {
	Psock   *psock
	Peer    *psock // NULL after unpair
	Ring    *ringbuf.Ring
	RingRef percpuRef
	freed   bool // splice_ring_ref_release ran: ring and state are gone

	// SpliceSeq only (splice_seq.go): the sender's frozen TCP->ring
	// boundary, published before the first ring byte.
	RingActive bool
	RingSeq    uint32

	// shadow holds what was written into Ring and not yet read, to
	// check the reads against (the ring-content property). senders,
	// readers and writers count the tasks inside a ring send (this
	// side's), read or write (of Ring) now; concurrentReads and
	// concurrentWrites say two reads or two writes of Ring overlapped. None
	// of it is kernel state: it names the site of a failure (neither
	// the RFC nor the module serialises a socket's senders or readers
	// on the ring with lock_sock).
	shadow           ringShadow
	senders          int
	readers          int
	writers          int
	concurrentReads  bool
	concurrentWrites bool
}

// concurrency returns what, with "/concurrent-senders" when another
// task is sending on this side too (a lost-wakeup site).
func (s *skPsockSplice) concurrency(what string) string {
	if s.senders > 1 {
		return what + "/concurrent-senders"
	}
	return what
}

// percpuRef mirrors struct percpu_ref (include/linux/percpu-refcount.h,
// v6.18) as the RFC uses it (ring_ref): a count that starts at one,
// tryget_live fails once killed, and the release runs (after an RCU grace
// period, here a kernel context) when the count reaches zero after kill.
type percpuRef struct {
	count   int
	dead    bool
	release func()
}

// tryGetLive mirrors percpu_ref_tryget_live()
// (include/linux/percpu-refcount.h, v6.18).
func (r *percpuRef) tryGetLive() bool {
	reach(fnPercpuRefTryGetLive)
	if r.dead {
		return false
	}
	r.count++
	return true
}

// put mirrors percpu_ref_put() (include/linux/percpu-refcount.h, v6.18).
func (r *percpuRef) put() {
	reach(fnPercpuRefPut)
	r.count--
	if r.count == 0 && r.release != nil {
		r.release()
	}
	if r.count < 0 {
		panic("model: percpu_ref put below zero")
	}
}

// kill mirrors percpu_ref_kill() (include/linux/percpu-refcount.h, v6.18):
// drop the initial reference. It reports whether a holder was still in
// flight (the release waits for it).
func (r *percpuRef) kill() (inFlight bool) {
	reach(fnPercpuRefKill)
	if r.dead {
		panic("model: percpu_ref_kill twice")
	}
	r.dead = true
	inFlight = r.count > 1
	r.put()
	return inFlight
}

// spliceStates is the kernel's list of every splice state allocated in a
// run, for the checks at its end (spliceLeaks, checkRings) and its
// account (Stats.RingWrites, Stats.RingFaults). Unlike Linux, which
// keeps no such list.
type spliceStates struct {
	all []*skPsockSplice
	// killedInFlight counts ring_ref kills that found a sender holding
	// the ring (the release then waited for its put).
	killedInFlight int
	// writes records every ring write (Outcome.RingWrites).
	writes []RingWrite
	// contentFaults records ring reads that returned other bytes than
	// were written (Stats.RingFaults).
	contentFaults []ringFault
}

// spliceLeaks reports a splice state whose two sockets were both
// released but whose psock was never destroyed or whose ring was never
// freed (with Config.Liveness, at the end of a run: a Fault of kind
// "leak" at "splice-pair"). A psock already dropped (no reference left)
// while kernel work is still pending is not reported: its destroy may
// be queued.
func (k *kernel) spliceLeaks() error {
	for _, s := range k.splice.all {
		sk := s.Psock.Sk
		peer := k.peerOf(sk)
		if !sk.released || peer == nil || !peer.released {
			continue
		}
		if s.Psock.destroyed && s.freed {
			continue
		}
		if s.Psock.Refcnt == 0 && k.s.kernelPending() {
			// Dropped: its destroy (or the ring's release) is queued
			// behind kernel work that feeds itself (an egress redirect
			// loop), which the settle's budget left running.
			continue
		}
		return &Fault{Err: ErrLeak, Kind: "leak", Site: "splice-pair", Msg: fmt.Sprintf(
			"%s and %s are closed, but %s's psock has %d references (destroyed %v) and its splice ring is not freed",
			sk.Name, peer.Name, sk.Name, s.Psock.Refcnt, s.Psock.destroyed)}
	}
	return nil
}

// skPsockIsSpliced mirrors sk_psock_is_spliced() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06).
func skPsockIsSpliced(p *psock) bool {
	p.Sk.k.reach(fnSkPsockIsSpliced)
	return p.Splice != nil && p.Splice.Peer != nil
}

// spliceRingRefRelease mirrors splice_ring_ref_release()
// (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06): the ring_ref reached zero
// after kill; free the ring and the state. It runs as a kernel context
// (percpu_ref's release after the RCU grace period).
func (k *kernel) spliceRingRefRelease(s *skPsockSplice) {
	k.reach(fnSpliceRingRefRelease)
	k.s.queueWork("splice_ring_ref_release", func() {
		k.spliceRingFree(s)
		s.freed = true
	})
}

// spliceGetOrAlloc mirrors splice_get_or_alloc() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): the psock's splice state, allocated on first use.
// Unlike Linux, allocation never fails.
func (k *kernel) spliceGetOrAlloc(p *psock) *skPsockSplice {
	k.reach(fnSpliceGetOrAlloc)
	if p.Splice != nil {
		return p.Splice
	}
	s := &skPsockSplice{Psock: p}
	s.RingRef = percpuRef{count: 1, release: func() { k.spliceRingRefRelease(s) }}
	p.Splice = s
	k.splice.all = append(k.splice.all, s)
	return s
}

// spliceRingAlloc mirrors splice_ring_alloc() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): the 16 KiB ring, once. The ring's hooks are the
// model's yield points between copying bytes and publishing a cursor.
func (k *kernel) spliceRingAlloc(s *skPsockSplice) syscall.Errno {
	k.reach(fnSpliceRingAlloc)
	if s.Ring != nil {
		return errOK
	}
	r, err := ringbuf.NewWithHooks(spliceRingSize, &ringbuf.Hooks{
		BeforePublishHead: func(head, next uint64) {
			k.yieldCur("splice_ring_write: bytes copied, ring_head not yet published")
		},
		BeforePublishTail: func(tail, next uint64) {
			k.yieldCur("splice_ring_read: bytes copied out, ring_tail not yet published")
		},
	})
	if err != nil {
		panic(fmt.Sprintf("model: splice ring: %v", err))
	}
	s.Ring = r
	return errOK
}

// spliceRingFree mirrors splice_ring_free() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06).
func (k *kernel) spliceRingFree(s *skPsockSplice) {
	k.reach(fnSpliceRingFree)
	s.Ring = nil
}

// spliceWake mirrors splice_wake() (net/ipv4/tcp_bpf.c, RFC bpf-next
// 2026-06): smp_mb(), then wake every waiter if the wait queue is active
// (teardown).
func (k *kernel) spliceWake(sk *sock) {
	k.reach(fnSpliceWake)
	k.yieldCur("splice_wake: after smp_mb, before waitqueue_active")
	if sk.Wq.Len() > 0 {
		sk.Wq.wakeUp()
	}
}

// spliceWakeSync mirrors splice_wake_sync() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): after a producer's ring write, smp_mb() orders the
// ring_head publish before the waitqueue_active() (include/linux/wait.h,
// v6.18) load, pairing with set_current_state() (include/linux/sched.h,
// v6.18) in the receiver's wait; then wake with EPOLLIN. active, when not
// nil, is a waitqueue_active() value loaded earlier
// (mutSpliceWakeNoBarrier).
func (k *kernel) spliceWakeSync(sk *sock, active *bool) {
	k.reach(fnSpliceWakeSync)
	if active == nil {
		k.yieldCur("splice_wake_sync: after smp_mb, before waitqueue_active")
		a := sk.Wq.Len() > 0
		active = &a
	}
	if *active {
		sk.Wq.wakeUp()
	}
}

// tcpBpfSpliceSendmsg mirrors tcp_bpf_splice_sendmsg() (net/ipv4/tcp_bpf.c,
// RFC bpf-next 2026-06): the sendmsg of TCP_BPF_BASE (and RX) sockets.
// Bytes splice_send_ring did not take go through tcp_sendmsg.
func (k *kernel) tcpBpfSpliceSendmsg(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno) {
	k.reach(fnTcpBpfSpliceSendmsg)
	size := src.left()
	spliced := 0
	if p := skPsockGet(sk); p != nil {
		if skPsockIsSpliced(p) {
			spliced = k.spliceSendRing(t, sk, p, src, flags)
		}
		k.skPsockPut(sk, p)
	}
	if spliced < size {
		ret, err := k.tcpProt().Sendmsg(t, sk, src, flags)
		if err != 0 {
			if spliced > 0 {
				return spliced, errOK
			}
			return 0, err
		}
		return spliced + ret, errOK
	}
	return spliced, errOK
}

// spliceSendRing mirrors splice_send_ring() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): copy into the peer's ring while the peer is paired,
// this socket has no error and no SEND_SHUTDOWN, the peer's
// sk_receive_queue is empty and the ring has space; wake the peer once
// at the end. It returns the bytes it took (the rest goes to TCP).
func (k *kernel) spliceSendRing(t *task, sk *sock, p *psock, src *srcIter, flags int) int {
	k.reach(fnSpliceSendRing)
	_ = flags // unused in the RFC too (the CI bot's review of patch 1)
	self := p.Splice
	if self == nil {
		return 0
	}
	var active *bool // mutSpliceWakeNoBarrier: waitqueue_active loaded early
	self.senders++
	defer func() { self.senders-- }()
	total := 0
	for size := src.left(); size > 0; {
		var peerS *skPsockSplice
		space := 0
		if peer := self.Peer; peer != nil {
			ps := peer.Splice
			if ps != nil && ps.Ring != nil && sk.SkErr == 0 && sk.SkShutdown&sendShutdown == 0 &&
				peer.Sk.SkReceiveQueue.empty() {
				space = ps.Ring.Space()
				if space > 0 && ps.RingRef.tryGetLive() {
					peerS = ps
				}
			}
			if peerS != nil && k.mutated(mutSpliceWakeNoBarrier) && active == nil {
				a := peer.Sk.Wq.Len() > 0
				active = &a
			}
		}
		if peerS == nil {
			break
		}
		// The defect (a) window: the peer's receive queue was empty when
		// checked, TCP bytes of an earlier send may still be in flight.
		k.yieldCur("splice_send_ring: peer rcv_queue checked empty, before splice_ring_write")
		done := k.spliceRingWrite(sk, peerS, src, min(size, space))
		peerS.RingRef.put()
		if done == 0 {
			break
		}
		total += done
		size -= done
	}
	if total > 0 {
		if peer := self.Peer; peer != nil {
			k.spliceWakeSync(peer.Sk, active)
		}
	}
	return total
}

// spliceRingWrite mirrors splice_ring_write() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): copy up to size bytes of src at ring_head and publish
// the new head (ringbuf.Ring.Write, whose BeforePublishHead hook is a yield
// point). size never exceeds the space splice_ring_space found, so the
// write uses the cached tail only, as the RFC's does.
//
// The write is recorded (k.splice.writes: the sender, its stream offset
// and what was held in flight meanwhile) and its bytes are kept in the
// ring's shadow, which the reads check (ringShadow).
//
// Precondition: the caller holds s.RingRef.
func (k *kernel) spliceRingWrite(sender *sock, s *skPsockSplice, src *srcIter, size int) int {
	k.reach(fnSpliceRingWrite)
	if s.freed || s.Ring == nil {
		panic("model: splice_ring_write into a freed ring")
	}
	if s.writers++; s.writers > 1 {
		s.concurrentWrites = true
	}
	defer func() { s.writers-- }()
	segs, held := k.heldFor(s.Psock.Sk)
	off := src.streamOff()
	buf := make([]byte, size)
	var tags []Tag
	if k.pages.prov {
		tags = make([]Tag, size)
	}
	src.copyToTagged(buf, tags)
	markTags(tags, TagRing)
	if s.concurrentWrites {
		markTags(tags, TagRingWriters)
	}
	n, _ := s.Ring.Write(buf)
	if s.freed {
		panic("model: splice ring freed while a sender held ring_ref")
	}
	if n < size {
		src.revert(size - n)
	}
	if tags != nil {
		tags = tags[:n]
	}
	s.shadow.written(buf[:n], tags)
	k.splice.writes = append(k.splice.writes, RingWrite{Sock: sender.Name, Reader: s.Psock.Sk.Name, Off: off, Bytes: n, HeldSegs: segs, HeldBytes: held})
	return n
}

var mutRingCachedHeadStale = registerMutation("ring-cached-head-stale",
	"the ring's consumer never refreshes its cached head (ringbuf's CachedHead): bytes published after it stay unread")

// spliceRingRead mirrors splice_ring_read() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): copy up to size bytes out at ring_tail and publish the
// new tail. Unlike the RFC, whose consumer loads ring_head on every call,
// ringbuf's consumer caches Head and a read may stop at the cached head: a
// second read then loads Head, so a call returns every byte published
// before it, as the RFC's does.
func (k *kernel) spliceRingRead(s *skPsockSplice, dst *iovIter, size int) int {
	k.reach(fnSpliceRingRead)
	r := s.Ring
	if r == nil || size <= 0 {
		return 0
	}
	if k.mutated(mutRingCachedHeadStale) {
		// Read only what the cached head allows: Read refreshes Head
		// when its cache shows nothing, so stop before that.
		c := r.Cursors()
		size = min(size, int(ringbuf.CircCnt(c.CachedHead, c.Tail, uint64(r.Size()))))
		if size == 0 {
			return 0
		}
	}
	if s.readers++; s.readers > 1 {
		s.concurrentReads = true
	}
	defer func() { s.readers-- }()
	buf := make([]byte, size)
	n, _ := r.Read(buf)
	if n > 0 && n < size && !k.mutated(mutRingCachedHeadStale) {
		m, _ := r.Read(buf[n:])
		n += m
	}
	kind, msg, tags := s.shadow.read(buf[:n])
	if s.concurrentReads {
		markAllTags(tags, TagRing|TagRingReaders)
	}
	if msg != "" {
		f := ringFault{Reader: s.Psock.Sk.Name, Kind: kind, Site: "ring", Msg: msg}
		switch {
		case s.concurrentReads:
			f.Site = "ring/concurrent-readers"
		case s.concurrentWrites:
			f.Site = "ring/concurrent-writers"
		}
		k.splice.contentFaults = append(k.splice.contentFaults, f)
	}
	dst.copyInTagged(buf[:n], tags)
	return n
}

// spliceRingHasData mirrors splice_ring_has_data() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06).
func spliceRingHasData(s *skPsockSplice) bool {
	reach(fnSpliceRingHasData)
	return s.Ring != nil && s.Ring.HasData()
}

// spliceRecvReady mirrors splice_recv_ready() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): the receiver's wake condition.
func spliceRecvReady(sk *sock, s *skPsockSplice) bool {
	sk.k.reach(fnSpliceRecvReady)
	return spliceRingHasData(s) || !sk.SkReceiveQueue.empty() || sk.SkErr != 0 ||
		sk.SkShutdown&rcvShutdown != 0 || s.Peer == nil
}

// spliceBusyLoop mirrors splice_busy_loop() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06, patch 2): spin on the ring for the socket's
// SO_BUSY_POLL budget (sk_ll_usec) before parking. Each cpu_relax() is a
// yield point and costs a microsecond of virtual time. Unlike Linux, there
// are no signals.
func (k *kernel) spliceBusyLoop(t *task, sk *sock, ready func() bool) {
	k.reach(fnSpliceBusyLoop)
	if sk.SkLlUsec <= 0 {
		return
	}
	for i := 0; i < sk.SkLlUsec; i++ {
		t.yieldPoint("splice_busy_loop: cpu_relax")
		t.spin(time.Microsecond)
		if ready() {
			return
		}
	}
}

// Second bug zoo: more mutations of this file (mutation.go).
var (
	mutRingPollMissesRing = registerMutation("ring-poll-misses-ring",
		"loopback splice: tcp_bpf_is_readable tests only ingress_msg, not splice_ring_has_data: poll misses ring bytes")
	mutSpliceRecvSkipsRcvQueue = registerMutation("splice-recv-skips-rcv-queue",
		"loopback splice: tcp_bpf_splice_recvmsg drops the sk_receive_queue check on an empty ring: TCP bytes are not deferred to, -EAGAIN or a sleep instead")
)

// tcpBpfIsReadable mirrors tcp_bpf_is_readable() (net/ipv4/tcp_bpf.c, RFC
// bpf-next 2026-06): poll's view of a paired socket: ring data
// (splice_ring_has_data), else ingress_msg. It is the sock_is_readable of
// every tcp_bpf config, so a paired receiver in a map with an sk_skb
// verdict (TCP_BPF_RX, read by tcp_bpf_recvmsg_parser, which has no ring
// path) polls IN for ring bytes no recv returns (on the RFC's 6.12.118
// kernel too: loopback/rfc_verdict_strands_ring.trace).
func tcpBpfIsReadable(sk *sock) bool {
	sk.k.reach(fnTcpBpfIsReadable)
	p := skPsock(sk)
	if p == nil {
		return false
	}
	if p.Splice != nil && spliceRingHasData(p.Splice) && !sk.k.mutated(mutRingPollMissesRing) {
		return true
	}
	return len(p.IngressMsg) > 0
}

// tcpBpfSpliceRecvDispatch is the splice dispatch the RFC adds at the top
// of tcp_bpf_recvmsg() (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06): on a
// paired psock, tcp_bpf_splice_recvmsg runs first; bytes or an error end
// the call (done), otherwise the mainline path follows.
func (k *kernel) tcpBpfSpliceRecvDispatch(t *task, sk *sock, p *psock, dst *iovIter, flags int) (n int, err syscall.Errno, done bool) {
	if !k.prof.LoopbackSplice || !skPsockIsSpliced(p) {
		return 0, errOK, false
	}
	n, err = k.tcpBpfSpliceRecvmsg(t, sk, p, dst, flags)
	if n > 0 || err != 0 {
		return n, err, true
	}
	return 0, errOK, false
}

// tcpBpfSpliceRecvmsg mirrors tcp_bpf_splice_recvmsg() (net/ipv4/tcp_bpf.c,
// RFC bpf-next 2026-06, with patch 2's busy-poll): drain the ring, or
// defer to TCP (0) when sk_receive_queue has bytes, or report EOF, a gone
// pair (0), sk_err (not cleared: -sk->sk_err) or EAGAIN, or sleep until
// the sender publishes. MSG_PEEK returns 0 at once (ring bytes are
// invisible to it). Unlike Linux, there are no signals.
//
// What the RFC's 6.12.118 kernel showed, and the model does alike
// (testdata/traces/loopback/rfc_*.trace, goldens in
// testdata/golden/loopback/): a read returns as soon as the ring gave
// bytes (16383 of a 20000-byte send, the 3617 TCP bytes at the next read,
// MSG_WAITALL or not); a reset or a FIN ends a read only once the ring is
// empty; -ECONNRESET repeats on every read until a send clears sk_err; a
// blocking MSG_PEEK parks in tcp_msg_wait_data, which the ring write wakes
// without satisfying, and returns -EAGAIN.
func (k *kernel) tcpBpfSpliceRecvmsg(t *task, sk *sock, p *psock, dst *iovIter, flags int) (int, syscall.Errno) {
	k.reach(fnTcpBpfSpliceRecvmsg)
	if flags&msgPeek != 0 {
		return 0, errOK
	}
	s := p.Splice
	if s == nil {
		return 0, errOK
	}
	to := sk.sockRcvtimeo(flags&msgDontwait != 0)
	for {
		if n := k.spliceRingRead(s, dst, dst.left()); n > 0 {
			return n, errOK
		}
		// Between the empty ring and the checks that end the call: a
		// sender may publish and a FIN land here (defect (b)).
		t.yieldPoint("tcp_bpf_splice_recvmsg: ring empty, before the rcv_queue/shutdown checks")
		if !sk.SkReceiveQueue.empty() && !k.mutated(mutSpliceRecvSkipsRcvQueue) {
			return 0, errOK
		}
		if sk.SkErr != 0 {
			return 0, sk.SkErr
		}
		if sk.SkShutdown&rcvShutdown != 0 {
			return 0, errOK // EOF
		}
		if s.Peer == nil {
			return 0, errOK // pair gone
		}
		if to == 0 {
			return 0, errEAGAIN
		}
		k.spliceBusyLoop(t, sk, func() bool { return spliceRecvReady(sk, s) })
		if spliceRingHasData(s) {
			continue
		}
		to = t.waitEvent(&sk.Wq, to, "splice_recv_wait", func() bool { return spliceRecvReady(sk, s) })
	}
}

// bpfSockSplicePair mirrors bpf_sock_splice_pair() (net/ipv4/tcp_bpf.c,
// RFC bpf-next 2026-06): validate both sockets (splice_validate), take
// both psocks (-ENOENT), allocate both splice states and rings, and
// install the pair under both locks (-EEXIST if either side is paired);
// each side keeps a psock reference on the other. The KF_RELEASE
// reference on peer (the sockhash lookup's) is consumed on every path.
func (k *kernel) bpfSockSplicePair(sk, peer *sock) syscall.Errno {
	k.reach(fnBpfSockSplicePair)
	if sk == nil || peer == nil || sk == peer {
		return errEINVAL
	}
	sockHold(peer) // the sockhash lookup's reference, consumed below
	defer sockPut(peer)
	if err := spliceValidate(sk, peer); err != 0 {
		return err
	}
	pSelf := skPsockGet(sk)
	if pSelf == nil {
		return errENOENT
	}
	defer k.skPsockPut(sk, pSelf)
	pPeer := skPsockGet(peer)
	if pPeer == nil {
		return errENOENT
	}
	defer k.skPsockPut(peer, pPeer)
	selfS := k.spliceGetOrAlloc(pSelf)
	peerS := k.spliceGetOrAlloc(pPeer)
	if err := k.spliceRingAlloc(selfS); err != 0 {
		return err
	}
	if err := k.spliceRingAlloc(peerS); err != 0 {
		return err
	}
	if selfS.Peer != nil || peerS.Peer != nil {
		return syscall.EEXIST
	}
	if skPsockGet(sk) == nil {
		return errENOENT
	}
	if skPsockGet(peer) == nil {
		k.skPsockPut(sk, pSelf)
		return errENOENT
	}
	selfS.Peer, peerS.Peer = pPeer, pSelf
	return errOK
}

// spliceValidate mirrors splice_validate() with splice_state_ok()
// (net/ipv4/tcp_bpf.c, RFC bpf-next 2026-06): both TCP (always, in the
// model), ESTABLISHED or SYN_RECV. Unlike Linux, the model has no TCP
// repair mode and no urgent data, so those checks never fail.
func spliceValidate(a, b *sock) syscall.Errno {
	a.k.reach(fnSpliceValidate)
	ok := func(st tcpState) bool { return st == tcpEstablished || st == tcpSynRecv }
	if !ok(a.State) || !ok(b.State) {
		return errEINVAL
	}
	return errOK
}

// tcpBpfSpliceUnpair mirrors tcp_bpf_splice_unpair() (net/ipv4/tcp_bpf.c,
// RFC bpf-next 2026-06), which the RFC calls only from sk_psock_drop()
// (net/core/skmsg.c, v6.18): clear both peers under both locks, wake both
// sockets, drop the pair's two psock references. Since each side's
// reference keeps the other psock alive, sk_psock_drop never runs on a
// paired psock and this finds was_paired false (defect (b), the leak);
// should it ever find it true, the put of the psock being dropped would
// underflow its refcount, which the model reports.
func (k *kernel) tcpBpfSpliceUnpair(p *psock) {
	k.reach(fnTcpBpfSpliceUnpair)
	self := p.Splice
	if self == nil {
		return
	}
	peer := self.Peer
	if peer == nil {
		return
	}
	got := skPsockGet(peer.Sk)
	if got == nil {
		return
	}
	peerS := peer.Splice
	if peerS == nil {
		k.skPsockPut(peer.Sk, got)
		return
	}
	wasPaired := false
	if self.Peer == peer && peerS.Peer == p {
		self.Peer, peerS.Peer = nil, nil
		wasPaired = true
	}
	k.spliceWake(p.Sk)
	k.spliceWake(peer.Sk)
	if wasPaired {
		k.skPsockPut(peer.Sk, peer)
		if p.Refcnt <= 0 {
			panic(fmt.Sprintf("model: tcp_bpf_splice_unpair: psock of %s refcount underflow", p.Sk.Name))
		}
		k.skPsockPut(p.Sk, p)
	}
	k.skPsockPut(peer.Sk, got)
}

// tcpBpfSpliceDestroy mirrors tcp_bpf_splice_destroy() (net/ipv4/tcp_bpf.c,
// RFC bpf-next 2026-06), called from sk_psock_destroy() (net/core/skmsg.c,
// v6.18): kill the ring_ref; the release frees the ring once no sender
// holds it.
func (k *kernel) tcpBpfSpliceDestroy(p *psock) {
	k.reach(fnTcpBpfSpliceDestroy)
	if s := p.Splice; s != nil && !s.RingRef.dead {
		if s.RingRef.kill() {
			k.splice.killedInFlight++
		}
	}
}

// pair is the trace's late `pair A B`: bpf_sock_splice_pair(peer = B,
// skops->sk = A) now, as a sock_ops program at a later callback of A
// would call it; -EOPNOTSUPP without the loopback-splice profile.
func (r *run) pair(t *task, a, b string) syscall.Errno {
	if !r.k.prof.LoopbackSplice {
		return errEOPNOTSUPP
	}
	sa, sb := r.k.socks[a], r.k.socks[b]
	if err := sa.fget(); err != 0 {
		return err
	}
	defer sa.fput(t)
	if err := sb.fget(); err != 0 {
		return err
	}
	defer sb.fput(t)
	if r.k.prof.SpliceSeq {
		return r.k.pairModule(sa, sb) // the module's kfunc at A's, then B's callback
	}
	return r.k.bpfSockSplicePair(sa, sb)
}

// rendezvousEntries is max_entries of connPair's sockhash: more than the
// sockets of any trace, so that no insert fails for room.
const rendezvousEntries = 4096

// rendezvousKey is the key under which the pairing program inserts a
// socket: its 4-tuple (local, remote). Unlike Linux, the model has no
// addresses or ports; a socket's place in the run's connection order
// stands for each end. The passive end looks its active peer up under
// rendezvousKey(peer, self), the reversed tuple.
func rendezvousKey(local, remote *sock) int64 {
	return int64(local.idx)<<16 | int64(remote.idx)
}

// connPair is `conn A B pair`: the sock_ops program the RFC's selftest
// attaches to the cgroup, run at A's BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB
// (tcp_finish_connect → tcp_init_transfer), which inserts A and finds no
// peer, then at B's BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB (tcp_rcv_state_process
// in TCP_SYN_RECV → tcp_init_transfer, before B becomes ESTABLISHED),
// which inserts B, finds A and calls bpf_sock_splice_pair(peer = A,
// skops->sk = B). The model's conn is one atomic step, so both run at
// its end, in that order, and B is put in SYN_RECV for its callback.
// It returns the pairing's errno; without the RFC the program does not
// load (no such kfunc): -EOPNOTSUPP, and nothing is inserted.
//
// The rendezvous sockhash is a real map (k.rendezvous): both sockets get
// a psock with tcp_bpf's protos and no programs, which lives on when a
// trace map deletes them, and sock_map_close takes them out of it.
func (k *kernel) connPair(a, b *sock) syscall.Errno {
	if !k.prof.LoopbackSplice {
		return errEOPNOTSUPP
	}
	if k.prof.SpliceSeq {
		return k.connPairModule(a, b) // the tcp_splice module (splice_seq.go)
	}
	if k.rendezvous == nil {
		m, err := mapCreate("rendezvous", trace.SockHash, rendezvousEntries)
		if err != 0 {
			return err
		}
		k.rendezvous = m
	}
	if _, err := k.sockOpsSplicePair(a, b); err != 0 {
		return err
	}
	st := b.State
	if st == tcpEstablished {
		b.State = tcpSynRecv
	}
	paired, err := k.sockOpsSplicePair(b, a)
	b.State = st
	if err == 0 && !paired {
		return errENOENT
	}
	return err
}

// sockOpsSplicePair mirrors the sock_ops call of tcp_init_transfer()
// (net/ipv4/tcp_input.c, v6.18) with the pairing program of connPair:
// bpf_sock_hash_update() (net/core/sock_map.c, v6.18) of skops->sk under
// its 4-tuple, then a lookup of the reversed tuple and, when the peer is
// there, bpf_sock_splice_pair(peer, skops->sk). The update runs in the
// callback's context, without lock_sock and without the syscall's state
// check (sock_map_op_okay allows both ESTABLISHED callbacks). It reports
// whether the kfunc ran and paired, and the failing errno.
func (k *kernel) sockOpsSplicePair(sk, remote *sock) (bool, syscall.Errno) {
	k.reach(fnSockOpsSplicePair)
	m := k.rendezvous
	if err := k.mapUpdateCommon(m, rendezvousKey(sk, remote), sk); err != 0 {
		return false, err
	}
	peer := m.lookup(rendezvousKey(remote, sk))
	if peer == nil {
		return false, errOK
	}
	if err := k.bpfSockSplicePair(sk, peer); err != 0 {
		return false, err
	}
	return true, errOK
}
