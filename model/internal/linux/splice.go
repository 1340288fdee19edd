package linux

import "syscall"

// splicePipeDesc mirrors struct splice_pipe_desc (include/linux/splice.h,
// v6.18): at most MAX_SKB_FRAGS page ranges, each holding a page reference
// until spliced or released.
type splicePipeDesc struct {
	pages []pipeBuffer
}

// Second bug zoo: the mutations of this file (mutation.go).
var (
	mutLinearToPageNoAdvance = registerMutation("linear-to-page-no-advance",
		"linear_to_page copies into the page frag without advancing pfrag->offset: the next copy overwrites bytes a pipe buffer still holds")
	mutSpliceReadMissesShutdown = registerMutation("splice-read-misses-shutdown",
		"tcp_splice_read drops the RCV_SHUTDOWN check: splice after shutdown(SHUT_RD) is -EAGAIN (or sleeps) instead of EOF")
)

// fillPage mirrors spd_fill_page() (net/core/skbuff.c, v6.18): for the
// linear part (a slab head) first copy the range into the task's page
// frag (linear_to_page), which may take fewer than n bytes; then coalesce
// with the previous range when contiguous in the same page, else add a
// range (get_page). It returns the bytes taken and whether the descriptor
// was full (nothing taken).
func (k *kernel) fillPage(t *task, spd *splicePipeDesc, p *page, off, n int) (int, bool) {
	k.reach(fnFillPage)
	if len(spd.pages) == maxSkbFrags {
		return 0, true
	}
	if p.Slab {
		p, off, n = k.linearToPage(t, p, off, n)
	}
	if k := len(spd.pages); k > 0 {
		last := &spd.pages[k-1]
		if last.Page == p && last.Offset+last.Len == off {
			last.Len += n
			return n, false
		}
	}
	getPage(p)
	spd.pages = append(spd.pages, pipeBuffer{Page: p, Offset: off, Len: n, Ops: nostealPipeBufOps})
	return n, false
}

// linearToPage mirrors linear_to_page() (net/core/skbuff.c, v6.18): copy
// up to n bytes of linear data into the page frag of sk_page_frag (the
// splicing task's task_frag) and return the frag page range that now
// holds them. Unlike Linux, the refill never fails (no memory pressure).
func (k *kernel) linearToPage(t *task, p *page, off, n int) (*page, int, int) {
	k.reach(fnLinearToPage)
	pf := &t.frag
	k.pages.refill(pf)
	n = min(n, pf.Size-pf.Offset)
	copy(pf.Page.bytes(pf.Offset, n), p.bytes(off, n))
	if t := pf.Page.tagsAt(pf.Offset, n); t != nil {
		copy(t, tagsOrZero(p.tagsAt(off, n), n, true))
	}
	k.chargeCopy(n)
	off = pf.Offset
	if !k.mutated(mutLinearToPageNoAdvance) {
		pf.Offset += n
	}
	return pf.Page, off, n
}

// skbSpliceBits mirrors skb_splice_bits() → __skb_splice_bits() →
// __splice_segment() (net/core/skbuff.c, v6.18): map n bytes of skb from
// offset into a splice_pipe_desc with nosteal_pipe_buf_ops, the linear
// part copied (see fillPage), then splice_to_pipe.
func (k *kernel) skbSpliceBits(t *task, skb *skBuff, offset int, pipe *pipe, n int) int {
	k.reach(fnSkbSpliceBits)
	spd := &splicePipeDesc{}
frags:
	for _, f := range skb.Frags {
		if n == 0 {
			break
		}
		if offset >= f.Size {
			offset -= f.Size
			continue
		}
		poff, plen := f.Off+offset, f.Size-offset
		for n > 0 && plen > 0 {
			took, full := k.fillPage(t, spd, f.Page, poff, min(n, plen))
			if full {
				break frags
			}
			poff += took
			plen -= took
			n -= took
		}
		offset = 0
	}
	return k.spliceToPipe(pipe, spd)
}

// spliceToPipe mirrors splice_to_pipe() (fs/splice.c, v6.18): move the
// descriptor's ranges into free pipe slots; what does not fit is released.
// It returns the bytes moved, -EAGAIN when the pipe was full, -EPIPE
// without readers.
func (k *kernel) spliceToPipe(pipe *pipe, spd *splicePipeDesc) int {
	k.reach(fnSpliceToPipe)
	if len(spd.pages) == 0 {
		return 0
	}
	ret := 0
	i := 0
	if pipe.Readers == 0 {
		ret = -int(errEPIPE)
	} else {
		for !pipe.full() && i < len(spd.pages) {
			pipe.push(spd.pages[i])
			ret += spd.pages[i].Len
			i++
		}
		if ret == 0 {
			ret = -int(errEAGAIN)
		}
	}
	for ; i < len(spd.pages); i++ {
		k.pipeBufRelease(spd.pages[i]) // spd_release: sock_spd_release → put_page
	}
	return ret
}

// tcpSpliceRead mirrors tcp_splice_read() (net/ipv4/tcp.c, v6.18): splice
// from sk_receive_queue through tcp_read_sock. It never looks at a psock's
// ingress_msg. nonblock is the file's O_NONBLOCK.
func (k *kernel) tcpSpliceRead(t *task, sk *sock, pipe *pipe, length int, nonblock bool) (int, syscall.Errno) {
	k.reach(fnTcpSpliceRead)
	spliced := 0
	var ret int
	sk.lockSock(t)
	to := sk.sockRcvtimeo(nonblock)
	for length > 0 {
		// __tcp_splice_read.
		desc := &readDesc{Count: length}
		ret = k.tcp.ReadSock(sk, nil, desc, func(desc *readDesc, skb *skBuff, off, n int) int {
			if desc.Count < n {
				n = desc.Count
			}
			r := k.skbSpliceBits(t, skb, off, pipe, n)
			if r > 0 {
				desc.Count -= r
			}
			return r
		})
		if ret < 0 {
			break
		}
		if ret == 0 {
			if spliced > 0 {
				break
			}
			if sk.SockDone {
				break
			}
			if sk.SkErr != 0 {
				ret = -int(sk.sockError())
				break
			}
			if sk.SkShutdown&rcvShutdown != 0 && !k.mutated(mutSpliceReadMissesShutdown) {
				break
			}
			if sk.State == tcpClose {
				ret = -int(errENOTCONN)
				break
			}
			if to == 0 {
				ret = -int(errEAGAIN)
				break
			}
			if !sk.SkReceiveQueue.empty() {
				break
			}
			sk.skWaitDataLocked(t, &to, "tcp_splice_read", func() string { return seqHoleWhy(sk, k.tcp.CopiedSeq(sk)) }, nil)
			continue
		}
		length -= ret
		spliced += ret
		if length == 0 || to == 0 {
			break
		}
		sk.releaseSock()
		sk.lockSock(t)
		if sk.SkErr != 0 || sk.State == tcpClose || sk.SkShutdown&rcvShutdown != 0 {
			break
		}
	}
	sk.releaseSock()
	if spliced > 0 {
		return spliced, errOK
	}
	if ret < 0 {
		return 0, syscall.Errno(-ret)
	}
	return 0, errOK
}

// spliceSockToPipe mirrors do_splice() (fs/splice.c, v6.18) for a socket →
// pipe splice: wait_for_space (blocking unless SPLICE_F_NONBLOCK), then
// do_splice_read, which caps the length at the free slots times PAGE_SIZE,
// then the socket's splice_read: sock_splice_read → inet_stream_ops'
// tcp_splice_read on mainline, or, with the splice patches,
// inet_splice_read → the proto's splice_read (proto.SpliceRead), which the
// tcp_bpf protos replace (splice_read.go).
func (k *kernel) spliceSockToPipe(t *task, sk *sock, pipe *pipe, length int, nonblock, fileNonblock bool) (int, syscall.Errno) {
	k.reach(fnSpliceSockToPipe)
	if length == 0 {
		return 0, errOK
	}
	for {
		if pipe.Readers == 0 {
			return 0, errEPIPE
		}
		if !pipe.full() {
			break
		}
		if nonblock {
			return 0, errEAGAIN
		}
		// pipe_wait_writable: the mutex is dropped while waiting.
		held := pipe.mutex == t
		if held {
			pipe.unlock()
		}
		t.waitWoken(&pipe.Wq, maxTimeout)
		if held {
			pipe.lock(t)
		}
		if t.timedOut && pipe.Readers == 0 {
			return 0, errEPIPE
		}
	}
	space := pipe.MaxUsage - pipe.occupancy()
	if c := space * pageSize; length > c {
		length = c
	}
	n, err := sk.SkProt.SpliceRead(t, sk, pipe, length, fileNonblock)
	if n > 0 {
		pipe.Wq.wakeUp() // wakeup_pipe_readers
	}
	return n, err
}
