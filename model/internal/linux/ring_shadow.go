package linux

import "fmt"

// ringShadow is the simulator's copy of what a splice ring holds: the
// bytes written into it and not yet read, in order, with their tags. It
// is not kernel state: the reads check against it that a ring returns
// exactly the bytes written into it, in order (the ring-content
// property), whatever its cursors do, and take the bytes' tags from it.
// It holds at most the ring's capacity.
type ringShadow struct {
	q    []byte
	tags []Tag // nil unless the run keeps provenance
	done int64 // bytes read so far
}

// written appends what a ring write stored.
func (s *ringShadow) written(b []byte, tags []Tag) {
	s.q = append(s.q, b...)
	if tags != nil {
		s.tags = append(s.tags, tags...)
	}
}

// read checks that b is the oldest unread bytes written and consumes
// them. It returns the kind of a fault ("overread": more than was
// written; "corrupted") and what differs, or two empty strings, and the
// tags of the bytes the shadow held at those places (nil: none kept).
func (s *ringShadow) read(b []byte) (kind, msg string, tags []Tag) {
	at := s.done
	s.done += int64(len(b))
	n := min(len(b), len(s.q))
	if s.tags != nil {
		tags = append(make([]Tag, 0, len(b)), s.tags[:n]...)
		tags = append(tags, make([]Tag, len(b)-n)...)
	}
	switch {
	case len(b) > len(s.q):
		kind, msg = "overread", fmt.Sprintf("ring read of %d bytes at ring offset %d, but only %d were written and unread", len(b), at, len(s.q))
	default:
		for i := range b {
			if b[i] != s.q[i] {
				kind, msg = "corrupted", fmt.Sprintf("ring read of %d bytes at ring offset %d returned %#x at byte %d where %#x was written", len(b), at, b[i], i, s.q[i])
				break
			}
		}
	}
	s.q = append(s.q[:0], s.q[n:]...)
	if s.tags != nil {
		s.tags = append(s.tags[:0], s.tags[n:]...)
	}
	return kind, msg, tags
}

// ringFault is a ring read whose bytes are not the bytes written into
// the ring at that place (Stats.RingFaults).
type ringFault struct {
	Reader     string // the socket whose ring it is
	Kind, Site string // "overread" or "corrupted"; "ring", or "ring/concurrent-readers" when two reads overlapped
	Msg        string
}
