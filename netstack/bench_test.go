package netstack

import (
	"github.com/splicecheck/splicecheck/internal/testenv"

	"context"
	"testing"
	"time"
)

// streamSize is what one benchmark iteration moves through one
// connection (KERNEL-FACTS.md's figures are for streams of this order).
const streamSize = testenv.StreamSize

// benchStream moves streamSize bytes from a to b in 64 KiB writes and
// reports MB/s (10^6 bytes per second, as KERNEL-FACTS.md).
func benchStream(b *testing.B, newEnv func(testing.TB) *env) {
	e := newEnv(b)
	src, dst := e.dial(b)
	chunk := pattern(64 << 10)
	buf := make([]byte, 256<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.SetBytes(streamSize)
	b.ResetTimer()
	for b.Loop() {
		errc := make(chan error, 1)
		go func() {
			for sent := 0; sent < streamSize; sent += len(chunk) {
				if _, err := src.WriteAll(ctx, chunk); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for got := 0; got < streamSize; {
			n, err := dst.Read(buf)
			got += n
			if isEAGAIN(err) {
				if _, err := dst.Wait(ctx, eventIn|eventErr|eventHup|eventRdHup); err != nil {
					b.Fatal(err)
				}
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(streamSize)*float64(b.N)/secs/1e6, "MB/s")
	if e.th != nil {
		if d := e.a.NICDrops() + e.b.NICDrops(); d != 0 {
			b.Errorf("%d packets dropped silently by full channel endpoints", d)
		}
	}
}

// BenchmarkStream: 256 MiB through one connection of each topology.
func BenchmarkStream(b *testing.B) {
	b.Run("loopback", func(b *testing.B) {
		benchStream(b, func(tb testing.TB) *env { return newLoopbackEnv(tb, Options{}) })
	})
	b.Run("twohost-mtu1500", func(b *testing.B) {
		benchStream(b, func(tb testing.TB) *env { return newTwoHostEnv(tb, Options{}) })
	})
	b.Run("twohost-mtu65535", func(b *testing.B) {
		benchStream(b, func(tb testing.TB) *env { return newTwoHostEnv(tb, Options{MTU: 65535}) })
	})
}

// BenchmarkDial: one connection set up over each topology.
func BenchmarkDial(b *testing.B) {
	for _, tc := range []struct {
		name string
		mk   func(testing.TB) *env
	}{
		{"loopback", func(tb testing.TB) *env { return newLoopbackEnv(tb, Options{}) }},
		{"twohost", func(tb testing.TB) *env { return newTwoHostEnv(tb, Options{}) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := tc.mk(b)
			for b.Loop() {
				x, y := e.dial(b)
				x.Abort()
				y.Abort()
			}
		})
	}
}
