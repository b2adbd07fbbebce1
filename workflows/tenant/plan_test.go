package tenant

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/placement"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/hosts"
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

// A placed tenant's plan change grows its reservation on its host before
// anything is resized, and shrinks it once the change is done; a host
// without room refuses it before anything changed.
func (s *provisionSuite) TestAPlacedTenantChangesPlanWithItsReservation() {
	s.mockRuntime(nil, nil)
	s.mockCutover()
	s.mockPlacement(placedOn("host-b"))
	var a *runtimes.Activities
	s.env.OnActivity(a.ResizeService, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.ResizeInput) error {
		s.record("ResizeService " + in.Service + " " + in.Resources.Memory)
		return nil
	})
	var p *placement.Activities
	s.env.RegisterActivity((&placement.Activities{}).ResizeReservation)
	s.env.OnActivity(p.ResizeReservation, mock.Anything, mock.Anything).Return(func(_ context.Context, in hosts.ResizeInput) error {
		_, step, _ := strings.Cut(in.Op, "/")
		s.record(fmt.Sprintf("ResizeReservation %s %s %s", in.Host, step, in.Need))
		if in.Need.MemoryBytes > 1<<30 {
			return temporal.NewNonRetryableApplicationError("host host-b has 0 CPU, 0Mi free besides …: move the tenant first", hosts.ErrNoRoom, nil)
		}
		return nil
	})
	in := placedInput(s, "host-b")
	in.Spec.Plan = "small"
	in.Template.Plans["huge"] = map[string]spec.Resources{"db": {Memory: "2Gi"}}
	var large, small, huge error
	s.updateAt(10*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "large", By: "ops"}, &large)
	s.updateAt(20*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "small", By: "ops"}, &small)
	s.updateAt(30*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "huge", By: "ops"}, &huge)
	var afterLarge, afterSmall, afterHuge Tenant
	s.stateAt(15*time.Minute, &afterLarge)
	s.stateAt(25*time.Minute, &afterSmall)
	s.stateAt(35*time.Minute, &afterHuge)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Require().NoError(large)
	s.Require().NoError(small)
	s.Require().NoError(huge)
	s.Equal("large", afterLarge.Plan, afterLarge.Error)
	s.Equal("small", afterSmall.Plan, afterSmall.Error)
	s.Equal(PlanFailed, afterHuge.PlanChange.Phase)
	s.Contains(afterHuge.PlanChange.Error, "host host-b: host host-b has 0 CPU")
	s.Equal("small", afterHuge.Plan)
	s.Equal(2, afterHuge.Generation, "two cut-overs; the refused change made none")
	// light: small is app and db at 0.5 CPU and 64Mi each; large at 2
	// CPUs and 256Mi each.
	s.Equal([]string{
		"ResizeReservation host-b grow 4cpu 512Mi", "ResizeService db 256Mi",
		"ResizeService db 64Mi", "ResizeReservation host-b settle 1cpu 128Mi",
		"ResizeReservation host-b grow 1cpu 2112Mi",
	}, callsOf(s.recorded(), "Resize"))
}

// On OpenShift a plan that sizes the public service alone goes through a
// cut-over; one that would resize a database in place (a restart there)
// is refused, naming it.
func (s *provisionSuite) TestOpenShiftPlanChangesSizeThePublicServiceOnly() {
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		if in.Service.Generation > 0 {
			s.record("candidate " + in.Service.Name + " " + in.Service.Resources.Memory)
		}
		return nil
	}, nil)
	s.mockCutover()
	var a *runtimes.Activities
	s.env.OnActivity(a.ResizeService, mock.Anything, mock.Anything).Return(func(context.Context, runtimes.ResizeInput) error {
		s.record("ResizeService")
		return nil
	})
	in := defaultInput(s.T())
	in.Template.Runtime = spec.OpenShift
	in.Spec.Plan = "small"
	in.Template.Plans["bigger-app"] = map[string]spec.Resources{"app": {Memory: "512Mi"}}
	var db, app error
	s.updateAt(10*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "medium", By: "ops"}, &db)
	s.updateAt(11*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "bigger-app", By: "ops"}, &app)
	var after Tenant
	s.stateAt(time.Hour, &after)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Equal(ErrPlanRefused, name(db))
	s.Contains(db.Error(), "runs on openshift, where plan medium would restart its db")
	s.Require().NoError(app)
	s.Equal("bigger-app", after.Plan, after.Error)
	s.Equal(PlanDone, after.PlanChange.Phase)
	s.Equal([]string{"candidate app 512Mi"}, callsOf(s.recorded(), "candidate "))
	s.Empty(callsOf(s.recorded(), "ResizeService"))
}

// A grow whose answer is lost (not a refusal: the registry may have grown
// the reservation) is undone, so no room stays held.
func (s *provisionSuite) TestALostGrowOfAReservationIsUndone() {
	s.mockRuntime(nil, nil)
	s.mockCutover()
	s.mockPlacement(placedOn("host-b"))
	var p *placement.Activities
	s.env.RegisterActivity((&placement.Activities{}).ResizeReservation)
	s.env.OnActivity(p.ResizeReservation, mock.Anything, mock.Anything).Return(func(_ context.Context, in hosts.ResizeInput) error {
		_, step, _ := strings.Cut(in.Op, "/")
		s.record(fmt.Sprintf("ResizeReservation %s %s", step, in.Need))
		if step == "grow" {
			return temporal.NewNonRetryableApplicationError("context deadline exceeded", "Timeout", nil)
		}
		return nil
	})
	in := placedInput(s, "host-b")
	in.Spec.Plan = "small"
	var large error
	s.updateAt(10*time.Minute, UpdateChangePlan, ChangePlanRequest{Plan: "large", By: "ops"}, &large)
	var after Tenant
	s.stateAt(time.Hour, &after)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Require().NoError(large)
	s.Equal(PlanFailed, after.PlanChange.Phase)
	s.Equal([]string{"ResizeReservation grow 4cpu 512Mi", "ResizeReservation undo 1cpu 128Mi"}, callsOf(s.recorded(), "ResizeReservation"))
	s.Equal(0, after.Generation, "nothing was cut over")
}
