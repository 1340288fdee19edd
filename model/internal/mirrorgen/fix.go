package main

import (
	"fmt"
	"go/format"
	"go/token"
	"os"
	"path/filepath"
	"sort"

	"github.com/splicecheck/splicecheck/model/internal/mirrors"
)

// fix inserts the reach call as the first statement of every mirrored
// function of dir that does not start with one.
func fix(fset *token.FileSet, dir string, fns []mirrors.Func) error {
	byFile := map[string][]mirrors.Func{}
	for _, f := range fns {
		if mirrors.ReachArg(f.Decl) == "" {
			byFile[f.File] = append(byFile[f.File], f)
		}
	}
	for file, fs := range byFile {
		name := filepath.Join(dir, file)
		src, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		// Insert from the end so that earlier offsets stay valid.
		sort.Slice(fs, func(i, j int) bool { return fs[i].Decl.Pos() > fs[j].Decl.Pos() })
		for _, f := range fs {
			off := fset.Position(f.Decl.Body.Lbrace).Offset + 1
			call := fmt.Sprintf("\n%s(%s);", mirrors.ReachExpr(f.Decl), f.Const())
			src = append(src[:off], append([]byte(call), src[off:]...)...)
		}
		if src, err = format.Source(src); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(name, src, 0o644); err != nil {
			return err
		}
	}
	return nil
}
