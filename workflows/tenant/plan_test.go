package tenant

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// A plan change resizes the database in place and cuts the app over to a
// new instance of the same image with its new limits; the release and
// image the tenant runs stay what they were. Bad requests are refused.
func (s *provisionSuite) TestChangePlanResizesWithoutDowntime() {
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		if in.Service.Generation > 0 {
			s.record("candidate resources " + in.Service.Resources.Memory)
		}
		return nil
	}, nil)
	s.mockCutover()
	var a *runtimes.Activities
	var resized []runtimes.ResizeInput
	s.env.OnActivity(a.ResizeService, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.ResizeInput) error {
		s.mu.Lock()
		resized = append(resized, in)
		s.mu.Unlock()
		return nil
	})
	in := defaultInput(s.T())
	in.Spec.Plan = "small"
	var same, unknown, noBy, changed error
	s.updateAt(10*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "small", By: "ops"}, &same)
	s.updateAt(10*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "huge", By: "ops"}, &unknown)
	s.updateAt(10*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "large"}, &noBy)
	s.updateAt(11*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "large", By: "distributor"}, &changed)
	var before, after Tenant
	s.stateAt(5*time.Minute, &before)
	s.stateAt(time.Hour, &after)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Equal(ErrPlanRefused, name(same))
	s.Contains(same.Error(), "on plan small already")
	s.Contains(unknown.Error(), `no plan "huge"`)
	s.Contains(noBy.Error(), "needs a requester")
	s.Require().NoError(changed)

	s.Equal("small", before.Plan)
	s.Equal("large", after.Plan)
	s.Require().NotNil(after.PlanChange)
	s.Equal(PlanDone, after.PlanChange.Phase, after.PlanChange.Error)
	s.Equal("small", after.PlanChange.From)
	s.Equal(StateActive, after.State)
	s.Equal(before.Image, after.Image, "the same image")
	s.Equal(before.Release, after.Release, "no release is claimed")
	s.Equal(1, after.Generation, "the app was cut over")
	s.Equal([]runtimes.ResizeInput{{Runtime: in.Template.Runtime, Tenant: "acme", Owner: after.ProvisionID, Service: "db",
		Resources: spec.Resources{Memory: "256Mi", CPUs: 2, Pids: 128}}}, resized, "the database in place")
	s.Contains(s.recorded(), "candidate resources 256Mi")
}

// A plan change whose new instance never gets healthy puts the database
// back to its old size; the tenant keeps its plan and serves as before.
func (s *provisionSuite) TestAFailedPlanChangeIsUndone() {
	waits := 0
	s.mockRuntime(nil, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		waits++
		if waits > 1 {
			return temporal.NewNonRetryableApplicationError("service app is unhealthy", runtimes.ErrServiceUnhealthy, nil)
		}
		return nil
	})
	s.mockCutover()
	var a *runtimes.Activities
	var resized []string
	s.env.OnActivity(a.ResizeService, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.ResizeInput) error {
		s.mu.Lock()
		resized = append(resized, in.Service+" "+in.Resources.Memory)
		s.mu.Unlock()
		return nil
	})
	in := defaultInput(s.T())
	in.Spec.Plan = "small"
	var changed error
	s.updateAt(10*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "medium", By: "ops"}, &changed)
	var after Tenant
	s.stateAt(time.Hour, &after)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Require().NoError(changed)
	s.Equal("small", after.Plan)
	s.Equal(PlanFailed, after.PlanChange.Phase)
	s.Contains(after.PlanChange.Error, "cut-over rolled-back")
	s.Contains(after.Error, "plan change to medium failed")
	s.Equal(StateActive, after.State)
	s.Equal(0, after.Generation, "the old instance serves")
	s.Equal([]string{"db 128Mi", "db 64Mi"}, resized, "resized, then back")
}
