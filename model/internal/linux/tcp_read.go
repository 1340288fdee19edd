package linux

import (
	"syscall"

	"github.com/splicecheck/splicecheck/trace"
)

// The receive side of TCP that works on the socket's sk_receive_queue
// alone: tcp_recvmsg, tcp_read_sock, tcp_recv_skb and tcp_read_skb
// (net/ipv4/tcp.c, v6.18). Both transports (refTCP and the bridge to an
// external TCP, tcp_ext.go) queue in-order skbs on sock.SkReceiveQueue
// with their own rcv_nxt and copied_seq, so the code that consumes the
// queue is shared: the transports differ only in where copied_seq lives
// and in what tcp_cleanup_rbuf does.

// rcvTransport is what the shared receive paths need from a transport.
type rcvTransport interface {
	// copiedSeqPtr returns the socket's copied_seq.
	copiedSeqPtr(sk *sock) *uint32
	// CleanupRbuf mirrors tcp_cleanup_rbuf() (net/ipv4/tcp.c, v6.18); see
	// tcp.
	CleanupRbuf(sk *sock, copied int)
	// RcvSpaceAdjust mirrors tcp_rcv_space_adjust() (net/ipv4/tcp_input.c,
	// v6.18); see tcp.
	RcvSpaceAdjust(sk *sock)
}

func (k *kernel) tcpRecvmsgLocked(tr rcvTransport, t *task, sk *sock, dst *iovIter, flags int) (int, syscall.Errno) {
	sk.sockOwnedByMe(t)
	cs := tr.copiedSeqPtr(sk)
	length := dst.left()
	peek := flags&msgPeek != 0
	to := sk.sockRcvtimeo(flags&msgDontwait != 0)
	// sock_rcvlowat() (include/net/sock.h, v6.18).
	target := sk.SkRcvlowat
	if flags&msgWaitall != 0 {
		target = length
	} else if target > length {
		target = length
	}
	if target == 0 {
		target = 1
	}
	seq := cs
	peekSeq := *cs
	if peek {
		seq = &peekSeq
	}
	copied := 0
	for first := true; first || length > 0; first = false {
		var found *skBuff
		var offset int
		fin := false
		last := sk.SkReceiveQueue.peekTail()
		for _, skb := range sk.SkReceiveQueue.all() {
			offset = int(int32(*seq - skb.Seq))
			if offset < 0 {
				break
			}
			if offset < skb.Len {
				found = skb
				break
			}
			if skb.TCPFlags&tcphdrFIN != 0 {
				found, fin = skb, true
				break
			}
		}
		if found != nil && fin {
			*seq++
			if !peek {
				k.tcpEatRecvSkb(sk, found)
			}
			break
		}
		if found != nil {
			used := found.Len - offset
			if used > length {
				used = length
			}
			buf := make([]byte, used)
			tags := found.copyBitsTagged(offset, buf)
			dst.copyInTagged(buf, tags)
			*seq += uint32(used)
			copied += used
			length -= used
			tr.RcvSpaceAdjust(sk)
			if used+offset < found.Len {
				continue
			}
			if found.TCPFlags&tcphdrFIN != 0 {
				*seq++
				if !peek {
					k.tcpEatRecvSkb(sk, found)
				}
				break
			}
			if !peek {
				k.tcpEatRecvSkb(sk, found)
			}
			continue
		}
		if copied >= target {
			break
		}
		if copied > 0 {
			if to == 0 || sk.SkErr != 0 || sk.State == tcpClose || sk.SkShutdown&rcvShutdown != 0 {
				break
			}
		} else {
			if sk.SockDone {
				break
			}
			if sk.SkErr != 0 {
				return 0, sk.sockError()
			}
			if sk.SkShutdown&rcvShutdown != 0 {
				break
			}
			if sk.State == tcpClose {
				return 0, errENOTCONN
			}
			if to == 0 {
				return 0, errEAGAIN
			}
		}
		if copied > 0 {
			tr.CleanupRbuf(sk, copied)
		}
		sk.skWaitDataLocked(t, &to, "tcp_recvmsg_locked", func() string { return seqHoleWhy(sk, *cs) }, last)
		if peek && peekSeq-uint32(copied) != *cs {
			peekSeq = *cs + uint32(copied)
		}
	}
	if copied > 0 && !peek {
		tr.CleanupRbuf(sk, copied)
	}
	return copied, errOK
}

// tcpEatRecvSkb mirrors tcp_eat_recv_skb() (net/ipv4/tcp.c, v6.18): unlink
// and free a consumed skb.
func (k *kernel) tcpEatRecvSkb(sk *sock, skb *skBuff) {
	k.reach(fnTcpEatRecvSkb)
	sk.SkReceiveQueue.unlink(skb)
	k.freeSkb(skb)
}

// tcpReadSock mirrors tcp_read_sock() (net/ipv4/tcp.c, v6.18) for
// tcp.ReadSock.
func (k *kernel) tcpReadSock(tr rcvTransport, sk *sock, cursor *uint32, desc *readDesc, actor func(desc *readDesc, skb *skBuff, off, n int) int) int {
	k.reach(fnTcpReadSock)
	noack := cursor != nil
	if cursor == nil {
		cursor = tr.copiedSeqPtr(sk)
	}
	seq := *cursor
	copied := 0
	if sk.State == tcpListen {
		return -int(errENOTCONN)
	}
	for {
		skb, offset := k.tcpRecvSkb(sk, seq)
		if skb == nil {
			break
		}
		if offset < skb.Len {
			n := skb.Len - offset
			used := actor(desc, skb, offset, n)
			if used <= 0 {
				if copied == 0 {
					copied = used
				}
				break
			}
			if used > n {
				used = n
			}
			seq += uint32(used)
			copied += used
			offset += used
			skb2, off2 := k.tcpRecvSkb(sk, seq-1)
			if skb2 == nil {
				break
			}
			if off2+1 != skb2.Len {
				continue
			}
			skb = skb2
		}
		if skb.TCPFlags&tcphdrFIN != 0 {
			k.tcpEatRecvSkb(sk, skb)
			seq++
			break
		}
		k.tcpEatRecvSkb(sk, skb)
		if desc.Count <= 0 {
			break
		}
		*cursor = seq
	}
	*cursor = seq
	if !noack {
		tr.RcvSpaceAdjust(sk)
	}
	if copied > 0 && !noack {
		tr.CleanupRbuf(sk, copied)
	}
	return copied
}

// tcpRecvSkb mirrors tcp_recv_skb() (net/ipv4/tcp.c, v6.18): the skb
// holding seq, eating skbs that were fully consumed (or hold nothing but a
// FIN before it).
func (k *kernel) tcpRecvSkb(sk *sock, seq uint32) (*skBuff, int) {
	k.reach(fnTcpRecvSkb)
	for {
		skb := sk.SkReceiveQueue.peek()
		if skb == nil {
			return nil, 0
		}
		// u32 arithmetic, as in C: a seq before the skb (a reader whose
		// cursor lags the queue, like a stream parser's after
		// tcp_splice_read consumed the skbs it had not seen) is a huge
		// offset, and the skb is eaten unless it carries a FIN.
		offset := seq - skb.Seq
		if offset < uint32(skb.Len) || skb.TCPFlags&tcphdrFIN != 0 {
			return skb, int(offset)
		}
		k.tcpEatRecvSkb(sk, skb)
	}
}

// tcpReadSkb mirrors tcp_read_skb() (net/ipv4/tcp.c, v6.18): it unlinks every queued
// skb, makes sk its owner without receive memory (skb_set_owner_sk_safe)
// and hands it to actor, stopping after a FIN. An skb
// a read has partly consumed goes whole, its read bytes too (a rewind).
func (k *kernel) tcpReadSkb(sk *sock, actor func(sk *sock, skb *skBuff) int) int {
	k.reach(fnTcpReadSkb)
	if sk.State == tcpListen {
		return -int(errENOTCONN)
	}
	copied := 0
	for {
		skb := sk.SkReceiveQueue.peek()
		if skb == nil {
			break
		}
		sk.SkReceiveQueue.unlink(skb)
		skbSetOwnerSkSafe(skb, sk)
		if back := int32(k.tcp.CopiedSeq(sk) - skb.Seq); back > 0 && int(back) < skb.Len {
			// The whole skb goes to the actor, the bytes a read
			// already returned from it too: they are delivered again.
			k.stats.Rewinds = append(k.stats.Rewinds, rewind{Sock: sk.Name, Fn: "tcp_read_skb", By: int(back)})
		}
		fin := skb.TCPFlags&tcphdrFIN != 0
		used := actor(sk, skb)
		if used < 0 {
			if copied == 0 {
				copied = used
			}
			break
		}
		copied += used
		if fin {
			break
		}
	}
	return copied
}

// seqHoleWhy says, for a lost-wakeup report, why a reader of sk's
// receive queue has bytes queued it is not woken for: the queue's first
// skb starts past copied_seq (the copied_seq hole a psock leaves when it
// took bytes off the queue without advancing copied_seq, and was then
// dropped: bytes tcp_recvmsg_locked can never return), or a stream
// parser owns the queued bytes ("strparser": it wakes nobody until a
// message is whole), or copied_seq is at or past the end of what is
// queued ("copied_seq-ahead": a stream parser's overshoot moved it past
// rcv_nxt, so tcp_data_ready's tcp_epollin_ready sees nothing to read in
// the skbs that arrive later and calls no sk_data_ready; the reader's
// offset into them is past their end).
func seqHoleWhy(sk *sock, copiedSeq uint32) string {
	if sk.soSplice != nil {
		// FreeBSD: a spliced source's data wake-ups go to its splice's
		// worker, not to readers (soSplice diverts SkDataReady).
		return "so-splice-source"
	}
	if skb := sk.SkReceiveQueue.peek(); skb != nil && int32(skb.Seq-copiedSeq) > 0 {
		return "copied_seq-hole"
	}
	if skb := sk.SkReceiveQueue.peekTail(); skb != nil && int32(skb.EndSeq-copiedSeq) <= 0 {
		return "copied_seq-ahead"
	}
	p := skPsock(sk)
	switch {
	case p == nil:
	case p.strp != nil:
		return "strparser"
	case selfRedirect(sk, p.Progs.StreamVerdict):
		return "sk_receive_queue"
	}
	return ""
}

// selfRedirect reports whether verdict program prog redirects sk's bytes
// to sk itself (the key it redirects to holds sk).
func selfRedirect(sk *sock, prog *prog) bool {
	return prog != nil && prog.Spec.Verdict == trace.VerdictRedirect && prog.Map != nil && prog.Map.lookup(prog.Spec.Key) == sk
}
