package vm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A vm temp dir whose owner died (SIGKILL: it could not clean up) is
// removed by the next run's sweep; one whose owner lives, or whose PID
// now belongs to another process (start time differs) but is locked, or
// that is not a vm temp dir, stays.
func TestSweepStale(t *testing.T) {
	parent := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := strconv.Itoa(dead.Process.Pid)
	self, err := ownerID(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	mk := func(name string) string {
		p := filepath.Join(parent, name)
		if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	live, err := makeTempDir(parent) // ours, locked
	if err != nil {
		t.Fatal(err)
	}
	defer live.release()
	stale := mk(tempPrefix + deadPID + "-12345-678")
	reused := mk(tempPrefix + strconv.Itoa(os.Getpid()) + "-1-678") // our PID, another start time
	other := mk("splicecheck-vm-123456")                            // the old naming: no owner to check
	removed, err := SweepStale(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, reused} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("stale %s kept (%v); removed %v", p, err, removed)
		}
	}
	for _, p := range []string{live.path, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if want := tempPrefix + self + "-"; filepath.Base(live.path)[:len(want)] != want {
		t.Errorf("temp dir %s does not name its owner %s", live.path, self)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the two stale dirs", removed)
	}
}

// A dir whose owner's PID and start time match a live process but whose
// lock nobody holds is kept: the owner is alive (it may be between
// making the dir and locking it).
func TestSweepKeepsLiveOwnerWithoutLock(t *testing.T) {
	parent := t.TempDir()
	self, err := ownerID(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	p := filepath.Join(parent, tempPrefix+self+"-99")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := SweepStale(parent); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("live owner's dir removed: %v", err)
	}
}
