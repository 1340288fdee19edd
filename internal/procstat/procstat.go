// Package procstat reads the lines of /proc/PID/stat (proc(5)): the
// command name in parentheses, which may hold spaces and parentheses, then
// space-separated fields numbered from 3 (the state).
package procstat

import "bytes"

// Line is one /proc/PID/stat line, split at its command name. It refers
// to the bytes it was parsed from.
type Line struct {
	Comm []byte // field 2, without its parentheses
	rest []byte // what follows the command name: " S PPID ..."
}

// Parse splits b at its command name (the last ')' closes it); ok is
// false when b has none.
func Parse(b []byte) (l Line, ok bool) {
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return Line{}, false
	}
	return Line{Comm: b[open+1 : closing], rest: b[closing+1:]}, true
}

// State is field 3, the task state letter ('R' runnable, 'S', 'I', ...),
// or 0 when the line stops before it. It does not allocate.
func (l Line) State() byte {
	if len(l.rest) >= 2 {
		return l.rest[1]
	}
	return 0
}

// Field returns field n (proc(5)'s numbering, n >= 3: 4 is the parent's
// PID, 22 the start time in clock ticks after boot), or nil when the line
// has fewer fields.
func (l Line) Field(n int) []byte {
	f := bytes.Fields(l.rest)
	if n < 3 || n-3 >= len(f) {
		return nil
	}
	return f[n-3]
}
