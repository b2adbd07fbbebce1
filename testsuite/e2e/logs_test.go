package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// logs reads a tenant's logs over REST (query: the request's query
// string without "?").
func (p *platform) logs(name, query string) []runtimes.LogLine {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.api.URL+"/v1/tenants/"+name+"/logs?"+query, nil)
	req.Header.Set("Authorization", "Bearer distributor-"+p.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	require.Equal(p.t, http.StatusOK, resp.StatusCode)
	require.Equal(p.t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	var out []runtimes.LogLine
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var l runtimes.LogLine
		require.NoError(p.t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		out = append(out, l)
	}
	require.NoError(p.t, sc.Err())
	return out
}

// TestTenantLogsOverREST: a distributor reads a tenant's logs on the real
// engine, by service and tail, and follows them live: the app's shutdown
// line arrives while the tenant is being suspended.
func TestTenantLogsOverREST(t *testing.T) {
	p := startPlatform(t)
	name := tenantName("logs")
	t.Cleanup(func() { p.destroy(name) })
	p.requestTenant(name, "light", "prod")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)

	all := p.logs(name, "")
	services := map[string]bool{}
	for _, l := range all {
		services[l.Service] = true
	}
	require.Equal(t, map[string]bool{"app": true, "db": true}, services)
	last := p.logs(name, "service=app&tail=1")
	require.Len(t, last, 1)
	require.Equal(t, "app", last[0].Service)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.api.URL+"/v1/tenants/"+name+"/logs?service=app&follow=true&since="+time.Now().UTC().Format(time.RFC3339Nano), nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the headers come at once, before any line")

	code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/suspend", map[string]any{"reason": "follow test"})
	require.Equal(t, http.StatusAccepted, code, body)
	sc := bufio.NewScanner(resp.Body)
	require.True(t, sc.Scan(), "a line followed while the tenant was suspended: %v", sc.Err())
	require.Contains(t, sc.Text(), `\"msg\":\"stopping\"`)
}
