package linux

import (
	"bytes"
	"testing"
)

// TestPullFront pulls an skb of three fragments past each boundary and
// inside fragments: the bytes left are the tail of the original, and each
// page keeps exactly the references of the fragments that still use it.
func TestPullFront(t *testing.T) {
	for pull := 0; pull <= 30; pull++ {
		var a pageAlloc
		pages := []*page{a.allocPage(pageSize), a.allocPage(pageSize), a.allocPage(pageSize)}
		skb := &skBuff{}
		var want []byte
		for i, p := range pages {
			for j := range 10 {
				p.Data[j] = byte(10*i + j)
			}
			want = append(want, p.Data[:10]...)
			skb.appendFrag(p, 0, 10)
		}
		skb.EndSeq = uint32(skb.Len)
		a.pullFront(skb, pull)
		got := make([]byte, skb.Len)
		skb.copyBitsInto(0, got, nil)
		if !bytes.Equal(got, want[pull:]) {
			t.Fatalf("pull %d: bytes %v, want %v", pull, got, want[pull:])
		}
		if skb.EndSeq != uint32(skb.Len) {
			t.Errorf("pull %d: end_seq %d with seq 0 and len %d", pull, skb.EndSeq, skb.Len)
		}
		for i, p := range pages {
			// The allocation's reference, plus the skb's while a byte of
			// the page is left.
			want := 1
			if pull < 10*(i+1) {
				want = 2
			}
			if p.Refcount != want {
				t.Errorf("pull %d: page %d has %d references, want %d", pull, i, p.Refcount, want)
			}
		}
		a.kfreeSkb(skb)
		for _, p := range pages {
			a.putPage(p)
		}
		if a.live != 0 {
			t.Errorf("pull %d: %d pages live after every put", pull, a.live)
		}
	}
}
