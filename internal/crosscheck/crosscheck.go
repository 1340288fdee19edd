// Package crosscheck runs traces on two backends, reports where they
// diverge, and shrinks a diverging trace to a minimal one. It is the
// engine of the model-vs-kernel differential campaign: the kernel is the
// authority, so a divergence is first re-run on backend B to make sure B
// agrees with itself (a live kernel's timing can decide an outcome; such a
// trace is counted as flaky, not as a model bug).
package crosscheck

import (
	"context"
	"errors"
	"fmt"

	"github.com/splicecheck/splicecheck/fuzz"
	"github.com/splicecheck/splicecheck/trace"
)

// ErrRunA marks a trace that backend A (the backend under test) could not
// run at all: for the model, an internal error. A campaign records it as
// a finding and goes on; an error of B (the authority) ends the campaign.
var ErrRunA = errors.New("crosscheck: backend A failed")

// Finding is one trace on which the backends diverged, or on which A
// failed (Err wraps ErrRunA).
type Finding struct {
	Seed        int
	Trace       *trace.Trace
	Divergences []trace.Divergence
	Err         error
}

// Report summarises a campaign.
type Report struct {
	Runs     int
	Agree    int
	Flaky    int // B disagreed with itself, or had to be forced out of an op: not a divergence
	Findings []Finding
	// FlakyFindings are the Flaky traces, each with what made it flaky:
	// B's first run against its re-run that differed, or, for a run B was
	// forced out of, A against B.
	FlakyFindings []Finding
}

// stableRuns is how many times b must give the same answer before a
// divergence counts: a race a live kernel settles one way 60% of the time
// still passes two runs a third of the time, three runs a fifth.
const stableRuns = 3

// Compare runs t on a and b. It returns the divergences, or flaky=true
// when b's answer is not its own: it hit the runner's op timeout, or, run
// again (up to stableRuns times), it disagreed with its first run; divs
// are then what made it flaky (a against b, or b against its re-run).
func Compare(ctx context.Context, a, b trace.Backend, t *trace.Trace, opts trace.Options) (divs []trace.Divergence, flaky bool, err error) {
	ra, err := trace.Observe(ctx, a, t, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, fmt.Errorf("%w: run on %s: %w", ErrRunA, a.Name(), err)
	}
	rb, err := trace.Observe(ctx, b, t, opts)
	if err != nil {
		return nil, false, fmt.Errorf("run on %s: %w", b.Name(), err)
	}
	divs = trace.Diff(ra, rb)
	if len(divs) == 0 {
		return nil, false, nil
	}
	if hasRunnerTimeout(rb) {
		// b had to be forced out of an op (a live kernel is unblocked by
		// shutting the socket down), so what follows is not b's own answer.
		return divs, true, nil
	}
	for i := 1; i < stableRuns; i++ {
		rb2, err := trace.Observe(ctx, b, t, opts)
		if err != nil {
			return nil, false, fmt.Errorf("re-run on %s: %w", b.Name(), err)
		}
		if d := trace.Diff(rb, rb2); len(d) > 0 {
			return d, true, nil
		}
	}
	return divs, false, nil
}

// Campaign runs next(seed) for count seeds starting at first on a and b,
// jobs traces at a time (at least one): next is called in seed order from
// one goroutine, and the report is the same whatever jobs is (findings in
// seed order). stop, if not nil, is called after each trace, in seed
// order, and ends the campaign early when it returns true. With jobs > 1
// a and b must run traces concurrently (the model and the kernel backend
// do: each kernel run has a namespace of its own).
func Campaign(ctx context.Context, a, b trace.Backend, next func(seed int) *trace.Trace, first, count, jobs int, opts trace.Options, stop func(Report) bool) (Report, error) {
	type result struct {
		t     *trace.Trace
		divs  []trace.Divergence
		flaky bool
		err   error
		done  chan struct{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs = max(jobs, 1)
	results := make(chan *result, jobs) // in seed order
	go func() {
		defer close(results)
		sem := make(chan struct{}, jobs)
		for seed := first; seed < first+count; seed++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			res := &result{t: next(seed), done: make(chan struct{})}
			go func() {
				defer func() { <-sem; close(res.done) }()
				res.divs, res.flaky, res.err = Compare(ctx, a, b, res.t, opts)
			}()
			select {
			case results <- res:
			case <-ctx.Done():
				<-res.done
				return
			}
		}
	}()
	var r Report
	seed := first
	var failed error
	for res := range results {
		<-res.done
		if failed != nil {
			continue // drain: every Compare returns once ctx is canceled
		}
		r.Runs++
		switch {
		case errors.Is(res.err, ErrRunA):
			r.Findings = append(r.Findings, Finding{Seed: seed, Trace: res.t, Err: res.err})
		case res.err != nil:
			failed = fmt.Errorf("seed %d: %w", seed, res.err)
			cancel()
			continue
		case res.flaky:
			r.Flaky++
			r.FlakyFindings = append(r.FlakyFindings, Finding{Seed: seed, Trace: res.t, Divergences: res.divs})
		case len(res.divs) == 0:
			r.Agree++
		default:
			r.Findings = append(r.Findings, Finding{Seed: seed, Trace: res.t, Divergences: res.divs})
		}
		seed++
		if stop != nil && stop(r) {
			cancel()
			failed = errStopped
		}
	}
	if failed != nil && failed != errStopped {
		return r, failed
	}
	if err := ctx.Err(); err != nil && failed == nil {
		return r, err
	}
	return r, nil
}

// errStopped marks a campaign its stop function ended.
var errStopped = errors.New("stopped")

// Shrink minimises t (fuzz.Minimize) while a and b still diverge stably
// on it, or while A still cannot run it (ErrRunA). An error other than
// ErrRunA stops the shrink and is returned.
func Shrink(ctx context.Context, a, b trace.Backend, t *trace.Trace, opts trace.Options) (*trace.Trace, error) {
	var firstErr error
	small := fuzz.Minimize(t, func(ct *trace.Trace) bool {
		if firstErr != nil {
			return false
		}
		divs, flaky, err := Compare(ctx, a, b, ct, opts)
		if err != nil && !errors.Is(err, ErrRunA) {
			firstErr = err
			return false
		}
		return !flaky && len(divs) > 0 || err != nil
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return small, nil
}

func hasRunnerTimeout(obs []trace.Observation) bool {
	for _, o := range obs {
		if o.Result.Note == "runner" {
			return true
		}
	}
	return false
}
