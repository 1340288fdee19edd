package linux

import (
	"syscall"

	"github.com/splicecheck/splicecheck/trace"
)

// MSG_ZEROCOPY (net/core/skbuff.c, net/ipv4/tcp.c, v6.18). A send with
// MSG_ZEROCOPY on a socket with SOCK_ZEROCOPY gets an id from the
// socket's counter (sk_zckey) in a ubuf_info_msgzc, which every skb
// holding its data references. When the last reference goes (the skb
// ACKed and freed), the completion [id, id+len-1] is queued on the
// socket's error queue, merged into the tail notification when it
// continues it, with SO_EE_CODE_ZEROCOPY_COPIED when the data was copied
// after all: on loopback always, since the receive path copies the
// frags of every zero-copy skb (skb_orphan_frags_rx).
//
// Unlike Linux, the zero-copy path fills skbs as the copy path does
// (page-frag pages charged as copied data), not with the user's pinned
// pages: what differs is where the bytes live and how sk_wmem_queued
// counts them, not any byte a trace observes. The locked-memory limit
// (mm_account_pinned_pages) and the optmem charge of each completion's
// skb (sock_omalloc, ENOBUFS) are not modelled.

// mutZcAbortKeepsID is a bug of the zoo (mutation.go).
var mutZcAbortKeepsID = registerMutation("msgzc-abort-keeps-id",
	"msg_zerocopy_put_abort drops a failed send's ubuf_info without giving its id back (sk_zckey), the bug "+
		"MSG_ZEROCOPY's RFCv2 fixed: a gap in the completion chain")

// ubufInfo mirrors struct ubuf_info_msgzc (include/linux/skbuff.h, v6.18):
// the completion of one or more zero-copy sends of one socket.
type ubufInfo struct {
	sk       *sock
	id       uint32 // the first send's id
	len      uint32 // sends covered: ids id..id+len-1
	bytelen  int
	zerocopy bool // no copy was made (cleared by a copy: the COPIED code)
	refcnt   int
}

// msgZerocopyByteLimit is the bytes one ubuf_info covers before a send
// takes a new one (msg_zerocopy_realloc's byte_limit, a few TSO frames).
const msgZerocopyByteLimit = 1 << 19

// msgZerocopyRealloc mirrors msg_zerocopy_realloc() (net/core/skbuff.c,
// v6.18) for TCP: a send extends the ubuf_info of the write queue's tail
// skb when its ids end where the counter stands (one more id, one more
// reference), else takes a new one. Either way it consumes one id.
func (k *kernel) msgZerocopyRealloc(sk *sock, size int, uarg *ubufInfo) *ubufInfo {
	k.reach(fnMsgZerocopyRealloc)
	if uarg != nil && uarg.len < 0xffff-1 && uarg.bytelen+size <= msgZerocopyByteLimit && uarg.id+uarg.len == sk.zckey {
		uarg.len++
		uarg.bytelen += size
		sk.zckey++
		netZcopyGet(uarg)
		return uarg
	}
	return k.msgZerocopyAlloc(sk, size)
}

// msgZerocopyAlloc mirrors msg_zerocopy_alloc() (net/core/skbuff.c,
// v6.18): a ubuf_info with the next id and one reference, the sender's.
func (k *kernel) msgZerocopyAlloc(sk *sock, size int) *ubufInfo {
	k.reach(fnMsgZerocopyAlloc)
	u := &ubufInfo{sk: sk, id: sk.zckey, len: 1, bytelen: size, zerocopy: true, refcnt: 1}
	sk.zckey++
	k.zcLive++
	return u
}

// netZcopyGet mirrors net_zcopy_get() (include/linux/skbuff.h, v6.18).
func netZcopyGet(uarg *ubufInfo) {
	reach(fnNetZcopyGet)
	uarg.refcnt++
}

// netZcopyPut mirrors net_zcopy_put() (include/linux/skbuff.h, v6.18):
// the last reference completes the sends (msg_zerocopy_complete with
// success).
func netZcopyPut(uarg *ubufInfo) {
	reach(fnNetZcopyPut)
	uarg.msgZerocopyComplete(true)
}

// netZcopyPutAbort mirrors net_zcopy_put_abort() → msg_zerocopy_put_abort()
// (net/core/skbuff.c, v6.18): a send that failed gives back the id it
// took and, with haveUref, its reference.
func netZcopyPutAbort(uarg *ubufInfo, haveUref bool) {
	reach(fnNetZcopyPutAbort)
	if !uarg.sk.k.mutated(mutZcAbortKeepsID) {
		uarg.sk.zckey--
	}
	uarg.len--
	if haveUref {
		uarg.msgZerocopyComplete(true)
	}
}

// skbZcopySet mirrors skb_zcopy_set() (include/linux/skbuff.h, v6.18):
// skb holds uarg's data, with a reference of its own.
func skbZcopySet(skb *skBuff, uarg *ubufInfo) {
	reach(fnSkbZcopySet)
	netZcopyGet(uarg)
	skb.uarg = uarg
}

// skbZcopyClear mirrors skb_zcopy_clear() (include/linux/skbuff.h, v6.18):
// the skb gives up its reference, success false when its data was copied.
func skbZcopyClear(skb *skBuff, success bool) {
	reach(fnSkbZcopyClear)
	uarg := skb.uarg
	skb.uarg = nil
	uarg.msgZerocopyComplete(success)
}

// skbOrphanFragsRx mirrors skb_orphan_frags_rx() (include/linux/skbuff.h,
// v6.18) on the loopback receive path (__netif_receive_skb_core): a
// zero-copy skb arriving at a local socket gets private copies of its
// frags (skb_copy_ubufs), so the sends it carries are completed as
// copied. The clone held no reference of its own (see skBuff.uarg).
func skbOrphanFragsRx(skb *skBuff) {
	reach(fnSkbOrphanFragsRx)
	if skb == nil || skb.uarg == nil {
		return
	}
	skb.uarg.zerocopy = false
	skb.uarg = nil
}

// msgZerocopyComplete mirrors msg_zerocopy_complete() (net/core/skbuff.c,
// v6.18): the copied state accumulates; the last reference queues the
// completion (__msg_zerocopy_callback).
func (uarg *ubufInfo) msgZerocopyComplete(success bool) {
	reach(fnUbufInfoMsgZerocopyComplete)
	uarg.zerocopy = uarg.zerocopy && success
	if uarg.refcnt--; uarg.refcnt == 0 {
		uarg.sk.k.zcLive--
		uarg.msgZerocopyCallback()
	}
}

// msgZerocopyCallback mirrors __msg_zerocopy_callback() (net/core/skbuff.c,
// v6.18): nothing for an empty range or a dead socket; else the range
// [id, id+len-1] extends the error queue's tail notification when it
// continues it (skb_zerocopy_notify_extend: the tail keeps its code),
// or is queued as a new one, and the socket's error report wakes it.
func (uarg *ubufInfo) msgZerocopyCallback() {
	reach(fnUbufInfoMsgZerocopyCallback)
	sk := uarg.sk
	if uarg.len == 0 || sk.SockDead {
		return
	}
	lo, hi := uarg.id, uarg.id+uarg.len-1
	if n := len(sk.errorQueue); n > 0 {
		tail := &sk.errorQueue[n-1]
		if tail.Origin == trace.OriginZerocopy && uint64(tail.Data-tail.Info)+1+uint64(uarg.len) < 1<<32 && lo == tail.Data+1 {
			tail.Data += uarg.len
			sk.SkErrorReport(sk)
			return
		}
	}
	n := trace.Notification{Origin: trace.OriginZerocopy, Info: lo, Data: hi}
	if !uarg.zerocopy {
		n.Code = trace.CodeZerocopyCopied
	}
	sk.errorQueue = append(sk.errorQueue, n)
	sk.SkErrorReport(sk)
}

// ipRecvError mirrors ip_recv_error() (net/ipv4/ip_sockglue.c, v6.18),
// which tcp_recvmsg and tcp_bpf_recvmsg call for MSG_ERRQUEUE: the head
// of the error queue, never blocking: -EAGAIN when it is empty
// (sock_dequeue_err_skb leaves sk_err alone for zero-copy completions).
func (k *kernel) ipRecvError(sk *sock) (trace.Notification, syscall.Errno) {
	k.reach(fnIpRecvError)
	if len(sk.errorQueue) == 0 {
		return trace.Notification{}, errEAGAIN
	}
	n := sk.errorQueue[0]
	sk.errorQueue = sk.errorQueue[1:]
	return n, errOK
}
