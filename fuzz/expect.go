package fuzz

// KnownFailures are the properties a profile fails because the kernel it
// models does, with the reason; `splicecheck check` reports them but does
// not fail on them, and the bug zoo does not count them as detections. A
// property listed here that passes is fine: the failure needs a trace the
// campaign may not reach. Each reason names the kernel behaviour, verified
// on the kernel backend.
var KnownFailures = map[string]map[string]string{
	"linux-6.18": mainlineFailures,
	"linux-6.1":  mainlineFailures,
	"linux-6.18+loopback-splice": with(mainlineFailures, map[string]string{
		"stream-integrity": "the posted RFC's defect (a): splice_send_ring checks the peer's sk_receive_queue while older " +
			"TCP bytes are in flight (on netstack: segments held on the link), and its ring bytes overtake them; and " +
			"tcp_bpf_splice_recvmsg's ring-then-queue read lets TCP bytes overtake ring bytes",
		"eof-after-data": "the posted RFC's defect (b): tcp_bpf_splice_recvmsg returns EOF on RCV_SHUTDOWN after an empty " +
			"ring read, with bytes sent before the FIN landing in the ring meanwhile",
		"no-teardown-leak": "the posted RFC's defect (b): each side holds a psock reference on the other and only " +
			"sk_psock_drop unpairs, so a closed pair is never released",
	}),
	// The splice_read patches fix what splice(2) misses: EOF no longer
	// comes before the ingress data.
	"linux-6.18+splice-copy":     without(mainlineFailures, "eof-after-data"),
	"linux-6.18+splice-zerocopy": without(mainlineFailures, "eof-after-data"),
	"linux-6.18+loopback-splice-seq": with(mainlineFailures, map[string]string{
		"eof-after-data": "the multikernel/tcp_splice module's close clears the pair, and its receiver then reports EOF " +
			"with bytes still in the ring",
		"stream-integrity": "a paired socket that later joins a map with an sk_msg program sends by tcp_bpf_sendmsg, not " +
			"the ring (pairing is the RFC's, whose TCP_BPF_TX proto has no ring path), and overtakes its bytes still in the " +
			"ring (testdata/traces/counterexamples/pair_then_msg_prog_reorders.trace); the module's own ordering is searched by model.TestSeqHoldsOrdering",
		"no-livelock": "the module's splice_recvmsg_merge goes round again while sk_receive_queue is non-empty " +
			"(splice_recv_deliverable), so it spins on bytes tcp_recvmsg cannot return: the copied_seq hole mainline " +
			"leaves when a stream-verdict socket leaves its map (see eagain-when-empty)",
	}),
}

// with returns base with extra added (extra wins).
func with(base, extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// without returns base without the named properties.
func without(base map[string]string, names ...string) map[string]string {
	m := with(base, nil)
	for _, n := range names {
		delete(m, n)
	}
	return m
}

var mainlineFailures = map[string]string{
	"eof-after-data": "splice(2) on a socket with a psock never sees its ingress queue: " +
		"tcp_splice_read returns 0 as if at EOF (KERNEL-FACTS.md; the splice-copy and splice-zerocopy series fix it)",
	"no-lost-wakeup": "a reader blocked in tcp_bpf_recvmsg_parser waits for ingress_msg or sk_receive_queue, but a " +
		"stream parser waiting for the rest of a frame leaves bytes on sk_receive_queue without waking it: it sleeps to its timeout",
	"eagain-when-empty": "after the socket leaves the map, FIONREAD (tcp_inq) still counts the bytes its psock " +
		"took off sk_receive_queue and freed with it, while recv finds nothing",
}

// KnownFailure returns why profile is expected to fail property, if it is.
func KnownFailure(profile, property string) (string, bool) {
	why, ok := KnownFailures[profile][property]
	return why, ok
}
