package linux

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/model/internal/mirrors"
	"github.com/splicecheck/splicecheck/trace"
)

// TestCoverageRegistry checks the registry against the source both ways:
// the generated table is the one the doc comments give (go generate
// ./model rewrites it), every mirrored function starts with its own reach
// call, through its kernel when one is at hand, and no other code calls
// reach.
func TestCoverageRegistry(t *testing.T) {
	fset := token.NewFileSet()
	fns, err := mirrors.Scan(fset, ".")
	if err != nil {
		t.Fatal(err)
	}
	want, err := mirrors.Table(fns)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("coverage_table.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("coverage_table.go is stale: run `go generate ./model/internal/linux`")
	}
	if len(fns) != int(numFn) {
		t.Fatalf("%d mirrored functions in the source, %d in the registry", len(fns), numFn)
	}
	first := map[string]bool{} // positions of the reach calls of mirrored functions
	for i, f := range fns {
		e := fnTable[i]
		if e.goName != f.Qual() || e.kernel != f.Kernel || e.file != f.File {
			t.Errorf("registry entry %d is %v, the source says %s mirrors %s() in %s", i, e, f.Qual(), f.Kernel, f.File)
		}
		pos := fset.Position(f.Decl.Pos())
		if arg := mirrors.ReachArg(f.Decl); arg != f.Const() {
			t.Errorf("%s: %s mirrors %s() but does not start with %s(%s) (got %q; mirrorgen -fix inserts it)",
				pos, f.Qual(), f.Kernel, mirrors.ReachExpr(f.Decl), f.Const(), arg)
			continue
		}
		call := f.Decl.Body.List[0].(*ast.ExprStmt).X.(*ast.CallExpr)
		first[fset.Position(call.Pos()).String()] = true
		if _, bare := call.Fun.(*ast.Ident); bare && mirrors.ReachExpr(f.Decl) != "reach" {
			t.Errorf("%s: %s records through the shared leaf set though a kernel is at hand: call %s(%s)",
				pos, f.Qual(), mirrors.ReachExpr(f.Decl), f.Const())
		}
	}
	// Vice versa: every reach call is the first statement of a mirrored
	// function.
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	all := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(all, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok && mirrors.IsReach(call.Fun) && !first[all.Position(call.Pos()).String()] {
				t.Errorf("%s: a reach call outside the first statement of a mirrored function", all.Position(call.Pos()))
			}
			return true
		})
	}
}

// TestCoverageScopes: every scope override names a registered function,
// and no function is reached outside its scope on the corpus of each
// profile.
func TestCoverageScopes(t *testing.T) {
	for name := range scopeByFn {
		if _, ok := LookupFn(name); !ok {
			t.Errorf("scopeByFn names %q, which is not a registered function", name)
		}
	}
	// The bridge's files (tcp_ext*.go) run only on an external transport,
	// the reference TCP's (tcp_ref*.go) only on itself (the netstack
	// backend's TestCoverageOnNetstack checks the other side).
	for f := range Fn(numFn) {
		e := fnTable[f]
		if strings.HasPrefix(e.file, "tcp_ext") && fnScope[f] != scopeExtTCP {
			t.Errorf("%s (%s) is not scoped to an external transport", e.goName, e.file)
		}
		if strings.HasPrefix(e.file, "tcp_ref") && fnScope[f] != scopeRefTCP {
			t.Errorf("%s (%s) is not scoped to the reference TCP", e.goName, e.file)
		}
	}
	traces, _ := corpus(t, "linux-6.18")
	for _, p := range []string{"linux-6.18", "linux-6.12", "linux-6.1", "linux-6.18+splice-copy", "linux-6.18+splice-zerocopy", "linux-6.18+loopback-splice", "linux-6.18+loopback-splice-seq"} {
		var cov Coverage
		for _, tr := range traces {
			_, st, err := runWithStats(New(), context.Background(), tr, trace.Options{Profile: p})
			if err != nil {
				continue
			}
			cov.Merge(&st.Coverage)
		}
		for _, f := range cov.OutOfScope() {
			t.Errorf("%s: %v was reached, but its scope says it cannot run there", p, f)
		}
		n, m := cov.Count()
		t.Logf("%s: corpus reaches %d/%d mirrored functions", p, n, m)
	}
}

// TestCoverageOfRun: a recv on a socket in a sockmap reaches
// tcp_bpf_recvmsg and not tcp_splice_read; the same recv without a
// sockmap reaches neither; the run's configuration decides what applies.
func TestCoverageOfRun(t *testing.T) {
	run := func(src, profile string) *Coverage {
		t.Helper()
		tr, err := trace.Parse("cov.trace", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		_, st, err := runWithStats(New(), context.Background(), tr, trace.Options{Profile: profile})
		if err != nil {
			t.Fatal(err)
		}
		return &st.Coverage
	}
	fn := func(name string) Fn {
		f, ok := LookupFn(name)
		if !ok {
			t.Fatalf("no registered function %s", name)
		}
		return f
	}
	recv, spliceRead := fn("tcpBpfRecvmsg"), fn("tcpSpliceRead")
	if recv.Kernel() != "tcp_bpf_recvmsg" || spliceRead.Kernel() != "tcp_splice_read" {
		t.Fatalf("kernel names: %s, %s", recv.Kernel(), spliceRead.Kernel())
	}

	mapped := run("conn a1 a2\nmap m sockmap 2\ninsert m 0 a2\nsend a1 100\nrecv a2 100\n", "linux-6.18")
	if !mapped.Reached(recv) {
		t.Errorf("a recv on a socket in a sockmap did not reach %v", recv)
	}
	if mapped.Reached(spliceRead) || !slices.Contains(mapped.Unreached(), spliceRead) {
		t.Errorf("a recv reached %v, or it is not listed unreached", spliceRead)
	}
	if mapped.Runs() != 1 || mapped.Partial() != 0 {
		t.Errorf("runs %d, partial %d: want one whole run", mapped.Runs(), mapped.Partial())
	}

	plain := run("conn a1 a2\nsend a1 100\nrecv a2 100\n", "linux-6.18")
	if plain.Reached(recv) || plain.Reached(fn("sockMapLink")) {
		t.Errorf("a recv without a sockmap reached tcp_bpf code")
	}
	if !plain.Reached(fn("tcpReadSock")) && !plain.Reached(fn("skSetOwnerR")) {
		t.Errorf("a plain TCP recv reached none of the TCP receive path")
	}

	// Scopes: tcp_bpf_ioctl is of 6.18 only; the loopback-splice RFC's
	// functions only of its profile.
	ioctl, ring := fn("tcpBpfIoctl"), fn("spliceRingWrite")
	if !mapped.Applies(ioctl) || mapped.Applies(ring) {
		t.Errorf("linux-6.18: tcp_bpf_ioctl applies %v, splice_ring_write applies %v", mapped.Applies(ioctl), mapped.Applies(ring))
	}
	old := run("conn a1 a2\nsend a1 1\nrecv a2 1\n", "linux-6.1")
	if old.Applies(ioctl) {
		t.Errorf("linux-6.1 has no tcp_bpf_ioctl, yet it applies")
	}
	var both Coverage
	both.Merge(mapped)
	both.Merge(plain)
	if both.Runs() != 2 || !both.Reached(recv) {
		t.Errorf("the union of two runs: %d runs, reached %v: %v", both.Runs(), recv, both.Reached(recv))
	}
	if n, m := both.Count(); n == 0 || n > m || m > int(numFn) {
		t.Errorf("count %d/%d of %d", n, m, numFn)
	}
}
