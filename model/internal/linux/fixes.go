package linux

// This file registers the patch profiles of this project's own kernel
// fixes, one for each kernel finding whose root cause is established
// (docs/findings/). Each is a patch in testdata/patches/ that applies to
// Debian's linux-source-6.12 (6.12.118) and was built and run by `make
// fix-validate`; the model applies it as a switch on any base, in the
// function the patch changes:
//
//   - fix-cork-copybreak (behaviour.CorkCopyAtEnd):
//     bpf-sockmap-cork-copy-position.patch. tcp_bpf_send_verdict
//     (net/ipv4/tcp_bpf.c, 6.12.118 + the patch) points a message's copy
//     position (sg.curr, sg.copybreak) past its last byte before it keeps
//     the message as the cork, so the next send appends where the data
//     ends instead of copybreak bytes into what tcp_bpf_push left of the
//     element (tcpBpfSendVerdictLocked). Finding:
//     testdata/traces/kernel/kf_cork_apply_stale_bytes.trace.
//   - fix-psock-delete-seq (behaviour.StopStrpSeq):
//     bpf-sockmap-stop-strp-copied-seq.patch. sk_psock_stop_strp
//     (net/core/skmsg.c, 6.12.118 + the patch) moves copied_seq up to the
//     parser's cursor (psock->copied_seq) when the parser stops, so the
//     bytes it passed to the socket's own ingress_msg, whose accounting
//     tcp_bpf_strp_read_sock left to tcp_bpf_recvmsg_parser, are
//     accounted when that reader goes away (skPsockStopStrp). Finding:
//     testdata/traces/findings/psock_delete_strparser_seq_warn.trace.

func init() {
	patches["fix-cork-copybreak"] = func(p *behaviour) { p.CorkCopyAtEnd = true }
	patches["fix-psock-delete-seq"] = func(p *behaviour) { p.StopStrpSeq = true }
}
