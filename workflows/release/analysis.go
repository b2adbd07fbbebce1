package release

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/analysis"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// Canary analysis (plan.analysis). Once prod's canaries are cut over, the
// release lets the plan's delay pass (the monitoring follows the new
// instances), watches them for the plan's period and compares what their
// probes saw with what the probes of tenants still on the old image saw
// over the same time (or, when none is left, with the canaries' own
// probes over the period before their cut-over):
//
//   - a regression (error rate or latency over the plan's thresholds)
//     rolls the canaries back and pauses the release with the figures;
//     a resume cuts them over again and watches them again, an abort
//     ends the release;
//   - too few probes, or a Prometheus that cannot be read, pause the
//     release with the canaries on the new image: a resume accepts them,
//     an abort rolls them back;
//   - a pass lets the rest of prod go.
//
// The verdict is computed here from the figures the activity measured, so
// it replays the same whatever the defaults of later code: they are
// written into the plan when the release starts.

// an names the analysis activities (a nil pointer: the worker registers
// the real struct).
var an *analysis.Activities

// analysisOptions: a few queries, retried through a Prometheus restart;
// one that stays down makes the analysis inconclusive.
var analysisOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Minute,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	},
}

// withAnalysisDefaults fills the thresholds the plan leaves at zero.
func withAnalysisDefaults(a *AnalysisPlan) *AnalysisPlan {
	if a == nil {
		return nil
	}
	p := *a
	if p.MaxErrorRate <= 0 {
		p.MaxErrorRate = DefaultMaxErrorRate
	}
	if p.MaxLatencyRatio <= 0 {
		p.MaxLatencyRatio = DefaultMaxLatencyRatio
	}
	if p.MinLatencyRise <= 0 {
		p.MinLatencyRise = spec.Duration(DefaultMinLatencyRise)
	}
	if p.MinProbes <= 0 {
		p.MinProbes = DefaultMinProbes
	}
	if p.Delay <= 0 {
		p.Delay = spec.Duration(DefaultAnalysisDelay)
	}
	return &p
}

// versionCanaryAnalysis gates the analysis: a release whose first run
// was begun by a worker without it (a rolling upgrade) has no analysis in
// its history, and goes on without one.
const versionCanaryAnalysis = "release-canary-analysis"

// analysisDue tells whether prod's canaries have all had their cut-over
// while the plan's analysis has not let prod go yet.
func (r *rollout) analysisDue(ctx workflow.Context, phase Phase) bool {
	if phase != PhaseProd || r.state.Plan.Analysis == nil || (r.state.Analysis != nil && r.state.Analysis.Status.settled()) {
		return false
	}
	canaries := 0
	for _, t := range r.state.Tenants {
		if !t.Canary {
			continue
		}
		canaries++
		if t.Status == TenantPending || t.Status == TenantUpdating || t.Status == TenantWaitingWindow {
			return false
		}
	}
	if canaries == 0 {
		return false
	}
	if workflow.GetVersion(ctx, versionCanaryAnalysis, workflow.DefaultVersion, 1) < 1 {
		r.state.Analysis = &Analysis{Status: AnalysisSkipped, Verdict: "the release was started by a worker without canary analysis"}
		return false
	}
	return true
}

// analyse runs one round of canary analysis (see above) and returns once
// prod may go on, or with errAborted.
func (r *rollout) analyse(ctx workflow.Context) error {
	plan := *r.state.Plan.Analysis
	var canaries []int
	var names []string
	for i, t := range r.state.Tenants {
		if t.Canary && t.Status == TenantUpdated {
			canaries = append(canaries, i)
			names = append(names, t.Name)
		}
	}
	from := workflow.Now(ctx).Add(plan.Delay.D())
	a := &Analysis{Round: 1, Canaries: names, From: from, Until: from.Add(plan.Period.D())}
	prev := r.state.Analysis
	if prev != nil {
		a.Round = prev.Round + 1
	}
	r.state.Analysis = a
	if len(names) == 0 && a.Round > 1 {
		// Tried again after a failure, no canary reached the new image
		// this time: the image was never judged sound.
		a.Status, a.Verdict = AnalysisInconclusive, "no canary was cut over to the new image this round: the image is not judged"
		r.countAnalysis(ctx, a)
		if err := r.pauseFor(ctx, "canary analysis inconclusive: "+a.Verdict+"; resume to go on without a verdict, abort to end the release"); err != nil {
			return err
		}
		a.Status = AnalysisAccepted
		return nil
	}
	if len(names) == 0 {
		a.Status, a.Verdict = AnalysisSkipped, "no canary was cut over to the new image: nothing to watch"
		r.countAnalysis(ctx, a)
		return nil
	}
	a.Status = AnalysisWatching
	r.logger(ctx).Info("canary analysis started", "round", a.Round, "canaries", len(names), "delay", plan.Delay.D(), "period", plan.Period.D())
	if _, err := workflow.AwaitWithTimeout(ctx, a.Until.Sub(workflow.Now(ctx)), func() bool { return r.cur.Aborting }); err != nil {
		return err
	}
	if r.cur.Aborting {
		r.revertWave(ctx, canaries)
		return errAborted
	}
	a.Until = workflow.Now(ctx)
	in := analysis.CompareInput{Release: r.state.ID, Canary: analysis.Group{Tenants: names, Until: a.Until},
		Baseline: analysis.Group{Tenants: r.baseline(), Until: a.Until}, Range: a.Until.Sub(a.From)}
	a.Baseline = in.Baseline.Tenants
	first := r.firstCutover(canaries)
	if prev != nil && prev.FirstCutover != nil && prev.FirstCutover.Before(first) {
		first = *prev.FirstCutover // an earlier round's canaries served the new image since
	}
	a.FirstCutover = &first
	if len(in.Baseline.Tenants) == 0 {
		in.Baseline = analysis.Group{Tenants: names, Until: first}
		a.BaselineUntil = &first
	}
	var cmp analysis.Comparison
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, analysisOptions), an.CompareCanaries, in).Get(ctx, &cmp); err != nil {
		a.Status, a.Verdict = AnalysisInconclusive, "the probes could not be read: "+flow.ErrorMessage(err)
	} else {
		a.CanaryFigures, a.BaselineFigures = &cmp.Canary, &cmp.Baseline
		a.Status, a.Verdict = judge(plan, cmp, a.BaselineUntil != nil)
	}
	r.countAnalysis(ctx, a)
	switch a.Status {
	case AnalysisFailed:
		r.logger(ctx).Warn("canary analysis failed: rolling the canaries back", "round", a.Round, "verdict", a.Verdict)
		r.revertWave(ctx, canaries)
		if err := r.pauseFor(ctx, "canary analysis failed, canaries rolled back: "+a.Verdict+"; resume to try them again, abort to end the release"); err != nil {
			return err
		}
		r.retryCanaries(canaries)
		return nil
	case AnalysisInconclusive:
		r.logger(ctx).Warn("canary analysis inconclusive", "round", a.Round, "verdict", a.Verdict)
		if err := r.pauseFor(ctx, "canary analysis inconclusive: "+a.Verdict+"; resume to accept the canaries, abort to roll them back"); err != nil {
			if errors.Is(err, errAborted) {
				r.revertWave(ctx, canaries)
			}
			return err
		}
		a.Status = AnalysisAccepted
		return nil
	}
	r.logger(ctx).Info("canary analysis passed", "round", a.Round, "verdict", a.Verdict)
	return nil
}

// pauseFor pauses the release (unless ops already did) and waits for a
// resume (nil) or an abort (errAborted).
func (r *rollout) pauseFor(ctx workflow.Context, why string) error {
	if r.state.State == StateRunning {
		r.state.moveTo(StatePaused)
	}
	r.state.PauseReason = why
	r.upsertSearchAttributes(ctx)
	if err := workflow.Await(ctx, func() bool { return r.cur.Aborting || r.state.State != StatePaused }); err != nil {
		return err
	}
	if r.cur.Aborting {
		return errAborted
	}
	return nil
}

// retryCanaries makes the canaries a failed analysis rolled back pending
// again, for a new cut-over (a new Update: Retried is in its id).
func (r *rollout) retryCanaries(canaries []int) {
	for _, i := range canaries {
		t := &r.state.Tenants[i]
		if t.Status != TenantReverted {
			continue // its revert failed: it stays on the new image
		}
		t.moveTo(TenantPending)
		t.Retried++
		t.Error, t.StartedAt, t.FinishedAt, t.CutoverMillis = "", nil, nil, 0
		r.state.Progress.Done--
	}
}

// baseline is up to MaxBaselineTenants prod tenants still on the old
// image: not canaries, not cut over yet.
func (r *rollout) baseline() []string {
	var out []string
	for _, t := range r.state.Tenants {
		if len(out) == MaxBaselineTenants {
			break
		}
		if t.Stage == PhaseProd && !t.Canary && (t.Status == TenantPending || t.Status == TenantWaitingWindow) {
			out = append(out, t.Name)
		}
	}
	return out
}

// firstCutover is when the first of the canaries began its cut-over: the
// end of the period they are compared with when no tenant is left on the
// old image.
func (r *rollout) firstCutover(canaries []int) time.Time {
	i := slices.MinFunc(canaries, func(a, b int) int {
		return r.state.Tenants[a].StartedAt.Compare(*r.state.Tenants[b].StartedAt)
	})
	return *r.state.Tenants[i].StartedAt
}

func (r *rollout) countAnalysis(ctx workflow.Context, a *Analysis) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"outcome": string(a.Status)}).
		Counter("tenantflow_canary_analyses_total").Inc(1)
}

// judge is the verdict on the figures: the canaries' error rate may
// exceed the baseline's by MaxErrorRate, and their mean latency may reach
// MaxLatencyRatio times the baseline's unless it is also MinLatencyRise
// higher. self tells that the baseline is the canaries before their
// cut-over.
func judge(p AnalysisPlan, c analysis.Comparison, self bool) (AnalysisStatus, string) {
	cf, bf := c.Canary, c.Baseline
	what := "the tenants on the old image"
	if self {
		what = "the canaries before their cut-over"
	}
	if cf.Probes < p.MinProbes {
		return AnalysisInconclusive, fmt.Sprintf("%d probes of the canaries in the period, under the %d needed (are they supervised by the Prometheus the worker reads?)", cf.Probes, p.MinProbes)
	}
	errs := fmt.Sprintf("error rate %s (%d of %d probes failed) against %s for %s", pct(cf.ErrorRate), cf.Failed, cf.Probes, pct(bf.ErrorRate), what)
	if cf.ErrorRate-bf.ErrorRate > p.MaxErrorRate {
		return AnalysisFailed, fmt.Sprintf("%s: more than %.1f points higher", errs, p.MaxErrorRate*100)
	}
	if bf.Probes < p.MinProbes {
		return AnalysisPassed, fmt.Sprintf("%s; latency not compared: %d probes of %s", errs, bf.Probes, what)
	}
	latency := fmt.Sprintf("mean latency %.0f ms against %.0f ms", cf.LatencyMillis, bf.LatencyMillis)
	rise := time.Duration((cf.LatencyMillis - bf.LatencyMillis) * float64(time.Millisecond))
	if cf.LatencyMillis > bf.LatencyMillis*p.MaxLatencyRatio && rise > p.MinLatencyRise.D() {
		return AnalysisFailed, fmt.Sprintf("%s for %s: over %g times as slow and more than %s slower", latency, what, p.MaxLatencyRatio, p.MinLatencyRise.D())
	}
	return AnalysisPassed, errs + "; " + latency
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }
