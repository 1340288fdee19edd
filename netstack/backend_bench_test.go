package netstack

import (
	"testing"

	"github.com/splicecheck/splicecheck/internal/testenv"
	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// BenchmarkBackendStream moves a 256 MiB stream through the model on
// gVisor (the netstack backend) per iteration and reports MB/s (10^6
// bytes per second): plain TCP (linux-6.18), and the loopback-splice
// ring path (the pair's bytes through the RFC's ring). BenchmarkRefStream
// is the same on the model's reference TCP; kernelshim.BenchmarkStream is
// the plain-TCP stream on the live kernel.
func BenchmarkBackendStream(b *testing.B) {
	benchStreams(b, func(b *testing.B) trace.Backend { return netstackBackend(b, TransportOptions{}) })
}

func BenchmarkRefStream(b *testing.B) {
	benchStreams(b, func(*testing.B) trace.Backend { return model.New() })
}

func benchStreams(b *testing.B, be func(*testing.B) trace.Backend) {
	for _, c := range []struct {
		name, profile string
		pair          bool
	}{{"tcp", "linux-6.18", false}, {"ring", "linux-6.18+loopback-splice", true}} {
		b.Run(c.name, func(b *testing.B) {
			tr := testenv.StreamTrace(b, testenv.StreamSize, testenv.StreamChunk, c.pair)
			testenv.BenchStream(b, be(b), tr, trace.Options{Profile: c.profile, OpTimeout: 1 << 40})
		})
	}
}
