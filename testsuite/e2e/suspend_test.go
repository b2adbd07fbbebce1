package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A suspended tenant's URL answers the maintenance page through the real
// Caddy, its containers are stopped but kept with their data, its
// directory accounts no longer bind, its probes are gone from Prometheus;
// resumed, it serves the same data again on the same URL, its accounts
// bind and its probes are back.
func TestSuspendAndResumeWithTheRealServers(t *testing.T) {
	srv, cfg := startServers(t)
	p := startPlatformWith(t, cfg)
	name, host, bind := servingTenant(t, srv, p, "susp", 2)
	sdFile := filepath.Join(srv.prom.SDDir, "tenantflow-"+name+".json")
	require.FileExists(t, sdFile)

	// Bad input: 400 naming the field, nothing starts.
	code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/suspend", map[string]any{})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "reason", body["field"])

	start := time.Now()
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/suspend", map[string]any{"reason": "invoice 42 unpaid", "message": "Back once the invoice is settled."})
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitFor(name, 50*time.Millisecond, time.Minute, "suspended", func(st map[string]any) bool {
		return st["state"] == string(tenant.StateSuspended)
	})
	suspendTook := time.Since(start)
	susp := st["suspension"].(map[string]any)
	require.Equal(t, string(tenant.SuspendDone), susp["phase"])
	require.Equal(t, "invoice 42 unpaid", susp["reason"])

	code, page := proxyDo(t, srv.caddy.HTTPAddr, http.MethodGet, host, "/")
	require.Equal(t, http.StatusServiceUnavailable, code, page)
	require.Contains(t, page, "Back once the invoice is settled.")
	require.NotContains(t, page, "invoice 42", "the reason is not shown to the tenant's users")
	code, route := srv.caddy.Admin(t, http.MethodGet, "/id/"+proxy.RouteIDPrefix+name, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(route), `"`+proxy.OwnerVar+`":"`+st["provisionId"].(string)+`"`, "the route keeps its owner")
	for _, svc := range []string{"app", "db"} {
		info, err := p.driver.Client().ContainerInspect(context.Background(), docker.ContainerName(name, svc))
		require.NoError(t, err, "the container is kept")
		require.False(t, info.State.Running, svc)
	}
	require.Error(t, bind(), "a suspended tenant's accounts do not bind")
	_, err := os.Stat(sdFile)
	require.True(t, os.IsNotExist(err), "its probes are paused")

	// A second suspend is refused (409), and a release would skip it.
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/suspend", map[string]any{"reason": "again"})
	require.Equal(t, http.StatusConflict, code, body)

	start = time.Now()
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/resume", map[string]any{"reason": "paid"})
	require.Equal(t, http.StatusAccepted, code, body)
	st = p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "active again", func(st map[string]any) bool {
		return st["state"] == string(tenant.StateActive)
	})
	resumeTook := time.Since(start)
	require.Equal(t, string(tenant.ResumeDone), st["suspension"].(map[string]any)["phase"])
	hits, page := appStateVia(t, srv.caddy.HTTPAddr, host)
	require.EqualValues(t, 2, hits, "the same data: %s", page)
	require.Contains(t, page, name)
	require.NoError(t, bind(), "the accounts bind again")
	require.FileExists(t, sdFile, "its probes are back")
	t.Logf("suspended in %s, resumed in %s (REST request to the state seen)", suspendTook.Round(time.Millisecond), resumeTook.Round(time.Millisecond))

	p.checkHistory(tenant.WorkflowID(name), "tenant-suspended-resumed")
}

// BenchmarkSuspendResume suspends and resumes one tenant of the light
// template with every integration on (the real Caddy, BIND, slapd,
// Prometheus), b.N times, and reports the times from the REST request
// until its URL answers the maintenance page (suspend) and its app again
// (resume), and until the tenant's state says so, as p50 over the runs.
func BenchmarkSuspendResume(b *testing.B) {
	srv, cfg := startServers(b)
	p := startPlatformWith(b, cfg)
	name := tenantName("bsusp")
	b.Cleanup(func() { p.destroy(name) })
	host := name + "." + testDomain
	p.requestTenant(name, "light", "prod")
	if st := p.waitState(name, 50*time.Millisecond, 2*time.Minute); st["state"] != string(tenant.StateActive) {
		b.Fatalf("not active: %v", st)
	}
	untilURL := func(want int) time.Duration {
		start := time.Now()
		for time.Since(start) < time.Minute {
			if code, _ := proxyDo(b, srv.caddy.HTTPAddr, http.MethodGet, host, "/"); code == want {
				return time.Since(start)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.Fatalf("%s never answered %d", host, want)
		return 0
	}
	untilState := func(start time.Time, state tenant.State) time.Duration {
		p.waitFor(name, 20*time.Millisecond, 2*time.Minute, string(state), func(st map[string]any) bool { return st["state"] == string(state) })
		return time.Since(start)
	}
	var pageUp, suspended, appBack, resumed []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/suspend", map[string]any{"reason": "bench"}); code != http.StatusAccepted {
			b.Fatalf("suspend: %d %v", code, body)
		}
		pageUp = append(pageUp, untilURL(http.StatusServiceUnavailable))
		suspended = append(suspended, untilState(start, tenant.StateSuspended))
		start = time.Now()
		if code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/resume", nil); code != http.StatusAccepted {
			b.Fatalf("resume: %d %v", code, body)
		}
		appBack = append(appBack, untilURL(http.StatusOK))
		resumed = append(resumed, untilState(start, tenant.StateActive))
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(pageUp, 0.5)), "page-up-p50-ms")
	b.ReportMetric(ms(percentile(suspended, 0.5)), "suspended-p50-ms")
	b.ReportMetric(ms(percentile(appBack, 0.5)), "app-back-p50-ms")
	b.ReportMetric(ms(percentile(resumed, 0.5)), "resumed-p50-ms")
	b.Logf("%d suspend/resume cycles: maintenance page after p50 %s (max %s), suspended p50 %s; app back after p50 %s (max %s), active p50 %s",
		b.N, percentile(pageUp, 0.5), percentile(pageUp, 1), percentile(suspended, 0.5), percentile(appBack, 0.5), percentile(appBack, 1), percentile(resumed, 0.5))
}

// TestDecommissionASuspendedTenant, with the real servers: a customer
// suspended for an unpaid invoice never pays. Its decommission starts the
// database alone for its dump (the URL keeps answering nothing of the
// tenant), the verified backup holds every hit, and a restore during
// retention brings it back active with its data.
func TestDecommissionASuspendedTenant(t *testing.T) {
	srv, cfg := startServers(t)
	cfg.Backup = backup.Config{Dir: t.TempDir(), Retention: time.Hour}
	p := startPlatformWith(t, cfg)
	name, host, _ := servingTenant(t, srv, p, "sdec", 4)

	code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/suspend", map[string]any{"reason": "invoice 42 unpaid"})
	require.Equal(t, http.StatusAccepted, code, body)
	p.waitFor(name, 50*time.Millisecond, time.Minute, "suspended", func(st map[string]any) bool {
		return st["state"] == string(tenant.StateSuspended)
	})
	code, body, _ = p.do(http.MethodDelete, "/v1/tenants/"+name, map[string]any{"reason": "never paid", "force": true})
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "decommissioned", phaseIs(tenant.PhaseRetained, tenant.PhaseFailed))
	require.Equal(t, string(tenant.StateDecommissioned), st["state"], st)
	d := decommissionOf(st)
	require.Equal(t, true, d["suspended"])
	require.Equal(t, string(tenant.SuspendEnded), st["suspension"].(map[string]any)["phase"])
	bk := d["backup"].(map[string]any)
	m := checkBackupOnDisk(t, bk["location"].(string), bk["manifestSha256"].(string))
	require.Len(t, m.Dumps, 1, "the database was started for its dump")
	dump, err := os.ReadFile(filepath.Join(bk["location"].(string), m.Dumps[0].File))
	require.NoError(t, err)
	require.JSONEq(t, `{"hits":"4"}`, string(dump))
	code, _ = srv.caddy.Admin(t, http.MethodGet, "/id/"+proxy.RouteIDPrefix+name, nil)
	require.Equal(t, http.StatusNotFound, code, "the maintenance page went with the route")

	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "restored", phaseIs(tenant.PhaseRestored, tenant.PhaseRetained))
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	hits, page := appStateVia(t, srv.caddy.HTTPAddr, host)
	require.EqualValues(t, 4, hits, page)
	p.checkHistory(tenant.WorkflowID(name), "tenant-suspended-decommissioned")
}
