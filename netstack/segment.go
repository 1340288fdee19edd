package netstack

import (
	"fmt"
	"net/netip"
	"strings"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// flags are the TCP header flags of a segment (the header's bit values).
type flags uint8

// The TCP flags (RFC 9293 3.1).
const (
	flagFIN flags = 1 << iota
	flagSYN
	flagRST
	flagPSH
	flagACK
	flagURG
)

var flagNames = []struct {
	f    flags
	name string
}{
	{flagSYN, "S"}, {flagFIN, "F"}, {flagRST, "R"}, {flagPSH, "P"}, {flagURG, "U"}, {flagACK, "."},
}

// String renders the flags as tcpdump does ("S", "S.", "P.", "F.", "R").
func (f flags) String() string {
	var b strings.Builder
	for _, n := range flagNames {
		if f&n.f != 0 {
			b.WriteString(n.name)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// segment describes one IPv4 TCP segment on a link: its header fields
// and payload length. Payload holds a copy of the payload only where a
// method says so (link.Held, link.Observe); it is never shared with the
// stack.
type segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    flags
	Window   uint16
	Len      int // payload bytes
	Payload  []byte
}

// String renders the segment in tcpdump's style.
func (s segment) String() string {
	return fmt.Sprintf("%s > %s [%s] seq %d ack %d win %d len %d", s.Src, s.Dst, s.Flags, s.Seq, s.Ack, s.Window, s.Len)
}

// parseSegment decodes an IPv4 packet holding a TCP segment from b, a
// prefix of the packet at least as long as its headers; size is the
// whole packet's length. With withPayload, b must be the whole packet
// and the payload is copied. ok is false for anything but an
// unfragmented IPv4 TCP segment (which the links still carry, unparsed).
func parseSegment(b []byte, size int, withPayload bool) (seg segment, ok bool) {
	if len(b) < header.IPv4MinimumSize {
		return segment{}, false
	}
	ip := header.IPv4(b)
	hl, total := int(ip.HeaderLength()), int(ip.TotalLength())
	if header.IPVersion(b) != header.IPv4Version || hl < header.IPv4MinimumSize || total > size || total < hl || hl > len(b) ||
		ip.TransportProtocol() != header.TCPProtocolNumber || ip.FragmentOffset() != 0 || ip.More() {
		return segment{}, false
	}
	tl := b[hl:]
	if len(tl) < header.TCPMinimumSize {
		return segment{}, false
	}
	t := header.TCP(tl)
	off := int(t.DataOffset())
	if off < header.TCPMinimumSize || off > len(tl) || hl+off > total {
		return segment{}, false
	}
	src, _ := netip.AddrFromSlice(ip.SourceAddressSlice())
	dst, _ := netip.AddrFromSlice(ip.DestinationAddressSlice())
	seg = segment{
		Src:    netip.AddrPortFrom(src, t.SourcePort()),
		Dst:    netip.AddrPortFrom(dst, t.DestinationPort()),
		Seq:    t.SequenceNumber(),
		Ack:    t.AckNumber(),
		Flags:  flags(t.Flags()),
		Window: t.WindowSize(),
		Len:    total - hl - off,
	}
	if withPayload {
		if total > len(b) {
			return segment{}, false
		}
		seg.Payload = append([]byte{}, b[hl+off:total]...)
	}
	return seg, true
}
