package ringbuf

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/smallnest/ringbuffer"
)

// What a Go user would pick instead of the ring, for the comparisons of
// bench_test.go (streaming) and rrTransports (request/response, the RFC's
// TCP_RR): loopback TCP through net, a unix socketpair, os.Pipe, and
// github.com/smallnest/ringbuffer in blocking mode, beside io.Pipe and
// channels.

// connPair is a connected pair of stream sockets: loopback TCP or a unix
// socketpair.
func connPair(network string) (a, b net.Conn, err error) {
	if network == "unix" {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, nil, err
		}
		var conns [2]net.Conn
		for i, fd := range fds {
			f := os.NewFile(uintptr(fd), "socketpair")
			conns[i], err = net.FileConn(f)
			f.Close()
			if err != nil {
				if i == 1 {
					conns[0].Close()
				} else {
					syscall.Close(fds[1])
				}
				return nil, nil, err
			}
		}
		return conns[0], conns[1], nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	if b, err = ln.Accept(); err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil // Go sets TCP_NODELAY
}

// closingReader closes its resources once its reader fails (the stream's
// end), so that a streaming transport leaves no descriptor behind.
type closingReader struct {
	io.Reader
	close []io.Closer
}

func (c *closingReader) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	if err != nil {
		for _, x := range c.close {
			x.Close()
		}
		c.close = nil
	}
	return n, err
}

// socketStream is a streaming transport over a connPair.
func socketStream(network string) func(int) (io.WriteCloser, io.Reader) {
	return func(int) (io.WriteCloser, io.Reader) {
		a, b, err := connPair(network)
		if err != nil {
			panic(err)
		}
		return a, &closingReader{b, []io.Closer{b}}
	}
}

func init() {
	transports = append(transports,
		transport{"tcp", socketStream("tcp")},
		transport{"unix", socketStream("unix")},
		transport{"ospipe", func(int) (io.WriteCloser, io.Reader) {
			r, w, err := os.Pipe()
			if err != nil {
				panic(err)
			}
			return w, &closingReader{r, []io.Closer{r}}
		}},
		transport{"smallnest", func(int) (io.WriteCloser, io.Reader) {
			rb := ringbuffer.New(benchRing).SetBlocking(true)
			return rb.WriteCloser(), rb
		}},
	)
}

// ---- request/response ----

// duplex is one request/response channel: the client writes requests
// to cw and reads responses from cr; the server the other way round.
type duplex struct {
	cw, sw io.Writer
	cr, sr io.Reader
	close  func()
}

type rrTransport struct {
	name string
	make func() (duplex, error)
}

// spinWriter and spinReader busy-poll the ring, never parking: the
// ring's answer to busy-polling sockets.
type spinWriter struct{ r *Ring }

func (w spinWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := w.r.Write(p[n:])
		n += k
		if err != nil && !errors.Is(err, ErrFull) {
			return n, err
		}
	}
	return n, nil
}

type spinReader struct{ r *Ring }

func (rd spinReader) Read(p []byte) (int, error) {
	for {
		n, err := rd.r.Read(p)
		if n > 0 || err != nil && !errors.Is(err, ErrEmpty) {
			return n, err
		}
	}
}

// ringDuplex is a pair of rings, one each way.
func ringDuplex(spin bool) func() (duplex, error) {
	return func() (duplex, error) {
		req, err := New(benchRing)
		if err != nil {
			return duplex{}, err
		}
		resp, err := New(benchRing)
		if err != nil {
			return duplex{}, err
		}
		d := duplex{cw: req.Writer(), sr: req.Reader(), sw: resp.Writer(), cr: resp.Reader(),
			close: func() { req.CloseWrite(); resp.CloseWrite() }}
		if spin {
			d.cw, d.sr, d.sw, d.cr = spinWriter{req}, spinReader{req}, spinWriter{resp}, spinReader{resp}
		}
		return d, nil
	}
}

func socketDuplex(network string) func() (duplex, error) {
	return func() (duplex, error) {
		a, b, err := connPair(network)
		if err != nil {
			return duplex{}, err
		}
		return duplex{cw: a, cr: a, sw: b, sr: b, close: func() { a.Close(); b.Close() }}, nil
	}
}

var rrTransports = []rrTransport{
	{"ring", ringDuplex(false)},
	{"ring-spin", ringDuplex(true)},
	{"tcp", socketDuplex("tcp")},
	{"unix", socketDuplex("unix")},
	{"ospipe", func() (duplex, error) {
		r1, w1, err := os.Pipe()
		if err != nil {
			return duplex{}, err
		}
		r2, w2, err := os.Pipe()
		if err != nil {
			r1.Close()
			w1.Close()
			return duplex{}, err
		}
		return duplex{cw: w1, sr: r1, sw: w2, cr: r2, close: func() { w1.Close(); w2.Close(); r1.Close(); r2.Close() }}, nil
	}},
	{"iopipe", func() (duplex, error) {
		r1, w1 := io.Pipe()
		r2, w2 := io.Pipe()
		return duplex{cw: w1, sr: r1, sw: w2, cr: r2, close: func() { w1.Close(); w2.Close() }}, nil
	}},
	{"chan", func() (duplex, error) {
		a, _ := newChanPipe(max(benchRing/1024, 1))
		b, _ := newChanPipe(max(benchRing/1024, 1))
		return duplex{cw: a, sr: a, sw: b, cr: b, close: func() { a.Close(); b.Close() }}, nil
	}},
	{"smallnest", func() (duplex, error) {
		a := ringbuffer.New(benchRing).SetBlocking(true)
		b := ringbuffer.New(benchRing).SetBlocking(true)
		return duplex{cw: a, sr: a, sw: b, cr: b, close: func() { a.CloseWriter(); b.CloseWriter() }}, nil
	}},
}

// rrSizes are the RFC's TCP_RR message sizes.
var rrSizes = []struct {
	name string
	n    int
}{{"1B", 1}, {"64B", 64}, {"1KiB", 1 << 10}, {"16KiB", 16 << 10}, {"64KiB", 64 << 10}}

// rr runs count transactions of n bytes each way between the calling
// goroutine (the client) and a server goroutine that echoes each
// request, and returns the time they took; it checks every response.
func rr(tr rrTransport, n, count int) (time.Duration, error) {
	d, err := tr.make()
	if err != nil {
		return 0, err
	}
	closed := false
	defer func() {
		if !closed {
			d.close()
		}
	}()
	served := make(chan error, 1)
	go func() {
		buf := make([]byte, n)
		for {
			if _, err := io.ReadFull(d.sr, buf); err != nil {
				served <- nil
				return
			}
			if _, err := d.sw.Write(buf); err != nil {
				served <- err
				return
			}
		}
	}()
	req, resp := make([]byte, n), make([]byte, n)
	start := time.Now()
	for i := range count {
		req[0] = byte(i)
		if _, err := d.cw.Write(req); err != nil {
			return 0, fmt.Errorf("%s: request %d: %w", tr.name, i, err)
		}
		if _, err := io.ReadFull(d.cr, resp); err != nil {
			return 0, fmt.Errorf("%s: response %d: %w", tr.name, i, err)
		}
		if resp[0] != byte(i) {
			return 0, fmt.Errorf("%s: response %d echoes request %d", tr.name, i, resp[0])
		}
	}
	el := time.Since(start)
	closed = true
	d.close() // the server's next read fails: it returns
	if err := <-served; err != nil {
		return 0, fmt.Errorf("%s: server: %w", tr.name, err)
	}
	return el, nil
}

// BenchmarkRR is the RFC's TCP_RR between two goroutines over every
// rrTransport: transactions per second at each message size.
func BenchmarkRR(b *testing.B) {
	for _, s := range rrSizes {
		for _, tr := range rrTransports {
			b.Run(tr.name+"/"+s.name, func(b *testing.B) {
				b.SetBytes(int64(2 * s.n))
				d, err := rr(tr, s.n, b.N)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/d.Seconds(), "trans/s")
			})
		}
	}
}
