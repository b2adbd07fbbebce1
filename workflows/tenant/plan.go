package tenant

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
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
	case c != nil && (c.Phase == PlanQueued || c.Phase == PlanRunning):
		return flow.Refuse(ErrPlanRefused, "tenant %s is changing to plan %s already (asked by %s)", t.spec.Name, c.To, c.By)
	case t.state.State != StateActive:
		return flow.Refuse(ErrPlanRefused, "tenant %s is %s: only an active tenant changes plan", t.spec.Name, t.state.State)
	case len(t.template.Plans) == 0:
		return flow.Refuse(ErrPlanRefused, "tenant %s was created from a template without plans (or before plans existed): it has none to change to", t.spec.Name)
	case t.state.Placement != nil:
		return flow.Refuse(ErrPlanRefused, "tenant %s is placed on fleet host %s: a plan change there needs its reservation resized, which is not built yet", t.spec.Name, t.state.Placement.Host)
	case t.template.Runtime == spec.OpenShift:
		return flow.Refuse(ErrPlanRefused, "tenant %s runs on %s: plan changes are built for Docker tenants only so far", t.spec.Name, t.template.Runtime)
	case in.Plan == t.state.Plan:
		return flow.Refuse(ErrPlanRefused, "tenant %s is on plan %s already", t.spec.Name, in.Plan)
	}
	if _, _, err := t.template.WithPlan(in.Plan); err != nil {
		return flow.Refuse(ErrPlanRefused, "%v", err)
	}
	return nil
}

// requestChangePlan queues the plan change as the tenant's next operation.
func (t *entity) requestChangePlan(ctx workflow.Context, in ChangePlanRequest) (PlanChange, error) {
	c := &PlanChange{From: t.state.Plan, To: in.Plan, By: in.By, RequestedAt: workflow.Now(ctx), Phase: PlanQueued}
	t.state.PlanChange = c
	t.logger(ctx).Info("plan change requested", "from", c.From, "to", c.To, "by", in.By)
	return *c, nil
}

// planChangeDue: a queued plan change may run.
func (t *entity) planChangeDue() bool {
	c := t.state.PlanChange
	return c != nil && c.Phase == PlanQueued && t.state.State == StateActive
}

// changePlan runs the queued plan change (see above).
func (t *entity) changePlan(ctx workflow.Context) {
	c := t.state.PlanChange
	now := workflow.Now(ctx)
	c.Phase, c.StartedAt = PlanRunning, &now
	sized, _, _ := t.template.WithPlan(c.To) // validated when asked
	old := t.template
	public := t.svcIndex()

	// The others in place first: a failure there changes nothing public.
	var resized []int
	undo := func() {
		for _, i := range resized {
			if err := t.resize(ctx, old.Services[i].Name, old.Services[i].Resources); err != nil {
				// The service keeps the new plan's limits; the change's
				// failure is what ops read, this says what stayed.
				t.logger(ctx).Error("service not put back to its old size", "service", old.Services[i].Name, "error", flow.ErrorMessage(err))
			}
		}
	}
	for i, svc := range sized.Services {
		if i == public || svc.Resources == old.Services[i].Resources {
			continue
		}
		if err := t.resize(ctx, svc.Name, svc.Resources); err != nil {
			undo()
			// No cut-over ran to count it.
			t.countOperation(ctx, "plan", "failed", now)
			t.endPlanChange(ctx, c, "resize "+svc.Name+": "+flow.ErrorMessage(err))
			return
		}
		resized = append(resized, i)
	}

	// The public service through a cut-over to the same image.
	t.template = *sized
	release, previous := t.state.Release, t.state.PreviousImage
	t.cutoverKind = "plan"
	res := t.cutover(ctx, ApplyInput{Release: "plan:" + c.To, Image: t.state.Image, Drain: spec.Duration(planDrain)})
	t.cutoverKind = ""
	t.state.Release, t.state.PreviousImage = release, previous
	if res.Outcome != OutcomeUpdated {
		t.template = old
		undo()
		t.endPlanChange(ctx, c, "cut-over "+string(res.Outcome)+": "+res.Error)
		return
	}
	t.state.Plan = c.To
	t.endPlanChange(ctx, c, "")
}

// resize sets one generation-0 service's limits in place.
func (t *entity) resize(ctx workflow.Context, service string, r spec.Resources) error {
	return t.onHostLocal(ctx, localStepOptions, rt.ResizeService, runtimes.ResizeInput{
		Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Service: service, Resources: r,
	}).Get(ctx, nil)
}

func (t *entity) endPlanChange(ctx workflow.Context, c *PlanChange, failure string) {
	now := workflow.Now(ctx)
	c.FinishedAt = &now
	if failure != "" {
		c.Phase, c.Error = PlanFailed, failure
		t.state.Error = "plan change to " + c.To + " failed: " + failure
		t.logger(ctx).Warn("plan change failed", "to", c.To, "error", failure)
	} else {
		c.Phase = PlanDone
		t.state.Error = ""
		t.logger(ctx).Info("plan changed", "from", c.From, "to", c.To)
	}
	t.upsertSearchAttributes(ctx)
}
