package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/splicecheck/splicecheck/internal/procstat"
)

// tempPrefix starts the name of every temp dir a vm run or session makes:
// tempPrefix + OWNER + "-" + random digits, where OWNER is the owning
// process's PID and start time ("PID-START", ownerID). A run killed with
// SIGKILL cannot remove its dir; the next run's makeTempDir removes it
// (SweepStale) once it can tell that the owner is dead: no process has
// that PID and start time, and nobody holds the dir's lock file.
const tempPrefix = "splicecheck-vm-"

// lockName is the file in a temp dir its owner holds an flock on for as
// long as it uses the dir.
const lockName = "owner.lock"

// tempDir is a vm temp dir and the lock its owner holds on it.
type tempDir struct {
	path string
	lock *os.File // flocked (LOCK_EX) until release; nil if it could not be
}

// release drops the lock and removes the dir.
func (d *tempDir) release() error {
	if d == nil {
		return nil
	}
	if d.lock != nil {
		d.lock.Close()
	}
	return os.RemoveAll(d.path)
}

// makeTempDir sweeps the stale vm temp dirs of parent ("": os.TempDir())
// and makes a new one owned by this process, its lock held.
func makeTempDir(parent string) (*tempDir, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	SweepStale(parent)
	self, err := ownerID(os.Getpid())
	if err != nil {
		self = strconv.Itoa(os.Getpid()) + "-0"
	}
	path, err := os.MkdirTemp(parent, tempPrefix+self+"-")
	if err != nil {
		return nil, fmt.Errorf("vm temp dir: %w", err)
	}
	d := &tempDir{path: path}
	if f, err := os.OpenFile(filepath.Join(path, lockName), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600); err == nil {
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			d.lock = f
		} else {
			f.Close()
		}
	}
	return d, nil
}

// SweepStale removes the vm temp dirs in parent whose owner is dead and
// returns their paths. A dir is stale when the process its name gives
// (PID and start time) no longer exists and its lock file is not held;
// dirs of live owners, and names it cannot read as a vm temp dir, are
// kept. Without /proc (no way to tell) it removes nothing.
func SweepStale(parent string) ([]string, error) {
	if _, err := ownerID(os.Getpid()); err != nil {
		return nil, fmt.Errorf("sweep vm temp dirs: %w", err)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("sweep vm temp dirs: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		pid, start, ok := parseOwner(e.Name())
		if !ok || !e.IsDir() || ownerAlive(pid, start) {
			continue
		}
		path := filepath.Join(parent, e.Name())
		if lockHeld(path) {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}

// parseOwner reads a vm temp dir's name: tempPrefix PID-START-RANDOM.
func parseOwner(name string) (pid int, start string, ok bool) {
	rest, found := strings.CutPrefix(name, tempPrefix)
	parts := strings.Split(rest, "-")
	if !found || len(parts) != 3 {
		return 0, "", false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 64); err != nil {
			return 0, "", false
		}
	}
	pid, err := strconv.Atoi(parts[0])
	if err != nil || pid <= 0 {
		return 0, "", false
	}
	return pid, parts[1], true
}

// ownerAlive reports whether process pid exists and started at start
// (so it is the owner, not a later process given the same PID).
func ownerAlive(pid int, start string) bool {
	id, err := ownerID(pid)
	return err == nil && id == strconv.Itoa(pid)+"-"+start
}

// ownerID is "PID-START": the process's PID and its start time in clock
// ticks after boot (/proc/PID/stat, field 22), which no other process
// with that PID shares.
func ownerID(pid int) (string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	l, ok := procstat.Parse(stat)
	start := l.Field(22)
	if !ok || start == nil {
		return "", fmt.Errorf("/proc/%d/stat: no start time", pid)
	}
	return strconv.Itoa(pid) + "-" + string(start), nil
}

// lockHeld reports whether some process holds dir's lock file.
func lockHeld(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
