package linux

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

var dumpTrace = flag.String("dump", "", "run this trace file on the model and print its observations (debugging aid)")
var dumpProfile = flag.String("dump.profile", "", "profile for -dump")

// TestDump prints the model's observations of the -dump trace. It is a
// debugging aid and skips without the flag.
func TestDump(t *testing.T) {
	if *dumpTrace == "" {
		t.Skip("no -dump trace")
	}
	src, err := os.ReadFile(*dumpTrace)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trace.Parse(*dumpTrace, src)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := trace.Observe(context.Background(), New(), tr, trace.Options{Profile: *dumpProfile})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		fmt.Println(o.String())
	}
}
