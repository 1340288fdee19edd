package netstack

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The pcap format (https://www.tcpdump.org/manpages/pcap-savefile.5.html):
// a 24-byte file header, then per packet a 16-byte record header and the
// captured bytes, all little endian here. Packets are raw IPv4, without a
// link-layer header (LINKTYPE_RAW), as the links of this package carry
// them.
const (
	pcapMagic       = 0xa1b2c3d4 // microsecond timestamps
	pcapVersionMaj  = 2
	pcapVersionMin  = 4
	pcapSnapLen     = 1 << 18 // larger than any segment (loopback MTU 65536)
	pcapLinkTypeRaw = 101
	pcapFileHdrLen  = 24
	pcapRecHdrLen   = 16
)

// capture writes every packet handed to record to w as a pcap stream,
// stamped with the topology's clock (so a run on the manual clock writes
// the same timestamps every time). Records are written whole and in the
// order record is called: record holds mu while writing.
//
// The first write error stops the capture (the run goes on) and is
// reported by err, wrapped in errCapture.
type capture struct {
	clock tcpip.Clock

	mu  sync.Mutex
	w   io.Writer
	err error
	buf []byte
}

// newCapture writes the pcap file header to w.
func newCapture(w io.Writer, clock tcpip.Clock) (*capture, error) {
	c := &capture{w: w, clock: clock}
	var h [pcapFileHdrLen]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:], pcapMagic)
	le.PutUint16(h[4:], pcapVersionMaj)
	le.PutUint16(h[6:], pcapVersionMin)
	// h[8:16]: thiszone and sigfigs, both 0 (UTC).
	le.PutUint32(h[16:], pcapSnapLen)
	le.PutUint32(h[20:], pcapLinkTypeRaw)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("%w: header: %w", errCapture, err)
	}
	return c, nil
}

// record appends pkt (network header onwards) to the capture. With
// fixSum, the IPv4 and TCP checksums are computed in the captured copy:
// a link with checksum offload (loopback) leaves them unset in the
// packet itself.
func (c *capture) record(pkt *stack.PacketBuffer, fixSum bool) {
	buf := pkt.ToBuffer()
	defer buf.Release()
	size := int(buf.Size())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	n := min(size, pcapSnapLen)
	if cap(c.buf) < pcapRecHdrLen+n {
		c.buf = make([]byte, pcapRecHdrLen+n)
	}
	b := c.buf[:pcapRecHdrLen+n]
	if _, err := buf.ReadAt(b[pcapRecHdrLen:], 0); err != nil && err != io.EOF {
		c.err = fmt.Errorf("%w: reading packet: %w", errCapture, err)
		return
	}
	if fixSum {
		fixChecksums(b[pcapRecHdrLen:])
	}
	ts := c.clock.Now()
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(ts.Unix()))
	le.PutUint32(b[4:], uint32(ts.Nanosecond()/int(time.Microsecond)))
	le.PutUint32(b[8:], uint32(n))
	le.PutUint32(b[12:], uint32(size))
	if _, err := c.w.Write(b); err != nil {
		c.err = fmt.Errorf("%w: %w", errCapture, err)
	}
}

// error returns the capture's first error, or nil.
func (c *capture) error() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fixChecksums computes the IPv4 header checksum and the TCP checksum of
// an unfragmented IPv4 TCP packet in place; anything else is left alone.
func fixChecksums(pkt []byte) {
	ip := header.IPv4(pkt)
	if !ip.IsValid(len(pkt)) {
		return
	}
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	if ip.TransportProtocol() != header.TCPProtocolNumber || ip.FragmentOffset() != 0 || ip.More() {
		return
	}
	tl := pkt[ip.HeaderLength():ip.TotalLength()]
	if len(tl) < header.TCPMinimumSize {
		return
	}
	t := header.TCP(tl)
	t.SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(tl)))
	t.SetChecksum(^checksum.Checksum(tl, xsum))
}

// captureEndpoint is a link endpoint that records every packet its stack
// sends, then passes it to the wrapped endpoint. Received packets are not
// recorded (the sender's captureEndpoint did), so each segment appears
// once in a topology's capture.
type captureEndpoint struct {
	nested.Endpoint
	c      *capture
	fixSum bool
}

var _ stack.LinkEndpoint = (*captureEndpoint)(nil)

func newCaptureEndpoint(child stack.LinkEndpoint, c *capture) *captureEndpoint {
	e := &captureEndpoint{
		c:      c,
		fixSum: child.Capabilities()&stack.CapabilityTXChecksumOffload != 0,
	}
	e.Endpoint.Init(child, e)
	return e
}

// WritePackets implements stack.LinkEndpoint.
func (e *captureEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		e.c.record(pkt, e.fixSum)
	}
	return e.Endpoint.WritePackets(pkts)
}
