package fuzz

import (
	"context"
	"testing"
	"time"

	"github.com/splicecheck/splicecheck/model"
	"github.com/splicecheck/splicecheck/netstack"
)

// TestCampaignFindsInFlightForm: a campaign on netstack finds the
// loopback-splice RFC's ordering defect (a known failure) with TCP
// segments held in flight on the link (Outcome.InFlight), as `splicecheck check
// --backend netstack` reports it; on the reference TCP, which holds no
// segments, it reports none.
func TestCampaignFindsInFlightForm(t *testing.T) {
	pr, _ := PropertyByName(inFlightProperty)
	for _, two := range []bool{false, true} {
		be, err := model.NewWithConfig(model.Config{Name: "netstack", Transport: netstack.TransportFactory(netstack.TransportOptions{TwoHost: two}),
			Liveness: true, Provenance: true})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		outs, err := Check(context.Background(), Campaign{
			Profiles: []string{"loopback-splice"}, MaxTraces: 400, Seed: 1,
			Backend: be, Properties: []Property{pr},
		})
		if err != nil {
			t.Fatal(err)
		}
		o := outs[0]
		if o.Known[rfcOrdering] == 0 || o.InFlight == nil {
			t.Fatalf("two-host %v: %s %d times, in flight %v after %d traces", two, rfcOrdering, o.Known[rfcOrdering], o.InFlight != nil, o.Traces)
		}
		t.Logf("two-host %v: %d traces, %v: %s\n%s", two, o.Traces, time.Since(start), o.InFlightDetail, o.InFlight.Format())
	}
	outs, err := Check(context.Background(), Campaign{Profiles: []string{"loopback-splice"}, MaxTraces: 400, Seed: 1, Properties: []Property{pr}})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Known[rfcOrdering] == 0 || outs[0].InFlight != nil {
		t.Errorf("reference TCP: %s %d times, in flight %v", rfcOrdering, outs[0].Known[rfcOrdering], outs[0].InFlight != nil)
	}
}

// rfcOrdering is the signature of the RFC's defect (a).
const rfcOrdering = "reordered@ring/tcp"
