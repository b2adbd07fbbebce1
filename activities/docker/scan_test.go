package docker_test

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// Scan finds a tenant's containers (stopped ones too), network and
// volumes by their labels; RemoveObject removes an orphaned container or
// network only while its labels name the same owner, and never a volume.
func TestScanFindsTheTenantsObjectsAndRemovesOrphans(t *testing.T) {
	d, tenant := demoTenant(t, "scan")
	env := defaultEnv(t, tenant)
	ctx := context.Background()
	require.NoError(t, d.CreateNetwork(ctx, tenant, "run-1"))
	require.NoError(t, d.CreateVolumes(ctx, tenant, "run-1", env.Volumes))
	for _, s := range env.Services {
		_, err := d.StartService(ctx, tenant, "run-1", s)
		require.NoError(t, err)
	}
	first := env.Services[0].Name
	require.NoError(t, d.Client().ContainerStop(ctx, docker.ContainerName(tenant, first), container.StopOptions{}))

	mine := func() map[runtimes.ObjectKind][]runtimes.Object {
		objs, err := d.Scan(ctx)
		require.NoError(t, err)
		out := map[runtimes.ObjectKind][]runtimes.Object{}
		for _, o := range objs {
			if o.Tenant == tenant {
				out[o.Kind] = append(out[o.Kind], o)
			}
		}
		return out
	}
	got := mine()
	require.Len(t, got[runtimes.ObjectNetwork], 1)
	require.Len(t, got[runtimes.ObjectVolume], len(env.Volumes))
	require.Len(t, got[runtimes.ObjectContainer], len(env.Services))
	for _, o := range got[runtimes.ObjectContainer] {
		require.Equal(t, "run-1", o.Owner)
		require.Equal(t, o.Service != first, o.Running, "%s is %s", o.Name, o.State)
		require.Equal(t, docker.ContainerName(tenant, o.Service), o.Name)
	}
	for _, o := range got[runtimes.ObjectVolume] {
		require.Contains(t, env.Volumes, o.Volume)
		harness.RequireNonRetryable(t, d.RemoveObject(ctx, o), runtimes.ErrVolumeKept)
	}

	c := got[runtimes.ObjectContainer][0]
	other := c
	other.Owner = "run-0"
	harness.RequireNonRetryable(t, d.RemoveObject(ctx, other), runtimes.ErrResourceNotOurs)
	require.Len(t, mine()[runtimes.ObjectContainer], len(env.Services), "another owner's object is left alone")
	for _, o := range got[runtimes.ObjectContainer] {
		require.NoError(t, d.RemoveObject(ctx, o))
	}
	require.NoError(t, d.RemoveObject(ctx, got[runtimes.ObjectNetwork][0]))
	require.NoError(t, d.RemoveObject(ctx, c), "gone already is success")
	left := mine()
	require.Empty(t, left[runtimes.ObjectContainer])
	require.Empty(t, left[runtimes.ObjectNetwork])
	require.Len(t, left[runtimes.ObjectVolume], len(env.Volumes), "volumes stay")
}
