package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// StreamSize is what one stream benchmark iteration moves, 256 MiB, and
// StreamChunk what each read of the TCP stream asks for: 16 reads, so
// that the kernel backend's settle after every op (up to a delayed ACK,
// 40 ms) costs little beside the transfer.
const (
	StreamSize  = 256 << 20
	StreamChunk = 16 << 20
)

// ringChunk is what a loopback-splice ring holds (SPLICE_RING_SIZE - 1).
const ringChunk = 16<<10 - 1

// StreamTrace is the trace the stream benchmarks of every backend run.
//
// TCP (pair false): a writer thread sends size bytes from a1 in one send,
// main reads them from a2 in chunk-byte MSG_WAITALL reads, then the
// writer closes and main reads the EOF.
//
// Ring (pair true): a1 and a2 are paired (a sockhash holds both; `pair a1
// a2`) and main sends and reads a ringful at a time, alternately. A ring
// read returns what the ring holds at once, MSG_WAITALL or not (the
// RFC's tcp_bpf_splice_recvmsg returns a ring read's bytes as soon as it
// has any, and the module's merge does too), so a reader of fixed-size
// chunks meets it only by keeping in step; each send then finds the ring
// empty and the peer's receive queue too, and takes the ring path.
func StreamTrace(tb testing.TB, size, chunk int, pair bool) *trace.Trace {
	tb.Helper()
	var b strings.Builder
	b.WriteString("conn a1 a2\n")
	if pair {
		b.WriteString("map mp sockhash 2\ninsert mp 0 a1\ninsert mp 1 a2\npair a1 a2\n")
		for sent := 0; sent < size; sent += ringChunk {
			n := min(ringChunk, size-sent)
			fmt.Fprintf(&b, "send a1 %d\nrecv a2 %d\n", n, n)
		}
		b.WriteString("close a1\nrecv a2 1\n")
	} else {
		fmt.Fprintf(&b, "@w send a1 %d\n", size)
		for got := 0; got < size; got += chunk {
			fmt.Fprintf(&b, "recv a2 %d waitall\n", min(chunk, size-got))
		}
		b.WriteString("join w\nclose a1\nrecv a2 1\n")
	}
	tr, err := trace.Parse("stream.trace", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return tr
}

// BenchStream runs tr (a StreamTrace) on be once per iteration, checks
// that its sends and its reads each moved StreamSize bytes, and reports
// MB/s.
func BenchStream(b *testing.B, be trace.Backend, tr *trace.Trace, opts trace.Options) {
	b.SetBytes(StreamSize)
	for b.Loop() {
		obs, err := trace.Observe(context.Background(), be, tr, opts)
		if err != nil {
			b.Fatal(err)
		}
		var sent, got int64
		for i, o := range obs {
			if o.Result.Err != 0 || o.Result.Word != "" {
				continue
			}
			switch tr.Ops[i].Kind {
			case trace.OpSend:
				sent += o.Result.N
			case trace.OpRecv:
				got += o.Result.N
			}
		}
		if sent != StreamSize || got != StreamSize {
			b.Fatalf("sent %d and read %d bytes of %d", sent, got, StreamSize)
		}
	}
}
