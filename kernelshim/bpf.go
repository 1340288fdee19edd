package kernelshim

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw bpf(2) commands for maps. Maps are created and updated through the
// syscall directly (not cilium/ebpf's Map) so that an op observes exactly
// the errno the kernel returns, with no user-space validation in between.

// mapCreateAttr is the BPF_MAP_CREATE prefix of union bpf_attr that
// splicecheck needs; the kernel zero-extends a shorter attr.
type mapCreateAttr struct {
	mapType    uint32
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	mapFlags   uint32
	innerMapFD uint32
	numaNode   uint32
	mapName    [unix.BPF_OBJ_NAME_LEN]byte
}

// mapElemAttr is the BPF_MAP_*_ELEM layout of union bpf_attr. The key and
// value fields are __aligned_u64 pointers in the kernel; they are held as
// unsafe.Pointer (8 bytes on the 64-bit targets splicecheck supports) so
// the garbage collector and stack copying see them.
type mapElemAttr struct {
	mapFD uint32
	_     uint32
	key   unsafe.Pointer
	value unsafe.Pointer
	flags uint64
}

// bpfMapCreate is BPF_MAP_CREATE; name is truncated to 15 bytes.
func bpfMapCreate(typ, keySize, valueSize, maxEntries uint32, name string) (int, error) {
	attr := mapCreateAttr{mapType: typ, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries}
	copy(attr.mapName[:unix.BPF_OBJ_NAME_LEN-1], name)
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// bpfMapUpdate is BPF_MAP_UPDATE_ELEM with BPF_ANY: for a sockmap or
// sockhash, key is the u32 key and value the socket's fd (u32), as the
// kernel selftests pass it; the kernel looks the fd up in the calling
// process's fd table and links the socket's psock.
func bpfMapUpdate(mapFD int, key, value uint32) error {
	attr := mapElemAttr{
		mapFD: uint32(mapFD),
		key:   unsafe.Pointer(&key),
		value: unsafe.Pointer(&value),
		flags: unix.BPF_ANY,
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_UPDATE_ELEM, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return errno
	}
	return nil
}

// bpfMapDelete is BPF_MAP_DELETE_ELEM with a u32 key: it unlinks the
// socket at key (and drops its psock when it is in no other map).
func bpfMapDelete(mapFD int, key uint32) error {
	attr := mapElemAttr{mapFD: uint32(mapFD), key: unsafe.Pointer(&key)}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_DELETE_ELEM, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return errno
	}
	return nil
}
