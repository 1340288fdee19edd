package kernelshim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// The sock_ops program of `conn A B pair`, written with the asm package
// (no clang). It runs at every sock_ops callback of a socket created in
// the run's pairing cgroup and acts only at BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB
// (the connecting end) and BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB (the accepted
// end). At each of those it writes one pairResult into the results hash,
// keyed by the socket's cookie (bpf_get_socket_cookie), which user space
// reads back with SO_COOKIE.
//
// RFC (bpf_sock_splice_pair in vmlinux), AF_INET only, as the RFC's selftest:
//
//	self = {local_ip4, remote_ip4, local_port, bpf_ntohl(remote_port)}
//	peer = the same with the two ends swapped
//	ret = bpf_sock_hash_update(skops, &rendezvous, &self, BPF_ANY)
//	if ret != 0: record {stageUpdate, ret}
//	p = bpf_map_lookup_elem(&rendezvous, &peer)       // takes a reference
//	if !p: record {stageNoPeer, 0}
//	ret = bpf_sock_splice_pair(p, skops)                // releases it
//	record {stagePaired, ret}
//
// module (bpf_tcp_splice_pair in module tcp_splice's BTF), at both callbacks:
//
//	ret = bpf_tcp_splice_pair(skops)
//	record {stagePaired, ret}
//
// Both kfuncs take `struct bpf_sock_ops_kern *`, and the ctx itself is
// passed: the verifier accepts the sock_ops ctx there as a projection of
// struct bpf_sock_ops (btf_is_projection_of(), kernel/bpf/btf.c, v6.12 with
// the ctx-projection fix the patched kernels carry), and refuses the
// trusted pointer bpf_cast_to_kern_ctx() (kernel/bpf/helpers.c, v6.12)
// would return ("arg#1 expected pointer to ctx").
//
// The kfunc calls are BPF_PSEUDO_KFUNC_CALL instructions whose imm is the
// function's BTF type id and whose off is 0 for vmlinux or an index into
// the load's fd_array for a module's BTF. cilium/ebpf v0.22 resolves kfuncs
// only from ELF metadata it does not export, and cannot pass a module BTF
// fd, so the program is loaded with a raw BPF_PROG_LOAD (loadSockOps).

// pairResult is the results map's value: what one ESTABLISHED callback did.
type pairResult struct {
	Stage uint32
	Ret   int32 // 0 or -errno
}

// Stages of pairResult.
const (
	stageUpdate = 1 // bpf_sock_hash_update failed with Ret
	stageNoPeer = 2 // no peer in the rendezvous sockhash (or no kfunc called)
	stagePaired = 3 // the pairing kfunc returned Ret
)

// Offsets in struct bpf_sock_ops (include/uapi/linux/bpf.h) and the
// constants the program compares with.
const (
	skopsOp         = 0
	skopsFamily     = 20
	skopsRemoteIP4  = 24
	skopsLocalIP4   = 28
	skopsRemotePort = 64 // network byte order in the upper 16 bits
	skopsLocalPort  = 68 // host byte order

	opActiveEstablished  = 4 // BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB
	opPassiveEstablished = 5 // BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB
)

// kfuncCall is a call of the kernel function with BTF type id id, found in
// vmlinux (fdIndex 0) or in the module BTF at fd_array[fdIndex].
func kfuncCall(id uint32, fdIndex int16) asm.Instruction {
	return asm.Instruction{
		OpCode:   asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call),
		Src:      asm.PseudoKfuncCall,
		Offset:   fdIndex,
		Constant: int64(id),
	}
}

// establishedOnly starts a program: r6 = ctx, and a jump to "out" unless
// the callback is one of the two ESTABLISHED ones.
func establishedOnly() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, skopsOp, asm.Word),
		asm.JEq.Imm(asm.R2, opActiveEstablished, "established"),
		asm.JNE.Imm(asm.R2, opPassiveEstablished, "out"),
		asm.Mov.Imm(asm.R2, 0).WithSymbol("established"),
	}
}

// recordAndExit stores {r8, r7} at fp-48 and updates results[fp-40] with
// it (label "record"), then returns 1 (label "out").
func recordAndExit(resultsFD int) asm.Instructions {
	return asm.Instructions{
		asm.StoreMem(asm.RFP, -48, asm.R8, asm.Word).WithSymbol("record"),
		asm.StoreMem(asm.RFP, -44, asm.R7, asm.Word),
		asm.LoadMapPtr(asm.R1, resultsFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -40),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -48),
		asm.Mov.Imm(asm.R4, unix.BPF_ANY),
		asm.FnMapUpdateElem.Call(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"),
		asm.Return(),
	}
}

// cookieToStack stores bpf_get_socket_cookie(skops) at fp-40.
func cookieToStack() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, -40, asm.R0, asm.DWord),
	}
}

// rfcPairInsns is the RFC program (see above); pairID is the vmlinux BTF
// id of bpf_sock_splice_pair.
func rfcPairInsns(rendezvousFD, resultsFD int, pairID uint32) asm.Instructions {
	insns := establishedOnly()
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.R6, skopsFamily, asm.Word),
		asm.JNE.Imm(asm.R2, unix.AF_INET, "out"),
		asm.LoadMem(asm.R2, asm.R6, skopsLocalIP4, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, skopsRemoteIP4, asm.Word),
		asm.LoadMem(asm.R4, asm.R6, skopsLocalPort, asm.Word),
		asm.LoadMem(asm.R5, asm.R6, skopsRemotePort, asm.Word),
		asm.HostTo(asm.BE, asm.R5, asm.Word), // bpf_ntohl
		// self key at fp-16, the swapped (peer's) key at fp-32
		asm.StoreMem(asm.RFP, -16, asm.R2, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R3, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R4, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R5, asm.Word),
		asm.StoreMem(asm.RFP, -32, asm.R3, asm.Word),
		asm.StoreMem(asm.RFP, -28, asm.R2, asm.Word),
		asm.StoreMem(asm.RFP, -24, asm.R5, asm.Word),
		asm.StoreMem(asm.RFP, -20, asm.R4, asm.Word),
	)
	insns = append(insns, cookieToStack()...)
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, rendezvousFD),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, unix.BPF_ANY),
		asm.FnSockHashUpdate.Call(),
		asm.Mov.Imm(asm.R8, stageUpdate),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.JNE.Imm(asm.R0, 0, "record"),
		asm.LoadMapPtr(asm.R1, rendezvousFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -32),
		asm.FnMapLookupElem.Call(),
		asm.Mov.Imm(asm.R8, stageNoPeer),
		asm.Mov.Imm(asm.R7, 0),
		asm.JEq.Imm(asm.R0, 0, "record"),
		asm.Mov.Reg(asm.R1, asm.R0), // the peer, a referenced socket
		asm.Mov.Reg(asm.R2, asm.R6),
		kfuncCall(pairID, 0),
		asm.Mov.Imm(asm.R8, stagePaired),
		asm.Mov.Reg(asm.R7, asm.R0),
	)
	return append(insns, recordAndExit(resultsFD)...)
}

// modulePairInsns is the module program (see above): pairID is the id of
// bpf_tcp_splice_pair in the module BTF passed at fd_array[1]. With pairID 0 it calls no kfunc and
// records stageNoPeer (tests use that shape on kernels without a kfunc).
func modulePairInsns(resultsFD int, pairID uint32) asm.Instructions {
	insns := establishedOnly()
	insns = append(insns, cookieToStack()...)
	if pairID == 0 {
		insns = append(insns, asm.Mov.Imm(asm.R8, stageNoPeer), asm.Mov.Imm(asm.R7, 0))
	} else {
		insns = append(insns,
			asm.Mov.Reg(asm.R1, asm.R6),
			kfuncCall(pairID, 1),
			asm.Mov.Imm(asm.R8, stagePaired),
			asm.Mov.Reg(asm.R7, asm.R0),
		)
	}
	return append(insns, recordAndExit(resultsFD)...)
}

// hostEndian is the machine's byte order as a value the asm package
// accepts (it knows binary.LittleEndian and binary.BigEndian only).
func hostEndian() binary.ByteOrder {
	x := uint16(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// progLoadAttr is the BPF_PROG_LOAD prefix of union bpf_attr up to
// fd_array (include/uapi/linux/bpf.h); the kernel zero-extends it.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              unsafe.Pointer
	license            unsafe.Pointer
	logLevel           uint32
	logSize            uint32
	logBuf             unsafe.Pointer
	kernVersion        uint32
	progFlags          uint32
	progName           [unix.BPF_OBJ_NAME_LEN]byte
	progIfindex        uint32
	expectedAttachType uint32
	progBTFFD          uint32
	funcInfoRecSize    uint32
	funcInfo           uint64
	funcInfoCnt        uint32
	lineInfoRecSize    uint32
	lineInfo           uint64
	lineInfoCnt        uint32
	attachBTFID        uint32
	attachBTFObjFD     uint32
	coreReloCnt        uint32
	fdArray            unsafe.Pointer
}

// loadSockOps loads insns as a BPF_PROG_TYPE_SOCK_OPS program with expected
// attach type BPF_CGROUP_SOCK_OPS and license GPL (kfunc calls need a GPL
// program). fdArray is passed as the load's fd_array (nil for none). On a
// verifier rejection the load is repeated with a log, whose last lines go
// into the error.
func loadSockOps(name string, insns asm.Instructions, fdArray []int32) (int, error) {
	var buf bytes.Buffer
	if err := insns.Marshal(&buf, hostEndian()); err != nil {
		return -1, fmt.Errorf("%w: marshal %s: %w", ErrProgram, name, err)
	}
	code := buf.Bytes()
	license := []byte("GPL\x00")
	load := func(log []byte) (int, error) {
		attr := progLoadAttr{
			progType:           unix.BPF_PROG_TYPE_SOCK_OPS,
			insnCnt:            uint32(len(code) / asm.InstructionSize),
			insns:              unsafe.Pointer(&code[0]),
			license:            unsafe.Pointer(&license[0]),
			expectedAttachType: unix.BPF_CGROUP_SOCK_OPS,
		}
		copy(attr.progName[:unix.BPF_OBJ_NAME_LEN-1], name)
		if len(fdArray) > 0 {
			attr.fdArray = unsafe.Pointer(&fdArray[0])
		}
		if len(log) > 0 {
			attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), unsafe.Pointer(&log[0])
		}
		fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(code)
		runtime.KeepAlive(license)
		runtime.KeepAlive(fdArray)
		runtime.KeepAlive(log)
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
	fd, err := load(nil)
	if err == nil {
		return fd, nil
	}
	log := make([]byte, 1<<16)
	if fd2, err2 := load(log); err2 == nil { // should not happen; keep it
		return fd2, nil
	}
	lines := strings.Split(strings.TrimRight(string(bytes.TrimRight(log, "\x00")), "\n"), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return -1, fmt.Errorf("%w: load %s: %w (verifier: %s)", ErrProgram, name, err, strings.Join(lines, " | "))
}

// RFCPairProgram returns the sock_ops program of `conn A B pair` on a
// kernel with the loopback-splice RFC (see above): rendezvousFD and
// resultsFD stand for the two maps' fds and pairID for the BTF id of
// bpf_sock_splice_pair, which the caller replaces at load time. The C
// reproducer writes it out as it is (kernelshim/repro).
func RFCPairProgram(rendezvousFD, resultsFD int, pairID uint32) asm.Instructions {
	return rfcPairInsns(rendezvousFD, resultsFD, pairID)
}

// ModulePairProgram returns the sock_ops program of `conn A B pair` on a
// kernel with the tcp_splice module (see above): resultsFD stands for the
// results map's fd and pairID for the id of bpf_tcp_splice_pair in the
// module's BTF, passed at fd_array[1], which the caller replaces at load
// time. The C reproducer writes it out as it is (kernelshim/repro).
func ModulePairProgram(resultsFD int, pairID uint32) asm.Instructions {
	return modulePairInsns(resultsFD, pairID)
}
