package netstack

import (
	"bytes"
	"errors"
	"io"
	"syscall"
	"testing"
)

// TestTransfer: a connection carries bytes both ways, in order, and
// Peek does not consume them.
func TestTransfer(t *testing.T) {
	both(t, Options{}, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		a, b := e.dial(t)
		if a.State() != "ESTABLISHED" || b.State() != "ESTABLISHED" {
			t.Fatalf("states after Dial: %s, %s", a.State(), b.State())
		}
		data := pattern(200_000)
		errc := make(chan error, 1)
		go func() {
			_, err := a.WriteAll(ctx, data)
			errc <- err
		}()
		got := make([]byte, len(data))
		if _, err := b.ReadFull(ctx, got[:1000]); err != nil {
			t.Fatalf("ReadFull: %v", err)
		}
		peek := make([]byte, 10)
		n, err := b.Peek(peek)
		if err != nil || n != 10 || !bytes.Equal(peek, data[1000:1010]) {
			t.Fatalf("Peek = %d, %v, %x", n, err, peek[:n])
		}
		if _, err := b.ReadFull(ctx, got[1000:]); err != nil {
			t.Fatalf("ReadFull: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("WriteAll: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("received bytes differ from sent bytes")
		}
		// And back.
		if _, err := b.WriteAll(ctx, []byte("pong")); err != nil {
			t.Fatal(err)
		}
		back := make([]byte, 4)
		if _, err := a.ReadFull(ctx, back); err != nil || string(back) != "pong" {
			t.Fatalf("ReadFull back = %q, %v", back, err)
		}
		if _, err := a.Read(back); !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("Read on empty queue: %v, want EAGAIN", err)
		}
	})
}

// TestFIN: shutdown(wr) sends a FIN after the data: the peer reads the
// data, then EOF, and the states follow RFC 9293 through to TIME_WAIT.
func TestFIN(t *testing.T) {
	both(t, Options{}, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		a, b := e.dial(t)
		if _, err := a.WriteAll(ctx, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := a.Shutdown(ShutWr); err != nil {
			t.Fatal(err)
		}
		waitState(t, b, "CLOSE_WAIT")
		waitState(t, a, "FIN_WAIT2")
		if ev := b.Readiness(); ev&(EventIn|EventRdHup) != EventIn|EventRdHup {
			t.Errorf("peer readiness after FIN = %s, want IN and RDHUP", ev)
		}
		buf := make([]byte, 16)
		n, err := b.ReadFull(ctx, buf[:5])
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("ReadFull = %q, %v", buf[:n], err)
		}
		if n, err := b.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("Read after data = %d, %v; want 0, EOF", n, err)
		}
		if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
			t.Errorf("Write after shutdown(wr) = %v, want EPIPE", err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		waitState(t, a, "TIME_WAIT")
		if err := b.Close(); !errors.Is(err, syscall.EBADF) {
			t.Errorf("second Close = %v, want EBADF", err)
		}
		if _, err := b.Read(buf); !errors.Is(err, syscall.EBADF) {
			t.Errorf("Read after Close = %v, want EBADF", err)
		}
	})
}
