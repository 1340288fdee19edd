package linux

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports enforces DESIGN.md's rule for model/: non-test code imports
// only the standard library, trace and ringbuf.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/splicecheck/splicecheck/trace":   true,
		"github.com/splicecheck/splicecheck/ringbuf": true,
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, is := range af.Imports {
			path, _ := strconv.Unquote(is.Path.Value)
			first := strings.SplitN(path, "/", 2)[0]
			if !strings.Contains(first, ".") {
				continue // standard library
			}
			if !allowed[path] {
				t.Errorf("%s imports %s; model may import only the standard library, trace and ringbuf", f, path)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Go files checked")
	}
}
