package ringbuf

import "errors"

// Sentinel errors. Match them with errors.Is: New wraps ErrSize with the
// offending size, and CheckInvariants wraps ErrInvariant with the cursors.
var (
	// ErrSize is returned by New for a size that is not a power of two
	// between MinSize and MaxSize.
	ErrSize = errors.New("ringbuf: invalid ring size")
	// ErrFull is returned by the non-blocking producer calls (Write,
	// WriteFrom) when they stored fewer bytes than asked because the ring
	// had no more space. It is the ring's EAGAIN.
	ErrFull = errors.New("ringbuf: ring full")
	// ErrEmpty is returned by the non-blocking consumer calls (Read, ReadTo)
	// when the ring holds no bytes and the producer has not closed.
	ErrEmpty = errors.New("ringbuf: ring empty")
	// ErrClosed is returned to the producer after either side closed, and to
	// the consumer after CloseRead.
	ErrClosed = errors.New("ringbuf: ring closed")
	// ErrInvariant is wrapped by CheckInvariants when a ring invariant
	// (see the package documentation) does not hold.
	ErrInvariant = errors.New("ringbuf: ring invariant violated")
)

// errInvalidCount is returned when an io.Reader or io.Writer handed to
// WriteFrom or ReadTo reports a count outside [0, len(p)].
var errInvalidCount = errors.New("ringbuf: invalid count from io.Reader or io.Writer")
