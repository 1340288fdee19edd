package linux

import (
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// FreeBSD's SO_SPLICE (sys/kern/uipc_socket.c at freebsd-src 4d0f7fdd,
// D46411 "socket: Implement SO_SPLICE"), profile freebsd-so-splice:
// setsockopt(src, SO_SPLICE, {sink, max, idle}) makes a worker move every
// byte arriving on src into the sink's send buffer, one direction per
// call, until max bytes have moved, the idle timeout fires, src reaches
// EOF, a transfer fails, or src is unspliced (fd -1). The source's
// receive wake-ups and the sink's send wake-ups go to the worker instead
// of readers, writers and pollers while spliced.
//
// Unlike FreeBSD:
//   - the sockets are the model's, with Linux's TCP under them: the sink's
//     room is Linux's send buffer (sk_wmem_queued against sk_sndbuf), and
//     poll is tcp_poll with the splice's suppressions applied;
//   - a transfer peeks at the source, sends what the sink takes, and
//     consumes exactly that, where FreeBSD computes the room first and
//     moves it atomically: the same bytes move;
//   - the worker is kernel work of the model's scheduler, not a per-CPU
//     kthread; a transfer runs whole, so there is no CLOSING state to
//     wait for.

// mutSoSpliceMaxOverrun is a bug of the zoo (mutation.go).
var mutSoSpliceMaxOverrun = registerMutation("so-splice-max-overrun",
	"so_splice_xfer moves all the source has, not at most max - so_splice_sent, then dissolves at max: a splice "+
		"moves bytes past its limit")

// Bugs of the second zoo (mutation.go), each a way to get SO_SPLICE
// wrong that FreeBSD's own tests do not exercise.
var (
	mutSoSpliceUnspliceFlush = registerMutation("so-splice-unsplice-flush",
		"so_unsplice flushes the source's receive buffer (as sorflush does) instead of leaving its bytes to "+
			"the application: what the splice had not moved yet is lost")
	mutSoSpliceXferConsumesChunk = registerMutation("so-splice-xfer-consumes-chunk",
		"so_splice_xfer drops the whole chunk from the source when the sink's sosend took only part of it: "+
			"the rest is lost")
	mutSoSpliceTimeoutRearm = registerMutation("so-splice-timeout-rearm",
		"so_splice_xfer re-arms the splice's timeout at every transfer (OpenBSD's idle timeout), where "+
			"FreeBSD arms it once, at the splice: a splice with traffic outlives its timeout")
)

// soSplice mirrors struct so_splice (sys/sys/socketvar.h, 4d0f7fdd).
type soSplice struct {
	src, dst *sock
	max      int64 // bytes to move at most; -1: unlimited
	rec      int   // its record in Stats.Splices
	idle     time.Duration
	timerGen int // the timer that may fire (so-splice-timeout-rearm re-arms it)
	state    soSpliceState
	// saved are the callbacks the splice diverted (sorwakeup of src,
	// sowwakeup of dst), given back at unsplice.
	srcDataReady, srcStateChange, dstWriteSpace func(*sock)
}

// soSpliceState mirrors enum so_splice_state.
type soSpliceState uint8

const (
	spliceIdle    soSpliceState = iota // waiting for work to arrive
	spliceQueued                       // a wakeup queued the worker
	spliceRunning                      // transferring
	spliceClosed                       // unspliced
)

// soSpliceAlloc mirrors so_splice_alloc() (sys/kern/uipc_socket.c,
// 4d0f7fdd): max 0 means unlimited.
func soSpliceAlloc(max int64) *soSplice {
	reach(fnSoSpliceAlloc)
	if max <= 0 {
		max = -1
	}
	return &soSplice{max: max, state: spliceIdle}
}

// soSplice mirrors so_splice() (sys/kern/uipc_socket.c, 4d0f7fdd): the
// checks in FreeBSD's order (the counter is reset before the busy and
// connected ones, so a refused re-splice zeroes it too), the callbacks
// diverted, the idle timer armed once (a lifetime from now, not re-armed
// by traffic), then a first transfer in the caller's context.
func (k *kernel) soSplice(t *task, op int, src, dst *sock, max int64, idle time.Duration) trace.Result {
	k.reach(fnSoSplice)
	sp := soSpliceAlloc(max)
	src.spliceSent = 0
	switch {
	case src.State == tcpClose:
		return trace.Fail(errENOTCONN)
	case src.soSplice != nil:
		return trace.Fail(errEBUSY)
	case dst.State == tcpClose:
		return trace.Fail(errENOTCONN)
	case dst.soSpliceBack != nil:
		return trace.Fail(errEBUSY)
	}
	sp.src, sp.dst = src, dst
	sp.rec = len(k.stats.Splices)
	k.stats.Splices = append(k.stats.Splices, SpliceRecord{Op: op, Src: src.Name, Dst: dst.Name, Max: max, Idle: idle, Made: time.Duration(k.s.now)})
	src.soSplice, dst.soSpliceBack = sp, sp
	sp.srcDataReady, sp.srcStateChange, sp.dstWriteSpace = src.SkDataReady, src.SkStateChange, dst.SkWriteSpace
	push := func(*sock) { k.soSpliceDispatch(sp) } // splice_push / splice_pull
	src.SkDataReady, src.SkStateChange, dst.SkWriteSpace = push, push, push
	sp.idle = idle
	k.soSpliceArm(sp)
	sp.state = spliceQueued
	k.soSpliceXfer(t, sp)
	return trace.OK()
}

// soSpliceDispatch mirrors so_splice_dispatch() (sys/kern/uipc_socket.c,
// 4d0f7fdd): an idle splice is queued to the worker once.
func (k *kernel) soSpliceDispatch(sp *soSplice) {
	k.reach(fnSoSpliceDispatch)
	if sp.state != spliceIdle {
		return
	}
	sp.state = spliceQueued
	k.s.queueWork("so_splice_xfer", func() {
		if sp.state == spliceQueued {
			k.soSpliceXfer(k.s.kernelTask, sp)
		}
	})
}

// soSpliceXfer mirrors so_splice_xfer() and so_splice_xfer_data()
// (sys/kern/uipc_socket.c, 4d0f7fdd): one chunk of at most max - sent
// bytes; the splice dissolves when max is reached, when the source is at
// EOF with nothing to move, or when the sink cannot send; else it is
// queued again while the source has bytes and the chunk moved some, and
// goes idle otherwise.
func (k *kernel) soSpliceXfer(t *task, sp *soSplice) {
	k.reach(fnSoSpliceXfer)
	sp.state = spliceRunning
	src, dst := sp.src, sp.dst
	want := int64(k.tcp.Inq(src))
	if sp.max > 0 && !k.mutated(mutSoSpliceMaxOverrun) {
		want = min(want, sp.max-src.spliceSent)
	}
	moved, failed := 0, false
	switch {
	case want == 0:
		failed = src.SkShutdown&rcvShutdown != 0 // EOF: EPIPE
	default:
		peek := newIovIter(int(want))
		if _, err := src.SkProt.Recvmsg(t, src, peek, msgDontwait|msgPeek); err != 0 {
			failed = true
			break
		}
		n, err := dst.SkProt.Sendmsg(t, dst, newSrcKernel(peek.buf, peek.tagsOf(0, len(peek.buf))), msgDontwait|msgNosignal)
		if n > 0 {
			drop := n
			if k.mutated(mutSoSpliceXferConsumesChunk) {
				drop = len(peek.buf)
			}
			if _, err := src.SkProt.Recvmsg(t, src, newIovIter(drop), msgDontwait); err != 0 {
				failed = true
			}
			if k.mutated(mutSoSpliceTimeoutRearm) {
				k.soSpliceArm(sp)
			}
			k.departed(src, peek.tagsOf(0, n), -1)
			moved = n
			src.spliceSent += int64(n)
			k.stats.Splices[sp.rec].Moved += int64(n)
		} else if err != errEAGAIN {
			failed = true // the sink cannot send: EPIPE, ECONNRESET
		}
	}
	switch {
	case sp.state != spliceRunning:
		// unspliced meanwhile
	case failed || sp.max > 0 && src.spliceSent >= sp.max:
		end := "max"
		if failed {
			end = "error"
			if want == 0 {
				end = "eof"
			}
		}
		k.soUnsplice(src, end)
	case moved > 0 && k.tcp.Inq(src) > 0:
		sp.state = spliceIdle
		k.soSpliceDispatch(sp)
	default:
		sp.state = spliceIdle
	}
}

// soSpliceArm arms sp's timeout, if it has one, from now: so_splice's
// callout_reset_sbt, once per splice.
func (k *kernel) soSpliceArm(sp *soSplice) {
	if sp.idle <= 0 {
		return
	}
	sp.timerGen++
	gen := sp.timerGen
	k.s.addTimer("so_splice_timeout", sp.idle, func() {
		if gen == sp.timerGen {
			k.soSpliceTimeout(sp)
		}
	})
}

// soSplicePoll mirrors the splice gates of sopoll_generic()
// (sys/kern/uipc_socket.c, 4d0f7fdd) to the socket's poll mask: no
// POLLIN for a spliced source (but at EOF), no POLLOUT for a sink.
func soSplicePoll(sk *sock, mask uint32) uint32 {
	sk.k.reach(fnSoSplicePoll)
	if sk.soSplice != nil && sk.SkShutdown&rcvShutdown == 0 {
		mask &^= pollIN
	}
	if sk.soSpliceBack != nil {
		mask &^= pollOUT
	}
	return mask
}

// soSpliceTimeout mirrors so_splice_timeout() (sys/kern/uipc_socket.c,
// 4d0f7fdd): unsplice, no so_error, no shutdown.
func (k *kernel) soSpliceTimeout(sp *soSplice) {
	k.reach(fnSoSpliceTimeout)
	if sp.state != spliceClosed && sp.src.soSplice == sp {
		k.soUnsplice(sp.src, "timeout")
	}
}

// soUnsplice mirrors so_unsplice() (sys/kern/uipc_socket.c, 4d0f7fdd):
// ENOTCONN unless src is a splice's source; else the splice is closed,
// the diverted callbacks given back, and the source's readers and the
// sink's writers woken (sorwakeup, sowwakeup), whatever is queued. why
// is recorded as the splice's end (Stats.Splices).
func (k *kernel) soUnsplice(src *sock, why string) trace.Result {
	k.reach(fnSoUnsplice)
	sp := src.soSplice
	if sp == nil {
		return trace.Fail(errENOTCONN)
	}
	k.stats.Splices[sp.rec].End = why
	k.stats.Splices[sp.rec].Ended = time.Duration(k.s.now)
	k.stats.Splices[sp.rec].EndOp = k.dispatched
	dst := sp.dst
	src.soSplice, dst.soSpliceBack = nil, nil
	src.SkDataReady, src.SkStateChange, dst.SkWriteSpace = sp.srcDataReady, sp.srcStateChange, sp.dstWriteSpace
	sp.state = spliceClosed
	if n := k.tcp.Inq(src); n > 0 && k.mutated(mutSoSpliceUnspliceFlush) {
		src.SkProt.Recvmsg(k.s.kernelTask, src, newIovIter(n), msgDontwait)
	}
	src.SkDataReady(src)
	dst.SkWriteSpace(dst)
	return trace.OK()
}

// departed records, with Config.Provenance on a profile with SO_SPLICE,
// the bytes (tags) that left the receive queue of src: moved by its
// splice (op -1) or read by recv op (Stats.Departures).
func (k *kernel) departed(src *sock, tags []Tag, op int) {
	if !k.pages.prov || !k.prof.SoSplice {
		return
	}
	for _, tag := range tags {
		d := &k.stats.Departures
		if n := len(*d); n > 0 {
			last := &(*d)[n-1]
			if last.Src == src.Name && last.Splice == (op < 0) && last.Op == op && tag.Known() &&
				last.Sender == tag.Sock() && last.Off+last.Len == tag.Off() {
				last.Len++
				continue
			}
		}
		sender, off := -1, int64(0)
		if tag.Known() {
			sender, off = tag.Sock(), tag.Off()
		}
		*d = append(*d, Departure{Src: src.Name, Sender: sender, Off: off, Len: 1, Splice: op < 0, Op: op})
	}
}
