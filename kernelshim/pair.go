package kernelshim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// pairKind is which pairing kfunc the kernel has, if any.
type pairKind int

const (
	pairNone   pairKind = iota // neither: `conn A B pair` answers -EOPNOTSUPP
	pairRFC                    // bpf_sock_splice_pair in vmlinux BTF
	pairModule                 // bpf_tcp_splice_pair in module tcp_splice's BTF
	pairProbe                  // tests only: the module program without its kfunc calls
)

// Names the detection looks for.
const (
	rfcKfunc    = "bpf_sock_splice_pair"
	moduleKfunc = "bpf_tcp_splice_pair"
	moduleName  = "tcp_splice"
)

// pairSupport is what detectPair found: the kind and the BTF type id of
// the pairing kfunc (in vmlinux for the RFC, in the module's BTF for the
// module).
type pairSupport struct {
	kind   pairKind
	pairID uint32
}

// detectPair looks the pairing kfuncs up in the kernel's BTF:
// bpf_sock_splice_pair (Cong Wang's loopback-splice RFC, net/ipv4/tcp_bpf.c
// as patched, v6.12) in vmlinux, else bpf_tcp_splice_pair in the BTF of the
// module tcp_splice (/sys/kernel/btf/tcp_splice). A kernel without BTF, or
// without either function, has no pairing: pairNone. A function in BTF is
// taken as registered for sock_ops; a kernel where it is not (no SOCK_OPS
// kfunc hook) fails the program load with the verifier's words.
func detectPair() pairSupport {
	vmlinux, err := btf.LoadKernelSpec()
	if err != nil {
		return pairSupport{}
	}
	if id, ok := funcID(vmlinux, rfcKfunc); ok {
		return pairSupport{kind: pairRFC, pairID: id}
	}
	mod, err := btf.LoadKernelModuleSpec(moduleName)
	if err != nil {
		return pairSupport{}
	}
	if id, ok := funcID(mod, moduleKfunc); ok {
		return pairSupport{kind: pairModule, pairID: id}
	}
	return pairSupport{}
}

// funcID is the BTF type id of the function name in spec.
func funcID(spec *btf.Spec, name string) (uint32, bool) {
	var fn *btf.Func
	if spec.TypeByName(name, &fn) != nil {
		return 0, false
	}
	id, err := spec.TypeID(fn)
	if err != nil {
		return 0, false
	}
	return uint32(id), true
}

// pairer is one run's pairing machinery, created at its first `conn A B
// pair`: the results hash (and the RFC's rendezvous sockhash), the loaded
// sock_ops program, the cgroup it is attached to, and the link.
type pairer struct {
	sup        pairSupport
	rendezvous *ebpf.Map // RFC only
	results    *ebpf.Map
	prog       *ebpf.Program
	cg         *cgroup
	link       link.Link
}

// newPairer sets the machinery up; on error nothing is left behind.
func newPairer(sup pairSupport) (_ *pairer, err error) {
	p := &pairer{sup: sup}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	p.results, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: objName("pairres"), Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 256,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: pairing results map: %w", ErrMap, err)
	}
	var fd int
	switch sup.kind {
	case pairRFC:
		p.rendezvous, err = ebpf.NewMap(&ebpf.MapSpec{
			Name: objName("rendezvous"), Type: ebpf.SockHash, KeySize: 16, ValueSize: 4, MaxEntries: 256,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: rendezvous sockhash: %w", ErrMap, err)
		}
		fd, err = loadSockOps(objName("pair"), rfcPairInsns(p.rendezvous.FD(), p.results.FD(), sup.pairID), nil)
	case pairModule:
		var h *btf.Handle
		h, err = btf.FindHandle(func(i *btf.HandleInfo) bool { return i.IsModule() && i.Name == moduleName })
		if err != nil {
			return nil, fmt.Errorf("%w: BTF of module %s: %w", ErrProgram, moduleName, err)
		}
		fd, err = loadSockOps(objName("pair"), modulePairInsns(p.results.FD(), sup.pairID), []int32{0, int32(h.FD())})
		h.Close()
	case pairProbe:
		fd, err = loadSockOps(objName("pair"), modulePairInsns(p.results.FD(), 0), nil)
	default:
		return nil, fmt.Errorf("%w: pairer for kind %d", ErrInternal, sup.kind)
	}
	if err != nil {
		return nil, err
	}
	p.prog, err = ebpf.NewProgramFromFD(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: wrap program fd: %w", ErrProgram, err)
	}
	if p.cg, err = newCgroup(); err != nil {
		return nil, err
	}
	p.link, err = link.AttachCgroup(link.CgroupOptions{Path: p.cg.dir, Attach: ebpf.AttachCGroupSockOps, Program: p.prog})
	if err != nil {
		return nil, fmt.Errorf("%w: attach sock_ops to %s: %w", ErrProgram, p.cg.dir, err)
	}
	return p, nil
}

// close detaches and closes the program, closes the maps and removes the
// cgroup, in that order, and returns the first failure.
func (p *pairer) close() error {
	var errs []error
	if p.link != nil {
		if err := p.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%w: detach sock_ops: %w", ErrCleanup, err))
		}
	}
	if p.prog != nil {
		if err := p.prog.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%w: close sock_ops program: %w", ErrCleanup, err))
		}
	}
	for _, m := range []*ebpf.Map{p.rendezvous, p.results} {
		if m == nil {
			continue
		}
		if err := m.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%w: close pairing map: %w", ErrCleanup, err))
		}
	}
	if p.cg != nil {
		errs = append(errs, p.cg.remove())
	}
	return errors.Join(errs...)
}

// result waits until both ends' ESTABLISHED callbacks have recorded what
// they did and returns the op's result: the first -errno of A's then B's
// record; else nil (paired) when a kfunc was called; else ENOENT (the
// callbacks never found each other: no pairing happened). B's callback
// may run after accept(2) returns (the child is queued before it is
// processed), so the map is read until both records are there, at most
// pairWaitTries times, pairWaitStep apart; ctx ending first gives
// errPairTimeout. The records are deleted once read.
func (p *pairer) result(ctx context.Context, cookies [2]uint64) (syscall.Errno, error) {
	var got [2]pairResult
	for try := 0; ; try++ {
		done := true
		for i, c := range cookies {
			if got[i].Stage != 0 {
				continue
			}
			err := p.results.Lookup(c, &got[i])
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				done = false
			} else if err != nil {
				return 0, fmt.Errorf("%w: read pairing result: %w", ErrMap, err)
			}
		}
		if done {
			break
		}
		if try == pairWaitTries || ctx.Err() != nil {
			return 0, errPairTimeout
		}
		select {
		case <-ctx.Done():
		case <-time.After(pairWaitStep):
		}
	}
	for _, c := range cookies {
		p.results.Delete(c)
	}
	called := false
	for _, r := range got {
		if r.Ret < 0 {
			return syscall.Errno(-r.Ret), nil
		}
		called = called || r.Stage == stagePaired
	}
	if !called {
		return syscall.ENOENT, nil
	}
	return 0, nil
}

// How long result waits for the callbacks: up to 2 s, bounded by the op's
// context (a callback runs in softirq context within microseconds of the
// handshake; seconds mean it never ran).
const (
	pairWaitStep  = 200 * time.Microsecond
	pairWaitTries = 10000
)

var errPairTimeout = errors.New("pairing callbacks did not report")

// cgroup is a cgroup v2 directory the backend created for a run's pairing
// program, a child of the cgroup the process is in (orig).
type cgroup struct {
	dir, orig string
}

// cgroupSeq numbers the backend's cgroups within the process.
var cgroupSeq atomic.Int64

// cgroupPrefix starts the name of every cgroup the backend creates; the
// pid follows, so a leftover of a killed process can be recognised.
const cgroupPrefix = "splicecheck-"

// newCgroup creates a fresh child of the process's cgroup v2 (found in
// /proc/self/cgroup's "0::" line under the cgroup2 mount of
// /proc/self/mountinfo). It first removes empty leftovers of dead
// processes (a process killed by a signal cannot remove its own).
func newCgroup() (*cgroup, error) {
	mnt, root, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	self, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	rel, ok := strings.CutPrefix(self, root)
	if !ok {
		return nil, fmt.Errorf("%w: cgroup %s is outside the cgroup2 mount's root %s", ErrCgroup, self, root)
	}
	orig := filepath.Join(mnt, rel)
	removeStaleCgroups(orig)
	dir := filepath.Join(orig, fmt.Sprintf("%s%d-%d", cgroupPrefix, os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCgroup, err)
	}
	return &cgroup{dir: dir, orig: orig}, nil
}

// cgroup2Mount returns the mount point and root of the first cgroup2
// mount in /proc/self/mountinfo.
func cgroup2Mount() (mnt, root string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrCgroup, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, after := strings.Fields(pre), strings.Fields(post)
		if ok && len(fields) >= 5 && len(after) > 0 && after[0] == "cgroup2" {
			return unescapeMountinfo(fields[4]), unescapeMountinfo(fields[3]), nil
		}
	}
	return "", "", fmt.Errorf("%w: no cgroup2 mount in /proc/self/mountinfo", ErrCgroup)
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup is the process's cgroup v2 path ("0::" in /proc/self/cgroup).
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrCgroup, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no cgroup v2 entry in /proc/self/cgroup", ErrCgroup)
}

// removeStaleCgroups removes the backend's cgroups under parent whose
// process is gone. rmdir fails on a populated cgroup, so nothing in use
// is touched.
func removeStaleCgroups(parent string) {
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		pid, _, ok2 := strings.Cut(rest, "-")
		if !ok || !ok2 || !e.IsDir() {
			continue
		}
		if n, err := strconv.Atoi(pid); err == nil && unix.Kill(n, 0) == unix.ESRCH {
			unix.Rmdir(filepath.Join(parent, e.Name()))
		}
	}
}

// sockCreate orders socket creation against the pairing window: every
// `conn` holds it shared while it creates its sockets, and a `conn A B
// pair` holds it exclusively while the whole process is in a pairing
// cgroup, so no other run's socket is created there (a socket belongs to
// the cgroup of the task that creates it, for good).
var sockCreate sync.RWMutex

// within runs f with the whole process (cgroup.procs moves every thread)
// in c, and moves it back to c.orig however f ends, panics included.
// Sockets f creates belong to c, and so do the children a listener among
// them accepts (sk_clone_lock() copies sk_cgrp_data, net/core/sock.c,
// v6.12); the cgroup's sock_ops program runs for all of them.
func (c *cgroup) within(f func() error) (err error) {
	sockCreate.Lock()
	defer sockCreate.Unlock()
	back, err := c.enter()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, back()) }()
	return f()
}

// enter moves the whole process into c and returns the function that
// moves it back to c.orig. Callers keep every other socket creation out
// meanwhile (within holds sockCreate).
func (c *cgroup) enter() (back func() error, err error) {
	pid := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), pid, 0); err != nil {
		return nil, fmt.Errorf("%w: move into %s: %w", ErrCgroup, c.dir, err)
	}
	return func() error {
		if err := os.WriteFile(filepath.Join(c.orig, "cgroup.procs"), pid, 0); err != nil {
			return fmt.Errorf("%w: move back to %s: %w", ErrCleanup, c.orig, err)
		}
		return nil
	}, nil
}

// remove removes the cgroup directory (it is empty: the process left it).
func (c *cgroup) remove() error {
	if err := unix.Rmdir(c.dir); err != nil && err != unix.ENOENT {
		return fmt.Errorf("%w: remove %s: %w", ErrCleanup, c.dir, err)
	}
	return nil
}
