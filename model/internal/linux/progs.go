package linux

import "github.com/splicecheck/splicecheck/trace"

// The verdict codes a program returns (enum sk_action).
const (
	skDrop = 0 // SK_DROP
	skPass = 1 // SK_PASS
)

// bpfFIngress is BPF_F_INGRESS.
const bpfFIngress = 1

// progKind is the attach point of a canned program.
type progKind uint8

// Attach points.
const (
	progMsgVerdict    progKind = iota + 1 // BPF_SK_MSG_VERDICT (psock->progs.msg_parser)
	progStreamParser                      // BPF_SK_SKB_STREAM_PARSER
	progStreamVerdict                     // BPF_SK_SKB_STREAM_VERDICT
)

// prog is one canned BPF program, the model of what the kernel backend
// loads (kernelshim/progs.go): an sk_msg verdict that may call
// bpf_msg_apply_bytes and bpf_msg_cork_bytes and returns SK_PASS, SK_DROP
// or the result of bpf_msg_redirect_{map,hash}; an sk_skb verdict that
// returns SK_PASS, SK_DROP or the result of bpf_sk_redirect_{map,hash};
// an sk_skb stream parser that returns N or skb->len.
//
// Map is the map the program is attached to; redirects look up Key in it.
type prog struct {
	Kind progKind
	Spec trace.Prog
	Map  *bpfMap
}

// runMsg runs an sk_msg verdict on msg (bpf_prog_run_pin_on_cpu inside
// sk_psock_msg_verdict) and returns SK_PASS or SK_DROP.
func (p *prog) runMsg(msg *skMsg) int {
	if p.Spec.HasApply {
		msg.ApplyBytes = int(uint32(p.Spec.Apply)) // bpf_msg_apply_bytes
	}
	if p.Spec.HasCork {
		msg.CorkBytes = int(uint32(p.Spec.Cork)) // bpf_msg_cork_bytes
	}
	switch p.Spec.Verdict {
	case trace.VerdictPass:
		return skPass
	case trace.VerdictRedirect:
		// bpf_msg_redirect_map / bpf_msg_redirect_hash.
		sk := p.Map.lookup(p.Spec.Key)
		if sk == nil || !sockMapRedirectAllowed(sk) {
			return skDrop
		}
		msg.Flags = 0
		if p.Spec.Ingress {
			msg.Flags = bpfFIngress
		}
		msg.SkRedir = sk
		return skPass
	}
	return skDrop
}

// runSkb runs an sk_skb verdict on skb and returns SK_PASS or SK_DROP;
// a redirect sets the skb's BPF redirect target (skb_bpf_set_redir).
func (p *prog) runSkb(k *kernel, skb *skBuff) int {
	switch p.Spec.Verdict {
	case trace.VerdictPass:
		return skPass
	case trace.VerdictRedirect:
		// bpf_sk_redirect_map / bpf_sk_redirect_hash.
		sk := p.Map.lookup(p.Spec.Key)
		if sk == nil || !sockMapRedirectAllowed(sk) {
			return skDrop
		}
		skb.BpfRedir = sk
		skb.BpfIngress = p.Spec.Ingress
		return skPass
	}
	return skDrop
}

// runParser runs a stream parser on an skb of length n: `parser N`
// returns N, `parser all` returns skb->len.
func (p *prog) runParser(n int) int {
	if p.Spec.Parser == trace.ParserAll {
		return n
	}
	return int(p.Spec.Parser)
}

// sockMapRedirectAllowed mirrors sock_map_redirect_allowed()
// (net/core/sock_map.c, v6.18) for TCP: any state but LISTEN.
func sockMapRedirectAllowed(sk *sock) bool {
	sk.k.reach(fnSockMapRedirectAllowed)
	return sk.State != tcpListen
}
