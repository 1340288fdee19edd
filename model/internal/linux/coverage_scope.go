package linux

import "strings"

// scope is the configuration a mirrored function belongs to: a profile
// feature or a transport. A function of scope 0 belongs to every run;
// any other function's scope is one bit, and it can run only in runs
// that have it (Coverage.Applies).
type scope uint16

const (
	scopeRefTCP            scope = 1 << iota // the reference TCP (no Config.Transport)
	scopeExtTCP                              // an external transport (tcp_ext*.go)
	scopeLoopback                            // loopback-splice or loopback-splice-seq
	scopeLoopbackRFC                         // loopback-splice as posted, not -seq
	scopeSpliceSeq                           // loopback-splice-seq (splice_seq.go)
	scopeSpliceCopy                          // splice-copy (copy_splice_read)
	scopeTCPBpfIoctl                         // tcp_bpf protos with .ioctl (linux-6.18)
	scopeSplicePagesCopied                   // a TCP that copies MSG_SPLICE_PAGES sends (linux-6.1)
	scopeSoSplice                            // FreeBSD's SO_SPLICE (freebsd-so-splice)
	scopeLinuxBPF                            // sockmap, psock, sk_msg, tcp_bpf, strparser, pipes, splice(2): every profile but FreeBSD's
)

// runScopes returns the scopes of a run of profile p, on an external
// transport if ext.
func runScopes(p behaviour, ext bool) scope {
	s := scopeRefTCP
	if ext {
		s = scopeExtTCP
	}
	if p.LoopbackSplice {
		s |= scopeLoopback
		if p.SpliceSeq {
			s |= scopeSpliceSeq
		} else {
			s |= scopeLoopbackRFC
		}
	}
	if p.SpliceRead == spliceReadCopy {
		s |= scopeSpliceCopy
	}
	if p.TCPBpfIoctl {
		s |= scopeTCPBpfIoctl
	}
	if p.SplicePagesCopied {
		s |= scopeSplicePagesCopied
	}
	if p.SoSplice {
		s |= scopeSoSplice
	} else {
		s |= scopeLinuxBPF
	}
	return s
}

// scopeByFile gives the functions of a file the file's scope.
var scopeByFile = map[string]scope{
	"splice_loopback.go": scopeLoopback,
	"splice_seq.go":      scopeSpliceSeq,
	"splice_read.go":     scopeSpliceCopy,
	"tcp_ext.go":         scopeExtTCP,
	"tcp_ext_rcv.go":     scopeExtTCP,
	"tcp_ext_snd.go":     scopeExtTCP,
	"tcp_ext_close.go":   scopeExtTCP,
	"tcp_ref.go":         scopeRefTCP,
	"tcp_ref_snd.go":     scopeRefTCP,
	"tcp_ref_rcv.go":     scopeRefTCP,
	"tcp_ref_close.go":   scopeRefTCP,
	"tcp_ref_flow.go":    scopeRefTCP,
	"tcp_ref_timer.go":   scopeRefTCP,
	"push61.go":          scopeSplicePagesCopied,
	"sosplice.go":        scopeSoSplice,
	"sockmap.go":         scopeLinuxBPF,
	"psock.go":           scopeLinuxBPF,
	"skmsg.go":           scopeLinuxBPF,
	"tcp_bpf.go":         scopeLinuxBPF,
	"strparser.go":       scopeLinuxBPF,
	"progs.go":           scopeLinuxBPF,
	"pipe.go":            scopeLinuxBPF,
	"splice.go":          scopeLinuxBPF,
}

// scopeByRecv gives the methods of a receiver type its scope.
var scopeByRecv = map[string]scope{
	"refTCP": scopeRefTCP,
	"extTCP": scopeExtTCP,
}

// scopeByFn overrides, by Fn.Go name, the scope of a function that its
// file or receiver does not tell.
var scopeByFn = map[string]scope{
	"tcpBpfIoctl": scopeTCPBpfIoctl,
	// The RFC's own data path; -seq replaces it (splice_seq.go).
	"spliceSendRing":      scopeLoopbackRFC,
	"spliceRecvReady":     scopeLoopbackRFC,
	"tcpBpfIsReadable":    scopeLoopbackRFC,
	"tcpBpfSpliceRecvmsg": scopeLoopbackRFC,
}

// fnScope is the scope of each registered function.
var fnScope = func() (s [numFn]scope) {
	for f := range Fn(numFn) {
		e := fnTable[f]
		s[f] = scopeByFile[e.file]
		if recv, _, ok := strings.Cut(e.goName, "."); ok {
			if r, ok := scopeByRecv[recv]; ok {
				s[f] = r
			}
		}
		if o, ok := scopeByFn[e.goName]; ok {
			s[f] = o
		}
	}
	return s
}()
