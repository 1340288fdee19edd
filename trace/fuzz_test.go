package trace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that the parser never panics, that every error is one
// FILE:LINE:COL line, and that every accepted trace round-trips through the
// printer. Seeds: the every-op trace and the committed corpora.
func FuzzParse(f *testing.F) {
	f.Add([]byte(everyOp))
	files, _ := filepath.Glob("../testdata/traces/*/*.trace")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		tr, err := Parse("f.trace", src)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "f.trace:") || strings.Contains(msg, "\n") {
				t.Fatalf("bad error form: %q", msg)
			}
			return
		}
		out := tr.Format()
		tr2, err := Parse("f.trace", []byte(out))
		if err != nil {
			t.Fatalf("printed trace does not parse: %v\n%s", err, out)
		}
		if !Equal(tr, tr2) {
			t.Fatalf("round trip changed the trace:\n%q\n%s", src, out)
		}
	})
}
