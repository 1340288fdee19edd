package linux

import (
	"math/bits"
	"syscall"
)

// pipeDefBuffers is PIPE_DEF_BUFFERS: a pipe's ring has 16 slots.
const pipeDefBuffers = 16

// pipeBufOps mirrors struct pipe_buf_operations (include/linux/pipe_fs_i.h,
// v6.18): how a buffer's page is released and whether it may be stolen
// (try_steal: handed over to the reader as its own page, as SPLICE_F_MOVE
// into a file does). Every kind releases with put_page.
type pipeBufOps struct {
	Name string
	// CanSteal: the ops have a try_steal. A nosteal buffer shares its
	// page with someone else (an skb, a psock's message), who may still
	// read or reuse it.
	CanSteal bool
}

// The buffer ops the modelled paths use (fs/pipe.c, fs/splice.c, v6.18).
var (
	// anonPipeBufOps: pages a write(2) into the pipe allocated.
	anonPipeBufOps = &pipeBufOps{Name: "anon_pipe_buf_ops", CanSteal: true}
	// defaultPipeBufOps: pages copy_splice_read allocated and filled.
	defaultPipeBufOps = &pipeBufOps{Name: "default_pipe_buf_ops", CanSteal: true}
	// nostealPipeBufOps: pages shared with their source (skb_splice_bits,
	// the zero-copy sockmap actor).
	nostealPipeBufOps = &pipeBufOps{Name: "nosteal_pipe_buf_ops"}
)

// pipeBuffer mirrors struct pipe_buffer (include/linux/pipe_fs_i.h, v6.18):
// a page range the pipe holds one reference to, released through Ops.
type pipeBuffer struct {
	Page   *page
	Offset int
	Len    int
	Ops    *pipeBufOps
}

// pipe mirrors struct pipe_inode_info (include/linux/pipe_fs_i.h, v6.18):
// a ring of MaxUsage buffers between Tail (the next to read) and Head (the
// next to fill).
//
// Ownership: every buffer between Tail and Head holds one page reference,
// dropped when a read consumes the buffer (pipe_buf_release) or the pipe is
// released (free_pipe_info). A buffer never holds a slab object.
//
// LOCKING: pipe->mutex is mutex and mutexWq: a splice into the pipe holds
// it across the socket's splice_read, sleeps included (splice_file_to_pipe),
// and drops it only while it waits for space (pipe_wait_writable); a
// pipe read and F_SETPIPE_SZ take it too. Functions named ...Locked
// expect it held by the calling task.
type pipe struct {
	Bufs     []pipeBuffer
	Head     uint
	Tail     uint
	MaxUsage int
	Readers  int
	Wq       waitQueue // rd_wait and wr_wait

	mutex   *task // the holder of pipe->mutex, nil when free
	mutexWq waitQueue
}

// lock mirrors pipe_lock() (fs/pipe.c, v6.18): sleep until pipe->mutex is
// free, then hold it.
func (p *pipe) lock(t *task) {
	reach(fnPipeLock)
	for p.mutex != nil {
		t.waitWoken(&p.mutexWq, maxTimeout)
	}
	p.mutex = t
}

// unlock mirrors pipe_unlock() (fs/pipe.c, v6.18).
func (p *pipe) unlock() {
	reach(fnPipeUnlock)
	p.mutex = nil
	p.mutexWq.wakeUp()
}

// newPipe mirrors alloc_pipe_info() (fs/pipe.c, v6.18) with slots buffers.
func newPipe(slots int) *pipe {
	reach(fnNewPipe)
	return &pipe{Bufs: make([]pipeBuffer, slots), MaxUsage: slots, Readers: 1}
}

// occupancy mirrors pipe_occupancy() (include/linux/pipe_fs_i.h, v6.18).
func (p *pipe) occupancy() int {
	reach(fnPipeOccupancy)
	return int(p.Head - p.Tail)
}

// full mirrors pipe_full() (include/linux/pipe_fs_i.h, v6.18).
func (p *pipe) full() bool {
	reach(fnPipeFull)
	return p.occupancy() >= p.MaxUsage
}

// empty mirrors pipe_empty() (include/linux/pipe_fs_i.h, v6.18).
func (p *pipe) empty() bool {
	reach(fnPipeEmpty)
	return p.Head == p.Tail
}

func (p *pipe) buf(i uint) *pipeBuffer { return &p.Bufs[i%uint(len(p.Bufs))] }

// Bytes returns the bytes buffered in the pipe.
func (p *pipe) Bytes() int {
	n := 0
	for i := p.Tail; i != p.Head; i++ {
		n += p.buf(i).Len
	}
	return n
}

// push stores buf in the next slot; the caller checked that the pipe is
// not full and has readers. The pipe takes over buf's page reference.
// A slab object reaching a pipe is a fault.
func (p *pipe) push(buf pipeBuffer) {
	if buf.Page.Slab {
		fault("slab-in-pipe", "slab object %d in a pipe buffer (%s)", buf.Page.ID, buf.Ops.Name)
	}
	*p.buf(p.Head) = buf
	p.Head++
}

// addToPipe mirrors add_to_pipe() (fs/splice.c, v6.18): queue one buffer,
// whose reference the caller owns. It returns the bytes queued, or
// -EPIPE without readers, -EAGAIN when the pipe is full; on failure the
// buffer is released.
func (k *kernel) addToPipe(p *pipe, buf pipeBuffer) int {
	k.reach(fnAddToPipe)
	ret := buf.Len
	switch {
	case p.Readers == 0:
		ret = -int(errEPIPE)
	case p.full():
		ret = -int(errEAGAIN)
	default:
		p.push(buf)
		return ret
	}
	k.pipeBufRelease(buf)
	return ret
}

// pipeBufRelease mirrors pipe_buf_release() (include/linux/pipe_fs_i.h,
// v6.18): the ops' release, put_page for every kind modelled.
func (k *kernel) pipeBufRelease(buf pipeBuffer) {
	k.reach(fnPipeBufRelease)
	k.pages.putPage(buf.Page)
}

// roundPipeSize mirrors round_pipe_size() (fs/pipe.c, v6.18): at least a
// page, a power of two, 0 when out of range.
func roundPipeSize(size uint64) uint64 {
	reach(fnRoundPipeSize)
	if size > 1<<31 {
		return 0
	}
	if size < pageSize {
		return pageSize
	}
	return 1 << bits.Len64(size-1)
}

// pipeSetSize mirrors pipe_set_size() → pipe_resize_ring() (fs/pipe.c,
// v6.18) for F_SETPIPE_SZ by root: the new capacity in bytes, -EINVAL for
// a size out of range, -EBUSY when fewer slots than buffers in use.
// Root holds CAP_SYS_RESOURCE, so /proc/sys/fs/pipe-max-size (1 MiB) and
// the per-user pipe limits, which give others -EPERM, do not apply; the
// kernel backend runs as root too.
func (p *pipe) pipeSetSize(arg uint64) (int, syscall.Errno) {
	reach(fnPipePipeSetSize)
	size := roundPipeSize(arg)
	slots := int(size / pageSize)
	if slots == 0 {
		return 0, errEINVAL
	}
	n := p.occupancy()
	if slots < n {
		return 0, errEBUSY
	}
	bufs := make([]pipeBuffer, slots)
	for i := 0; i < n; i++ {
		bufs[i] = *p.buf(p.Tail + uint(i))
	}
	p.Bufs, p.Tail, p.Head, p.MaxUsage = bufs, 0, uint(n), slots
	p.Wq.wakeUp() // wake_up_interruptible_all(&pipe->wr_wait)
	return slots * pageSize, errOK
}

// mutPipeReadNoAdvance is a bug of the second zoo (mutation.go).
var mutPipeReadNoAdvance = registerMutation("pipe-read-no-advance",
	"pipe_read shortens a partly read buffer without advancing buf->offset: the next read returns the same bytes again")

// pipeRead mirrors pipe_read() (fs/pipe.c, v6.18, where it is named
// anon_pipe_read()) on an O_NONBLOCK read end: up to n bytes across
// buffers, copied out (copy_page_to_iter), each emptied buffer released;
// -EAGAIN when empty (a writer exists).
func (k *kernel) pipeRead(pipe *pipe, dst *iovIter) syscall.Errno {
	k.reach(fnPipeRead)
	if dst.left() == 0 {
		return errOK
	}
	if pipe.empty() {
		return errEAGAIN
	}
	for !pipe.empty() && dst.left() > 0 {
		b := pipe.buf(pipe.Tail)
		c := dst.copyInTagged(b.Page.bytes(b.Offset, b.Len), b.Page.tagsAt(b.Offset, b.Len))
		if !k.mutated(mutPipeReadNoAdvance) {
			b.Offset += c
		}
		b.Len -= c
		if b.Len == 0 {
			k.pipeBufRelease(*b)
			*b = pipeBuffer{}
			pipe.Tail++
		}
	}
	pipe.Wq.wakeUp() // wake writers waiting for space
	return errOK
}

// pipeRelease mirrors free_pipe_info() (fs/pipe.c, v6.18): drop every
// buffer.
func (k *kernel) pipeRelease(pipe *pipe) {
	k.reach(fnPipeRelease)
	for !pipe.empty() {
		b := pipe.buf(pipe.Tail)
		k.pipeBufRelease(*b)
		*b = pipeBuffer{}
		pipe.Tail++
	}
	pipe.Readers = 0
	pipe.Wq.wakeUp()
}
