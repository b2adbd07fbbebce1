package release

import (
	"context"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/analysis"
	"github.com/tenantflow/tenantflow/activities/spec"
)

var (
	sound  = analysis.Figures{Probes: 20, LatencyMillis: 40}
	broken = analysis.Figures{Probes: 20, Failed: 12, ErrorRate: 0.6, LatencyMillis: 5}
	slow   = analysis.Figures{Probes: 20, LatencyMillis: 450}
)

// analysed makes prod alone (promoted at once) with a canary analysis of
// 10 minutes; answer gives round n's figures. The inputs are recorded.
func (s *releaseSuite) analysed(answer func(round int, in analysis.CompareInput) (analysis.Comparison, error)) *[]analysis.CompareInput {
	s.fleet["staging"] = nil
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "alice"}) }, time.Minute)
	a := &analysis.Activities{}
	s.env.RegisterActivity(a.CompareCanaries)
	var ins []analysis.CompareInput
	s.env.OnActivity(a.CompareCanaries, mock.Anything, mock.Anything).Return(func(_ context.Context, in analysis.CompareInput) (analysis.Comparison, error) {
		s.mu.Lock()
		ins = append(ins, in)
		n := len(ins)
		s.mu.Unlock()
		return answer(n, in)
	})
	return &ins
}

func analysisPlan(canary int) Plan {
	return Plan{Canary: canary, BatchSize: 2, MaxParallel: 2, Analysis: &AnalysisPlan{Period: spec.Duration(10 * time.Minute)}}
}

func (s *releaseSuite) TestCanaryAnalysisPassesThenProdGoesOn() {
	ins := s.analysed(func(int, analysis.CompareInput) (analysis.Comparison, error) {
		return analysis.Comparison{Canary: sound, Baseline: sound}, nil
	})
	var watching Release
	s.env.RegisterDelayedCallback(func() { watching = s.query() }, 6*time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(analysisPlan(1)))
	st := s.result()

	s.Equal(StateCompleted, st.State)
	s.Require().NotNil(watching.Analysis)
	s.Equal(AnalysisWatching, watching.Analysis.Status, "the canary is watched for the period")
	s.Equal(map[string]TenantStatus{"p1": TenantUpdated, "p2": TenantPending, "p3": TenantPending, "p4": TenantPending, "p5": TenantPending},
		s.status(watching), "the rest of prod waits for the verdict")
	s.Require().Len(*ins, 1)
	in := (*ins)[0]
	s.Equal([]string{"p1"}, in.Canary.Tenants)
	s.Equal([]string{"p2", "p3", "p4", "p5"}, in.Baseline.Tenants, "compared with the tenants still on the old image")
	s.Equal(in.Canary.Until, in.Baseline.Until, "over the same time")
	s.Equal(10*time.Minute, in.Range)
	a := st.Analysis
	s.Equal(AnalysisPassed, a.Status)
	s.Equal(1, a.Round)
	s.Equal(sound, *a.CanaryFigures)
	s.Contains(a.Verdict, "error rate 0.0% (0 of 20 probes failed)")
	s.Contains(a.Verdict, "mean latency 40 ms against 40 ms")
	s.Equal(DefaultMinProbes, st.Plan.Analysis.MinProbes, "defaults are written into the plan")
	s.Equal(DefaultMaxLatencyRatio, st.Plan.Analysis.MaxLatencyRatio)
	s.Equal(spec.Duration(DefaultAnalysisDelay), st.Plan.Analysis.Delay)
	s.Equal(10*time.Minute, a.Until.Sub(a.From))
	s.False(a.From.Before(st.Tenants[0].FinishedAt.Add(DefaultAnalysisDelay)), "the probes count from the delay after the canary's cut-over")
	s.Equal("p1", s.started()[0])
	s.ElementsMatch([]string{"p1", "p2", "p3", "p4", "p5"}, s.started())
}

func (s *releaseSuite) TestAFailedAnalysisRollsTheCanaryBackAndPauses() {
	s.analysed(func(round int, _ analysis.CompareInput) (analysis.Comparison, error) {
		if round == 1 {
			return analysis.Comparison{Canary: broken, Baseline: sound}, nil
		}
		return analysis.Comparison{Canary: sound, Baseline: sound}, nil
	})
	var paused Release
	s.env.RegisterDelayedCallback(func() { paused = s.query() }, time.Hour)
	var resumed updateOutcome
	s.updateAt(2*time.Hour, UpdateResume, ControlInput{By: "ops", Reason: "Prometheus was scraping a stale target"}, &resumed)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(analysisPlan(1)))
	st := s.result()

	s.Equal(StatePaused, paused.State)
	s.Contains(paused.PauseReason, "canary analysis failed, canaries rolled back: error rate 60.0% (12 of 20 probes failed) against 0.0% for the tenants on the old image: more than 5.0 points higher")
	s.Equal(map[string]TenantStatus{"p1": TenantReverted, "p2": TenantPending, "p3": TenantPending, "p4": TenantPending, "p5": TenantPending},
		s.status(paused), "the canary is back on the old image; no other prod tenant was touched")
	s.Equal(AnalysisFailed, paused.Analysis.Status)
	s.Equal(broken, *paused.Analysis.CanaryFigures, "the numbers are in the release's state")
	s.Zero(paused.Failures, "a canary rolled back by the analysis is not a tenant failure")

	s.Require().NoError(resumed.err)
	s.Equal(StateCompleted, st.State)
	s.Equal(2, st.Analysis.Round)
	s.Equal(AnalysisPassed, st.Analysis.Status)
	s.Equal([]string{"p1", "p1/revert", "p1/again1"}, s.started()[:3], "a resume cuts the canary over again, in a new Update")
	s.Len(s.started(), 7)
	s.Equal(TenantUpdated, s.status(st)["p1"])
	s.Equal(1, st.Tenants[0].Retried)
	s.Equal(5, st.Progress.Done)
}

func (s *releaseSuite) TestAnInconclusiveAnalysisPausesAndAnAbortRollsTheCanaryBack() {
	s.analysed(func(int, analysis.CompareInput) (analysis.Comparison, error) {
		return analysis.Comparison{Canary: analysis.Figures{Probes: 2, LatencyMillis: 40}}, nil
	})
	var paused Release
	s.env.RegisterDelayedCallback(func() { paused = s.query() }, time.Hour)
	var aborted updateOutcome
	s.updateAt(2*time.Hour, UpdateAbort, ControlInput{By: "ops", Reason: "no data"}, &aborted)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(analysisPlan(1)))
	st := s.result()

	s.Equal(StatePaused, paused.State)
	s.Contains(paused.PauseReason, "canary analysis inconclusive: 2 probes of the canaries in the period, under the 5 needed")
	s.Equal(TenantUpdated, s.status(paused)["p1"], "an inconclusive analysis leaves the canary as it is")
	s.Require().NoError(aborted.err)
	s.Equal(StateAborted, st.State)
	s.Equal(TenantReverted, s.status(st)["p1"], "the abort puts it back")
	s.Equal(TenantPending, s.status(st)["p2"])
	s.Equal([]string{"p1", "p1/revert"}, s.started())
}

func (s *releaseSuite) TestAnAnalysisWithoutPrometheusIsInconclusiveAndAResumeAccepts() {
	s.analysed(func(int, analysis.CompareInput) (analysis.Comparison, error) {
		return analysis.Comparison{}, temporal.NewNonRetryableApplicationError("canary analysis needs Prometheus: set "+analysis.EnvPrometheusURL+" on the worker", analysis.ErrNotConfigured, nil)
	})
	var paused Release
	s.env.RegisterDelayedCallback(func() { paused = s.query() }, time.Hour)
	var resumed updateOutcome
	s.updateAt(2*time.Hour, UpdateResume, ControlInput{By: "ops"}, &resumed)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(analysisPlan(1)))
	st := s.result()

	s.Contains(paused.PauseReason, "the probes could not be read: canary analysis needs Prometheus: set TENANTFLOW_ANALYSIS_PROMETHEUS_URL")
	s.Equal(StateCompleted, st.State)
	s.Equal(AnalysisAccepted, st.Analysis.Status)
	s.Equal("p1", s.started()[0])
	s.ElementsMatch([]string{"p1", "p2", "p3", "p4", "p5"}, s.started(), "the canary accepted as it was")
}

// With every prod tenant a canary, none is left on the old image: the
// canaries are compared with themselves before their cut-over.
func (s *releaseSuite) TestASlowCanaryWithoutTenantsLeftComparesWithItsOwnPast() {
	s.fleet["prod"] = []string{"p1", "p2"}
	ins := s.analysed(func(int, analysis.CompareInput) (analysis.Comparison, error) {
		return analysis.Comparison{Canary: slow, Baseline: sound}, nil
	})
	var aborted updateOutcome
	s.updateAt(2*time.Hour, UpdateAbort, ControlInput{By: "ops"}, &aborted)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(analysisPlan(2)))
	st := s.result()

	in := (*ins)[0]
	s.Equal([]string{"p1", "p2"}, in.Baseline.Tenants)
	s.False(in.Baseline.Until.After(in.Canary.Until.Add(-in.Range)), "the period before the cut-over")
	s.Require().NotNil(st.Analysis.BaselineUntil)
	s.Empty(st.Analysis.Baseline)
	s.Equal(AnalysisFailed, st.Analysis.Status)
	s.Contains(st.Analysis.Verdict, "mean latency 450 ms against 40 ms for the canaries before their cut-over: over 1.5 times as slow and more than 100ms slower")
	s.Equal(StateAborted, st.State)
	s.Equal(map[string]TenantStatus{"p1": TenantReverted, "p2": TenantReverted}, s.status(st))
	for _, n := range s.started() {
		s.False(strings.Contains(n, "again"), "aborted, never tried again")
	}
}

func (s *releaseSuite) TestJudge() {
	p := *withAnalysisDefaults(&AnalysisPlan{Period: spec.Duration(time.Minute)})
	for _, c := range []struct {
		name             string
		canary, baseline analysis.Figures
		want             AnalysisStatus
	}{
		{"sound", sound, sound, AnalysisPassed},
		{"errors", broken, sound, AnalysisFailed},
		{"errors the baseline has too", broken, broken, AnalysisPassed},
		{"a few more errors, within 5 points", analysis.Figures{Probes: 100, Failed: 4, ErrorRate: 0.04, LatencyMillis: 40}, sound, AnalysisPassed},
		{"slow", slow, sound, AnalysisFailed},
		{"twice as slow but by only 40 ms", analysis.Figures{Probes: 20, LatencyMillis: 80}, sound, AnalysisPassed},
		{"slower by 200 ms but not 1.5 times", analysis.Figures{Probes: 20, LatencyMillis: 1100}, analysis.Figures{Probes: 20, LatencyMillis: 900}, AnalysisPassed},
		{"too few canary probes", analysis.Figures{Probes: 4}, sound, AnalysisInconclusive},
		{"no baseline: errors still judged", broken, analysis.Figures{}, AnalysisFailed},
		{"no baseline: latency not judged", slow, analysis.Figures{}, AnalysisPassed},
	} {
		got, why := judge(p, analysis.Comparison{Canary: c.canary, Baseline: c.baseline}, false)
		s.Equal(c.want, got, "%s: %s", c.name, why)
	}
}

// A second round compares the canaries with their probes from before the
// first round's cut-over, not with the failed round's.
func (s *releaseSuite) TestALaterRoundKeepsTheOldImagesBaseline() {
	s.fleet["prod"] = []string{"p1", "p2"}
	ins := s.analysed(func(round int, _ analysis.CompareInput) (analysis.Comparison, error) {
		if round == 1 {
			return analysis.Comparison{Canary: broken, Baseline: sound}, nil
		}
		return analysis.Comparison{Canary: sound, Baseline: sound}, nil
	})
	var resumed updateOutcome
	s.updateAt(2*time.Hour, UpdateResume, ControlInput{By: "ops"}, &resumed)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(analysisPlan(2)))
	st := s.result()

	s.Equal(StateCompleted, st.State)
	s.Require().Len(*ins, 2)
	first, second := (*ins)[0], (*ins)[1]
	s.Equal(first.Baseline.Until, second.Baseline.Until, "the old image's probes, before the first round")
	s.True(second.Canary.Until.After(first.Canary.Until.Add(time.Hour)))
	s.Equal(2, st.Analysis.Round)
}
