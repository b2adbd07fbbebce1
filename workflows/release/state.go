package release

import (
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// State is where a release stands, as GET /v1/releases/{id} shows it.
type State string

// Release states.
const (
	StateRunning           State = "running"
	StateAwaitingPromotion State = "awaiting-promotion"
	StatePaused            State = "paused"
	StateCompleted         State = "completed"
	StateAborted           State = "aborted"
	StateNotPromoted       State = "not-promoted"
)

// stateMoves is a release's course: paused by ops or by failures over the
// threshold, resumed, waiting for promotion after staging, and ended.
var stateMoves = flow.Moves[State]{
	StateRunning:           {StatePaused, StateAwaitingPromotion, StateCompleted, StateAborted},
	StatePaused:            {StateRunning, StateAborted},
	StateAwaitingPromotion: {StateRunning, StateNotPromoted, StateAborted},
}

// To is the move of a release in state s to next, or an error when its
// course does not allow it.
func (s State) To(next State) (State, error) { return stateMoves.Check("release state", s, next) }

// Final tells a release that ended.
func (s State) Final() bool { return len(stateMoves[s]) == 0 }

// Phase is the part of the fleet a release is rolling out to. A
// decommission's phases are another type (tenant.Phase).
type Phase string

// Release phases, named after the stages they reach.
const (
	PhaseStaging Phase = "staging"
	PhaseProd    Phase = "prod"
)

// phaseMoves: staging, then (once promoted) prod.
var phaseMoves = flow.Moves[Phase]{PhaseStaging: {PhaseProd}}

// To is the move of a release in phase p to next.
func (p Phase) To(next Phase) (Phase, error) { return phaseMoves.Check("release phase", p, next) }

// TenantStatus is one tenant's part in a release: pending, under way, or
// the tenant's answer (a tenant.Outcome) and what became of it.
type TenantStatus string

// Per-tenant statuses of a release.
const (
	TenantPending    TenantStatus = "pending"
	TenantUpdating   TenantStatus = "updating"
	TenantUpdated    TenantStatus = TenantStatus(tenant.OutcomeUpdated)
	TenantUnchanged  TenantStatus = TenantStatus(tenant.OutcomeUnchanged)
	TenantRolledBack TenantStatus = TenantStatus(tenant.OutcomeRolledBack)
	TenantSkipped    TenantStatus = TenantStatus(tenant.OutcomeSkipped)
	TenantFailed     TenantStatus = "failed"   // the tenant's answer never came (activity gave up)
	TenantReverted   TenantStatus = "reverted" // updated, then put back by an abort
	// TenantWaitingWindow: the tenant's maintenance window was closed;
	// it goes in a wave of its own once the window opens (WindowOpensAt)
	// or ops override it.
	TenantWaitingWindow TenantStatus = "waiting-window"
)

// TenantStatuses lists every status a tenant shows in a release.
var TenantStatuses = []TenantStatus{TenantPending, TenantUpdating, TenantUpdated, TenantUnchanged, TenantRolledBack, TenantSkipped, TenantFailed, TenantReverted, TenantWaitingWindow}

// tenantNew is where a tenant's part begins: pending, or skipped at once
// (a named tenant no phase found).
const tenantNew TenantStatus = ""

// tenantMoves: a pending tenant is cut over and answers; one outside its
// maintenance window waits for it and is pending again once it opens (or
// skipped by an abort); an abort puts an updated one back.
var tenantMoves = flow.Moves[TenantStatus]{
	tenantNew:           {TenantPending, TenantSkipped},
	TenantPending:       {TenantUpdating},
	TenantUpdating:      {TenantUpdated, TenantUnchanged, TenantRolledBack, TenantSkipped, TenantFailed, TenantWaitingWindow},
	TenantUpdated:       {TenantReverted},
	TenantReverted:      {TenantPending}, // a canary tried again after a failed analysis
	TenantWaitingWindow: {TenantPending, TenantSkipped},
}

// To is the move of a tenant's part from s to next.
func (s TenantStatus) To(next TenantStatus) (TenantStatus, error) {
	return tenantMoves.Check("release tenant status", s, next)
}

// AnalysisStatus is where a canary analysis stands.
type AnalysisStatus string

// Canary analysis statuses.
const (
	// AnalysisWatching: the canaries serve on the new image while the
	// period runs.
	AnalysisWatching AnalysisStatus = "watching"
	AnalysisPassed   AnalysisStatus = "passed"
	// AnalysisFailed: a regression; the canaries were rolled back and the
	// release paused. A resume cuts them over and watches them again.
	AnalysisFailed AnalysisStatus = "failed"
	// AnalysisInconclusive: too few probes, or Prometheus could not be
	// read; the release paused with the canaries on the new image. A
	// resume accepts them (AnalysisAccepted); an abort rolls them back.
	AnalysisInconclusive AnalysisStatus = "inconclusive"
	AnalysisAccepted     AnalysisStatus = "accepted"
	// AnalysisSkipped: no canary was cut over (each rolled itself back,
	// or was unchanged), so there was nothing to watch.
	AnalysisSkipped AnalysisStatus = "skipped"
)

// settled tells an analysis that lets prod go on.
func (s AnalysisStatus) settled() bool {
	return s == AnalysisPassed || s == AnalysisAccepted || s == AnalysisSkipped
}

// moveTo moves the release to its next state (see stateMoves).
func (r *Release) moveTo(next State) { r.State = flow.Must(r.State.To(next)) }

// moveTo moves a tenant's part to its next status (see tenantMoves).
func (t *Tenant) moveTo(next TenantStatus) { t.Status = flow.Must(t.Status.To(next)) }
