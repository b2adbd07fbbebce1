package release

import (
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// Maintenance windows. A tenant whose window is closed when its turn
// comes answers so, with when the window opens, and changes nothing: it
// waits (TenantWaitingWindow) while the release goes on with the other
// tenants, so a fleet's windows never hold each other up. Once a phase's
// waves have all run, its waiting tenants go as their windows open, those
// that open together in waves of BatchSize: pause, abort, the failure
// threshold and the parallel and per-host limits apply to them as to any
// wave. The canary is the exception: prod's other waves wait until it
// has been cut over, in its window. Ops may override the windows of some
// or all tenants left (an emergency fix); the override is recorded in the
// release and on the tenants, and carried to their cut-overs.

// waitForWindow records a tenant's answer that its window is closed.
func (r *rollout) waitForWindow(ctx workflow.Context, t *Tenant, res tenant.ApplyResult) {
	opens := workflow.Now(ctx).Add(time.Hour) // a tenant that said no time: ask again in an hour
	if res.WindowOpensAt != nil {
		opens = *res.WindowOpensAt
	}
	t.moveTo(TenantWaitingWindow)
	t.WindowOpensAt, t.Error, t.StartedAt = &opens, res.Error, nil
	t.Deferred++
	r.logger(ctx).Info("tenant waits for its maintenance window", "tenant", t.Name, "opens", opens)
}

// windowWave waits for the first maintenance window of the waiting
// tenants to open (or for an override or an abort) and makes the tenants
// whose window is open pending again: in new waves of BatchSize
// (rewave), or in their own wave (the canary, which goes first). more is
// false when no tenant waits.
func (r *rollout) windowWave(ctx workflow.Context, waiting []int, rewave bool) (more bool, err error) {
	if len(waiting) == 0 {
		r.state.NextWindowAt = nil
		return false, nil
	}
	due := func() []int {
		now := workflow.Now(ctx)
		return slices.DeleteFunc(slices.Clone(waiting), func(i int) bool {
			t := &r.state.Tenants[i]
			return r.overrideOf(t) == nil && t.WindowOpensAt.After(now)
		})
	}
	if len(due()) == 0 {
		next := r.firstWindow(waiting)
		r.state.NextWindowAt = &next
		r.logger(ctx).Info("release waits for maintenance windows", "tenants", len(waiting), "next", next)
		overridden := func() bool {
			return r.cur.Aborting || slices.ContainsFunc(waiting, func(i int) bool { return r.overrideOf(&r.state.Tenants[i]) != nil })
		}
		if _, err := workflow.AwaitWithTimeout(ctx, next.Sub(workflow.Now(ctx)), overridden); err != nil {
			return false, err
		}
	}
	r.state.NextWindowAt = nil
	if r.cur.Aborting {
		return false, errAborted // the waiting tenants are skipped
	}
	first := r.lastWave() + 1
	for k, i := range due() {
		t := &r.state.Tenants[i]
		t.moveTo(TenantPending)
		t.Error, t.WindowOpensAt = "", nil
		if rewave {
			t.Wave = first + k/r.state.Plan.BatchSize
		}
	}
	return true, nil
}

// waitingCanary lists prod's canary tenants that wait for their window.
func (r *rollout) waitingCanary(phase Phase) []int {
	if phase != PhaseProd {
		return nil
	}
	var out []int
	for _, i := range r.waiting(phase) {
		if r.state.Tenants[i].Canary {
			out = append(out, i)
		}
	}
	return out
}

// waiting lists the phase's tenants that wait for their window.
func (r *rollout) waiting(phase Phase) []int {
	var out []int
	for i, t := range r.state.Tenants {
		if t.Stage == phase && t.Status == TenantWaitingWindow {
			out = append(out, i)
		}
	}
	return out
}

func (r *rollout) firstWindow(idxs []int) time.Time {
	i := slices.MinFunc(idxs, func(a, b int) int { return r.state.Tenants[a].WindowOpensAt.Compare(*r.state.Tenants[b].WindowOpensAt) })
	return *r.state.Tenants[i].WindowOpensAt
}

// skipWaiting ends the part of every tenant that waits for its window:
// the release was aborted before it opened.
func (r *rollout) skipWaiting(ctx workflow.Context) {
	now := workflow.Now(ctx)
	for i := range r.state.Tenants {
		if t := &r.state.Tenants[i]; t.Status == TenantWaitingWindow {
			t.moveTo(TenantSkipped)
			t.Error = "release aborted while it waited for its maintenance window"
			t.FinishedAt, t.WindowOpensAt = &now, nil
			r.state.Progress.Done++
		}
	}
}

// overrideWindow lets tenants be cut over outside their windows.
func (r *rollout) overrideWindow(ctx workflow.Context, in OverrideInput) (Release, error) {
	o := tenant.WindowOverride{By: in.By, Reason: in.Reason, At: workflow.Now(ctx)}
	for i := range r.state.Tenants {
		t := &r.state.Tenants[i]
		if overridable(t.Status) && (len(in.Tenants) == 0 || slices.Contains(in.Tenants, t.Name)) {
			t.Override = &o
		}
	}
	r.state.Overrides = append(r.state.Overrides, Override{WindowOverride: o, Tenants: in.Tenants})
	r.logger(ctx).Warn("maintenance windows overridden", "by", in.By, "reason", in.Reason, "tenants", strings.Join(in.Tenants, ","))
	return r.summary(), nil
}

// overrideOf is the override that covers a tenant: its own, or the
// newest of the release's that names it or every tenant (one made before
// the tenant was listed, or while its cut-over was under way).
func (r *rollout) overrideOf(t *Tenant) *tenant.WindowOverride {
	if t.Override != nil {
		return t.Override
	}
	for _, o := range slices.Backward(r.state.Overrides) {
		if len(o.Tenants) == 0 || slices.Contains(o.Tenants, t.Name) {
			return &o.WindowOverride
		}
	}
	return nil
}

// overrideFor is the override a tenant's cut-over carries, recorded on
// the tenant.
func (r *rollout) overrideFor(t *Tenant) *tenant.WindowOverride {
	t.Override = r.overrideOf(t)
	return t.Override
}

// overridable: the tenant's cut-over is still to come, or under way (it
// may yet answer that its window is closed).
func overridable(s TenantStatus) bool {
	return s == TenantPending || s == TenantWaitingWindow || s == TenantUpdating
}

func (r *rollout) validateOverrideWindow(ctx workflow.Context, in OverrideInput) error {
	switch {
	case r.final() || r.cur.Aborting:
		return flow.Refuse(ErrReleaseControlRejected, "release %s is %s: no window to override", r.state.ID, r.finalOrAborting())
	case strings.TrimSpace(in.By) == "":
		return flow.Refuse(ErrReleaseControlRejected, "an override needs a requester (by)")
	case strings.TrimSpace(in.Reason) == "":
		return flow.Refuse(ErrReleaseControlRejected, "an override of maintenance windows needs a reason (the emergency it fixes)")
	case len(in.Tenants) > MaxOverrideTenants:
		return flow.Refuse(ErrReleaseControlRejected, "an override names at most %d tenants (none: every tenant left)", MaxOverrideTenants)
	}
	listed := r.cur.ProdListed || r.state.Plan.Tenants.Stage == string(PhaseStaging)
	for _, name := range in.Tenants {
		k := slices.IndexFunc(r.state.Tenants, func(t Tenant) bool { return t.Name == name })
		switch {
		case k < 0 && !listed:
			// Not listed yet: its override waits in the release's.
		case k < 0:
			return flow.Refuse(ErrReleaseControlRejected, "tenant %s is not in release %s", name, r.state.ID)
		case !overridable(r.state.Tenants[k].Status):
			return flow.Refuse(ErrReleaseControlRejected, "tenant %s is %s in release %s: its cut-over is not to come", name, r.state.Tenants[k].Status, r.state.ID)
		}
	}
	if len(in.Tenants) == 0 && listed && !slices.ContainsFunc(r.state.Tenants, func(t Tenant) bool { return overridable(t.Status) }) {
		return flow.Refuse(ErrReleaseControlRejected, "release %s has no tenant left to cut over", r.state.ID)
	}
	return nil
}
