package e2e

import (
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/workflows/release"
)

// BenchmarkCanaryGate measures what a canary analysis adds to a release of
// 20 tenants (a canary, then waves of 5): the same release is run without
// and with an analysis (canaryGateDelay, then canaryGatePeriod), over the
// real blackbox exporter and Prometheus, and the difference is reported
// next to them. Beyond the delay and the period, the gate costs its
// queries and the scheduling around its timer. Three sound images rotate so that every cut-over is
// real.
func BenchmarkCanaryGate(b *testing.B) {
	const n = 20
	const canaryGatePeriod, canaryGateDelay = 20 * time.Second, 10 * time.Second
	rb := startReleaseBench(b)
	images := []string{rb.pushDemo("v7", false), rb.pushDemo("v8", false), rb.pushDemo("v9", false)}
	tenants := make([]string, n)
	for i := range tenants {
		tenants[i] = tenantName("bench-gate")
	}
	rb.provision("prod", tenants...)
	next := 0
	run := func(gated bool) time.Duration {
		body := map[string]any{"image": images[next%3], "tenants": map[string]any{"names": tenants},
			"canary": 1, "batchSize": 5, "maxParallel": 5, "failureThreshold": 0}
		next++
		if gated {
			body["analysis"] = map[string]any{"period": canaryGatePeriod.String(), "delay": canaryGateDelay.String()}
		}
		start := time.Now()
		id := rb.startRelease(body)
		rb.promoteWhenStagingDone(id)
		st := rb.waitRelease(id, 10*time.Minute, release.StateCompleted, release.StatePaused)
		took := time.Since(start)
		if st.State != release.StateCompleted || st.Failures > 0 {
			b.Fatalf("release %s: %s (%s), %d failures", id, st.State, st.PauseReason, st.Failures)
		}
		if gated && st.Analysis.Status != release.AnalysisPassed {
			b.Fatalf("release %s: analysis %s: %s", id, st.Analysis.Status, st.Analysis.Verdict)
		}
		return took
	}
	var extra, plain, gated time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := run(false)
		g := run(true)
		plain += p
		gated += g
		extra += g - p
		b.Logf("release of %d tenants: %s without the gate, %s with a %s analysis after %s", n, p.Round(time.Millisecond), g.Round(time.Millisecond), canaryGatePeriod, canaryGateDelay)
	}
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(per(plain), "plain-s")
	b.ReportMetric(per(gated), "gated-s")
	b.ReportMetric(per(extra), "extra-s")
	b.ReportMetric(canaryGatePeriod.Seconds(), "period-s")
	b.ReportMetric(canaryGateDelay.Seconds(), "delay-s")
	b.ReportMetric(per(extra)-(canaryGatePeriod+canaryGateDelay).Seconds(), "beyond-delay+period-s")
}
