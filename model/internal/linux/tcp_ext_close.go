package linux

// The bridge's ends of a socket: shutdown, close and orphans, and the
// kernel's tcp_done and destroy on the model side.

import (
	"errors"
	"fmt"
	"syscall"
)

// tcpDone mirrors tcp_done() (net/ipv4/tcp.c, v6.18): CLOSE, SHUTDOWN_MASK,
// sk_state_change (or, for an orphan, inet_csk_destroy_sock).
func (x *extTCP) tcpDone(xs *extSock) {
	x.k.reach(fnExtTCPTcpDone)
	if tcpDoneSock(xs.sk) {
		x.destroy(xs)
	}
}

// destroy mirrors inet_csk_destroy_sock() (net/ipv4/inet_connection_sock.c,
// v6.18): free what the socket holds.
func (x *extTCP) destroy(xs *extSock) {
	x.k.reach(fnExtTCPDestroy)
	x.k.purgeReceiveQueue(xs.sk)
}

// Shutdown implements TCP (tcp_shutdown): SEND_SHUTDOWN sends a FIN in
// the states that allow it (tcp_close_state); RCV_SHUTDOWN is the
// model's alone (see extTCP).
func (x *extTCP) Shutdown(t *task, sk *sock, how int) {
	xs := extSk(sk)
	if how&sendShutdown == 0 || x.broken || xs.ep == nil {
		return
	}
	switch sk.State {
	case tcpEstablished, tcpSynSent, tcpSynRecv, tcpCloseWait:
	default:
		return
	}
	if tcpCloseState(sk) {
		if err := xs.ep.Shutdown(ShutdownWrite); err != nil && !resetUnderneath(err) {
			x.fail("shutdown", fmt.Errorf("%s: %w", sk.Name, err))
			return
		}
		xs.finSent = true
		xs.WriteSeq++
	}
	x.step()
}

// resetUnderneath reports whether err says the transport already took a
// reset the model has not yet received (its receive context is still to
// run): as when a RST is in flight on Linux, the FIN goes out into a
// connection that the arriving reset then ends.
func resetUnderneath(err error) bool {
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Close implements TCP (tcp_close → __tcp_close, v6.18): unread data
// makes it a reset, as does SO_LINGER{1,0} (tcp_disconnect); else a FIN
// after the queued data. The endpoint is closed in the same way.
func (x *extTCP) Close(t *task, sk *sock) {
	xs := extSk(sk)
	sk.lockSock(t)
	sk.SkShutdown = shutdownMask
	unread := x.pending(xs) + x.k.purgeReceiveQueue(sk)
	rst := false
	if sk.State != tcpClose {
		switch {
		case unread > 0:
			sk.State = tcpClose
			rst = true
		case sk.SockLinger && sk.Lingertime == 0:
			// tcp_disconnect.
			old := sk.State
			sk.State = tcpClose
			switch old {
			case tcpEstablished, tcpCloseWait, tcpFinWait1, tcpFinWait2, tcpSynRecv:
				rst = true
				sk.SkErr = errECONNRESET
			case tcpClosing, tcpLastAck:
				rst = !xs.finSent
			}
			xs.CopiedSeq = xs.RcvNxt
			sk.SkShutdown = 0
			sk.SockDone = false
		default:
			if tcpCloseState(sk) {
				xs.finSent = true
				xs.WriteSeq++
			}
		}
	}
	sk.SockDead = true
	if xs.ep != nil && !xs.closed && !x.broken {
		xs.closed = true
		if err := xs.ep.Close(rst); err != nil {
			x.fail("close", fmt.Errorf("%s: %w", sk.Name, err))
		}
		x.step()
	}
	sk.releaseSock()
	if sk.State == tcpClose {
		x.destroy(xs)
	}
}

// ExpireOrphans implements TCP: every orphan not yet CLOSE is done with.
//
// Unlike Linux, which gets there through its timers, it acts at once;
// the endpoints themselves go with the transport (Transport.Close).
func (x *extTCP) ExpireOrphans() {
	for _, xs := range x.socks {
		if sk := xs.sk; sk.SockDead && sk.State != tcpClose {
			x.tcpDone(xs)
		}
	}
}
