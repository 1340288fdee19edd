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
		// Scheduling decides how much the goroutines overlap; record
		// again until at least a tenth of the operations do and a tenth
		// of the reads return bytes.
		var h []porcupine.Operation
		for attempt := 0; ; attempt++ {
			h = recordHistory(size, ops, uint64(round*100+attempt))
			o, reads := overlapping(h), nonEmptyReads(h)
			if o >= len(h)/10 && reads >= ops/10 {
				break
			}
			if attempt == 50 {
				t.Fatalf("round %d: after %d attempts only %d of %d operations overlap another goroutine's and %d reads returned bytes",
					round, attempt, o, len(h), reads)
			}
		}
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
		// Corrupt the first read that returned bytes: flip its first byte.
		bad := append([]porcupine.Operation(nil), h...)
		corrupted := false
		for i, op := range bad {
			if out := op.Output.(linOutput); op.Input.(linInput).op == linRead && len(out.data) > 0 {
				b := []byte(out.data)
				b[0] ^= 0xff
				out.data = string(b)
				bad[i].Output = out
				corrupted = true
				break
			}
		}
		if !corrupted {
			t.Fatalf("round %d: no read to corrupt", round)
		}
		if res := porcupine.CheckOperationsTimeout(linModel(size-1), bad, 20*time.Second); res == porcupine.Ok {
			t.Fatalf("round %d: porcupine accepted a history with a corrupted read", round)
		}
	}
}
