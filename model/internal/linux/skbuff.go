package linux

// maxSkbFrags is MAX_SKB_FRAGS (17 on 4 KiB pages).
const maxSkbFrags = 17

// skbFrag mirrors skb_frag_t (include/linux/skbuff.h, v6.18): a range of a
// page.
type skbFrag struct {
	Page *page
	Off  int
	Size int
}

// TCPHDR_FIN and friends: the TCP flags an skb carries (TCP_SKB_CB(skb)->tcp_flags).
const (
	tcphdrFIN = 0x01
	tcphdrRST = 0x04
)

// skBuff mirrors struct sk_buff (include/linux/skbuff.h, v6.18) as the
// model needs it: TCP data lives in page fragments (loopback TCP never has
// linear payload), with the control block of TCP (seq, end_seq, flags) and
// of BPF (the redirect target, ingress and strparser bits of skb_bpf_*). A
// segment that a receiver took in with rx copybreak (`set S rxcopybreak N`)
// has its payload in a linear head: a slab object (kmalloc), modelled as
// its first fragment with a Slab page. Code that walks Frags sees the
// head's bytes first, as skb_copy_bits and skb_splice_bits walk the linear
// part first; a Slab page marks the linear part wherever it matters
// (skb_splice_bits' linear_to_page, the zero-copy splice actor).
//
// Ownership: an skb holds one page reference per fragment (for a slab
// head, one dataref: clones share the head). It is owned by
// exactly one queue at a time (a socket's receive queue, a psock's
// ingress_skb, an sk_msg's skb pointer, or an in-flight segment); freeing
// it (kfreeSkb) puts its page references.
type skBuff struct {
	Seq, EndSeq uint32
	TCPFlags    uint8
	Frags       []skbFrag
	Len         int
	Truesize    int

	// Sk is the owning socket (skb->sk after skb_set_owner_r). efree:
	// skb_set_owner_sk_safe made Sk the owner with sock_efree as the
	// destructor, a reference on the socket with no receive memory
	// charged (tcp_read_skb's skbs).
	Sk    *sock
	efree bool

	// BPF control block (skb_bpf_set_redir, skb_bpf_set_ingress,
	// skb_bpf_set_strparser).
	BpfRedir     *sock
	BpfIngress   bool
	BpfStrparser bool
	// Strp is strp_msg(skb) for strparser messages: the message's offset
	// and full length within the skb.
	StrpOffset, StrpFullLen int

	// TCP: the segment size of a multi-segment skb (gso_size, 0 for one
	// segment), its segments in flight (tcp_skb_pcount), the PSH flag
	// (tcp_mark_push), and the head a loopback sender's skb shares with
	// the clone the peer received (skb_shared_info's dataref).
	gsoSize int
	pcount  int
	tcpPSH  bool
	shared  *skbShared

	// users counts the references beyond the first (skb->users - 1):
	// skb_get takes one; kfree_skb drops one, and frees the skb with the
	// last.
	users int
	freed bool

	// uarg is the zero-copy state whose completion waits for this skb's
	// data to be released (skb_zcopy: skb_shinfo(skb)->destructor_arg
	// with SKBFL_ZEROCOPY_ENABLE). The skb holds a reference on it; a
	// clone in flight to the peer points to it without one, until the
	// peer's receive path orphans it (skbOrphanFragsRx).
	uarg *ubufInfo

	// fragBuf holds the first fragment in the skb itself, so that the
	// common skb of one fragment is one allocation (addFrag). An skBuff
	// is never copied by value: Frags may point into it.
	fragBuf [1]skbFrag
}

// addFrag appends f to skb.Frags, the first one into fragBuf.
func (skb *skBuff) addFrag(f skbFrag) {
	if skb.Frags == nil {
		skb.Frags = skb.fragBuf[:0]
	}
	skb.Frags = append(skb.Frags, f)
}

// skbGet mirrors skb_get() (include/linux/skbuff.h, v6.18): one more
// reference to skb.
func (skb *skBuff) skbGet() {
	reach(fnSkBuffSkbGet)
	if skb.freed {
		fault("use-after-free", "skb_get of a freed skb")
	}
	skb.users++
}

// copyBitsTagged is copyBits that returns the copied bytes' tags, nil
// when the skb's pages keep none.
func (skb *skBuff) copyBitsTagged(off int, dst []byte) []Tag {
	var tags []Tag
	if len(skb.Frags) > 0 && skb.Frags[0].Page.Tags != nil {
		tags = make([]Tag, len(dst))
	}
	skb.copyBitsInto(off, dst, tags)
	return tags
}

// copyBitsInto mirrors skb_copy_bits() (net/core/skbuff.c, v6.18): it
// copies len(dst) bytes from offset off of skb into dst and, if dt is not
// nil, their tags into dt.
func (skb *skBuff) copyBitsInto(off int, dst []byte, dt []Tag) {
	reach(fnSkBuffCopyBitsInto)
	for _, f := range skb.Frags {
		if len(dst) == 0 {
			return
		}
		if off >= f.Size {
			off -= f.Size
			continue
		}
		n := copy(dst, f.Page.bytes(f.Off+off, f.Size-off))
		if dt != nil {
			if t := f.Page.tagsAt(f.Off+off, n); t != nil {
				copy(dt, t)
			}
			dt = dt[n:]
		}
		dst = dst[n:]
		off = 0
	}
}

// hasLinear reports whether the skb has payload in a slab head.
func (skb *skBuff) hasLinear() bool { return len(skb.Frags) > 0 && skb.Frags[0].Page.Slab }

// skbLinearize mirrors skb_linearize() (include/linux/skbuff.h, v6.18) →
// __pskb_pull_tail() (net/core/skbuff.c, v6.18): the whole payload is
// copied into a linear head, a slab object (pskb_expand_head kmallocs it),
// and the fragments are released. The copy is kernel context's (the driver,
// softirq or the psock backlog), whatever task the softirq runs on.
func (k *kernel) skbLinearize(skb *skBuff) {
	k.reach(fnSkbLinearize)
	head := k.pages.kmalloc(skb.Len)
	skb.copyBitsInto(0, head.Data, head.Tags)
	k.stats.Kernel.Copied += int64(skb.Len)
	for _, f := range skb.Frags {
		k.pages.putPage(f.Page)
	}
	skb.Frags = nil
	skb.addFrag(skbFrag{Page: head, Off: 0, Size: skb.Len})
}

// rxCopybreak mirrors what a NIC driver's rx copybreak does to a small
// frame (for example the copy into a napi_alloc_skb/netdev_alloc_skb head
// that __netdev_alloc_skb takes from kmalloc for small lengths,
// net/core/skbuff.c, v6.18): the payload ends in a slab-backed linear
// head (skbLinearize).
//
// Unlike Linux, which does this in the driver before TCP sees the frame,
// the model applies it as the segment reaches the receiving socket.
func (k *kernel) rxCopybreak(skb *skBuff) {
	k.reach(fnRxCopybreak)
	k.skbLinearize(skb)
}

// kfreeSkb frees an skb with no other reference (see kernel.freeSkb): it
// drops the skb's page references. Freeing twice is a model bug.
func (a *pageAlloc) kfreeSkb(skb *skBuff) {
	if skb == nil {
		return
	}
	if skb.freed {
		panic("model: double free of skb")
	}
	if skb.users > 0 {
		panic("model: page-level free of an skb that still has references")
	}
	skb.freed = true
	if skb.uarg != nil {
		skbZcopyClear(skb, true) // skb_release_data
	}
	for _, f := range skb.Frags {
		a.putPage(f.Page)
	}
	skb.Frags = nil
}

// appendFrag adds a page range to skb, merging with the last fragment when
// contiguous in the same page (skb_can_coalesce). It takes one page
// reference when it adds a fragment.
func (skb *skBuff) appendFrag(p *page, off, n int) {
	if k := len(skb.Frags); k > 0 {
		last := &skb.Frags[k-1]
		if last.Page == p && last.Off+last.Size == off {
			last.Size += n
			skb.Len += n
			skb.Truesize += n
			return
		}
	}
	getPage(p)
	skb.addFrag(skbFrag{Page: p, Off: off, Size: n})
	skb.Len += n
	skb.Truesize += n
}

// canAppendFrag reports whether appendFrag would fit MAX_SKB_FRAGS.
func (skb *skBuff) canAppendFrag(p *page, off int) bool {
	if k := len(skb.Frags); k > 0 {
		last := skb.Frags[k-1]
		if last.Page == p && last.Off+last.Size == off {
			return true
		}
	}
	return len(skb.Frags) < maxSkbFrags
}

// cloneRange returns a new skb referencing bytes [off, off+n) of skb's
// fragments (each with its own page reference, or dataref for a slab
// head), as strparser's message skbs and skb_clone do. The clone has no owner (it is not charged to any
// socket's receive memory) and no flags.
func (skb *skBuff) cloneRange(off, n int) *skBuff {
	c := &skBuff{Seq: skb.Seq}
	for _, f := range skb.Frags {
		if n == 0 {
			break
		}
		if off >= f.Size {
			off -= f.Size
			continue
		}
		m := f.Size - off
		if m > n {
			m = n
		}
		skbHeadGet(f.Page)
		c.addFrag(skbFrag{Page: f.Page, Off: f.Off + off, Size: m})
		c.Len += m
		c.Truesize += m
		n -= m
		off = 0
	}
	c.EndSeq = c.Seq + uint32(c.Len)
	return c
}

// pullFront drops the first n bytes of skb in place, putting the page
// reference of each fragment it consumes whole; a fragment cut in two
// keeps its reference for the bytes that remain. Seq is unchanged, as
// for a clone of the same skb at a later offset (strp_msg(skb)->offset).
// Precondition: n <= skb.Len and skb is not shared (users == 0).
func (a *pageAlloc) pullFront(skb *skBuff, n int) {
	skb.Len -= n
	i := 0
	for ; i < len(skb.Frags) && n > 0; i++ {
		f := &skb.Frags[i]
		if n < f.Size {
			f.Off += n
			f.Size -= n
			break
		}
		n -= f.Size
		a.putPage(f.Page)
	}
	skb.Frags = skb.Frags[i:]
	skb.EndSeq = skb.Seq + uint32(skb.Len)
}

// pullBack drops the last n bytes of skb in place (the trim of
// tso_fragment's skb_split), putting the page reference of each fragment
// it removes whole. EndSeq is the caller's.
// Precondition: n <= skb.Len.
func (a *pageAlloc) pullBack(skb *skBuff, n int) {
	skb.Len -= n
	for n > 0 {
		f := &skb.Frags[len(skb.Frags)-1]
		if n < f.Size {
			f.Size -= n
			return
		}
		n -= f.Size
		a.putPage(f.Page)
		skb.Frags = skb.Frags[:len(skb.Frags)-1]
	}
}

// skbQueue mirrors struct sk_buff_head (include/linux/skbuff.h, v6.18).
type skbQueue struct {
	skbs []*skBuff
}

func (q *skbQueue) empty() bool       { return len(q.skbs) == 0 }
func (q *skbQueue) len() int          { return len(q.skbs) }
func (q *skbQueue) tail(skb *skBuff)  { q.skbs = append(q.skbs, skb) }
func (q *skbQueue) peek() *skBuff     { return q.at(0) }
func (q *skbQueue) peekTail() *skBuff { return q.at(len(q.skbs) - 1) }
func (q *skbQueue) all() []*skBuff    { return q.skbs }
func (q *skbQueue) at(i int) *skBuff {
	if i < 0 || i >= len(q.skbs) {
		return nil
	}
	return q.skbs[i]
}

// dequeue removes and returns the head, or nil.
func (q *skbQueue) dequeue() *skBuff {
	if len(q.skbs) == 0 {
		return nil
	}
	skb := q.skbs[0]
	q.skbs[0] = nil
	q.skbs = q.skbs[1:]
	return skb
}

// unlink removes skb from the queue.
func (q *skbQueue) unlink(skb *skBuff) {
	for i, x := range q.skbs {
		if x == skb {
			q.skbs = append(q.skbs[:i], q.skbs[i+1:]...)
			return
		}
	}
}

// bytes returns the number of payload bytes queued.
func (q *skbQueue) bytes() int {
	n := 0
	for _, skb := range q.skbs {
		n += skb.Len
	}
	return n
}
