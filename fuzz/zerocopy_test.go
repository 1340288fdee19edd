package fuzz

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/netstack"
)

// TestZerocopyPropertyOnCorpus: the zerocopy-completions property on the
// MSG_ZEROCOPY traces of the kernel corpus, run on the model, gives
// exactly the signature the 6.18 kernel's behaviour there calls for
// (nothing on plain TCP; the sk_msg paths' extra and missing ids), and
// every signature it gives is a known failure of linux-6.18.
func TestZerocopyPropertyOnCorpus(t *testing.T) {
	want := map[string]string{
		"zc_tcp_completions":          "",
		"zc_tcp_abort_gives_id_back":  "",
		"zc_tcp_partial_send":         "",
		"zc_tcp_split_skb":            "",
		"zc_skskb_receiver":           "",
		"zc_splice_receiver":          "",
		"zc_sockmap_drop":             "",
		"zc_sockmap_pass":             "extra-ids@sk_msg/pass",
		"zc_sockmap_apply":            "extra-ids@sk_msg/apply",
		"zc_sockmap_cork":             "never-completed@sk_msg/cork",
		"zc_sockmap_redirect_ingress": "never-completed@sk_msg/redirect-ingress",
		"zc_sockmap_redirect_egress":  "ids-without-sends@sk_msg/redirect-target",
	}
	pr, _ := PropertyByName("zerocopy-completions")
	m, err := NewCampaignModel(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, sig := range want {
		tr := loadTrace(t, filepath.Join("../testdata/traces/kernel", name+".trace"))
		r := runOne(context.Background(), m, nil, tr)
		if r.Err != nil {
			t.Fatalf("%s: %v", name, r.Err)
		}
		got := ""
		if v, ok := AsViolation(pr.Check(r)); ok {
			v.Property = pr.Name
			got = v.Signature()
			if _, known := MatchKnown("linux-6.18", v); !known {
				t.Errorf("%s: %s is not a known failure of linux-6.18", name, got)
			}
		}
		if got != sig {
			t.Errorf("%s: got %q, want %q", name, got, sig)
		}
	}
}

// TestZerocopyPropertySkipsNetstack: the netstack bridge has no
// MSG_ZEROCOPY (its sends take no id), so the property does not judge its
// runs, where the model's own TCP fails the same trace.
func TestZerocopyPropertySkipsNetstack(t *testing.T) {
	pr, _ := PropertyByName("zerocopy-completions")
	tr := loadTrace(t, "../testdata/traces/kernel/zc_tcp_completions.trace")
	ns, err := netstack.NewBackend(netstack.TransportOptions{}, model.Config{Provenance: true})
	if err != nil {
		t.Fatal(err)
	}
	r := runOne(context.Background(), ns, nil, tr)
	if r.Err != nil || r.Stats == nil || !r.Stats.NoZerocopy {
		t.Fatalf("netstack run: err %v, stats %v", r.Err, r.Stats != nil)
	}
	if err := pr.Check(r); err != nil {
		t.Errorf("judged on netstack: %v", err)
	}
	// The same run with the counter moved as refTCP would: judged.
	r.Stats.NoZerocopy = false
	if err := pr.Check(r); err == nil {
		t.Error("a run whose zero-copy sends took no id passed")
	}
}
