package model_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// A trace run on the model: a connection, a send, and the peer's reads.
func Example() {
	tr, err := trace.Parse("hello.trace", []byte("conn a b\nsend a \"hello\"\nrecv b 10\nrecv b 10 dontwait\n"))
	if err != nil {
		panic(err)
	}
	obs, err := trace.Observe(context.Background(), model.New(), tr, trace.Options{Profile: "linux-6.18"})
	if err != nil {
		panic(err)
	}
	for _, o := range obs {
		fmt.Println(o)
	}
	// Output:
	// 1: conn a b => ok
	// 2: send a "hello" => 5
	// 3: recv b 10 => 5 "hello"
	// 4: recv b 10 dontwait => -EAGAIN
}

// TestImplements: the model implements its bases and patches, refuses a
// profile trace does not know, and one trace knows but the model lacks.
func TestImplements(t *testing.T) {
	for _, p := range []string{"linux-6.18", "linux-6.1", "linux-6.12+splice-copy", "loopback-splice-seq"} {
		if err := model.Implements(p); err != nil {
			t.Errorf("Implements(%q) = %v", p, err)
		}
	}
	if err := model.Implements("linux-2.6"); !errors.Is(err, trace.ErrUnknownProfile) {
		t.Errorf("Implements(linux-2.6) = %v, want ErrUnknownProfile", err)
	}
}

// TestStatsOnRequest: Run gives the run's account only when asked.
func TestStatsOnRequest(t *testing.T) {
	tr, err := trace.Parse("s.trace", []byte("conn a b\nsend a \"x\"\nrecv b 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []bool{false, true} {
		res, err := trace.Run(context.Background(), model.New(), tr, trace.Options{Stats: want})
		if err != nil {
			t.Fatal(err)
		}
		st, ok := res.Stats.(*model.Stats)
		if ok != want || (want && st == nil) {
			t.Errorf("Stats %v: got %T", want, res.Stats)
		}
	}
}
