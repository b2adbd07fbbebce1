package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/workflows/release"
)

// TestCanaryAnalysisRollsBackAFaultyImage: an image that passes its health
// check but answers its home page with 500s is released with a canary
// analysis. The real blackbox exporter probes the tenants, the real
// Prometheus keeps the probes, and the release reads them: the canary's
// probes fail where the tenants on the old image pass, so the canary is
// rolled back and the release pauses with the numbers; no other tenant
// was touched. A sound image then passes the same analysis.
func TestCanaryAnalysisRollsBackAFaultyImage(t *testing.T) {
	b := startReleaseBench(t)
	faulty := b.pushDemoWith("v5-faulty", demoimage.Options{Fault: "error"})
	names := []string{tenantName("ca"), tenantName("cb"), tenantName("cc")}
	b.provision("prod", names...)
	plan := func(image string) map[string]any {
		return map[string]any{"image": image, "tenants": map[string]any{"names": names}, "canary": 1, "batchSize": 2, "drain": "0s",
			"analysis": map[string]any{"period": "15s", "minProbes": 5}}
	}

	id := b.startRelease(plan(faulty))
	b.promoteWhenStagingDone(id)
	st := b.waitRelease(id, 3*time.Minute, release.StatePaused, release.StateCompleted)
	require.Equal(t, release.StatePaused, st.State, "%+v", st)
	a := st.Analysis
	require.NotNil(t, a)
	require.Equal(t, release.AnalysisFailed, a.Status, a.Verdict)
	require.Equal(t, []string{names[0]}, a.Canaries)
	require.Equal(t, names[1:], a.Baseline)
	require.GreaterOrEqual(t, a.CanaryFigures.Probes, 5)
	require.Greater(t, a.CanaryFigures.ErrorRate, 0.8, "the canary's probes failed: %+v", a.CanaryFigures)
	require.Zero(t, a.BaselineFigures.ErrorRate, "the old image's passed: %+v", a.BaselineFigures)
	require.Contains(t, st.PauseReason, "canary analysis failed, canaries rolled back: error rate")
	require.Equal(t, map[string]release.TenantStatus{names[0]: release.TenantReverted, names[1]: release.TenantPending, names[2]: release.TenantPending}, statuses(st))
	for _, n := range names {
		require.Equal(t, "v1", b.version(n), "%s serves the old image", n)
	}

	code, out, _ := b.p.do(http.MethodPost, "/v1/releases/"+id+"/abort", map[string]any{"reason": "the home page fails"})
	require.Equal(t, http.StatusOK, code, out)
	b.waitRelease(id, time.Minute, release.StateAborted)
	b.p.checkHistory(release.WorkflowID(id), "release-canary-analysis-failed")

	// A sound image passes: the canary's probes follow its cut-over to
	// the new instance without a failure.
	sound := b.pushDemo("v6", false)
	id = b.startRelease(plan(sound))
	b.promoteWhenStagingDone(id)
	st = b.waitRelease(id, 3*time.Minute, release.StatePaused, release.StateCompleted)
	require.Equal(t, release.StateCompleted, st.State, "%+v %+v", st.PauseReason, st.Analysis)
	require.Equal(t, release.AnalysisPassed, st.Analysis.Status)
	require.Zero(t, st.Analysis.CanaryFigures.Failed, st.Analysis.Verdict)
	for _, n := range names {
		require.Equal(t, "v6", b.version(n))
	}
}

// promoteWhenStagingDone promotes a release with no staging tenant as
// soon as it waits for that.
func (b *releaseBench) promoteWhenStagingDone(id string) {
	b.t.Helper()
	b.waitRelease(id, time.Minute, release.StateAwaitingPromotion)
	code, out, _ := b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", nil)
	require.Equal(b.t, http.StatusOK, code, out)
}
