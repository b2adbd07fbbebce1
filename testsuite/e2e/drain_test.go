package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// placeTenants creates n light tenants pinned on host and waits until
// they are active.
func (p *platform) placeTenants(t testing.TB, prefix, host string, n int, extra map[string]any) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = tenantName(prefix)
		t.Cleanup(func() { p.destroy(names[i]) })
		body := map[string]any{"name": names[i], "template": "light", "stage": "prod", "host": host}
		for k, v := range extra {
			body[k] = v
		}
		code, out, _ := p.do(http.MethodPost, "/v1/tenants", body)
		require.Equal(t, http.StatusAccepted, code, out)
	}
	for _, n := range names {
		st := p.waitState(n, 100*time.Millisecond, 3*time.Minute)
		require.Equal(t, string(tenant.StateActive), st["state"], st)
	}
	return names
}

// waitEmptying polls GET /v1/hosts/{host}/{drain|evacuation} until done.
func (p *platform) waitEmptying(t testing.TB, host, what string, timeout time.Duration) map[string]any {
	t.Helper()
	var out map[string]any
	require.Eventually(t, func() bool {
		code, body, _ := p.do(http.MethodGet, "/v1/hosts/"+host+"/"+what, nil)
		out = body
		return code == http.StatusOK && body["phase"] != "running"
	}, timeout, 200*time.Millisecond, "the %s of %s ends", what, host)
	return out
}

// A drain cordons the host and moves each of its tenants to the other
// hosts, two at a time; each keeps its data; the host keeps nothing and
// stays draining; a second drain may follow.
func TestDrainAHost(t *testing.T) {
	p := startPlatformWith(t, &wiring.Config{}, func(c *api.Config) { c.Placement = true })
	a := startFleetHost(t, p, "host-a", "z1", "2Gi")
	startFleetHost(t, p, "host-b", "z2", "2Gi")
	startFleetHost(t, p, "host-c", "z3", "2Gi")
	names := p.placeTenants(t, "dr", "host-a", 3, nil)
	for _, n := range names {
		hit(t, p.waitState(n, 100*time.Millisecond, time.Minute)["url"].(string), 3)
	}

	code, body, _ := p.do(http.MethodPost, "/v1/hosts/host-a/drain", map[string]any{"maxParallel": 11})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "maxParallel", body["field"])
	code, body, _ = p.do(http.MethodPost, "/v1/hosts/host-a/drain", map[string]any{"maxParallel": 2, "reason": "kernel update"})
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		_, body, _ := p.do(http.MethodGet, "/v1/hosts/host-a", nil)
		return body["state"] == "draining"
	}, 10*time.Second, 50*time.Millisecond, "cordoned first: nothing new lands there")

	d := p.waitEmptying(t, "host-a", "drain", 3*time.Minute)
	require.Equal(t, "done", d["phase"], d)
	require.Equal(t, 3.0, d["counts"].(map[string]any)["moved"], d)
	for _, e := range d["tenants"].([]any) {
		m := e.(map[string]any)
		require.Contains(t, []any{"host-b", "host-c"}, m["to"], m)
		require.NotNil(t, m["interruptionMs"], m)
	}
	for _, n := range names {
		st := p.waitState(n, 100*time.Millisecond, time.Minute)
		require.Equal(t, string(tenant.StateActive), st["state"], st)
		require.NotEqual(t, "host-a", st["placement"].(map[string]any)["host"])
		hits, _ := appState(t, st["url"].(string))
		require.Equal(t, 3.0, hits, "its data came along")
		require.Empty(t, containersOf(t, a.driver, n))
	}
	code, body, _ = p.do(http.MethodGet, "/v1/hosts/host-a", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "draining", body["state"], "it stays draining until ops uncordon it")
	require.Empty(t, body["tenants"])
	p.checkHistory(hosts.DrainWorkflowID("host-a"), "host-drained")
}
