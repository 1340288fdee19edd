package linux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// runStats runs src on the model under profile and returns the
// observations and the copy accounting.
func runStats(t *testing.T, profile, src string, mutations ...string) ([]trace.Observation, *Stats, error) {
	t.Helper()
	tr, err := trace.Parse("t.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewWithConfig(Config{Mutations: mutations})
	if err != nil {
		t.Fatal(err)
	}
	return runWithStats(b, context.Background(), tr, trace.Options{Profile: profile})
}

// peerSplice is the KERNEL-FACTS "peer" topology with a splice of the
// ingress-redirected bytes before and after the sender's FIN.
const peerSplice = `conn a1 a2
map m sockmap 2
prog m sk_msg redirect 1 ingress
insert m 0 a1
insert m 1 a2
send a1 10000
set a2 nonblock on
splice a2 100000
pipe a2 100000
shutdown a1 wr
splice a2 1000
recv a2 100
`

// TestSpliceReadProfiles checks what splice(2) sees of psock ingress data
// on each profile: nothing on mainline (-EAGAIN, then 0 at once after the
// FIN, with the data still there for recv), every byte through the pipe
// with either patch (and then EOF).
func TestSpliceReadProfiles(t *testing.T) {
	want := trace.Pattern(0, 10000)
	for _, c := range []struct {
		profile     string
		splice, eof string // lines 8 and 12
		pipe        int64
	}{
		{"linux-6.18", "-EAGAIN", "100", -1},
		{"linux-6.1", "-EAGAIN", "100", -1},
		{"splice-copy", "10000", "0", 10000},
		{"splice-zerocopy", "10000", "0", 10000},
		{"linux-6.1+splice-zerocopy", "10000", "0", 10000},
	} {
		obs, _, err := runStats(t, c.profile, peerSplice)
		if err != nil {
			t.Fatalf("%s: %v", c.profile, err)
		}
		if got := res(obs, 8); got != c.splice {
			t.Errorf("%s: first splice = %s, want %s", c.profile, got, c.splice)
		}
		if got := res(obs, 11); got != "0" {
			t.Errorf("%s: splice after the FIN = %s, want 0", c.profile, got)
		}
		if got := res(obs, 12); got != c.eof {
			t.Errorf("%s: recv after the splices = %s, want %s", c.profile, got, c.eof)
		}
		p := obs[8].Result
		if c.pipe < 0 {
			if p.Err != errEAGAIN {
				t.Errorf("%s: pipe read = %s, want -EAGAIN", c.profile, p)
			}
			continue
		}
		if p.N != c.pipe || !bytes.Equal(p.Data, want) {
			t.Errorf("%s: pipe read %d bytes, not the 10000 sent", c.profile, p.N)
		}
	}
}

// res is the result of the op on trace line line, without its data.
func res(obs []trace.Observation, line int) string {
	for _, o := range obs {
		if o.Line == line {
			r := o.Result
			r.Data = nil
			return strings.Fields(r.String())[0]
		}
	}
	return "no line"
}

// TestIOCopyPatched runs the corpus trace of the Go io.Copy bug on the
// patched profiles: io.Copy moves all 1000 bytes through the splice path,
// the destination receives them, and the source is drained.
func TestIOCopyPatched(t *testing.T) {
	src, err := os.ReadFile("../../../testdata/traces/kernel/iocopy_ingress_redirect_returns_zero.trace")
	if err != nil {
		t.Fatal(err)
	}
	for _, profile := range []string{"linux-6.18", "splice-copy", "splice-zerocopy"} {
		obs, _, err := runStats(t, profile, string(src))
		if err != nil {
			t.Fatalf("%s: %v", profile, err)
		}
		iocopy, dst, drained := res(obs, 13), res(obs, 15), res(obs, 16)
		if profile == "linux-6.18" {
			if iocopy != "0" || dst != "-EAGAIN" || drained != "1000" {
				t.Errorf("mainline: iocopy %s, destination %s, source %s; want the bug: 0, -EAGAIN, 1000", iocopy, dst, drained)
			}
			continue
		}
		if iocopy != "1000" || dst != "1000" || drained != "0" {
			t.Errorf("%s: iocopy %s, destination %s, source %s; want 1000, 1000, 0 (EOF)", profile, iocopy, dst, drained)
		}
		if got := obs[len(obs)-3].Result.Data; !bytes.Equal(got, trace.Pattern(0, 1000)) {
			t.Errorf("%s: the destination received other bytes", profile)
		}
	}
}

// skbSlab puts two 1000-byte segments on a2's ingress queue through an
// sk_skb pass verdict, their payload in slab heads (rx copybreak).
const skbSlab = `conn a1 a2
map m sockmap 2
prog m sk_skb pass
insert m 0 a2
set a2 rxcopybreak 2k
send a1 1000
send a1 1000
set a2 nonblock on
splice a2 100000
pipe a2 100000
`

// TestCopiesPerByte pins the copy accounting of the splice paths: two
// copies per byte with splice-copy (one into the pipe, one out of it),
// none into the pipe for fragment pages under splice-zerocopy, one for
// slab-backed linear data, which the actor copies into a page frag.
func TestCopiesPerByte(t *testing.T) {
	for _, c := range []struct {
		name, profile, src string
		splice, e2e        float64 // splice's copies per byte; splice + pipe read
	}{
		{"splice-copy fragments", "splice-copy", peerSplice, 1, 2},
		{"splice-copy slab", "splice-copy", skbSlab, 1, 2},
		{"splice-zerocopy fragments", "splice-zerocopy", peerSplice, 0, 1},
		{"splice-zerocopy slab", "splice-zerocopy", skbSlab, 1, 2},
	} {
		_, st, err := runStats(t, c.profile, c.src)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sp, pr := st.Ops["splice"], st.Ops["pipe"]
		if sp.Moved != 2000 && sp.Moved != 10000 {
			t.Fatalf("%s: spliced %d bytes", c.name, sp.Moved)
		}
		if got := sp.PerByte(); got != c.splice {
			t.Errorf("%s: splice copies/byte = %.2f, want %.0f", c.name, got, c.splice)
		}
		if got := float64(sp.Copied+pr.Copied) / float64(sp.Moved); got != c.e2e {
			t.Errorf("%s: socket to user = %.2f copies/byte, want %.0f", c.name, got, c.e2e)
		}
		if s := st.String(); !strings.Contains(s, "copies/byte") || !strings.Contains(s, "splice") {
			t.Errorf("%s: table:\n%s", c.name, s)
		}
	}
}

// TestPipeSetSize checks F_SETPIPE_SZ (round_pipe_size, pipe_resize_ring)
// and that a pipe's capacity bounds a splice: a 4 KiB pipe takes one
// buffer.
func TestPipeSetSize(t *testing.T) {
	got := runLines(t, `profile splice-zerocopy
conn a1 a2
map m sockmap 2
prog m sk_msg redirect 1 ingress
insert m 0 a1
insert m 1 a2
set a2 pipesize 1
set a2 pipesize 65537
set a2 pipesize 1024m
send a1 100
send a1 100
set a2 pipesize 4096
set a2 nonblock on
splice a2 1000 nonblock
splice a2 1000 nonblock
set a2 pipesize 0
pipe a2 1000
splice a2 1000 nonblock
pipe a2 1000
`)
	check := map[string]string{
		"7":  "4096",
		"8":  "131072",
		"9":  "1073741824",
		"12": "4096",
		"14": "100",
		"15": "-EAGAIN",
		"16": "4096", // round_pipe_size(0) is a page: one slot, one buffer in use
		"17": "100",
		"18": "100",
		"19": "100",
	}
	for _, l := range got {
		num, rest, _ := strings.Cut(l, ": ")
		w, ok := check[num]
		if !ok {
			continue
		}
		_, r, _ := strings.Cut(rest, " => ")
		if f := strings.Fields(r)[0]; f != w {
			t.Errorf("line %s: %s, want %s", num, l, w)
		}
	}
	p := newPipe(pipeDefBuffers)
	if _, err := p.pipeSetSize(3 << 30); err != errEINVAL {
		t.Errorf("3 GiB: %v, want EINVAL (round_pipe_size gives 0 above 2 GiB)", err)
	}
	for range 3 {
		p.push(pipeBuffer{Page: &page{Refcount: 1}, Len: 1, Ops: anonPipeBufOps})
	}
	if _, err := p.pipeSetSize(2 * pageSize); err != errEBUSY {
		t.Errorf("shrinking below the buffers in use: %v, want EBUSY", err)
	}
	if n, err := p.pipeSetSize(4 * pageSize); err != 0 || n != 4*pageSize || p.occupancy() != 3 {
		t.Errorf("resize keeping 3 buffers: %d, %v, occupancy %d", n, err, p.occupancy())
	}
}

// TestPageFaults checks each page-ownership check on its own: get_page on
// a slab object, a put without its get, a read of freed memory, a slab
// object pushed into a pipe, and a leak at the end of a run.
func TestPageFaults(t *testing.T) {
	var a pageAlloc
	for _, c := range []struct {
		name string
		f    func()
		want string
	}{
		{"get_page on slab", func() { getPage(a.kmalloc(64)) }, "get_page on slab object"},
		{"put twice", func() { p := a.allocPage(pageSize); a.putPage(p); a.putPage(p) }, "put_page on freed page"},
		{"use after free", func() { p := a.allocPage(pageSize); a.putPage(p); p.bytes(0, 1) }, "access to freed page"},
		{"slab in pipe", func() { newPipe(1).push(pipeBuffer{Page: a.kmalloc(8), Len: 8, Ops: nostealPipeBufOps}) }, "slab object"},
	} {
		err := catchFault(c.f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a fault %q", c.name, err, c.want)
		}
	}
	// A slab head shared by an skb clone is referenced without get_page.
	if err := catchFault(func() {
		h := a.kmalloc(8)
		skbHeadGet(h)
		a.putPage(h)
		a.putPage(h)
	}); err != nil {
		t.Errorf("dataref of a slab head: %v", err)
	}
	var b pageAlloc
	b.allocPage(pageSize)
	b.kmalloc(10)
	if s := b.leaked(); !strings.Contains(s, "2 pages leaked") || !strings.Contains(s, "slab") {
		t.Errorf("leaked() = %q", s)
	}
}

func catchFault(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError("test", p)
		}
	}()
	f()
	return nil
}

// TestZerocopyMutations checks that the two planted bugs of the zero-copy
// actor fail the run with a page-ownership error, each on the data it
// mishandles, and change nothing on the other kind of data.
func TestZerocopyMutations(t *testing.T) {
	for _, c := range []struct {
		mutation, src string
		fails         bool
	}{
		{"zerocopy-no-get-page", peerSplice, true},
		{"zerocopy-no-get-page", skbSlab, false}, // slab data is copied
		{"zerocopy-slab-to-pipe", skbSlab, true},
		{"zerocopy-slab-to-pipe", peerSplice, false}, // no slab data
	} {
		_, _, err := runStats(t, "splice-zerocopy", c.src, c.mutation)
		if got := errors.Is(err, ErrPageOwnership); got != c.fails {
			t.Errorf("%s on %s: error %v, want page ownership failure %v", c.mutation, firstOp(c.src), err, c.fails)
		}
	}
	// Without the mutation both runs end with every page free.
	for _, src := range []string{peerSplice, skbSlab} {
		if _, _, err := runStats(t, "splice-zerocopy", src); err != nil {
			t.Errorf("unmutated: %v", err)
		}
	}
}

func firstOp(src string) string {
	for _, l := range strings.Split(src, "\n") {
		if strings.HasPrefix(l, "prog") {
			return fmt.Sprintf("%q", l)
		}
	}
	return "trace"
}
