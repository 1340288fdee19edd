package linux

// The reference TCP's shutdown, close, reset and TIME_WAIT.

// timeWait mirrors tcp_time_wait() (net/ipv4/tcp_minisocks.c, v6.18): a
// timewait socket takes over the connection and the full socket is done (a
// user still holding it sees CLOSE).
func (r *refTCP) timeWait(tp *tcpSock, substate tcpState) {
	r.k.reach(fnRefTCPTimeWait)
	tw := &tcpSock{sk: tp.sk, peer: tp.peer, RcvNxt: tp.RcvNxt, SndNxt: tp.SndNxt,
		SndUna: tp.SndUna, WriteSeq: tp.WriteSeq, tw: true, twSubstate: substate,
		rcvWnd: tp.receiveWindow(), rcvWscale: tp.rcvWscale}
	if tp.peer != nil {
		tp.peer.peer = tw
	}
	r.tcpDone(tp)
}

// ExpireOrphans implements tcp.
//
// Unlike Linux, which gets there through timers the model lacks, it acts
// at once.
func (r *refTCP) ExpireOrphans() {
	for _, sk := range r.k.sockSeq {
		if tp, ok := sk.TCP.(*tcpSock); ok && sk.SockDead && sk.State != tcpClose {
			r.tcpDone(tp)
		}
	}
}

// tcpDone mirrors tcp_done() (net/ipv4/tcp.c, v6.18): CLOSE, SHUTDOWN_MASK,
// wake the user (or destroy an orphan).
func (r *refTCP) tcpDone(tp *tcpSock) {
	r.k.reach(fnRefTCPTcpDone)
	tp.unhashed = true
	if tcpDoneSock(tp.sk) {
		r.destroy(tp)
	}
}

// destroy mirrors inet_csk_destroy_sock() (net/ipv4/inet_connection_sock.c,
// v6.18): free what the socket holds.
func (r *refTCP) destroy(tp *tcpSock) {
	r.k.reach(fnRefTCPDestroy)
	r.k.purgeReceiveQueue(tp.sk)
	r.writeQueuePurge(tp)
}

// tcpReset mirrors tcp_reset() and tcp_done_with_error()
// (net/ipv4/tcp_input.c, v6.18).
func (r *refTCP) tcpReset(tp *tcpSock) {
	r.k.reach(fnRefTCPTcpReset)
	sk := tp.sk
	err, ok := tcpResetErr(sk.State, errECONNRESET)
	if !ok {
		return
	}
	sk.SkErr = err
	r.writeQueuePurge(tp)
	r.tcpDone(tp)
	if !sk.SockDead {
		sk.SkErrorReport(sk)
	}
}

// writeQueuePurge mirrors tcp_write_queue_purge() (net/ipv4/tcp.c, v6.18).
func (r *refTCP) writeQueuePurge(tp *tcpSock) {
	r.k.reach(fnRefTCPWriteQueuePurge)
	tp.sk.memUncharge(tp.wmemQueued)
	for _, skb := range tp.rtxQueue {
		skbHeadRelease(skb)
		r.k.pages.kfreeSkb(skb)
	}
	for _, skb := range tp.writeQueue {
		r.k.pages.kfreeSkb(skb)
	}
	tp.writeQueue, tp.rtxQueue = nil, nil
	tp.wmemQueued, tp.packetsOut = 0, 0
	tp.SndUna, tp.SndNxt = tp.WriteSeq, tp.WriteSeq
}

// Shutdown implements TCP (tcp_shutdown): send a FIN for SEND_SHUTDOWN in
// the states that allow it.
func (r *refTCP) Shutdown(t *task, sk *sock, how int) {
	if how&sendShutdown == 0 {
		return
	}
	switch sk.State {
	case tcpEstablished, tcpSynSent, tcpSynRecv, tcpCloseWait:
		if r.closeState(sk) {
			r.sendFin(tcpSk(sk))
		}
	}
}

// closeState mirrors tcp_close_state() (net/ipv4/tcp.c, v6.18): the state
// after a close, and whether a FIN must be sent.
func (r *refTCP) closeState(sk *sock) bool {
	r.k.reach(fnRefTCPCloseState)
	old := sk.State
	fin := tcpCloseState(sk)
	if sk.State == tcpClose && old != tcpClose {
		tcpSk(sk).unhashed = true
	}
	return fin
}

// sendFin mirrors tcp_send_fin() (net/ipv4/tcp_output.c, v6.18): the FIN
// rides on the last unsent skb, or goes alone in a new skb (its head
// charged to sk_wmem_queued).
func (r *refTCP) sendFin(tp *tcpSock) {
	r.k.reach(fnRefTCPSendFin)
	tp.finQueued = true
	if n := len(tp.writeQueue); n > 0 {
		tail := tp.writeQueue[n-1]
		tail.TCPFlags |= tcphdrFIN
		tail.EndSeq++
	} else {
		skb := &skBuff{Seq: tp.WriteSeq, EndSeq: tp.WriteSeq + 1, TCPFlags: tcphdrFIN, Truesize: r.conf().SkbHeadTruesize}
		tp.writeQueue = append(tp.writeQueue, skb)
		tp.wmemQueued += skb.Truesize
		tp.sk.memSchedule(skb.Truesize)
		tp.sk.memCharge(skb.Truesize)
	}
	tp.WriteSeq++
	r.pushPendingFrames(tp, tp.mssCache, tcpNagleOff)
}

// Close implements TCP (tcp_close → __tcp_close, v6.18).
func (r *refTCP) Close(t *task, sk *sock) {
	tp := tcpSk(sk)
	sk.lockSock(t)
	sk.SkShutdown = shutdownMask
	dataWasUnread := r.k.purgeReceiveQueue(sk)
	state := sk.State
	if sk.State != tcpClose {
		switch {
		case dataWasUnread > 1 || dataWasUnread == 1 && !r.k.mutated(mutCloseUnreadOffByOne):
			sk.State = tcpClose
			tp.unhashed = true
			r.sendReset(tp)
			r.writeQueuePurge(tp)
		case sk.SockLinger && sk.Lingertime == 0:
			r.disconnect(tp)
		default:
			if r.closeState(sk) {
				r.sendFin(tp)
			}
		}
	}
	// adjudge_to_death: orphan the socket.
	sk.SockDead = true
	sk.releaseSock()
	if state != tcpClose && sk.State == tcpClose {
		r.destroy(tp)
		return
	}
	if sk.State == tcpFinWait2 {
		r.timeWait(tp, tcpFinWait2)
		return
	}
	if sk.State == tcpClose {
		r.destroy(tp)
	}
}

// disconnect mirrors tcp_disconnect() (net/ipv4/tcp.c, v6.18) as
// SO_LINGER{1,0} close uses it.
func (r *refTCP) disconnect(tp *tcpSock) {
	r.k.reach(fnRefTCPDisconnect)
	sk := tp.sk
	old := sk.State
	sk.State = tcpClose
	tp.unhashed = true
	switch old {
	case tcpEstablished, tcpCloseWait, tcpFinWait1, tcpFinWait2, tcpSynRecv:
		r.sendReset(tp)
		sk.SkErr = errECONNRESET
	case tcpClosing, tcpLastAck:
		if tp.SndNxt != tp.WriteSeq {
			r.sendReset(tp)
			sk.SkErr = errECONNRESET
		}
	}
	for skb := sk.SkReceiveQueue.dequeue(); skb != nil; skb = sk.SkReceiveQueue.dequeue() {
		r.k.freeSkb(skb)
	}
	tp.CopiedSeq = tp.RcvNxt
	r.writeQueuePurge(tp)
	sk.SkShutdown = 0
	sk.SockDone = false
}
