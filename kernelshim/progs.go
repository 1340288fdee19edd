package kernelshim

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/splicecheck/splicecheck/trace"
)

// Verdict return codes of sk_msg and sk_skb programs (enum sk_action).
const (
	skDrop = 0 // SK_DROP
	skPass = 1 // SK_PASS
)

// Canned programs. Each `prog` op loads fresh programs written with the asm
// package (no clang) and attaches them to the map, as the selftests'
// test_sockmap does with its C programs:
//
//	sk_msg  verdict   BPF_PROG_TYPE_SK_MSG, attach BPF_SK_MSG_VERDICT:
//	        [bpf_msg_apply_bytes(msg, N)] [bpf_msg_cork_bytes(msg, N)]
//	        return SK_PASS | SK_DROP |
//	               bpf_msg_redirect_map(msg, map, KEY, flags) |
//	               bpf_msg_redirect_hash(msg, map, &KEY, flags)
//	sk_skb  verdict   BPF_PROG_TYPE_SK_SKB, attach BPF_SK_SKB_STREAM_VERDICT:
//	        return SK_PASS | SK_DROP |
//	               bpf_sk_redirect_map(skb, map, KEY, flags) |
//	               bpf_sk_redirect_hash(skb, map, &KEY, flags)
//	sk_skb  parser    BPF_PROG_TYPE_SK_SKB, attach BPF_SK_SKB_STREAM_PARSER
//	        (only with `parser N|all`): return N, or skb->len for all.
//
// flags is BPF_F_INGRESS for `ingress`, 0 for `egress`. KEY is a u32 in
// both map types (on the stack for the hash helpers).

// skbLenOff is offsetof(struct __sk_buff, len).
const skbLenOff = 0

// verdictInsns returns the verdict program for p on the map mapFD of type mt.
func verdictInsns(p *trace.Prog, mapFD int, mt trace.MapType) asm.Instructions {
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)} // r6 = ctx
	if p.Type == trace.SkMsg {
		if p.HasApply {
			insns = append(insns,
				asm.Mov.Reg(asm.R1, asm.R6),
				asm.Mov.Imm(asm.R2, int32(p.Apply)),
				asm.FnMsgApplyBytes.Call(),
			)
		}
		if p.HasCork {
			insns = append(insns,
				asm.Mov.Reg(asm.R1, asm.R6),
				asm.Mov.Imm(asm.R2, int32(p.Cork)),
				asm.FnMsgCorkBytes.Call(),
			)
		}
	}
	switch p.Verdict {
	case trace.VerdictPass:
		return append(insns, asm.Mov.Imm(asm.R0, skPass), asm.Return())
	case trace.VerdictDrop:
		return append(insns, asm.Mov.Imm(asm.R0, skDrop), asm.Return())
	}
	var flags int32
	if p.Ingress {
		flags = 1 // BPF_F_INGRESS
	}
	fn := map[[2]bool]asm.BuiltinFunc{
		{true, false}:  asm.FnMsgRedirectMap,
		{true, true}:   asm.FnMsgRedirectHash,
		{false, false}: asm.FnSkRedirectMap,
		{false, true}:  asm.FnSkRedirectHash,
	}[[2]bool{p.Type == trace.SkMsg, mt == trace.SockHash}]
	insns = append(insns, asm.Mov.Reg(asm.R1, asm.R6), asm.LoadMapPtr(asm.R2, mapFD))
	if mt == trace.SockHash {
		insns = append(insns,
			asm.StoreImm(asm.R10, -4, p.Key, asm.Word), // *(u32 *)(fp-4) = KEY
			asm.Mov.Reg(asm.R3, asm.R10),
			asm.Add.Imm(asm.R3, -4),
		)
	} else {
		insns = append(insns, asm.Mov.Imm(asm.R3, int32(p.Key)))
	}
	return append(insns,
		asm.Mov.Imm(asm.R4, flags),
		fn.Call(),
		asm.Return(),
	)
}

// parserInsns returns the stream parser for `parser N|all`.
func parserInsns(n int64) asm.Instructions {
	if n == trace.ParserAll {
		return asm.Instructions{asm.LoadMem(asm.R0, asm.R1, skbLenOff, asm.Word), asm.Return()}
	}
	return asm.Instructions{asm.Mov.Imm(asm.R0, int32(n)), asm.Return()}
}

// errAttach marks a BPF_PROG_ATTACH failure: its errno is an op's
// observation, unlike a load failure, which is the backend's bug.
var errAttach = errors.New("attach")

func isAttachErr(err error) bool { return errors.Is(err, errAttach) }

// attached is one program attached to a map with BPF_PROG_ATTACH.
type attached struct {
	prog   *ebpf.Program
	attach ebpf.AttachType
}

// loadProgram loads insns as a program of type typ (BPF_PROG_LOAD).
func loadProgram(name string, typ ebpf.ProgramType, insns asm.Instructions) (*ebpf.Program, error) {
	p, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         name,
		Type:         typ,
		License:      "GPL",
		Instructions: insns,
	}, ebpf.ProgramOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w: load %s: %w", ErrProgram, name, err)
	}
	return p, nil
}

// attachProgs loads the programs of a `prog` op and attaches them to the
// map (BPF_PROG_ATTACH with the map fd as target; a later attach of the
// same type replaces the earlier program in the map, as the kernel does).
// Programs are attached parser first, then verdict. It returns what it
// attached, which the caller must detach and close; on error, everything
// it loaded is already released.
func attachProgs(p *trace.Prog, mapFD int, mt trace.MapType) ([]attached, error) {
	type spec struct {
		name   string
		typ    ebpf.ProgramType
		attach ebpf.AttachType
		insns  asm.Instructions
	}
	var specs []spec
	if p.Type == trace.SkMsg {
		specs = append(specs, spec{objName("msg_verdict"), ebpf.SkMsg, ebpf.AttachSkMsgVerdict, verdictInsns(p, mapFD, mt)})
	} else {
		if p.Parser != 0 {
			specs = append(specs, spec{objName("parser"), ebpf.SkSKB, ebpf.AttachSkSKBStreamParser, parserInsns(p.Parser)})
		}
		specs = append(specs, spec{objName("skb_verdict"), ebpf.SkSKB, ebpf.AttachSkSKBStreamVerdict, verdictInsns(p, mapFD, mt)})
	}
	var out []attached
	for _, s := range specs {
		prog, err := loadProgram(s.name, s.typ, s.insns)
		if err == nil {
			err = link.RawAttachProgram(link.RawAttachProgramOptions{Target: mapFD, Program: prog, Attach: s.attach})
			if err != nil {
				prog.Close()
				err = fmt.Errorf("%w %s: %w", errAttach, s.name, err)
			}
		}
		if err != nil {
			detachAll(mapFD, out)
			return nil, err
		}
		out = append(out, attached{prog, s.attach})
	}
	return out, nil
}

// detachAll detaches (BPF_PROG_DETACH) and closes programs attached to
// mapFD. A program a later attach already replaced is no longer attached;
// its detach fails with ENOENT, which is expected and ignored. It returns
// the first other error.
func detachAll(mapFD int, progs []attached) error {
	var first error
	for i := len(progs) - 1; i >= 0; i-- {
		a := progs[i]
		err := link.RawDetachProgram(link.RawDetachProgramOptions{Target: mapFD, Program: a.prog, Attach: a.attach})
		if e, ok := errnoOf(err); err != nil && !(ok && e == syscall.ENOENT) && first == nil {
			first = fmt.Errorf("%w: detach %v: %w", ErrCleanup, a.attach, err)
		}
		if err := a.prog.Close(); err != nil && first == nil {
			first = fmt.Errorf("%w: close program: %w", ErrCleanup, err)
		}
	}
	return first
}

// CannedPrograms returns the instructions of the programs a `prog` op
// loads for p on a map of type mt (see Canned programs): the verdict, and
// the stream parser when p has one (else nil). The verdict's map pointer
// (an ld_imm64 of BPF_PSEUDO_MAP_FD) carries mapFD, which the caller
// replaces with the map's fd at load time. The C reproducer writes them
// out as they are (kernelshim/repro).
func CannedPrograms(p *trace.Prog, mt trace.MapType, mapFD int) (verdict, parser asm.Instructions) {
	if p.Type == trace.SkSkb && p.Parser != 0 {
		parser = parserInsns(p.Parser)
	}
	return verdictInsns(p, mapFD, mt), parser
}
