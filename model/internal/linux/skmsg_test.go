package linux

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// testKernel returns a kernel with one connected pair and a task that may
// call non-blocking kernel functions from the test goroutine.
func testKernel(_ any) (*kernel, *task, *sock, *sock) {
	k := newKernel(linux618, nil)
	a, b := k.newSock("a1"), k.newSock("a2")
	a.SkProt, b.SkProt = k.tcpProt(), k.tcpProt()
	k.tcp.Connect(a, b)
	k.socks["a1"], k.socks["a2"] = a, b
	task := &task{Name: "test", s: k.s, abortAt: noDeadline}
	return k, task, a, b
}

// msgBytes returns the bytes of msg's used elements, in ring order.
func msgBytes(m *skMsg) []byte {
	var out []byte
	for i := m.Sg.Start; i != m.Sg.End; i = skMsgIterVarNext(i) {
		sge := m.Sg.Data[i]
		if sge.Length > 0 {
			out = append(out, sge.Page.bytes(sge.Offset, sge.Length)...)
		}
	}
	return out
}

func TestSkMsgIterVar(t *testing.T) {
	for i := 0; i < nrMsgFragIDs; i++ {
		if got := skMsgIterVarPrev(skMsgIterVarNext(i)); got != i {
			t.Errorf("prev(next(%d)) = %d", i, got)
		}
		if got := skMsgIterVarNext(skMsgIterVarPrev(i)); got != i {
			t.Errorf("next(prev(%d)) = %d", i, got)
		}
		if got := skMsgIterDist(i, i); got != 0 {
			t.Errorf("dist(%d, %d) = %d, want 0", i, i, got)
		}
		j := i
		for n := 1; n < nrMsgFragIDs; n++ {
			j = skMsgIterVarNext(j)
			if got := skMsgIterDist(i, j); got != n {
				t.Errorf("dist(%d, %d) = %d, want %d", i, j, got, n)
			}
		}
	}
	if skMsgIterVarNext(nrMsgFragIDs-1) != 0 || skMsgIterVarPrev(0) != nrMsgFragIDs-1 {
		t.Error("the ring does not wrap at NR_MSG_FRAG_IDS")
	}
}

// TestSkMsgFull checks sk_msg_full at MAX_MSG_FRAGS elements, from every
// start position (the ring wraps).
func TestSkMsgFull(t *testing.T) {
	k, task, _, _ := testKernel(t)
	for start := 0; start < nrMsgFragIDs; start++ {
		m := newSkMsg()
		m.Sg.Start, m.Sg.End, m.Sg.Curr = start, start, start
		p := k.pages.allocPage(pageSize)
		for n := 0; n < maxMsgFrags; n++ {
			if m.full() {
				t.Fatalf("start %d: full after %d elements", start, n)
			}
			m.pageAdd(p, 1, n) // not contiguous with the previous element
			m.Sg.Data[skMsgIterVarPrev(m.Sg.End)].Offset = 2 * n
		}
		if !m.full() {
			t.Fatalf("start %d: not full at MAX_MSG_FRAGS elements", start)
		}
		if s := m.CheckRing(); s != "" {
			t.Fatalf("start %d: %s", start, s)
		}
		// skMsgAlloc must refuse a new element now (ENOSPC).
		task.frag = pageFrag{}
		if err := k.skMsgAlloc(task, m, m.Sg.Size+1, m.Sg.End-1); err != errENOSPC {
			t.Fatalf("start %d: alloc on a full ring: %v, want ENOSPC", start, err)
		}
		k.skMsgFree(m)
		k.pages.putPage(p)
		k.pages.putPage(task.frag.Page)
		if p.Refcount != 0 || !p.Freed {
			t.Fatalf("start %d: page refcount %d after free", start, p.Refcount)
		}
	}
}

// skMsgMachine is a rapid state machine over one sk_msg and its ring:
// allocate and copy (sk_msg_alloc + sk_msg_memcopy_from_iter, as
// tcp_bpf_sendmsg does), free from the front (sk_msg_free_partial),
// trim from the back (sk_msg_trim), move the front to another message
// (sk_msg_xfer, as bpf_tcp_ingress does), free all. The reference is the
// byte string the message must hold.
type skMsgMachine struct {
	k    *kernel
	task *task
	msg  *skMsg
	ref  []byte
	next int64 // pattern offset of the next byte written
	// frozen: the front was freed or moved, so the kernel never appends
	// to this message again (tcp_bpf only does that on a message it then
	// drops or sends on); appends resume once it is re-initialised.
	frozen bool
}

func (m *skMsgMachine) check(t *rapid.T) {
	if s := m.msg.CheckRing(); s != "" {
		t.Fatalf("ring invariant: %s (start %d end %d size %d)", s, m.msg.Sg.Start, m.msg.Sg.End, m.msg.Sg.Size)
	}
	if got := msgBytes(m.msg); !bytes.Equal(got, m.ref) {
		t.Fatalf("message holds %d bytes %x..., want %d bytes", len(got), head(got), len(m.ref))
	}
	for i := m.msg.Sg.Start; i != m.msg.Sg.End; i = skMsgIterVarNext(i) {
		if p := m.msg.Sg.Data[i].Page; p != nil && (p.Freed || p.Refcount < 1) {
			t.Fatalf("element %d references freed page %d", i, p.ID)
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}

func (m *skMsgMachine) Append(t *rapid.T) {
	if m.frozen {
		t.Skip("front freed: the kernel does not append")
	}
	n := rapid.IntRange(1, 70000).Draw(t, "n")
	osize := m.msg.Sg.Size
	cp := n
	if err := m.k.skMsgAlloc(m.task, m.msg, m.msg.Sg.Size+n, m.msg.Sg.End-1); err != 0 {
		cp = m.msg.Sg.Size - osize
	}
	src := newSrcPattern(m.next, cp)
	if _, err := m.msg.memcopyFromIter(src, cp); err != 0 {
		t.Fatalf("memcopy: %v", err)
	}
	m.ref = append(m.ref, patternBytes(m.next, cp)...)
	m.next += int64(cp)
}

func (m *skMsgMachine) FreePartial(t *rapid.T) {
	n := rapid.IntRange(0, len(m.ref)).Draw(t, "n")
	m.k.skMsgFreePartial(m.msg, n)
	m.ref = m.ref[n:]
	m.settle()
}

// settle freezes the message after its front was freed or moved, or
// re-initialises it once empty (tcp_bpf_sendmsg's next sk_msg_init).
func (m *skMsgMachine) settle() {
	m.frozen = true
	if m.msg.Sg.Size == 0 {
		m.msg.init()
		m.frozen = false
	}
}

func (m *skMsgMachine) Trim(t *rapid.T) {
	n := rapid.IntRange(0, len(m.ref)).Draw(t, "len")
	m.k.skMsgTrim(m.msg, n)
	m.ref = m.ref[:n]
}

func (m *skMsgMachine) Xfer(t *rapid.T) {
	if m.msg.Sg.Size == 0 {
		t.Skip("empty")
	}
	// bpf_tcp_ingress with apply_bytes: move the first n bytes.
	n := rapid.IntRange(1, len(m.ref)).Draw(t, "n")
	task, b := m.task, m.k.socks["a2"]
	p := skPsock(b)
	if p == nil {
		p = m.k.skPsockInit(b)
	}
	before := p.MsgTotLen
	if err := m.k.bpfTCPIngress(task, b, p, m.msg, n); err != 0 {
		t.Fatalf("bpf_tcp_ingress: %v", err)
	}
	moved := p.IngressMsg[len(p.IngressMsg)-1]
	if got := msgBytes(moved); !bytes.Equal(got, m.ref[:n]) {
		t.Fatalf("xfer moved %d bytes, want the first %d", len(got), n)
	}
	if p.MsgTotLen != before+n {
		t.Fatalf("msg_tot_len %d, want %d", p.MsgTotLen, before+n)
	}
	m.ref = m.ref[n:]
	m.settle()
}

func (m *skMsgMachine) FreeAll(t *rapid.T) {
	freed := m.k.skMsgFree(m.msg)
	if freed != len(m.ref) {
		t.Fatalf("sk_msg_free freed %d bytes, want %d", freed, len(m.ref))
	}
	m.ref = nil
	m.frozen = false
}

// TestSkMsgRing is the rapid state machine of the sk_msg scatterlist ring.
// At the end every page reference must be accounted for.
func TestSkMsgRing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k, task, _, _ := testKernel(t)
		m := &skMsgMachine{k: k, task: task, msg: newSkMsg()}
		t.Repeat(map[string]func(*rapid.T){
			"Append":      m.Append,
			"FreePartial": m.FreePartial,
			"Trim":        m.Trim,
			"Xfer":        m.Xfer,
			"FreeAll":     m.FreeAll,
			"":            m.check,
		})
		// Teardown: free the message, the moved messages, the task frag;
		// no page may stay allocated.
		k.skMsgFree(m.msg)
		if p := skPsock(k.socks["a2"]); p != nil {
			k.skPsockZapIngress(p)
		}
		if task.frag.Page != nil {
			k.pages.putPage(task.frag.Page)
		}
		if k.pages.live != 0 {
			t.Fatalf("%d pages leaked", k.pages.live)
		}
	})
}

func patternBytes(off int64, n int) []byte {
	b := make([]byte, n)
	newSrcPattern(off, n).copyTo(b)
	return b
}
