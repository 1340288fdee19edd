package trace

// Streams is the stream bookkeeping of one run, the way every runner
// numbers pattern bytes: a socket's stream offset is the bytes its
// completed sends were accepted with (and an iocopy wrote into it), in
// trace order. It is computed from the trace and its observations only.
type Streams struct {
	// Sent is each socket's stream as its sends were accepted: the first
	// n bytes of each send that returned n. Bytes written into a socket
	// by iocopy are not known (Opaque) and are not in it.
	Sent map[string][]byte
	// Off is, for each op, the stream offset of its socket A before it
	// (for a send: where its bytes start).
	Off []int64
	// Opaque marks the sockets whose stream is not known byte for byte:
	// an iocopy wrote into them, their sends ran in more than one thread
	// (their order is the kernel's, not the trace's), or the runner cut
	// a send short (how much it moved is unknown).
	Opaque map[string]bool
}

// StreamsOf computes the streams of a run of t that observed obs (one
// observation per op).
func StreamsOf(t *Trace, obs []Observation) *Streams {
	s := &Streams{Sent: map[string][]byte{}, Off: make([]int64, len(t.Ops)), Opaque: map[string]bool{}}
	off := map[string]int64{}
	thread := map[string]string{}
	for i := range t.Ops {
		op := &t.Ops[i]
		s.Off[i] = off[op.A]
		if i >= len(obs) {
			break
		}
		res := obs[i].Result
		switch op.Kind {
		case OpSend:
			if th, ok := thread[op.A]; ok && th != op.ThreadName() {
				s.Opaque[op.A] = true
			}
			thread[op.A] = op.ThreadName()
			if res.Note != "" {
				s.Opaque[op.A] = true
			}
			if res.N <= 0 || res.Err != 0 && res.N == NoCount {
				continue
			}
			data := op.Data
			if op.Form == DataPattern {
				data = Pattern(off[op.A], min(op.Size, res.N))
			}
			n := min(int(res.N), len(data))
			s.Sent[op.A] = append(s.Sent[op.A], data[:n]...)
			off[op.A] += res.N
		case OpIOCopy:
			s.Opaque[op.B] = true
			if res.N > 0 {
				off[op.B] += res.N
			}
		}
	}
	return s
}
