package linux

import (
	"context"
	"strings"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// TestSelfFeedingLoopsEnd checks that kernel work and copies that feed
// themselves forever (as they do on a real kernel) still let a run end:
// an sk_skb egress redirect bouncing bytes between the two ends of one
// connection, and io.Copy from a socket into its own peer.
func TestSelfFeedingLoopsEnd(t *testing.T) {
	for _, c := range []struct {
		name, src string
		line      int    // observation to check
		want      string // its result's prefix
	}{
		{"skb-egress-bounce", `conn a1 a2
map m sockmap 2
prog m sk_skb redirect 0 egress
insert m 0 a1
insert m 1 a2
send a2 "x"
state a1
`, 6, "ESTABLISHED"},
		{"iocopy-into-own-peer", `conn a1 a2
send a1 "abc"
set a2 rcvtimeo 20
iocopy a2 a1
`, 3, ""},
	} {
		tr, err := trace.Parse(c.name+".trace", []byte(c.src))
		if err != nil {
			t.Fatal(err)
		}
		obs, err := trace.Observe(context.Background(), New(), tr, trace.Options{Profile: "linux-6.18"})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := obs[c.line].Result.String()
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %s => %s, want %s...", c.name, obs[c.line].Op, got, c.want)
		}
		if c.name == "iocopy-into-own-peer" && (obs[c.line].Result.Err == 0 || obs[c.line].Result.Note != "") {
			t.Errorf("%s: iocopy => %s, want a count and -ETIMEDOUT from the read deadline", c.name, got)
		}
	}
}
