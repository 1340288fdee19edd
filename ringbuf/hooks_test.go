package ringbuf

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// gate stops the goroutine that calls wait until the test opens it, and
// tells the test when that goroutine has arrived.
type gate struct{ arrived, open chan struct{} }

func newGate() gate { return gate{make(chan struct{}), make(chan struct{})} }

func (g gate) wait() {
	g.arrived <- struct{}{}
	<-g.open
}

// TestYieldBeforePublishHead stops the producer between copying its
// bytes and publishing Head: the bytes are in the buffer, yet the
// consumer cannot see them until the publish.
func TestYieldBeforePublishHead(t *testing.T) {
	g := newGate()
	var at [2]uint64
	r, err := newAt(8, 6, &Hooks{BeforePublishHead: func(head, next uint64) {
		at = [2]uint64{head, next}
		g.wait()
	}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := r.Write([]byte("wrap")) // offsets 6, 7, 0, 1
		done <- err
	}()
	<-g.arrived
	// The producer is stopped inside the hook, after its copy.
	if at != [2]uint64{6, 10} {
		t.Fatalf("hook saw head %d -> %d, want 6 -> 10", at[0], at[1])
	}
	if got := string(r.buf[6:]) + string(r.buf[:2]); got != "wrap" {
		t.Fatalf("buffer holds %q before the publish, want the copied %q", got, "wrap")
	}
	if n, err := r.Read(make([]byte, 4)); n != 0 || !errors.Is(err, ErrEmpty) {
		t.Fatalf("Read before the publish = %d, %v; want 0, ErrEmpty", n, err)
	}
	if r.Buffered() != 0 || r.HasData() {
		t.Fatalf("Buffered %d / HasData %v before the publish", r.Buffered(), r.HasData())
	}
	if err := r.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if n, err := r.Read(buf); n != 4 || err != nil || string(buf) != "wrap" {
		t.Fatalf("Read after the publish = %d, %v, %q", n, err, buf)
	}
}

// TestYieldBeforePublishTail stops the consumer between copying bytes out
// and publishing Tail: the producer cannot reuse that space yet.
func TestYieldBeforePublishTail(t *testing.T) {
	g := newGate()
	r, err := newAt(8, 0, &Hooks{BeforePublishTail: func(tail, next uint64) { g.wait() }})
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("1234567")) // full
	done := make(chan string)
	go func() {
		buf := make([]byte, 7)
		n, _ := r.Read(buf)
		done <- string(buf[:n])
	}()
	<-g.arrived
	if n, err := r.Write([]byte("x")); n != 0 || !errors.Is(err, ErrFull) {
		t.Fatalf("Write while the consumer has not published = %d, %v; want 0, ErrFull", n, err)
	}
	if r.Space() != 0 || r.Buffered() != 7 {
		t.Fatalf("Space %d, Buffered %d before the consumer's publish", r.Space(), r.Buffered())
	}
	close(g.open)
	if got := <-done; got != "1234567" {
		t.Fatalf("consumer read %q", got)
	}
	if n, err := r.Write([]byte("x")); n != 1 || err != nil {
		t.Fatalf("Write after the publish = %d, %v", n, err)
	}
}

// ---- systematic exploration ----

// coop runs its threads one at a time, each until its next yield point,
// as splicecheck's deterministic scheduler does with the model.
type coop struct {
	events chan coopEvent
	resume []chan struct{}
}

type coopEvent struct {
	id   int
	done bool
}

func newCoop(n int) *coop {
	c := &coop{events: make(chan coopEvent)}
	for range n {
		c.resume = append(c.resume, make(chan struct{}))
	}
	return c
}

func (c *coop) yield(id int) {
	c.events <- coopEvent{id: id}
	<-c.resume[id]
}

func (c *coop) start(id int, body func()) {
	go func() {
		<-c.resume[id]
		body()
		c.events <- coopEvent{id: id, done: true}
	}()
}

// chooser replays a prefix of choices, then always picks 0, and records
// every choice so that the next schedule can be derived (depth-first).
type chooser struct {
	prefix []int
	picks  []int
	opts   []int
}

func (ch *chooser) pick(n int) int {
	k := 0
	if i := len(ch.picks); i < len(ch.prefix) {
		k = ch.prefix[i]
	}
	ch.picks = append(ch.picks, k)
	ch.opts = append(ch.opts, n)
	return k
}

// next returns the prefix of the next schedule, or false when all were run.
func (ch *chooser) next() ([]int, bool) {
	for i := len(ch.picks) - 1; i >= 0; i-- {
		if ch.picks[i]+1 < ch.opts[i] {
			return append(append([]int(nil), ch.picks[:i]...), ch.picks[i]+1), true
		}
	}
	return nil, false
}

// exploreStats counts what the schedules showed.
type exploreStats struct {
	schedules        int
	emptyMidPublish  int // consumer saw ErrEmpty while the producer sat between copy and publish
	fullMidPublish   int // producer saw ErrFull while the consumer sat between copy and publish
	staleCachedSpace int // producer's Space() answered from a cache behind the real Tail
}

// runSchedule runs one schedule of a producer script (write sizes; 0
// means Space()) and a consumer script (read sizes; 0 means Len()) on a
// ring of size bytes, yielding at every hook and between operations. At every stop it checks the
// invariants; at the end, that the consumer read a prefix of the stream
// and the ring holds exactly the rest.
func runSchedule(t *testing.T, size int, start uint64, prod, cons []int, ch *chooser, st *exploreStats) {
	const producer, consumer = 0, 1
	c := newCoop(2)
	var inPublishHead, inPublishTail bool
	running := true // false once the scheduler is done: the hooks stop yielding
	yield := func(id int) {
		if running {
			c.yield(id)
		}
	}
	r, err := newAt(size, start, &Hooks{
		BeforePublishHead: func(head, next uint64) { inPublishHead = true; yield(producer); inPublishHead = false },
		BeforePublishTail: func(tail, next uint64) { inPublishTail = true; yield(consumer); inPublishTail = false },
		BeforeLoadTail:    func() { yield(producer) },
		BeforeLoadHead:    func() { yield(consumer) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var wrote, read uint64
	var failure error
	fail := func(format string, args ...any) {
		if failure == nil {
			failure = fmt.Errorf(format, args...)
		}
	}
	c.start(producer, func() {
		for _, n := range prod {
			c.yield(producer)
			if n == 0 {
				s := r.Space()
				if s < 0 || s > size-1 {
					fail("Space() = %d", s)
				}
				if uint64(s) < uint64(size-1)-(r.head.Load()-r.tail.Load()) {
					st.staleCachedSpace++
				}
				continue
			}
			k, err := r.Write(patternBytes(wrote, n))
			if errors.Is(err, ErrFull) && inPublishTail {
				st.fullMidPublish++
			}
			wrote += uint64(k)
		}
	})
	c.start(consumer, func() {
		for _, n := range cons {
			c.yield(consumer)
			if n == 0 {
				if l := r.Len(); uint64(l) > wrote-read {
					fail("Len() = %d with at most %d published", l, wrote-read)
				}
				continue
			}
			buf := make([]byte, n)
			k, err := r.Read(buf)
			if errors.Is(err, ErrEmpty) && inPublishHead {
				st.emptyMidPublish++
			}
			if !bytes.Equal(buf[:k], patternBytes(read, k)) {
				fail("read %d bytes at stream offset %d: not what was written", k, read)
			}
			read += uint64(k)
		}
	})
	live := []int{producer, consumer}
	for len(live) > 0 {
		i := ch.pick(len(live))
		c.resume[live[i]] <- struct{}{}
		ev := <-c.events
		if ev.done {
			live = append(live[:i], live[i+1:]...)
		}
		// Every thread is stopped: the snapshot is quiescent.
		if err := r.CheckInvariants(); err != nil {
			fail("after choices %v: %v", ch.picks, err)
		}
		if b := r.Buffered(); b < 0 || b > size-1 || uint64(b) > wrote-read {
			fail("Buffered() = %d with %d written and %d read", b, wrote, read)
		}
	}
	running = false
	if failure != nil {
		t.Fatalf("schedule %v: %v", ch.picks, failure)
	}
	if read > wrote || r.Buffered() != int(wrote-read) {
		t.Fatalf("schedule %v: wrote %d, read %d, ring holds %d", ch.picks, wrote, read, r.Buffered())
	}
	rest := make([]byte, size)
	k, _ := r.Read(rest)
	if uint64(k) != wrote-read || !bytes.Equal(rest[:k], patternBytes(read, k)) {
		t.Fatalf("schedule %v: the %d bytes left in the ring are not the rest of the stream", ch.picks, k)
	}
	st.schedules++
}

// TestExploreSchedules runs every interleaving, at the hooks' yield
// points, of small producer and consumer scripts on a tiny ring whose
// cursors wrap, checking the invariants at every stop and stream
// integrity at the end. It also checks that the exploration reaches the
// interesting states: a consumer finding the ring empty while copied bytes
// wait to be published, a producer finding it full while read bytes wait
// to be released, and a producer answering from a stale cached tail.
func TestExploreSchedules(t *testing.T) {
	cases := []struct {
		size       int
		start      uint64
		prod, cons []int
	}{
		{4, ^uint64(0) - 1, []int{2, 3, 0}, []int{2, 0, 3}},
		{4, 2, []int{1, 0, 3, 2}, []int{1, 3}},
	}
	var st exploreStats
	for _, tc := range cases {
		ch := &chooser{}
		for {
			runSchedule(t, tc.size, tc.start, tc.prod, tc.cons, ch, &st)
			prefix, ok := ch.next()
			if !ok {
				break
			}
			ch = &chooser{prefix: prefix}
		}
	}
	t.Logf("%d schedules; consumer saw empty mid-publish %d times, producer saw full mid-publish %d times, stale cached space %d times",
		st.schedules, st.emptyMidPublish, st.fullMidPublish, st.staleCachedSpace)
	if st.schedules < 1000 || st.emptyMidPublish == 0 || st.fullMidPublish == 0 || st.staleCachedSpace == 0 {
		t.Fatalf("exploration too shallow: %+v", st)
	}
}

// TestHooksNilFields: a Hooks with some fields nil calls the others only.
func TestHooksNilFields(t *testing.T) {
	var loads int
	r, err := NewWithHooks(4, &Hooks{BeforeLoadTail: func() { loads++ }})
	if err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("abc")) // fits the cache: no load
	r.Read(make([]byte, 3))
	r.Write([]byte("d")) // the cache says full: one load
	if loads != 1 {
		t.Fatalf("BeforeLoadTail ran %d times, want 1", loads)
	}
}
