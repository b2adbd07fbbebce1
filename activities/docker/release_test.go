package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/registry"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// Image tags of the release tests' demo images (built once per process
// like demoimage.Tag, and overwritten by the next run).
const (
	releaseV2Tag        = "tenantflow/demo-app:release-test-v2"
	releaseUnhealthyTag = "tenantflow/demo-app:release-test-unhealthy"
)

func service(t *testing.T, env spec.Environment, name string) spec.Service {
	t.Helper()
	for _, s := range env.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("environment has no service %s", name)
	return spec.Service{}
}

// call sends a request and returns the status and the trimmed body.
func call(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func callOK(t *testing.T, method, url string) string {
	t.Helper()
	code, body := call(t, method, url)
	require.Equal(t, http.StatusOK, code, "%s %s: %s", method, url, body)
	return body
}

// appState is the demo app's GET / answer.
func appState(t *testing.T, base string) (hits int, dbHits string) {
	t.Helper()
	var out struct {
		Hits    int    `json:"hits"`
		DBHits  string `json:"dbHits"`
		DBError string `json:"dbError"`
	}
	require.NoError(t, json.Unmarshal([]byte(callOK(t, http.MethodGet, base+"/")), &out))
	require.Empty(t, out.DBError)
	return out.Hits, out.DBHits
}

func requireGone(t *testing.T, d *docker.Driver, name string) {
	t.Helper()
	_, err := d.Client().ContainerInspect(context.Background(), name)
	require.True(t, cerrdefs.IsNotFound(err), "container %s still exists: %v", name, err)
}

// requireRunning asserts the container name is still the one with id, running.
func requireRunning(t *testing.T, d *docker.Driver, name, id string) {
	t.Helper()
	info, err := d.Client().ContainerInspect(context.Background(), name)
	require.NoError(t, err)
	require.Equal(t, id, info.ID, "container %s was replaced", name)
	require.True(t, info.State.Running, "container %s is %s", name, info.State.Status)
}

// dieEvents reports the exit codes of container id from now on. Events
// since the call are replayed by the engine, so none is missed however late
// the subscription reaches it.
func dieEvents(t *testing.T, d *docker.Driver, id string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	msgs, errs := d.Client().Events(ctx, events.ListOptions{
		Since: strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10),
		Filters: filters.NewArgs(
			filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("event", string(events.ActionDie)),
			filters.Arg("container", id),
		),
	})
	out := make(chan string, 1)
	go func() {
		select {
		case m := <-msgs:
			out <- m.Actor.Attributes["exitCode"]
		case err := <-errs:
			out <- "events: " + err.Error()
		case <-ctx.Done():
		}
	}()
	return out
}

// A cut-over at driver level: the candidate (generation 1, new image) runs
// beside generation 0 on the same network and volumes, answers on its own
// endpoint, and retiring generation 0 stops it gracefully and removes only
// it.
func TestReleaseCutOver(t *testing.T) {
	d := harness.Docker(t)
	harness.DemoImage(t, d, demoimage.Tag, "v1")
	v2 := harness.DemoImage(t, d, releaseV2Tag, "v2")
	ctx := context.Background()
	tenant := fmt.Sprintf("cut%d", time.Now().UnixNano()%1e6)
	t.Cleanup(func() { destroy(t, d, tenant) })
	env := defaultEnv(t, tenant)
	ep0, ids := provision(t, d, env)
	require.Equal(t, "1", callOK(t, http.MethodPost, ep0.URL+"/hits"))

	// A neighbour tenant's service of the same name must survive it all.
	neighbour := tenant + "n"
	t.Cleanup(func() { destroy(t, d, neighbour) })
	nenv := defaultEnv(t, neighbour)
	require.NoError(t, d.CreateNetwork(ctx, neighbour, "run-n"))
	require.NoError(t, d.CreateVolumes(ctx, neighbour, "run-n", nenv.Volumes))
	nst, err := d.StartService(ctx, neighbour, "run-n", service(t, nenv, "app"))
	require.NoError(t, err)

	cand := service(t, env, "app")
	cand.Generation, cand.Image = 1, v2
	st, err := d.StartService(ctx, tenant, "run-1", cand)
	require.NoError(t, err)
	require.NotEqual(t, ids["app"], st.ID)
	again, err := d.StartService(ctx, tenant, "run-1", cand)
	require.NoError(t, err)
	require.Equal(t, st.ID, again.ID, "a retried start finds the candidate")

	name1 := docker.InstanceName(tenant, "app", 1)
	info, err := d.Client().ContainerInspect(ctx, name1)
	require.NoError(t, err)
	require.Equal(t, st.ID, info.ID)
	require.Equal(t, "1", info.Config.Labels[docker.LabelGeneration])
	require.Contains(t, info.NetworkSettings.Networks[docker.NetworkName(tenant)].Aliases, "app")
	old, err := d.Client().ContainerInspect(ctx, docker.ContainerName(tenant, "app"))
	require.NoError(t, err)
	require.NotContains(t, old.Config.Labels, docker.LabelGeneration, "generation 0 carries no label")
	require.Equal(t, old.HostConfig.Mounts, info.HostConfig.Mounts, "the candidate mounts the same volumes")

	candEnv := spec.Environment{Tenant: tenant, Services: []spec.Service{cand}, HealthTimeout: spec.Duration(time.Minute)}
	ep1, err := d.WaitHealthy(ctx, candEnv, func(string) {})
	require.NoError(t, err)
	require.NotEqual(t, ep0.URL, ep1.URL)
	require.Equal(t, "v2", callOK(t, http.MethodGet, ep1.URL+"/version"))
	require.Equal(t, "v1", callOK(t, http.MethodGet, ep0.URL+"/version"), "generation 0 serves until retired")
	// Same volume, same db (reached by its alias) as generation 0.
	require.Equal(t, "2", callOK(t, http.MethodPost, ep1.URL+"/hits"))
	hits, dbHits := appState(t, ep0.URL)
	require.Equal(t, 2, hits)
	require.Equal(t, "2", dbHits)
	require.Len(t, residue(t, d, tenant), 3+2+1, "3 containers, 2 volumes, 1 network")

	// Another provisioning's retire takes nothing of run-1's.
	require.NoError(t, d.RetireService(ctx, runtimes.RetireInput{Tenant: tenant, Owner: "run-2", Service: "app", Keep: 1}))
	requireRunning(t, d, docker.ContainerName(tenant, "app"), ids["app"])

	died := dieEvents(t, d, ids["app"])
	in := runtimes.RetireInput{Tenant: tenant, Owner: "run-1", Service: "app", Keep: 1}
	require.NoError(t, d.RetireService(ctx, in))
	select {
	case code := <-died:
		require.Equal(t, "0", code, "generation 0 was killed instead of exiting on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("no die event for generation 0")
	}
	requireGone(t, d, docker.ContainerName(tenant, "app"))
	requireRunning(t, d, name1, st.ID)
	requireRunning(t, d, docker.ContainerName(tenant, "db"), ids["db"])
	requireRunning(t, d, docker.ContainerName(neighbour, "app"), nst.ID)
	require.ElementsMatch(t, []string{
		"container /" + name1, "container /" + docker.ContainerName(tenant, "db"),
		"volume " + docker.VolumeName(tenant, "data"), "volume " + docker.VolumeName(tenant, "dbdata"),
		"network " + docker.NetworkName(tenant),
	}, residue(t, d, tenant))
	// The data outlived generation 0.
	require.Equal(t, "3", callOK(t, http.MethodPost, ep1.URL+"/hits"))

	require.NoError(t, d.RetireService(ctx, in), "nothing left to retire is success")
	require.Len(t, residue(t, d, tenant), 2+2+1)
	requireRunning(t, d, name1, st.ID)
}

// A candidate that never gets healthy fails WaitHealthy within the
// release's health timeout, and retiring it (keeping generation 0) rolls
// the cut-over back.
func TestReleaseRollbackOfUnhealthyCandidate(t *testing.T) {
	d := harness.Docker(t)
	harness.DemoImage(t, d, demoimage.Tag, "v1")
	bad := harness.DemoImageUnhealthy(t, d, releaseUnhealthyTag, "v2-bad")
	ctx := context.Background()
	tenant := fmt.Sprintf("back%d", time.Now().UnixNano()%1e6)
	t.Cleanup(func() { destroy(t, d, tenant) })
	env := defaultEnv(t, tenant)
	ep0, ids := provision(t, d, env)

	cand := service(t, env, "app")
	cand.Generation, cand.Image = 1, bad
	st, err := d.StartService(ctx, tenant, "run-1", cand)
	require.NoError(t, err)

	// The template's own check would allow about a minute.
	const timeout = 3 * time.Second
	candEnv := spec.Environment{Tenant: tenant, Services: []spec.Service{cand}, HealthTimeout: spec.Duration(timeout)}
	start := time.Now()
	_, err = d.WaitHealthy(ctx, candEnv, func(string) {})
	elapsed := time.Since(start)
	appErr := harness.RequireNonRetryable(t, err, runtimes.ErrServiceUnhealthy)
	t.Logf("after %s: %v", elapsed.Round(time.Millisecond), err)
	require.Contains(t, appErr.Error(), "this image is built to fail its health check")
	require.GreaterOrEqual(t, elapsed, timeout)
	require.Less(t, elapsed, timeout+5*time.Second)

	// Only its health check fails: the candidate serves the rest.
	info, err := d.Client().ContainerInspect(ctx, docker.InstanceName(tenant, "app", 1))
	require.NoError(t, err)
	port := info.NetworkSettings.Ports["8080/tcp"]
	require.NotEmpty(t, port)
	candURL := "http://127.0.0.1:" + port[0].HostPort
	require.Equal(t, "v2-bad", callOK(t, http.MethodGet, candURL+"/version"))
	code, body := call(t, http.MethodGet, candURL+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "this image is built to fail its health check", body)

	// Keeping a generation that does not exist would leave no instance.
	err = d.RetireService(ctx, runtimes.RetireInput{Tenant: tenant, Owner: "run-1", Service: "app", Keep: 2})
	harness.RequireNonRetryable(t, err, docker.ErrNoInstanceToKeep)
	requireRunning(t, d, docker.ContainerName(tenant, "app"), ids["app"])
	requireRunning(t, d, docker.InstanceName(tenant, "app", 1), st.ID)

	in := runtimes.RetireInput{Tenant: tenant, Owner: "run-1", Service: "app", Keep: 0,
		StopTimeout: spec.Duration(2 * time.Second)}
	require.NoError(t, d.RetireService(ctx, in))
	requireGone(t, d, docker.InstanceName(tenant, "app", 1))
	requireRunning(t, d, docker.ContainerName(tenant, "app"), ids["app"])
	requireRunning(t, d, docker.ContainerName(tenant, "db"), ids["db"])
	require.Equal(t, "v1", callOK(t, http.MethodGet, ep0.URL+"/version"))
	require.Len(t, residue(t, d, tenant), 2+2+1)
	require.NoError(t, d.RetireService(ctx, in), "a retried rollback is success")
	requireRunning(t, d, docker.ContainerName(tenant, "app"), ids["app"])
}

func TestEnsureImage(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	d := harness.Docker(t)
	c := harness.RegistryClient(t, reg, "")
	ctx := context.Background()
	repo := "tenants/ensure-" + harness.RandomHex(t, 4)
	ref, id, digest := pushedImage(t, d, c, repo, "v1")
	byDigest := reg.Host + "/" + repo + "@" + digest
	t.Cleanup(func() { harness.RemoveImage(t, d, byDigest) })

	// The engine has it: no pull, so the registry being down is no matter.
	reg.Stop()
	require.NoError(t, d.EnsureImage(ctx, byDigest))
	require.NoError(t, d.EnsureImage(ctx, ref))

	harness.RemoveImage(t, d, id)
	var err error
	for _, r := range []string{id, ref, byDigest} {
		_, err = d.Client().ImageInspect(ctx, r)
		require.True(t, cerrdefs.IsNotFound(err), "image %s still on the engine: %v", r, err)
	}
	err = d.EnsureImage(ctx, byDigest)
	harness.RequireRetryable(t, err)
	t.Logf("pull while the registry is down: %v", err)

	reg.Start()
	require.NoError(t, d.EnsureImage(ctx, byDigest))
	info, err := d.Client().ImageInspect(ctx, byDigest)
	require.NoError(t, err)
	require.Equal(t, id, info.ID, "the registry served the image that was pushed")
	require.NoError(t, d.EnsureImage(ctx, byDigest), "present again")

	unknown := reg.Host + "/" + repo + "@sha256:" + strings.Repeat(harness.RandomHex(t, 4), 8)
	err = d.EnsureImage(ctx, unknown)
	appErr := harness.RequireNonRetryable(t, err, runtimes.ErrImageNotFound)
	require.Contains(t, appErr.Error(), unknown)
	t.Logf("pull of an unknown digest: %v", err)
	err = d.EnsureImage(ctx, reg.Host+"/tenants/absent-"+harness.RandomHex(t, 4)+":v1")
	harness.RequireNonRetryable(t, err, runtimes.ErrImageNotFound)
	t.Logf("pull of an unknown repository: %v", err)

	err = d.EnsureImage(ctx, "127.0.0.1:1/UPPER/case:v1")
	harness.RequireNonRetryable(t, err, runtimes.ErrInvalidImageReference)

	// A registry whose name does not resolve (RFC 6761 reserves .invalid)
	// fails at once: retrying would hold the tenant for the pull budget.
	err = d.EnsureImage(ctx, "registry.tenantflow.invalid/app@sha256:"+strings.Repeat("0", 64))
	harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnknown)
	t.Logf("pull from an unknown registry: %v", err)
}

func TestEnsureImageAuth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token bool
	}{{"htpasswd", false}, {"token", true}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := harness.StartRegistry(t, harness.RegistryOptions{User: "deployer", Password: "right-password", TokenAuth: tc.token})
			d := harness.Docker(t)
			ctx := context.Background()
			right := harness.RegistryClient(t, reg, "right-password")
			repo := "tenants/ensure-auth-" + harness.RandomHex(t, 4)
			_, id, digest := pushedImage(t, d, right, repo, "v1")
			byDigest := reg.Host + "/" + repo + "@" + digest
			t.Cleanup(func() { harness.RemoveImage(t, d, byDigest) })
			harness.RemoveImage(t, d, id)

			err := d.EnsureImage(ctx, byDigest)
			harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
			t.Logf("pull without credentials: %v", err)
			d.AddRegistryAuth(registry.AuthConfig{Username: "deployer", Password: "wrong-password", ServerAddress: "http://" + reg.Host + "/"})
			err = d.EnsureImage(ctx, byDigest)
			harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
			require.NotContains(t, err.Error(), "wrong-password")
			t.Logf("pull with a wrong password: %v", err)

			d.AddRegistryAuth(right.AuthConfig())
			require.NoError(t, d.EnsureImage(ctx, byDigest))
			info, err := d.Client().ImageInspect(ctx, byDigest)
			require.NoError(t, err)
			require.Equal(t, id, info.ID)
		})
	}
}
