package vm

import (
	"context"
	"fmt"

	"github.com/splicecheck/splicecheck/kernelshim/repro"
	"github.com/splicecheck/splicecheck/trace"
)

// compileRepros writes the C reproducer of each trace at paths into dir
// and compiles it statically (the guest has no libc); it returns the
// binaries in order. A trace C cannot express is an error naming it.
func compileRepros(ctx context.Context, dir string, paths []string) ([]string, error) {
	bins := make([]string, len(paths))
	for i, p := range paths {
		t, err := trace.ParseFile(p)
		if err != nil {
			return nil, err
		}
		src, err := repro.C(t, repro.Header{Generator: "splicecheck vm --repro"})
		if err != nil {
			return nil, err
		}
		if bins[i], err = repro.Compile(ctx, src, dir, fmt.Sprintf("repro-%04d", i), true); err != nil {
			return nil, err
		}
	}
	return bins, nil
}
