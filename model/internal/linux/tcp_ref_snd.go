package linux

import "syscall"

// The reference TCP's send path: sendmsg and sendpage, size goals, Nagle,
// TSO deferral, tcp_write_xmit and transmission, and send-buffer space.

// SendmsgLocked implements TCP (tcp_sendmsg_locked, net/ipv4/tcp.c,
// v6.18): copy into the task's page frag (sendLocked).
func (r *refTCP) SendmsgLocked(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno) {
	sk.sockOwnedByMe(t)
	return r.sendLocked(t, sk, flags, src.left(), func(skb *skBuff, max int) (int, bool) {
		pf := &t.frag
		r.k.pages.refill(pf)
		if !skb.canAppendFrag(pf.Page, pf.Offset) {
			return 0, false
		}
		n := max
		if room := pf.Size - pf.Offset; room < n {
			n = room
		}
		src.copyToTagged(pf.Page.bytes(pf.Offset, n), pf.Page.tagsAt(pf.Offset, n))
		skb.appendFrag(pf.Page, pf.Offset, n)
		pf.Offset += n
		return n, true
	})
}

// SendPageLocked implements TCP (tcp_sendmsg_locked with
// MSG_SPLICE_PAGES: skb_splice_from_iter takes page references).
func (r *refTCP) SendPageLocked(t *task, sk *sock, p *page, off, n int, flags int) (int, syscall.Errno) {
	sk.sockOwnedByMe(t)
	done := 0
	return r.sendLocked(t, sk, flags, n, func(skb *skBuff, max int) (int, bool) {
		if !skb.canAppendFrag(p, off+done) {
			return 0, false
		}
		skb.appendFrag(p, off+done, max)
		done += max
		return max, true
	})
}

// sendLocked mirrors the loop of tcp_sendmsg_locked() (net/ipv4/tcp.c,
// v6.18) with fill as the copy step: fill the tail skb to size_goal, a
// new skb (its head charged to sk_wmem_queued) while sk_wmem_queued is
// below sk_sndbuf, processing the ACKs on the socket's own backlog
// every 16 new skbs (sk_flush_backlog, which lets the size goal follow
// the peer's window); a full skb at the send head goes at once
// (tcp_push_one), and past half the largest window a push is forced.
// Out of send space it pushes what it has and waits
// (sk_stream_wait_memory).
func (r *refTCP) sendLocked(t *task, sk *sock, flags, size int, fill func(skb *skBuff, max int) (int, bool)) (sent int, serr syscall.Errno) {
	r.k.reach(fnRefTCPSendLocked)
	sk.sockOwnedByMe(t)
	tp := tcpSk(sk)
	// MSG_ZEROCOPY on a SOCK_ZEROCOPY socket: an id for the send, put
	// back if it fails having sent nothing (out_err), else the sender's
	// reference dropped (out). Loopback has NETIF_F_SG: zc is MSG_ZEROCOPY.
	var uarg *ubufInfo
	if flags&msgZerocopy != 0 && size > 0 && sk.sockZerocopy {
		var tail *ubufInfo
		if n := len(tp.writeQueue); n > 0 {
			tail = tp.writeQueue[n-1].uarg
		}
		uarg = r.k.msgZerocopyRealloc(sk, size, tail)
		defer func() {
			if serr != 0 && sent == 0 {
				netZcopyPutAbort(uarg, true)
			} else {
				netZcopyPut(uarg)
			}
		}()
	}
	to := maxTimeout
	if flags&msgDontwait != 0 {
		to = 0
	}
	copied := 0
	processBacklog := 0
	var err syscall.Errno
	mss, sizeGoal := r.sendMSS(tp)
	if err = r.k.tcpSendPrologue(sk); err != 0 {
		return r.sendError(tp, copied, flags, mss, err)
	}
	for copied < size {
		var skb *skBuff
		copy := 0
		if n := len(tp.writeQueue); n > 0 {
			skb = tp.writeQueue[n-1]
			copy = sizeGoal - skb.Len
			if skb.TCPFlags&tcphdrFIN != 0 {
				copy = 0
			}
		}
		if copy <= 0 {
			if !tp.streamMemoryFree() {
				if err = r.waitForSpace(t, tp, flags, copied, &to); err != 0 {
					return r.sendError(tp, copied, flags, mss, err)
				}
				mss, sizeGoal = r.sendMSS(tp)
				continue
			}
			if processBacklog >= 16 {
				processBacklog = 0
				if sk.flushBacklog() {
					// restart: the ACKs may have changed the MSS.
					mss, sizeGoal = r.sendMSS(tp)
					if err = r.k.tcpSendPrologue(sk); err != 0 {
						return r.sendError(tp, copied, flags, mss, err)
					}
					continue
				}
			}
			skb = r.streamAllocSkb(tp)
			processBacklog++
			copy = sizeGoal
		}
		copy = min(copy, size-copied)
		n, ok := 0, false
		if uarg == nil || skb.uarg == nil || skb.uarg == uarg {
			n, ok = fill(skb, copy)
		}
		if !ok {
			// MAX_SKB_FRAGS, or skb_zerocopy_iter_stream's -EEXIST (the
			// skb holds another send's zero-copy data): tcp_mark_push,
			// then a new segment.
			tp.markPush(skb)
			if !tp.streamMemoryFree() {
				if err = r.waitForSpace(t, tp, flags, copied, &to); err != 0 {
					return r.sendError(tp, copied, flags, mss, err)
				}
				mss, sizeGoal = r.sendMSS(tp)
				continue
			}
			r.streamAllocSkb(tp)
			processBacklog++
			continue
		}
		if uarg != nil && skb.uarg == nil {
			skbZcopySet(skb, uarg) // skb_zerocopy_iter_stream
		}
		tp.wmemQueued += n
		sk.memSchedule(n) // tcp_wmem_schedule
		sk.memCharge(n)
		skb.EndSeq += uint32(n)
		tp.WriteSeq += uint32(n)
		copied += n
		if copied == size {
			break
		}
		if skb.Len < sizeGoal {
			continue
		}
		if tp.forcedPush() {
			tp.markPush(skb)
			r.pushPendingFrames(tp, mss, tcpNaglePush)
		} else if skb == tp.sendHead() {
			r.pushOne(tp, mss)
		}
	}
	if copied > 0 {
		r.tcpPush(tp, flags, mss, tp.nonagle)
	}
	return copied, errOK
}

// waitForSpace is tcp_sendmsg_locked's wait_for_space: SOCK_NOSPACE, the
// empty skb dropped, what was copied pushed, then sk_stream_wait_memory.
func (r *refTCP) waitForSpace(t *task, tp *tcpSock, flags, copied int, to *timeo) syscall.Errno {
	tp.sk.nospace = true
	r.removeEmptySkb(tp)
	if copied > 0 {
		mss, _ := r.sendMSS(tp)
		r.tcpPush(tp, flags&^msgMore, mss, tcpNaglePush)
	}
	return r.k.skStreamWaitMemoryLocked(t, tp.sk, to)
}

// sendError is tcp_sendmsg_locked's do_error: what was copied is pushed
// and returned, else the error (sk_stream_error).
func (r *refTCP) sendError(tp *tcpSock, copied, flags, mss int, err syscall.Errno) (int, syscall.Errno) {
	r.removeEmptySkb(tp)
	if copied > 0 {
		r.tcpPush(tp, flags, mss, tp.nonagle)
		return copied, errOK
	}
	return 0, skStreamError(tp.sk, err)
}

// syncMSS mirrors tcp_sync_mss() (net/ipv4/tcp_output.c, v6.18) for the
// loopback path MTU: the MSS less the options, bounded by half the
// largest window.
func (r *refTCP) syncMSS(tp *tcpSock) {
	r.k.reach(fnRefTCPSyncMSS)
	tp.mssCache = max(tp.boundToHalfWnd(tcpAdvMSS), 1)
}

// sendMSS mirrors tcp_send_mss() and tcp_xmit_size_goal()
// (net/ipv4/tcp.c, v6.18): the MSS and the size an skb of sendmsg is
// filled to, which on loopback (sk_gso_max_size below one unbounded MSS)
// is one MSS.
func (r *refTCP) sendMSS(tp *tcpSock) (mss, sizeGoal int) {
	r.k.reach(fnRefTCPSendMSS)
	mss = tp.mssCache
	newGoal := tp.boundToHalfWnd(tcpGSOMaxSize)
	goal := tp.gsoSegs * mss
	if newGoal < goal || newGoal >= goal+mss {
		tp.gsoSegs = newGoal / mss
		goal = tp.gsoSegs * mss
	}
	return mss, max(goal, mss)
}

// tsoSegs mirrors tcp_set_skb_tso_segs() (net/ipv4/tcp_output.c, v6.18),
// returning the tcp_skb_pcount() it sets: the MSS-sized segments of skb.
func tsoSegs(skb *skBuff, mss int) int {
	reach(fnTsoSegs)
	if skb.Len <= mss {
		return 1
	}
	return (skb.Len + mss - 1) / mss
}

// streamAllocSkb mirrors tcp_stream_alloc_skb() and tcp_skb_entail()
// (net/ipv4/tcp.c, v6.18): a new skb at write_seq, its head's truesize
// charged to sk_wmem_queued, at the tail of the write queue.
func (r *refTCP) streamAllocSkb(tp *tcpSock) *skBuff {
	r.k.reach(fnRefTCPStreamAllocSkb)
	skb := &skBuff{Seq: tp.WriteSeq, EndSeq: tp.WriteSeq, Truesize: r.conf().SkbHeadTruesize}
	tp.writeQueue = append(tp.writeQueue, skb)
	tp.wmemQueued += skb.Truesize
	tp.sk.memSchedule(skb.Truesize)
	tp.sk.memCharge(skb.Truesize)
	return skb
}

// removeEmptySkb mirrors tcp_remove_empty_skb() (net/ipv4/tcp.c, v6.18).
func (r *refTCP) removeEmptySkb(tp *tcpSock) {
	r.k.reach(fnRefTCPRemoveEmptySkb)
	n := len(tp.writeQueue)
	if n == 0 {
		return
	}
	skb := tp.writeQueue[n-1]
	if skb.Seq == skb.EndSeq && skb.TCPFlags&tcphdrFIN == 0 {
		tp.writeQueue = tp.writeQueue[:n-1]
		tp.wmemQueued -= skb.Truesize
		tp.sk.memUncharge(skb.Truesize)
		r.k.pages.kfreeSkb(skb)
	}
}

// streamMemoryFree mirrors __sk_stream_memory_free() (include/net/sock.h,
// v6.18) with the notsent_lowat of tcp_stream_memory_free()
// (net/ipv4/tcp_ipv4.c, v6.18) at its default (unlimited): sk_wmem_queued
// below sk_sndbuf.
func (tp *tcpSock) streamMemoryFree() bool {
	reach(fnTcpSockStreamMemoryFree)
	return tp.wmemQueued < tp.sk.SkSndbuf
}

// forcedPush is forced_push() (net/ipv4/tcp.c, v6.18).
func (tp *tcpSock) forcedPush() bool {
	reach(fnTcpSockForcedPush)
	return int32(tp.WriteSeq-(tp.pushedSeq+uint32(tp.maxWindow>>1))) > 0
}

// markPush mirrors tcp_mark_push() (net/ipv4/tcp.c, v6.18).
func (tp *tcpSock) markPush(skb *skBuff) {
	reach(fnTcpSockMarkPush)
	skb.tcpPSH = true
	tp.pushedSeq = tp.WriteSeq
}

// sendHead mirrors tcp_send_head() (include/net/tcp.h, v6.18): the
// first skb not yet sent.
func (tp *tcpSock) sendHead() *skBuff {
	reach(fnTcpSockSendHead)
	if len(tp.writeQueue) == 0 {
		return nil
	}
	return tp.writeQueue[0]
}

// tcpPush mirrors tcp_push() (net/ipv4/tcp.c, v6.18) on loopback, where
// autocorking never holds (loopback_xmit orphans every skb, so
// sk_wmem_alloc is back to its base as soon as it is sent): mark the
// tail pushed unless MSG_MORE, which corks (TCP_NAGLE_CORK), then push
// the pending frames.
func (r *refTCP) tcpPush(tp *tcpSock, flags, mss, nonagle int) {
	r.k.reach(fnRefTCPTcpPush)
	n := len(tp.writeQueue)
	if n == 0 {
		return
	}
	if flags&msgMore == 0 || tp.forcedPush() {
		tp.markPush(tp.writeQueue[n-1])
	}
	if flags&msgMore != 0 {
		nonagle = tcpNagleCork
	}
	r.pushPendingFrames(tp, mss, nonagle)
}

// pushPendingFrames mirrors __tcp_push_pending_frames()
// (net/ipv4/tcp_output.c, v6.18): when tcp_write_xmit sends nothing and
// leaves data queued with nothing in flight (a corked or Nagle-held
// segment, a closed window), tcp_check_probe_timer.
func (r *refTCP) pushPendingFrames(tp *tcpSock, mss, nonagle int) {
	r.k.reach(fnRefTCPPushPendingFrames)
	if tp.sk.State == tcpClose {
		return
	}
	if !r.writeXmit(tp, mss, nonagle, 0) && tp.packetsOut == 0 && len(tp.writeQueue) > 0 {
		r.checkProbeTimer(tp)
	}
}

// pushOne mirrors tcp_push_one() (net/ipv4/tcp_output.c, v6.18): send
// the full skb at the send head.
func (r *refTCP) pushOne(tp *tcpSock, mss int) {
	r.k.reach(fnRefTCPPushOne)
	r.writeXmit(tp, mss, tcpNaglePush, 1)
}

// minshallCheck mirrors tcp_minshall_check() (net/ipv4/tcp_output.c,
// v6.18): a small segment is in flight.
func (tp *tcpSock) minshallCheck() bool {
	reach(fnTcpSockMinshallCheck)
	return int32(tp.sndSml-tp.SndUna) > 0 && int32(tp.sndSml-tp.SndNxt) <= 0
}

// nagleCheck mirrors tcp_nagle_check() (net/ipv4/tcp_output.c, v6.18):
// a partial segment waits while corked, or (Nagle, with Minshall's
// change) while a small segment is unacknowledged.
func (r *refTCP) nagleCheck(tp *tcpSock, partial bool, nonagle int) bool {
	r.k.reach(fnRefTCPNagleCheck)
	return partial && (nonagle&tcpNagleCork != 0 ||
		nonagle == 0 && tp.packetsOut > 0 && tp.minshallCheck())
}

// nagleTest mirrors tcp_nagle_test() (net/ipv4/tcp_output.c, v6.18).
func (r *refTCP) nagleTest(tp *tcpSock, skb *skBuff, mss, nonagle int) bool {
	r.k.reach(fnRefTCPNagleTest)
	if nonagle&tcpNaglePush != 0 || skb.TCPFlags&tcphdrFIN != 0 {
		return true
	}
	return !r.nagleCheck(tp, skb.Len < mss, nonagle)
}

// sndWndTest mirrors tcp_snd_wnd_test() (net/ipv4/tcp_output.c, v6.18):
// the first MSS of skb fits the peer's window (the sender's silly window
// avoidance: a segment shorter than the MSS is not cut to a small window
// unless it is all the skb holds).
func (r *refTCP) sndWndTest(tp *tcpSock, skb *skBuff, mss int) bool {
	r.k.reach(fnRefTCPSndWndTest)
	end := skb.EndSeq
	if skb.Len > mss {
		end = skb.Seq + uint32(mss)
	}
	return int32(end-tp.wndEnd()) <= 0
}

// cwndTest mirrors tcp_cwnd_test() (net/ipv4/tcp_output.c, v6.18): how
// many segments the congestion window allows now, at most half of it.
func (r *refTCP) cwndTest(tp *tcpSock) int {
	r.k.reach(fnRefTCPCwndTest)
	if tp.packetsOut >= tp.sndCwnd {
		return 0
	}
	return min(max(tp.sndCwnd>>1, 1), tp.sndCwnd-tp.packetsOut)
}

// mssSplitPoint mirrors tcp_mss_split_point() (net/ipv4/tcp_output.c,
// v6.18): how much of skb to send now, within the window and maxSegs
// segments, a partial last segment only if Nagle allows it.
func (r *refTCP) mssSplitPoint(tp *tcpSock, skb *skBuff, mss, maxSegs, nonagle int) int {
	r.k.reach(fnRefTCPMssSplitPoint)
	window := int(tp.wndEnd() - skb.Seq)
	maxLen := mss * maxSegs
	if maxLen <= window && skb != tp.writeQueue[len(tp.writeQueue)-1] {
		return maxLen
	}
	needed := min(skb.Len, window)
	if maxLen <= needed {
		return maxLen
	}
	partial := needed % mss
	if r.nagleCheck(tp, partial != 0, nonagle) {
		return needed - partial
	}
	return needed
}

// tsoShouldDefer mirrors tcp_tso_should_defer() (net/ipv4/tcp_output.c,
// v6.18): hold a multi-segment skb that the window or cwnd would cut,
// hoping an ACK soon allows all of it.
//
// Unlike Linux, which decides by the clock (the last write less than a
// millisecond ago, and the next ACK already overdue), the model holds
// only inside the sender's system call (its writes are recent) while
// the ACK is overdue: it waits on the sender's own backlog, or the peer
// delays it.
func (r *refTCP) tsoShouldDefer(tp *tcpSock, skb *skBuff, maxSegs int) bool {
	r.k.reach(fnRefTCPTsoShouldDefer)
	if !tp.sk.Owned || len(tp.sk.Backlog) == 0 && !tp.delackPendingAtPeer() {
		return false
	}
	sendWin := int(tp.wndEnd() - skb.Seq)
	congWin := (tp.sndCwnd - tp.packetsOut) * tp.mssCache
	limit := min(sendWin, congWin)
	if limit >= maxSegs*tp.mssCache {
		return false
	}
	if skb != tp.writeQueue[len(tp.writeQueue)-1] && limit >= skb.Len {
		return false
	}
	chunk := min(tp.sndWnd, tp.sndCwnd*tp.mssCache) / tcpTSOWinDivisor
	if limit >= chunk {
		return false
	}
	if len(tp.rtxQueue) == 0 {
		return false
	}
	if congWin < sendWin {
		if congWin <= skb.Len {
			return true
		}
	} else if sendWin <= skb.Len {
		return true
	}
	return skb.TCPFlags&tcphdrFIN == 0
}

// delackPendingAtPeer reports whether the peer holds back an ACK (its
// delayed ACK timer is armed).
func (tp *tcpSock) delackPendingAtPeer() bool {
	return tp.peer != nil && tp.peer.ackPending&icskAckTimer != 0
}

// growSkb mirrors tcp_grow_skb() (net/ipv4/tcp_output.c, v6.18): move up
// to amount bytes of the next skb into skb, freeing the next one when
// emptied.
func (r *refTCP) growSkb(tp *tcpSock, i, amount int) {
	r.k.reach(fnRefTCPGrowSkb)
	if i+1 >= len(tp.writeQueue) {
		return
	}
	skb, next := tp.writeQueue[i], tp.writeQueue[i+1]
	if skb.TCPFlags&tcphdrFIN != 0 {
		return
	}
	n := min(amount, next.Len)
	if n == 0 || !r.k.pages.skbShift(skb, next, n) {
		return
	}
	skb.EndSeq += uint32(n)
	next.Seq += uint32(n)
	if next.Len == 0 {
		skb.EndSeq = next.EndSeq
		skb.TCPFlags |= next.TCPFlags
		skb.tcpPSH = skb.tcpPSH || next.tcpPSH
		tp.writeQueue = append(tp.writeQueue[:i+1], tp.writeQueue[i+2:]...)
		tp.wmemQueued -= next.Truesize
		tp.sk.memUncharge(next.Truesize)
		r.k.pages.kfreeSkb(next)
	}
}

// skbShift mirrors skb_shift() (net/core/skbuff.c, v6.18) for skbs of
// page fragments: move the first n bytes of from's fragments to the end
// of to, with their truesize, if MAX_SKB_FRAGS allows.
func (a *pageAlloc) skbShift(to, from *skBuff, n int) bool {
	reach(fnPageAllocSkbShift)
	need := 0
	left := n
	for i, f := range from.Frags {
		if left == 0 {
			break
		}
		take := min(left, f.Size)
		if i == 0 && len(to.Frags) > 0 {
			last := to.Frags[len(to.Frags)-1]
			if last.Page == f.Page && last.Off+last.Size == f.Off {
				left -= take
				continue
			}
		}
		need++
		left -= take
	}
	if len(to.Frags)+need > maxSkbFrags {
		return false
	}
	for n > 0 {
		f := &from.Frags[0]
		take := min(n, f.Size)
		if k := len(to.Frags); k > 0 && to.Frags[k-1].Page == f.Page && to.Frags[k-1].Off+to.Frags[k-1].Size == f.Off {
			to.Frags[k-1].Size += take
			if take == f.Size {
				a.putPage(f.Page) // the merged fragment's reference
			}
		} else if take == f.Size {
			to.addFrag(*f)
		} else {
			skbHeadGet(f.Page)
			to.addFrag(skbFrag{Page: f.Page, Off: f.Off, Size: take})
		}
		if take == f.Size {
			from.Frags = from.Frags[1:]
		} else {
			f.Off += take
			f.Size -= take
		}
		to.Len += take
		to.Truesize += take
		from.Len -= take
		from.Truesize -= take
		n -= take
	}
	return true
}

// tsoFragment mirrors tso_fragment() (net/ipv4/tcp_output.c, v6.18):
// cut skb at len; the rest goes into a new skb (a fresh head, charged to
// sk_wmem_queued) right after it, with the PSH and FIN.
func (r *refTCP) tsoFragment(tp *tcpSock, i, length int) {
	r.k.reach(fnRefTCPTsoFragment)
	skb := tp.writeQueue[i]
	nlen := skb.Len - length
	buff := skb.cloneRange(length, nlen)
	buff.Truesize = r.conf().SkbHeadTruesize + nlen
	tp.wmemQueued += r.conf().SkbHeadTruesize
	tp.sk.memSchedule(r.conf().SkbHeadTruesize)
	tp.sk.memCharge(r.conf().SkbHeadTruesize)
	r.k.pages.pullBack(skb, nlen)
	skb.Truesize -= nlen
	buff.Seq = skb.Seq + uint32(length)
	buff.EndSeq = skb.EndSeq
	skb.EndSeq = buff.Seq
	buff.TCPFlags, buff.tcpPSH = skb.TCPFlags, skb.tcpPSH
	skb.TCPFlags &^= tcphdrFIN
	skb.tcpPSH = false
	tp.writeQueue = append(tp.writeQueue, nil)
	copy(tp.writeQueue[i+2:], tp.writeQueue[i+1:])
	tp.writeQueue[i+1] = buff
}

// writeXmit mirrors tcp_write_xmit() (net/ipv4/tcp_output.c, v6.18):
// send skbs from the send head while the congestion window, the peer's
// window, Nagle and TSO deferral allow, cutting an skb to what fits;
// pushOne 1 sends one skb, 2 (a loss probe) one even past the
// congestion window. It returns whether anything was sent.
//
// Unlike Linux, no pacing (BBR's EDT timer) delays a transmission: on
// loopback its delays are microseconds, which the settle of every op
// covers.
func (r *refTCP) writeXmit(tp *tcpSock, mss, nonagle, pushOne int) bool {
	r.k.reach(fnRefTCPWriteXmit)
	if tp.peer == nil {
		return false
	}
	sent := 0
	maxSegs := max(tcpGSOMaxSize/mss, tcpMinTSOSegs)
	for len(tp.writeQueue) > 0 {
		skb := tp.writeQueue[0]
		quota := r.cwndTest(tp)
		if quota == 0 {
			if pushOne != 2 {
				break
			}
			quota = 1
		}
		quota = min(quota, maxSegs)
		if r.conf().GrowSkb {
			if missing := quota*mss - skb.Len; missing > 0 {
				r.growSkb(tp, 0, missing)
			}
		}
		segs := tsoSegs(skb, mss)
		if !r.sndWndTest(tp, skb, mss) {
			break
		}
		if segs == 1 {
			nag := nonagle
			if len(tp.writeQueue) > 1 {
				nag = tcpNaglePush
			}
			if !r.nagleTest(tp, skb, mss, nag) {
				break
			}
		} else if pushOne == 0 && r.tsoShouldDefer(tp, skb, maxSegs) {
			break
		}
		limit := mss
		if segs > 1 {
			limit = r.mssSplitPoint(tp, skb, mss, quota, nonagle)
		}
		if skb.Len > limit {
			r.tsoFragment(tp, 0, limit)
		}
		if skb.Seq == skb.EndSeq {
			break
		}
		r.transmitSkb(tp, skb, mss)
		r.eventNewDataSent(tp, skb, mss)
		sent++
		if pushOne > 0 {
			break
		}
	}
	if sent > 0 && pushOne != 2 {
		r.scheduleLossProbe(tp)
	}
	return sent > 0
}

// eventNewDataSent mirrors tcp_event_new_data_sent() and
// tcp_minshall_update() (net/ipv4/tcp_output.c, v6.18): the skb moves to
// the retransmission queue, snd_nxt and packets_out advance.
func (r *refTCP) eventNewDataSent(tp *tcpSock, skb *skBuff, mss int) {
	r.k.reach(fnRefTCPEventNewDataSent)
	tp.SndNxt = skb.EndSeq
	_, tp.writeQueue = popFront(tp.writeQueue)
	skb.pcount = tsoSegs(skb, mss)
	tp.rtxQueue = append(tp.rtxQueue, skb)
	tp.packetsOut += skb.pcount
	if skb.Len < skb.pcount*mss {
		tp.sndSml = skb.EndSeq
	}
	r.checkSpace(tp)
}

// transmitSkb mirrors __tcp_transmit_skb() (net/ipv4/tcp_output.c,
// v6.18) on loopback: the peer receives a clone of skb (sharing its
// head: skb_cloned until the sender frees the original on the ACK) with
// the original's truesize and, for a segment of several MSS, its
// gso_size; the header carries the ACK and the window
// (tcp_select_window), which counts as an ACK sent (tcp_event_ack_sent).
func (r *refTCP) transmitSkb(tp *tcpSock, skb *skBuff, mss int) {
	r.k.reach(fnRefTCPTransmitSkb)
	if skb.Len > mss && skb.Len+tcpLoopbackHeaders >= tcpLoopbackGSOMax {
		r.gsoSegment(tp, skb, mss)
		return
	}
	c := skb.cloneRange(0, skb.Len)
	c.Seq, c.EndSeq, c.TCPFlags, c.Truesize = skb.Seq, skb.EndSeq, skb.TCPFlags, skb.Truesize
	c.uarg = skb.uarg // the shared skb_shared_info's; no reference of its own
	if skb.Len > mss {
		c.gsoSize = mss
	}
	if skb.shared == nil {
		skb.shared = &skbShared{dataref: 1}
	}
	skb.shared.dataref++
	c.shared = skb.shared
	seg := segment{skb: c, seq: skb.Seq, ack: tp.RcvNxt, win: r.selectWindow(tp), psh: skb.tcpPSH,
		fin: skb.TCPFlags&tcphdrFIN != 0, wl: tp.SndNxt}
	r.eventAckSent(tp)
	r.xmit(tp, seg)
}

// gsoSegment mirrors what the loopback transmit path does with a TSO
// skb too long for the device (gso_features_check: skb->len, headers
// included, at least dev->gso_max_size): skb_gso_segment cuts it into
// MSS-sized segments (tcp_gso_segment: PSH and FIN on the last), each
// with a head of its own (truesize: a fresh head plus its payload), which
// the peer receives as separate skbs, not sharing the sender's head.
func (r *refTCP) gsoSegment(tp *tcpSock, skb *skBuff, mss int) {
	r.k.reach(fnRefTCPGsoSegment)
	win := r.selectWindow(tp)
	var segs []segment
	for off := 0; off < skb.Len; off += mss {
		n := min(mss, skb.Len-off)
		c := skb.cloneRange(off, n)
		c.Seq = skb.Seq + uint32(off)
		c.EndSeq = c.Seq + uint32(n)
		c.Truesize = r.conf().SkbHeadTruesize + n
		c.uarg = skb.uarg // skb_segment's zerocopy clone, orphaned at the peer
		last := off+n == skb.Len
		seg := segment{skb: c, seq: c.Seq, ack: tp.RcvNxt, win: win, wl: tp.SndNxt}
		if last {
			c.TCPFlags, c.EndSeq = skb.TCPFlags, skb.EndSeq
			seg.psh, seg.fin = skb.tcpPSH, skb.TCPFlags&tcphdrFIN != 0
			c.tcpPSH = skb.tcpPSH
		}
		segs = append(segs, seg)
	}
	r.eventAckSent(tp)
	for _, seg := range segs {
		r.xmit(tp, seg)
	}
}

// skbShared is the part of skb_shared_info the model needs: dataref, the
// skbs sharing one head (the sender's skb and the clone it transmitted).
type skbShared struct{ dataref int }

// skbCloned mirrors skb_cloned() (include/linux/skbuff.h, v6.18): the
// skb's head is shared with another skb.
func skbCloned(skb *skBuff) bool {
	reach(fnSkbCloned)
	return skb.shared != nil && skb.shared.dataref > 1
}

// skbHeadRelease drops skb's share of its head (the original freed, or
// the clone).
func skbHeadRelease(skb *skBuff) {
	if skb.shared != nil {
		skb.shared.dataref--
		skb.shared = nil
	}
}

// checkSpace mirrors tcp_check_space() (net/ipv4/tcp_input.c, v6.18): a
// writer that found no room (SOCK_NOSPACE) gets the new space.
func (r *refTCP) checkSpace(tp *tcpSock) {
	r.k.reach(fnRefTCPCheckSpace)
	if tp.sk.nospace {
		r.newSpace(tp)
	}
}

// newSpace mirrors tcp_new_space() (net/ipv4/tcp_input.c, v6.18): grow
// the send buffer (tcp_should_expand_sndbuf: not locked by SO_SNDBUF,
// the congestion window not full), then sk_write_space.
func (r *refTCP) newSpace(tp *tcpSock) {
	r.k.reach(fnRefTCPNewSpace)
	if tp.sk.userlocks&sockSndbufLock == 0 && tp.packetsOut < tp.sndCwnd {
		r.sndbufExpand(tp)
	}
	if !tp.sk.SockDead {
		tp.sk.SkWriteSpace(tp.sk)
	}
}
