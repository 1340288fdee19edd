package model

import "fmt"

// ringShadow is the simulator's copy of what a splice ring holds: the
// bytes written into it and not yet read, in order. It is not kernel
// state: the reads check against it that a ring returns exactly the
// bytes written into it, in order (the ring-content property), whatever
// its cursors do. It holds at most the ring's capacity.
type ringShadow struct {
	q    []byte
	done int64 // bytes read so far
}

// written appends what a ring write stored.
func (s *ringShadow) written(b []byte) { s.q = append(s.q, b...) }

// read checks that b is the oldest unread bytes written and consumes
// them; it returns "" when it is, else the kind of the fault
// ("overread": more than was written; "corrupted") and what differs.
func (s *ringShadow) read(b []byte) (kind, msg string) {
	at := s.done
	s.done += int64(len(b))
	if len(b) > len(s.q) {
		msg := fmt.Sprintf("ring read of %d bytes at ring offset %d, but only %d were written and unread", len(b), at, len(s.q))
		s.q = s.q[:0]
		return "overread", msg
	}
	for i := range b {
		if b[i] != s.q[i] {
			s.q = s.q[len(b):]
			return "corrupted", fmt.Sprintf("ring read of %d bytes at ring offset %d returned %#x at byte %d where %#x was written", len(b), at, b[i], i, s.q[i])
		}
	}
	s.q = append(s.q[:0], s.q[len(b):]...)
	return "", ""
}

// RingFault is a ring read whose bytes are not the bytes written into
// the ring at that place (Stats.RingFaults).
type RingFault struct {
	Reader     string // the socket whose ring it is
	Kind, Site string // "overread" or "corrupted"; "ring", or "ring/concurrent-readers" when two reads overlapped
	Msg        string
}
