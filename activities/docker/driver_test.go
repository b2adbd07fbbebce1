package docker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

func defaultEnv(t *testing.T, tenant string) spec.Environment {
	t.Helper()
	tpls, err := spec.LoadTemplates(harness.RepoRoot() + "/deploy/templates")
	require.NoError(t, err)
	tpl := tpls["light"]
	secrets, err := tpl.GenerateSecrets()
	require.NoError(t, err)
	env, err := tpl.Render(tenant, "staging", secrets)
	require.NoError(t, err)
	return env
}

// demoTenant connects to the engine, makes sure the demo image is there and
// names a tenant of its own (prefix and a number) whose objects are
// removed when the test ends.
func demoTenant(t *testing.T, prefix string) (*docker.Driver, string) {
	t.Helper()
	d := harness.Docker(t)
	harness.DemoImage(t, d, demoimage.Tag, "v1")
	tenant := fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e6)
	t.Cleanup(func() { destroy(t, d, tenant) })
	return d, tenant
}

// residue lists what the engine still holds of a tenant.
func residue(t *testing.T, d *docker.Driver, tenant string) []string {
	t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+tenant))
	var out []string
	cs, err := d.Client().ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	require.NoError(t, err)
	for _, c := range cs {
		out = append(out, "container "+c.Names[0])
	}
	vs, err := d.Client().VolumeList(ctx, volume.ListOptions{Filters: f})
	require.NoError(t, err)
	for _, v := range vs.Volumes {
		out = append(out, "volume "+v.Name)
	}
	ns, err := d.Client().NetworkList(ctx, network.ListOptions{Filters: f})
	require.NoError(t, err)
	for _, n := range ns {
		out = append(out, "network "+n.Name)
	}
	return out
}

func destroy(t *testing.T, d *docker.Driver, tenant string) {
	ctx := context.Background()
	require.NoError(t, d.RemoveServices(ctx, tenant, ""))
	require.NoError(t, d.RemoveVolumes(ctx, tenant, ""))
	require.NoError(t, d.RemoveNetwork(ctx, tenant, ""))
}

func provision(t *testing.T, d *docker.Driver, env spec.Environment) (runtimes.Endpoint, map[string]string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, d.CreateNetwork(ctx, env.Tenant, "run-1"))
	require.NoError(t, d.CreateVolumes(ctx, env.Tenant, "run-1", env.Volumes))
	ids := map[string]string{}
	for _, s := range env.Services {
		st, err := d.StartService(ctx, env.Tenant, "run-1", s)
		require.NoError(t, err)
		ids[s.Name] = st.ID
	}
	ep, err := d.WaitHealthy(ctx, env, func(string) {})
	require.NoError(t, err)
	return ep, ids
}

func TestMissingImageIsPermanent(t *testing.T) {
	d := harness.Docker(t)
	tenant := fmt.Sprintf("noimg%d", time.Now().UnixNano()%1e6)
	t.Cleanup(func() { destroy(t, d, tenant) })
	ctx := context.Background()
	require.NoError(t, d.CreateNetwork(ctx, tenant, "run-1"))
	_, err := d.StartService(ctx, tenant, "run-1", spec.Service{Name: "app", Image: "tenantflow/does-not-exist:nope"})
	harness.RequireNonRetryable(t, err, runtimes.ErrImageNotFound)
	_, err = d.Client().ContainerInspect(ctx, docker.ContainerName(tenant, "app"))
	require.True(t, cerrdefs.IsNotFound(err), "no container may be left: %v", err)
}

func TestUnhealthyServiceIsPermanent(t *testing.T) {
	d, tenant := demoTenant(t, "sick")
	env := defaultEnv(t, tenant)
	// The db's check probes a port nothing listens on: Docker gives up.
	env.Services[0].HealthCheck = &spec.HealthCheck{
		Command:  []string{"/demo-app", "probe", "http://127.0.0.1:1/healthz"},
		Interval: spec.Duration(100 * time.Millisecond), Retries: 2,
	}
	ctx := context.Background()
	require.NoError(t, d.CreateNetwork(ctx, tenant, "run-1"))
	require.NoError(t, d.CreateVolumes(ctx, tenant, "run-1", env.Volumes))
	for _, s := range env.Services {
		_, err := d.StartService(ctx, tenant, "run-1", s)
		require.NoError(t, err)
	}
	_, err := d.WaitHealthy(ctx, env, func(string) {})
	appErr := harness.RequireNonRetryable(t, err, runtimes.ErrServiceUnhealthy)
	require.Contains(t, appErr.Error(), "db")
}

// Names cannot collide across tenants whose names share a prefix.
func TestNamesDoNotCollide(t *testing.T) {
	require.NotEqual(t, docker.VolumeName("acme", "db-data"), docker.VolumeName("acme-db", "data"))
	require.NotEqual(t, docker.ContainerName("acme", "db-app"), docker.ContainerName("acme-db", "app"))
	// Generation 0 keeps the name tenants had before releases existed.
	require.Equal(t, docker.ContainerName("acme", "app"), docker.InstanceName("acme", "app", 0))
	require.Equal(t, "tf-acme_app_1", docker.InstanceName("acme", "app", 1))
	require.Equal(t, "tf-acme_app_12", docker.InstanceName("acme", "app", 12))
	require.NotEqual(t, docker.InstanceName("acme", "app", 1), docker.InstanceName("acme-app", "1", 0))
}

// The engine checks a running service at the steady pace the template
// sets (30 s for the default template: a host carries hundreds of idle
// tenants), while the worker probes a starting service itself at the start
// pace: provisioning does not wait for the engine's first check.
func TestStartingServiceIsProbedByTheWorkerNotTheEnginesSteadyCheck(t *testing.T) {
	d, tenant := demoTenant(t, "pace")
	env := defaultEnv(t, tenant)
	db := env.Services[0]
	require.Equal(t, "db", db.Name)
	require.NotEmpty(t, db.HealthCheck.Command)
	provision(t, d, env)

	info, err := d.Client().ContainerInspect(context.Background(), docker.ContainerName(tenant, "db"))
	require.NoError(t, err)
	require.Equal(t, 30*time.Second, info.Config.Healthcheck.Interval, "the engine's own check is the steady one")
	// Ready by the worker's probe, before the engine's first steady check
	// has even run.
	require.Equal(t, "starting", info.State.Health.Status)
	require.Empty(t, info.State.Health.Log)
}

// A service made ahead (a move's target) is created, not running, and
// its start then starts that same container.
func TestACreatedServiceStartsTheSameContainer(t *testing.T) {
	d, tenant := demoTenant(t, "mkahead")
	ctx := context.Background()
	env := defaultEnv(t, tenant)
	require.NoError(t, d.CreateNetwork(ctx, tenant, "run-1"))
	require.NoError(t, d.CreateVolumes(ctx, tenant, "run-1", env.Volumes))
	svc := env.Services[0]
	made, err := d.CreateService(ctx, tenant, "run-1", svc)
	require.NoError(t, err)
	c, err := d.Client().ContainerInspect(ctx, made.ID)
	require.NoError(t, err)
	require.Equal(t, container.StateCreated, c.State.Status, "made, not started")
	again, err := d.CreateService(ctx, tenant, "run-1", svc)
	require.NoError(t, err)
	require.Equal(t, made.ID, again.ID, "a retry makes no second container")
	started, err := d.StartService(ctx, tenant, "run-1", svc)
	require.NoError(t, err)
	require.Equal(t, made.ID, started.ID)
	c, err = d.Client().ContainerInspect(ctx, made.ID)
	require.NoError(t, err)
	require.True(t, c.State.Running)
}
