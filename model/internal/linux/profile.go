package linux

import (
	"fmt"

	"github.com/splicecheck/splicecheck/trace"
)

// behaviour is the kernel behaviour the model reproduces: a mainline base
// (linux-6.18, linux-6.12, linux-6.1) whose differences are switches, each citing the
// source of the difference, plus the patch series applied on it
// (splice-copy, splice-zerocopy, loopback-splice...), each registered in
// patches by the file that implements it.
type behaviour struct {
	Name string

	// TCPBpfIoctl: the tcp_bpf protos have .ioctl = tcp_bpf_ioctl, so
	// FIONREAD (SIOCINQ) on a socket with a psock reports the bytes on
	// its ingress_msg (psock->msg_tot_len) and nothing of
	// sk_receive_queue. The host's 6.18.44 carries the stable backport of
	// "bpf, sockmap: Fix FIONREAD for sockmap" (Jiayuan Chen, bpf-next v6
	// 2/3, January 2026; Fixes: 04919bed948d); 6.1 has no tcp_bpf_ioctl
	// and answers from tcp_ioctl → tcp_inq (rcv_nxt - copied_seq), which
	// counts nothing an sk_msg redirect queued and counts bytes a blocked
	// tcp_bpf_recvmsg_parser rolled copied_seq back over (the goldens
	// kf_peer_fionread and kf_skb_drop_blocking_read_eagain).
	TCPBpfIoctl bool

	// FIONREADRecvQueue: tcp_bpf_ioctl (net/ipv4/tcp_bpf.c, 6.12.118)
	// also counts sk_receive_queue (tcp_inq) when the psock has no
	// stream or skb verdict program, and answers as tcp_ioctl when the
	// socket has no psock: "bpf, sockmap: Account for receive queue in
	// FIONREAD without a verdict program" (mainline 04af4efde58a, bpf
	// tree July 2026; in Debian's 6.12.115 stable update). Without a
	// verdict, bytes the peer sent stay on sk_receive_queue and are read
	// through tcp_recvmsg; the host's 6.18.44 does not have it (golden
	// kf_mixed_tcp_then_ingress_order: FIONREAD 16 on 6.12, 8 on 6.18).
	// Only meaningful with TCPBpfIoctl.
	FIONREADRecvQueue bool

	// SendmsgCountsAsked: tcp_bpf_sendmsg (net/ipv4/tcp_bpf.c, v6.12)
	// adds to copied the bytes it asked sk_msg_memcopy_from_iter to copy,
	// not what that copied (sk_msg_memcopy_from_iter returns only the
	// last chunk's size there), and a copy that finds no space leaves its
	// -ENOSPC in err, which send returns when nothing was copied before.
	// Fixed in v6.13 by Levi Zim's "skmsg: return copied bytes in
	// sk_msg_memcopy_from_iter" (fdf478d236dc) and "tcp_bpf: fix copied
	// value in tcp_bpf_sendmsg" (5153a75ef34b), neither in 6.12.y up to
	// 6.12.118. After a partial tcp_bpf_push the copy skips bytes (the
	// stale copybreak of kf_cork_apply_stale_bytes), the loop asks again
	// for what is left, and send returns more than it was given: goldens
	// kf_cork_apply_stale_bytes (32767 for 32697) and
	// kf_cork_apply_msg_more_hold (170 for 100, then -ENOSPC).
	// Linux 6.1.y predates the fix too (tcp_bpf_sendmsg,
	// net/ipv4/tcp_bpf.c, Debian 6.1.192, adds copy and keeps the copy's
	// error in err), but no 6.1 trace shows it: there a push never
	// leaves the copybreak stale (SplicePagesCopied) and a redirect
	// frees the cork (TestLinux61Switches).
	SendmsgCountsAsked bool

	// SplicePagesCopied: tcp_bpf_push (net/ipv4/tcp_bpf.c, Debian
	// 6.1.192) sends each piece through tcp_sendmsg_locked with
	// MSG_SPLICE_PAGES, and with MSG_MORE while its element has more
	// bytes, as 6.18's does (the v6.5 conversion is in 6.1.y), but 6.1's
	// tcp_sendmsg_locked (net/ipv4/tcp.c, v6.1) ignores MSG_SPLICE_PAGES
	// and copies the bytes into sk_page_frag, the task_frag sk_msg_alloc
	// also carves from (push61.go). A push then moves the frag past the
	// cork's last element, so the next send's sk_msg_alloc starts a new
	// element instead of coalescing with it, and the stale copybreak of
	// kf_cork_apply_stale_bytes skips nothing: on 6.1 that trace's sends
	// return what they were given and no stale byte is sent (FIONREAD
	// 32760, 8 bytes corked); kf_cork_apply_msg_more_hold's fourth send
	// gets an element of its own, so the old element's last byte is
	// pushed without MSG_MORE and TCP sends the 70 bytes it held
	// (FIONREAD 170 where 6.18 holds everything), and its fifth copies
	// its 5 bytes. The kf_cork61_* goldens pin the rest (sends that
	// return what they were given, the bytes a shutdown's FIN releases).
	SplicePagesCopied bool

	// SelfRedirectPass: sk_psock_verdict_apply (net/core/skmsg.c,
	// 6.12.118) treats an sk_skb verdict that redirects with
	// BPF_F_INGRESS to the psock's own socket as SK_PASS: the skb goes
	// straight to ingress_msg by sk_psock_skb_ingress_self (no
	// sk_rcvbuf check, the bytes counted in ingress_bytes while a
	// stream parser reads) instead of through ingress_skb and the
	// backlog. Debian's 6.12.113 update, "bpf, sockmap: Fix
	// self-redirect copied_seq double-counting". Measured: the 6.12.118
	// and Debian 6.1 guests read every byte of
	// findings/self_redirect_loses_bytes (the host's 6.18.44 strands
	// them), and a redirect to itself behind a stream parser whose
	// sk_rcvbuf was shrunk queues the next frame on ingress_msg there
	// (golden strp_err_self_redirect_rcvbuf_shrunk) where 6.18.44's
	// backlog refuses it (sk_rmem_alloc over sk_rcvbuf).
	SelfRedirectPass bool

	// LoopbackSplice: Cong Wang's RFC "tcp: opportunistic loopback splice
	// for BPF-paired sockets" (bpf-next, 2026-06), patches 1-2 and 4, as
	// posted (splice_loopback.go). SpliceSeq adds the ordering fix of the
	// out-of-tree multikernel/tcp_splice module (splice_seq.go).
	LoopbackSplice bool
	SpliceSeq      bool

	// CorkCopyAtEnd and StopStrpSeq are this project's fixes of two
	// kernel findings (fixes.go), patches fix-cork-copybreak and
	// fix-psock-delete-seq: tcp_bpf_send_verdict puts a message's copy
	// position past its last byte before keeping it as the cork
	// (tcp_bpf_cork_copy_at_end, testdata/patches/
	// bpf-sockmap-cork-copy-position.patch), and sk_psock_stop_strp
	// moves copied_seq up to the stopped parser's cursor
	// (testdata/patches/bpf-sockmap-stop-strp-copied-seq.patch).
	CorkCopyAtEnd bool
	StopStrpSeq   bool

	// SpliceRead is the splice_read of the tcp_bpf protos: none on
	// mainline (tcp_splice_read, blind to ingress_msg), or one of the
	// posted fixes, profiles splice-copy and splice-zerocopy
	// (splice_read.go).
	SpliceRead spliceReadKind

	// TCP is the reference TCP's flow control as the kernel version and
	// the machine the profile was measured on make it (tcp_ref_flow.go).
	TCP tcpConf
	// SoSplice: FreeBSD's SO_SPLICE (sosplice, unsplice, getsplice), and
	// no Linux-only interface: bpf(2) sockmaps, splice(2) and pipes fail
	// with -EOPNOTSUPP.
	SoSplice bool
}

// tcpConf is what refTCP's buffer accounting and windows take from a
// kernel version (the switches) and from the machine and its sysctls
// (the numbers), each measured on the machine the profile names.
type tcpConf struct {
	// ScalingRatio: tcp_win_from_space() scales by tp->scaling_ratio,
	// which tcp_measure_rcv_mss() takes from the len/truesize of the skbs
	// received ("tcp: get rid of sysctl_tcp_adv_win_scale", dfa2f0483360,
	// v6.6); before, by sysctl_tcp_adv_win_scale (1 on every machine
	// measured: half the space).
	ScalingRatio bool
	// GrowSkb: tcp_write_xmit() first fills a send head shorter than
	// cwnd_quota*mss with bytes of the next skb (tcp_grow_skb, "tcp: try
	// to send bigger TSO packets": in 6.12's tcp_output.c, not in 6.1's).
	GrowSkb bool
	// NomemZeroWindow: an in-order segment tcp_data_queue() has no
	// memory for is answered at once with a zero window
	// (ICSK_ACK_NOMEM|ICSK_ACK_NOW, which tcp_select_window() turns into
	// a zero window: "net: tcp: send zero-window ACK when no memory", in
	// 6.12's tcp_input.c, not in 6.1's). In 6.1 it is dropped without an
	// ACK, and the first skb of an empty queue is always taken.
	NomemZeroWindow bool
	// ZeroWindowUpdate: tcp_may_update_window() takes a zero window from
	// an ACK that neither acks nor carries anything new (a duplicate of
	// the last ACK closing the window: the NOMEM answer above), "(nwin >
	// tp->snd_wnd || !nwin)": in 6.12's tcp_input.c, not in 6.1's.
	ZeroWindowUpdate bool

	// DRS is the receive-buffer autotuning tcp_rcv_space_adjust() does
	// as a reader copies (see the drs* constants).
	DRS drsKind

	// SkbHeadTruesize is the truesize of a fresh tcp_stream_alloc_skb()
	// skb, SKB_TRUESIZE(skb_end_offset(skb)) of its MAX_TCP_HEADER head:
	// what every loopback skb carries beyond its payload (measured:
	// ss -m's skmem of a receiver holding one segment).
	SkbHeadTruesize int
	// MaxTCPHeader is MAX_TCP_HEADER (6.1's receive-buffer autotuning
	// sizes segments with it).
	MaxTCPHeader int
	// SndbufExpand is the congestion control's sndbuf_expand factor in
	// tcp_sndbuf_expand() (bbr_sndbuf_expand: 3; cubic has none: 2).
	SndbufExpand int
	// CwndEveryAck: the congestion window grows by every newly acked
	// packet (BBR's startup, bbr_set_cwnd, while delivered < TCP_INIT_CWND
	// or below its target); else only when cwnd-limited (cubic's
	// tcp_slow_start under tcp_is_cwnd_limited).
	CwndEveryAck bool
	// RmemMax and WmemMax are net.core.rmem_max and wmem_max, the caps of
	// SO_RCVBUF and SO_SNDBUF; Rmem and Wmem net.ipv4.tcp_rmem and
	// tcp_wmem (a new network namespace copies init_net's).
	RmemMax, WmemMax int
	Rmem, Wmem       [3]int
}

// drsKind is a version of tcp_rcv_space_adjust() (net/ipv4/tcp_input.c).
type drsKind uint8

const (
	// drs61: 6.1's, sized in SKB_TRUESIZE(advmss + MAX_TCP_HEADER) per
	// segment of twice the bytes copied in the last RTT plus 16, grown
	// again for slow start.
	drs61 drsKind = iota
	// drs612: 6.12.118's, the same window (with 6.16's "tcp: fix
	// sk_rcvbuf overshoot", which does not count the bytes still queued,
	// backported) turned into space by tcp_space_from_win (scaling_ratio).
	drs612
	// drs618: v6.18's tcp_rcvbuf_grow ("tcp: fix too slow
	// tcp_rcvbuf_grow() action", 6.18-rc4): twice the bytes copied,
	// grown by their growth since the last RTT, no 16-segment cushion.
	drs618
)

// The TCP configurations measured.
var (
	// tcpHost618 is the 6.18.44 host: BBR (net.ipv4.tcp_congestion_control
	// = bbr, inherited by every new netns), rmem_max and wmem_max raised
	// to 4 MiB, tcp_rmem[2] at v6.16's 32 MiB default ("tcp: increase
	// tcp_rmem[2] to 32 MB"), loopback skbs of 832 bytes of truesize
	// beyond their payload.
	tcpHost618 = tcpConf{
		ScalingRatio: true, GrowSkb: true, NomemZeroWindow: true, ZeroWindowUpdate: true, DRS: drs618,
		SkbHeadTruesize: 832, SndbufExpand: 3, CwndEveryAck: true,
		RmemMax: 4194304, WmemMax: 4194304,
		Rmem: [3]int{4096, 131072, 33554432}, Wmem: [3]int{4096, 16384, 4194304},
	}
	// tcpGuest612 is the 6.12.118 guest of `make kernels` (4 GiB):
	// cubic, the net.core defaults (212992), tcp_rmem[2] 6 MiB, and
	// skbs of 896 bytes beyond their payload (a 320-byte MAX_TCP_HEADER
	// in a 640-byte small head).
	tcpGuest612 = tcpConf{
		ScalingRatio: true, GrowSkb: true, NomemZeroWindow: true, ZeroWindowUpdate: true, DRS: drs612,
		SkbHeadTruesize: 896, SndbufExpand: 2,
		RmemMax: 212992, WmemMax: 212992,
		Rmem: [3]int{4096, 131072, 6291456}, Wmem: [3]int{4096, 16384, 4194304},
	}
	// tcpGuest61 is Debian's 6.1 in a 4 GiB guest: cubic, the net.core
	// defaults, tcp_rmem[2] 6 MiB, tcp_adv_win_scale 1; no small-head
	// skb cache (v6.3), so a MAX_TCP_HEADER head (320) takes a 1024-byte
	// kmalloc object: SKB_TRUESIZE(704) = 1280.
	tcpGuest61 = tcpConf{
		DRS:             drs61,
		SkbHeadTruesize: 1280, MaxTCPHeader: 320, SndbufExpand: 2,
		RmemMax: 212992, WmemMax: 212992,
		Rmem: [3]int{4096, 131072, 6291456}, Wmem: [3]int{4096, 16384, 4194304},
	}
)

// Profiles the model implements.
var (
	// linux618 is linux-6.18 as measured on the host (6.18.44).
	linux618 = behaviour{Name: "linux-6.18", TCPBpfIoctl: true, TCP: tcpHost618}
	// linux612 is linux-6.12 as measured in a guest booted from Debian's
	// linux-source-6.12 (6.12.118, tinyconfig plus sockmap; two btf.c
	// fixes for sock_ops kfuncs that the corpus does not reach). It has
	// 6.18's tcp_bpf_push (tcp_sendmsg_locked with MSG_SPLICE_PAGES,
	// v6.5) and the stable backport of "bpf, sockmap: Fix FIONREAD for
	// sockmap" (929e30f93125, Debian 6.12.85 update), so TCPBpfIoctl,
	// plus the later FIONREADRecvQueue; its tcp_bpf_sendmsg predates
	// v6.13's copied fix (SendmsgCountsAsked).
	linux612 = behaviour{Name: "linux-6.12", TCPBpfIoctl: true, FIONREADRecvQueue: true, SendmsgCountsAsked: true,
		SelfRedirectPass: true, TCP: tcpGuest612}
	// linux61 is linux-6.1 as measured in a Debian 6.1 guest (6.1.192,
	// Debian's 6.1.0-57): no tcp_bpf_ioctl, the pre-v6.13 send count
	// (SendmsgCountsAsked), a TCP that copies what tcp_bpf_push hands it
	// (SplicePagesCopied), the self-redirect fix (SelfRedirectPass), and
	// the guest's TCP constants (tcpGuest61).
	linux61 = behaviour{Name: "linux-6.1", SendmsgCountsAsked: true, SplicePagesCopied: true, SelfRedirectPass: true, TCP: tcpGuest61}
	// freebsd is FreeBSD's SO_SPLICE (sosplice.go) over the model's TCP,
	// 6.18's: Unlike FreeBSD, whose TCP sizes its buffers and windows
	// its own way, so the FreeBSD traces keep to what both TCPs agree on
	// (bytes and their order, not buffer-filling counts).
	freebsd = behaviour{Name: trace.FreeBSDProfile, SoSplice: true, TCP: tcpHost618}
)

// patches applies each patch series the model implements to a base
// profile, in the order the profile names them. A patch trace knows but
// this table lacks is refused (errProfile).
var patches = map[string]func(*behaviour){}

// ParseProfile returns the model profile for a profile name as
// trace.ParseProfile accepts it: the base's switches, then each patch's.
// A base or patch the model does not implement gives an error wrapping
// errProfile and trace.ErrUnsupported.
func ParseProfile(name string) (behaviour, error) {
	return behaviourOf(trace.ParseProfile(name))
}

// behaviourOf returns the model profile of p, a profile trace has parsed
// (err is the parse's: behaviourOf(trace.ParseProfile(name)) or
// behaviourOf(opts.Parsed())).
func behaviourOf(p trace.Profile, err error) (behaviour, error) {
	if err != nil {
		return behaviour{}, err
	}
	var prof behaviour
	switch p.Base {
	case linux618.Name:
		prof = linux618
	case linux612.Name:
		prof = linux612
	case linux61.Name:
		prof = linux61
	case freebsd.Name:
		prof = freebsd
	default:
		return behaviour{}, fmt.Errorf("%w %q: %w", errProfile, p.Base, trace.ErrUnsupported)
	}
	for _, patch := range p.Patches {
		apply, ok := patches[patch]
		if !ok {
			return behaviour{}, fmt.Errorf("%w %q: %w", errProfile, p.String(), trace.ErrUnsupported)
		}
		apply(&prof)
	}
	prof.Name = p.String()
	return prof, nil
}
