package linux

import "syscall"

// The socket-level halves of TCP's state changes (net/ipv4/tcp.c and
// tcp_input.c, v6.18) that both transports (refTCP and the bridge to an
// external TCP, tcp_ext.go) perform the same way on the struct sock; each
// transport adds what it keeps of its own (unhashing, write queues,
// endpoints).

// tcpResetErr mirrors the sk_err tcp_reset() (net/ipv4/tcp_input.c, v6.18)
// sets by the state the reset finds: ECONNREFUSED in SYN_SENT, EPIPE in
// CLOSE_WAIT, e otherwise. In CLOSE a reset does nothing (ok is false).
func tcpResetErr(state tcpState, e syscall.Errno) (err syscall.Errno, ok bool) {
	reach(fnTcpResetErr)
	switch state {
	case tcpSynSent:
		return syscall.ECONNREFUSED, true
	case tcpCloseWait:
		return errEPIPE, true
	case tcpClose:
		return 0, false
	}
	return e, true
}

// tcpDoneSock mirrors tcp_done() (net/ipv4/tcp.c, v6.18) on the socket: CLOSE, SHUTDOWN_MASK, and
// sk_state_change for a socket someone holds. It reports an orphan, which
// the caller destroys (inet_csk_destroy_sock).
func tcpDoneSock(sk *sock) (orphan bool) {
	sk.k.reach(fnTcpDoneSock)
	if sk.k.prof.SpliceSeq {
		sk.k.spliceSeqUnhash(sk) // tcp_set_state(TCP_CLOSE) → sk_prot->unhash
	}
	sk.State = tcpClose
	sk.SkShutdown = shutdownMask
	if sk.SockDead {
		return true
	}
	sk.SkStateChange(sk)
	return false
}

// tcpCloseState mirrors tcp_close_state() (net/ipv4/tcp.c, v6.18): the
// state after a close or shutdown(SHUT_WR), and whether a FIN goes out.
func tcpCloseState(sk *sock) bool {
	sk.k.reach(fnTcpCloseState)
	switch sk.State {
	case tcpEstablished, tcpSynRecv:
		sk.State = tcpFinWait1
		return true
	case tcpCloseWait:
		sk.State = tcpLastAck
		return true
	case tcpSynSent, tcpTimeWait, tcpListen:
		sk.State = tcpClose
	}
	return false
}

// purgeReceiveQueue frees every skb on sk_receive_queue and returns the
// payload bytes they held past copied_seq (a FIN's sequence number
// excluded): __tcp_close's data_was_unread (net/ipv4/tcp.c, v6.18),
// true when one skb ends after copied_seq ("tcp: fix __tcp_close() to
// only send RST when required", 5f9238530970, also in the 6.12.118 and
// Debian 6.1 guests: bytes a stream parser left behind a copied_seq it
// pushed past rcv_nxt are not unread there, and the close sends a FIN),
// and inet_csk_destroy_sock's purge.
func (k *kernel) purgeReceiveQueue(sk *sock) (unread int) {
	copied := k.tcp.CopiedSeq(sk)
	for skb := sk.SkReceiveQueue.dequeue(); skb != nil; skb = sk.SkReceiveQueue.dequeue() {
		end, from := skb.EndSeq, skb.Seq
		if skb.TCPFlags&tcphdrFIN != 0 {
			end--
		}
		if int32(copied-from) > 0 {
			from = copied
		}
		if n := int(int32(end - from)); n > 0 {
			unread += n
		}
		k.freeSkb(skb)
	}
	return unread
}
