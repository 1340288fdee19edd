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
	// ErrNoStats is returned by a backend asked for a run's account
	// (Options.Stats) that keeps none.
	ErrNoStats = errors.New("the backend keeps no copy accounting")
	// ErrNoTimeline is returned by a backend asked for a run's event
	// log (Options.Timeline) that keeps none.
	ErrNoTimeline = errors.New("the backend keeps no timeline")
	// ErrOpTimeout is the cause (context.Cause) of the context of an op
	// the runner timed out; the run's own cancellation has another cause.
	ErrOpTimeout = errors.New("op timed out (runner)")
)

// Sentinel errors of reading a trace (ParseReader). Each is the user's
// input, like ErrSyntax.
var (
	// ErrTooLarge: the input is longer than the read limit. Reading stops
	// at the first byte past it.
	ErrTooLarge = errors.New("trace larger than the read limit")
	// ErrBinary: the input holds a NUL byte, or its first line is not
	// UTF-8. It comes as a *ParseError at the offending byte.
	ErrBinary = errors.New("not a trace (binary data)")
	// ErrEmpty: the input parsed but holds no op.
	ErrEmpty = errors.New("no ops (an empty trace is refused: it is almost certainly a mistake)")
	// ErrRead: the input could not be read (a directory, an I/O error).
	ErrRead = errors.New("cannot read trace")
)

// ParseError is a syntax or semantic error at a position in a trace file.
// Its Error is the one-line `FILE:LINE:COL: message` of the contract.
type ParseError struct {
	File string
	Pos  Pos
	Msg  string
	Err  error // a more specific sentinel (ErrBinary), or nil
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// Unwrap makes errors.Is(err, ErrSyntax) hold, and errors.Is(err, e.Err)
// when e.Err is set.
func (e *ParseError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrSyntax, e.Err}
	}
	return []error{ErrSyntax}
}
