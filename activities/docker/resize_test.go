package docker_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// A service is resized in place: new limits, same container, never
// restarted; another provisioning's container is refused.
func TestResizeServiceInPlace(t *testing.T) {
	d, tenant := demoTenant(t, "resize")
	provision(t, d, defaultEnv(t, tenant))
	ctx := context.Background()
	before, err := d.Client().ContainerInspect(ctx, docker.ContainerName(tenant, "db"))
	require.NoError(t, err)
	require.Equal(t, int64(64<<20), before.HostConfig.Memory)

	in := runtimes.ResizeInput{Tenant: tenant, Owner: "run-1", Service: "db", Resources: spec.Resources{Memory: "256Mi", CPUs: 2, Pids: 128}}
	require.NoError(t, d.ResizeService(ctx, in))
	require.NoError(t, d.ResizeService(ctx, in), "again: nothing changes")
	after, err := d.Client().ContainerInspect(ctx, docker.ContainerName(tenant, "db"))
	require.NoError(t, err)
	require.Equal(t, before.ID, after.ID)
	require.Equal(t, before.State.StartedAt, after.State.StartedAt, "not restarted")
	require.True(t, after.State.Running)
	require.Equal(t, int64(256<<20), after.HostConfig.Memory)
	require.Equal(t, int64(2e9), after.HostConfig.NanoCPUs)
	require.Equal(t, int64(128), *after.HostConfig.PidsLimit)

	// Down again, below the first size's swap.
	in.Resources = spec.Resources{Memory: "64Mi", CPUs: 0.5, Pids: 64}
	require.NoError(t, d.ResizeService(ctx, in))

	in.Owner = "another-run"
	harness.RequireNonRetryable(t, d.ResizeService(ctx, in), runtimes.ErrResourceNotOurs)
	in.Owner, in.Service = "run-1", "nope"
	harness.RequireNonRetryable(t, d.ResizeService(ctx, in), runtimes.ErrCannotResize)
}
