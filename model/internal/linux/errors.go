package linux

import (
	"errors"
	"syscall"
)

// Sentinel errors of the model backend; match them with errors.Is.
var (
	// ErrInternal marks a model bug: a panic in a model thread or kernel
	// context, a violated invariant, or a deadlock of the scheduler. A run
	// that hits it returns an error instead of observations.
	ErrInternal = errors.New("model: internal error")
	// errInvariant marks a run that broke an invariant the kernel keeps
	// (see checkInvariants): a model bug, or a planted one (a mutation).
	errInvariant = errors.New("model: invariant violated")
	// ErrPageOwnership marks a run that broke the page-ownership
	// invariants (page.go): an access to or put of freed memory, get_page
	// on a slab object, a slab object in a pipe, or memory still live
	// after every socket and pipe was released (a leak).
	ErrPageOwnership = errors.New("model: page ownership violated")
	// ErrLivelock marks a run stopped in an op that looped without end:
	// it went round a yield point maxOpYields times, neither making
	// progress nor sleeping.
	ErrLivelock = errors.New("model: livelock")
	// ErrLostWakeup marks a run stopped at a lost wakeup (Config.Liveness).
	ErrLostWakeup = errors.New("model: lost wakeup")
	// ErrLeak marks a run that left a closed pair or a psock unreleased
	// (Config.Liveness: a pair whose two sockets were closed still holds
	// its psock or ring at the end of the run; every run: a psock that
	// survives teardown). It comes as a Fault of kind "leak".
	ErrLeak = errors.New("model: teardown leaks")
	// ErrKernelCrash marks a run stopped where the modelled kernel
	// crashes (a Fault of kind "crash" whose Site is the kernel
	// function): what would follow is not a kernel's answer.
	ErrKernelCrash = errors.New("model: the kernel crashes here")
	// errProfile marks a profile the model does not implement. It wraps
	// trace.ErrUnsupported where returned to the runner.
	errProfile = errors.New("model: profile not implemented")
	// errMutation marks an unknown mutation name (Config.Mutations).
	errMutation = errors.New("model: unknown mutation")
	// errDeadlock marks a run in which every thread is asleep and no
	// deadline is pending. It comes wrapped together with ErrInternal.
	errDeadlock = errors.New("model: deadlock")
	// ErrTransport marks a run on an external Transport (Config.Transport)
	// that the transport failed: it could not be made, dial, settle,
	// advance its clock, or close cleanly.
	ErrTransport = errors.New("model: transport failed")
)

// Fault is a run error that says what went wrong and where, so that a
// property can tell one defect from another: Kind is "lost-wakeup",
// "livelock", "leak", "use-after-free", "double-put", "get-page-slab",
// "slab-in-pipe", "crash"; Site is the kernel function a thread slept
// or looped in (with, after a slash, what made its wait condition true),
// the object that leaked, the model function (a kernel function's Go
// name) that broke page ownership, or the kernel function that crashes.
// It wraps Err: ErrLostWakeup, ErrLivelock, ErrLeak, ErrPageOwnership or
// ErrKernelCrash.
type Fault struct {
	Err        error
	Kind, Site string
	Msg        string
}

func (f *Fault) Error() string { return f.Err.Error() + ": " + f.Msg }
func (f *Fault) Unwrap() error { return f.Err }

// Kernel error numbers the model returns. A zero errno means success.
const (
	errOK          syscall.Errno = 0
	errEAGAIN                    = syscall.EAGAIN
	errEBADF                     = syscall.EBADF
	errEINVAL                    = syscall.EINVAL
	errENOENT                    = syscall.ENOENT
	errENOSPC                    = syscall.ENOSPC
	errENOMEM                    = syscall.ENOMEM
	errEPIPE                     = syscall.EPIPE
	errEACCES                    = syscall.EACCES
	errE2BIG                     = syscall.E2BIG
	errEBUSY                     = syscall.EBUSY
	errEIO                       = syscall.EIO
	errEFAULT                    = syscall.EFAULT
	errENOTCONN                  = syscall.ENOTCONN
	errEOPNOTSUPP                = syscall.EOPNOTSUPP
	errECONNRESET                = syscall.ECONNRESET
	errETIMEDOUT                 = syscall.ETIMEDOUT
	errENOPROTOOPT               = syscall.ENOPROTOOPT
	errESPIPE                    = syscall.ESPIPE
)
