package linux

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// pageSize is PAGE_SIZE.
const pageSize = 4096

// fragPageSize is the size of a task_frag page: PAGE_SIZE <<
// SKB_FRAG_PAGE_ORDER (order 3, 32 KiB), which skb_page_frag_refill
// allocates when it can.
const fragPageSize = pageSize << 3

// page is memory with a reference count: either a (possibly compound)
// page of the page allocator (struct page, page_ref_count), or, with Slab
// set, a kmalloc object of the slab allocator (PageSlab), which is how an
// skb's linear head is allocated.
//
// Invariants, checked where they can break (a violation is a pageFault):
//   - Refcount > 0 exactly while the page is live; the last put frees it
//     and poisons Data, so that no later access reads stale bytes;
//   - get_page is never called on a slab object: get_page()
//     (include/linux/mm.h, v6.18) is invalid on slab pages (Jiayuan Chen,
//     "tcp_bpf: optimize splice_read with zero-copy for non-slab pages",
//     bpf-next v1 5/7, March 2026). The references of a slab object are the
//     skbs sharing it as their head (skb_shared_info dataref), taken with
//     skbHeadGet;
//   - a slab object never reaches a pipe buffer (addToPipe).
type page struct {
	ID       uint64
	Data     []byte
	Refcount int
	Freed    bool
	// Slab: the memory is a kmalloc object (PageSlab), not page
	// allocator memory.
	Slab bool
	// Tags are the provenance of Data's bytes (tag.go); nil unless the
	// run keeps provenance.
	Tags []Tag
}

// pageFault is a violation of the page-ownership invariants. It is raised
// as a panic, because the path that hit it cannot go on (the memory is
// gone); the task or kernel context running it is stopped and the run
// fails with an error wrapping ErrPageOwnership (see recoverFault).
//
// kind is Fault.Kind; site the model function that called the page
// helper which found the violation (faultSite).
type pageFault struct{ kind, site, msg string }

func (f pageFault) Error() string { return f.msg }

func fault(kind, format string, args ...any) {
	panic(pageFault{kind, faultSite(), fmt.Sprintf(format, args...)})
}

// faultSite returns the name of the first model function on the stack
// that is not a page helper: the code that used or dropped the memory.
func faultSite() string {
	var pcs [16]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		name := f.Function[strings.LastIndex(f.Function, ".")+1:]
		if !pageHelpers[name] {
			return name
		}
		if !more {
			return ""
		}
	}
}

// pageHelpers are the functions that check page ownership for their
// callers; a fault is charged to the caller.
var pageHelpers = map[string]bool{
	"fault": true, "getPage": true, "skbHeadGet": true, "putPage": true, "bytes": true,
	"push": true, "skbGet": true, "copyBits": true,
}

// pageAlloc is the page and slab allocator of one run. It knows every
// live page, so that a run can be checked for leaks at its end.
type pageAlloc struct {
	prov  bool // pages carry Tags (Config.Provenance)
	next  uint64
	live  int // pages and slab objects allocated and not freed
	total int // ever allocated
	byID  map[uint64]*page
}

func (a *pageAlloc) alloc(size int, slab bool) *page {
	a.next++
	a.live++
	a.total++
	p := &page{ID: a.next, Data: newPageBuf(size), Refcount: 1, Slab: slab}
	if a.prov {
		p.Tags = make([]Tag, size)
	}
	if a.byID == nil {
		a.byID = map[uint64]*page{}
	}
	a.byID[p.ID] = p
	return p
}

// pageBufs recycles the memory of freed pages of the sizes a run
// allocates most (a pageSize pipe page, a fragPageSize task_frag page),
// across runs and backends: they are most of the bytes a run allocates,
// and recycling them saves the collector's work. It is memory management
// of the simulator, not of the model: a freed page is poisoned (Data nil)
// as before, and a recycled buffer is cleared, so a new page reads as
// zeroes whether or not its buffer was used before.
var pageBufs = map[int]*sync.Pool{pageSize: {}, fragPageSize: {}}

func newPageBuf(size int) []byte {
	if pool := pageBufs[size]; pool != nil {
		if b, ok := pool.Get().([]byte); ok {
			clear(b)
			return b
		}
	}
	return make([]byte, size)
}

func freePageBuf(b []byte) {
	if pool := pageBufs[len(b)]; pool != nil && cap(b) == len(b) {
		pool.Put(b)
	}
}

// allocPage mirrors alloc_pages() (include/linux/gfp.h, v6.18): a page of
// size bytes (a compound page when larger than pageSize) with one
// reference.
func (a *pageAlloc) allocPage(size int) *page {
	reach(fnPageAllocAllocPage)
	return a.alloc(size, false)
}

// kmalloc mirrors kmalloc() (include/linux/slab.h, v6.18): a slab object of
// size bytes, owned by the caller (one reference: kfree drops it).
func (a *pageAlloc) kmalloc(size int) *page {
	reach(fnPageAllocKmalloc)
	return a.alloc(size, true)
}

// getPage mirrors get_page() (include/linux/mm.h, v6.18).
func getPage(p *page) {
	reach(fnGetPage)
	if p.Freed || p.Refcount <= 0 {
		fault("use-after-free", "get_page on freed page %d", p.ID)
	}
	if p.Slab {
		fault("get-page-slab", "get_page on slab object %d (PageSlab): get_page() is invalid on slab pages", p.ID)
	}
	p.Refcount++
}

// skbHeadGet takes a reference on memory an skb clone shares: a page
// fragment (get_page), or a slab head, whose reference is the skb's
// dataref (skb_clone → atomic_inc(&skb_shinfo(skb)->dataref)).
func skbHeadGet(p *page) {
	if !p.Slab {
		getPage(p)
		return
	}
	if p.Freed || p.Refcount <= 0 {
		fault("use-after-free", "skb_clone of freed head %d", p.ID)
	}
	p.Refcount++
}

// putPage mirrors put_page() (include/linux/mm.h, v6.18) and, for a slab
// object, the skb_free_head() (net/core/skbuff.c, v6.18) → kfree()
// (mm/slub.c, v6.18) of the last dataref: the last reference frees the
// memory.
func (a *pageAlloc) putPage(p *page) {
	reach(fnPageAllocPutPage)
	if p.Freed || p.Refcount <= 0 {
		fault("double-put", "put_page on freed page %d: a reference dropped twice, or one never taken", p.ID)
	}
	p.Refcount--
	if p.Refcount == 0 {
		p.Freed = true
		freePageBuf(p.Data)
		p.Data = nil
		p.Tags = nil
		a.live--
		delete(a.byID, p.ID)
	}
}

// bytes returns p's memory [off, off+n). An access to freed memory is a
// fault.
func (p *page) bytes(off, n int) []byte {
	if p.Freed {
		fault("use-after-free", "access to freed page %d", p.ID)
	}
	return p.Data[off : off+n]
}

// tagsAt returns the tags of p's bytes [off, off+n), nil when p keeps
// none. Call it after bytes (which checks that p is live).
func (p *page) tagsAt(off, n int) []Tag {
	if p.Tags == nil {
		return nil
	}
	return p.Tags[off : off+n]
}

// leaked describes the pages still live, or "" when there are none.
func (a *pageAlloc) leaked() string {
	if a.live == 0 {
		return ""
	}
	ids := make([]uint64, 0, len(a.byID))
	for id := range a.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s := fmt.Sprintf("%d pages leaked:", a.live)
	for i, id := range ids {
		if i == 8 {
			s += " ..."
			break
		}
		p := a.byID[id]
		kind := "page"
		if p.Slab {
			kind = "slab"
		}
		s += fmt.Sprintf(" %s %d (refcount %d)", kind, id, p.Refcount)
	}
	return s
}

// pageFrag mirrors struct page_frag (include/linux/mm_types_task.h,
// v6.18): the page a task (or socket) carves small allocations out of.
type pageFrag struct {
	Page   *page
	Offset int
	Size   int
}

// refill mirrors skb_page_frag_refill(32, pfrag, gfp) as called by
// sk_page_frag_refill (net/core/sock.c, v6.18): reuse the page from its
// start when the frag holds the only reference, keep it while 32 bytes
// still fit, else drop it and allocate a fresh 32 KiB page.
func (a *pageAlloc) refill(pf *pageFrag) {
	reach(fnPageAllocRefill)
	if pf.Page != nil {
		if pf.Page.Refcount == 1 {
			pf.Offset = 0
			return
		}
		if pf.Offset+32 <= pf.Size {
			return
		}
		a.putPage(pf.Page)
	}
	pf.Offset = 0
	pf.Page = a.allocPage(fragPageSize)
	pf.Size = fragPageSize
}

// release drops the frag's page, as do_exit() does with
// current->task_frag.page (kernel/exit.c, v6.18).
func (a *pageAlloc) release(pf *pageFrag) {
	if pf.Page != nil {
		a.putPage(pf.Page)
		*pf = pageFrag{}
	}
}
