package fuzz

import (
	"errors"
	"fmt"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// ErrProperty marks a property violation; Violation errors wrap it.
var ErrProperty = errors.New("property violated")

// Run is one execution a property judges: the trace and what the backend
// observed (one observation per op, in trace order), or the error that
// stopped the run.
type Run struct {
	Trace *trace.Trace
	Obs   []trace.Observation
	Err   error
	// Ref is the same trace run on the reference (the unmutated model of
	// the same profile, or the live kernel under `check --diff kernel`);
	// nil when there is none.
	Ref    []trace.Observation
	RefErr error
	// Skipped: a run took longer than the campaign allows; it is not
	// judged.
	Skipped bool
	// Stats is a model backend's account of the run (its ring writes,
	// with the segments held in flight at each); nil on other backends
	// and for a run that failed.
	Stats *model.Stats
	// Base is the same trace run on the base profile of a patch profile
	// (Bases), for the transparent property; nil when there is none.
	Base      []trace.Observation
	BaseStats *model.Stats
	BaseErr   error

	streams *trace.Streams // computed on demand
}

// Property is one checker of ../shared/DESIGN.md's properties. Check
// returns nil when r satisfies it (or the property does not apply to r),
// else an error wrapping ErrProperty that says where.
type Property struct {
	Name  string
	Doc   string
	Check func(r *Run) error
}

// Properties are the checkers campaigns run, in table order.
var Properties = []Property{
	{"model-sound", "the run ends without a model invariant failure, leak or deadlock", checkSound},
	{"page-ownership", "no page is used or put after it was freed, get_page never touches slab memory, no slab object reaches a pipe, nothing is left after teardown", checkPages},
	{"no-lost-wakeup", "no thread sleeps while the condition it waits for holds", checkWakeups},
	{"no-livelock", "no op loops forever without making progress or sleeping", checkLivelock},
	{"no-teardown-leak", "once both sockets of a pair are closed, their psocks and ring are released", checkLeaks},
	{"stream-integrity", "every byte read (recv, pipe) is a byte some possible sender sent, in its order, once; none lost mid-stream where nothing in the trace lets Linux lose it", checkIntegrity},
	{"ring-content", "bytes read out of a loopback-splice ring are the bytes written into it, in order", checkRingContent},
	{"eof-after-data", "a reader sees EOF only after every byte its peer sent before the FIN, unless a reset the trace explains came first", checkEOF},
	{"reads-agree", "FIONREAD, poll and MSG_PEEK agree with what the next recv returns, both ways", checkReadsAgree},
	{"transparent", "a patch profile gives every receiver the bytes its base profile gives (the patch claims to be invisible to applications)", checkTransparent},
	{"agrees-with-reference", "the observations equal the reference run's (the unmutated profile, or the kernel)", checkReference},
}

// PropertyByName returns the named property.
func PropertyByName(name string) (Property, bool) {
	for _, p := range Properties {
		if p.Name == name {
			return p, true
		}
	}
	return Property{}, false
}

// faultViolation turns a model run error into a Violation with the
// fault's kind and site (model.Fault), or kind "model-error".
func faultViolation(err error) *Violation {
	var f *model.Fault
	if errors.As(err, &f) {
		return &Violation{Kind: f.Kind, Site: f.Site, Msg: err.Error()}
	}
	return &Violation{Kind: "model-error", Msg: err.Error()}
}

// runErrors are the model's run errors that properties of their own
// report; checkSound reports every other.
var runErrors = []error{model.ErrLostWakeup, model.ErrLivelock, model.ErrLeak, model.ErrPageOwnership}

// checkSound fails a run that returned an error (the model reports its
// invariant checks and deadlocks that way), except the lost wakeups,
// livelocks, leaks and page faults that properties of their own report.
func checkSound(r *Run) error {
	if r.Err == nil {
		return nil
	}
	for _, e := range runErrors {
		if errors.Is(r.Err, e) {
			return nil
		}
	}
	v := faultViolation(r.Err)
	v.Msg = "the run failed: " + v.Msg
	return v
}

// failsWith returns a check that fails a run the model stopped with an
// error wrapping target.
func failsWith(target error) func(*Run) error {
	return func(r *Run) error {
		if errors.Is(r.Err, target) {
			return faultViolation(r.Err)
		}
		return nil
	}
}

var (
	// checkPages: a page-ownership fault, or memory left after teardown.
	checkPages = failsWith(model.ErrPageOwnership)
	// checkLivelock: an op that looped without end.
	checkLivelock = failsWith(model.ErrLivelock)
	// checkWakeups: a lost wakeup.
	checkWakeups = failsWith(model.ErrLostWakeup)
	// checkLeaks: a closed pair, or a psock, not released.
	checkLeaks = failsWith(model.ErrLeak)
)

func checkReference(r *Run) error {
	if r.Ref == nil && r.RefErr == nil {
		return nil
	}
	if (r.Err == nil) != (r.RefErr == nil) {
		return &Violation{Kind: "run-error", Msg: fmt.Sprintf("run error %v, reference error %v", r.Err, r.RefErr)}
	}
	if divs := trace.Diff(r.Obs, r.Ref); len(divs) > 0 {
		return &Violation{Kind: "differs", Msg: fmt.Sprintf("%d ops differ from the reference, first: %s", len(divs), divs[0])}
	}
	return nil
}
