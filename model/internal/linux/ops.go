package linux

import (
	"syscall"
	"time"

	"github.com/splicecheck/splicecheck/trace"
)

// Socket option minimums (include/net/sock.h, v6.18): SOCK_MIN_RCVBUF is
// TCP_SKB_MIN_TRUESIZE = 2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff)),
// SOCK_MIN_SNDBUF twice that; the maximums are the profile's rmem_max
// and wmem_max (tcpConf).
const (
	sockMinRcvbuf = 2048 + 256
	sockMinSndbuf = 2 * (2048 + 256)
)

// exec runs op i on task t: the system calls the kernel backend makes for
// the op, in the same order, with the same flags.
func (r *run) exec(t *task, i int) trace.Result {
	op := &r.t.Ops[i]
	k := r.k
	if k.prof.SoSplice && linuxOnly(op) {
		// FreeBSD has no bpf(2) sockmaps, no splice(2), no pairing.
		return trace.Fail(errEOPNOTSUPP)
	}
	switch op.Kind {
	case trace.OpConn:
		return r.conn(op)
	case trace.OpMap:
		m, err := mapCreate(op.Map, op.MapType, op.Size)
		if err != 0 {
			r.failed[op.Map] = true
			return trace.Fail(err)
		}
		k.maps[op.Map] = m
		return trace.OK()
	case trace.OpProg:
		return r.prog(op)
	case trace.OpInsert:
		m := k.maps[op.Map]
		if m == nil {
			return trace.Fail(errEBADF)
		}
		sk := k.socks[op.A]
		if err := sk.fget(); err != 0 {
			return trace.Fail(err)
		}
		defer sk.fput(t)
		return result(k.mapUpdate(t, m, op.Key, sk))
	case trace.OpDelete:
		m := k.maps[op.Map]
		if m == nil {
			return trace.Fail(errEBADF)
		}
		return result(k.mapDelete(m, op.Key))
	case trace.OpPair:
		// bpf_sock_splice_pair exists only with the loopback-splice RFC.
		return result(r.pair(t, op.A, op.B))
	case trace.OpSend:
		return r.send(t, op)
	case trace.OpRecv:
		return r.recv(t, op)
	case trace.OpSplice:
		return r.splice(t, op)
	case trace.OpPipe:
		sk := k.socks[op.A]
		if sk == nil || !sk.fdOpen {
			return trace.Fail(errEBADF)
		}
		pipe := r.pipeOf(sk)
		dst := newIovIter(int(op.Size))
		pipe.lock(t)
		err := k.pipeRead(pipe, dst)
		pipe.unlock()
		if err != 0 {
			return trace.Fail(err)
		}
		r.readTags(t, dst)
		return trace.Count(int64(len(dst.buf))).WithData(dst.buf)
	case trace.OpIOCopy:
		return r.iocopy(t, op)
	case trace.OpFIONREAD:
		sk := k.socks[op.A]
		if err := sk.fget(); err != 0 {
			return trace.Fail(err)
		}
		defer sk.fput(t)
		n, err := sk.SkProt.Ioctl(t, sk, siocinq)
		if err != 0 {
			return trace.Fail(err)
		}
		// The ioctl stores a C int; the kernel backend reads it into a
		// Go int through unix.IoctlGetInt, whose upper half stays zero,
		// so a negative tcp_inq (copied_seq past rcv_nxt, 6.1's
		// FIONREAD after a stream parser's overshoot) shows as its 32-bit
		// two's complement (measured on the 6.1 guest: 4294964296).
		return trace.Count(int64(uint32(int32(n))))
	case trace.OpPoll:
		sk := k.socks[op.A]
		if err := sk.fget(); err != 0 {
			return trace.Fail(err)
		}
		defer sk.fput(t)
		return trace.Word(trace.PollWord(k.sockPoll(sk)))
	case trace.OpState:
		sk := k.socks[op.A]
		if err := sk.fget(); err != 0 {
			return trace.Fail(err)
		}
		defer sk.fput(t)
		return trace.Word(sk.State.String())
	case trace.OpShutdown:
		sk := k.socks[op.A]
		if err := sk.fget(); err != 0 {
			return trace.Fail(err)
		}
		defer sk.fput(t)
		how := map[trace.Shutdown]int{trace.ShutRD: 0, trace.ShutWR: 1, trace.ShutRDWR: 2}[op.How]
		return result(k.inetShutdown(t, sk, how))
	case trace.OpClose:
		return r.close(t, op)
	case trace.OpSet:
		return r.set(t, op)
	case trace.OpSleep:
		if op.Size == 0 {
			return trace.OK()
		}
		t.sleepOn(nil, r.s.now+vtime(time.Duration(op.Size)*time.Millisecond))
		return trace.OK()
	case trace.OpJoin:
		return r.join(t, i)
	case trace.OpErrqueue:
		return r.errqueue(t, op)
	case trace.OpSosplice, trace.OpUnsplice, trace.OpGetsplice:
		return r.soSpliceOp(t, op, i)
	}
	return trace.Fail(errEINVAL)
}

func result(err syscall.Errno) trace.Result {
	if err != 0 {
		return trace.Fail(err)
	}
	return trace.OK()
}

// readTags keeps the tags of what a read op of t returned, when the run
// keeps provenance (Stats.ReadTags; exec files them under the op).
func (r *run) readTags(t *task, dst *iovIter) {
	if r.k.pages.prov {
		t.readTags = tagsOrZero(dst.tagsOf(0, len(dst.buf)), len(dst.buf), true)
	}
}

// conn creates a connected pair: A connects, B is accepted. With `pair`,
// the sock_ops program of connPair runs at the handshake's two
// ESTABLISHED callbacks; the model's handshake is one atomic step
// (tcp.Connect), so both callbacks run at its end, A's before B's, as
// the kernel runs them. The connection exists whatever they return.
func (r *run) conn(op *trace.Op) trace.Result {
	k := r.k
	a, b := k.newSock(op.A), k.newSock(op.B)
	a.SkProt, b.SkProt = k.tcpProt(), k.tcpProt()
	k.tcp.Connect(a, b)
	k.socks[op.A], k.socks[op.B] = a, b
	a.idx, b.idx = len(k.sockSeq), len(k.sockSeq)+1
	k.sockSeq = append(k.sockSeq, a, b)
	if op.Flags&trace.FlagPair == 0 {
		return trace.OK()
	}
	return result(k.connPair(a, b))
}

// prog loads and attaches the canned programs: the parser first, then the
// verdict (kernelshim attachProgs).
func (r *run) prog(op *trace.Op) trace.Result {
	m := r.k.maps[op.Map]
	if m == nil {
		return trace.Fail(errEBADF)
	}
	spec := *op.Prog
	if spec.Type == trace.SkMsg {
		return result(m.progAttach(&prog{Kind: progMsgVerdict, Spec: spec, Map: m}))
	}
	if spec.Parser != 0 {
		if err := m.progAttach(&prog{Kind: progStreamParser, Spec: spec, Map: m}); err != 0 {
			return trace.Fail(err)
		}
	}
	return result(m.progAttach(&prog{Kind: progStreamVerdict, Spec: spec, Map: m}))
}

// sendFlags returns the msg flags of a send or recv: MSG_DONTWAIT when
// asked or when the file is O_NONBLOCK (__sys_sendto, __sys_recvfrom).
func sendFlags(sk *sock, dontwait bool) int {
	f := 0
	if dontwait || sk.ONonblock {
		f |= msgDontwait
	}
	return f
}

// send is sendto(2) with MSG_NOSIGNAL: sock_sendmsg → sk_prot->sendmsg.
func (r *run) send(t *task, op *trace.Op) trace.Result {
	sk := r.k.socks[op.A]
	if err := sk.fget(); err != 0 {
		return trace.Fail(err)
	}
	defer sk.fput(t)
	var src *srcIter
	if op.Form == trace.DataPattern {
		src = newSrcPattern(r.sent[op.A], int(op.Size))
	} else {
		src = newSrcBytes(r.sent[op.A], op.Data)
	}
	src.sock = sk.idx
	flags := sendFlags(sk, op.Flags&trace.FlagDontwait != 0) | msgNosignal
	if op.Flags&trace.FlagZerocopy != 0 {
		flags |= msgZerocopy
	}
	n, err := sk.SkProt.Sendmsg(t, sk, src, flags)
	if err != 0 {
		return trace.Fail(err)
	}
	return trace.Count(int64(n))
}

// linuxOnly reports whether op needs an interface only Linux has.
func linuxOnly(op *trace.Op) bool {
	switch op.Kind {
	case trace.OpMap, trace.OpProg, trace.OpInsert, trace.OpDelete, trace.OpPair, trace.OpSplice, trace.OpPipe:
		return true
	case trace.OpConn:
		return op.Flags&trace.FlagPair != 0
	}
	return false
}

// soSpliceOp is setsockopt(SO_SPLICE) (sosplice: {B, max, idle};
// unsplice: fd -1) and getsockopt(SO_SPLICE) (getsplice: the bytes A moved
// as a source) of FreeBSD's sosetopt and sogetopt.
func (r *run) soSpliceOp(t *task, op *trace.Op, i int) trace.Result {
	src := r.k.socks[op.A]
	if err := src.fget(); err != 0 {
		return trace.Fail(err)
	}
	defer src.fput(t)
	switch op.Kind {
	case trace.OpUnsplice:
		return r.k.soUnsplice(src, "unsplice")
	case trace.OpGetsplice:
		return trace.Count(src.spliceSent)
	}
	dst := r.k.socks[op.B]
	if err := dst.fget(); err != 0 {
		return trace.Fail(err)
	}
	defer dst.fput(t)
	return r.k.soSplice(t, i, src, dst, op.Size, time.Duration(op.Key)*time.Millisecond)
}

// errqueue is up to N recvmsg(2) calls with MSG_ERRQUEUE: sock_recvmsg →
// sk_prot->recvmsg, whose every TCP variant (tcp_recvmsg,
// tcp_bpf_recvmsg) hands MSG_ERRQUEUE to ip_recv_error first, until one
// finds the queue empty.
func (r *run) errqueue(t *task, op *trace.Op) trace.Result {
	sk := r.k.socks[op.A]
	if err := sk.fget(); err != 0 {
		return trace.Fail(err)
	}
	defer sk.fput(t)
	var ns []trace.Notification
	for range op.Size {
		n, err := r.k.ipRecvError(sk)
		if err != 0 && len(ns) > 0 {
			break
		}
		if err != 0 {
			return trace.Fail(err)
		}
		ns = append(ns, n)
	}
	return trace.ErrqueueResult(ns)
}

// recv is recvfrom(2) into an N-byte buffer: sock_recvmsg → sk_prot->recvmsg.
func (r *run) recv(t *task, op *trace.Op) trace.Result {
	sk := r.k.socks[op.A]
	if err := sk.fget(); err != 0 {
		return trace.Fail(err)
	}
	defer sk.fput(t)
	flags := sendFlags(sk, op.Flags&trace.FlagDontwait != 0)
	if op.Flags&trace.FlagPeek != 0 {
		flags |= msgPeek
	}
	if op.Flags&trace.FlagWaitall != 0 {
		flags |= msgWaitall
	}
	dst := newIovIter(int(op.Size))
	t.recvPlain = skPsock(sk) == nil
	t.recvStrpStalled = !t.recvPlain && r.k.strpStalled(skPsock(sk).strp)
	t.recvStrpStale = t.recvStrpStalled && skPsock(sk).strp.strpNeedStale()
	// Non-blocking reads only: a sleeper's wake-up is no-lost-wakeup's.
	t.recvQueueReadable = flags&msgDontwait != 0 && r.k.tcpReadable(sk)
	n, err := sk.SkProt.Recvmsg(t, sk, dst, flags)
	if err != 0 {
		return trace.Fail(err)
	}
	r.readTags(t, dst)
	if flags&msgPeek == 0 {
		r.k.departed(sk, dst.tagsOf(0, n), t.op)
	}
	return trace.Count(int64(n)).WithData(dst.buf[:n])
}

// pipeOf returns the socket's splice pipe, creating it on first use.
func (r *run) pipeOf(sk *sock) *pipe {
	if sk.pipe == nil {
		sk.pipe = newPipe(pipeDefBuffers)
	}
	return sk.pipe
}

// splice is splice(2) from the socket into its own pipe.
func (r *run) splice(t *task, op *trace.Op) trace.Result {
	sk := r.k.socks[op.A]
	if err := sk.fget(); err != 0 {
		return trace.Fail(err)
	}
	defer sk.fput(t)
	pipe := r.pipeOf(sk)
	pipe.lock(t) // splice_file_to_pipe
	n, err := r.k.spliceSockToPipe(t, sk, pipe, int(op.Size), op.Flags&trace.FlagNonblock != 0, sk.ONonblock)
	pipe.unlock()
	if err != 0 {
		return trace.Fail(err)
	}
	return trace.Count(int64(n))
}

// iocopy is Go's io.Copy(dst, src) on the two sockets. Go's net.FileConn
// puts each descriptor in non-blocking mode, and O_NONBLOCK belongs to the
// open file description every thread shares: while the copy runs, a
// blocking recv of SRC on another thread returns -EAGAIN at once. The
// kernel backend puts a socket's original flags back when the last copy
// using it ends (two copies share a socket in a proxy's two directions),
// and so does the model (goHold, goRelease).
func (r *run) iocopy(t *task, op *trace.Op) trace.Result {
	src, dst := r.k.socks[op.A], r.k.socks[op.B]
	if src == nil || !src.fdOpen || dst == nil || !dst.fdOpen {
		return trace.Fail(errEBADF)
	}
	src.fget()
	dst.fget()
	defer src.fput(t)
	defer dst.fput(t)
	goHold(src)
	goHold(dst)
	// Unlike Linux: on FreeBSD Go's io.Copy between two TCP connections
	// has no splice(2) (net/splice_stub.go) and copies with read/write.
	readwrite := op.Flags&trace.FlagReadwrite != 0 || r.k.prof.SoSplice
	res := r.k.ioCopy(t, src, dst, readwrite)
	goRelease(src)
	goRelease(dst)
	out := trace.Count(res.n)
	switch {
	case res.deadline:
		out.Err = errETIMEDOUT
	case res.err != 0:
		out.Err = res.err
	}
	return out
}

// goHold makes sk non-blocking for one more iocopy, saving its flag at the
// first.
func goHold(sk *sock) {
	if sk.goCopies == 0 {
		sk.goNonblock = sk.ONonblock
	}
	sk.goCopies++
	sk.ONonblock = true
}

// goRelease ends one iocopy's use of sk; the last puts the saved flag back.
func goRelease(sk *sock) {
	if sk.goCopies--; sk.goCopies == 0 {
		sk.ONonblock = sk.goNonblock
	}
}

// close is close(2), with SO_LINGER{1,0} first for `rst`. The socket's
// pipe goes with it; the socket itself is released when the last file
// reference is dropped.
func (r *run) close(t *task, op *trace.Op) trace.Result {
	sk := r.k.socks[op.A]
	if sk == nil || !sk.fdOpen {
		return trace.Fail(errEBADF)
	}
	if op.Flags&trace.FlagRST != 0 {
		sk.SockLinger, sk.Lingertime = true, 0
	}
	r.closeFD(t, sk)
	return trace.OK()
}

// closeFD drops the trace's descriptor of sk: its pipe goes, and the file
// reference (the last one releases the socket).
func (r *run) closeFD(t *task, sk *sock) {
	sk.fdOpen = false
	if sk.pipe != nil {
		r.k.pipeRelease(sk.pipe)
		sk.pipe = nil
	}
	sk.fput(t)
}

// set is setsockopt(2) (or fcntl(F_SETFL) for nonblock, F_SETPIPE_SZ
// for pipesize); rxcopybreak sets the receive memory of the model's
// segments (trace.OptRxcopybreak).
func (r *run) set(t *task, op *trace.Op) trace.Result {
	sk := r.k.socks[op.A]
	if err := sk.fget(); err != 0 {
		return trace.Fail(err)
	}
	defer sk.fput(t)
	v := op.Size
	switch op.Opt {
	case trace.OptRcvtimeo:
		// sock_set_timeout: zero means MAX_SCHEDULE_TIMEOUT.
		if v == 0 {
			sk.SkRcvtimeo, sk.rcvtimeo = maxTimeout, maxTimeout
		} else {
			d := timeo(time.Duration(v) * time.Millisecond)
			sk.SkRcvtimeo, sk.rcvtimeo = d, d
		}
	case trace.OptNonblock:
		sk.ONonblock = v != 0
	case trace.OptZerocopy:
		// sock_setsockopt SO_ZEROCOPY: SOCK_ZEROCOPY on a TCP socket.
		sk.sockZerocopy = v != 0
	case trace.OptBusypoll:
		// sk_ll_usec: no effect on the mainline TCP paths modelled; the
		// loopback splice receiver busy-polls its ring for it.
		sk.SkLlUsec = int(v)
	case trace.OptRcvbuf:
		// sock_setsockopt → __sock_set_rcvbuf: capped at rmem_max,
		// doubled for the overhead, and locked against autotuning.
		if m := int64(r.k.prof.TCP.RmemMax); v > m {
			v = m
		}
		sk.userlocks |= sockRcvbufLock
		sk.SkRcvbuf = max(int(v)*2, sockMinRcvbuf)
		if x, ok := r.k.tcp.(*extTCP); ok {
			x.setBuf(sk, true, int(op.Size))
		}
	case trace.OptSndbuf:
		// sock_setsockopt SO_SNDBUF: capped at wmem_max, doubled,
		// locked; then sk_write_space wakes writers the new size lets go.
		if m := int64(r.k.prof.TCP.WmemMax); v > m {
			v = m
		}
		sk.userlocks |= sockSndbufLock
		sk.SkSndbuf = max(int(v)*2, sockMinSndbuf)
		defer sk.SkWriteSpace(sk)
		if x, ok := r.k.tcp.(*extTCP); ok {
			x.setBuf(sk, false, int(op.Size))
		}
	case trace.OptPipesize:
		// fcntl(F_SETPIPE_SZ) → pipe_fcntl's unsigned int argument.
		pipe := r.pipeOf(sk)
		pipe.lock(t) // pipe_fcntl
		n, err := pipe.pipeSetSize(uint64(uint32(v)))
		pipe.unlock()
		if err != 0 {
			return trace.Fail(err)
		}
		return trace.Count(int64(n))
	case trace.OptRxcopybreak:
		sk.rxCopybreak = int(v)
	default:
		return trace.Fail(errENOPROTOOPT)
	}
	return trace.OK()
}

// join waits for the target thread's ops dispatched before op i. It has
// no timeout of its own: the target's ops time out (trace.RunOps).
func (r *run) join(t *task, i int) trace.Result {
	target := r.t.Ops[i].Target
	j := -1
	for x := i - 1; x >= 0; x-- {
		if r.t.Ops[x].ThreadName() == target {
			j = x
			break
		}
	}
	if j < 0 {
		return trace.OK()
	}
	tt := r.tasks[target]
	for !r.done[j] {
		t.sleepOn([]*waitQueue{r.doneWq[tt]}, noDeadline)
	}
	return trace.OK()
}
