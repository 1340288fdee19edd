package model

import "github.com/splicecheck/splicecheck/model/internal/linux"

// The model backend and its configuration.
type (
	// Backend is the `model` backend (linux.Backend): Name, Run (a
	// trace.Backend) and ExploreRun.
	Backend = linux.Backend
	// Config selects what a model backend runs beyond the profile:
	// mutations, liveness checks, byte provenance, an external
	// transport, a name.
	Config = linux.Config
	// Mutation is a planted bug of the bug zoo (Config.Mutations).
	Mutation = linux.Mutation
)

// New returns the model backend, with no mutation.
func New() *Backend { return linux.New() }

// NewWithConfig returns a model backend for cfg; an unknown mutation
// name is an error.
func NewWithConfig(cfg Config) (*Backend, error) { return linux.NewWithConfig(cfg) }

// Mutations lists every mutation, sorted by name.
func Mutations() []Mutation { return linux.Mutations() }

// Implements returns nil if the model implements profile (a name as
// trace.ParseProfile accepts it), else an error saying why not
// (trace.ErrUnknownProfile, or trace.ErrUnsupported for a base or patch
// the model lacks).
func Implements(profile string) error {
	_, err := linux.ParseProfile(profile)
	return err
}

// An external TCP the model can run on (Config.Transport): the contract
// is on each interface.
type (
	Transport        = linux.Transport
	HoldingTransport = linux.HoldingTransport
	Endpoint         = linux.Endpoint
)

// The directions of Endpoint.Shutdown.
const (
	ShutdownRead  = linux.ShutdownRead
	ShutdownWrite = linux.ShutdownWrite
)

// What a run reports.
type (
	// Stats is a run's account (trace.Options.Stats): copy accounting,
	// ring writes, read tags, completion order, coverage.
	Stats = linux.Stats
	// Outcome is one run under an exploring schedule (ExploreRun).
	Outcome = linux.Outcome
	// RingWrite is one write into a loopback-splice ring (Outcome,
	// Stats).
	RingWrite = linux.RingWrite
	// Tag is the provenance of one payload byte (Config.Provenance).
	Tag = linux.Tag
	// Coverage is the set of mirrored kernel functions runs reached.
	Coverage = linux.Coverage
	// Fn is one mirrored kernel function (LookupFn).
	Fn = linux.Fn
	// SpliceRecord is one FreeBSD splice of a run (Stats.Splices).
	SpliceRecord = linux.SpliceRecord
	// Fault is a failure the model detects in the kernel it runs (a
	// lost wakeup, a livelock, a leak, a page-ownership violation), with
	// where it happened.
	Fault = linux.Fault
)

// LookupFn returns the mirrored function of a kernel function name.
func LookupFn(name string) (Fn, bool) { return linux.LookupFn(name) }

// The bits of a Tag beyond its socket and offset.
const (
	TagRing        = linux.TagRing
	TagIngress     = linux.TagIngress
	TagRingReaders = linux.TagRingReaders
	TagRingWriters = linux.TagRingWriters
)

// The errors a run stops with, matched with errors.Is.
var (
	ErrInternal      = linux.ErrInternal
	ErrPageOwnership = linux.ErrPageOwnership
	ErrLivelock      = linux.ErrLivelock
	ErrLostWakeup    = linux.ErrLostWakeup
	ErrLeak          = linux.ErrLeak
	ErrKernelCrash   = linux.ErrKernelCrash
	ErrTransport     = linux.ErrTransport
)
