package linux

import "syscall"

// The splice_read patches for sockmap sockets. Mainline has none:
// inet_stream_ops.splice_read is tcp_splice_read, which reads only
// sk_receive_queue, so splice(2) never sees what a psock queued on
// ingress_msg (KERNEL-FACTS: -EAGAIN before the FIN, 0 after it).
//
//   - splice-copy: Vincent Whitchurch, "tcp_bpf: Fix reading with
//     splice(2)" (bpf-next, June 2024, patch 2/5; v3 takes the same
//     approach): the tcp_bpf protos' splice_read is copy_splice_read(),
//     which reads through the socket's recvmsg (tcp_bpf_recvmsg, or the
//     parser variant) into freshly allocated pages. Every byte is copied
//     once into the pipe and once more out of it.
//   - splice-zerocopy: Jiayuan Chen, "bpf/sockmap: add splice support for
//     tcp_bpf" (bpf-next v1, March 2026), patches 1-5: splice_read goes
//     through struct proto (patches 1-2), tcp_bpf's recvmsg bodies take a
//     read actor (patch 3), and the splice actor hands each scatterlist
//     element to the pipe (patch 4 copies into alloc_page'd pages; patch 5
//     passes fragment pages by reference with get_page and copies
//     slab-backed linear data into sk_page_frag, both with
//     nosteal_pipe_buf_ops).
//
// What the model could read of the posted text: patch 2/5 of Vincent's
// series whole, Jiayuan's cover letter and the first hunk of patch 5 (the
// tcp_bpf_splice_ctx with its sock, the PageSlab split). The rest of
// tcp_bpf_splice_read is reconstructed: the bodies of tcp_bpf_recvmsg and
// tcp_bpf_recvmsg_parser with the splice actor, falling back to
// tcp_splice_read where recvmsg falls back to tcp_recvmsg, and taking the
// timeout from the file's O_NONBLOCK as tcp_splice_read does.
func init() {
	patches["splice-copy"] = func(p *behaviour) { p.SpliceRead = spliceReadCopy }
	patches["splice-zerocopy"] = func(p *behaviour) { p.SpliceRead = spliceReadZerocopy }
}

// spliceReadKind is behaviour.SpliceRead: which splice_read the tcp_bpf
// protos have.
type spliceReadKind uint8

const (
	spliceReadTCP      spliceReadKind = iota // mainline: tcp_splice_read
	spliceReadCopy                           // splice-copy: copy_splice_read
	spliceReadZerocopy                       // splice-zerocopy: tcp_bpf_splice_read
)

// Planted bugs of the zero-copy actor (the bug zoo).
var (
	mutZerocopyNoGetPage = registerMutation("zerocopy-no-get-page",
		"sk_msg_splice_actor hands a fragment page to the pipe without get_page: the pipe buffer's reference is the sk_msg's")
	mutZerocopySlabToPipe = registerMutation("zerocopy-slab-to-pipe",
		"sk_msg_splice_actor skips the PageSlab check and hands slab-backed linear data to the pipe by reference")
)

// tcpBpfSpliceReadFor returns the splice_read the tcp_bpf proto of config
// has under the profile, or nil to keep the base proto's.
func (k *kernel) tcpBpfSpliceReadFor(config int) func(t *task, sk *sock, pipe *pipe, length int, nonblock bool) (int, syscall.Errno) {
	switch k.prof.SpliceRead {
	case spliceReadCopy:
		// prot[TCP_BPF_BASE].splice_read, inherited by TX, RX and TXRX.
		return k.copySpliceRead
	case spliceReadZerocopy:
		if config == tcpBpfRx || config == tcpBpfTxRx {
			return k.tcpBpfSpliceReadParser
		}
		return k.tcpBpfSpliceRead
	}
	return nil
}

// copySpliceRead mirrors copy_splice_read() (fs/splice.c, v6.18) on a
// socket: read up to length bytes through the file's read_iter
// (sock_read_iter → sock_recvmsg, MSG_DONTWAIT when the file is
// O_NONBLOCK) into freshly allocated pages, then queue one
// default_pipe_buf_ops buffer per page filled. -EFAULT becomes -EAGAIN.
func (k *kernel) copySpliceRead(t *task, sk *sock, pipe *pipe, length int, nonblock bool) (int, syscall.Errno) {
	k.reach(fnCopySpliceRead)
	length = min(length, max(pipe.MaxUsage-pipe.occupancy(), 0)*pageSize)
	if length == 0 {
		return 0, errOK
	}
	flags := 0
	if nonblock {
		flags = msgDontwait
	}
	bvec := newIovIter(length) // the pages of the bio_vec, filled below
	n, err := sk.SkProt.Recvmsg(t, sk, bvec, flags)
	if err == errEFAULT {
		err = errEAGAIN
	}
	if err != 0 {
		return 0, err
	}
	k.chargeCopy(n)
	for off := 0; off < n; off += pageSize {
		page := k.pages.allocPage(pageSize)
		chunk := copy(page.Data, bvec.buf[off:n])
		if page.Tags != nil {
			copy(page.Tags, tagsOrZero(bvec.tagsOf(off, off+chunk), chunk, true))
		}
		pipe.push(pipeBuffer{Page: page, Len: chunk, Ops: defaultPipeBufOps})
	}
	return n, errOK
}

// spliceActor is the read actor of tcp_bpf_splice_read, sk_msg_splice_actor
// as patch 5 of Jiayuan Chen's series posts it (struct tcp_bpf_splice_ctx:
// the pipe and the socket): a fragment page goes to the pipe with a
// reference of its own (get_page); slab-backed data (PageSlab: an skb's
// linear head) is first copied into sk_page_frag, since get_page is
// invalid on slab memory. Every buffer uses nosteal_pipe_buf_ops.
type spliceActor struct {
	k    *kernel
	t    *task
	pipe *pipe
	want int // bytes still to splice
}

func (a *spliceActor) left() int { return a.want }

// actor queues one pipe buffer of up to n bytes at p[off:] and returns the
// bytes queued, 0 when the pipe is full (add_to_pipe released the buffer).
func (a *spliceActor) actor(p *page, off, n int) int {
	k := a.k
	buf := pipeBuffer{Page: p, Offset: off, Len: n, Ops: nostealPipeBufOps}
	if p.Slab && !k.mutated(mutZerocopySlabToPipe) {
		// A copy into sk_page_frag(ctx->sk), the splicing task's
		// task_frag, as linear_to_page() (net/core/skbuff.c, v6.18) does.
		fp, foff, fn := k.linearToPage(a.t, p, off, n)
		getPage(fp)
		buf = pipeBuffer{Page: fp, Offset: foff, Len: fn, Ops: nostealPipeBufOps}
	} else if !k.mutated(mutZerocopyNoGetPage) {
		getPage(p)
	}
	r := k.addToPipe(a.pipe, buf)
	if r <= 0 {
		return 0
	}
	a.want -= r
	return r
}

// tcpBpfSpliceRead is tcp_bpf_splice_read for sockets without a stream
// verdict (reconstructed, see the top of this file): tcp_bpf_recvmsg's
// body with the splice actor; plain TCP data goes through tcp_splice_read.
func (k *kernel) tcpBpfSpliceRead(t *task, sk *sock, pipe *pipe, length int, nonblock bool) (int, syscall.Errno) {
	tcpRead := func() (int, syscall.Errno) { return k.tcpSpliceRead(t, sk, pipe, length, nonblock) }
	p := skPsockGet(sk)
	if p == nil {
		return tcpRead()
	}
	return k.tcpBpfRead(t, sk, p, &spliceActor{k: k, t: t, pipe: pipe, want: length}, 0, nonblock, tcpRead)
}

// tcpBpfSpliceReadParser is tcp_bpf_splice_read for sockets with a stream
// verdict (reconstructed): tcp_bpf_recvmsg_parser's body with the splice
// actor.
func (k *kernel) tcpBpfSpliceReadParser(t *task, sk *sock, pipe *pipe, length int, nonblock bool) (int, syscall.Errno) {
	return k.tcpBpfReadParser(t, sk, &spliceActor{k: k, t: t, pipe: pipe, want: length}, 0, nonblock, func() (int, syscall.Errno) {
		return k.tcpSpliceRead(t, sk, pipe, length, nonblock)
	})
}
