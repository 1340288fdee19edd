package linux

import "syscall"

// This file is the send path under tcp_bpf_push on Linux 6.1.y
// (behaviour.SplicePagesCopied), as Debian's 6.1.192 runs it.
//
// 6.1.y's tcp_bpf_push (net/ipv4/tcp_bpf.c, Debian 6.1.192) is 6.18's: it
// hands each piece of an sk_msg element to tcp_sendmsg_locked with
// MSG_SPLICE_PAGES, and with MSG_MORE while the element has more bytes
// (the v6.5 conversion away from do_tcp_sendpages reached the stable
// tree). 6.1's tcp_sendmsg_locked does not know MSG_SPLICE_PAGES: it
// copies the piece, as for any sendmsg, into sk_page_frag(sk), the
// sending task's task_frag. sk_msg_alloc carves the sk_msg's memory from
// that same page frag, so on 6.1 a pushed piece moves the frag past the
// cork's last element, and the next send's sk_msg_alloc starts a new
// element where 6.18's coalesces with it. That is why 6.1 never shows the
// stale copybreak of kf_cork_apply_stale_bytes after a push: the copy
// finds the new element (sk_msg_memcopy_from_iter steps past the old
// one), copies every byte, and nothing stale is sent. An ingress redirect
// (bpf_tcp_ingress) involves no TCP and moves no frag, so there the cork
// still coalesces and the copy still skips bytes, as on 6.12.

// tcpBpfSendPiece sends the range [off, off+n) of page p out of sk as
// tcp_bpf_push hands a piece to tcp_sendmsg_locked with
// MSG_SPLICE_PAGES: by page reference where TCP splices pages (v6.5 and
// later: tcp.SendPageLocked), by a copy into the task's page frag where
// it ignores the flag (SplicePagesCopied: tcpSendmsgCopyPage).
//
// Precondition: the caller owns sk.
func (k *kernel) tcpBpfSendPiece(t *task, sk *sock, p *page, off, n, flags int) (int, syscall.Errno) {
	if k.prof.SplicePagesCopied {
		return k.tcpSendmsgCopyPage(t, sk, p, off, n, flags)
	}
	return k.tcp.SendPageLocked(t, sk, p, off, n, flags)
}

// tcpSendmsgCopyPage mirrors tcp_sendmsg_locked() (net/ipv4/tcp.c, v6.1)
// given a one-page bvec with MSG_SPLICE_PAGES, a flag 6.1 does not test:
// the bytes are copied, a page frag at a time, into sk_page_frag (the
// sending task's task_frag: refill, copy what fits, append the frag's
// range to the skb with a page reference, advance the frag by what was
// taken). tcp_sendmsg_locked pushes once, at the end, with the caller's
// flags; so every chunk but the last goes to TCP with MSG_MORE here.
//
// Unlike Linux, the bytes are copied before TCP waits for send-buffer
// space (the kernel waits, then copies); no trace op can tell, since the
// frag is the task's own and the copy is not taken back until TCP has it.
//
// Precondition: the caller owns sk.
func (k *kernel) tcpSendmsgCopyPage(t *task, sk *sock, p *page, off, n, flags int) (int, syscall.Errno) {
	k.reach(fnTcpSendmsgCopyPage)
	pf := &t.frag
	done := 0
	for done < n {
		k.pages.refill(pf)
		c := min(n-done, pf.Size-pf.Offset)
		copy(pf.Page.bytes(pf.Offset, c), p.bytes(off+done, c))
		if tags := pf.Page.tagsAt(pf.Offset, c); tags != nil {
			copy(tags, tagsOrZero(p.tagsAt(off+done, c), c, true))
		}
		k.chargeCopy(c)
		f := flags
		if done+c < n {
			f |= msgMore
		}
		ret, err := k.tcp.SendPageLocked(t, sk, pf.Page, pf.Offset, c, f)
		if ret > 0 {
			pf.Offset += ret
			done += ret
		}
		if ret < c {
			if done > 0 {
				return done, errOK
			}
			return ret, err
		}
	}
	return done, errOK
}
