package linux

import (
	"testing"

	"github.com/splicecheck/splicecheck/internal/corpustest"
)

// loopbackGoldenDir holds what the 6.12.118 kernels printed for the
// loopback scenarios that pin the RFC's single-threaded behaviours
// (testdata/traces/loopback/rfc_*.trace), recorded with `splicecheck vm
// --record` in a guest of the RFC kernel (linux-6.12+loopback-splice) and
// of the base kernel it is built on (linux-6.12, where `conn A B pair` is
// -EOPNOTSUPP and the rest plain TCP).
const loopbackGoldenDir = "../../../testdata/golden/loopback"

// TestLoopbackGoldens runs each rfc_*.trace on the model under both
// profiles and compares the observations with the kernels' goldens byte
// for byte: FIONREAD and poll on ring bytes, a recv that ends at the
// ring's bytes, a full ring then TCP, MSG_PEEK and splice(2) that miss the
// ring, shutdown, reset and close with ring bytes, a parked reader woken by
// the ring and by the FIN.
func TestLoopbackGoldens(t *testing.T) {
	for _, profile := range []string{"linux-6.12+loopback-splice", "linux-6.12"} {
		t.Run(profile, func(t *testing.T) {
			corpustest.Check(t, New(), corpustest.Corpus{Dir: scenarioDir, Glob: "rfc_*.trace", Goldens: loopbackGoldenDir, Profile: profile})
		})
	}
}
