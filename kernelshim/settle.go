package kernelshim

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Settling.
//
// The runner dispatches the next op as soon as every thread is idle or
// blocked. On a real kernel an op's effects are not all done when its
// syscall returns: loopback segments may be processed by ksoftirqd, ACKs
// may be delayed (delayed ACK, TCP_ATO_MIN = 40 ms, and Nagle then holds
// the next small segment), sk_skb verdicts queue redirected skbs to a
// psock's backlog work (a kworker), strparser defers to its own work, and
// a thread woken by the op becomes runnable a few microseconds later
// (remote wakeups go through an IPI). If the next op ran before that work,
// its observation would depend on the scheduler. So after every op, Exec
// samples the run's observable state until it has not changed for
// Config.SettleWindow, no socket has a segment in flight
// (tcpi_unacked == 0) and no kernel worker thread is runnable (psock
// backlog and softirq work, which no socket shows while it is
// pending: kthreads.go), bounded by Config.SettleMax. The state is:
//
//   - for every open socket: its poll(2) mask (POLLIN|POLLOUT|POLLRDHUP,
//     timeout 0), SIOCINQ (FIONREAD) and SIOCOUTQ, and from TCP_INFO its
//     state, unacked packets, unsent bytes, bytes acked and bytes received;
//   - the phase of every other trace thread, and for one blocked in an op
//     its /proc state, syscall and schedstat run count (which changes if
//     the thread was woken, even if it blocked again).
//
// None of these reads consumes anything: no SO_ERROR, no MSG_PEEK.
// (/proc/net/tcp would also show orphans, but it walks the whole
// established hash, shared by every namespace: milliseconds per read.)

// settleSample is the interval between two samples.
func (e *executor) settleSample() time.Duration {
	d := e.cfg.SettleWindow / 4
	if d < 20*time.Microsecond {
		d = 20 * time.Microsecond
	}
	return d
}

// settle waits until the run's observable state is stable; see above.
func (e *executor) settle(ctx context.Context, self *thread) {
	start := time.Now()
	prev, _ := e.snapshot(self, nil)
	cur := make([]byte, 0, len(prev))
	stableSince := start
	ts := unix.NsecToTimespec(e.settleSample().Nanoseconds())
	for ctx.Err() == nil {
		t := ts
		unix.Nanosleep(&t, nil)
		var inFlight bool
		// Before the snapshot: work a worker finished by now shows in it
		// (kthreads.go).
		kbusy := theKworkers.runnable()
		cur, inFlight = e.snapshot(self, cur[:0])
		now := time.Now()
		if !bytes.Equal(cur, prev) {
			prev, cur = cur, prev
			stableSince = now
		} else if !inFlight && !kbusy && now.Sub(stableSince) >= e.cfg.SettleWindow {
			if debugSettle {
				println("settle", self.name, now.Sub(start).String())
			}
			return
		}
		if now.Sub(start) >= e.cfg.SettleMax {
			if debugSettle {
				println("settle MAX", self.name, string(prev))
			}
			return
		}
	}
}

// snapshot appends the run's observable state to b, and reports whether a
// socket has segments in flight.
func (e *executor) snapshot(self *thread, b []byte) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var pfds []unix.PollFd
	for _, name := range e.t.SocketNames {
		if s := e.socks[name]; s != nil && s.fd >= 0 {
			pfds = append(pfds, unix.PollFd{Fd: int32(s.fd), Events: pollEvents})
		}
	}
	if len(pfds) > 0 {
		unix.Poll(pfds, 0)
	}
	inFlight := false
	for _, p := range pfds {
		fd := int(p.Fd)
		b = strconv.AppendInt(b, int64(p.Revents), 16)
		for _, req := range []uint{unix.SIOCINQ, unix.SIOCOUTQ} {
			n, err := unix.IoctlGetInt(fd, req)
			if err != nil {
				n = -1
			}
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(n), 10)
		}
		if ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			for _, v := range []uint64{uint64(ti.State), uint64(ti.Unacked), uint64(ti.Notsent_bytes), ti.Bytes_acked, ti.Bytes_received} {
				b = append(b, ',')
				b = strconv.AppendUint(b, v, 10)
			}
			inFlight = inFlight || ti.Unacked > 0
		}
		b = append(b, ' ')
	}
	for _, name := range e.t.ThreadNames {
		th := e.threads[name]
		if th == nil || th == self {
			continue
		}
		p := th.get()
		b = append(b, name...)
		b = append(b, '=')
		b = strconv.AppendInt(b, int64(p), 10)
		if p == phaseSyscall || p == phaseGoWait {
			if ts, err := readTask(th.tid, true); err == nil {
				b = append(b, ',', ts.state, ',')
				b = strconv.AppendInt(b, ts.syscall, 10)
				b = append(b, ',')
				b = strconv.AppendInt(b, ts.pcount, 10)
			}
		}
		b = append(b, ' ')
	}
	return b, inFlight
}

// debugSettle prints each settle's duration, and the state of one that
// hit SettleMax, to stderr: SPLICECHECK_DEBUG_SETTLE=1 while replaying a
// kernel-flaky trace shows which op's settle gave up.
var debugSettle = os.Getenv("SPLICECHECK_DEBUG_SETTLE") != ""
