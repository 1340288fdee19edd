package layout

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/splicecheck/splicecheck"

// External imports confined to one top-level folder (and its sub-packages).
var confined = map[string]string{
	"gvisor.dev/gvisor":        "netstack",
	"golang.org/x/sys/unix":    "kernelshim",
	"github.com/cilium/ebpf":   "kernelshim",
	"github.com/anishathalye/": "", // tests only, anywhere
	"pgregory.net/rapid":       "", // tests, and fuzz/
	"golang.org/x/sys":         "kernelshim",
}

// mayImport is DESIGN.md's table for non-test code: the project packages
// each top-level folder may import. internal/ is shared plumbing.
var mayImport = map[string][]string{
	"trace":      {},
	"ringbuf":    {},
	"model":      {"trace", "ringbuf"},
	"netstack":   {"model", "trace", "ringbuf"},
	"kernelshim": {"trace"},
	"fuzz":       {"trace", "model", "netstack", "ringbuf"},
	"cmd":        {"*"},
	"internal":   {"*"},
}

func root(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", dir, err)
	}
	return dir
}

type imp struct {
	file, path string
	test       bool
}

// imports lists every import of every Go file, by top-level folder.
func imports(t *testing.T, top string) map[string][]imp {
	out := map[string][]imp{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != top {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(top, p)
		folder := strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]
		for _, is := range f.Imports {
			path, _ := strconv.Unquote(is.Path.Value)
			out[folder] = append(out[folder], imp{rel, path, strings.HasSuffix(p, "_test.go")})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// violations checks every Go file under top against the rules.
func violations(t *testing.T, top string) []string {
	var out []string
	for folder, imps := range imports(t, top) {
		allowed, known := mayImport[folder]
		if !known {
			out = append(out, fmt.Sprintf("top-level folder %q has Go code but no import rule; add it to DESIGN.md and this test", folder))
			continue
		}
		for _, im := range imps {
			if owner, ok := confinedOwner(im.path); ok {
				switch {
				case owner == "" && (im.test || folder == "fuzz"):
				case owner != "" && owner == folder:
				default:
					out = append(out, fmt.Sprintf("%s imports %s, which only %s may import", im.file, im.path, ownerName(owner)))
				}
				continue
			}
			if !strings.HasPrefix(im.path, module+"/") || im.test {
				continue
			}
			dep := strings.SplitN(strings.TrimPrefix(im.path, module+"/"), "/", 2)[0]
			if dep == folder || dep == "internal" || contains(allowed, "*") || contains(allowed, dep) {
				continue
			}
			out = append(out, fmt.Sprintf("%s imports %s: %s/ may import only %v", im.file, im.path, folder, allowed))
		}
	}
	return out
}

func TestImportRules(t *testing.T) {
	for _, v := range violations(t, root(t)) {
		t.Error(v)
	}
}

// The rules must be able to fail: planted violations are each reported.
func TestImportRulesCatchViolations(t *testing.T) {
	dir := t.TempDir()
	plant := func(rel, src string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plant("trace/bad.go", "package trace\nimport _ \"gvisor.dev/gvisor/pkg/tcpip\"\n")
	plant("model/bad.go", "package model\nimport _ \"golang.org/x/sys/unix\"\n")
	plant("ringbuf/bad.go", "package ringbuf\nimport _ \""+module+"/model\"\n")
	plant("kernelshim/ok.go", "package kernelshim\nimport _ \"github.com/cilium/ebpf/asm\"\n")
	plant("trace/ok_test.go", "package trace\nimport _ \"pgregory.net/rapid\"\n")
	plant("model/bad2.go", "package model\nimport _ \"pgregory.net/rapid\"\n")
	got := violations(t, dir)
	if len(got) != 4 {
		t.Fatalf("want 4 violations, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func confinedOwner(path string) (string, bool) {
	best := ""
	for prefix := range confined {
		if (path == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(path, strings.TrimSuffix(prefix, "/")+"/") || strings.HasPrefix(path, prefix)) && len(prefix) > len(best) {
			best = prefix
		}
	}
	if best == "" {
		return "", false
	}
	return confined[best], true
}

func ownerName(owner string) string {
	if owner == "" {
		return "tests and fuzz/"
	}
	return owner + "/"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
