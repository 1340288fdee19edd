package netstack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pcapRecord is one parsed record of a capture.
type pcapRecord struct {
	sec, usec uint32
	data      []byte
}

// readPcap parses a little-endian, microsecond pcap stream of raw IPv4
// packets, independently of the writer.
func readPcap(t *testing.T, b []byte) []pcapRecord {
	t.Helper()
	if len(b) < 24 {
		t.Fatalf("capture of %d bytes has no file header", len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[0:]); m != 0xa1b2c3d4 {
		t.Fatalf("magic %#x", m)
	}
	if maj, min := le.Uint16(b[4:]), le.Uint16(b[6:]); maj != 2 || min != 4 {
		t.Fatalf("version %d.%d", maj, min)
	}
	snap := le.Uint32(b[16:])
	if lt := le.Uint32(b[20:]); lt != 101 {
		t.Fatalf("link type %d, want 101 (LINKTYPE_RAW)", lt)
	}
	var recs []pcapRecord
	for off := 24; off < len(b); {
		if len(b)-off < 16 {
			t.Fatalf("truncated record header at %d", off)
		}
		incl, orig := int(le.Uint32(b[off+8:])), int(le.Uint32(b[off+12:]))
		if incl > orig || uint32(incl) > snap || off+16+incl > len(b) {
			t.Fatalf("bad record at %d: incl %d orig %d", off, incl, orig)
		}
		recs = append(recs, pcapRecord{le.Uint32(b[off:]), le.Uint32(b[off+4:]), b[off+16 : off+16+incl]})
		off += 16 + incl
	}
	return recs
}

// sum16 is the RFC 1071 Internet checksum's one's-complement sum.
func sum16(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// checkPacket verifies that p is an IPv4 TCP packet with correct IP and
// TCP checksums and returns its flags byte and payload length.
func checkPacket(p []byte) (flags byte, payload int, err error) {
	if len(p) < 40 || p[0]>>4 != 4 {
		return 0, 0, fmt.Errorf("not IPv4: % x", p[:min(len(p), 20)])
	}
	ihl := int(p[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(p[2:]))
	if total != len(p) || p[9] != 6 {
		return 0, 0, fmt.Errorf("total length %d of %d, protocol %d", total, len(p), p[9])
	}
	if fold(sum16(p[:ihl], 0)) != 0xffff {
		return 0, 0, errors.New("bad IPv4 header checksum")
	}
	tcp := p[ihl:]
	pseudo := sum16(p[12:20], 0) + 6 + uint32(len(tcp))
	if fold(sum16(tcp, pseudo)) != 0xffff {
		return 0, 0, errors.New("bad TCP checksum")
	}
	doff := int(tcp[12]>>4) * 4
	return tcp[13], len(tcp) - doff, nil
}

// TestPcap: every segment of a run (handshake, data, FIN, RST) is in the
// capture, once, as a valid IPv4 TCP packet stamped with the manual
// clock; tcpdump reads it when it is installed.
func TestPcap(t *testing.T) {
	for _, name := range []string{"loopback", "twohost"} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			var e *env
			if name == "loopback" {
				e = newLoopbackEnv(t, Options{Pcap: &buf})
			} else {
				e = newTwoHostEnv(t, Options{Pcap: &buf})
			}
			ctx := testCtx(t)
			a, b := e.dial(t)
			data := pattern(100_000)
			go a.WriteAll(ctx, data)
			if _, err := b.ReadFull(ctx, make([]byte, len(data))); err != nil {
				t.Fatal(err)
			}
			if err := e.top.Advance(1500 * time.Microsecond); err != nil {
				t.Fatal(err)
			}
			a.Close()
			waitState(t, b, "CLOSE_WAIT")
			b.SetLinger(true, 0)
			b.Close() // a RST
			waitState(t, a, "CLOSE")
			var links uint64
			if e.th != nil {
				links = e.th.AtoB().Stats().Arrived + e.th.BtoA().Stats().Arrived
			}
			e.shutdown(t)

			recs := readPcap(t, buf.Bytes())
			var syn, fin, rst, payload int
			for i, r := range recs {
				flags, n, err := checkPacket(r.data)
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if r.sec != 0 || (r.usec != 0 && r.usec != 1500) {
					t.Fatalf("record %d stamped %d.%06d, want the manual clock's 0 or 0.001500", i, r.sec, r.usec)
				}
				syn += int(flags>>1) & 1
				fin += int(flags) & 1
				rst += int(flags>>2) & 1
				payload += n
			}
			if syn != 2 || fin != 1 || rst != 1 || payload != len(data) {
				t.Errorf("capture has %d SYN, %d FIN, %d RST, %d payload bytes; want 2, 1, 1, %d", syn, fin, rst, payload, len(data))
			}
			if e.th != nil && uint64(len(recs)) != links {
				t.Errorf("capture has %d records, the links carried %d segments", len(recs), links)
			}
			t.Logf("%d records, %d bytes", len(recs), buf.Len())

			tcpdump, err := exec.LookPath("tcpdump")
			if err != nil {
				t.Log("tcpdump -r not run: tcpdump is not installed (the capture was parsed back above)")
				return
			}
			path := filepath.Join(t.TempDir(), "run.pcap")
			if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			// -vv makes tcpdump verify the checksums ("incorrect" if bad).
			out, err := exec.Command(tcpdump, "-nn", "-vv", "-r", path).CombinedOutput()
			if err != nil {
				t.Fatalf("tcpdump -r: %v\n%s", err, out)
			}
			if n := bytes.Count(out, []byte(" IP ")); n != len(recs) {
				t.Errorf("tcpdump printed %d packets for %d records:\n%s", n, len(recs), out)
			}
			if bytes.Contains(out, []byte("incorrect")) {
				t.Errorf("tcpdump found bad checksums:\n%s", out)
			}
		})
	}
}

// failWriter accepts ok bytes, then fails.
type failWriter struct{ ok int }

var errDisk = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.ok {
		return 0, errDisk
	}
	w.ok -= len(p)
	return len(p), nil
}

// TestPcapWriteError: a capture that cannot write its file header fails
// the constructor; one that fails later stops capturing, the run goes
// on, and Wait reports it. Both errors match errCapture and the cause.
func TestPcapWriteError(t *testing.T) {
	if _, err := newTwoHost(Options{Pcap: &failWriter{}}); !errors.Is(err, errCapture) || !errors.Is(err, errDisk) {
		t.Fatalf("newTwoHost with a failing writer = %v", err)
	}
	th, err := newTwoHost(Options{Pcap: &failWriter{ok: 24 + 16 + 60}})
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := dial(testCtx(t), th.A(), th.B())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteAll(testCtx(t), []byte("still works")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadFull(testCtx(t), make([]byte, 11)); err != nil {
		t.Fatal(err)
	}
	th.Close()
	if err := th.Wait(); !errors.Is(err, errCapture) || !errors.Is(err, errDisk) {
		t.Fatalf("Wait = %v, want errCapture wrapping the write error", err)
	}
	var _ io.Writer = (*failWriter)(nil)
}
