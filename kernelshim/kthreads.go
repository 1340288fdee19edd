package kernelshim

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/splicecheck/splicecheck/internal/procstat"
)

// Kernel workers.
//
// Some of an op's work leaves no trace in any socket's observable state
// until a kernel thread has run it: an sk_skb verdict that redirects (to
// another socket's egress or ingress, or to its own ingress behind
// queued skbs) only queues the skb on the target psock's ingress_skb and
// schedules psock->work (sk_psock_skb_redirect(), sk_psock_backlog(),
// net/core/skmsg.c, v6.18), a kworker of the CPU the verdict ran on;
// softirqs the sender could not run go to ksoftirqd. Between the verdict
// and that kworker nothing changes: the source's receive queue is
// already empty, the target has sent nothing. With other jobs on two
// cores a woken kworker can wait longer than the settle window, so a
// later FIONREAD of the target's peer (or of an ingress target) read
// 4000, 2000 or 0 bytes on as many runs of one trace (campaign seeds
// 1305, 1373, 1376 of 0..1499, replayed eight at a time).
//
// So settle also requires that no kernel worker thread is runnable: a
// work item queued and not yet finished keeps a worker of its pool in
// TASK_RUNNING (the pool wakes an idle worker when work is queued, and a
// worker that runs work is R until it sleeps), and ksoftirqd is R while
// it has softirqs to run. The check is global (other processes' work
// delays a settle too, bounded by SettleMax), and it is read before the
// socket state, so that work it saw finished has its effects in the
// snapshot that follows.

// kworkers watches the kernel's worker threads that run an op's deferred
// network work: the per-CPU kworkers and ksoftirqd, children of kthreadd. It keeps each one's
// /proc/PID/stat open and rescans /proc for new ones every
// kworkerRescan (pools create workers on demand, and destroy idle ones
// after minutes).
type kworkers struct {
	mu      sync.Mutex
	fds     []int // LOCKING: mu
	scanned time.Time
}

// kworkerRescan is how old the list of worker threads may get. A pool
// keeps an idle worker ready and wakes it for new work, so a worker
// created since the last scan is rarely the only runnable one.
const kworkerRescan = 200 * time.Millisecond

// theKworkers is shared by every run of the process.
var theKworkers kworkers

// runnable reports whether a kernel worker thread is runnable (state R)
// now. It reports false when /proc cannot be read (the settle is then
// what it was without it).
func (k *kworkers) runnable() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.scanned) >= kworkerRescan {
		k.rescan()
	}
	var buf [256]byte
	live := k.fds[:0]
	busy := false
	for _, fd := range k.fds {
		n, err := unix.Pread(fd, buf[:], 0)
		if err != nil || n == 0 {
			unix.Close(fd) // the thread exited
			continue
		}
		live = append(live, fd)
		if taskStateOf(buf[:n]) == 'R' {
			busy = true
		}
	}
	k.fds = live
	return busy
}

// forget closes every file the list holds; the next runnable rescans.
// The leak tests call it before they count the process's fds: the list
// is a cache for the life of the process, as long as the kernel's worker
// threads are many, and not something a run leaves behind.
func (k *kworkers) forget() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, fd := range k.fds {
		unix.Close(fd)
	}
	k.fds, k.scanned = k.fds[:0], time.Time{}
}

// rescan replaces the list with the worker threads /proc lists now.
func (k *kworkers) rescan() {
	k.scanned = time.Now()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, fd := range k.fds {
		unix.Close(fd)
	}
	k.fds = k.fds[:0]
	var buf [256]byte
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		fd, err := unix.Open("/proc/"+e.Name()+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		n, err := unix.Pread(fd, buf[:], 0)
		if err != nil || !isKworker(buf[:max(n, 0)]) {
			unix.Close(fd)
			continue
		}
		k.fds = append(k.fds, fd)
	}
}

// isKworker reports whether stat, a /proc/PID/stat line, is a kworker's
// or a ksoftirqd's: comm kworker/* or ksoftirqd/*, parent kthreadd (pid
// 2), so that a user process named so does not count.
func isKworker(stat []byte) bool {
	l, ok := procstat.Parse(stat)
	if !ok {
		return false
	}
	switch comm := l.Comm; {
	case bytes.HasPrefix(comm, []byte("ksoftirqd/")):
	case bytes.HasPrefix(comm, []byte("kworker/")):
		// Per-CPU pools of normal priority only, "kworker/CPU:ID" and
		// its "-WQ" suffix: psock->work is on system_wq. Unbound workers
		// ("kworker/uN:ID", netns cleanup of every run that ends),
		// high-priority ones ("kworker/0:1H") and rescuers ("kworker/R-")
		// would only make settles wait for other processes' work.
		id, _, _ := bytes.Cut(comm[len("kworker/"):], []byte("-"))
		cpu, worker, ok := bytes.Cut(id, []byte(":"))
		if !ok || !allDigits(cpu) || !allDigits(worker) {
			return false
		}
	default:
		return false
	}
	return string(l.Field(4)) == "2" // the parent is kthreadd
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// taskStateOf is the state letter of a /proc/PID/stat line, 0 if none.
func taskStateOf(stat []byte) byte {
	l, _ := procstat.Parse(stat)
	return l.State()
}
