package kernelshim

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Capabilities a run needs (include/uapi/linux/capability.h).
const (
	capNetAdmin = 12 // sockmap program attach, SO_BUSY_POLL, bringing lo up
	capSysAdmin = 21 // unshare(CLONE_NEWNET) and setns(2); BPF before 5.8
	capBPF      = 39 // BPF_MAP_CREATE / BPF_PROG_LOAD since 5.8
)

// Available reports whether this process can run traces on the live
// kernel. It returns nil, or an error wrapping ErrNoPrivilege or ErrNoBPF
// whose message is one line saying what is missing, for example
//
//	kernel backend: need root (missing CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF): running as uid 1000
//
// It reads the effective capability set from /proc/self/status, raises
// RLIMIT_MEMLOCK (kernels before 5.11 charge BPF memory to it; done here
// rather than through cilium/ebpf/rlimit, whose init-time probe fails when
// the binary is PID 1 of a VM before /proc is mounted), and creates and
// closes a one-entry BPF_MAP_TYPE_SOCKMAP. Success is remembered for the
// life of the process; a failure is not, so a probe made too early (before
// /proc is mounted in a VM guest, say) does not stick.
func Available() error {
	if availableOK.Load() {
		return nil
	}
	err := probe()
	if err == nil {
		availableOK.Store(true)
	}
	return err
}

var availableOK atomic.Bool

func probe() error {
	caps, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("%w: read capabilities: %w", ErrNoPrivilege, err)
	}
	need := []struct {
		bit  uint
		name string
	}{{capSysAdmin, "CAP_SYS_ADMIN"}, {capNetAdmin, "CAP_NET_ADMIN"}}
	var missing []string
	for _, c := range need {
		if caps&(1<<c.bit) == 0 {
			missing = append(missing, c.name)
		}
	}
	// CAP_BPF exists since 5.8; CAP_SYS_ADMIN alone also allows BPF.
	if caps&(1<<capBPF) == 0 && caps&(1<<capSysAdmin) == 0 {
		missing = append(missing, "CAP_BPF")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w (missing %s): running as uid %d",
			ErrNoPrivilege, strings.Join(missing, ", "), os.Geteuid())
	}
	raiseMemlock()
	fd, err := bpfMapCreate(unix.BPF_MAP_TYPE_SOCKMAP, 4, 4, 1, objName("probe"))
	if err != nil {
		return fmt.Errorf("%w: create a BPF_MAP_TYPE_SOCKMAP: %w", ErrNoBPF, err)
	}
	unix.Close(fd)
	return nil
}

// effectiveCaps parses CapEff from /proc/self/status.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no CapEff line in /proc/self/status")
}

// raiseMemlock lifts RLIMIT_MEMLOCK to infinity, as cilium/ebpf/rlimit
// does on kernels that still charge BPF objects to it. Failure is ignored:
// newer kernels account BPF memory to the memory cgroup instead.
func raiseMemlock() {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf)
}
