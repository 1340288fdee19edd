package kernelshim

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Kmsg follows the kernel log (/dev/kmsg) from the moment it is opened,
// so that a campaign can tell which trace made the kernel warn: a WARN_ON
// splat ("WARNING: CPU: ..."), a BUG, or a message such as tcp.c's "TCP
// recvmsg seq # bug" that comes with a warning. Reading /dev/kmsg needs
// CAP_SYSLOG (root) when dmesg_restrict is set.
//
// The descriptor is non-blocking and read with read(2) directly: each
// read returns one record, and EAGAIN when there is none (an os.File
// would park in the runtime poller instead).
type Kmsg struct {
	fd  int
	buf []byte
}

// OpenKmsg opens /dev/kmsg positioned at its end: only records logged
// afterwards are read.
func OpenKmsg() (*Kmsg, error) {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open kernel log: %w", err)
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seek kernel log: %w", err)
	}
	return &Kmsg{fd: fd, buf: make([]byte, 8192)}, nil
}

// Warnings returns the warning records logged since the last call (or
// since OpenKmsg), each as its message text.
func (k *Kmsg) Warnings() ([]string, error) { return k.read(isWarning) }

// Messages returns every record logged since the last call (or since
// OpenKmsg), each as its message text: what the kernel said about a
// system call just made, such as the module loader's reason for refusing
// a module.
func (k *Kmsg) Messages() ([]string, error) {
	return k.read(func(string) bool { return true })
}

// read returns the messages of the records logged since the last call
// that keep accepts.
func (k *Kmsg) read(keep func(msg string) bool) ([]string, error) {
	var out []string
	for {
		// A record is "PRIO,SEQ,USEC,FLAGS;MESSAGE\n" plus continuation
		// lines.
		n, err := unix.Read(k.fd, k.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return out, nil
		case errors.Is(err, unix.EPIPE):
			continue // overwritten before we read it: go on with the oldest left
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return out, fmt.Errorf("read kernel log: %w", err)
		case n == 0:
			return out, nil
		}
		first, _, _ := strings.Cut(string(k.buf[:n]), "\n")
		if _, msg, ok := strings.Cut(first, ";"); ok && keep(msg) {
			out = append(out, strings.TrimSpace(msg))
		}
	}
}

// isWarning reports whether a kernel log message starts a warning or a
// bug report.
func isWarning(msg string) bool {
	for _, p := range []string{"WARNING:", "BUG:", "BUG ", "TCP recvmsg seq # bug", "general protection fault", "Oops"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Close closes the log.
func (k *Kmsg) Close() error { return unix.Close(k.fd) }
