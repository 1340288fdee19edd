// Package repro writes a trace as a standalone C program, the reproducer
// the netdev and bpf lists expect: libc only, raw bpf(2) with the kernel
// backend's canned programs as instruction arrays, one pthread per trace
// thread, a network namespace of its own. Run as root, it performs the
// trace's ops on the running kernel under the runner's rules (ops handed
// out in trace order, each thread settled before the next, blocked ops
// timed out once everything is handed out; runtime.c says how) and prints
// the `LINE: OP => RESULT` lines `splicecheck run --backend kernel`
// prints, long data with its full SHA-256 as in the goldens.
//
// The program is the fixed runtime (csrc/runtime.c, embedded) with the trace's
// tables spliced in: the ops, their data, the programs. Nothing in it
// depends on the machine that generated it.
package repro

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/cilium/ebpf/asm"

	"github.com/splicecheck/splicecheck/kernelshim"
	"github.com/splicecheck/splicecheck/trace"
)

//go:embed csrc/runtime.c
var runtimeC string

// ErrUnsupported marks a trace with an op the C runtime cannot perform.
var ErrUnsupported = errors.New("not expressible in the C reproducer")

// Header is what the program's opening comment says besides the trace.
type Header struct {
	// Generator names the tool and version that wrote the program.
	Generator string
	// Profile is the kernel profile the trace is about.
	Profile string
	// Notes are free lines: what diverged where and what to look for
	// (the trace's own leading comments, a counterexample's verdict).
	Notes []string
}

// tablesMark is where the generated tables go in runtime.c.
const tablesMark = "/* @TABLES@ */"

// C returns the C program for t. An op the runtime cannot perform (FreeBSD's
// SO_SPLICE) is an error wrapping ErrUnsupported that names its
// file:line:col.
func C(t *trace.Trace, h Header) ([]byte, error) {
	for i := range t.Ops {
		if op := &t.Ops[i]; op.Kind.FreeBSDOnly() {
			return nil, fmt.Errorf("%s:%d:%d: %w: %s is FreeBSD's SO_SPLICE, which Linux has no call for",
				t.File, op.Pos.Line, op.Pos.Col, ErrUnsupported, op.Kind)
		}
	}
	prelude, body, ok := strings.Cut(runtimeC, tablesMark)
	if !ok {
		panic("repro: runtime.c has no " + tablesMark)
	}
	var b bytes.Buffer
	writeHeader(&b, t, h)
	b.WriteString(prelude)
	g := gen{t: t, b: &b}
	if err := g.tables(); err != nil {
		return nil, err
	}
	b.WriteString(body)
	return b.Bytes(), nil
}

// writeHeader writes the program's opening comment.
func writeHeader(b *bytes.Buffer, t *trace.Trace, h Header) {
	line := func(s string) {
		s = strings.ReplaceAll(s, "*/", "* /")
		if s == "" {
			b.WriteString(" *\n")
			return
		}
		b.WriteString(" * " + s + "\n")
	}
	b.WriteString("/*\n")
	line(fmt.Sprintf("Reproducer of %s, written by %s.", t.File, h.Generator))
	if h.Profile != "" {
		line("Kernel profile: " + h.Profile + ".")
	}
	line("")
	for _, n := range h.Notes {
		line(n)
	}
	if len(h.Notes) > 0 {
		line("")
	}
	line("Build: gcc -Wall -O2 -pthread -o repro repro.c   (add -static for a VM guest)")
	line("Run:   ./repro   as root: it works in a network namespace of its own and")
	line("       prints one `LINE: OP => RESULT` per op, as `splicecheck run --backend kernel`")
	line("       does, long data with its full SHA-256. SPLICECHECK_TIME_SCALE=K stretches")
	line("       every duration K times (a slow guest).")
	line("")
	line("The trace:")
	for i := range t.Ops {
		op := &t.Ops[i]
		line(fmt.Sprintf("  %d: %s", op.Pos.Line, op))
	}
	b.WriteString(" */\n")
}

// gen writes the tables of one trace.
type gen struct {
	t *trace.Trace
	b *bytes.Buffer
}

func (g *gen) printf(format string, args ...any) { fmt.Fprintf(g.b, format, args...) }

func index(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

func (g *gen) tables() error {
	t := g.t
	g.printf("#define NOPS %d\n#define NSOCKS %d\n#define NMAPS %d\n#define NTHREADS %d\n",
		len(t.Ops), max(len(t.SocketNames), 1), max(len(t.MapNames), 1), len(t.ThreadNames))
	usesPair := 0
	for i := range t.Ops {
		if op := &t.Ops[i]; op.Kind == trace.OpConn && op.Flags&trace.FlagPair != 0 {
			usesPair = 1
		}
	}
	g.printf("static const int uses_pair = %d;\n", usesPair)
	g.printf("static const char *const map_names[NMAPS] = {")
	for i, m := range t.MapNames {
		g.printf("%s%s", sep(i), cString(m))
	}
	if len(t.MapNames) == 0 {
		g.printf("\"\"")
	}
	g.printf("};\n")
	g.errnos()
	g.printRanges()
	if err := g.pairProg(usesPair == 1); err != nil {
		return err
	}

	mapTypes := map[string]trace.MapType{}
	var progs []string
	for i := range t.Ops {
		op := &t.Ops[i]
		switch op.Kind {
		case trace.OpMap:
			mapTypes[op.Map] = op.MapType
		case trace.OpSend:
			if op.Form != trace.DataPattern {
				g.printf("static const unsigned char data_%d[] = {%s};\n", i, cBytes(op.Data))
			}
		case trace.OpProg:
			p, err := g.prog(i, op, mapTypes[op.Map])
			if err != nil {
				return err
			}
			progs = append(progs, p)
		}
	}
	if len(progs) == 0 {
		progs = append(progs, "{0}")
	}
	g.printf("static const struct prog progs[] = {\n\t%s,\n};\n", strings.Join(progs, ",\n\t"))

	g.printf("static const struct op ops[NOPS] = {\n")
	nprog := 0
	for i := range t.Ops {
		op := &t.Ops[i]
		f := []string{
			".line = " + strconv.Itoa(op.Pos.Line),
			".text = " + cString(op.String()),
			".kind = " + kindNames[op.Kind],
			".thread = " + strconv.Itoa(index(t.ThreadNames, op.ThreadName())),
			".a = " + strconv.Itoa(index(t.SocketNames, op.A)),
			".b = " + strconv.Itoa(index(t.SocketNames, op.B)),
			".map = " + strconv.Itoa(index(t.MapNames, op.Map)),
			".key = " + strconv.FormatInt(op.Key, 10) + "LL",
			".size = " + strconv.FormatInt(op.Size, 10) + "LL",
		}
		if op.Flags != 0 {
			f = append(f, ".flags = "+flagsC(op.Flags))
		}
		switch op.Kind {
		case trace.OpMap:
			f = append(f, ".maptype = "+map[trace.MapType]string{trace.SockMap: "BPF_MAP_TYPE_SOCKMAP", trace.SockHash: "BPF_MAP_TYPE_SOCKHASH"}[op.MapType])
		case trace.OpProg:
			f = append(f, ".prog = "+strconv.Itoa(nprog))
			nprog++
		case trace.OpSend:
			if op.Form != trace.DataPattern {
				f = append(f, fmt.Sprintf(".data = data_%d", i), ".datalen = "+strconv.Itoa(len(op.Data)))
			}
		case trace.OpShutdown:
			f = append(f, ".how = "+map[trace.Shutdown]string{trace.ShutRD: "SHUT_RD", trace.ShutWR: "SHUT_WR", trace.ShutRDWR: "SHUT_RDWR"}[op.How])
		case trace.OpSet:
			o, ok := optNames[op.Opt]
			if !ok {
				return fmt.Errorf("%s:%d:%d: %w: option %v", t.File, op.Pos.Line, op.Pos.Col, ErrUnsupported, op.Opt)
			}
			f = append(f, ".opt = "+o)
		case trace.OpJoin:
			f = append(f, ".target = "+strconv.Itoa(index(t.ThreadNames, op.Target)))
		}
		g.printf("\t{ %s },\n", strings.Join(f, ", "))
	}
	g.printf("};\n")
	return nil
}

func sep(i int) string {
	if i == 0 {
		return ""
	}
	return ", "
}

var kindNames = map[trace.Kind]string{
	trace.OpConn: "K_CONN", trace.OpMap: "K_MAP", trace.OpProg: "K_PROG", trace.OpInsert: "K_INSERT",
	trace.OpDelete: "K_DELETE", trace.OpPair: "K_PAIR", trace.OpSend: "K_SEND", trace.OpRecv: "K_RECV",
	trace.OpSplice: "K_SPLICE", trace.OpPipe: "K_PIPE", trace.OpIOCopy: "K_IOCOPY",
	trace.OpFIONREAD: "K_FIONREAD", trace.OpPoll: "K_POLL", trace.OpState: "K_STATE",
	trace.OpShutdown: "K_SHUTDOWN", trace.OpClose: "K_CLOSE", trace.OpSet: "K_SET",
	trace.OpSleep: "K_SLEEP", trace.OpJoin: "K_JOIN", trace.OpErrqueue: "K_ERRQUEUE",
}

var optNames = map[trace.SockOpt]string{
	trace.OptRcvtimeo: "O_RCVTIMEO", trace.OptNonblock: "O_NONBLOCKOPT", trace.OptBusypoll: "O_BUSYPOLL",
	trace.OptRcvbuf: "O_RCVBUF", trace.OptSndbuf: "O_SNDBUF", trace.OptPipesize: "O_PIPESIZE",
	trace.OptRxcopybreak: "O_RXCOPYBREAK", trace.OptZerocopy: "O_ZEROCOPYOPT",
}

var flagNames = []struct {
	f    trace.Flags
	name string
}{
	{trace.FlagDontwait, "F_DONTWAIT"}, {trace.FlagPeek, "F_PEEK"}, {trace.FlagWaitall, "F_WAITALL"},
	{trace.FlagNonblock, "F_NONBLOCK"}, {trace.FlagRST, "F_RST"}, {trace.FlagPair, "F_PAIR"},
	{trace.FlagZerocopy, "F_ZEROCOPY"}, {trace.FlagReadwrite, "F_READWRITE"},
}

func flagsC(fl trace.Flags) string {
	var parts []string
	for _, f := range flagNames {
		if fl&f.f != 0 {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, " | ")
}

// errnos writes the errno names observations use (trace.ErrnoName).
func (g *gen) errnos() {
	g.printf("static const struct { int e; const char *name; } errno_names[] = {\n")
	n := 0
	for e := 1; e < 600; e++ {
		name := trace.ErrnoName(syscall.Errno(e))
		if name == "E"+strconv.Itoa(e) {
			continue
		}
		g.printf("%s{ %d, %q },", map[bool]string{true: "\t", false: " "}[n%6 == 0], e, name)
		if n++; n%6 == 0 {
			g.printf("\n")
		}
	}
	g.printf("\n};\n")
}

// printRanges writes the runes above U+007F that Go's strconv.Quote
// prints as they are (strconv.IsPrint), as ranges.
func (g *gen) printRanges() {
	g.printf("static const long print_ranges[][2] = {\n")
	n := 0
	for _, r := range printRanges() {
		g.printf("%s{ 0x%x, 0x%x },", map[bool]string{true: "\t", false: " "}[n%6 == 0], r[0], r[1])
		if n++; n%6 == 0 {
			g.printf("\n")
		}
	}
	g.printf("\n};\n")
}

func printRanges() [][2]rune {
	var out [][2]rune
	for r := rune(0x80); r <= 0x10ffff; r++ {
		if !strconv.IsPrint(r) {
			continue
		}
		if k := len(out); k > 0 && out[k-1][1] == r-1 {
			out[k-1][1] = r
		} else {
			out = append(out, [2]rune{r, r})
		}
	}
	return out
}

// Placeholders of the values the C program fills in at load time: a
// map's fd, the pairing program's two maps and its kfunc's BTF id.
const (
	holeMap        = 0x7fff_fffe
	holeRendezvous = 0x7fff_fffd
	holeResults    = 0x7fff_fffc
	holeKfunc      = 0x7fff_fffb
)

// prog writes the instruction arrays of prog op i and returns its entry of
// the progs table.
func (g *gen) prog(i int, op *trace.Op, mt trace.MapType) (string, error) {
	if mt == 0 {
		mt = trace.SockMap // a prog on a map no op made: it fails with EBADF first
	}
	verdict, parser := kernelshim.CannedPrograms(op.Prog, mt, holeMap)
	vname := fmt.Sprintf("prog_%d_verdict", i)
	vn, holes, err := g.insns(vname, verdict, map[int32]string{holeMap: "map"})
	if err != nil {
		return "", fmt.Errorf("%s:%d:%d: %w", g.t.File, op.Pos.Line, op.Pos.Col, err)
	}
	mapInsn := -1
	if len(holes) > 0 {
		mapInsn = holes[0].insn
	}
	typ, attach := "BPF_PROG_TYPE_SK_MSG", "BPF_SK_MSG_VERDICT"
	if op.Prog.Type == trace.SkSkb {
		typ, attach = "BPF_PROG_TYPE_SK_SKB", "BPF_SK_SKB_STREAM_VERDICT"
	}
	entry := fmt.Sprintf("{ %s, %s, %s, %d, %d", typ, attach, vname, vn, mapInsn)
	if parser != nil {
		pname := fmt.Sprintf("prog_%d_parser", i)
		pn, _, err := g.insns(pname, parser, nil)
		if err != nil {
			return "", fmt.Errorf("%s:%d:%d: %w", g.t.File, op.Pos.Line, op.Pos.Col, err)
		}
		entry += fmt.Sprintf(", %s, %d", pname, pn)
	}
	return entry + " }", nil
}

// pairProg writes the sock_ops programs of `conn A B pair` (the RFC's
// bpf_sock_splice_pair, the tcp_splice module's bpf_tcp_splice_pair; the
// program picks the kernel's) and where their holes are; for a trace that
// pairs nothing, an empty stand-in.
func (g *gen) pairProg(pairs bool) error {
	if !pairs {
		g.printf("static const struct pairprog pair_progs[2];\n")
		return nil
	}
	holes := map[int32]string{holeRendezvous: "HOLE_RENDEZVOUS", holeResults: "HOLE_RESULTS", holeKfunc: "HOLE_KFUNC"}
	var entries []string
	for _, p := range []struct {
		name  string
		insns asm.Instructions
	}{
		{"pair_rfc", kernelshim.RFCPairProgram(holeRendezvous, holeResults, holeKfunc)},
		{"pair_module", kernelshim.ModulePairProgram(holeResults, holeKfunc)},
	} {
		n, found, err := g.insns(p.name, p.insns, holes)
		if err != nil {
			return err
		}
		g.printf("static const struct hole %s_holes[] = {", p.name)
		for i, h := range found {
			g.printf("%s{ %d, %s }", sep(i), h.insn, h.what)
		}
		g.printf("};\n")
		entries = append(entries, fmt.Sprintf("{ %s, %d, %s_holes, %d }", p.name, n, p.name, len(found)))
	}
	g.printf("static const struct pairprog pair_progs[2] = { %s };\n", strings.Join(entries, ", "))
	return nil
}

// hole is an instruction whose imm the C program fills in.
type hole struct {
	insn int
	what string
}

// insns writes insns as a struct bpf_insn array; it returns the number of
// raw instructions and the ones whose imm is one of holes' placeholders
// (written as 0), in order.
func (g *gen) insns(name string, insns asm.Instructions, holes map[int32]string) (int, []hole, error) {
	var raw bytes.Buffer
	if err := insns.Marshal(&raw, binary.LittleEndian); err != nil {
		return 0, nil, fmt.Errorf("marshal %s: %w", name, err)
	}
	g.printf("static const struct bpf_insn %s[] = {\n", name)
	var found []hole
	b := raw.Bytes()
	for k := 0; k+8 <= len(b); k += 8 {
		code, regs := b[k], b[k+1]
		off := int16(binary.LittleEndian.Uint16(b[k+2:]))
		imm := int32(binary.LittleEndian.Uint32(b[k+4:]))
		if what, ok := holes[imm]; ok {
			found = append(found, hole{k / 8, what})
			imm = 0
		}
		g.printf("\t{ .code = 0x%02x, .dst_reg = %d, .src_reg = %d, .off = %d, .imm = %d },\n", code, regs&0xf, regs>>4, off, imm)
	}
	g.printf("};\n")
	return len(b) / 8, found, nil
}

// cString is s as a C string literal.
func cString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f && c != '?': // no trigraphs
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\%03o", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// cBytes is b as the body of a C byte array initializer (never empty).
func cBytes(b []byte) string {
	if len(b) == 0 {
		return "0"
	}
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = "0x" + strconv.FormatUint(uint64(c), 16)
	}
	return strings.Join(parts, ",")
}
