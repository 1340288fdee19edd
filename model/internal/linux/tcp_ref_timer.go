package linux

// The reference TCP's timers: the tail loss probe and the delayed ACK,
// armed as kernel work of an op's settle (see tcp_ref_flow.go, "Time").

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
