package ringbuf

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// refRing is the reference the state machine compares the Ring with: a
// plain FIFO of bytes plus the four cursors, updated by the rules the
// Ring documents (when each side refreshes its cache), written as
// directly as possible and without any of the Ring's arithmetic tricks.
type refRing struct {
	size, cap              uint64
	q                      []byte // the bytes in the ring, oldest first
	head, tail             uint64
	cachedTail, cachedHead uint64
	closedW, closedR       bool
}

func newRef(size, start uint64) *refRing {
	return &refRing{size: size, cap: size - 1, head: start, tail: start, cachedTail: start, cachedHead: start}
}

func (m *refRing) free() uint64 { return m.cap - uint64(len(m.q)) }

// cachedSpace is what the producer believes is free.
func (m *refRing) cachedSpace() uint64 { return m.cap - (m.head - m.cachedTail) }

// cachedCount is what the consumer believes is readable.
func (m *refRing) cachedCount() uint64 { return m.cachedHead - m.tail }

func (m *refRing) push(p []byte) {
	m.q = append(m.q, p...)
	m.head += uint64(len(p))
}

func (m *refRing) pop(n uint64) []byte {
	out := append([]byte(nil), m.q[:n]...)
	m.q = m.q[n:]
	m.tail += n
	return out
}

// writable returns how many of want bytes the producer may store: it
// refreshes its cache when the cache shows less than want.
func (m *refRing) writable(want uint64) uint64 {
	if m.cachedSpace() < want {
		m.cachedTail = m.tail
	}
	return min(want, m.cachedSpace())
}

func (m *refRing) write(p []byte) (int, error) {
	if m.closedW || m.closedR {
		return 0, ErrClosed
	}
	n := m.writable(uint64(len(p)))
	m.push(p[:n])
	if n < uint64(len(p)) {
		return int(n), ErrFull
	}
	return int(n), nil
}

// readable returns how many bytes the consumer may take, refreshing its
// cache only when the cache shows none; err says why there are none.
func (m *refRing) readable() (uint64, error) {
	if m.cachedCount() == 0 {
		m.cachedHead = m.head
	}
	if c := m.cachedCount(); c > 0 {
		return c, nil
	}
	if m.closedW {
		return 0, io.EOF
	}
	return 0, ErrEmpty
}

func (m *refRing) read(k int) ([]byte, error) {
	if m.closedR {
		return nil, ErrClosed
	}
	if k == 0 {
		return nil, nil
	}
	c, err := m.readable()
	if c == 0 {
		return nil, err
	}
	return m.pop(min(uint64(k), c)), nil
}

func (m *refRing) space() int {
	if m.cachedSpace() == 0 {
		m.cachedTail = m.tail
	}
	return int(m.cachedSpace())
}

func (m *refRing) len() int {
	if m.cachedCount() == 0 {
		m.cachedHead = m.head
	}
	return int(m.cachedCount())
}

// script drives a scriptedIO: limits[i] caps the bytes the i-th call
// moves, errs[i] is the error it returns (nil, io.EOF or errScript).
type script struct {
	limits []int
	errs   []error
}

var errScript = errors.New("scripted I/O error")

func (s script) String() string {
	var b strings.Builder
	for i := range s.limits {
		fmt.Fprintf(&b, "[call %d: up to %d bytes, err %s]", i, s.limits[i], errText(s.errs[i]))
	}
	return b.String()
}

// scriptedIO is an io.Reader and io.Writer that follows a script and
// records what passed through it; src supplies the bytes it reads out.
type scriptedIO struct {
	s    script
	call int
	src  []byte
	got  []byte
}

func (s *scriptedIO) next(n int) (int, error) {
	i := s.call
	s.call++
	if i >= len(s.s.limits) {
		return n, nil
	}
	return min(n, s.s.limits[i]), s.s.errs[i]
}

func (s *scriptedIO) Read(p []byte) (int, error) {
	n, err := s.next(len(p))
	n = min(n, len(s.src))
	copy(p, s.src[:n])
	s.src = s.src[n:]
	return n, err
}

func (s *scriptedIO) Write(p []byte) (int, error) {
	n, err := s.next(len(p))
	s.got = append(s.got, p[:n]...)
	if n < len(p) && err == nil {
		// A short write with no error: the ring must report
		// io.ErrShortWrite itself.
		return n, nil
	}
	return n, err
}

// refTransfer applies the two-part rule of splice_ring_write/read to a
// scripted endpoint: the first call moves up to the end of the buffer;
// only if it moved all of that, more is wanted and it returned no error is
// a second call made from the start of the buffer. It returns the bytes
// moved and the error the Ring must report (for a writer, a short count
// without an error becomes io.ErrShortWrite).
func refTransfer(s script, off, want, size uint64, writer bool) (uint64, error) {
	e := &scriptedIO{s: s}
	call := func(n uint64) (uint64, error) {
		k, err := e.next(int(n))
		if writer && err == nil && uint64(k) < n {
			err = io.ErrShortWrite
		}
		return uint64(k), err
	}
	first := min(want, size-off)
	done, err := call(first)
	if done == first && first < want && err == nil {
		var more uint64
		more, err = call(want - first)
		done += more
	}
	return done, err
}

// defaultRapidSteps raises rapid's average state-machine length (30) to
// n unless -rapid.steps was given: a ring needs a few hundred steps to
// wrap a few times.
func defaultRapidSteps(n int) {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "rapid.steps" })
	if !given {
		flag.Set("rapid.steps", strconv.Itoa(n))
	}
}

// pattern is the byte at stream offset i of every test stream.
func pattern(i uint64) byte { return byte(i ^ i>>8 ^ i>>16 ^ 0x5a) }

func patternBytes(from uint64, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = pattern(from + uint64(i))
	}
	return p
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestRapidStateMachine runs random sequences of every Ring operation on
// one goroutine against refRing, and after each step compares the
// results, the four cursors and the invariants. Sizes run from 2 bytes to
// 1 MiB, with the cursors starting anywhere, near their 2^64 wrap too.
func TestRapidStateMachine(t *testing.T) {
	defaultRapidSteps(200)
	rapid.Check(t, func(t *rapid.T) {
		size := uint64(1) << rapid.IntRange(1, 20).Draw(t, "log2size")
		var start uint64
		switch rapid.IntRange(0, 2).Draw(t, "startKind") {
		case 0:
			start = rapid.Uint64Range(0, 2*size).Draw(t, "start")
		case 1:
			start = -rapid.Uint64Range(1, 2*size).Draw(t, "startBeforeWrap")
		default:
			start = rapid.Uint64().Draw(t, "startAny")
		}
		r, err := newAt(int(size), start, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := newRef(size, start)
		var written uint64 // stream offset of the next byte the producer offers
		var read uint64    // stream offset of the next byte the consumer expects

		// Lengths: mostly around the ring size, sometimes tiny.
		length := func(t *rapid.T, label string) int {
			limit := int(min(2*size, 1<<17))
			if rapid.IntRange(0, 3).Draw(t, label+"Kind") == 0 {
				return rapid.IntRange(0, min(limit, 8)).Draw(t, label)
			}
			return rapid.IntRange(0, limit).Draw(t, label)
		}
		checkRead := func(t *rapid.T, got []byte) {
			if want := patternBytes(read, len(got)); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes at stream offset %d: not the bytes written there", len(got), read)
			}
			read += uint64(len(got))
		}
		scriptGen := func(t *rapid.T, label string) script {
			k := rapid.IntRange(0, 2).Draw(t, label+"Calls")
			var s script
			for i := range k {
				s.limits = append(s.limits, rapid.IntRange(0, int(size)).Draw(t, fmt.Sprintf("%sLimit%d", label, i)))
				s.errs = append(s.errs, rapid.SampledFrom([]error{nil, nil, io.EOF, errScript}).Draw(t, fmt.Sprintf("%sErr%d", label, i)))
			}
			return s
		}

		t.Repeat(map[string]func(*rapid.T){
			"Write": func(t *rapid.T) {
				p := patternBytes(written, length(t, "n"))
				n, err := r.Write(p)
				wn, werr := m.write(p)
				if n != wn || !errors.Is(err, werr) {
					t.Fatalf("Write(%d bytes) = %d, %v; reference %d, %v", len(p), n, errText(err), wn, errText(werr))
				}
				written += uint64(n)
			},
			"Read": func(t *rapid.T) {
				k := length(t, "n")
				p := make([]byte, k)
				n, err := r.Read(p)
				want, werr := m.read(k)
				if n != len(want) || !errors.Is(err, werr) || !bytes.Equal(p[:n], want) {
					t.Fatalf("Read(%d) = %d, %v; reference %d, %v", k, n, errText(err), len(want), errText(werr))
				}
				checkRead(t, p[:n])
			},
			"Space": func(t *rapid.T) {
				if got, want := r.Space(), m.space(); got != want {
					t.Fatalf("Space() = %d, reference %d", got, want)
				}
			},
			"Len": func(t *rapid.T) {
				if got, want := r.Len(), m.len(); got != want {
					t.Fatalf("Len() = %d, reference %d", got, want)
				}
			},
			"Buffered": func(t *rapid.T) {
				if got, want := r.Buffered(), len(m.q); got != want {
					t.Fatalf("Buffered() = %d, reference %d", got, want)
				}
				if got, want := r.HasData(), len(m.q) > 0; got != want {
					t.Fatalf("HasData() = %v, reference %v", got, want)
				}
			},
			"WriteFrom": func(t *rapid.T) {
				max := length(t, "max")
				s := scriptGen(t, "src")
				src := &scriptedIO{s: s, src: patternBytes(written, max)}
				n, err := r.WriteFrom(src, max)
				var wn uint64
				var werr error
				switch {
				case m.closedW || m.closedR:
					werr = ErrClosed
				case max == 0:
				default:
					if want := m.writable(uint64(max)); want == 0 {
						werr = ErrFull
					} else {
						wn, werr = refTransfer(s, m.head&(size-1), want, size, false)
						m.push(patternBytes(written, int(wn)))
					}
				}
				if uint64(n) != wn || !errors.Is(err, werr) {
					t.Fatalf("WriteFrom(max %d, script %v) = %d, %v; reference %d, %v", max, s, n, errText(err), wn, errText(werr))
				}
				written += uint64(n)
			},
			"ReadTo": func(t *rapid.T) {
				max := length(t, "max")
				s := scriptGen(t, "dst")
				dst := &scriptedIO{s: s}
				n, err := r.ReadTo(dst, max)
				var wn uint64
				var werr error
				switch {
				case m.closedR:
					werr = ErrClosed
				case max == 0:
				default:
					c, cerr := m.readable()
					if c == 0 {
						werr = cerr
						break
					}
					wn, werr = refTransfer(s, m.tail&(size-1), min(uint64(max), c), size, true)
					if got := m.pop(wn); !bytes.Equal(got, dst.got) {
						t.Fatalf("ReadTo handed dst %d bytes that differ from the reference's %d", len(dst.got), len(got))
					}
				}
				if uint64(n) != wn || !errors.Is(err, werr) || n != len(dst.got) {
					t.Fatalf("ReadTo(max %d, script %v) = %d, %v (dst got %d); reference %d, %v", max, s, n, errText(err), len(dst.got), wn, errText(werr))
				}
				checkRead(t, dst.got)
			},
			"CloseWrite": func(t *rapid.T) {
				if rapid.IntRange(0, 20).Draw(t, "reallyCloseWrite") != 0 {
					t.Skip("close rarely")
				}
				r.CloseWrite()
				m.closedW = true
			},
			"CloseRead": func(t *rapid.T) {
				if rapid.IntRange(0, 40).Draw(t, "reallyCloseRead") != 0 {
					t.Skip("close rarely")
				}
				r.CloseRead()
				m.closedR = true
			},
			"": func(t *rapid.T) {
				c := r.Cursors()
				want := Cursors{Head: m.head, Tail: m.tail, CachedTail: m.cachedTail, CachedHead: m.cachedHead}
				if c != want {
					t.Fatalf("cursors %+v, reference %+v", c, want)
				}
				if err := r.CheckInvariants(); err != nil {
					t.Fatal(err)
				}
				if written-read != uint64(len(m.q)) {
					t.Fatalf("%d bytes written, %d read, but the reference holds %d", written, read, len(m.q))
				}
			},
		})
	})
}
