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
// segments held in flight on the link (Verdict.InFlight), as `splicecheck check
// --backend netstack` reports it; on the reference TCP, which holds no
// segments, it reports none.
func TestCampaignFindsInFlightForm(t *testing.T) {
	pr, _ := PropertyByName(inFlightProperty)
	for _, two := range []bool{false, true} {
		be, err := netstack.NewBackend(netstack.TransportOptions{TwoHost: two}, model.Config{Liveness: true, Provenance: true})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		outs, err := Check(context.Background(), Campaign{
			Profiles: []string{"loopback-splice"}, MaxTraces: 10, Seed: inFlightSeed,
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
	outs, err := Check(context.Background(), Campaign{Profiles: []string{"loopback-splice"}, MaxTraces: 10, Seed: refSeed, Properties: []Property{pr}})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0].Known[rfcOrdering] == 0 || outs[0].InFlight != nil {
		t.Errorf("reference TCP: %s %d times, in flight %v", rfcOrdering, outs[0].Known[rfcOrdering], outs[0].InFlight != nil)
	}
}

// inFlightSeed and refSeed start the ten-trace campaigns of
// TestCampaignFindsInFlightForm a few seeds before the ones that meet
// the defect: 34 on netstack (either topology), 536 on the reference
// TCP. From seed 1, 400 traces each took 4 minutes in all under -race on
// a loaded 2-core machine.
const (
	inFlightSeed = 30
	refSeed      = 530
)

// rfcOrdering is the signature of the RFC's defect (a).
const rfcOrdering = "reordered@ring/tcp"
