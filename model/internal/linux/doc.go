// Package linux is the kernel mirror behind package model: the Linux
// socket splicing paths (net/core/skmsg.c, net/ipv4/tcp_bpf.c, the parts
// of net/core/sock_map.c, net/ipv4/tcp.c, net/strparser and fs/splice.c
// they use) written in Go with the kernel's names, on an in-model
// reference TCP or an external one, run by a deterministic scheduler.
// Other packages reach it through package model, which re-exports the
// backend, its configuration, the transport interfaces and what a run
// reports; every other name here is the mirror's own.
//
// # Layout (one file per concern)
//
//	backend.go   Backend, Run: trace dispatch and the model threads
//	ops.go       the system calls of each trace op (send, recv, splice, ...)
//	sched.go     the cooperative deterministic scheduler, wait queues, virtual time
//	sched_policy.go  the scheduler's policies: FIFO, priority, seeded, the exploring ones
//	sock.go      struct sock/socket/file: states, locks, callbacks, shutdown
//	tcp.go       the TCP interface and the socket-level TCP code both TCPs share
//	             (send prologue, ioctl, poll, struct proto)
//	tcp_read.go  the receive paths both TCPs share (tcp_recvmsg, tcp_read_sock, tcp_read_skb)
//	tcp_ref.go   refTCP, the reference TCP: endpoint (connection, tcp_sock, segments);
//	             tcp_ref_snd.go its send path, tcp_ref_rcv.go its receive path,
//	             tcp_ref_close.go shutdown/close/reset/TIME_WAIT, tcp_ref_flow.go
//	             Linux's loopback buffers and windows, tcp_ref_timer.go its timers
//	transport.go Transport and Endpoint: an external TCP the model can run on (Config.Transport)
//	tcp_ext.go   extTCP, the TCP interface on a Transport (the netstack backend's bridge):
//	             tcp_ext_snd.go, tcp_ext_rcv.go and tcp_ext_close.go likewise
//	page.go      pages and slab objects (refcounted), page frags, the ownership faults
//	skbuff.go    skbs (fragments; a slab head under rx copybreak)
//	skmsg.go     struct sk_msg and its scatterlist ring
//	psock.go     struct sk_psock: ingress queues, sk_skb verdict, backlog work
//	strparser.go the stream parser of a psock
//	tcp_bpf.go   tcp_bpf protos: sendmsg/verdict, recvmsg, ioctl
//	push61.go    linux-6.1's TCP under tcp_bpf_push: MSG_SPLICE_PAGES copied into the task frag
//	sockmap.go   sockmap and sockhash: update, delete, links, close
//	progs.go     the canned BPF programs
//	pipe.go      pipes, pipe buffers and their ops, F_SETPIPE_SZ, pipe_read
//	splice.go    skb_splice_bits (linear_to_page), tcp_splice_read, do_splice
//	splice_read.go  profiles splice-copy (copy_splice_read) and splice-zerocopy
//	             (tcp_bpf_splice_read with the page-passing actor)
//	stats.go     copy accounting per op kind (splicecheck run --stats)
//	zerocopy.go  MSG_ZEROCOPY: ids, ubuf_info references on skbs, completions on the error queue
//	sosplice.go  profile freebsd-so-splice: FreeBSD's SO_SPLICE over the model's sockets
//	iocopy.go    Go's io.Copy (splice, then the generic copy on EINVAL)
//	poll.go      poll masks
//	profile.go   linux-6.18, linux-6.12 and linux-6.1
//	splice_loopback.go  profile loopback-splice (Cong Wang's RFC, as posted)
//	splice_seq.go       profile loopback-splice-seq (multikernel/tcp_splice's ordering fix)
//	explore.go   explore mode: yield points, waitEvent, ExploreRun and its Outcome
//	coverage.go  which mirrored kernel functions a run reached (Stats.Coverage); the
//	             registry coverage_table.go is generated (internal/mirrorgen), the
//	             scopes by profile and transport are in coverage_scope.go
//
// Every function that mirrors kernel code names it, with file and
// version; deliberate differences are marked "Unlike Linux".
//
// # Threads, contexts and time
//
// A run has one model thread (task) per trace thread. Ops are dispatched
// in trace order exactly as trace.RunOps does: op i goes to its thread's
// queue, then the scheduler runs until every thread is idle or blocked;
// `join` waits for the target's earlier ops; `sleep` blocks only its
// thread; every thread is joined at the end. Only one model thread runs at
// a time (a coroutine switch, iter.Pull), so the model needs no locks and its
// results do not depend on the Go scheduler.
//
// Kernel contexts are explicit. The NET_RX softirq (delivery of a TCP
// segment, tcp_v4_rcv) is raised by the transmitting code and runs inline
// at once, as on loopback, where the sending task runs the receive path
// when it re-enables bottom halves; a delivery raised while a softirq
// runs is queued and handled by the same loop (net_rx_action), and a
// segment for a socket a task owns goes to that socket's backlog, run at
// release_sock (which is how a sender sees the ACKs of its own syscall
// only when the syscall ends). Workqueue contexts (the psock backlog work
// sk_psock_backlog, the strparser work, the RCU work that destroys a
// psock) and timers are closures queued on the scheduler; queued works
// run, FIFO, whenever the running thread gives control back (it blocks
// or finishes its op) or ends a system call inside a multi-syscall op
// (iocopy). A work the kernel delays by a jiffy runs at the next op
// boundary. Kernel work that feeds itself forever (an sk_skb egress
// redirect bouncing bytes between the two ends of a connection) is
// bounded per settle (kernelBudget, backlogBatch) so that every run ends.
//
// Time is virtual: it advances only when nothing can run and every op has
// been dispatched, to the earliest pending event (a sleep, an
// SO_RCVTIMEO, a timer, the runner's per-op timeout opts.OpTimeout, which
// reports -ETIMEDOUT (runner) after the kernel backend's watcher steps:
// shutdown(SHUT_RD or SHUT_WR), then SHUT_RDWR 50 ms later). Events due at
// the same instant fire one at a time in the order they were armed, so a
// wait that began earlier times out first. An op that loops through system calls
// (iocopy) charges a few microseconds per call so that a copy that feeds
// itself still reaches its deadline.
//
// The socket lock is modelled (sock.Owned, lockSock/releaseSock, the
// ...Locked functions); kernel contexts that find a socket owned go to
// its backlog, run by release_sock. With the default scheduler a thread
// holds no socket lock when it gives control back, so the backlog stays
// empty; the yield points inside ops (exploring policies) keep that rule
// or rely on the backlog.
//
// Scheduling policy: the default is FIFO (ready threads run in the order
// they became ready: op dispatch order, wait-queue wake order). A trace's
// `schedule T1 T2 ...` gives thread priorities, `schedule SEED` (or
// Options.Seed) a seeded random choice; same trace and seed, same output.
// `schedule random SEED`, `schedule pct D SEED` and `schedule picks I ...`
// select the exploring policies (sched_policy.go), which turn on explore
// mode (explore.go): yield points inside ops become live and pending
// kernel contexts (softirq delivery, works, and on a HoldingTransport
// the segments held on its wire) are scheduled like threads, so
// segments can stay in flight; each such run replays
// exactly from its directive. Kernel contexts never yield, even when
// one runs on a task's goroutine (sched.inKernel). ExploreRun runs a
// trace under such a policy exactly as its directive would and returns
// an Outcome: what happened (observations or the run's error, Stats,
// the choices made, ring writes) and, for a depth-first enumeration of
// schedules, the next choices (Outcome.NextPicks). The model judges
// nothing beyond its own faults and invariants: package fuzz searches
// schedules and judges each run with its properties.
//
// # Ownership and lifetimes
//
//   - Sockets (sock) live for the run. The trace's descriptor and every
//     syscall in flight hold a file reference (fget/fput); the last one
//     releases the socket: sock_map_close when it has a psock (which
//     leaves every map and drops the psock), then tcp_close. sk_refcnt is
//     counted (psock, sk_redir) but never frees anything.
//   - A psock (type psock) is created by the first map insert of its socket
//     (sock_map_link) with one reference per map link; sk_psock_get takes
//     transient ones. The last reference detaches it (sk_psock_drop:
//     proto restored, TX disabled) and queues sk_psock_destroy, which
//     frees IngressMsg, IngressSkb and the cork and puts SkRedir.
//   - An skMsg on a psock's IngressMsg is owned by the psock until a
//     reader consumes it (sk_msg_recvmsg frees it) or destroy purges it.
//     Its elements hold page references, unless Skb is set, in which case
//     the skb owns the pages and the message owns the skb.
//   - An skBuff is owned by one queue at a time: a TCP write queue, a
//     segment in flight, sk_receive_queue, a psock's ingress_skb, an
//     skMsg, the strparser's head. It holds one page reference per
//     fragment; freeing it (kernel.freeSkb) uncharges the owning socket's
//     receive memory and puts its pages.
//   - Pages are refcounted (get_page/put_page); the last put frees and
//     poisons the page. A task's page frag (task_frag) holds a reference
//     on its current page. Pipe buffers hold one reference each, released
//     through their ops (anon, default: stealable; nosteal: shared with an
//     skb or a psock message). An skb's linear head, under rx copybreak,
//     is a slab object: its references are the skbs sharing it, never
//     get_page, and it never reaches a pipe. An access to or put of freed
//     memory, get_page on slab memory and a slab object in a pipe are
//     page-ownership faults: the run stops with ErrPageOwnership.
//   - Every run (Run) ends with a teardown: what the trace left
//     open is closed, pipes freed, orphaned connections expired, threads
//     exited; then every page and slab object must be free, else the run
//     fails with a leak (ErrPageOwnership).
//
// # The TCP layer
//
// TCP is an interface (tcp.go): the operations of net/ipv4/tcp*.c the
// socket, sk_msg and splice layers call. refTCP implements it with byte
// streams of skbs, explicit in-flight segments delivered by kernel
// contexts (data, pure ACKs, FIN, RST), the TCP states (ESTABLISHED,
// FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT via a timewait
// socket, CLOSE), SO_LINGER{1,0} (tcp_disconnect), RST on close with
// unread data, RST for data after a close or to a dead socket.
//
// Config.Transport puts a run on an external TCP instead: package
// netstack implements Transport with gVisor (the `netstack` backend).
// Transport and Endpoint (transport.go) are a small byte-stream
// interface naming no model type; extTCP (tcp_ext.go) implements TCP on
// them and owns the model's side: after every call that touched the
// transport it settles it (Transport.Settle) and raises, per socket, a
// NET_RX kernel context that takes the bytes the endpoint made readable
// into skbs on sk_receive_queue, with sequence numbers the bridge keeps
// (gVisor exposes neither seq nor copied_seq), turns the end of the
// stream and resets into tcp_fin and tcp_reset, follows the endpoint's
// state and calls the socket's callbacks; the receive paths of
// tcp_read.go read the queue as on refTCP. The bridge is the
// scheduler's external (sched.ext): the model's virtual clock drives
// the transport's (external.onClock → Transport.Advance) and the
// transport's next timer is one of the scheduler's events
// (external.nextTimer), so a run stays deterministic though gVisor has
// goroutines. Schedule exploration runs on the transport too: on a
// HoldingTransport (netstack's Links) the bridge holds every segment
// in flight and the scheduler counts them as pending kernel work, so a
// "kworker" pick delivers the oldest one, as it runs a held softirq
// delivery on refTCP (external.heldSegments, tcp_ext.go's
// startHolding). What the bridge does not do as Linux does is listed at
// extTCP.
//
// # Unlike Linux (deliberate, named gaps)
//
//   - TCP flow control is Linux's loopback flow control (tcp_ref_flow.go):
//     truesize-based send and receive buffers with their autotuning,
//     window selection and scaling, ACK policy, Nagle and TSO deferral,
//     pruning and collapsing; what it leaves out is listed there. Its
//     timers are the kernel backend's settle: a delayed ACK and a tail
//     loss probe fire in the settle of the op that armed them (two
//     rounds: 40 and 80 ms of the runner's 100), or 40 ms of virtual
//     time into a long op; a probe with one packet out fires two ops
//     later. The retransmission and zero-window probe timers (200 ms and
//     more), SACK and the out-of-order queue do not exist, so a segment
//     dropped for lack of receive memory is never sent again.
//   - Global memory accounting (tcp_mem pressure) never refuses.
//   - There is no loss or reordering: segments arrive in order, once;
//     timers other than SO_RCVTIMEO, sleeps, the strparser message
//     timeout and the TCP timers above do not exist (TIME_WAIT expiry,
//     keepalive).
//   - A jiffy-delayed work runs at the next op boundary (the kernel
//     backend spends at least its 1 ms settle window per op).
//   - splice(pipe → socket) in iocopy and skb_send_sock in the backlog
//     copy the bytes through the destination's sendmsg instead of handing
//     pages over (MSG_SPLICE_PAGES): same bytes, different pages.
//   - Sequence numbers start at 1 in both directions.
//   - An orphaned connection is never left to its timers (zero-window
//     probes, FIN_WAIT2, TIME_WAIT): teardown expires it at once
//     (tcp.ExpireOrphans).
//   - Receive coalescing never copies into an skb's tailroom or steals a
//     head: skbs with a slab head are queued as they are.
//
// The package imports only the standard library, trace and ringbuf.
package linux
