package kernelshim

import (
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/splicecheck/splicecheck/trace"
)

// mapValueSize is the value size of every trace map: a u32 socket fd, as
// the sockmap selftests declare it (an 8-byte value also works since 5.x,
// but 4 bytes works on every kernel with sockhash).
const mapValueSize = 4

// objPrefix starts the name of every BPF object this process creates:
// "sc", the pid in base 36, "_" (at most 8 bytes). The leak test finds
// this process's objects by it, so another process running the kernel
// backend at the same time does not disturb it.
var objPrefix = "sc" + strconv.FormatInt(int64(os.Getpid()), 36) + "_"

// objName is the BPF object name of name (a trace map name, or a program
// role): objPrefix and name, truncated to 15 bytes
// (BPF_OBJ_NAME_LEN - 1).
func objName(name string) string {
	n := objPrefix + name
	if len(n) > unix.BPF_OBJ_NAME_LEN-1 {
		n = n[:unix.BPF_OBJ_NAME_LEN-1]
	}
	return n
}

// newMap is `map M sockmap|sockhash N`: BPF_MAP_CREATE of
// BPF_MAP_TYPE_SOCKMAP or BPF_MAP_TYPE_SOCKHASH with a u32 key, a u32
// value and N entries. The kernel's errno (EINVAL for N = 0, say) is the
// observation; ops on a map whose creation failed return -EBADF.
func (e *executor) newMap(op *trace.Op) trace.Result {
	typ := uint32(unix.BPF_MAP_TYPE_SOCKMAP)
	if op.MapType == trace.SockHash {
		typ = unix.BPF_MAP_TYPE_SOCKHASH
	}
	fd, err := bpfMapCreate(typ, 4, mapValueSize, uint32(op.Size), objName(op.Map))
	e.mu.Lock()
	e.maps[op.Map] = &sockMap{name: op.Map, typ: op.MapType, fd: fd}
	e.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	return trace.OK()
}

// mapFD returns the fd of map name, or EBADF if its creation failed.
func (e *executor) mapFD(name string) (*sockMap, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m := e.maps[name]; m != nil && m.fd >= 0 {
		return m, nil
	}
	return nil, syscall.EBADF
}

// prog is `prog M ...`: load the canned programs (BPF_PROG_LOAD) and attach
// them to M (BPF_PROG_ATTACH, target the map fd). A socket inserted into M
// before this op keeps the programs it had (sock_map_link copies the map's
// programs into the psock at insert time), exactly as on the kernel. A
// load failure is the backend's bug, not an observation; an attach
// failure's errno is the observation.
func (e *executor) prog(c *trace.Call) trace.Result {
	op := c.Op
	m, err := e.mapFD(op.Map)
	if err != nil {
		return fail(err)
	}
	progs, err := attachProgs(op.Prog, m.fd, m.typ)
	if err != nil {
		if e, ok := errnoOf(err); ok && isAttachErr(err) {
			return trace.Fail(e)
		}
		return e.internal(c, err)
	}
	e.mu.Lock()
	m.progs = append(m.progs, progs...)
	e.mu.Unlock()
	return trace.OK()
}

// insert is `insert M KEY S`: BPF_MAP_UPDATE_ELEM(KEY, S's fd, BPF_ANY).
// The kernel's errno is the observation (EOPNOTSUPP for a socket that is
// not established, E2BIG for a key past a sockmap's size, ...).
func (e *executor) insert(op *trace.Op) trace.Result {
	m, err := e.mapFD(op.Map)
	if err != nil {
		return fail(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock() // the fd must stay open through the update
	s := e.socks[op.A]
	if s == nil || s.fd < 0 {
		return trace.Fail(syscall.EBADF)
	}
	if err := bpfMapUpdate(m.fd, uint32(op.Key), uint32(s.fd)); err != nil {
		return fail(err)
	}
	return trace.OK()
}

// delete is `delete M KEY`: BPF_MAP_DELETE_ELEM (ENOENT for an empty slot).
func (e *executor) delete(op *trace.Op) trace.Result {
	m, err := e.mapFD(op.Map)
	if err != nil {
		return fail(err)
	}
	if err := bpfMapDelete(m.fd, uint32(op.Key)); err != nil {
		return fail(err)
	}
	return trace.OK()
}
