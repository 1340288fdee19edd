package ringbuf

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The sequential specification the recorded concurrent histories are
// checked against: a bounded FIFO of bytes (the porcupine state is its
// contents as a string). Each operation's output must be legal at one
// instant between its call and its return:
//
//   - Write(p) -> n stores p[:n]: n <= min(len(p), free), ErrFull iff
//     n < len(p), and n == 0 only when the ring is full (the producer
//     read Tail and found no space);
//   - Read(k) -> b removes b, a prefix of the contents, len(b) <= k, and
//     ErrEmpty (b empty) only when the ring is empty;
//   - Space() -> s: s <= free, and s == 0 only when the ring is full;
//   - Len() -> c: c <= count, and c == 0 only when the ring is empty;
//   - Buffered() -> c: c == count exactly.
//
// The bounds are inequalities because of the caches: a side that answers
// from its cached cursor may see less space or fewer bytes than there are,
// never more.
type linOp int

const (
	linWrite linOp = iota
	linRead
	linSpace
	linLen
	linBuffered
)

type linInput struct {
	op   linOp
	data string // Write: the bytes offered
	k    int    // Read: the buffer size
}

type linOutput struct {
	n    int    // Write: bytes stored; Space, Len, Buffered: the answer
	data string // Read: the bytes returned
	err  error
}

func linModel(capacity int) porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return "" },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			q := state.(string)
			in, out := input.(linInput), output.(linOutput)
			free := capacity - len(q)
			switch in.op {
			case linWrite:
				n := out.n
				ok := n >= 0 && n <= len(in.data) && n <= free &&
					(n < len(in.data)) == errors.Is(out.err, ErrFull) &&
					(n > 0 || len(in.data) == 0 || free == 0)
				return ok, q + in.data[:max(n, 0)]
			case linRead:
				m := len(out.data)
				ok := m <= in.k && m <= len(q) && q[:m] == out.data &&
					(m > 0 || in.k == 0 || (len(q) == 0 && errors.Is(out.err, ErrEmpty)))
				if !ok {
					return false, q
				}
				return true, q[m:]
			case linSpace:
				return out.n >= 0 && out.n <= free && (out.n > 0 || free == 0), q
			case linLen:
				return out.n >= 0 && out.n <= len(q) && (out.n > 0 || len(q) == 0), q
			case linBuffered:
				return out.n == len(q), q
			}
			return false, q
		},
		DescribeOperation: func(input, output interface{}) string {
			in, out := input.(linInput), output.(linOutput)
			switch in.op {
			case linWrite:
				return fmt.Sprintf("Write(%q) = %d, %v", in.data, out.n, out.err)
			case linRead:
				return fmt.Sprintf("Read(%d) = %q, %v", in.k, out.data, out.err)
			case linSpace:
				return fmt.Sprintf("Space() = %d", out.n)
			case linLen:
				return fmt.Sprintf("Len() = %d", out.n)
			}
			return fmt.Sprintf("Buffered() = %d", out.n)
		},
	}
}

// recordHistory runs a producer, a consumer and an observer on one ring
// at full speed, each doing ops random non-blocking operations, and
// returns the history. Timestamps come from one atomic counter read
// before each call and after each return, so they respect real time; a
// random spin on both sides of each operation widens the intervals, or
// the shared counter's cache line would serialise them into a history
// where nothing overlaps.
func recordHistory(size, ops int, seed uint64) []porcupine.Operation {
	r, err := New(size)
	if err != nil {
		panic(err)
	}
	var clock atomic.Int64
	var histories [3][]porcupine.Operation
	var wg sync.WaitGroup
	wg.Add(3)
	// A spinning start barrier: without it the three goroutines would run
	// one after the other.
	var ready atomic.Int32
	run := func(client int, body func(rng *rand.Rand, record func(linInput, func() linOutput))) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, uint64(client)))
		record := func(in linInput, do func() linOutput) {
			call := clock.Add(1)
			spin(rng.IntN(200))
			out := do()
			spin(rng.IntN(200))
			ret := clock.Add(1)
			histories[client] = append(histories[client], porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		}
		ready.Add(1)
		for ready.Load() < 3 {
			runtime.Gosched()
		}
		body(rng, record)
	}
	go run(0, func(rng *rand.Rand, record func(linInput, func() linOutput)) { // producer
		var next byte
		for range ops {
			if rng.IntN(5) == 0 {
				record(linInput{op: linSpace}, func() linOutput { return linOutput{n: r.Space()} })
				continue
			}
			p := make([]byte, rng.IntN(size+1))
			for i := range p {
				p[i] = next + byte(i)
			}
			record(linInput{op: linWrite, data: string(p)}, func() linOutput {
				n, err := r.Write(p)
				return linOutput{n: n, err: err}
			})
			next += byte(len(p)) // number every offered byte afresh, so neighbours differ
		}
	})
	go run(1, func(rng *rand.Rand, record func(linInput, func() linOutput)) { // consumer
		for range ops {
			if rng.IntN(5) == 0 {
				record(linInput{op: linLen}, func() linOutput { return linOutput{n: r.Len()} })
				continue
			}
			k := rng.IntN(size + 1)
			record(linInput{op: linRead, k: k}, func() linOutput {
				b := make([]byte, k)
				n, err := r.Read(b)
				return linOutput{data: string(b[:n]), err: err}
			})
		}
	})
	go run(2, func(rng *rand.Rand, record func(linInput, func() linOutput)) { // observer
		for range ops / 4 {
			record(linInput{op: linBuffered}, func() linOutput { return linOutput{n: r.Buffered()} })
		}
	})
	wg.Wait()
	return append(append(histories[0], histories[1]...), histories[2]...)
}

// nonEmptyReads counts the reads that returned bytes.
func nonEmptyReads(h []porcupine.Operation) int {
	n := 0
	for _, op := range h {
		if op.Input.(linInput).op == linRead && len(op.Output.(linOutput).data) > 0 {
			n++
		}
	}
	return n
}

// overlapping counts the operations whose interval overlaps an operation
// of another client.
func overlapping(h []porcupine.Operation) int {
	n := 0
	for i, a := range h {
		for j, b := range h {
			if i != j && a.ClientId != b.ClientId && a.Call < b.Return && b.Call < a.Return {
				n++
				break
			}
		}
	}
	return n
}

// TestLinearizable records concurrent histories of real goroutines on
// small rings (where full and empty are frequent) and checks each with
// porcupine against the FIFO specification above. A corrupted copy of
// each history must be rejected, which shows the check has teeth.
func TestLinearizable(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("concurrent histories need two Ps")
	}
	ops, rounds := 400, 8
	if testing.Short() || raceEnabled {
		ops, rounds = 200, 4
	}
	for round := range rounds {
		size := []int{2, 4, 8, 16}[round%4]
		// Scheduling decides how much the goroutines overlap: on a busy
		// machine they may barely do. TestLinearizableInterleaved forces
		// the overlap through the hooks; here it is only reported.
		h := recordHistory(size, ops, uint64(round))
		t.Logf("round %d (size %d): %d of %d operations overlap another goroutine's, %d reads returned bytes",
			round, size, overlapping(h), len(h), nonEmptyReads(h))
		res, info := porcupine.CheckOperationsVerbose(linModel(size-1), h, 20*time.Second)
		if res != porcupine.Ok {
			t.Errorf("round %d (size %d): history of %d operations is %s", round, size, len(h), res)
			if res == porcupine.Illegal {
				for _, part := range info.PartialLinearizationsOperations() {
					for _, lin := range part[:min(len(part), 2)] {
						for _, op := range lin[max(0, len(lin)-5):] {
							t.Logf("  ... %s", linModel(size-1).DescribeOperation(op.Input, op.Output))
						}
					}
				}
			}
			continue
		}
		bad, ok := corruptFirstRead(h)
		if !ok {
			continue // nothing was read: nothing to corrupt
		}
		if res := porcupine.CheckOperationsTimeout(linModel(size-1), bad, 20*time.Second); res == porcupine.Ok {
			t.Fatalf("round %d: porcupine accepted a history with a corrupted read", round)
		}
	}
}

// corruptFirstRead returns a copy of h whose first read that returned
// bytes has its first byte flipped, and whether there was one.
func corruptFirstRead(h []porcupine.Operation) ([]porcupine.Operation, bool) {
	bad := append([]porcupine.Operation(nil), h...)
	for i, op := range bad {
		if out := op.Output.(linOutput); op.Input.(linInput).op == linRead && len(out.data) > 0 {
			b := []byte(out.data)
			b[0] ^= 0xff
			out.data = string(b)
			bad[i].Output = out
			return bad, true
		}
	}
	return nil, false
}

// interleaver drives a producer, a consumer and an observer on one
// goroutine, and uses the ring's hooks to run operations of the other
// side (and Buffered) inside an operation, at its interleaving points:
// between copying bytes and publishing the cursor, and before a load of
// the other side's cursor. Every operation run from a hook overlaps the
// one that hit the hook, whatever the machine's scheduling, so the
// histories always contain the interleavings a linearizability check is
// for; and the run is reproducible from its seed. At most one operation
// per side is in progress (SPSC): a hook runs only the side that is idle.
type interleaver struct {
	r      *Ring
	size   int
	rng    *rand.Rand
	clock  int64
	hist   []porcupine.Operation
	busy   [2]bool // producer, consumer in an operation
	next   byte    // the producer's next byte value
	nested int     // operations run from hooks
}

func newInterleaver(size int, seed uint64) *interleaver {
	it := &interleaver{size: size, rng: rand.New(rand.NewPCG(seed, 7))}
	hook := func() {
		for it.rng.IntN(3) != 0 {
			switch side := it.rng.IntN(3); {
			case side < 2 && !it.busy[side]:
				it.nested++
				it.op(side)
			case side == 2:
				it.nested++
				it.record(2, linInput{op: linBuffered}, func() linOutput { return linOutput{n: it.r.Buffered()} })
			}
		}
	}
	r, err := NewWithHooks(size, &Hooks{
		BeforePublishHead: func(uint64, uint64) { hook() },
		BeforePublishTail: func(uint64, uint64) { hook() },
		BeforeLoadTail:    hook,
		BeforeLoadHead:    hook,
	})
	if err != nil {
		panic(err)
	}
	it.r = r
	return it
}

func (it *interleaver) record(client int, in linInput, do func() linOutput) {
	it.clock++
	call := it.clock
	if client < 2 {
		it.busy[client] = true
	}
	out := do()
	if client < 2 {
		it.busy[client] = false
	}
	it.clock++
	it.hist = append(it.hist, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: it.clock})
}

// op runs one random operation of side 0 (producer) or 1 (consumer).
func (it *interleaver) op(side int) {
	r := it.r
	if side == 0 {
		if it.rng.IntN(5) == 0 {
			it.record(0, linInput{op: linSpace}, func() linOutput { return linOutput{n: r.Space()} })
			return
		}
		p := make([]byte, it.rng.IntN(it.size+1))
		for i := range p {
			p[i] = it.next + byte(i)
		}
		it.next += byte(len(p))
		it.record(0, linInput{op: linWrite, data: string(p)}, func() linOutput {
			n, err := r.Write(p)
			return linOutput{n: n, err: err}
		})
		return
	}
	if it.rng.IntN(5) == 0 {
		it.record(1, linInput{op: linLen}, func() linOutput { return linOutput{n: r.Len()} })
		return
	}
	k := it.rng.IntN(it.size + 1)
	it.record(1, linInput{op: linRead, k: k}, func() linOutput {
		b := make([]byte, k)
		n, err := r.Read(b)
		return linOutput{data: string(b[:n]), err: err}
	})
}

// TestLinearizableInterleaved checks, with porcupine, histories in which
// operations of the two sides overlap at every interleaving point the
// hooks expose (see interleaver), on rings of 2 to 64 bytes, and that a
// corrupted copy of each history is rejected.
func TestLinearizableInterleaved(t *testing.T) {
	for seed := range uint64(16) {
		size := 2 << (seed % 6)
		it := newInterleaver(size, seed)
		for range 150 {
			it.op(it.rng.IntN(2))
		}
		h := it.hist
		if o := overlapping(h); it.nested == 0 || o == 0 {
			t.Fatalf("seed %d: %d operations ran from hooks, %d overlap: the hooks did not interleave", seed, it.nested, o)
		}
		t.Logf("seed %d (size %d): %d operations, %d from hooks, %d overlapping", seed, size, len(h), it.nested, overlapping(h))
		if res := porcupine.CheckOperationsTimeout(linModel(size-1), h, 20*time.Second); res != porcupine.Ok {
			t.Fatalf("seed %d (size %d): history of %d operations (%d from hooks) is %s", seed, size, len(h), it.nested, res)
		}
		bad, ok := corruptFirstRead(h)
		if !ok {
			t.Fatalf("seed %d: no read returned bytes", seed)
		}
		if res := porcupine.CheckOperationsTimeout(linModel(size-1), bad, 20*time.Second); res == porcupine.Ok {
			t.Fatalf("seed %d: porcupine accepted a history with a corrupted read", seed)
		}
	}
}
