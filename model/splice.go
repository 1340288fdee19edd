package model

import "syscall"

// pipeDefBuffers is PIPE_DEF_BUFFERS: a pipe's ring has 16 slots.
const pipeDefBuffers = 16

// PipeBuffer mirrors struct pipe_buffer: a page range the pipe holds one
// reference to.
type PipeBuffer struct {
	Page   *Page
	Offset int
	Len    int
}

// Pipe mirrors struct pipe_inode_info: a ring of MaxUsage buffers between
// Tail (the next to read) and Head (the next to fill).
//
// Ownership: every buffer between Tail and Head holds one page reference,
// dropped when a read consumes the buffer (anon_pipe_buf_release /
// sock_pipe_buf ops) or the pipe is released.
type Pipe struct {
	Bufs     []PipeBuffer
	Head     uint
	Tail     uint
	MaxUsage int
	Readers  int
	Wq       WaitQueue // rd_wait and wr_wait
}

// newPipe mirrors alloc_pipe_info() with slots buffers.
func newPipe(slots int) *Pipe {
	return &Pipe{Bufs: make([]PipeBuffer, slots), MaxUsage: slots, Readers: 1}
}

// occupancy mirrors pipe_occupancy().
func (p *Pipe) occupancy() int { return int(p.Head - p.Tail) }

// full mirrors pipe_full().
func (p *Pipe) full() bool { return p.occupancy() >= p.MaxUsage }

// empty mirrors pipe_empty().
func (p *Pipe) empty() bool { return p.Head == p.Tail }

func (p *Pipe) buf(i uint) *PipeBuffer { return &p.Bufs[i%uint(len(p.Bufs))] }

// Bytes returns the bytes buffered in the pipe.
func (p *Pipe) Bytes() int {
	n := 0
	for i := p.Tail; i != p.Head; i++ {
		n += p.buf(i).Len
	}
	return n
}

// splicePipeDesc mirrors struct splice_pipe_desc: at most MAX_SKB_FRAGS
// page ranges, each holding a page reference until spliced or released.
type splicePipeDesc struct {
	pages []PipeBuffer
}

// spdFillPage mirrors spd_fill_page(): coalesce with the previous range
// when contiguous in the same page, else add a range (get_page). It
// reports true when the descriptor is full.
func (spd *splicePipeDesc) fillPage(p *Page, off, n int) bool {
	if len(spd.pages) == MaxSkbFrags {
		return true
	}
	if k := len(spd.pages); k > 0 {
		last := &spd.pages[k-1]
		if last.Page == p && last.Offset+last.Len == off {
			last.Len += n
			return false
		}
	}
	getPage(p)
	spd.pages = append(spd.pages, PipeBuffer{Page: p, Offset: off, Len: n})
	return false
}

// skbSpliceBits mirrors skb_splice_bits() → __skb_splice_bits(): map n
// bytes of skb from offset into a splice_pipe_desc, then splice_to_pipe.
func (k *kernel) skbSpliceBits(skb *SkBuff, offset int, pipe *Pipe, n int) int {
	spd := &splicePipeDesc{}
	for _, f := range skb.Frags {
		if n == 0 {
			break
		}
		if offset >= f.Size {
			offset -= f.Size
			continue
		}
		m := f.Size - offset
		if m > n {
			m = n
		}
		if spd.fillPage(f.Page, f.Off+offset, m) {
			break
		}
		n -= m
		offset = 0
	}
	return k.spliceToPipe(pipe, spd)
}

// spliceToPipe mirrors splice_to_pipe(): move the descriptor's ranges into
// free pipe slots; what does not fit is released. It returns the bytes
// moved, -EAGAIN when the pipe was full, -EPIPE without readers.
func (k *kernel) spliceToPipe(pipe *Pipe, spd *splicePipeDesc) int {
	if len(spd.pages) == 0 {
		return 0
	}
	ret := 0
	i := 0
	if pipe.Readers == 0 {
		ret = -int(errEPIPE)
	} else {
		for !pipe.full() && i < len(spd.pages) {
			*pipe.buf(pipe.Head) = spd.pages[i]
			pipe.Head++
			ret += spd.pages[i].Len
			i++
		}
		if ret == 0 {
			ret = -int(errEAGAIN)
		}
	}
	for ; i < len(spd.pages); i++ {
		k.pages.putPage(spd.pages[i].Page)
	}
	return ret
}

// tcpSpliceRead mirrors tcp_splice_read() (net/ipv4/tcp.c, v6.18): splice
// from sk_receive_queue through tcp_read_sock. It never looks at a psock's
// ingress_msg. nonblock is the file's O_NONBLOCK.
func (k *kernel) tcpSpliceRead(t *Task, sk *Sock, pipe *Pipe, length int, nonblock bool) (int, syscall.Errno) {
	spliced := 0
	var ret int
	sk.lockSock(t)
	to := sk.sockRcvtimeo(nonblock)
	for length > 0 {
		// __tcp_splice_read.
		desc := &ReadDesc{Count: length}
		ret = k.tcp.ReadSock(sk, nil, desc, func(desc *ReadDesc, skb *SkBuff, off, n int) int {
			if desc.Count < n {
				n = desc.Count
			}
			r := k.skbSpliceBits(skb, off, pipe, n)
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
			if sk.SkShutdown&rcvShutdown != 0 {
				break
			}
			if sk.State == TCPClose {
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
			sk.skWaitDataLocked(t, &to, nil)
			continue
		}
		length -= ret
		spliced += ret
		if length == 0 || to == 0 {
			break
		}
		sk.releaseSock()
		sk.lockSock(t)
		if sk.SkErr != 0 || sk.State == TCPClose || sk.SkShutdown&rcvShutdown != 0 {
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

// spliceSockToPipe mirrors do_splice() for a socket → pipe splice:
// wait_for_space (blocking unless SPLICE_F_NONBLOCK), then do_splice_read,
// which caps the length at the free slots times PAGE_SIZE, then the
// socket's splice_read (sock_splice_read → tcp_splice_read).
func (k *kernel) spliceSockToPipe(t *Task, sk *Sock, pipe *Pipe, length int, nonblock, fileNonblock bool) (int, syscall.Errno) {
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
		t.waitWoken(&pipe.Wq, maxTimeout)
		if t.timedOut && pipe.Readers == 0 {
			return 0, errEPIPE
		}
	}
	space := pipe.MaxUsage - pipe.occupancy()
	if c := space * PageSize; length > c {
		length = c
	}
	n, err := k.tcpSpliceRead(t, sk, pipe, length, fileNonblock)
	if n > 0 {
		pipe.Wq.wakeUp() // wakeup_pipe_readers
	}
	return n, err
}

// pipeRead mirrors pipe_read() on an O_NONBLOCK read end: up to n bytes
// across buffers, -EAGAIN when empty (a writer exists).
func (k *kernel) pipeRead(pipe *Pipe, dst *iovIter) syscall.Errno {
	if dst.left() == 0 {
		return errOK
	}
	if pipe.empty() {
		return errEAGAIN
	}
	for !pipe.empty() && dst.left() > 0 {
		b := pipe.buf(pipe.Tail)
		c := dst.copyIn(b.Page.bytes(b.Offset, b.Len))
		b.Offset += c
		b.Len -= c
		if b.Len == 0 {
			k.pages.putPage(b.Page)
			*b = PipeBuffer{}
			pipe.Tail++
		}
	}
	pipe.Wq.wakeUp() // wake writers waiting for space
	return errOK
}

// pipeRelease mirrors free_pipe_info(): drop every buffer.
func (k *kernel) pipeRelease(pipe *Pipe) {
	for !pipe.empty() {
		b := pipe.buf(pipe.Tail)
		k.pages.putPage(b.Page)
		*b = PipeBuffer{}
		pipe.Tail++
	}
	pipe.Readers = 0
	pipe.Wq.wakeUp()
}
