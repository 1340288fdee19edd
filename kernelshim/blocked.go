package kernelshim

import (
	"bytes"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// taskState is what /proc says about one thread of this process.
type taskState struct {
	state   byte  // /proc/self/task/TID/stat field 3: R, S, D, ...
	syscall int64 // /proc/self/task/TID/syscall field 1; -2 when "running"
	pcount  int64 // /proc/self/task/TID/schedstat field 3: times scheduled in; -1 unknown
}

// readTask reads thread tid's scheduler state. With schedstat, pcount
// changes whenever the thread has run since the last read, which tells a
// thread that was woken and blocked again from one that never woke.
func readTask(tid int, withPcount bool) (taskState, error) {
	var buf [512]byte
	dir := "/proc/self/task/" + strconv.Itoa(tid) + "/"
	ts := taskState{pcount: -1}
	n, err := readProc(dir+"stat", buf[:])
	if err != nil {
		return ts, err
	}
	// "pid (comm) S ...": comm may hold spaces and parentheses.
	b := buf[:n]
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		ts.state = b[i+2]
	}
	if n, err = readProc(dir+"syscall", buf[:]); err != nil {
		return ts, err
	}
	f := firstField(buf[:n])
	if string(f) == "running" {
		ts.syscall = -2
	} else if ts.syscall, err = strconv.ParseInt(string(f), 10, 64); err != nil {
		ts.syscall = -3
	}
	if withPcount {
		if n, err := readProc(dir+"schedstat", buf[:]); err == nil {
			fs := bytes.Fields(buf[:n])
			if len(fs) >= 3 {
				ts.pcount, _ = strconv.ParseInt(string(fs[2]), 10, 64)
			}
		}
	}
	return ts, nil
}

func firstField(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i]
	}
	return b
}

// readProc reads a small /proc file into buf with raw syscalls (no Go
// file, no netpoller registration).
func readProc(path string, buf []byte) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	total := 0
	for total < len(buf) {
		n, err := unix.Read(fd, buf[total:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total, nil
}

// futexWait is the syscall a Go thread sleeps in when its locked goroutine
// is parked (in iocopy: waiting in the netpoller for its sockets).
const futexWait = unix.SYS_FUTEX

// Blocked reports whether trace thread name is waiting inside its current
// op for something another thread or time must provide:
//
//   - in `sleep`: always;
//   - in a syscall that may wait for another op (sendto, sendmsg,
//     recvfrom, splice; not conn's connect and accept4): when /proc/self/task/TID/stat says S (interruptible sleep)
//     and /proc/self/task/TID/syscall names that very syscall. A thread
//     that was just woken is R (or already out of the syscall) and is not
//     blocked; one that is in D (a mutex, a page fault) is not waiting for
//     another trace thread;
//   - in iocopy: when its OS thread sleeps in futex(2), that is, the
//     locked goroutine is parked (io.Copy waits in Go's netpoller), and
//     has not run for goParkStable (schedstat's run count unchanged), so
//     that a short park (a GC pause, a contended runtime lock) is not
//     taken for a wait on the sockets.
//
// The window right after a wakeup, when the waker's op has returned but
// the woken thread is not yet R, is closed by the waker's settle (every
// Exec waits until the states of the blocked threads stop changing).
func (e *executor) Blocked(name string) bool {
	e.mu.Lock()
	th := e.threads[name]
	e.mu.Unlock()
	if th == nil {
		return false
	}
	var want int64
	switch th.get() {
	case phaseSleep:
		return true
	case phaseSyscall:
		want = th.sysno.Load()
	case phaseGoWait:
		want = futexWait
	default:
		return false
	}
	goWait := want == futexWait
	ts, err := readTask(th.tid, goWait)
	if err != nil {
		return false
	}
	// Re-check the phase: the op may have left the syscall (and entered
	// settle's nanosleep, say) between the two reads.
	p := th.get()
	if p != phaseSyscall && p != phaseGoWait {
		return false
	}
	if ts.state != 'S' || ts.syscall != want {
		return false
	}
	if !goWait {
		return true
	}
	th.parkMu.Lock()
	defer th.parkMu.Unlock()
	now := time.Now()
	if ts.pcount != th.parkPcount || th.parkSince.IsZero() {
		th.parkPcount, th.parkSince = ts.pcount, now
		return false
	}
	return now.Sub(th.parkSince) >= goParkStable
}

// goParkStable is how long an iocopy's goroutine must stay parked before
// its thread counts as blocked.
const goParkStable = 500 * time.Microsecond
