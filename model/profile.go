package model

import (
	"fmt"

	"github.com/splicecheck/splicecheck/trace"
)

// Profile is the kernel behaviour the model reproduces: a mainline base
// (linux-6.18, linux-6.1) whose differences are switches, each citing the
// source of the difference. Patch series (splice-copy, splice-zerocopy,
// loopback-splice...) are later issues: ParseProfile refuses them.
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
}

// Profiles the model implements.
var (
	// Linux618 is linux-6.18 as measured on the host (6.18.44).
	Linux618 = Profile{Name: "linux-6.18", TCPBpfIoctl: true}
	// Linux61 is linux-6.1 as measured in a Debian 6.1 guest.
	Linux61 = Profile{Name: "linux-6.1", TCPBpfIoctl: false}
)

// ParseProfile returns the model profile for a profile name as
// trace.ParseProfile accepts it. Patch series are not implemented yet: the
// error wraps ErrProfile and trace.ErrUnsupported.
func ParseProfile(name string) (Profile, error) {
	p, err := trace.ParseProfile(name)
	if err != nil {
		return Profile{}, err
	}
	if len(p.Patches) > 0 {
		return Profile{}, fmt.Errorf("%w %q: %w", ErrProfile, p.String(), trace.ErrUnsupported)
	}
	switch p.Base {
	case Linux618.Name:
		return Linux618, nil
	case Linux61.Name:
		return Linux61, nil
	}
	return Profile{}, fmt.Errorf("%w %q: %w", ErrProfile, p.Base, trace.ErrUnsupported)
}
