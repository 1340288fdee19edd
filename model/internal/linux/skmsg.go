package linux

import "syscall"

// maxMsgFrags is MAX_MSG_FRAGS (include/linux/skmsg.h): MAX_SKB_FRAGS.
const maxMsgFrags = maxSkbFrags

// nrMsgFragIDs is NR_MSG_FRAG_IDS: the ring has one slot more than
// MAX_MSG_FRAGS so that start == end means empty, never full.
const nrMsgFragIDs = maxMsgFrags + 1

// scatterlist mirrors struct scatterlist (include/linux/scatterlist.h,
// v6.18) as sk_msg uses it: a page range and the end marker of
// sg_mark_end()/sg_is_last() (include/linux/scatterlist.h, v6.18).
type scatterlist struct {
	Page   *page
	Offset int
	Length int
	Last   bool
}

// skMsgSg mirrors struct sk_msg_sg (include/linux/skmsg.h, v6.18): a ring
// of scatterlist elements.
//
// Invariants (checked by CheckRing): Start, End and Curr are in
// [0, nrMsgFragIDs); the used elements are Start, next(Start), ..., up to
// but excluding End, at most maxMsgFrags of them; Size is the sum of their
// Length. Data has nrMsgFragIDs+1 entries like the kernel's (the last one
// is for chaining and never used here).
type skMsgSg struct {
	Start     int
	Curr      int
	End       int
	Size      int
	Copybreak int
	Data      [nrMsgFragIDs + 1]scatterlist
}

// skMsg mirrors struct sk_msg (include/linux/skmsg.h, v6.18): a message of
// the sk_msg layer, either being sent (tcp_bpf_sendmsg), corked
// (psock->cork) or queued on a psock's ingress_msg.
//
// Ownership: the elements' pages are referenced by the message (one
// reference per element) unless Skb is set, in which case the skb owns
// the pages and the message owns the skb. A message on ingress_msg is
// owned by the psock until a reader dequeues and frees it.
type skMsg struct {
	Sg         skMsgSg
	ApplyBytes int
	CorkBytes  int
	Flags      uint64
	Skb        *skBuff
	SkRedir    *sock
	// Sk is msg->sk: the socket whose own TCP stream this message came
	// from (set by sk_psock_skb_ingress_self), nil otherwise.
	Sk *sock
}

// skMsgIterVarNext mirrors sk_msg_iter_var_next() (include/linux/skmsg.h,
// v6.18).
func skMsgIterVarNext(i int) int {
	reach(fnSkMsgIterVarNext)
	i++
	if i == nrMsgFragIDs {
		i = 0
	}
	return i
}

// skMsgIterVarPrev mirrors sk_msg_iter_var_prev() (include/linux/skmsg.h,
// v6.18).
func skMsgIterVarPrev(i int) int {
	reach(fnSkMsgIterVarPrev)
	if i == 0 {
		return nrMsgFragIDs - 1
	}
	return i - 1
}

// skMsgIterDist mirrors sk_msg_iter_dist() (include/linux/skmsg.h, v6.18):
// the number of elements from start up to (excluding) end.
func skMsgIterDist(start, end int) int {
	reach(fnSkMsgIterDist)
	if end >= start {
		return end - start
	}
	return end + (nrMsgFragIDs - start)
}

// elemUsed mirrors sk_msg_elem_used() (include/linux/skmsg.h, v6.18).
func (m *skMsg) elemUsed() int {
	reach(fnSkMsgElemUsed)
	return skMsgIterDist(m.Sg.Start, m.Sg.End)
}

// full mirrors sk_msg_full() (include/linux/skmsg.h, v6.18).
func (m *skMsg) full() bool {
	reach(fnSkMsgFull)
	return skMsgIterDist(m.Sg.Start, m.Sg.End) == maxMsgFrags
}

// elem mirrors sk_msg_elem() (include/linux/skmsg.h, v6.18).
func (m *skMsg) elem(i int) *scatterlist {
	reach(fnSkMsgElem)
	return &m.Sg.Data[i]
}

// markTags sets path on the tags of every byte m's elements hold.
func (m *skMsg) markTags(path Tag) {
	for i := m.Sg.Start; i != m.Sg.End; i = skMsgIterVarNext(i) {
		if e := m.elem(i); e.Page != nil && e.Length > 0 {
			markTags(e.Page.tagsAt(e.Offset, e.Length), path)
		}
	}
}

// init mirrors sk_msg_init() (include/linux/skmsg.h, v6.18): everything
// zero, and the end marker on the last ring slot (sg_init_marker(data,
// NR_MSG_FRAG_IDS)).
func (m *skMsg) init() {
	reach(fnSkMsgInit)
	*m = skMsg{}
	m.Sg.Data[nrMsgFragIDs-1].Last = true
}

// newSkMsg mirrors alloc_sk_msg() (net/core/skmsg.c, v6.18): a zeroed,
// initialised message.
func newSkMsg() *skMsg {
	reach(fnNewSkMsg)
	m := &skMsg{}
	m.init()
	return m
}

// skMsgXfer mirrors sk_msg_xfer() (include/linux/skmsg.h, v6.18): move size
// bytes of element which from src to dst (the page reference stays with the
// element; the caller takes another one if src keeps bytes of the page).
func skMsgXfer(dst, src *skMsg, which, size int) {
	reach(fnSkMsgXfer)
	dst.Sg.Data[which] = src.Sg.Data[which]
	dst.Sg.Data[which].Length = size
	dst.Sg.Size += size
	src.Sg.Size -= size
	src.Sg.Data[which].Length -= size
	src.Sg.Data[which].Offset += size
}

// pageAdd mirrors sk_msg_page_add() (include/linux/skmsg.h, v6.18): append
// a page range as a new element and take a reference on the page.
func (m *skMsg) pageAdd(p *page, length, offset int) {
	reach(fnSkMsgPageAdd)
	getPage(p)
	sge := m.elem(m.Sg.End)
	*sge = scatterlist{Page: p, Offset: offset, Length: length}
	m.Sg.Size += length
	m.Sg.End = skMsgIterVarNext(m.Sg.End)
}

// tryCoalesceOK mirrors sk_msg_try_coalesce_ok() (net/core/skmsg.c, v6.18).
// As in C, the int elem_first_coalesce is compared with the u32 ring
// indices as unsigned: tcp_bpf_sendmsg passes sg.end - 1, which is UINT_MAX
// when end is 0.
func (m *skMsg) tryCoalesceOK(elemFirstCoalesce int) bool {
	reach(fnSkMsgTryCoalesceOK)
	first := uint32(int32(elemFirstCoalesce))
	start, end := uint32(m.Sg.Start), uint32(m.Sg.End)
	if end > start && first < end {
		return true
	}
	if end < start && (first > start || first < end) {
		return true
	}
	return false
}

// skMsgAlloc mirrors sk_msg_alloc() (net/core/skmsg.c, v6.18): grow msg to
// len bytes with memory from the task's page frag, coalescing with the
// last element when the new memory follows it in the same page. It returns
// errENOSPC when the ring is full (msg keeps what was allocated).
//
// Unlike Linux, memory accounting (sk_wmem_schedule) never fails.
func (k *kernel) skMsgAlloc(t *task, msg *skMsg, length, elemFirstCoalesce int) syscall.Errno {
	k.reach(fnSkMsgAlloc)
	pf := &t.frag
	length -= msg.Sg.Size
	for length > 0 {
		k.pages.refill(pf)
		origOffset := pf.Offset
		use := length
		if r := pf.Size - origOffset; r < use {
			use = r
		}
		i := skMsgIterVarPrev(msg.Sg.End)
		sge := msg.elem(i)
		if msg.tryCoalesceOK(elemFirstCoalesce) && sge.Page == pf.Page && sge.Offset+sge.Length == origOffset {
			sge.Length += use
		} else {
			if msg.full() {
				return errENOSPC
			}
			sge = msg.elem(msg.Sg.End)
			*sge = scatterlist{Page: pf.Page, Offset: origOffset, Length: use}
			getPage(pf.Page)
			msg.Sg.End = skMsgIterVarNext(msg.Sg.End)
		}
		msg.Sg.Size += use
		pf.Offset += use
		length -= use
	}
	return errOK
}

// memcopyFromIter mirrors sk_msg_memcopy_from_iter() (net/core/skmsg.c,
// v6.18, with "skmsg: return copied bytes in sk_msg_memcopy_from_iter",
// Levi Zim, v6.13): copy up to bytes from the user's buffer into the
// message's allocated space starting at (Curr, Copybreak), and return the
// total copied (errENOSPC if there was no space to copy into).
//
// The copy starts at Copybreak within element Curr, which tcp_bpf_push
// does not adjust when it advances that element's Offset: after a partial
// push of the element Copybreak points into, the copy skips bytes the
// allocation just added and returns less than bytes. Those skipped bytes
// are sent as they are (stale page-frag contents); corpus trace
// kf_cork_apply_stale_bytes pins that on the 6.18 host.
func (msg *skMsg) memcopyFromIter(from *srcIter, bytes int) (int, syscall.Errno) {
	reach(fnSkMsgMemcopyFromIter)
	ret, copied, i := -1, 0, msg.Sg.Curr
	for {
		sge := msg.elem(i)
		if msg.Sg.Copybreak >= sge.Length {
			msg.Sg.Copybreak = 0
			i = skMsgIterVarNext(i)
			if i == msg.Sg.End {
				break
			}
			sge = msg.elem(i)
		}
		bufSize := sge.Length - msg.Sg.Copybreak
		copyN := bytes
		if bufSize < copyN {
			copyN = bufSize
		}
		if copyN > 0 {
			b := sge.Page.bytes(sge.Offset+msg.Sg.Copybreak, copyN)
			from.copyToTagged(b, sge.Page.tagsAt(sge.Offset+msg.Sg.Copybreak, copyN))
		}
		msg.Sg.Copybreak += copyN
		ret = copyN
		copied += copyN
		bytes -= copyN
		if bytes == 0 {
			break
		}
		msg.Sg.Copybreak = 0
		i = skMsgIterVarNext(i)
		if i == msg.Sg.End {
			break
		}
	}
	msg.Sg.Curr = i
	if ret < 0 {
		return 0, errENOSPC
	}
	return copied, errOK
}

// freeElem mirrors sk_msg_free_elem() (net/core/skmsg.c, v6.18): drop the
// element's page reference (unless an skb owns the pages) and clear it. It
// returns its length.
func (k *kernel) skMsgFreeElem(msg *skMsg, i int) int {
	k.reach(fnSkMsgFreeElem)
	sge := msg.elem(i)
	n := sge.Length
	if msg.Skb == nil && sge.Page != nil {
		k.pages.putPage(sge.Page)
	}
	*sge = scatterlist{}
	return n
}

// skMsgFree mirrors sk_msg_free() / __sk_msg_free() (net/core/skmsg.c,
// v6.18): free every element, consume the skb, re-initialise the message.
// It returns the bytes freed.
func (k *kernel) skMsgFree(msg *skMsg) int {
	k.reach(fnSkMsgFree)
	i := msg.Sg.Start
	freed := 0
	for msg.Sg.Size > 0 {
		msg.Sg.Size -= msg.elem(i).Length
		freed += k.skMsgFreeElem(msg, i)
		i = skMsgIterVarNext(i)
	}
	if msg.Skb != nil {
		k.freeSkb(msg.Skb)
	}
	msg.init()
	return freed
}

// skMsgFreePartial mirrors sk_msg_free_partial() (net/core/skmsg.c, v6.18):
// free bytes from the front of the message.
func (k *kernel) skMsgFreePartial(msg *skMsg, bytes int) {
	k.reach(fnSkMsgFreePartial)
	i := msg.Sg.Start
	for bytes > 0 {
		sge := msg.elem(i)
		if sge.Length == 0 {
			break
		}
		if bytes < sge.Length {
			sge.Length -= bytes
			sge.Offset += bytes
			msg.Sg.Size -= bytes
			break
		}
		msg.Sg.Size -= sge.Length
		bytes -= sge.Length
		k.skMsgFreeElem(msg, i)
		i = skMsgIterVarNext(i)
	}
	msg.Sg.Start = i
}

// skMsgTrim mirrors sk_msg_trim() (net/core/skmsg.c, v6.18): shrink the
// message to length bytes, freeing elements from the end.
func (k *kernel) skMsgTrim(msg *skMsg, length int) {
	k.reach(fnSkMsgTrim)
	trim := msg.Sg.Size - length
	if trim <= 0 {
		return
	}
	i := skMsgIterVarPrev(msg.Sg.End)
	msg.Sg.Size = length
	out := false
	for msg.Sg.Data[i].Length > 0 && trim >= msg.Sg.Data[i].Length {
		trim -= msg.Sg.Data[i].Length
		k.skMsgFreeElem(msg, i)
		i = skMsgIterVarPrev(i)
		if trim == 0 {
			out = true
			break
		}
	}
	if !out {
		msg.Sg.Data[i].Length -= trim
		if msg.Sg.Curr == i && msg.Sg.Copybreak > msg.Sg.Data[i].Length {
			msg.Sg.Copybreak = msg.Sg.Data[i].Length
		}
	}
	i = skMsgIterVarNext(i)
	msg.Sg.End = i
	if msg.Sg.Size == 0 {
		msg.Sg.Curr = msg.Sg.Start
		msg.Sg.Copybreak = 0
	} else if skMsgIterDist(msg.Sg.Start, msg.Sg.Curr) >= skMsgIterDist(msg.Sg.Start, msg.Sg.End) {
		i = skMsgIterVarPrev(i)
		msg.Sg.Curr = i
		msg.Sg.Copybreak = msg.Sg.Data[i].Length
	}
}

// CheckRing verifies the skMsgSg invariants and returns a description of
// the first violation, or "".
func (m *skMsg) CheckRing() string {
	sg := &m.Sg
	if sg.Start < 0 || sg.Start >= nrMsgFragIDs || sg.End < 0 || sg.End >= nrMsgFragIDs || sg.Curr < 0 || sg.Curr >= nrMsgFragIDs {
		return "index out of ring"
	}
	if m.elemUsed() > maxMsgFrags {
		return "more than MAX_MSG_FRAGS elements"
	}
	size := 0
	for i := sg.Start; i != sg.End; i = skMsgIterVarNext(i) {
		size += sg.Data[i].Length
	}
	if size != sg.Size {
		return "size is not the sum of the used elements' lengths"
	}
	return ""
}
