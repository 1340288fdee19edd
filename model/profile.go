package model

import (
	"fmt"

	"github.com/splicecheck/splicecheck/trace"
)

// Profile is the kernel behaviour the model reproduces: a mainline base
// (linux-6.18, linux-6.1) whose differences are switches, each citing the
// source of the difference, plus the patch series applied on it
// (splice-copy, splice-zerocopy, loopback-splice...), each registered in
// patches by the file that implements it.
type Profile struct {
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

	// LoopbackSplice: Cong Wang's RFC "tcp: opportunistic loopback splice
	// for BPF-paired sockets" (bpf-next, 2026-06), patches 1-2 and 4, as
	// posted (splice_loopback.go). SpliceSeq adds the ordering fix of the
	// out-of-tree multikernel/tcp_splice module (splice_seq.go).
	LoopbackSplice bool
	SpliceSeq      bool

	// SpliceRead is the splice_read of the tcp_bpf protos: none on
	// mainline (tcp_splice_read, blind to ingress_msg), or one of the
	// posted fixes, profiles splice-copy and splice-zerocopy
	// (splice_read.go).
	SpliceRead spliceReadKind
}

// Profiles the model implements.
var (
	// Linux618 is linux-6.18 as measured on the host (6.18.44).
	Linux618 = Profile{Name: "linux-6.18", TCPBpfIoctl: true}
	// Linux61 is linux-6.1 as measured in a Debian 6.1 guest.
	Linux61 = Profile{Name: "linux-6.1", TCPBpfIoctl: false}
)

// patches applies each patch series the model implements to a base
// profile, in the order the profile names them. A patch trace knows but
// this table lacks is refused (ErrProfile).
var patches = map[string]func(*Profile){}

// ParseProfile returns the model profile for a profile name as
// trace.ParseProfile accepts it: the base's switches, then each patch's.
// A base or patch the model does not implement gives an error wrapping
// ErrProfile and trace.ErrUnsupported.
func ParseProfile(name string) (Profile, error) {
	p, err := trace.ParseProfile(name)
	if err != nil {
		return Profile{}, err
	}
	var prof Profile
	switch p.Base {
	case Linux618.Name:
		prof = Linux618
	case Linux61.Name:
		prof = Linux61
	default:
		return Profile{}, fmt.Errorf("%w %q: %w", ErrProfile, p.Base, trace.ErrUnsupported)
	}
	for _, patch := range p.Patches {
		apply, ok := patches[patch]
		if !ok {
			return Profile{}, fmt.Errorf("%w %q: %w", ErrProfile, p.String(), trace.ErrUnsupported)
		}
		apply(&prof)
	}
	prof.Name = p.String()
	return prof, nil
}
