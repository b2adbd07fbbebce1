package tenant

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// A plan change resizes the tenant to another of its template's plans
// without downtime: the services a cut-over does not replace (its
// databases) get their new limits in place (the runtime's update, no
// restart), then the public service is cut over to a new instance of the
// same image with its new limits, the old one serving until the new one
// is healthy. A failure puts back what changed. The tenant's template
// carries the plans (tenants created since plans exist), so the workflow
// sizes itself: nothing is read from the worker's templates.

// planDrain is how long in-flight requests get on the old instance.
const planDrain = 2 * time.Second

func (t *entity) validateChangePlan(ctx workflow.Context, in ChangePlanRequest) error {
	c := t.state.PlanChange
	switch {
	case in.By == "":
		return flow.Refuse(ErrPlanRefused, "a plan change needs a requester (by)")
	case c != nil && c.pending():
		return flow.Refuse(ErrPlanRefused, "tenant %s is changing to plan %s already (asked by %s)", t.spec.Name, c.To, c.By)
	case t.state.State != StateActive:
		return flow.Refuse(ErrPlanRefused, "tenant %s is %s: only an active tenant changes plan", t.spec.Name, t.state.State)
	case len(t.template.Plans) == 0:
		return flow.Refuse(ErrPlanRefused, "tenant %s was created from a template without plans (or before plans existed): it has none to change to", t.spec.Name)
	case in.Plan == t.state.Plan:
		return flow.Refuse(ErrPlanRefused, "tenant %s is on plan %s already", t.spec.Name, in.Plan)
	}
	sized, _, err := t.template.WithPlan(in.Plan)
	if err != nil {
		return flow.Refuse(ErrPlanRefused, "%v", err)
	}
	if svc := t.resizedInPlace(sized); svc != "" && t.template.Runtime == spec.OpenShift {
		// A Deployment's new limits replace its pod: a database would stop.
		return flow.Refuse(ErrPlanRefused, "tenant %s runs on %s, where plan %s would restart its %s to resize it: only plans that size its public service alone change there without downtime",
			t.spec.Name, t.template.Runtime, in.Plan, svc)
	}
	return nil
}

// resizedInPlace names the first service a change to next resizes in
// place (not the public one, which is cut over); "" when none.
func (t *entity) resizedInPlace(next *spec.Template) string {
	public := t.svcIndex()
	for i, svc := range next.Services {
		if i != public && svc.Resources != t.template.Services[i].Resources {
			return svc.Name
		}
	}
	return ""
}

// requestChangePlan queues the plan change as the tenant's next operation.
func (t *entity) requestChangePlan(ctx workflow.Context, in ChangePlanRequest) (PlanChange, error) {
	c := &PlanChange{From: t.state.Plan, To: in.Plan, Change: queued(ctx, in.By)}
	t.state.PlanChange = c
	t.logger(ctx).Info("plan change requested", "from", c.From, "to", c.To, "by", in.By)
	return *c, nil
}

// planChangeDue: a queued plan change may run.
func (t *entity) planChangeDue() bool {
	c := t.state.PlanChange
	return c != nil && c.due(t.state)
}

// changePlan runs the queued plan change (see above).
func (t *entity) changePlan(ctx workflow.Context) {
	c := t.state.PlanChange
	c.start(ctx)
	sized, _, _ := t.template.WithPlan(c.To) // validated when asked
	if failure := t.reconfigure(ctx, sized, "plan", "plan:"+c.To, c.RequestedAt); failure != "" {
		t.endPlanChange(ctx, c, failure)
		return
	}
	t.state.Plan = c.To
	t.endPlanChange(ctx, c, "")
}

// reconfigure moves the tenant onto next, its own template changed (a
// plan, settings) without downtime: a placed tenant's reservation grows
// first where it must, the services a cut-over does not replace get
// their new limits in place, then the public service is cut over to a
// new instance of the same image (the cut-over's release is release, its
// metrics count it as kind); the reservation then shrinks to what next
// needs. A failure puts back what changed and says what failed ("":
// done). asked names the change for the host registry's Updates.
func (t *entity) reconfigure(ctx workflow.Context, next *spec.Template, kind, release string, asked time.Time) string {
	old := t.template
	public := t.svcIndex()
	started := workflow.Now(ctx)
	failed := func(failure string) string {
		// No cut-over ran to count it.
		t.countOperation(ctx, kind, "failed", started)
		return failure
	}
	room, err := t.reserveFor(ctx, &old, next, asked)
	if err != nil {
		return failed("host " + t.state.Placement.Host + ": " + flow.ErrorMessage(err))
	}

	// The others in place first: a failure there changes nothing public.
	var resized []int
	undo := func() {
		for _, i := range resized {
			if err := t.resize(ctx, old.Services[i].Name, old.Services[i].Resources); err != nil {
				// The service keeps the new limits; the change's failure
				// is what ops read, this says what stayed.
				t.logger(ctx).Error("service not put back to its old size", "service", old.Services[i].Name, "error", flow.ErrorMessage(err))
			}
		}
		room.putBack(ctx)
	}
	for i, svc := range next.Services {
		if i == public || svc.Resources == old.Services[i].Resources {
			continue // the public one is cut over below
		}
		if err := t.resize(ctx, svc.Name, svc.Resources); err != nil {
			undo()
			return failed("resize " + svc.Name + ": " + flow.ErrorMessage(err))
		}
		resized = append(resized, i)
	}

	// The public service through a cut-over to the same image.
	t.template = *next
	rel, previous := t.state.Release, t.state.PreviousImage
	t.cutoverKind = kind
	res := t.cutover(ctx, ApplyInput{Release: release, Image: t.state.Image, Drain: spec.Duration(planDrain)})
	t.cutoverKind = ""
	t.state.Release, t.state.PreviousImage = rel, previous
	if res.Outcome != OutcomeUpdated {
		t.template = old
		undo()
		return "cut-over " + string(res.Outcome) + ": " + res.Error
	}
	room.settle(ctx)
	return ""
}

// hostRoom is a placed tenant's reservation during a reconfiguration:
// what it held and what the new template needs.
type hostRoom struct {
	t              *entity
	op             string
	old, new, peak hosts.Resources
}

// reserveFor grows a placed tenant's reservation to hold both old's and
// next's needs (nil room: not placed, or nothing changes).
func (t *entity) reserveFor(ctx workflow.Context, old, next *spec.Template, asked time.Time) (*hostRoom, error) {
	if t.state.Placement == nil {
		return nil, nil
	}
	r := &hostRoom{t: t, op: asked.UTC().Format(time.RFC3339Nano), old: templateNeed(old), new: templateNeed(next)}
	if r.old == r.new {
		return nil, nil
	}
	r.peak = hosts.Resources{MilliCPU: max(r.old.MilliCPU, r.new.MilliCPU), MemoryBytes: max(r.old.MemoryBytes, r.new.MemoryBytes)}
	if r.peak == r.old {
		return r, nil // shrinks only: once the cut-over is done
	}
	err := r.set(ctx, r.peak, "grow")
	if err != nil && !refusedByRegistry(err) {
		// The registry may have grown it before the answer was lost: the
		// old size again (a size, not a difference: harmless if it did not).
		r.putBack(ctx)
	}
	return r, err
}

// refusedByRegistry tells a refusal of the host registry (nothing
// changed there) from a failure that may have come after the change.
func refusedByRegistry(err error) bool {
	for _, typ := range []string{hosts.ErrNoRoom, hosts.ErrConflict, hosts.ErrNotFound, hosts.ErrInvalid} {
		if flow.IsApplicationError(err, typ) {
			return true
		}
	}
	return false
}

// settle shrinks the reservation to what the new template needs.
func (r *hostRoom) settle(ctx workflow.Context) {
	if r == nil || r.peak == r.new {
		return
	}
	if err := r.set(ctx, r.new, "settle"); err != nil {
		// The tenant holds more room than it needs: nothing is harmed.
		r.t.logger(ctx).Warn("reservation not shrunk", "host", r.t.state.Placement.Host, "error", flow.ErrorMessage(err))
	}
}

// putBack gives the reservation the room it held before.
func (r *hostRoom) putBack(ctx workflow.Context) {
	if r == nil || r.peak == r.old {
		return
	}
	if err := r.set(ctx, r.old, "undo"); err != nil {
		r.t.logger(ctx).Warn("reservation not put back", "host", r.t.state.Placement.Host, "error", flow.ErrorMessage(err))
	}
}

func (r *hostRoom) set(ctx workflow.Context, need hosts.Resources, step string) error {
	t := r.t
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), pl.ResizeReservation, hosts.ResizeInput{
		Tenant: t.spec.Name, Owner: t.state.ProvisionID, Host: t.state.Placement.Host, Need: need, Op: r.op + "/" + step,
	}).Get(ctx, nil)
}

// templateNeed is what a tenant of tpl reserves on its host.
func templateNeed(tpl *spec.Template) hosts.Resources {
	out := make([]spec.Resources, len(tpl.Services))
	for i, s := range tpl.Services {
		out[i] = s.Resources
	}
	return hosts.Need(out...)
}

// resize sets one generation-0 service's limits in place.
func (t *entity) resize(ctx workflow.Context, service string, r spec.Resources) error {
	return t.onHostLocal(ctx, localStepOptions, rt.ResizeService, runtimes.ResizeInput{
		Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Service: service, Resources: r,
	}).Get(ctx, nil)
}

func (t *entity) endPlanChange(ctx workflow.Context, c *PlanChange, failure string) {
	if failure != "" {
		t.logger(ctx).Warn("plan change failed", "to", c.To, "error", failure)
	} else {
		t.logger(ctx).Info("plan changed", "from", c.From, "to", c.To)
	}
	t.endChange(ctx, &c.Change, "plan change to "+c.To, failure)
}

// queued is a change asked now by by.
func queued(ctx workflow.Context, by string) Change {
	return Change{By: by, RequestedAt: workflow.Now(ctx), Phase: PlanQueued}
}

// pending: queued or running, so another is refused.
func (c *Change) pending() bool { return c.Phase == PlanQueued || c.Phase == PlanRunning }

// due: queued, and the tenant active to run it.
func (c *Change) due(st Tenant) bool { return c.Phase == PlanQueued && st.State == StateActive }

func (c *Change) start(ctx workflow.Context) {
	now := workflow.Now(ctx)
	c.Phase, c.StartedAt = PlanRunning, &now
}

// endChange ends c, done or failed ("": done); a failure is the tenant's
// error, named as what, until its next change.
func (t *entity) endChange(ctx workflow.Context, c *Change, what, failure string) {
	now := workflow.Now(ctx)
	c.FinishedAt = &now
	if failure != "" {
		c.Phase, c.Error = PlanFailed, failure
		t.state.Error = what + " failed: " + failure
	} else {
		c.Phase = PlanDone
		t.state.Error = ""
	}
	t.upsertSearchAttributes(ctx)
}
