// Package kernelshim is splicecheck's `kernel` backend: every trace op runs
// on this machine's kernel, the way a C test in
// tools/testing/selftests/bpf would run it.
//
//	be := kernelshim.New(kernelshim.Config{})
//	if err := kernelshim.Available(); err != nil { ... } // one line: what is missing
//	obs, err := trace.Observe(ctx, be, tr, trace.Options{})
//
// # What an op does
//
// Sockets are TCP over 127.0.0.1 (conn: listen on a kernel-chosen port,
// connect, accept, close the listener), driven through golang.org/x/sys/unix:
// send/recv with MSG_* flags, splice(2) into a per-socket pipe (blocking
// write end, O_NONBLOCK read end), FIONREAD, poll(2) with timeout 0,
// shutdown(2), close(2) with SO_LINGER{1,0} for `rst`, and the `set`
// options. Maps are BPF_MAP_TYPE_SOCKMAP and BPF_MAP_TYPE_SOCKHASH (u32
// key, u32 fd value) created and updated with raw bpf(2) calls, so an op
// observes exactly the kernel's errno. Programs are canned sk_msg and
// sk_skb verdict (and stream parser) programs written with cilium/ebpf's
// asm package (no clang) and attached to the map with BPF_PROG_ATTACH
// (progs.go). iocopy is Go's real io.Copy between *net.TCPConn values made
// from the fds. EINTR is retried, EAGAIN never; SO_ERROR is never read (it
// would consume a pending ECONNRESET). `pair A B` is -EOPNOTSUPP on every
// kernel: no sock_ops callback can be run on demand.
//
// # conn A B pair
//
// For a trace with a `conn A B pair`, Open detects the pairing kfunc once
// per backend from BTF: bpf_sock_splice_pair in vmlinux (Cong Wang's
// loopback-splice RFC) or bpf_tcp_splice_pair in module tcp_splice's BTF.
// With neither, the conn connects as without pair and answers -EOPNOTSUPP.
// With one, Open loads a sock_ops program written with asm (pairprog.go;
// a raw BPF_PROG_LOAD, since the kfunc calls need BTF ids and, for the
// module, an fd_array entry), creates a results hash (and, for the RFC,
// the rendezvous sockhash), creates a cgroup v2 directory under the
// process's own cgroup (splicecheck-PID-N) and attaches the program to it.
// Per trace, because Open is outside the ops' timeouts; loading BTF and the
// program takes one to two seconds under QEMU TCG. The conn creates the
// listener and A with the whole process moved into that cgroup
// (cgroup.procs) and back, under a process-wide lock that keeps every
// other conn's socket creation out of that window; B, accepted from the
// listener, inherits the listener's cgroup. It then polls the results hash
// (keyed by socket cookie, SO_COOKIE) until both ESTABLISHED callbacks
// have reported, and answers the first -errno of A's and B's records, ok
// when a kfunc paired them, -ENOENT when neither called it; the runner's
// -ETIMEDOUT if the records never come. Close detaches the program and
// closes it and the maps, and removes the cgroup; a cgroup a killed process
// left behind is removed by the next run's Open. The VM guest mounts
// cgroup2 at /sys/fs/cgroup.
//
// # Isolation and cleanup
//
// Each run (Open) gets a fresh network namespace with lo up, created by
// unshare(CLONE_NEWNET) on a locked helper thread that then returns to its
// own namespace. A trace thread enters the run's namespace with setns(2)
// before its first op and leaves it after its last op, after an op that
// timed out and when an op panics, so no thread outlives a run inside its
// namespace (the runner never unlocks its threads, and a locked goroutine
// that ends on the main thread wedges it rather than ending it). Close
// releases everything on every exit path: iocopy connections, sockets
// (with SO_LINGER{1,0}, so no orphan keeps the namespace alive), pipes,
// programs (detached, then closed), maps, the pairing cgroup and the
// namespace fd. Maps and
// programs are named sc<pid>_* (objName), which the leak test uses to
// find this process's objects by id.
//
// # Blocked detection and settling
//
// The runner dispatches the next op once every thread is idle or blocked.
// Blocked(name) is true only while that thread sleeps (state S in
// /proc/self/task/TID/stat) inside the very syscall its op may block in
// (/proc/self/task/TID/syscall), while it is in `sleep`, or, in iocopy,
// while its locked goroutine is parked (the thread sleeps in futex(2)).
// Because kernel work an op sets off may finish after the op's syscall
// returns (softirq, psock backlog and strparser work, delayed ACKs,
// wakeups of blocked threads), every op then waits until the run's
// observable state has been stable for Config.SettleWindow with no TCP
// segment in flight (settle.go). This makes runs reproducible: the next
// op sees the kernel quiescent, not whatever the scheduler left.
//
// # Timeouts and cancellation
//
// The runner cancels an op's context after the op timeout. A blocked
// syscall cannot be abandoned (the OS thread is the trace thread) and Go's
// signal handlers use SA_RESTART, so a signal would not reliably end it.
// Instead a watcher goroutine per blocking op makes the syscall return:
// for recv it shuts the socket down for reading (nothing is sent to the
// peer), for send for writing, for splice for reading and then closes the
// socket's pipe (a splice waiting for pipe space gets EPIPE; the next op
// starts a new pipe), escalating to SHUT_RDWR after 50 ms; for iocopy it
// expires both connections' deadlines. The watcher works on a duplicate of
// the fd, so it reaches the right socket even if the trace closed the fd
// meanwhile. A run has no meaningful observations left for a socket whose
// op timed out.
//
// # Privileges
//
// A run needs CAP_SYS_ADMIN (network namespaces), CAP_NET_ADMIN and CAP_BPF
// (or CAP_SYS_ADMIN) and a kernel with sockmap. Available reports what is
// missing as one line wrapping ErrNoPrivilege or ErrNoBPF; Open returns the
// same error. Tests use internal/testenv.RequireKernel, which skips them
// with that line, or fails them when SPLICECHECK_REQUIRE_KERNEL=1.
package kernelshim
