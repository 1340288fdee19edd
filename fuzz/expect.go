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
