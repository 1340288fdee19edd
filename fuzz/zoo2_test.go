package fuzz

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/trace"
)

// zoo2Traces holds, for each mutation of the second zoo, a hand trace on
// which the mutation changes what a run observes: an op's result, or the
// run's error (a leak at teardown, a fault, a lost wakeup). Each runs on
// the profile its Zoo entry names.
var zoo2Traces = map[string]string{
	// A splice that reaches its max leaves the rest on its source.
	"so-splice-unsplice-flush": `
conn a1 a2
conn b1 b2
sosplice a2 b1 max 3
send a1 "abcdef"
recv b2 3 waitall
recv a2 3 dontwait
`,
	// The sink's buffers (the smallest Linux allows) take part of the
	// chunk; unspliced, the source keeps the rest.
	"so-splice-xfer-consumes-chunk": `
conn a1 a2
conn b1 b2
set b1 sndbuf 4608
set b2 rcvbuf 2304
sosplice a2 b1
send a1 100000 dontwait
unsplice a2
fionread a2
`,
	// Traffic at 30 ms does not extend a 50 ms timeout: "y", sent at
	// 60 ms, stays on the source.
	"so-splice-timeout-rearm": `
conn a1 a2
conn b1 b2
sosplice a2 b1 idle 50
sleep 30
send a1 "x"
recv b2 1
sleep 30
send a1 "y"
recv a2 1 dontwait
`,
	// Two messages redirected to a2's ingress_msg read back in order.
	"ingress-queue-head": `
conn a1 a2
map m sockmap 2
prog m sk_msg redirect 1 ingress
insert m 0 a1
insert m 1 a2
send a1 "ab"
send a1 "cd"
recv a2 10 dontwait
`,
	// An SK_SKB pass queues the skb on a2's own ingress_msg without
	// take_ref; the extra reference keeps its page past teardown.
	"ingress-enqueue-extra-skb-get": `
conn a1 a2
map m sockmap 2
prog m sk_skb pass
insert m 0 a2
send a1 100
sleep 20
recv a2 200 dontwait
`,
	// Dropped bytes are eaten (copied_seq advances): no EPOLLIN after.
	"drop-verdict-no-eat-skb": `
conn a1 a2
map m sockmap 2
prog m sk_skb drop
insert m 0 a2
send a1 100
sleep 20
poll a2
`,
	// a2 closes with a redirected message unread on its ingress_msg.
	"destroy-no-zap-ingress": `
conn a1 a2
map m sockmap 2
prog m sk_msg redirect 1 ingress
insert m 0 a1
insert m 1 a2
send a1 100
close a2
close a1
`,
	// Key 2 of a 2-entry sockmap is -E2BIG.
	"update-key-off-by-one": `
conn a1 a2
map m sockmap 2
insert m 2 a2
`,
	// A delete drops the map's psock reference.
	"delete-no-unref": `
conn a1 a2
map m sockmap 2
insert m 0 a2
delete m 0
close a2
close a1
`,
	// An update that puts a2 where it already is: the replaced link goes,
	// the new one stays.
	"del-link-all-matches": `
conn a1 a2
map m sockmap 2
insert m 0 a2
insert m 0 a2
close a2
close a1
`,
	// A 100-byte frame in two halves: the second completes it exactly.
	"strp-need-bytes-off-by-one": `
conn a1 a2
map m sockmap 2
prog m sk_skb pass parser 100
insert m 0 a2
send a1 50
sleep 20
send a1 50
sleep 20
recv a2 200 dontwait
`,
	// FIONREAD puts the psock reference it took.
	"ioctl-no-psock-put": `
conn a1 a2
map m sockmap 2
insert m 0 a2
fionread a2
close a2
close a1
`,
	// A drop verdict over apply_bytes 10: the second send's first 5
	// bytes end the window, the rest are counted sent.
	"apply-bytes-no-decrement": `
conn a1 a2
map m sockmap 2
prog m sk_msg drop apply 10
insert m 0 a1
send a1 5
send a1 20
`,
	// A pass verdict pushes the whole message without MSG_MORE.
	"push-more-on-last": `
conn a1 a2
map m sockmap 2
prog m sk_msg pass
insert m 0 a1
send a1 100
recv a2 200 dontwait
`,
	// The redirect's reference on a2's psock is put.
	"redir-no-psock-put": `
conn a1 a2
map m sockmap 2
prog m sk_msg redirect 1 ingress
insert m 0 a1
insert m 1 a2
send a1 10
recv a2 10
close a1
close a2
`,
	// An ingress redirect lands on a2's ingress_msg, not at a1.
	"verdict-drops-ingress-flag": `
conn a1 a2
map m sockmap 2
prog m sk_msg redirect 1 ingress
insert m 0 a1
insert m 1 a2
send a1 10
recv a2 10 dontwait
recv a1 10 dontwait
`,
	// a2 closes with one unread byte: a RST, so a1 reads ECONNRESET.
	"close-unread-off-by-one": `
conn a1 a2
send a1 1
sleep 20
close a2
sleep 20
recv a1 10 dontwait
`,
	// SHUT_RD makes the socket readable (EOF) for poll.
	"poll-shutdown-no-in": `
conn a1 a2
shutdown a2 rd
poll a2
`,
	// splice after SHUT_RD is EOF.
	"splice-read-misses-shutdown": `
conn a1 a2
shutdown a2 rd
set a2 nonblock on
splice a2 100
`,
	// Two slab-backed (rxcopybreak) messages spliced into the pipe by
	// copies into the task's page frag: both survive.
	"linear-to-page-no-advance": `
conn a1 a2
map m sockmap 2
prog m sk_skb pass
insert m 0 a2
set a2 rxcopybreak 4096
send a1 "hello"
sleep 20
set a2 nonblock on
splice a2 100
send a1 "world"
sleep 20
splice a2 100
pipe a2 100
`,
	// Two partial reads of one pipe buffer.
	"pipe-read-no-advance": `
conn a1 a2
map m sockmap 2
prog m sk_msg redirect 1 ingress
insert m 0 a1
insert m 1 a2
send a1 "abcdef"
set a2 nonblock on
splice a2 100
pipe a2 3
pipe a2 3
`,
	// A byte in b's ring makes b readable for poll.
	"ring-poll-misses-ring": `
conn a b
map m sockhash 2
insert m 0 a
insert m 1 b
pair a b
send a "X"
poll b
recv b 10
`,
	// TCP bytes sent before the pair are read after it.
	"splice-recv-skips-rcv-queue": `
conn a b
map m sockhash 2
insert m 0 a
insert m 1 b
send a "early"
sleep 20
pair a b
recv b 10 dontwait
`,
	// A ring byte right after the pair (copied_seq == ring_seq).
	"seq-ring-ready-strict": `
conn a b
map m sockhash 2
insert m 0 a
insert m 1 b
pair a b
send a "X"
recv b 10 dontwait
`,
	// 40000 bytes through a 16 KiB ring: the sender blocks on the full
	// ring until the reader frees space and wakes it.
	"seq-recv-no-wake-send": `
conn a b
map m sockhash 2
insert m 0 a
insert m 1 b
pair a b
@ts send a 40000
@t1 sleep 5
@t1 recv b 40000
@t1 recv b 40000
@t1 recv b 40000
join t1
join ts
`,
}

// zoo2Run runs src on profile with the mutations named (none: the
// unmutated model), liveness on, and renders what it observed: one line
// per observation, then the run's error if any.
func zoo2Run(t *testing.T, profile, src string, muts ...string) string {
	t.Helper()
	tr, err := trace.Parse("zoo2.trace", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tr.Profile = profile
	be, err := model.NewWithConfig(model.Config{Mutations: muts, Liveness: true})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := trace.Observe(context.Background(), be, tr, trace.Options{})
	var b strings.Builder
	for _, o := range obs {
		fmt.Fprintln(&b, o.String())
	}
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	return b.String()
}

// Every mutation of the second zoo changes what its hand trace observes,
// and the unmutated model runs each hand trace without error.
func TestZoo2HandTraces(t *testing.T) {
	n := 0
	for _, e := range Zoo {
		if !e.Second {
			continue
		}
		n++
		t.Run(e.Mutation, func(t *testing.T) {
			src, ok := zoo2Traces[e.Mutation]
			if !ok {
				t.Fatalf("no hand trace for %s", e.Mutation)
			}
			clean := zoo2Run(t, e.Profile, src)
			if strings.Contains(clean, "error: ") {
				t.Fatalf("the unmutated model fails the hand trace:\n%s", clean)
			}
			mut := zoo2Run(t, e.Profile, src, e.Mutation)
			if mut == clean {
				t.Fatalf("%s does not change the hand trace's run:\n%s", e.Mutation, clean)
			}
		})
	}
	if n != len(zoo2Traces) {
		t.Fatalf("%d hand traces for %d second-zoo mutations", len(zoo2Traces), n)
	}
	if n < 15 {
		t.Fatalf("the second zoo has %d mutations, want at least 15", n)
	}
}
