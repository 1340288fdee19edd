package linux

// The bridge's send side: sendmsg into the endpoint in chunks, the cork
// emulation and the writability hooks (see extTCP, "Send").

import (
	"fmt"
	"syscall"
)

// extSendChunk is how much sendmsg hands the endpoint per Write: a
// loopback skb's payload (tcpSizeGoal), so that a receiver's skbs are cut
// much as Linux cuts them.
const extSendChunk = tcpSizeGoal

// SendmsgLocked implements TCP (tcp_sendmsg_locked, net/ipv4/tcp.c,
// v6.18): copy from src into the endpoint, waiting for send space in
// sk_stream_wait_memory unless MSG_DONTWAIT.
func (x *extTCP) SendmsgLocked(t *task, sk *sock, src *srcIter, flags int) (int, syscall.Errno) {
	sk.sockOwnedByMe(t)
	xs := extSk(sk)
	to := maxTimeout
	if flags&msgDontwait != 0 {
		to = 0
	}
	copied := 0
	err := x.k.tcpSendPrologue(sk)
	stalls := 0
	for err == 0 && src.left() > 0 {
		if x.broken {
			err = errEIO
			break
		}
		if !x.StreamMemoryFree(sk) {
			if err = x.k.skStreamWaitMemoryLocked(t, sk, &to); err != 0 {
				break
			}
			continue
		}
		n := min(src.left(), extSendChunk)
		buf := x.scratch(n)
		var tags []Tag
		if x.k.pages.prov {
			tags = make([]Tag, n)
		}
		src.copyToTagged(buf, tags)
		more := flags&msgMore != 0
		w, werr := xs.ep.Write(buf, more)
		if w < n {
			src.revert(n - w)
		}
		if tags != nil && w > 0 {
			x.pushTags(sk, tags[:w])
		}
		if w > 0 {
			// tcp_push: without MSG_MORE the bytes go out; with it,
			// TCP_NAGLE_CORK holds the partial segment, until the ACK
			// of what already went out in this system call, which
			// release_sock processes (refTCP.tcpPush).
			if !more {
				xs.sentOwned = true
			} else if xs.sentOwned {
				xs.uncorkAtRelease = true
			}
		}
		copied += w
		xs.WriteSeq += uint32(w)
		x.step()
		switch {
		case werr == nil:
			stalls = 0
		case errnoOf(werr) == errEAGAIN:
			// Writable said yes but the endpoint took nothing: a
			// transport that contradicts itself would spin here.
			if stalls++; stalls > 1 && w == 0 {
				x.fail("write", fmt.Errorf("%s: endpoint writable but Write returns EAGAIN: %w", sk.Name, werr))
				err = errEIO
			}
		case copied > 0:
			// The endpoint was reset by what this system call sent
			// (a peer that closed answers data with a RST). On
			// Linux that RST waits on the backlog of the socket the
			// sender owns until release_sock, and sendmsg goes on
			// queueing, up to the send buffer, bytes the reset then
			// purges: the bridge counts them as accepted and drops
			// them. Unlike gVisor, which sees the reset at once.
			n := min(src.left(), max(sk.SkSndbuf-copied, 0))
			src.copyTo(x.scratch(n))
			copied += n
			xs.WriteSeq += uint32(n)
			err = errEPIPE
		default:
			// The endpoint is shut or reset; rx reports why
			// (sk_err), as sk_stream_error does.
			err = errEPIPE
		}
	}
	if copied > 0 {
		return copied, errOK
	}
	return 0, skStreamError(sk, err)
}

// releaseCb runs at release_sock (tcp_release_cb and the backlog's
// ACKs): a MSG_MORE tail held while bytes of the same system call were
// in flight goes out now (a zero-length write without more uncorks).
// The receive processing it sets off for this socket runs as a kernel
// context, once the socket is no longer owned (the softirq that waited
// on the socket's spinlock).
func (x *extTCP) releaseCb(xs *extSock) {
	xs.sentOwned = false
	if !xs.uncorkAtRelease {
		return
	}
	xs.uncorkAtRelease = false
	if x.broken || xs.closed {
		return
	}
	if _, err := xs.ep.Write(nil, false); err != nil {
		return // shut or reset meanwhile: rx reports it
	}
	if err := x.tr.Settle(); err != nil {
		x.fail("settle", err)
		return
	}
	for _, o := range x.socks {
		if o != xs {
			x.raiseRx(o)
		}
	}
	if !xs.rxQueued {
		xs.rxQueued = true
		x.k.s.queueWork("netstack_rcv", func() {
			xs.sk.bhRun(func() {
				xs.rxQueued = false
				x.rx(xs)
			})
		})
	}
}

// SendPageLocked implements TCP for MSG_SPLICE_PAGES.
//
// Unlike Linux, the page's bytes are copied into the endpoint (gVisor
// takes no page references); the caller's page is untouched and keeps
// its references.
func (x *extTCP) SendPageLocked(t *task, sk *sock, p *page, off, n int, flags int) (int, syscall.Errno) {
	sk.sockOwnedByMe(t)
	b := append([]byte(nil), p.bytes(off, n)...)
	var tags []Tag
	if pt := p.tagsAt(off, n); pt != nil {
		tags = append([]Tag(nil), pt...)
	}
	return x.SendmsgLocked(t, sk, newSrcKernel(b, tags), flags)
}

// writable reports what the endpoint says about send space; a socket
// without a usable endpoint is "writable" so that the error surfaces.
func (x *extTCP) writable(sk *sock) bool {
	xs := extSk(sk)
	if x.broken || xs.ep == nil || xs.closed {
		return true
	}
	return xs.ep.Writable()
}

// StreamMemoryFree implements TCP: the endpoint's send buffer has room.
func (x *extTCP) StreamMemoryFree(sk *sock) bool { return x.writable(sk) }

// StreamIsWriteable implements tcp.
//
// Unlike Linux, whose sk_stream_is_writeable wants a third of the send
// buffer free, it is gVisor's writability.
func (x *extTCP) StreamIsWriteable(sk *sock) bool { return x.writable(sk) }

// WriteSeq returns write_seq (splice_seq.go's ring_seq boundary).
func (x *extTCP) WriteSeq(sk *sock) uint32 { return extSk(sk).WriteSeq }
