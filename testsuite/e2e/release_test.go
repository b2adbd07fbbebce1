package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/registry"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/dockerbuild"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// releaseBench is a platform with a proxy, a registry and tenants under
// load, for release tests.
type releaseBench struct {
	t   testing.TB
	p   *platform
	srv *servers
	reg *harness.Registry
}

func startReleaseBench(t testing.TB) *releaseBench {
	harness.RequireAcceptQueueMigration(t)
	srv, cfg := startServers(t)
	p := startPlatformWith(t, cfg)
	return &releaseBench{t: t, p: p, srv: srv, reg: harness.StartRegistry(t, harness.RegistryOptions{})}
}

// pushDemo builds the demo app at version (deliberately unhealthy if asked),
// pushes it to the registry and returns its reference pinned by digest, as
// an image build leaves it.
func (b *releaseBench) pushDemo(version string, unhealthy bool) string {
	b.t.Helper()
	return b.pushDemoWith(version, demoimage.Options{Unhealthy: unhealthy})
}

// pushDemoWith is pushDemo for a candidate made bad as opts say; give
// each a version of its own.
func (b *releaseBench) pushDemoWith(version string, opts demoimage.Options) string {
	b.t.Helper()
	d := b.p.driver
	tag := "tenantflow/demo-app:release-" + version
	harness.DemoImageWith(b.t, d, tag, version, opts)
	ref := b.reg.Host + "/tenantflow/demo-app:" + version
	ctx := context.Background()
	builder := dockerbuild.New(d.Client(), harness.Logger(b.t))
	require.NoError(b.t, builder.TagImage(ctx, tag, ref))
	digest, err := builder.PushImage(ctx, ref, registry.AuthConfig{}, nil)
	require.NoError(b.t, err)
	return b.reg.Host + "/tenantflow/demo-app@" + digest
}

// provision creates the tenants (in parallel, as a portal would) and waits
// until all are active.
func (b *releaseBench) provision(stage string, names ...string) {
	b.t.Helper()
	for _, n := range names {
		b.t.Cleanup(func() { b.p.destroy(n) })
		b.p.requestTenant(n, "light", stage)
	}
	for _, n := range names {
		st := b.p.waitState(n, 100*time.Millisecond, 3*time.Minute)
		require.Equal(b.t, string(tenant.StateActive), st["state"], st)
	}
}

func (b *releaseBench) host(tenant string) string { return tenant + "." + testDomain }

// load starts users on every tenant's URL through the proxy, asking the
// app's version: two per tenant, a request every pause each.
func (b *releaseBench) load(tenants []string, pause time.Duration, versions ...string) *harness.Load {
	hosts := make([]string, len(tenants))
	for i, n := range tenants {
		hosts[i] = b.host(n)
	}
	return harness.StartLoad(b.srv.caddy.HTTPAddr, hosts, "/version", 2, pause, func(_, body string) bool {
		return slices.Contains(versions, body)
	})
}

func (b *releaseBench) startRelease(body map[string]any) string {
	b.t.Helper()
	code, out, _ := b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases", body)
	require.Equal(b.t, http.StatusAccepted, code, out)
	return out["id"].(string)
}

// waitRelease polls GET /v1/releases/{id} until its state is one of states.
func (b *releaseBench) waitRelease(id string, timeout time.Duration, states ...release.State) release.Release {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last release.Release
	for time.Now().Before(deadline) {
		if code, st := b.release(id); code == http.StatusOK {
			last = st
			if slices.Contains(states, st.State) {
				return st
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("release %s never reached %v; last %+v", id, states, last)
	return last
}

func (b *releaseBench) release(id string) (int, release.Release) {
	code, out, _ := b.p.do(http.MethodGet, "/v1/releases/"+id, nil)
	var st release.Release
	raw, _ := json.Marshal(out)
	_ = json.Unmarshal(raw, &st)
	return code, st
}

// version asks the tenant's app through the proxy.
func (b *releaseBench) version(tenant string) string { return b.homePage(tenant).Version }

// title is the title the tenant's app shows on its home page (its TITLE
// setting).
func (b *releaseBench) title(tenant string) string { return b.homePage(tenant).Title }

// homePage is what the tenant's app answers on its home page, through
// the proxy.
func (b *releaseBench) homePage(tenant string) (app struct{ Version, Title string }) {
	b.t.Helper()
	code, page, err := b.srv.caddy.ProxyGet(b.host(tenant))
	require.NoError(b.t, err)
	require.Equal(b.t, http.StatusOK, code, page)
	require.NoError(b.t, json.Unmarshal([]byte(page), &app))
	return app
}

// appContainers lists the tenant's app instances (name → image).
func (b *releaseBench) appContainers(tenant string) map[string]string {
	b.t.Helper()
	f := filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+tenant), filters.Arg("label", docker.LabelService+"=app"))
	cs, err := b.p.driver.Client().ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	require.NoError(b.t, err)
	out := map[string]string{}
	for _, c := range cs {
		out[strings.TrimPrefix(c.Names[0], "/")] = c.Image
	}
	return out
}

// promoteWithCLI runs `temporal workflow signal --name promote`, as a
// developer does from a terminal, with extra flags (--input …).
func (b *releaseBench) promoteWithCLI(id string, flags ...string) {
	b.t.Helper()
	args := append([]string{"workflow", "signal", "--address", b.p.temporal.Config.Address, "--namespace", b.p.temporal.Config.Namespace,
		"--workflow-id", release.WorkflowID(id), "--name", release.SignalPromote}, flags...)
	out, err := exec.Command(harness.TemporalCLI(b.t), args...).CombinedOutput()
	require.NoError(b.t, err, string(out))
}

func statuses(st release.Release) map[string]release.TenantStatus {
	out := map[string]release.TenantStatus{}
	for _, t := range st.Tenants {
		out[t.Name] = t.Status
	}
	return out
}

func requireNoFailedRequest(t testing.TB, rep harness.LoadReport) {
	t.Helper()
	t.Logf("load: %d requests, %d failed, %d TCP handshakes reset by a proxy reload and re-dialled; answers %v",
		rep.Requests, len(rep.Failures), rep.DialResets, rep.Answers)
	if len(rep.Failures) > 0 {
		t.Fatalf("%d of %d requests failed during the release; first: %s", len(rep.Failures), rep.Requests, rep.Failures[0])
	}
}

// TestReleaseUnderLoadDropsNoRequest is the whole developer flow on the
// real engine and a real Caddy: release → staging → promote (REST) →
// canary → batches, while users hit every tenant, and not one request
// fails.
func TestReleaseUnderLoadDropsNoRequest(t *testing.T) {
	b := startReleaseBench(t)
	image := b.pushDemo("v2", false)
	staging := []string{tenantName("rs"), tenantName("rs")}
	prod := []string{tenantName("rp"), tenantName("rp"), tenantName("rp")}
	b.provision("staging", staging...)
	b.provision("prod", prod...)
	all := append(append([]string(nil), staging...), prod...)
	for _, n := range all {
		require.Equal(t, "v1", b.version(n))
	}

	load := b.load(all, 2*time.Millisecond, "v1", "v2")
	id := b.startRelease(map[string]any{"image": image, "tenants": map[string]any{"all": true},
		"canary": 1, "batchSize": 2, "maxParallel": 2, "drain": "500ms", "failureThreshold": 0})

	st := b.waitRelease(id, 3*time.Minute, release.StateAwaitingPromotion, release.StatePaused)
	require.Equal(t, release.StateAwaitingPromotion, st.State, st)
	for _, n := range staging {
		require.Equal(t, "v2", b.version(n), "staging runs the release")
	}
	for _, n := range prod {
		require.Equal(t, "v1", b.version(n), "prod waits for the promotion")
	}
	// Promotion is the developer's: ops may not.
	code, out, _ := b.p.do(http.MethodPost, "/v1/releases/"+id+"/promote", nil)
	require.Equal(t, http.StatusForbidden, code, out)
	code, out, _ = b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", map[string]any{"reason": "staging looks good"})
	require.Equal(t, http.StatusOK, code, out)
	require.NotNil(t, out["promotion"], out)

	st = b.waitRelease(id, 3*time.Minute, release.StateCompleted, release.StatePaused, release.StateAborted)
	time.Sleep(300 * time.Millisecond) // users keep going a moment on the new version
	requireNoFailedRequest(t, load.Stop())
	require.Equal(t, release.StateCompleted, st.State, st)
	require.Zero(t, st.Failures)

	waves := map[string]int{}
	for _, tr := range st.Tenants {
		require.Equal(t, release.TenantUpdated, tr.Status, tr)
		require.Positive(t, tr.CutoverMillis)
		waves[tr.Name] = tr.Wave
	}
	require.Equal(t, waves[staging[0]], waves[staging[1]], "staging is one batch")
	prodWaves := []int{waves[prod[0]], waves[prod[1]], waves[prod[2]]}
	sort.Ints(prodWaves)
	require.Equal(t, prodWaves[0]+1, prodWaves[1], "the canary wave comes first, alone")
	require.Equal(t, prodWaves[1], prodWaves[2])

	for _, n := range all {
		require.Equal(t, "v2", b.version(n), n)
		code, ten, _ := b.p.do(http.MethodGet, "/v1/tenants/"+n+"?fresh=true", nil)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, image, ten["image"])
		require.Equal(t, id, ten["release"])
		require.Equal(t, "tenantflow/demo-app:dev", ten["previousImage"])
		require.Equal(t, map[string]string{docker.InstanceName(n, "app", 1): image}, b.appContainers(n), "the old instance is gone")
	}
	// Data survived: the app's counter lives in the tenant's db and volume.
	b.p.checkHistory(release.WorkflowID(id), "release-completed")
	b.p.checkHistory(tenant.WorkflowID(prod[0]), "tenant-released")
}

// TestUnhealthyReleaseRollsBackAndPauses: an image that never becomes
// healthy is removed again, the tenant keeps serving the old one without a
// failed request, the failure pauses the release, promotion is refused
// (REST and CLI), and ops abort.
func TestUnhealthyReleaseRollsBackAndPauses(t *testing.T) {
	b := startReleaseBench(t)
	image := b.pushDemo("broken", true)
	staging := tenantName("bs")
	prod := tenantName("bp")
	b.provision("staging", staging)
	b.provision("prod", prod)

	load := b.load([]string{staging}, 2*time.Millisecond, "v1")
	id := b.startRelease(map[string]any{"image": image, "tenants": map[string]any{"all": true},
		"healthTimeout": "3s", "failureThreshold": 0})
	st := b.waitRelease(id, 2*time.Minute, release.StatePaused)
	requireNoFailedRequest(t, load.Stop())
	require.Equal(t, release.TenantRolledBack, statuses(st)[staging], st)
	require.Contains(t, st.PauseReason, "over the threshold")
	require.Contains(t, st.Tenants[0].Error, "health check")
	require.True(t, st.StagingFailed)

	require.Equal(t, "v1", b.version(staging))
	require.Equal(t, map[string]string{docker.ContainerName(staging, "app"): "tenantflow/demo-app:dev"}, b.appContainers(staging), "the candidate is gone")
	code, ten, _ := b.p.do(http.MethodGet, "/v1/tenants/"+staging, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, string(tenant.StateActive), ten["state"])
	require.Equal(t, "tenantflow/demo-app:dev", ten["image"])
	require.Contains(t, ten["error"], "rolled back")

	// Promotion is refused with the reason, over REST…
	code, out, _ := b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", nil)
	require.Equal(t, http.StatusConflict, code, out)
	require.Contains(t, out["error"], "staging failed")
	// …and from the CLI, where the refusal shows in the release's state.
	b.promoteWithCLI(id, "--input", `{"by":"dev-cli"}`)
	require.Eventually(t, func() bool { _, st := b.release(id); return strings.Contains(st.PromoteRejected, "staging failed") },
		10*time.Second, 100*time.Millisecond)

	// Ops abort; prod was never touched.
	code, out, _ = b.p.do(http.MethodPost, "/v1/releases/"+id+"/abort", map[string]any{"reason": "image fails its health check"})
	require.Equal(t, http.StatusOK, code, out)
	st = b.waitRelease(id, time.Minute, release.StateAborted)
	_, listed := statuses(st)[prod]
	require.False(t, listed, "prod tenants are listed only once the release is promoted")
	require.Equal(t, "v1", b.version(prod))
	b.p.checkHistory(release.WorkflowID(id), "release-aborted")
}

// TestPromoteFromTheCLI: `temporal workflow signal --name promote` is how a
// developer promotes from a terminal.
func TestPromoteFromTheCLI(t *testing.T) {
	b := startReleaseBench(t)
	image := b.pushDemo("v3", false)
	prod := tenantName("cp")
	b.provision("prod", prod)
	id := b.startRelease(map[string]any{"image": image, "tenants": map[string]any{"names": []string{prod}}, "drain": "0s"})
	b.waitRelease(id, time.Minute, release.StateAwaitingPromotion)
	b.promoteWithCLI(id)
	st := b.waitRelease(id, 2*time.Minute, release.StateCompleted, release.StatePaused)
	require.Equal(t, release.StateCompleted, st.State, st)
	require.Equal(t, "signal", st.Promotion.By)
	require.Equal(t, "v3", b.version(prod))
}

// TestUnpullableReleaseNeverHoldsTheTenant, as a new user tried it: a
// release of an image whose registry name does not resolve rolls the
// tenant back at once; one whose registry does not answer (retried within
// the pull budget) is stopped by an abort, and the tenant is active again
// right away, serving its old image.
func TestUnpullableReleaseNeverHoldsTheTenant(t *testing.T) {
	b := startReleaseBench(t)
	prod := tenantName("up")
	b.provision("prod", prod)
	digest := "@sha256:" + strings.Repeat("0", 64)

	id := b.startRelease(map[string]any{"image": "registry.tenantflow.invalid/app" + digest, "tenants": map[string]any{"names": []string{prod}}})
	b.waitRelease(id, time.Minute, release.StateAwaitingPromotion)
	code, out, _ := b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", nil)
	require.Equal(t, http.StatusOK, code, out)
	st := b.waitRelease(id, time.Minute, release.StatePaused, release.StateCompleted)
	require.Equal(t, release.TenantRolledBack, statuses(st)[prod], st)
	require.Contains(t, st.Tenants[0].Error, "RegistryUnknown")

	down := harness.Addr(harness.FreePort(t)) // nothing listens there
	id = b.startRelease(map[string]any{"image": down + "/app" + digest, "tenants": map[string]any{"names": []string{prod}}})
	b.waitRelease(id, time.Minute, release.StateAwaitingPromotion)
	code, out, _ = b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", nil)
	require.Equal(t, http.StatusOK, code, out)
	b.p.waitFor(prod, 50*time.Millisecond, time.Minute, "pulling", func(st map[string]any) bool {
		return st["state"] == string(tenant.StateUpdating) && st["progress"].(map[string]any)["step"] == tenant.StepEnsureImage
	})
	code, out, _ = b.p.do(http.MethodPost, "/v1/releases/"+id+"/abort", map[string]any{"reason": "the registry is down"})
	require.Equal(t, http.StatusOK, code, out)
	st = b.waitRelease(id, time.Minute, release.StateAborted)
	require.Equal(t, release.TenantRolledBack, statuses(st)[prod], st)
	require.Contains(t, st.Tenants[0].Error, "aborted")
	ten := b.p.waitFor(prod, 50*time.Millisecond, 30*time.Second, "active", func(st map[string]any) bool { return st["state"] == string(tenant.StateActive) })
	require.Equal(t, "tenantflow/demo-app:dev", ten["image"])
	require.Equal(t, "v1", b.version(prod))
	require.Equal(t, map[string]string{docker.ContainerName(prod, "app"): "tenantflow/demo-app:dev"}, b.appContainers(prod))
}
