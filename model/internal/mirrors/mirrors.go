// Package mirrors finds the functions of the kernel mirror
// (model/internal/linux) that mirror kernel functions, by their doc
// comments. It is shared by mirrorgen, which writes the coverage registry
// (model/internal/linux/coverage_table.go), and by
// the test that checks the registry against the source, so that the two
// read the same rule.
//
// The rule: a function (or method) declaration is mirrored when its doc
// comment says it "mirrors" something, or cites a kernel function as
// "name() (path/file.c, vN.M)". Its kernel name is taken from the text
// after the first " mirrors ": the first C identifier followed by "(" in
// the clause up to ':' or '.', else the first one containing an
// underscore there, else the same two searches in the rest of the
// comment. So "mirrors the parts of tcp_ack() and ..." names tcp_ack,
// "mirrors the sk_err tcp_reset() sets" names tcp_reset, and "mirrors
// copy_to_iter / copy_page_to_iter: ..." names copy_to_iter. Without
// "mirrors", it is the first cited name.
package mirrors

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// Func is one mirrored function of the scanned package.
type Func struct {
	File   string // base name of its file
	Recv   string // receiver type name without '*', "" for a function
	Name   string // Go name
	Kernel string // the kernel function it mirrors
	Decl   *ast.FuncDecl
}

// Qual is the function's Go name qualified by its receiver type:
// "pipe.full", "tcpBpfRecvmsg" (methods of kernel are not qualified:
// kernel is the run, not a kernel object).
func (f Func) Qual() string {
	if f.Recv == "" || f.Recv == "kernel" {
		return f.Name
	}
	return f.Recv + "." + f.Name
}

// Const is the name of the function's registry constant: "fn" and the
// exported form of each part of Qual, e.g. fnPipeFull, fnTcpBpfRecvmsg.
func (f Func) Const() string {
	s := "fn"
	for _, part := range strings.Split(f.Qual(), ".") {
		s += upperFirst(part)
	}
	return s
}

func upperFirst(s string) string {
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

var (
	// cite is "name() (path/file.c, vN" anywhere in a doc comment.
	cite = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\(\) \([A-Za-z0-9_./-]+\.[ch], v[0-9]`)
	// word is a C identifier and what follows it.
	word = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*(\()?`)
)

// KernelName returns the kernel function a doc comment says its function
// mirrors (see the package documentation), and whether it says so.
func KernelName(doc string) (string, bool) {
	doc = strings.Join(strings.Fields(doc), " ")
	if _, after, ok := strings.Cut(" "+doc, " mirrors "); ok {
		clause := after
		if i := strings.IndexAny(clause, ":."); i >= 0 {
			clause = clause[:i]
		}
		for _, text := range []string{clause, after} {
			if w := cName(text, true); w != "" {
				return w, true
			}
			if w := cName(text, false); w != "" {
				return w, true
			}
		}
		return "", true // says it mirrors, but names nothing: an error for the caller
	}
	if m := cite.FindStringSubmatch(doc); m != nil {
		return m[1], true
	}
	return "", false
}

// cName returns the first word of text that is a C identifier followed
// by "(" (call) or, with call false, containing an underscore.
func cName(text string, call bool) string {
	for _, m := range word.FindAllStringSubmatchIndex(text, -1) {
		// Skip the tails of words like "driver's".
		if m[0] > 0 && !strings.ContainsAny(text[m[0]-1:m[0]], " (/") {
			continue
		}
		w := strings.TrimSuffix(text[m[0]:m[1]], "(")
		if (call && m[2] >= 0) || (!call && strings.Contains(w, "_")) {
			return w
		}
	}
	return ""
}

// Scan parses the non-test Go files of dir and returns its mirrored
// functions, ordered by file name and then position. A doc comment that
// says "mirrors" without naming a kernel function is an error.
func Scan(fset *token.FileSet, dir string) ([]Func, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Func
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Doc == nil || fd.Body == nil {
				continue
			}
			kname, ok := KernelName(fd.Doc.Text())
			if !ok {
				continue
			}
			if kname == "" {
				return nil, fmt.Errorf("%s: %s: doc says it mirrors, but names no kernel function", fset.Position(fd.Pos()), fd.Name.Name)
			}
			out = append(out, Func{File: filepath.Base(name), Recv: recvType(fd), Name: fd.Name.Name, Kernel: kname, Decl: fd})
		}
	}
	return out, nil
}

// recvType is the name of fd's receiver type, without '*'.
func recvType(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return ""
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// ReachArg returns the argument of fd's reach call, "" if fd does not
// start with one. A reach call is reach(fnX) or EXPR.reach(fnX).
func ReachArg(fd *ast.FuncDecl) string {
	if fd.Body == nil || len(fd.Body.List) == 0 {
		return ""
	}
	es, ok := fd.Body.List[0].(*ast.ExprStmt)
	if !ok {
		return ""
	}
	return reachCallArg(es.X)
}

// reachCallArg returns the argument of e if e is a reach call, "" if not.
func reachCallArg(e ast.Expr) string {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 || !IsReach(call.Fun) {
		return ""
	}
	if id, ok := call.Args[0].(*ast.Ident); ok {
		return id.Name
	}
	return "?"
}

// IsReach reports whether fun, the function of a call, is reach or a
// reach method.
func IsReach(fun ast.Expr) bool {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name == "reach"
	case *ast.SelectorExpr:
		return f.Sel.Name == "reach"
	}
	return false
}

// Table renders the registry of fns, model/internal/linux/coverage_table.go,
// as gofmt'ed Go source of package linux.
func Table(fns []Func) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by mirrorgen; DO NOT EDIT.\n\npackage linux\n\n")
	b.WriteString("// The mirrored functions, by file and position (see coverage.go).\nconst (\n")
	seen := map[string]bool{}
	for i, f := range fns {
		if seen[f.Const()] {
			return nil, fmt.Errorf("%s: two mirrored functions are %s", f.File, f.Const())
		}
		seen[f.Const()] = true
		if i == 0 {
			fmt.Fprintf(&b, "\t%s Fn = iota // %s\n", f.Const(), f.Kernel)
		} else {
			fmt.Fprintf(&b, "\t%s // %s\n", f.Const(), f.Kernel)
		}
	}
	b.WriteString("\n\tnumFn // the number of mirrored functions\n)\n\n")
	b.WriteString("// leafFns are the functions with no kernel at hand, which record\n// through the package-level reach.\nvar leafFns = [...]Fn{\n")
	for _, f := range fns {
		if ReachExpr(f.Decl) == "reach" {
			fmt.Fprintf(&b, "\t%s,\n", f.Const())
		}
	}
	b.WriteString("}\n\n")
	b.WriteString("var fnTable = [numFn]fnInfo{\n")
	for _, f := range fns {
		fmt.Fprintf(&b, "\t%s: {%q, %q, %q},\n", f.Const(), f.Qual(), f.Kernel, f.File)
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}

// ReachExpr is the function fd's reach call should call, the cheapest
// at hand: the run's kernel through the
// receiver or the first parameter that leads to it, else the package's
// kernel-less reach.
func ReachExpr(fd *ast.FuncDecl) string {
	var fields []*ast.Field
	if fd.Recv != nil {
		fields = append(fields, fd.Recv.List...)
	}
	fields = append(fields, fd.Type.Params.List...)
	for _, fl := range fields {
		star, ok := fl.Type.(*ast.StarExpr)
		if !ok || len(fl.Names) == 0 || fl.Names[0].Name == "_" {
			continue
		}
		id, ok := star.X.(*ast.Ident)
		if !ok {
			continue
		}
		v := fl.Names[0].Name
		switch id.Name {
		case "kernel":
			return v + ".reach"
		case "sock", "refTCP", "extTCP":
			return v + ".k.reach"
		case "psock":
			return v + ".Sk.k.reach"
		case "strparser":
			return v + ".sk.k.reach"
		}
	}
	return "reach"
}
