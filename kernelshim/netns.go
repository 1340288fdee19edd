package kernelshim

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// netns is one run's network namespace, held open by an fd (an nsfs file
// from /proc/thread-self/ns/net). The namespace lives while that fd, a
// thread inside it, or a socket created in it exists; closing the fd after
// every trace thread has exited and every socket is closed lets the kernel
// tear it down (asynchronously, in its cleanup_net work).
type netns struct {
	fd int
}

// newNetns creates a fresh network namespace with loopback up.
//
// It runs on a goroutine locked to its OS thread: unshare(CLONE_NEWNET)
// moves that thread into the new namespace, where it opens an fd to it and
// sets IFF_UP on lo (SIOCGIFFLAGS/SIOCSIFFLAGS on an AF_INET socket of the
// namespace); then setns(2) returns the thread to the namespace it came
// from and it is unlocked. If that fails the goroutine exits still locked,
// so the Go runtime does not reuse the thread in the wrong namespace.
//
// (Merely exiting locked is not enough: a goroutine that happens to run on
// the process's main thread wedges it forever instead of ending it, and
// the main thread would then pin the namespace for the life of the
// process.)
func newNetns() (*netns, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := currentNetns()
		if err != nil {
			ch <- result{-1, err}
			runtime.UnlockOSThread()
			return
		}
		defer unix.Close(orig)
		fd, err := func() (int, error) {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return -1, fmt.Errorf("%w: unshare(CLONE_NEWNET): %w", ErrNetns, err)
			}
			fd, err := currentNetns()
			if err != nil {
				return -1, err
			}
			if err := loopbackUp(); err != nil {
				unix.Close(fd)
				return -1, err
			}
			return fd, nil
		}()
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			// Stay locked: the thread dies with this goroutine.
			if err == nil {
				unix.Close(fd)
				fd, err = -1, fmt.Errorf("%w: setns back: %w", ErrNetns, rerr)
			}
			ch <- result{fd, err}
			return
		}
		ch <- result{fd, err}
		runtime.UnlockOSThread()
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return &netns{fd: r.fd}, nil
}

// currentNetns opens the calling thread's network namespace.
func currentNetns() (int, error) {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("%w: open /proc/thread-self/ns/net: %w", ErrNetns, err)
	}
	return fd, nil
}

// loopbackUp sets IFF_UP on lo in the calling thread's network namespace.
func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: socket for lo: %w", ErrNetns, err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("%w: ifreq lo: %w", ErrNetns, err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%w: SIOCGIFFLAGS lo: %w", ErrNetns, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%w: SIOCSIFFLAGS lo up: %w", ErrNetns, err)
	}
	return nil
}

// enter moves the calling OS thread into the namespace with setns(2). The
// caller must be locked to its thread until it leaves the namespace again,
// so no other goroutine runs in it.
func (n *netns) enter() error {
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("%w: setns: %w", ErrNetns, err)
	}
	return nil
}

// close drops the backend's reference to the namespace.
func (n *netns) close() error {
	if n == nil || n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	if err != nil {
		return fmt.Errorf("%w: close netns fd: %w", ErrCleanup, err)
	}
	return nil
}
