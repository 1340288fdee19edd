package kernelshim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicecheck/splicecheck/internal/lockcheck"
	"github.com/splicecheck/splicecheck/trace"
)

// ioCopy is an iocopy in flight: Go connections over duplicates of the
// two sockets' fds.
type ioCopy struct {
	src, dst *net.TCPConn
}

// abort makes io.Copy return at once (an expired deadline on both ends).
// It is safe to call concurrently with the copy.
func (c *ioCopy) abort() {
	now := time.Now()
	c.src.SetDeadline(now)
	c.dst.SetDeadline(now)
}

// fileConn builds a *net.TCPConn over a duplicate of fd. net.FileConn makes
// its own duplicate and sets O_NONBLOCK on it; O_NONBLOCK lives on the open
// file description shared by every duplicate, so the caller must restore
// the original fd's flags when the connection is closed.
func fileConn(fd int) (*net.TCPConn, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: dup for iocopy: %w", ErrSocket, err)
	}
	f := os.NewFile(uintptr(dup), "splicecheck-iocopy")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: net.FileConn: %w", ErrSocket, err)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("%w: net.FileConn gave %T, not *net.TCPConn", ErrSocket, c)
	}
	return tc, nil
}

// iocopy is `iocopy SRC DST [readwrite]`: Go's real io.Copy(dst, src) on *net.TCPConn
// values built from the two sockets' fds. On Linux (Go 1.22+) it ends in
// (*TCPConn).ReadFrom, which moves the bytes with splice(2) through a pipe
// of Go's; that path never sees data a sockmap queued on SRC's psock
// ingress queue, which is the bug KERNEL-FACTS.md records. With
// `readwrite` it is read(2)/write(2) through a 32 KiB buffer instead.
//
// SRC's SO_RCVTIMEO (Go's netpoller makes the kernel's own timeout
// irrelevant: the fd is non-blocking) is honoured as a read deadline for
// the whole copy, set from the last `set SRC rcvtimeo MS`. Without it and
// without a FIN on SRC, the copy ends only when the op times out: the
// watcher then expires both deadlines. The result is the byte count, plus
// -ETIMEDOUT when io.Copy returned a deadline error or -ERRNO when it
// returned a syscall error. While the copy runs, SRC and DST are
// non-blocking for every thread (the flag is shared), as in a Go program;
// each fd gets its original file status flags back when the last iocopy
// using it ends (holdLocked).
func (e *executor) iocopy(ctx context.Context, th *thread, c *trace.Call) trace.Result {
	op := c.Op
	e.mu.Lock()
	src, dst := e.socks[op.A], e.socks[op.B]
	if src == nil || src.fd < 0 || dst == nil || dst.fd < 0 {
		e.mu.Unlock()
		return trace.Fail(syscall.EBADF)
	}
	srcFD, dstFD, timeo := src.fd, dst.fd, src.rcvtimeo
	if err := e.holdLocked(op.A, srcFD); err != nil {
		e.mu.Unlock()
		return e.internal(c, err)
	}
	if err := e.holdLocked(op.B, dstFD); err != nil {
		e.releaseLocked(op.A, srcFD)
		e.mu.Unlock()
		return e.internal(c, err)
	}
	sc, err := fileConn(srcFD)
	if err != nil {
		e.releaseLocked(op.A, srcFD)
		e.releaseLocked(op.B, dstFD)
		e.mu.Unlock()
		return e.internal(c, err)
	}
	dc, err := fileConn(dstFD)
	if err != nil {
		sc.Close()
		e.releaseLocked(op.A, srcFD)
		e.releaseLocked(op.B, dstFD)
		e.mu.Unlock()
		return e.internal(c, err)
	}
	cp := &ioCopy{src: sc, dst: dc}
	e.copies[cp] = struct{}{}
	e.mu.Unlock()

	if timeo > 0 {
		sc.SetReadDeadline(time.Now().Add(timeo))
	}
	stop := guard(ctx, e.abortStep(), cp.abort)
	th.parkMu.Lock()
	th.parkSince = time.Time{}
	th.parkMu.Unlock()
	th.set(phaseGoWait)
	var n int64
	if op.Flags&trace.FlagReadwrite != 0 {
		// Hide ReadFrom and WriteTo: read(2)/write(2) through a buffer
		// of io.Copy's size, as a proxy copying in user space does.
		n, err = io.CopyBuffer(struct{ io.Writer }{dc}, struct{ io.Reader }{sc}, make([]byte, 32*1024))
	} else {
		n, err = io.Copy(dc, sc)
	}
	th.set(phaseBusy)
	stop()

	e.mu.Lock()
	delete(e.copies, cp)
	cerr := errors.Join(sc.Close(), dc.Close())
	e.releaseLocked(op.A, srcFD)
	e.releaseLocked(op.B, dstFD)
	e.mu.Unlock()
	if cerr != nil {
		return e.internal(c, fmt.Errorf("%w: close iocopy connections: %w", ErrSocket, cerr))
	}

	res := trace.Count(n)
	if err != nil {
		var errno syscall.Errno
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			res.Err = syscall.ETIMEDOUT
		case errors.As(err, &errno):
			res.Err = errno
		default:
			return e.internal(c, fmt.Errorf("%w: io.Copy: %w", ErrInternal, err))
		}
	}
	return res
}

// goHold is a socket some iocopies use: its fd and the file status flags
// it had before the first of them made it non-blocking.
type goHold struct {
	fd, flags, n int
}

// holdLocked records one more iocopy using socket name (fd), saving its
// flags if it is the first: O_NONBLOCK belongs to the open file
// description, so two copies through one socket (the two directions of a
// proxy) share it, and the flags go back only when the last one ends, as
// a Go program's sockets stay non-blocking while any *net.TCPConn over
// them is in use. The caller holds e.mu.
func (e *executor) holdLocked(name string, fd int) error {
	lockcheck.Held(&e.mu, "kernelshim: executor.holdLocked")
	if h := e.goHolds[name]; h != nil && h.fd == fd {
		h.n++
		return nil
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("%w: F_GETFL of %s: %w", ErrSocket, name, err)
	}
	e.goHolds[name] = &goHold{fd: fd, flags: flags, n: 1}
	return nil
}

// releaseLocked ends one iocopy's use of socket name (fd); the last use
// puts the saved flags back with F_SETFL if the trace has not closed the
// socket meanwhile. The caller holds e.mu.
func (e *executor) releaseLocked(name string, fd int) {
	lockcheck.Held(&e.mu, "kernelshim: executor.releaseLocked")
	h := e.goHolds[name]
	if h == nil || h.fd != fd {
		return
	}
	if h.n--; h.n > 0 {
		return
	}
	delete(e.goHolds, name)
	if s := e.socks[name]; s != nil && s.fd == fd {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, h.flags); err != nil && e.fatal == nil {
			e.fatal = fmt.Errorf("%w: restore flags of %s: %w", ErrSocket, name, err)
		}
	}
}
