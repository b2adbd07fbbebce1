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
// waves have all run, its waiting tenants go as their windows open, each
// batch that opens together in a wave of its own: pause, abort, the
// failure threshold and the parallel and per-host limits apply to it as
// to any wave. Ops may override the windows of some or all tenants left
// (an emergency fix); the override is recorded in the release and on
// the tenants, and carried to their cut-overs.

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

// windowWave waits, once the phase's waves have run, for the first
// maintenance window of its waiting tenants to open (or for an override
// or an abort) and makes a wave of the tenants whose window is open.
// more is false when no tenant of the phase waits.
func (r *rollout) windowWave(ctx workflow.Context, phase Phase) (more bool, err error) {
	waiting := r.waiting(phase)
	if len(waiting) == 0 {
		r.state.NextWindowAt = nil
		return false, nil
	}
	due := func() []int {
		now := workflow.Now(ctx)
		return slices.DeleteFunc(slices.Clone(waiting), func(i int) bool {
			t := r.state.Tenants[i]
			return t.Override == nil && t.WindowOpensAt.After(now)
		})
	}
	if len(due()) == 0 {
		next := r.firstWindow(waiting)
		r.state.NextWindowAt = &next
		r.logger(ctx).Info("release waits for maintenance windows", "tenants", len(waiting), "next", next)
		overridden := func() bool {
			return r.cur.Aborting || slices.ContainsFunc(waiting, func(i int) bool { return r.state.Tenants[i].Override != nil })
		}
		if _, err := workflow.AwaitWithTimeout(ctx, next.Sub(workflow.Now(ctx)), overridden); err != nil {
			return false, err
		}
	}
	r.state.NextWindowAt = nil
	if r.cur.Aborting {
		return false, errAborted // the waiting tenants are skipped
	}
	wave := r.lastWave() + 1
	for _, i := range due() {
		t := &r.state.Tenants[i]
		t.moveTo(TenantPending)
		t.Wave, t.Error, t.WindowOpensAt = wave, "", nil
	}
	return true, nil
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
	var first time.Time
	for _, i := range idxs {
		if at := *r.state.Tenants[i].WindowOpensAt; first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
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

// overrideFor is the override a tenant's cut-over carries: its own, or
// the newest of the release's that covers it, made before it was listed.
func (r *rollout) overrideFor(t *Tenant) *tenant.WindowOverride {
	if t.Override == nil {
		for _, o := range slices.Backward(r.state.Overrides) {
			if len(o.Tenants) == 0 || slices.Contains(o.Tenants, t.Name) {
				t.Override = &o.WindowOverride
				break
			}
		}
	}
	return t.Override
}

// overridable: the tenant's cut-over is still to come.
func overridable(s TenantStatus) bool { return s == TenantPending || s == TenantWaitingWindow }

func (r *rollout) validateOverrideWindow(ctx workflow.Context, in OverrideInput) error {
	switch {
	case r.final() || r.cur.Aborting:
		return flow.Refuse(ErrReleaseControlRejected, "release %s is %s: no window to override", r.state.ID, r.finalOrAborting())
	case strings.TrimSpace(in.By) == "":
		return flow.Refuse(ErrReleaseControlRejected, "an override needs a requester (by)")
	case strings.TrimSpace(in.Reason) == "":
		return flow.Refuse(ErrReleaseControlRejected, "an override of maintenance windows needs a reason (the emergency it fixes)")
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
