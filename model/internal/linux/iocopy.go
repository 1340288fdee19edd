package linux

import (
	"syscall"
	"time"
)

// Go's io.Copy between two *net.TCPConn (Go 1.22+): io.Copy calls
// src.WriteTo, which for a TCP destination falls back to dst.ReadFrom,
// which calls internal/poll.Splice: splice(2) from the source socket into
// a pipe of Go's (F_SETPIPE_SZ to 1 MiB), then from the pipe into the
// destination socket, both descriptors non-blocking and waited on through
// the netpoller. The copy is "handled" unless the first splice fails with
// EINVAL; only then does Go copy with read(2)/write(2) through a 32 KiB
// buffer (genericReadFrom).
const (
	goMaxSpliceSize = 1 << 20   // internal/poll.maxSpliceSize
	goPipeSlots     = 256       // a 1 MiB pipe
	goCopyBuf       = 32 * 1024 // io.Copy's buffer
	goSyscallCost   = 5 * time.Microsecond
)

// ioCopyResult is what io.Copy returned: the bytes written and the error
// (0, EOF, ETIMEDOUT for a deadline, or an errno).
type ioCopyResult struct {
	n        int64
	err      syscall.Errno
	deadline bool
}

// ioCopy models io.Copy(dst, src) as the kernel backend runs it: src's
// SO_RCVTIMEO (as set by the trace) becomes a read deadline for the whole
// copy. With readwrite (`iocopy ... readwrite`: io.CopyBuffer over
// wrappers that hide ReadFrom and WriteTo, a proxy copying in user space)
// it is genericCopy from the start.
func (k *kernel) ioCopy(t *task, src, dst *sock, readwrite bool) ioCopyResult {
	deadline := noDeadline
	if src.rcvtimeo != maxTimeout && src.rcvtimeo > 0 {
		deadline = k.s.now + vtime(src.rcvtimeo)
	}
	if readwrite {
		return k.genericCopy(t, src, dst, deadline)
	}
	pipe := newPipe(goPipeSlots)
	defer k.pipeRelease(pipe)
	var res ioCopyResult
	handled := false
	for {
		// Unlike Linux, a system call takes no time in the model; the
		// copy loop charges goSyscallCost per iteration so that a copy
		// that feeds itself reaches its deadline.
		t.spin(goSyscallCost)
		if t.timedOut {
			return res
		}
		// pd.prepareRead: an expired read deadline ends the copy.
		if k.s.now >= deadline {
			res.deadline = true
			return res
		}
		// spliceDrain: splice(src → pipe, 1 MiB, SPLICE_F_NONBLOCK) on
		// a non-blocking socket, waiting for readability on EAGAIN.
		n, err := k.spliceSockToPipe(t, src, pipe, goMaxSpliceSize, true, true)
		t.syscallEnd()
		if err == errEAGAIN {
			if k.goWait(t, src, deadline) {
				res.deadline = true
				return res
			}
			if t.timedOut {
				return res
			}
			continue
		}
		handled = handled || err != errEINVAL
		if err != 0 || n == 0 {
			if !handled {
				return k.genericCopy(t, src, dst, deadline)
			}
			res.err = err
			return res
		}
		// splicePump: splice(pipe → dst) until the pipe is empty.
		for !pipe.empty() {
			buf := newIovIter(pipe.Bytes())
			k.pipeRead(pipe, buf)
			w, werr := k.goWriteAll(t, dst, buf.buf, buf.tagsOf(0, len(buf.buf)))
			res.n += int64(w)
			if werr != 0 {
				res.err = werr
				return res
			}
		}
	}
}

// goWait models the netpoller's waitRead on src: sleep until a wake-up on
// the socket or the deadline. It reports whether the deadline passed.
func (k *kernel) goWait(t *task, sk *sock, deadline vtime) bool {
	if k.s.now >= deadline {
		return true
	}
	return t.sleepOn([]*waitQueue{&sk.Wq}, deadline)
}

// goWriteAll writes b to dst as Go does on a non-blocking socket
// (MSG_DONTWAIT, waiting for writability on EAGAIN).
//
// Unlike Linux, splice(pipe → socket) is modelled as a copy through the
// destination's sendmsg, not a page hand-off (MSG_SPLICE_PAGES): the
// bytes are the same; the pages behind them are the iocopy task's.
// The bytes keep their tags (tags, nil if none): they are another
// socket's stream, passed on.
func (k *kernel) goWriteAll(t *task, dst *sock, b []byte, tags []Tag) (int, syscall.Errno) {
	done := 0
	for done < len(b) {
		var tt []Tag
		if tags != nil {
			tt = tags[done:]
		}
		n, err := dst.SkProt.Sendmsg(t, dst, newSrcKernel(b[done:], tt), msgDontwait|msgNosignal)
		t.syscallEnd()
		done += n
		if err == errEAGAIN {
			t.sleepOn([]*waitQueue{&dst.Wq}, noDeadline)
			if t.timedOut {
				return done, errOK
			}
			continue
		}
		if err != 0 {
			return done, err
		}
	}
	return done, errOK
}

// genericCopy models genericReadFrom: read(2)/write(2) through a 32 KiB
// buffer until EOF, an error or the deadline.
func (k *kernel) genericCopy(t *task, src, dst *sock, deadline vtime) ioCopyResult {
	var res ioCopyResult
	for {
		t.spin(goSyscallCost)
		if t.timedOut {
			return res
		}
		if k.s.now >= deadline {
			res.deadline = true
			return res
		}
		buf := newIovIter(goCopyBuf)
		n, err := src.SkProt.Recvmsg(t, src, buf, msgDontwait)
		t.syscallEnd()
		if err == errEAGAIN {
			if k.goWait(t, src, deadline) {
				res.deadline = true
				return res
			}
			if t.timedOut {
				return res
			}
			continue
		}
		if err != 0 {
			res.err = err
			return res
		}
		if n == 0 {
			return res
		}
		w, werr := k.goWriteAll(t, dst, buf.buf, buf.tagsOf(0, len(buf.buf)))
		res.n += int64(w)
		if werr != 0 {
			res.err = werr
			return res
		}
	}
}
