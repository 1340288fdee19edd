package trace

import (
	"fmt"
	"strings"
)

// ProfileInfo describes a base kernel or a patch series a profile can name.
type ProfileInfo struct {
	Name    string
	Patch   bool   // a patch series applied on a base, not a base kernel
	Summary string // one line
}

// Bases and patches a profile may name (docs/design.md, "Profiles").
var profileInfos = []ProfileInfo{
	{"linux-6.18", false, "mainline 6.18 as measured on the host: splice never sees psock ingress data; FIONREAD counts it"},
	{"linux-6.12", false, "6.12.118 (Debian's linux-source-6.12) as measured in a guest: like 6.18, but FIONREAD without a verdict also counts sk_receive_queue and sendmsg counts the bytes it asked to copy (before v6.13)"},
	{"linux-6.1", false, "mainline 6.1 as measured in a Debian guest: like 6.18, but FIONREAD ignores psock ingress data"},
	{FreeBSDProfile, false, "FreeBSD's SO_SPLICE (uipc_socket.c at 4d0f7fdd) over the model's TCP: sosplice, unsplice, getsplice; no sockmap, no splice(2)"},
	{"splice-copy", true, "splice_read for sockmap that copies (Whitchurch v3 / Jiayuan Chen patch 4)"},
	{"splice-zerocopy", true, "Jiayuan Chen patch 5: fragment pages passed to the pipe with a shared reference"},
	{"loopback-splice", true, "Cong Wang's RFC: per-direction 16 KiB ring for BPF-paired loopback sockets, as posted"},
	{"loopback-splice-seq", true, "loopback-splice with the ordering fix of the out-of-tree tcp_splice module"},
	{"fix-cork-copybreak", true, "our fix of kf_cork_apply_stale_bytes: a cork's copy position follows its data (testdata/patches/bpf-sockmap-cork-copy-position.patch)"},
	{"fix-psock-delete-seq", true, "our fix of psock_delete_strparser_seq_warn: a stopped stream parser accounts its ingress bytes in copied_seq (testdata/patches/bpf-sockmap-stop-strp-copied-seq.patch)"},
}

// FreeBSDProfile is the profile of FreeBSD's SO_SPLICE, the only one
// with the sosplice, unsplice and getsplice ops.
const FreeBSDProfile = "freebsd-so-splice"

// DefaultBase is the base a bare patch name is applied to.
const DefaultBase = "linux-6.18"

// Profiles lists every base and patch, bases first.
func Profiles() []ProfileInfo { return append([]ProfileInfo(nil), profileInfos...) }

// Profile is a parsed profile name: a base kernel plus patch series.
type Profile struct {
	Base    string
	Patches []string
}

// String renders the profile as base+patch+patch.
func (p Profile) String() string {
	return strings.Join(append([]string{p.Base}, p.Patches...), "+")
}

// Has reports whether patch is applied.
func (p Profile) Has(patch string) bool {
	for _, q := range p.Patches {
		if q == patch {
			return true
		}
	}
	return false
}

// ParseProfile parses `base+patch+patch`. A name that is only a patch
// ("splice-copy") means DefaultBase plus that patch.
func ParseProfile(s string) (Profile, error) {
	parts := strings.Split(s, "+")
	var p Profile
	for i, name := range parts {
		info, ok := lookupProfile(name)
		switch {
		case !ok:
			return Profile{}, fmt.Errorf("%w %q", ErrUnknownProfile, name)
		case !info.Patch && i > 0:
			return Profile{}, fmt.Errorf("%w %q: base %q must come first", ErrUnknownProfile, s, name)
		case !info.Patch:
			p.Base = name
		case p.Has(name):
			return Profile{}, fmt.Errorf("%w %q: patch %q twice", ErrUnknownProfile, s, name)
		default:
			p.Patches = append(p.Patches, name)
		}
	}
	if p.Base == "" {
		p.Base = DefaultBase
	}
	return p, nil
}

func lookupProfile(name string) (ProfileInfo, bool) {
	for _, info := range profileInfos {
		if info.Name == name {
			return info, true
		}
	}
	return ProfileInfo{}, false
}
