package linux

// The reference TCP's timers: the tail loss probe and the delayed ACK,
// armed as kernel work of an op's settle (see tcp_ref_flow.go, "Time"),
// and the zero-window probe timer, in virtual time.

// scheduleLossProbe mirrors tcp_schedule_loss_probe()
// (net/ipv4/tcp_output.c, v6.18): with segments in flight, a probe
// timeout is armed: 2 RTT and 2 jiffies (a few ms on loopback), the
// model's next op boundary (tcpTimers); with one packet out 2 RTT and
// TCP_RTO_MIN (200 ms), see tcpTimers.
func (r *refTCP) scheduleLossProbe(tp *tcpSock) {
	r.k.reach(fnRefTCPScheduleLossProbe)
	if tp.packetsOut == 0 {
		return
	}
	tp.tlpArmed = true
	tp.tlpLong = tp.packetsOut == 1
	tp.tlpOp, tp.tlpAt = r.k.s.opSeq, r.k.s.now
	r.armTimers()
}

// tlpLongOps is how many ops after the one that armed it a probe with
// one packet out fires: the kernel backend's settle waits 100 ms after
// every op while a segment is unacknowledged, so the 200 ms and a few
// jiffies of its timeout run out after the second op's system call. It
// fires sooner if virtual time passes TCP_RTO_MIN meanwhile (a thread
// waits, or teardown runs the clock).
const tlpLongOps = 2

// sendLossProbe mirrors tcp_send_loss_probe() (net/ipv4/tcp_output.c,
// v6.18): send one new skb if the window allows, else retransmit the last
// MSS of the last skb in flight.
func (r *refTCP) sendLossProbe(tp *tcpSock) {
	r.k.reach(fnRefTCPSendLossProbe)
	mss := tp.mssCache
	if tp.tlpHighSeq != 0 {
		return
	}
	if skb := tp.sendHead(); skb != nil && r.sndWndTest(tp, skb, mss) {
		before := tp.packetsOut
		r.writeXmit(tp, mss, tcpNagleOff, 2)
		if tp.packetsOut > before {
			tp.tlpHighSeq = tp.SndNxt
		}
		return
	}
	if len(tp.rtxQueue) == 0 {
		return
	}
	last := tp.rtxQueue[len(tp.rtxQueue)-1]
	seq := last.Seq
	if last.pcount > 1 && last.Len > (last.pcount-1)*mss {
		seq = last.Seq + uint32((last.pcount-1)*mss)
		// tcp_fragment in the retransmission queue: the original
		// gets a head of its own (skb_unclone), so the clone the peer
		// queued no longer shares it.
		skbHeadRelease(last)
	}
	tp.tlpHighSeq = tp.SndNxt
	r.xmit(tp, segment{seq: seq, dupLen: int(last.EndSeq - seq), ack: tp.RcvNxt, win: r.selectWindow(tp), wl: tp.SndNxt})
	r.eventAckSent(tp)
}

// armTimers queues, once, the work that fires the TCP timers due within
// the kernel backend's settle (tcpTimers): at the next op boundary, later
// in the settle it was armed in (sched.deferSettleTimer: the runner waits
// while a segment is unacknowledged), or when virtual time reaches the
// delayed ACK timeout (TCP_DELACK_MIN) inside a long op: time passes in
// that op (a thread waits), as it would before the kernel's timers fire.
func (r *refTCP) armTimers() {
	if r.timersQueued {
		return
	}
	r.timersQueued = true
	r.k.s.deferSettleTimer("tcp_timers", tcpDelackMin, r.tcpTimers)
}

// tcpTimers fires, at an op boundary, the timers the kernel backend's
// settle lets run: every armed tail loss probe (tcp_write_timer →
// tcp_send_loss_probe, a few ms), then every delayed ACK
// (tcp_delack_timer, 40 ms), socket by socket in connection order, and
// again while they arm new ones. Each runs in softirq context (a timer
// handler), on the socket's backlog if a task owns it. A probe armed
// with one packet out waits 2 RTT + TCP_RTO_MIN (tcp_schedule_loss_probe,
// net/ipv4/tcp_output.c, v6.18): the peer's delayed ACK comes first (the
// probe waits for the next round, where that ACK has usually emptied the
// flight), and otherwise it fires tlpLongOps ops after the one that armed
// it (in runner time; the model's ops take none).
func (r *refTCP) tcpTimers() {
	r.timersQueued = false
	waiting := false
	for round := 0; round < 100; round++ {
		fired := false
		for _, sk := range r.k.sockSeq {
			tp, ok := sk.TCP.(*tcpSock)
			if !ok || !tp.tlpArmed {
				continue
			}
			if tp.tlpLong && tp.packetsOut > 0 {
				if p := tp.peer; p != nil && p.ackPending&icskAckTimer != 0 {
					continue
				}
				if r.k.s.opSeq < tp.tlpOp+tlpLongOps && r.k.s.now < tp.tlpAt+vtime(tcpRTOMin) {
					waiting = true
					continue
				}
			}
			tp.tlpArmed = false
			if tp.unhashed || tp.tw || tp.packetsOut == 0 {
				continue
			}
			fired = true
			r.k.s.raiseSoftirq("tcp_write_timer", func() { sk.bhRun(func() { r.sendLossProbe(tp) }) })
		}
		for _, sk := range r.k.sockSeq {
			tp, ok := sk.TCP.(*tcpSock)
			if !ok || tp.ackPending&icskAckTimer == 0 {
				continue
			}
			fired = true
			r.k.s.raiseSoftirq("tcp_delack_timer", func() { sk.bhRun(func() { r.delackTimer(tp) }) })
		}
		if !fired {
			break
		}
	}
	if waiting {
		r.armTimers()
	}
}

// delackTimer mirrors tcp_delack_timer_handler() (net/ipv4/tcp_timer.c,
// v6.18): send the ACK held back.
func (r *refTCP) delackTimer(tp *tcpSock) {
	r.k.reach(fnRefTCPDelackTimer)
	if tp.ackPending&icskAckTimer == 0 {
		return
	}
	tp.ackPending &^= icskAckTimer
	if tp.ackPending&icskAckSched != 0 && !tp.unhashed && !tp.tw {
		// Delayed ACK missed: leave ping-pong mode.
		tp.pingpong = false
		r.sendAck(tp)
	}
}

// checkProbeTimer mirrors tcp_check_probe_timer() (include/net/tcp.h,
// v6.18): with data queued and nothing in flight, the probe timer
// (ICSK_TIME_PROBE0) is armed for tcp_probe0_base, the RTO (TCP_RTO_MIN
// on loopback), unless a timer is pending. On loopback it is what sends a
// segment tcp_push corked (MSG_MORE: TCP_NAGLE_CORK) that no ACK will
// release: after 200 ms, tcp_write_wakeup sends what the window allows,
// and the ACK of it lets tcp_data_snd_check push the rest (measured on
// 6.12.118: testdata/traces/kernel/kf_cork_apply_stale_bytes.trace with
// the fix of testdata/patches/bpf-sockmap-cork-copy-position.patch, a
// recv that waits for the 32760 bytes a cork's one element holds).
//
// Unlike Linux, the timer runs in virtual time only (sched.addTimer):
// it fires while a thread waits or a sleep passes, not in an op's settle
// (the kernel backend settles for at most 100 ms, and only while a
// segment is unacknowledged).
func (r *refTCP) checkProbeTimer(tp *tcpSock) {
	r.k.reach(fnRefTCPCheckProbeTimer)
	if tp.packetsOut > 0 || tp.probe0Armed || tp.tlpArmed {
		return
	}
	tp.probe0Armed = true
	sk := tp.sk
	r.k.s.addTimer("tcp_probe0", min(tcpRTOMin<<tp.probe0Backoff, tcpRTOMax), func() {
		r.k.s.raiseSoftirq("tcp_write_timer", func() { sk.bhRun(func() { r.probeTimer(tp) }) })
	})
}

// probeTimer mirrors tcp_probe_timer() and tcp_send_probe0()
// (net/ipv4/tcp_timer.c, net/ipv4/tcp_output.c, v6.18): with something in
// flight or nothing queued the probe is over; else tcp_write_wakeup, and
// the timer again, backed off, while nothing is in flight.
//
// Unlike Linux, no probe count limits it (tcp_retries2, the orphan
// retries): a loopback peer always answers.
func (r *refTCP) probeTimer(tp *tcpSock) {
	r.k.reach(fnRefTCPProbeTimer)
	tp.probe0Armed = false
	if tp.unhashed || tp.tw || tp.packetsOut > 0 || len(tp.writeQueue) == 0 {
		tp.probe0Backoff = 0
		return
	}
	r.writeWakeup(tp)
	if tp.packetsOut > 0 || len(tp.writeQueue) == 0 {
		tp.probe0Backoff = 0
		return
	}
	tp.probe0Backoff++
	r.checkProbeTimer(tp)
}

// writeWakeup mirrors tcp_write_wakeup() (net/ipv4/tcp_output.c, v6.18):
// send the send head, cut to the window and one MSS, with PSH.
//
// Unlike Linux, a closed window sends nothing (tcp_xmit_probe_skb's
// out-of-window ACK): the model's peer announces its window when it opens.
func (r *refTCP) writeWakeup(tp *tcpSock) {
	r.k.reach(fnRefTCPWriteWakeup)
	if tp.sk.State == tcpClose || tp.peer == nil {
		return
	}
	skb := tp.sendHead()
	if skb == nil || int32(skb.Seq-tp.wndEnd()) >= 0 {
		return
	}
	mss, _ := r.sendMSS(tp)
	segSize := int(tp.wndEnd() - skb.Seq)
	if int32(tp.pushedSeq-skb.EndSeq) < 0 {
		tp.pushedSeq = skb.EndSeq
	}
	if segSize < skb.Len || skb.Len > mss {
		r.tsoFragment(tp, 0, min(segSize, mss))
	}
	skb.tcpPSH = true
	r.transmitSkb(tp, skb, mss)
	r.eventNewDataSent(tp, skb, mss)
}
