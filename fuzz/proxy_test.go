package fuzz

import (
	"context"
	"testing"

	"github.com/splicecheck/splicecheck/trace"
)

// TestProxyFormsRewrite: every form the generator writes is found again,
// and rewritten into each other form keeps the workload, op for op.
func TestProxyFormsRewrite(t *testing.T) {
	for via := Mech(0); via < numMechs; via++ {
		for seed := 0; seed < 20; seed++ {
			tr := ProxyTrace(via).Example(seed)
			p, ok := FindProxy(tr)
			if !ok || p.Via != via || p.Front != "pf" || p.Back != "pb" {
				t.Fatalf("%s seed %d: FindProxy = %+v, %v\n%s", via, seed, p, ok, tr.Format())
			}
			for to := Mech(0); to < numMechs; to++ {
				rt, err := p.Rewrite(tr, to)
				if err != nil {
					t.Fatalf("%s → %s: %v", via, to, err)
				}
				q, ok := FindProxy(rt)
				if !ok || q.Via != to {
					t.Fatalf("%s → %s: FindProxy = %+v, %v\n%s", via, to, q, ok, rt.Format())
				}
				wa, wb := p.workload(tr), q.workload(rt)
				if len(wa) != len(wb) {
					t.Fatalf("%s → %s: workload of %d ops became %d", via, to, len(wa), len(wb))
				}
				for k := range wa {
					if a, b := tr.Ops[wa[k]].String(), rt.Ops[wb[k]].String(); a != b {
						t.Fatalf("%s → %s: workload op %d %q became %q", via, to, k, a, b)
					}
				}
			}
		}
	}
}

// TestProxyParity: generated proxy traces through all four forms on the
// model differ only as proxyDiffs names, and both named differences
// occur.
func TestProxyParity(t *testing.T) {
	mb, err := NewCampaignModel(nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	corrupted := 0
	for via := Mech(0); via < numMechs; via++ {
		for seed := 0; seed < 25; seed++ {
			tr := ProxyTrace(via).Example(seed)
			tr.Profile = via.profileFor("linux-6.18")
			tr.Schedule = &trace.Schedule{HasSeed: true, Seed: uint64(seed)}
			r := runOne(context.Background(), mb, nil, tr)
			if r.Err != nil {
				t.Fatalf("%s seed %d: %v\n%s", via, seed, r.Err, tr.Format())
			}
			if len(r.Variants) != int(numMechs)-1 {
				t.Fatalf("%s seed %d: %d variants", via, seed, len(r.Variants))
			}
			if err := checkProxy(r); err != nil {
				t.Fatalf("%s seed %d: %v\n%s", via, seed, err, tr.Format())
			}
			p, _ := FindProxy(tr)
			for _, v := range r.Variants {
				vp, _ := FindProxy(v.Trace)
				diffs, _ := compareProxies(proxyRun{p, tr, r.Obs}, proxyRun{vp, v.Trace, v.Obs}, linesOf(tr, p.workload(tr)))
				for _, d := range diffs {
					seen[d.Why]++
				}
			}
			// A byte changed in one form's delivery is a difference no
			// name covers.
			v := &r.Variants[seed%len(r.Variants)]
			for i := range v.Obs {
				if o := &v.Obs[i].Result; len(o.Data) > 0 && v.Trace.Ops[i].Thread == "" {
					o.Data = append([]byte{o.Data[0] ^ 1}, o.Data[1:]...)
					corrupted++
					if err := checkProxy(r); err == nil {
						t.Errorf("%s seed %d: a changed byte in the %s form passed proxy-parity", via, seed, v.Via)
					}
					break
				}
			}
		}
	}
	t.Logf("named differences: %v; %d runs with a changed byte caught", seen, corrupted)
	if corrupted == 0 {
		t.Error("no run delivered data")
	}
	for _, why := range proxyDiffs {
		if seen[why] == 0 {
			t.Errorf("no %q difference in 100 traces", why)
		}
	}
}
