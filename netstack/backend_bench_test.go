package netstack

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// streamTrace is a plain-TCP trace that moves size bytes from a1 to a2:
// a writer thread sends them in one send, main reads them back in
// chunk-byte MSG_WAITALL reads.
func streamTrace(tb testing.TB, size, chunk int) *trace.Trace {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "conn a1 a2\n@w send a1 %d\n", size)
	for got := 0; got < size; got += chunk {
		fmt.Fprintf(&b, "recv a2 %d waitall\n", min(chunk, size-got))
	}
	b.WriteString("join w\nclose a1\nrecv a2 1\n")
	tr, err := trace.Parse("stream.trace", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// BenchmarkBackendStream moves a 256 MiB plain-TCP stream through the
// model on gVisor (the netstack backend) per iteration and reports MB/s
// (10^6 bytes per second). BenchmarkRefStream is the same trace on the
// model's reference TCP.
func BenchmarkBackendStream(b *testing.B) {
	benchTraceStream(b, netstackBackend(b, TransportOptions{}))
}

func BenchmarkRefStream(b *testing.B) { benchTraceStream(b, model.New()) }

func benchTraceStream(b *testing.B, be trace.Backend) {
	tr := streamTrace(b, streamSize, 1<<20)
	opts := trace.Options{Profile: "linux-6.18", OpTimeout: 1 << 40}
	b.SetBytes(streamSize)
	b.ResetTimer()
	for b.Loop() {
		obs, err := trace.Run(context.Background(), be, tr, opts)
		if err != nil {
			b.Fatal(err)
		}
		if got := obs[1].Result.N; got != streamSize {
			b.Fatalf("send returned %v", obs[1].Result)
		}
	}
}
