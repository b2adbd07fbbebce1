package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

var (
	saTenant = temporal.NewSearchAttributeKeyKeyword("TenantId")
	saStage  = temporal.NewSearchAttributeKeyKeyword("Stage")
	saImage  = temporal.NewSearchAttributeKeyKeyword("Image")
)

// fakeTenant stands in for the Tenant workflow: it applies every release
// it is sent and counts the applications, refusing an empty image as the
// real validator refuses a tenant that takes no release; its state names
// the fleet host it is placed on (host "": not placed).
func fakeTenant(ctx workflow.Context, image, host string) error {
	st := tenant.Tenant{Name: workflow.GetInfo(ctx).WorkflowExecution.ID}
	if host != "" {
		st.Placement = &hosts.Placement{Host: host, Reason: "test"}
	}
	if err := workflow.SetQueryHandler(ctx, tenant.QueryState, func() (tenant.Tenant, error) { return st, nil }); err != nil {
		return err
	}
	applied := 0
	if err := workflow.SetQueryHandler(ctx, "applied", func() (int, error) { return applied, nil }); err != nil {
		return err
	}
	var cancels []tenant.CancelInput
	if err := workflow.SetQueryHandler(ctx, "cancels", func() ([]tenant.CancelInput, error) { return cancels, nil }); err != nil {
		return err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannel(ctx, tenant.SignalCancelRelease)
		for {
			var in tenant.CancelInput
			ch.Receive(ctx, &in)
			cancels = append(cancels, in)
		}
	})
	err := workflow.SetUpdateHandlerWithOptions(ctx, tenant.UpdateApplyRelease,
		func(ctx workflow.Context, in tenant.ApplyInput) (tenant.ApplyResult, error) {
			applied++
			from := image
			image = in.Image
			return tenant.ApplyResult{Tenant: workflow.GetInfo(ctx).WorkflowExecution.ID, Outcome: tenant.OutcomeUpdated, From: from, To: in.Image}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, in tenant.ApplyInput) error {
			if in.Image == "" {
				return temporal.NewApplicationError("tenant is decommissioned: it takes no release", "TenantUnavailable")
			}
			return nil
		}})
	if err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return false })
}

func startTenant(t *testing.T, c client.Client, queue, name, stage, host string) {
	t.Helper()
	_, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: tenant.WorkflowID(name), TaskQueue: queue,
		TypedSearchAttributes: temporal.NewSearchAttributes(saTenant.ValueSet(name), saStage.ValueSet(stage), saImage.ValueSet("img:1")),
	}, tenant.WorkflowType, "img:1", host)
	require.NoError(t, err)
}

func TestListAndUpdateTenantsOnARealServer(t *testing.T) {
	tmp := temporaltest.StartTemporal(t)
	c := tmp.Client
	w := worker.New(c, tmp.Config.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(fakeTenant, workflow.RegisterOptions{Name: tenant.WorkflowType})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	for name, at := range map[string]struct{ stage, host string }{"alpha": {"prod", "host-1"}, "beta": {"staging", ""}, "gamma": {"prod", ""}} {
		startTenant(t, c, tmp.Config.TaskQueue, name, at.stage, at.host)
	}
	a := &fleet.Activities{Client: c}
	ctx := context.Background()

	// Visibility catches up within moments.
	var prod []fleet.Tenant
	require.Eventually(t, func() bool {
		var err error
		prod, err = a.ListTenants(ctx, fleet.ListInput{Stage: "prod"})
		return err == nil && len(prod) == 2
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, []fleet.Tenant{{Name: "alpha", Stage: "prod", Image: "img:1"}, {Name: "gamma", Stage: "prod", Image: "img:1"}}, prod)
	named, err := a.ListTenants(ctx, fleet.ListInput{Stage: "prod", Names: []string{"gamma", "beta", "nobody"}})
	require.NoError(t, err)
	require.Equal(t, []fleet.Tenant{{Name: "gamma", Stage: "prod", Image: "img:1"}}, named)
	// Asked for, each tenant's host comes from its own state; an unplaced
	// tenant has none.
	placed, err := a.ListTenants(ctx, fleet.ListInput{Stage: "prod", Hosts: true})
	require.NoError(t, err)
	require.Equal(t, []fleet.Tenant{{Name: "alpha", Stage: "prod", Image: "img:1", Host: "host-1"}, {Name: "gamma", Stage: "prod", Image: "img:1"}}, placed)
	_, err = a.ListTenants(ctx, fleet.ListInput{Names: []string{"x' OR TenantId != '"}})
	require.Error(t, err, "a name is never pasted into the query unchecked")

	// A retried activity (same Update id) joins the Update it sent: the
	// tenant applies the release once.
	in := fleet.UpdateInput{Tenant: "alpha", UpdateID: "release:r1/alpha", Apply: tenant.ApplyInput{Release: "r1", Image: "img:2"}}
	first, err := a.UpdateTenant(ctx, in)
	require.NoError(t, err)
	require.Equal(t, tenant.OutcomeUpdated, first.Outcome)
	require.Equal(t, "img:1", first.From)
	again, err := a.UpdateTenant(ctx, in)
	require.NoError(t, err)
	require.Equal(t, first, again)
	v, err := c.QueryWorkflow(ctx, tenant.WorkflowID("alpha"), "", "applied")
	require.NoError(t, err)
	var applied int
	require.NoError(t, v.Get(&applied))
	require.Equal(t, 1, applied)

	// A tenant that refuses, or that does not exist, is skipped, not failed.
	refused, err := a.UpdateTenant(ctx, fleet.UpdateInput{Tenant: "gamma", UpdateID: "release:r1/gamma", Apply: tenant.ApplyInput{Release: "r1"}})
	require.NoError(t, err)
	require.Equal(t, tenant.OutcomeSkipped, refused.Outcome)
	require.Contains(t, refused.Error, "decommissioned")
	missing, err := a.UpdateTenant(ctx, fleet.UpdateInput{Tenant: "nobody", UpdateID: "release:r1/nobody", Apply: tenant.ApplyInput{Release: "r1", Image: "img:2"}})
	require.NoError(t, err)
	require.Equal(t, tenant.OutcomeSkipped, missing.Outcome)

	// An abort reaches the tenant as a Signal; a tenant that is gone has
	// nothing to stop.
	cancel := tenant.CancelInput{Tenant: "gamma", Release: "r1", Image: "img:2", Reason: "aborted by ops"}
	require.NoError(t, a.CancelRelease(ctx, cancel))
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, tenant.WorkflowID("gamma"), "", "cancels")
		var got []tenant.CancelInput
		return err == nil && v.Get(&got) == nil && len(got) == 1 && got[0] == cancel
	}, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, a.CancelRelease(ctx, tenant.CancelInput{Tenant: "nobody", Release: "r1", Image: "img:2"}))
	harness.RequireNonRetryable(t, a.CancelRelease(ctx, tenant.CancelInput{Tenant: "No Body", Release: "r1"}), fleet.ErrInvalidSelector)
}
