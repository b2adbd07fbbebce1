package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A tenant moves from one Docker host to another with its files and
// database rows, copied directly between the hosts' workers; the source
// keeps nothing, the target serves, and the interruption is only the
// final sync and the switch.
func TestMoveATenantBetweenHosts(t *testing.T) {
	p := startPlatformWith(t, &wiring.Config{}, func(c *api.Config) { c.Placement = true })
	a := startFleetHost(t, p, "host-a", "z1", "1Gi")
	b := startFleetHost(t, p, "host-b", "z2", "1Gi")

	name := tenantName("mv")
	t.Cleanup(func() { p.destroy(name) })
	code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod", "host": "host-a"})
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitState(name, 100*time.Millisecond, 3*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	hit(t, st["url"].(string), 5)

	// Bad moves are refused, naming the field; nothing starts.
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/move", map[string]any{"to": "host-z"})
	require.Equal(t, http.StatusNotFound, code, body)
	require.Equal(t, "to", body["field"])
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/move", map[string]any{"to": "host-a"})
	require.Equal(t, http.StatusConflict, code, body)

	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/move", map[string]any{"to": "host-b"})
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, "host-a", body["from"])
	st = p.waitFor(name, 200*time.Millisecond, 3*time.Minute, "the move's end", func(st map[string]any) bool {
		m, _ := st["move"].(map[string]any)
		return m != nil && m["finishedAt"] != nil
	})
	m := st["move"].(map[string]any)
	require.Equal(t, "done", m["phase"], m)
	require.Equal(t, true, m["direct"], m)
	require.Len(t, m["copies"], 2, "a live pre-copy and a final pass")
	require.Equal(t, "host-b", st["placement"].(map[string]any)["host"])
	require.Len(t, containersOf(t, b.driver, name), 2, "the tenant runs on host-b")
	require.Empty(t, containersOf(t, a.driver, name), "host-a keeps no container of it")
	hits, _ := appState(t, st["url"].(string))
	require.Equal(t, 5.0, hits, "its data came along")
	stopped, err := time.Parse(time.RFC3339Nano, m["stoppedAt"].(string))
	require.NoError(t, err)
	serving, err := time.Parse(time.RFC3339Nano, m["servingAt"].(string))
	require.NoError(t, err)
	t.Logf("move interruption (source stopped to route switched): %s", serving.Sub(stopped))

	code, body, _ = p.do(http.MethodGet, "/v1/hosts/host-a", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Empty(t, body["tenants"], "host-a's room is free again")
	p.checkHistory(tenant.WorkflowID(name), "tenant-moved-directly")
}
