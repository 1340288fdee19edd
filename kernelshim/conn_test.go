package kernelshim

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

// A conn waits for no other op, so the ops after it start only once it has
// returned, even when its connect(2) sleeps. Here it sleeps for certain: a
// cgroup egress program drops the first SYN, and connect waits for its
// retransmission (TCP_TIMEOUT_INIT, 1 s). Taken for blocked, the thread's
// recv on B ran before conn had recorded B and got -EBADF.
func TestConnIsNeverBlocked(t *testing.T) {
	testenv.RequireKernel(t, Available)
	cg, err := newCgroup()
	if err != nil {
		t.Fatal(err)
	}
	defer cg.remove()
	drops, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer drops.Close()
	prog, err := loadProgram("drop_syn", ebpf.CGroupSKB, dropFirstSYN(drops.FD()))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cg.dir, Attach: ebpf.AttachCGroupInetEgress, Program: prog})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// The sockets must be created inside the cgroup: move the process in
	// for the run (not within: conn takes sockCreate too; the package's
	// tests do not run in parallel).
	back, err := cg.enter()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := back(); err != nil {
			t.Error(err)
		}
	}()
	obs, err := run(t, Config{}, "conn a b\n@t1 recv b 1 dontwait\njoin t1\n", trace.Options{OpTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var dropped uint32
	if err := drops.Lookup(uint32(0), &dropped); err != nil || dropped != 1 {
		t.Fatalf("SYNs dropped: %d (%v): connect never slept, the test tested nothing", dropped, err)
	}
	want := "1: conn a b => ok\n2: @t1 recv b 1 dontwait => -EAGAIN\n3: join t1 => ok\n"
	if got := render(obs); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// dropFirstSYN is a cgroup_skb egress program that drops the first IPv4
// TCP segment with only SYN set (no IP options: the flags at byte 33) and
// counts it in drops[0]; it passes everything else.
func dropFirstSYN(drops int) asm.Instructions {
	load := func(off int32, slot int16) asm.Instructions {
		// bpf_skb_load_bytes(skb, off, fp+slot, 1)
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Imm(asm.R2, off),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, int32(slot)),
			asm.Mov.Imm(asm.R4, 1),
			asm.FnSkbLoadBytes.Call(),
			asm.JNE.Imm(asm.R0, 0, "pass"),
		}
	}
	insns := asm.Instructions{asm.Mov.Reg(asm.R6, asm.R1)}
	insns = append(insns, load(9, -8)...) // IP protocol
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.RFP, -8, asm.Byte),
		asm.JNE.Imm(asm.R1, 6, "pass"),
	)
	insns = append(insns, load(33, -16)...) // TCP flags
	return append(insns,
		asm.LoadMem(asm.R1, asm.RFP, -16, asm.Byte),
		asm.JNE.Imm(asm.R1, 0x02, "pass"),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, drops),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.JNE.Imm(asm.R1, 0, "pass"),
		asm.StoreImm(asm.R0, 0, 1, asm.Word),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("pass"),
		asm.Return(),
	)
}
