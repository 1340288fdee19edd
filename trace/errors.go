package trace

import (
	"errors"
	"fmt"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrSyntax is wrapped by every *ParseError.
	ErrSyntax = errors.New("trace syntax error")
	// ErrNotBuilt is returned for a backend the project names but has not built yet.
	ErrNotBuilt = errors.New("backend not built yet")
	// ErrUnknownBackend is returned for a backend name nobody knows.
	ErrUnknownBackend = errors.New("unknown backend")
	// ErrUnknownProfile is returned for a profile name that is not a base or patch.
	ErrUnknownProfile = errors.New("unknown profile")
	// ErrUnsupported is returned by a backend that cannot run a trace as asked
	// (for example a profile it does not implement).
	ErrUnsupported = errors.New("unsupported by backend")
	// ErrOpTimeout is the cause (context.Cause) of the context of an op
	// the runner timed out; the run's own cancellation has another cause.
	ErrOpTimeout = errors.New("op timed out (runner)")
)

// ParseError is a syntax or semantic error at a position in a trace file.
// Its Error is the one-line `FILE:LINE:COL: message` of the contract.
type ParseError struct {
	File string
	Pos  Pos
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) hold.
func (e *ParseError) Unwrap() error { return ErrSyntax }
