package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// fleetHost is one Docker host of a test fleet: its own engine, in a
// network namespace of its own, and its own worker polling its queue.
type fleetHost struct {
	name   string
	engine *harness.Dockerd
	driver *docker.Driver
	p      *platform
	cfg    wiring.Config
	deps   wiring.Deps
	worker worker.Worker
}

// kill stops the host's worker and its engine, as a host that dies.
func (h *fleetHost) kill(t testing.TB) {
	t.Helper()
	h.worker.Stop()
	h.worker = nil
	h.engine.Stop()
}

// revive starts the engine again (its containers restart as their
// restart policy says) and a new worker.
func (h *fleetHost) revive(t testing.TB) {
	t.Helper()
	h.engine.Start()
	h.worker = wiring.NewHostWorker(h.p.temporal.Client, h.name, h.cfg, h.deps)
	require.NoError(t, h.worker.Start())
}

// fleetSyncToken is the token the test fleet's hosts share.
const fleetSyncToken = "test-fleet-sync-token"

// startFleetHost starts an engine with the demo image and the host's
// worker, and registers the host through the API.
func startFleetHost(t testing.TB, p *platform, name, zone, memory string) *fleetHost {
	return startFleetHostWith(t, p, wiring.Config{}, name, zone, memory)
}

// startFleetHostWith is startFleetHost with the host worker's settings.
func startFleetHostWith(t testing.TB, p *platform, cfg wiring.Config, name, zone, memory string) *fleetHost {
	t.Helper()
	e := harness.StartDockerd(t, harness.DockerdOptions{Name: name, Netns: true})
	e.LoadImage(t, demoimage.Tag)
	d, err := docker.New(context.Background(), docker.Config{Host: e.Host, PublishIP: e.Addr}, harness.Logger(t))
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	cfg.Host, cfg.StopTimeout = name, 5*time.Second
	cfg.HostSync.Token = fleetSyncToken
	deps, err := wiring.NewIntegrations(cfg, harness.Logger(t))
	require.NoError(t, err)
	require.NoError(t, deps.UseDocker(d))
	h := &fleetHost{name: name, engine: e, driver: d, p: p, cfg: cfg, deps: deps}
	h.worker = wiring.NewHostWorker(p.temporal.Client, name, cfg, deps)
	require.NoError(t, h.worker.Start())
	t.Cleanup(func() {
		if h.worker != nil {
			h.worker.Stop()
		}
	})
	// The host's worker serves volume copies into its tenants (moves).
	sync := httptest.NewServer(deps.SyncHandler())
	t.Cleanup(sync.Close)
	code, body, _ := p.do(http.MethodPost, "/v1/hosts", map[string]any{"name": name, "docker": e.Host, "address": e.Addr, "sync": sync.URL,
		"capacity": map[string]any{"cpus": 16, "memory": memory}, "labels": map[string]any{"zone": zone}})
	require.Equal(t, http.StatusOK, code, body)
	return h
}

// containersOf lists the tenant's containers on an engine.
func containersOf(t testing.TB, d *docker.Driver, name string) []string {
	t.Helper()
	cs, err := d.Client().ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+name))})
	require.NoError(t, err)
	var out []string
	for _, c := range cs {
		out = append(out, c.Names[0])
	}
	return out
}

// Tenants are placed across two Docker hosts (zones spread), run on their
// host's own engine, and serve at its address; a pinned tenant that does
// not fit is refused before anything starts.
func TestTenantsArePlacedAcrossDockerHosts(t *testing.T) {
	p := startPlatformWith(t, &wiring.Config{}, func(c *api.Config) { c.Placement = true })
	a := startFleetHost(t, p, "host-a", "z1", "256Mi")
	b := startFleetHost(t, p, "host-b", "z2", "512Mi")
	byName := map[string]*fleetHost{a.name: a, b.name: b}

	names := []string{tenantName("fa"), tenantName("fb")}
	for _, n := range names {
		t.Cleanup(func() { p.destroy(n) })
		p.requestTenant(n, "light", "prod")
	}
	placed := map[string]string{}
	for _, n := range names {
		st := p.waitState(n, 100*time.Millisecond, 3*time.Minute)
		require.Equal(t, string(tenant.StateActive), st["state"], st)
		pl := st["placement"].(map[string]any)
		host := byName[pl["host"].(string)]
		require.NotNil(t, host, pl)
		placed[n] = host.name
		require.Len(t, containersOf(t, host.driver, n), 2, "the tenant runs on its host's engine")
		require.Empty(t, containersOf(t, p.driver, n), "and not on the machine's")
		lines := p.logs(n, "")
		require.NotEmpty(t, lines, "its logs are read on its host's engine")
		require.Contains(t, lines[0].Line, `"msg":"listening"`)
		resp, err := http.Get(st["url"].(string) + "/healthz")
		require.NoError(t, err, "served at the host's address: %s", st["url"])
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.NotEqual(t, placed[names[0]], placed[names[1]], "one per zone")
	p.checkHistory(tenant.WorkflowID(names[0]), "tenant-placed-on-host")

	// host-a (256Mi) holds one light tenant (128Mi) at most beside the
	// one it may have: pinning two more there overflows it.
	var refused map[string]any
	for i := range 2 {
		n := tenantName("fp")
		code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": n, "template": "light", "stage": "prod", "host": "host-a"})
		if code == http.StatusConflict {
			refused = body
			_, _, _ = p.do(http.MethodGet, "/v1/tenants/"+n, nil)
			break
		}
		require.Equal(t, http.StatusAccepted, code, "pin %d: %v", i, body)
		t.Cleanup(func() { p.destroy(n) })
		st := p.waitState(n, 100*time.Millisecond, 3*time.Minute)
		require.Equal(t, string(tenant.StateActive), st["state"], st)
		require.Equal(t, "host-a", st["placement"].(map[string]any)["host"])
	}
	require.NotNil(t, refused, "host-a must run out of room")
	require.Equal(t, "host", refused["field"], refused)
	require.Contains(t, refused["error"], "host host-a cannot take")

	code, body, _ := p.do(http.MethodGet, "/v1/hosts/host-b", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, true, body["worker"].(map[string]any)["polling"])

	// A plan change on a host: host-b has room for the larger plan, so the
	// reservation grows and the containers on its engine get the limits;
	// host-a is full, so a growth there fails before anything changed.
	onA, onB := names[0], names[1]
	if placed[onA] != "host-a" {
		onA, onB = onB, onA
	}
	changePlan := func(n, plan string) map[string]any {
		code, body, _ := p.do(http.MethodPatch, "/v1/tenants/"+n, map[string]any{"plan": plan})
		require.Equal(t, http.StatusAccepted, code, body)
		return p.waitFor(n, 100*time.Millisecond, 2*time.Minute, "the plan change ended", func(st map[string]any) bool {
			pc, _ := st["planChange"].(map[string]any)
			return pc != nil && (pc["phase"] == string(tenant.PlanDone) || pc["phase"] == string(tenant.PlanFailed))
		})
	}
	st := changePlan(onB, "large")
	require.Equal(t, string(tenant.PlanDone), st["planChange"].(map[string]any)["phase"], st)
	code, body, _ = p.do(http.MethodGet, "/v1/hosts/host-b", nil)
	require.Equal(t, http.StatusOK, code, body)
	need := body["reservations"].(map[string]any)[onB].(map[string]any)["need"].(map[string]any)
	require.Equal(t, float64(512<<20), need["memoryBytes"], "light's large plan: 256Mi for each service")
	for _, c := range containersOf(t, byName["host-b"].driver, onB) {
		got, err := byName["host-b"].driver.Client().ContainerInspect(context.Background(), c)
		require.NoError(t, err, c)
		require.Equal(t, int64(256<<20), got.HostConfig.Memory, c)
	}
	st = changePlan(onA, "medium")
	require.Equal(t, string(tenant.PlanFailed), st["planChange"].(map[string]any)["phase"], st)
	require.Contains(t, st["planChange"].(map[string]any)["error"], "move the tenant first")
	require.Equal(t, "small", st["plan"])
	require.Equal(t, string(tenant.StateActive), st["state"])
}
