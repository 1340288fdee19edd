package kernelshim

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/asm"

	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/trace"
)

// kfuncCalls returns the kfunc calls of insns as {imm, off} pairs, in order.
func kfuncCalls(insns asm.Instructions) [][2]int64 {
	var out [][2]int64
	for _, ins := range insns {
		if ins.IsKfuncCall() {
			out = append(out, [2]int64{ins.Constant, int64(ins.Offset)})
		}
	}
	return out
}

// helperCalls returns the helper calls of insns, in order.
func helperCalls(insns asm.Instructions) []asm.BuiltinFunc {
	var out []asm.BuiltinFunc
	for _, ins := range insns {
		if ins.IsBuiltinCall() {
			out = append(out, asm.BuiltinFunc(ins.Constant))
		}
	}
	return out
}

func equalCalls[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The RFC program: the cookie, the rendezvous insert and lookup, then
// bpf_sock_splice_pair (vmlinux: off 0),
// then the record; it reads the four ctx fields of the key.
func TestRFCPairInsnsShape(t *testing.T) {
	insns := rfcPairInsns(3, 4, 200)
	if got, want := kfuncCalls(insns), [][2]int64{{200, 0}}; !equalCalls(got, want) {
		t.Errorf("kfunc calls = %v, want %v", got, want)
	}
	want := []asm.BuiltinFunc{asm.FnGetSocketCookie, asm.FnSockHashUpdate, asm.FnMapLookupElem, asm.FnMapUpdateElem}
	if got := helperCalls(insns); !equalCalls(got, want) {
		t.Errorf("helper calls = %v, want %v", got, want)
	}
	loads := map[int16]bool{}
	for _, ins := range insns {
		if ins.OpCode.Class() == asm.LdXClass && ins.Src == asm.R6 {
			loads[ins.Offset] = true
		}
	}
	for _, off := range []int16{skopsOp, skopsFamily, skopsLocalIP4, skopsRemoteIP4, skopsLocalPort, skopsRemotePort} {
		if !loads[off] {
			t.Errorf("no load of bpf_sock_ops at offset %d", off)
		}
	}
	assertMarshals(t, insns)
}

// The module program: bpf_tcp_splice_pair from the module BTF at
// fd_array[1]; no sockhash.
// Without a pair id (the probe shape) it calls no kfunc.
func TestModulePairInsnsShape(t *testing.T) {
	insns := modulePairInsns(4, 70000)
	if got, want := kfuncCalls(insns), [][2]int64{{70000, 1}}; !equalCalls(got, want) {
		t.Errorf("kfunc calls = %v, want %v", got, want)
	}
	if got, want := helperCalls(insns), []asm.BuiltinFunc{asm.FnGetSocketCookie, asm.FnMapUpdateElem}; !equalCalls(got, want) {
		t.Errorf("helper calls = %v, want %v", got, want)
	}
	assertMarshals(t, insns)
	probe := modulePairInsns(4, 0)
	if got := kfuncCalls(probe); len(got) != 0 {
		t.Errorf("probe program calls kfuncs %v", got)
	}
	assertMarshals(t, probe)
}

// assertMarshals checks that every label resolves and the program ends in exit.
func assertMarshals(t *testing.T, insns asm.Instructions) {
	t.Helper()
	if err := insns.Marshal(io.Discard, hostEndian()); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if last := insns[len(insns)-1]; last.OpCode.JumpOp() != asm.Exit {
		t.Errorf("last instruction %v, want exit", last)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/sys/fs/cgroup`: "/sys/fs/cgroup", `/a\040b`: "/a b", `/x\`: `/x\`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// pairTrace pairs a connection and moves data both ways.
const pairTrace = "conn a b pair\nsend a \"hello\"\nrecv b 100\nsend b \"back\"\nrecv a 100\nstate a\nclose a\nrecv b 1\n"

// On a kernel without a pairing kfunc (the host's 6.18, stock kernels)
// `conn a b pair` answers -EOPNOTSUPP and the connection works as a plain
// one; nothing is created for pairing.
func TestConnPairWithoutKfunc(t *testing.T) {
	testenv.RequireKernel(t, Available)
	if k := detectPair().kind; k != pairNone {
		t.Skipf("this kernel has a pairing kfunc (kind %d)", k)
	}
	got := mustRun(t, pairTrace)
	want := "1: conn a b pair => -EOPNOTSUPP\n2: send a \"hello\" => 5\n3: recv b 100 => 5 \"hello\"\n" +
		"4: send b \"back\" => 4\n5: recv a 100 => 4 \"back\"\n6: state a => ESTABLISHED\n" +
		"7: close a => ok\n8: recv b 1 => 0 \"\"\n"
	if got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

// On a kernel with a pairing kfunc, `conn a b pair` answers ok and data
// flows both ways. (Run it in a VM guest booted with the RFC kernel or
// with the tcp_splice module loaded.)
//
// Evidence that such a pair uses the ring, seen under `splicecheck vm` on
// 6.12.118 with the RFC and with the module: after `send a "hello"`,
// `fionread b` is 0 (5 on plain TCP: the bytes are in the ring, not the
// receive queue). With the RFC, `send a 20000 dontwait` leaves 3617 bytes
// in FIONREAD and the first `recv b 20000 dontwait` returns 16383 (one
// 16 KiB ring's worth, the rest came by TCP); with the module loaded with
// ring_kbytes=16 the send itself is short, 16383, and a second send gets
// -EAGAIN.

func TestConnPairWithKfunc(t *testing.T) {
	testenv.RequireKernel(t, Available)
	if detectPair().kind == pairNone {
		t.Skip("no pairing kfunc: neither bpf_sock_splice_pair in vmlinux BTF nor bpf_tcp_splice_pair in module tcp_splice")
	}
	got := mustRun(t, pairTrace)
	if !strings.HasPrefix(got, "1: conn a b pair => ok\n2: send a \"hello\" => 5\n3: recv b 100 => 5 \"hello\"\n") {
		t.Errorf("got\n%s", got)
	}
}

// The pairing machinery on any kernel with cgroup v2 and sock_ops: the
// probe program (no kfunc) records both ESTABLISHED callbacks by socket
// cookie, so `conn a b pair` answers -ENOENT (no pairing happened); the
// connection works; the process is back in its cgroup; and the program,
// the maps and the cgroup directory are gone after the run, also after a
// run whose op timed out.
func TestConnPairMachinery(t *testing.T) {
	testenv.RequireKernel(t, Available)
	if _, _, err := cgroup2Mount(); err != nil {
		t.Skip(err)
	}
	before, err := ownCgroup()
	if err != nil {
		t.Fatal(err)
	}
	be := New(Config{testPairKind: pairProbe})
	run := func(src string, timeout time.Duration) string {
		tr, err := trace.Parse("pair.trace", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		obs, err := trace.Observe(context.Background(), be, tr, trace.Options{OpTimeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		return render(obs)
	}
	run(pairTrace, 2*time.Second) // warm up
	base := stableBaseline(t)
	got := run(pairTrace+"conn c d pair\nsend c 10\nrecv d 10\n", 2*time.Second)
	if !strings.HasPrefix(got, "1: conn a b pair => -ENOENT\n2: send a \"hello\" => 5\n3: recv b 100 => 5 \"hello\"\n") ||
		!strings.Contains(got, ": conn c d pair => -ENOENT\n") {
		t.Errorf("got\n%s", got)
	}
	run("conn a b pair\n@t recv b 10\nsleep 1\n", 30*time.Millisecond)
	if after, _ := ownCgroup(); after != before {
		t.Errorf("process in cgroup %s after the runs, was in %s", after, before)
	}
	mnt, root, _ := cgroup2Mount()
	rel, _ := strings.CutPrefix(before, root)
	left, _ := filepath.Glob(filepath.Join(mnt, rel, cgroupPrefix+strconv.Itoa(os.Getpid())+"-*"))
	if len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
	if after := awaitBaseline(t, base); !after.equal(base) {
		t.Errorf("leak:\nbefore %v\nafter  %v", base, after)
	}
}
