package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A release with backupBefore, data written by the new version, then a
// rollback with restoreData: the tenant runs the older image on the
// PostgreSQL rows and files the backup took, and what the new version
// wrote survives in the safety backup.
func TestRollbackWithDataPutsTheRowsBack(t *testing.T) {
	cfg := localRestic(t)
	postgresImage(t)
	p := startPlatformWith(t, &wiring.Config{Restic: cfg})
	b := &releaseBench{t: t, p: p, reg: harness.StartRegistry(t, harness.RegistryOptions{})}
	name := tenantName("rbd")
	t.Cleanup(func() { p.destroy(name) })
	p.requestTenant(name, "default", "prod")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	oldImage := st["image"]
	hit(t, st["url"].(string), 3)

	v2 := b.pushDemo("v2", false)
	id := b.startRelease(map[string]any{"image": v2, "tenants": map[string]any{"names": []string{name}}, "backupBefore": true})
	rel := b.promoteProd(id)
	require.Equal(t, release.TenantUpdated, rel.Tenants[0].Status, rel.Tenants[0].Error)
	before := rel.Tenants[0].Backup
	require.NotEmpty(t, before, "the cut-over took a backup first")

	_, st, _ = p.do(http.MethodGet, "/v1/tenants/"+name, nil)
	require.Equal(t, v2, st["image"])
	hit(t, st["url"].(string), 4) // what the new version writes
	hits, dbHits := appState(t, st["url"].(string))
	require.Equal(t, 7.0, hits)
	require.Equal(t, "7", dbHits)

	rb := b.promoteProd(b.startRelease(map[string]any{"rollbackOf": id, "restoreData": true}))
	require.Len(t, rb.Tenants, 1)
	tr := rb.Tenants[0]
	require.Equal(t, release.TenantUpdated, tr.Status, tr.Error)
	require.Equal(t, before, tr.Restore)
	require.True(t, tr.Restored)
	require.NotEmpty(t, tr.Backup, "the rollback's safety backup")
	p.checkHistory(release.WorkflowID(rb.ID), "release-rollback-with-data")

	_, st, _ = p.do(http.MethodGet, "/v1/tenants/"+name, nil)
	require.Equal(t, oldImage, st["image"], "the older image runs")
	hits, dbHits = appState(t, st["url"].(string))
	require.Equal(t, 3.0, hits, "the files the backup took")
	require.Equal(t, "3", dbHits, "the rows the backup took")

	// The safety backup holds what the new version wrote: putting the
	// tenant back to it restores 7.
	code, out, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", map[string]any{"backup": tr.Backup})
	require.Equal(t, http.StatusAccepted, code, out)
	p.waitBackups(name, "the restore", 3*time.Minute, func(b map[string]any) bool {
		r, _ := b["restore"].(map[string]any)
		return r != nil && r["finishedAt"] != nil
	})
	_, st, _ = p.do(http.MethodGet, "/v1/tenants/"+name, nil)
	hits, dbHits = appState(t, st["url"].(string))
	require.Equal(t, 7.0, hits)
	require.Equal(t, "7", dbHits)
	p.checkHistory(tenant.WorkflowID(name), "tenant-rolled-back-with-data")
}

// promoteProd promotes a release of prod tenants (no staging tenant to
// wait for) and waits for it to complete.
func (b *releaseBench) promoteProd(id string) release.Release {
	b.t.Helper()
	b.waitRelease(id, 3*time.Minute, release.StateAwaitingPromotion)
	code, out, _ := b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", nil)
	require.Contains(b.t, []int{http.StatusOK, http.StatusAccepted}, code, out)
	st := b.waitRelease(id, 4*time.Minute, release.StateCompleted, release.StateAborted, release.StatePaused)
	require.Equal(b.t, release.StateCompleted, st.State, st)
	return st
}
