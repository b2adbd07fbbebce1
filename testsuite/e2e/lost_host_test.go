package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// lostAfter is the test fleet's threshold for a lost host.
const lostAfter = 3 * time.Second

// fleetWithOffsite is a platform with placement, the host watch on a
// short threshold, and restic backups copied off-site, which every host's
// worker reads (the keys are shared).
func fleetWithOffsite(t *testing.T, names ...string) (*platform, []*fleetHost) {
	t.Helper()
	rcfg := offsiteRestic(t)
	p := startPlatformWith(t, &wiring.Config{Restic: rcfg}, func(c *api.Config) { c.Placement, c.HostLostAfter = true, lostAfter })
	var hs []*fleetHost
	for i, n := range names {
		cfg := wiring.Config{Restic: resticOnHost(rcfg, n), FenceEvery: 500 * time.Millisecond}
		hs = append(hs, startFleetHostWith(t, p, cfg, n, []string{"z1", "z2", "z3"}[i%3], "2Gi"))
	}
	return p, hs
}

// offsiteRestic is restic with its off-site copy on a real rclone server;
// every host's worker holds the same keys.
func offsiteRestic(t testing.TB) restic.Config {
	t.Helper()
	harness.RequireBinary(t, "restic", "restic")
	off := harness.StartOffsite(t)
	dir := t.TempDir()
	return restic.Config{Repos: filepath.Join(dir, "repos"), Keys: filepath.Join(dir, "keys"), Binary: "restic",
		OffsiteURL: off.URL, OffsiteUser: off.User, OffsitePassword: off.Password}
}

// resticOnHost is cfg for host's worker: local repositories of its own;
// the off-site copy and the keys are what the hosts share.
func resticOnHost(cfg restic.Config, host string) restic.Config {
	cfg.Repos = filepath.Join(filepath.Dir(cfg.Repos), host, "repos")
	return cfg
}

// runningOf lists the tenant's running containers on an engine.
func runningOf(t testing.TB, d *docker.Driver, name string) []string {
	t.Helper()
	cs, err := d.Client().ContainerList(context.Background(), container.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+name))})
	require.NoError(t, err)
	var out []string
	for _, c := range cs {
		out = append(out, c.Names[0])
	}
	return out
}

// backUpOffsite takes a backup now and waits until it is copied off-site.
func (p *platform) backUpOffsite(name string) map[string]any {
	p.t.Helper()
	code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/backups", map[string]any{"reason": "before the test's disaster"})
	require.Equal(p.t, http.StatusAccepted, code, body)
	id := body["id"]
	b := p.waitBackups(name, "the backup copied off-site", 2*time.Minute, func(b map[string]any) bool {
		for _, r := range list(b) {
			if r["id"] == id && r["offsiteAt"] != nil {
				return true
			}
		}
		return false
	})
	return b
}

// A host killed (engine and worker) is found lost after the threshold,
// its tenant shows degraded; the evacuation brings the tenant back on
// another host from its off-site backup (the data of the backup, the
// recovery point reported); the host brought back is fenced: it stops
// the evacuated tenant's containers and keeps its volumes, and stays
// lost until ops cordon it.
func TestALostHostIsEvacuatedAndFencedOnReturn(t *testing.T) {
	p, hs := fleetWithOffsite(t, "host-a", "host-b")
	a, b := hs[0], hs[1]
	name := tenantName("lost")
	t.Cleanup(func() { p.destroy(name) })
	code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod", "host": "host-a",
		"backups": map[string]any{"every": "1h", "offsite": true, "keep": map[string]any{"last": 3}}})
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitState(name, 100*time.Millisecond, 3*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	hit(t, st["url"].(string), 5)
	p.backUpOffsite(name)
	hit(t, st["url"].(string), 2) // after the backup: what the host takes with it

	// Evacuating a host that is not lost is refused; nothing starts.
	code, body, _ = p.do(http.MethodPost, "/v1/hosts/host-a/evacuate", nil)
	require.Equal(t, http.StatusConflict, code, body)

	killed := time.Now()
	a.kill(t)
	st = p.waitFor(name, 200*time.Millisecond, time.Minute, "degraded", func(st map[string]any) bool { return st["state"] == string(tenant.StateDegraded) })
	t.Logf("host lost and tenant degraded %s after the kill", time.Since(killed).Round(time.Millisecond))
	require.Contains(t, st["degraded"].(map[string]any)["reason"], "host host-a is lost")
	code, body, _ = p.do(http.MethodGet, "/v1/hosts/host-a", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "lost", body["state"], body)
	code, body, _ = p.do(http.MethodPost, "/v1/hosts/host-a/drain", nil)
	require.Equal(t, http.StatusConflict, code, "a lost host is evacuated, not drained: %v", body)

	code, body, _ = p.do(http.MethodPost, "/v1/hosts/host-a/evacuate", map[string]any{"reason": "host-a died"})
	require.Equal(t, http.StatusAccepted, code, body)
	var ev map[string]any
	require.Eventually(t, func() bool {
		code, ev, _ = p.do(http.MethodGet, "/v1/hosts/host-a/evacuation", nil)
		return code == http.StatusOK && ev["phase"] == "done"
	}, 3*time.Minute, 200*time.Millisecond, "the evacuation ends")
	t.Logf("all serving again %s after the kill", time.Since(killed).Round(time.Millisecond))
	entries := ev["tenants"].([]any)
	require.Len(t, entries, 1, ev)
	e := entries[0].(map[string]any)
	require.Equal(t, "moved", e["outcome"], e)
	require.Equal(t, "host-b", e["to"])
	require.NotEmpty(t, e["recoveryPoint"], e)
	require.Greater(t, e["recoveryAgeMs"], 0.0, "the backup is older than the loss")
	t.Logf("recovery point %v (%v ms before the loss)", e["recoveryPoint"], e["recoveryAgeMs"])

	st = p.waitState(name, 100*time.Millisecond, time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Nil(t, st["degraded"])
	require.Equal(t, "host-b", st["placement"].(map[string]any)["host"])
	require.Len(t, runningOf(t, b.driver, name), 2, "the tenant runs on host-b")
	hits, _ := appState(t, st["url"].(string))
	require.Equal(t, 5.0, hits, "the data of the off-site backup: the two hits after it went with the host")
	code, body, _ = p.do(http.MethodGet, "/v1/hosts/host-a", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Empty(t, body["tenants"], "the lost host's room was given back")

	// The host comes back: its containers restart with the engine, and
	// its worker, fenced, stops them; their volumes stay.
	a.revive(t)
	require.Eventually(t, func() bool { return len(runningOf(t, a.driver, name)) == 0 }, 30*time.Second, 200*time.Millisecond,
		"the fenced host stops the evacuated tenant")
	vs, err := a.driver.Client().VolumeList(context.Background(), volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+name))})
	require.NoError(t, err)
	require.NotEmpty(t, vs.Volumes, "nothing of its data is destroyed on the lost host")
	code, body, _ = p.do(http.MethodGet, "/v1/hosts/host-a", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "lost", body["state"], "it stays lost (fenced) until ops act")
	code, body, _ = p.do(http.MethodPost, "/v1/hosts/host-a/uncordon", nil)
	require.Equal(t, http.StatusConflict, code, "a lost host comes back cordoned, never straight to active: %v", body)
	code, body, _ = p.do(http.MethodPost, "/v1/hosts/host-a/cordon", nil)
	require.Equal(t, http.StatusOK, code, body)
	p.checkHistory(tenant.WorkflowID(name), "tenant-evacuated")
	p.checkHistory(hosts.EvacuateWorkflowID("host-a"), "host-evacuated")
	p.checkHistory(hosts.WatchWorkflowID, "host-watch") // open: what it recorded so far
}
