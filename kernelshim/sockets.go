package kernelshim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/splicecheck/splicecheck/trace"
)

// fail turns a syscall error into the op's -ERRNO observation. Every error
// of x/sys/unix is a syscall.Errno.
func fail(err error) trace.Result {
	if e, ok := errnoOf(err); ok {
		return trace.Fail(e)
	}
	return trace.Fail(syscall.EIO)
}

// sockFD returns the open fd of socket name, or EBADF for a socket the
// trace closed (or whose conn failed).
func (e *executor) sockFD(name string) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.socks[name]; s != nil && s.fd >= 0 {
		return s.fd, nil
	}
	return -1, syscall.EBADF
}

// dupFD returns a duplicate of socket name's fd (F_DUPFD_CLOEXEC) for a
// cancel watcher: shutdown(2) on it reaches the op's socket even if the
// trace closes the original fd and its number is reused meanwhile. Holding
// it keeps the socket's file open exactly as long as the op's own syscall
// does, so it changes no kernel behaviour.
func (e *executor) dupFD(name string) (fd, dup int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.socks[name]
	if s == nil || s.fd < 0 {
		return -1, -1, syscall.EBADF
	}
	dup, err = unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("%w: dup socket %s: %w", ErrSocket, name, err)
	}
	return s.fd, dup, nil
}

// conn is `conn A B [pair]`: socket(AF_INET, SOCK_STREAM), a listener on
// 127.0.0.1 at a port the kernel chooses (bind to port 0, listen), a
// blocking connect(2) from A, accept4(2) giving B, then the listener is
// closed. Both sockets are blocking, as in the selftests.
//
// With pair, the listener and A are created inside the run's pairing
// cgroup, whose sock_ops program pairs the two ends at their ESTABLISHED
// callbacks (pair.go, pairprog.go); B, accepted from the listener, is in
// the same cgroup. The op's result is the pairing's; the connection exists
// whatever it is. On a kernel with no pairing kfunc the connection is made
// as without pair and the result is -EOPNOTSUPP.
func (e *executor) conn(ctx context.Context, th *thread, c *trace.Call) trace.Result {
	op := c.Op
	var p *pairer
	if op.Flags&trace.FlagPair != 0 {
		p = e.pair
	}
	lfd, afd := -1, -1
	create := func() (err error) {
		if lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		afd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	}
	var err error
	if p != nil {
		err = p.cg.within(create)
	} else {
		sockCreate.RLock()
		err = create()
		sockCreate.RUnlock()
	}
	if lfd >= 0 {
		defer unix.Close(lfd)
	}
	if err != nil {
		if afd >= 0 {
			unix.Close(afd)
		}
		if _, ok := errnoOf(err); !ok { // not socket(2)'s: the cgroup's
			return e.internal(c, err)
		}
		return fail(err)
	}
	if res, ok := e.connect(lfd, afd, op); !ok {
		return res
	}
	switch {
	case op.Flags&trace.FlagPair == 0:
		return trace.OK()
	case p == nil:
		// No pairing kfunc: nothing was inserted anywhere.
		return trace.Fail(syscall.EOPNOTSUPP)
	}
	var cookies [2]uint64
	for i, name := range []string{op.A, op.B} {
		fd, err := e.sockFD(name)
		if err == nil {
			cookies[i], err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		}
		if err != nil {
			return e.internal(c, fmt.Errorf("%w: SO_COOKIE of %s: %w", ErrSocket, name, err))
		}
	}
	errno, err := p.result(ctx, cookies)
	switch {
	case errors.Is(err, errPairTimeout):
		return trace.RunnerTimeout()
	case err != nil:
		return e.internal(c, err)
	case errno != 0:
		return trace.Fail(errno)
	}
	return trace.OK()
}

// connect binds and listens on lfd, connects afd to it and accepts B; it
// records A and B and returns ok, or closes afd and returns the failure.
func (e *executor) connect(lfd, afd int, op *trace.Op) (trace.Result, bool) {
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	err := unix.Bind(lfd, lo)
	if err == nil {
		err = unix.Listen(lfd, 1)
	}
	var sa unix.Sockaddr
	if err == nil {
		sa, err = unix.Getsockname(lfd)
	}
	// The thread stays busy (never Blocked) through connect and accept:
	// they wait for no other trace op, the listener being this op's own.
	// They may still sleep: on a loaded machine the handshake's softirq
	// runs in ksoftirqd. Taken for blocked, that let the runner start the
	// next ops before A and B were recorded (a thread's recv on B got
	// -EBADF in a guest under load).
	if err == nil {
		err = retryEINTR(func() error { return unix.Connect(afd, sa) })
	}
	var bfd int
	if err == nil {
		err = retryEINTR(func() (err error) {
			bfd, _, err = unix.Accept4(lfd, unix.SOCK_CLOEXEC)
			return err
		})
	}
	if err != nil {
		unix.Close(afd)
		return fail(err), false
	}
	e.mu.Lock()
	e.socks[op.A] = &sock{name: op.A, fd: afd, pipeR: -1, pipeW: -1}
	e.socks[op.B] = &sock{name: op.B, fd: bfd, pipeR: -1, pipeW: -1}
	e.mu.Unlock()
	return trace.OK(), true
}

// guard runs the abort steps, one every `every`, once ctx is done,
// until the returned stop is called; stop waits for a step in progress.
// Each step is meant to make the op's blocked syscall return; later steps
// are stronger.
func guard(ctx context.Context, every time.Duration, steps ...func()) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		for i, step := range steps {
			step()
			if i == len(steps)-1 {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(every):
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// abortStep is how long a cancel watcher waits between escalating steps:
// 50 ms of trace time (the model's abort steps are as far apart).
func (e *executor) abortStep() time.Duration { return e.opts.Scale(50 * time.Millisecond) }

// shutdownStep returns an abort step that calls shutdown(fd, how).
// shutdown(2) wakes every waiter on the socket (inet_shutdown calls
// sk_state_change): a recv returns 0 or -EAGAIN, a send -EPIPE. A run whose
// op timed out has no meaningful observations left for that socket.
func shutdownStep(fd, how int) func() {
	return func() { unix.Shutdown(fd, how) }
}

// send is `send S DATA [dontwait]`: sendto(2) with MSG_NOSIGNAL (and
// MSG_DONTWAIT), once (a short count is the observation), retrying EINTR.
// On timeout, the watcher shuts S down for writing, then both ways.
func (e *executor) send(ctx context.Context, th *thread, op *trace.Op, data [][]byte) trace.Result {
	fd, dup, err := e.dupFD(op.A)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dup)
	stop := guard(ctx, e.abortStep(), shutdownStep(dup, unix.SHUT_WR), shutdownStep(dup, unix.SHUT_RDWR))
	defer stop()
	flags := unix.MSG_NOSIGNAL
	if op.Flags&trace.FlagDontwait != 0 {
		flags |= unix.MSG_DONTWAIT
	}
	if op.Flags&trace.FlagZerocopy != 0 {
		flags |= unix.MSG_ZEROCOPY
	}
	var n int
	if len(data) == 1 {
		th.enterSyscall(unix.SYS_SENDTO)
		err = retryEINTR(func() (err error) {
			n, err = sendto(fd, data[0], flags)
			return err
		})
	} else {
		th.enterSyscall(unix.SYS_SENDMSG)
		err = retryEINTR(func() (err error) {
			n, err = unix.SendmsgBuffers(fd, data, nil, nil, flags)
			return err
		})
	}
	th.set(phaseBusy)
	if err != nil {
		return fail(err)
	}
	return trace.Count(int64(n))
}

// recv is `recv S N [peek] [dontwait] [waitall]`: one recvfrom(2) into an
// N-byte buffer with MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL, retrying EINTR. At
// EOF it returns 0 with empty data. On timeout, the watcher shuts S down
// for reading (local only: nothing is sent), then both ways.
func (e *executor) recv(ctx context.Context, th *thread, op *trace.Op) trace.Result {
	fd, dup, err := e.dupFD(op.A)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dup)
	stop := guard(ctx, e.abortStep(), shutdownStep(dup, unix.SHUT_RD), shutdownStep(dup, unix.SHUT_RDWR))
	defer stop()
	var flags int
	if op.Flags&trace.FlagPeek != 0 {
		flags |= unix.MSG_PEEK
	}
	if op.Flags&trace.FlagDontwait != 0 {
		flags |= unix.MSG_DONTWAIT
	}
	if op.Flags&trace.FlagWaitall != 0 {
		flags |= unix.MSG_WAITALL
	}
	buf := make([]byte, op.Size)
	var n int
	th.enterSyscall(unix.SYS_RECVFROM)
	err = retryEINTR(func() (err error) {
		n, err = recvfrom(fd, buf, flags)
		return err
	})
	th.set(phaseBusy)
	if err != nil {
		return fail(err)
	}
	return trace.Count(int64(n)).WithData(buf[:n])
}

// sendto and recvfrom are the raw syscalls with no address: unix.Sendto
// and unix.Recvfrom insist on a sockaddr.
func sendto(fd int, b []byte, flags int) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(p), uintptr(len(b)), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func recvfrom(fd int, b []byte, flags int) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(b)), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// ensurePipe creates socket s's splice pipe on first use: pipe2(O_CLOEXEC)
// with a blocking write end (so a splice into a full pipe blocks, unless
// SPLICE_F_NONBLOCK) and an O_NONBLOCK read end (so `pipe S N` never
// blocks). The caller holds e.mu.
func (s *sock) ensurePipe() error {
	if s.pipeR >= 0 {
		return nil
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return err
	}
	s.pipeR, s.pipeW = p[0], p[1]
	return nil
}

// splice is `splice S N [nonblock]`: splice(2) of up to N bytes from S into
// S's own pipe (SPLICE_F_NONBLOCK with nonblock), retrying EINTR. On
// timeout the watcher shuts S down for reading, then closes the pipe's
// read end (a splice waiting for pipe space gets -EPIPE; the pipe is
// discarded and a later op starts a new one), then shuts S down both ways.
func (e *executor) splice(ctx context.Context, th *thread, op *trace.Op) trace.Result {
	fd, dup, err := e.dupFD(op.A)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(dup)
	e.mu.Lock()
	s := e.socks[op.A]
	err = s.ensurePipe()
	pw := -1
	if err == nil {
		pw, err = unix.FcntlInt(uintptr(s.pipeW), unix.F_DUPFD_CLOEXEC, 0)
	}
	e.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	defer unix.Close(pw)
	stop := guard(ctx, e.abortStep(),
		shutdownStep(dup, unix.SHUT_RD),
		func() { e.discardPipe(op.A) },
		shutdownStep(dup, unix.SHUT_RDWR))
	defer stop()
	flags := 0
	if op.Flags&trace.FlagNonblock != 0 {
		flags |= unix.SPLICE_F_NONBLOCK
	}
	var n int64
	th.enterSyscall(unix.SYS_SPLICE)
	err = retryEINTR(func() (err error) {
		n, err = unix.Splice(fd, nil, pw, nil, int(op.Size), flags)
		return err
	})
	th.set(phaseBusy)
	if err != nil {
		return fail(err)
	}
	return trace.Count(n)
}

// discardPipe closes socket name's pipe; the next splice or pipe op
// creates a new one.
func (e *executor) discardPipe(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.socks[name]; s != nil {
		s.closePipe()
	}
}

func (s *sock) closePipe() error {
	var err error
	if s.pipeR >= 0 {
		err = unix.Close(s.pipeR)
		if e2 := unix.Close(s.pipeW); err == nil {
			err = e2
		}
	}
	s.pipeR, s.pipeW = -1, -1
	return err
}

// readPipe is `pipe S N`: read(2) of up to N bytes from S's pipe, whose
// read end is O_NONBLOCK: -EAGAIN when it is empty. EINTR is retried.
func (e *executor) readPipe(op *trace.Op) trace.Result {
	e.mu.Lock()
	s := e.socks[op.A]
	if s == nil || s.fd < 0 {
		e.mu.Unlock()
		return trace.Fail(syscall.EBADF)
	}
	err := s.ensurePipe()
	pr := s.pipeR
	if err != nil {
		e.mu.Unlock()
		return fail(err)
	}
	buf := make([]byte, op.Size)
	var n int
	err = retryEINTR(func() (err error) {
		n, err = unix.Read(pr, buf)
		return err
	})
	e.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	return trace.Count(int64(n)).WithData(buf[:n])
}

// fionread is `fionread S`: ioctl(FIONREAD) (SIOCINQ). On 6.18 a socket in
// a sockmap answers from tcp_bpf_ioctl, counting its psock ingress queue.
func (e *executor) fionread(op *trace.Op) trace.Result {
	fd, err := e.sockFD(op.A)
	if err != nil {
		return fail(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ) // SIOCINQ == FIONREAD
	if err != nil {
		return fail(err)
	}
	return trace.Count(int64(n))
}

// pollEvents is what `poll` asks for.
const pollEvents = unix.POLLIN | unix.POLLOUT | unix.POLLRDHUP

// poll is `poll S`: poll(2) for POLLIN|POLLOUT|POLLRDHUP with timeout 0.
// It has no side effect on the socket (unlike getsockopt(SO_ERROR), which
// consumes a pending error and is never called).
func (e *executor) poll(op *trace.Op) trace.Result {
	fd, err := e.sockFD(op.A)
	if err != nil {
		return fail(err)
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: pollEvents}}
	err = retryEINTR(func() error {
		_, err := unix.Poll(fds, 0)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return trace.Word(trace.PollWord(uint32(uint16(fds[0].Revents))))
}

// tcpStates names tcpi_state values as include/net/tcp_states.h does.
var tcpStates = map[uint8]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1",
	5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT",
	9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV",
	13: "BOUND_INACTIVE",
}

// state is `state S`: getsockopt(TCP_INFO)'s tcpi_state by its kernel name.
func (e *executor) state(op *trace.Op) trace.Result {
	fd, err := e.sockFD(op.A)
	if err != nil {
		return fail(err)
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return fail(err)
	}
	if name, ok := tcpStates[info.State]; ok {
		return trace.Word(name)
	}
	return trace.Word(fmt.Sprintf("STATE_%d", info.State))
}

// shutdown is `shutdown S wr|rd|rdwr`: shutdown(2).
func (e *executor) shutdown(op *trace.Op) trace.Result {
	fd, err := e.sockFD(op.A)
	if err != nil {
		return fail(err)
	}
	how := map[trace.Shutdown]int{trace.ShutRD: unix.SHUT_RD, trace.ShutWR: unix.SHUT_WR, trace.ShutRDWR: unix.SHUT_RDWR}[op.How]
	if err := unix.Shutdown(fd, how); err != nil {
		return fail(err)
	}
	return trace.OK()
}

// close is `close S [rst]`: with rst, setsockopt(SO_LINGER, {1, 0}) first,
// so that close(2) sends a RST and frees the socket at once; then close(2)
// of the socket and its pipe. Every later op on S returns -EBADF.
func (e *executor) close(op *trace.Op) trace.Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.socks[op.A]
	if s == nil || s.fd < 0 {
		return trace.Fail(syscall.EBADF)
	}
	if err := s.closeAll(op.Flags&trace.FlagRST != 0); err != nil {
		return fail(err)
	}
	return trace.OK()
}

// closeAll closes the socket (with SO_LINGER{1,0} first if rst) and its
// pipe. The caller holds e.mu. The first error is returned; everything is
// closed regardless.
func (s *sock) closeAll(rst bool) error {
	var first error
	if s.fd >= 0 {
		if rst {
			first = unix.SetsockoptLinger(s.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		}
		if err := unix.Close(s.fd); err != nil && first == nil {
			first = err
		}
		s.fd = -1
	}
	if err := s.closePipe(); err != nil && first == nil {
		first = err
	}
	return first
}

// set is `set S OPT V`: SO_RCVTIMEO (V ms; 0 clears it), O_NONBLOCK through
// fcntl(F_SETFL), SO_BUSY_POLL (V µs), SO_RCVBUF and SO_SNDBUF (V bytes;
// the kernel doubles them), fcntl(F_SETPIPE_SZ) on S's pipe (returning
// the new capacity), and rxcopybreak, which loopback has no driver for:
// accepted and ignored (see trace.OptRxcopybreak).
func (e *executor) set(op *trace.Op) trace.Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.socks[op.A]
	if s == nil || s.fd < 0 {
		return trace.Fail(syscall.EBADF)
	}
	var err error
	switch op.Opt {
	case trace.OptRcvtimeo:
		d := e.opts.Scale(time.Duration(op.Size) * time.Millisecond)
		tv := unix.NsecToTimeval(d.Nanoseconds())
		if err = unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err == nil {
			s.rcvtimeo = d
		}
	case trace.OptNonblock:
		err = unix.SetNonblock(s.fd, op.Size != 0)
	case trace.OptBusypoll:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, int(op.Size))
	case trace.OptRcvbuf:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, int(op.Size))
	case trace.OptSndbuf:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, int(op.Size))
	case trace.OptPipesize:
		if err = s.ensurePipe(); err != nil {
			return fail(err)
		}
		n, err := unix.FcntlInt(uintptr(s.pipeW), unix.F_SETPIPE_SZ, int(op.Size))
		if err != nil {
			return fail(err)
		}
		return trace.Count(int64(n))
	case trace.OptRxcopybreak:
	case trace.OptZerocopy:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, int(op.Size))
	default:
		return trace.Fail(syscall.ENOPROTOOPT)
	}
	if err != nil {
		return fail(err)
	}
	return trace.OK()
}

// errqueue is `errqueue S [N]`: up to N recvmsg(2) calls with
// MSG_ERRQUEUE|MSG_DONTWAIT, each reading one notification (a
// sock_extended_err in an IP_RECVERR or IPV6_RECVERR control message),
// until one finds the queue empty. -EAGAIN when the first does.
func (e *executor) errqueue(op *trace.Op) trace.Result {
	fd, err := e.sockFD(op.A)
	if err != nil {
		return fail(err)
	}
	var ns []trace.Notification
	oob := make([]byte, unix.CmsgSpace(sizeofExtendedErr+unix.SizeofSockaddrInet6))
	for range op.Size {
		var oobn int
		err := retryEINTR(func() (err error) {
			_, oobn, _, _, err = unix.Recvmsg(fd, nil, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			return err
		})
		if errors.Is(err, unix.EAGAIN) && len(ns) > 0 {
			break
		}
		if err != nil {
			return fail(err)
		}
		n, err := parseExtendedErr(oob[:oobn])
		if err != nil {
			return fail(err)
		}
		ns = append(ns, n)
	}
	return trace.ErrqueueResult(ns)
}

// parseExtendedErr decodes the sock_extended_err of an error-queue
// message's control data.
func parseExtendedErr(oob []byte) (trace.Notification, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return trace.Notification{}, fmt.Errorf("errqueue: %w", err)
	}
	for _, m := range msgs {
		ip4 := m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR
		ip6 := m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if (!ip4 && !ip6) || len(m.Data) < sizeofExtendedErr {
			continue
		}
		ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
		return trace.Notification{Origin: ee.Origin, Code: ee.Code, Errno: ee.Errno, Info: ee.Info, Data: ee.Data}, nil
	}
	return trace.Notification{}, fmt.Errorf("errqueue: %w: a message without a sock_extended_err", ErrInternal)
}

// sizeofExtendedErr is sizeof(struct sock_extended_err).
const sizeofExtendedErr = int(unsafe.Sizeof(unix.SockExtendedErr{}))

// soSpliceOpt is FreeBSD's (and OpenBSD's) SO_SPLICE option number.
const soSpliceOpt = 0x1023

// soSplice performs the FreeBSD SO_SPLICE ops as a program would on this
// kernel: setsockopt(SOL_SOCKET, SO_SPLICE, struct splice {fd, max,
// idle}) for sosplice and unsplice (fd -1), getsockopt for getsplice.
// Linux has no such option: it answers -ENOPROTOOPT.
func (e *executor) soSplice(op *trace.Op) trace.Result {
	fd, err := e.sockFD(op.A)
	if err != nil {
		return fail(err)
	}
	if op.Kind == trace.OpGetsplice {
		n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, soSpliceOpt)
		if err != nil {
			return fail(err)
		}
		return trace.Count(int64(n))
	}
	sink := -1
	if op.Kind == trace.OpSosplice {
		if sink, err = e.sockFD(op.B); err != nil {
			return fail(err)
		}
	}
	var sp [32]byte // struct splice on LP64: int sp_fd, off_t sp_max, struct timeval sp_idle
	binary.NativeEndian.PutUint32(sp[0:], uint32(int32(sink)))
	binary.NativeEndian.PutUint64(sp[8:], uint64(op.Size))
	idle := time.Duration(op.Key) * time.Millisecond
	binary.NativeEndian.PutUint64(sp[16:], uint64(idle/time.Second))
	binary.NativeEndian.PutUint64(sp[24:], uint64(idle%time.Second/time.Microsecond))
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, soSpliceOpt, string(sp[:])); err != nil {
		return fail(err)
	}
	return trace.OK()
}
