package kernelshim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

// resources is what a process holds that a run might leak.
type resources struct {
	fds   int      // entries of /proc/self/fd
	what  []string // their targets, for the failure message
	progs int      // BPF programs named objPrefix* (this process's), by BPF_PROG_GET_NEXT_ID
	maps  int      // BPF maps named objPrefix*, by BPF_MAP_GET_NEXT_ID
	netns []string // distinct network namespaces of our threads and fds
}

func (r resources) String() string {
	return fmt.Sprintf("fds=%d progs=%d maps=%d netns=%v", r.fds, r.progs, r.maps, r.netns)
}

func (r resources) equal(o resources) bool {
	return r.fds == o.fds && r.progs == o.progs && r.maps == o.maps && strings.Join(r.netns, ",") == strings.Join(o.netns, ",")
}

// measure counts the process's resources. BPF objects are found by
// iterating every id in the kernel and keeping those whose name has the
// process's objPrefix (another process's objects do not count).
//
// Go's splice pipe pool (used by iocopy's io.Copy) keeps pipes until a
// garbage collection clears the pool and their cleanups run, so measure
// collects twice (the pool's victim cache survives one) first.
func measure(t testing.TB) resources {
	t.Helper()
	runtime.GC()
	runtime.GC()
	theKworkers.forget() // a cache of the settle, not a run's leftover
	var r resources
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	r.fds = len(fds)
	ns := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(l, "net:") {
			ns[l] = true
		}
		r.what = append(r.what, fd.Name()+"="+l)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if l, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil {
			ns[l] = true
		}
	}
	for n := range ns {
		r.netns = append(r.netns, n)
	}
	sort.Strings(r.netns)
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		id = next
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			if info, err := p.Info(); err == nil && strings.HasPrefix(info.Name, objPrefix) {
				r.progs++
			}
			p.Close()
		}
	}
	for id := ebpf.MapID(0); ; {
		next, err := ebpf.MapGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		id = next
		if m, err := ebpf.NewMapFromID(id); err == nil {
			if info, err := m.Info(); err == nil && strings.HasPrefix(info.Name, objPrefix) {
				r.maps++
			}
			m.Close()
		}
	}
	return r
}

// settlePolls bounds the waits for the kernel and the Go runtime to
// free what a run released: pollUntil tries that many times, 10 ms apart
// at first and a second apart from the eighth try on (about 2.5 minutes
// in all). Only a leak uses them up: a wait ends as soon as its condition
// holds, and on a loaded machine (the netns cleanup work, RCU) that may
// take seconds.
const settlePolls = 150

// pollUntil calls cond until it returns true, at most polls times, and
// reports whether it did.
func pollUntil(polls int, cond func() bool) bool {
	pause := 10 * time.Millisecond
	for i := 0; i < polls; i++ {
		if cond() {
			return true
		}
		if i < polls-1 {
			time.Sleep(pause)
			pause = min(2*pause, time.Second)
		}
	}
	return false
}

// awaitBaseline waits until the process's resources are back to base: the
// kernel frees maps and programs, and the Go runtime lets the locked trace
// threads exit, asynchronously. It returns the last measure (base's equal
// unless settlePolls ran out).
func awaitBaseline(t testing.TB, base resources) resources {
	t.Helper()
	var now resources
	pollUntil(settlePolls, func() bool {
		now = measure(t)
		return now.equal(base)
	})
	return now
}

// netnsSlack is how far the kernel's net_namespace object count may drift.
const netnsSlack = 32

// netnsSlab returns the active objects of the kernel's net_namespace slab
// cache (/proc/slabinfo, root only), or -1 if it cannot be read.
func netnsSlab(t testing.TB) int {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == "net_namespace" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// stableBaseline measures until no object of ours is left and two
// measures at least 50 ms apart agree.
func stableBaseline(t testing.TB) resources {
	t.Helper()
	cur := measure(t)
	var prev resources
	if !pollUntil(settlePolls, func() bool {
		time.Sleep(50 * time.Millisecond)
		prev, cur = cur, measure(t)
		return cur.equal(prev) && cur.progs == 0 && cur.maps == 0
	}) {
		t.Fatalf("resources never settled in %d measures: %v, then %v", settlePolls, prev, cur)
	}
	return cur
}

// leakTraces are small traces that together touch every kind of resource
// the backend creates: sockets, pipes, iocopy connections, both map types,
// every program attach type, threads, and the cancel watchers of a
// timed-out op.
var leakTraces = []string{
	"conn a b\nsend a \"x\"\nrecv b 1\n",
	"conn a b\nmap m sockmap 2\nprog m sk_msg redirect 1 ingress apply 10 cork 1\ninsert m 0 a\ninsert m 1 b\nsend a 100\nrecv b 100\n",
	"conn a b\nconn c d\nmap m sockhash 2\nprog m sk_skb redirect 1 egress parser all\ninsert m 0 b\ninsert m 1 c\n@t1 recv d 10\nsend a \"hi\"\njoin t1\nclose b\n",
	"conn a b\nset b nonblock on\nsplice b 10\nsend a \"hello\"\nsplice b 10\npipe b 10\nclose a rst\n",
	"conn a b\nconn c d\nsend a \"copy\"\nclose a\niocopy b c\nrecv d 10\n",
	"conn a b\nmap m sockmap 1\nprog m sk_skb pass parser 4\ninsert m 0 b\n@t1 sleep 1\nsend a 8\nrecv b 8\n",
}

// timeoutTrace times out (recv with nothing to read) with a short op
// timeout: its cancel watcher and cleanup must not leak either.
const timeoutTrace = "conn a b\nmap m sockmap 1\nprog m sk_msg pass\ninsert m 0 b\n@t1 recv b 10\n@t2 splice a 10\nsleep 1\n"

// TestNoLeaks runs 1,000 small traces, then checks that the process holds
// as many fds, BPF programs and maps (found through the bpf syscall's id
// iteration) and network namespaces as before.
func TestNoLeaks(t *testing.T) {
	testenv.RequireKernel(t, Available)
	n := 1000
	if testing.Short() && os.Getenv(testenv.RequireKernelEnv) != "1" {
		n = 100
	}
	be := New(Config{})
	var parsed []*trace.Trace
	for i, src := range append(leakTraces, timeoutTrace) {
		tr, err := trace.Parse(fmt.Sprintf("leak%d.trace", i), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, tr)
	}
	// Warm up: cilium/ebpf's feature probes and the Go runtime's threads
	// and netpoller are created once per process, not per run.
	for _, tr := range parsed {
		if _, err := trace.Observe(context.Background(), be, tr, trace.Options{OpTimeout: 50 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	base := stableBaseline(t)
	slab0 := netnsSlab(t)
	t.Logf("baseline: %v; kernel net_namespace objects %d", base, slab0)
	start := time.Now()
	for i := 0; i < n; i++ {
		tr := parsed[i%len(leakTraces)]
		opts := trace.Options{}
		if i%100 == 99 {
			tr, opts.OpTimeout = parsed[len(leakTraces)], 30*time.Millisecond
		}
		if _, err := trace.Observe(context.Background(), be, tr, opts); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	after := awaitBaseline(t, base)
	t.Logf("after %d traces (%v, %.0f traces/s): %v", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), after)
	// Kernel side: every namespace must be freed, not only forgotten by
	// this process (an orphaned socket would keep one alive). The slab
	// count is approximate (per-CPU slabs), so allow a few slabs' slack;
	// a leak would show as about n objects.
	if slab0 >= 0 {
		slab := -1
		pollUntil(settlePolls, func() bool {
			slab = netnsSlab(t)
			return slab <= slab0+netnsSlack
		})
		t.Logf("kernel net_namespace objects: %d before, %d after", slab0, slab)
		if slab > slab0+netnsSlack {
			t.Errorf("kernel net_namespace objects grew from %d to %d after %d traces (and stayed above %d in %d measures)", slab0, slab, n, slab0+netnsSlack, settlePolls)
		}
	}
	if !after.equal(base) {
		t.Errorf("leak after %d traces:\nbefore %v\nafter  %v\nfds before %v\nfds after %v", n, base, after, base.what, after.what)
	}
}

// The leak check must be able to fail: a planted map, program and
// namespace are each seen.
func TestLeakCheckSeesLeaks(t *testing.T) {
	testenv.RequireKernel(t, Available)
	base := stableBaseline(t)
	mfd, err := bpfMapCreate(15 /* BPF_MAP_TYPE_SOCKMAP */, 4, 4, 1, objName("planted"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadProgram(objName("planted"), ebpf.SkMsg, parserInsns(1))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := newNetns()
	if err != nil {
		t.Fatal(err)
	}
	leaked := measure(t)
	if leaked.maps != base.maps+1 || leaked.progs != base.progs+1 || len(leaked.netns) != len(base.netns)+1 || leaked.fds != base.fds+3 {
		t.Errorf("planted a map, a program and a namespace fd; measured\nbefore %v\nafter  %v", base, leaked)
	}
	syscall.Close(mfd)
	p.Close()
	ns.close()
	if after := awaitBaseline(t, base); !after.equal(base) {
		t.Errorf("not back to baseline after releasing the plants:\nbefore %v\nafter  %v", base, after)
	}
}
