package fuzz

import (
	"context"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"pgregory.net/rapid"
)

// FuzzModelProperties is the Go fuzz target of the campaign (go test
// -fuzz FuzzModelProperties ./fuzz): the fuzzer's bytes drive the trace
// generator, the model runs the trace on linux-6.18 with liveness checks,
// and every property must hold or fail with a known signature.
func FuzzModelProperties(f *testing.F) {
	m, err := model.NewWithConfig(model.Config{Liveness: true})
	if err != nil {
		f.Fatal(err)
	}
	gen := Trace(GenConfig{Threads: true})
	f.Fuzz(rapid.MakeFuzz(func(t *rapid.T) {
		tr := gen.Draw(t, "trace")
		tr.Profile = "linux-6.18"
		r := runOne(context.Background(), m, nil, tr)
		for _, p := range Properties {
			if v := p.Judge(r); v != nil {
				if _, known := MatchKnown(tr.Profile, v); !known {
					t.Fatalf("%v\n%s", v, tr.Format())
				}
			}
		}
	}))
}
