package fuzz

import (
	"errors"
	"fmt"
	"strings"

	"github.com/splicecheck/splicecheck/trace"
)

// Violation is one property failure. Kind and Site are its signature:
// what went wrong and where, in words that stay the same from one trace
// of the defect to the next (so a known failure can be told from a new
// one, KnownFailures), while Msg and Line say what this trace shows.
//
// Kind is a word of the property's own: "corrupted", "reordered",
// "duplicated", "lost", "overread", "eof-early", "lost-wakeup",
// "livelock", "leak", "use-after-free", ... Site names the code or
// object at fault: the kernel function a thread sleeps in, the function
// that looped or faulted, the object that leaked, or the path a byte
// took ("ring", "tcp", "ingress", "pipe"); "" when the property cannot
// tell.
type Violation struct {
	Property string // set by the campaign (Property.Judge)
	Kind     string
	Site     string
	Line     int // the trace line where it shows, 0 if none
	Msg      string
}

func (v *Violation) Error() string {
	var b strings.Builder
	b.WriteString(ErrProperty.Error())
	b.WriteString(": ")
	if v.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", v.Line)
	}
	b.WriteString(v.Msg)
	fmt.Fprintf(&b, " [%s]", v.Signature())
	return b.String()
}

// Unwrap makes every Violation match ErrProperty.
func (v *Violation) Unwrap() error { return ErrProperty }

// Signature is "kind@site" (or just kind): what KnownFailures match.
func (v *Violation) Signature() string {
	if v.Site == "" {
		return v.Kind
	}
	return v.Kind + "@" + v.Site
}

// violation returns a Violation of kind at site shown by op.
func violation(op *trace.Op, kind, site, format string, args ...any) *Violation {
	v := &Violation{Kind: kind, Site: site, Msg: fmt.Sprintf(format, args...)}
	if op != nil {
		v.Line = op.Pos.Line
	}
	return v
}

// AsViolation returns err's Violation; an error that wraps ErrProperty
// without one is a Violation of kind "unspecified".
func AsViolation(err error) (*Violation, bool) {
	if err == nil {
		return nil, false
	}
	var v *Violation
	if errors.As(err, &v) {
		return v, true
	}
	if errors.Is(err, ErrProperty) {
		return &Violation{Kind: "unspecified", Msg: err.Error()}, true
	}
	return nil, false
}

// Judge checks r against p and returns its violation, with Property set,
// or nil.
func (p Property) Judge(r *Execution) *Violation {
	err := p.Check(r)
	if err == nil {
		return nil
	}
	v, ok := AsViolation(err)
	if !ok {
		v = &Violation{Kind: "unspecified", Msg: err.Error()}
	}
	v.Property = p.Name
	return v
}
