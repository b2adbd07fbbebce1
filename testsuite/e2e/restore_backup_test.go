package e2e

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// appState is the demo app's GET /: its hit counter (in its volume) and
// the counter's mirror in its database.
func appState(t *testing.T, url string) (hits float64, dbHits string) {
	t.Helper()
	resp, err := http.Get(url + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var v map[string]any
	require.NoError(t, json.Unmarshal(b, &v), string(b))
	return v["hits"].(float64), v["dbHits"].(string)
}

func hit(t *testing.T, url string, n int) {
	t.Helper()
	for range n {
		resp, err := http.Post(url+"/hits", "", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
}

// An active tenant put back to an earlier backup gets that backup's files
// and database rows; a restore to a backup that no longer restores
// touches nothing, and the tenant serves its current data.
func TestRestoreActiveTenantToABackup(t *testing.T) {
	cfg := localRestic(t)
	postgresImage(t) // the default template: real PostgreSQL rows round-trip
	p := startPlatformWith(t, &wiring.Config{Restic: cfg})
	name := tenantName("rb")
	t.Cleanup(func() { p.destroy(name) })
	p.requestTenant(name, "default", "prod")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	url := st["url"].(string)
	hit(t, url, 3)

	code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/backups", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := body["id"].(string)
	p.waitBackups(name, "the backup", time.Minute, func(b map[string]any) bool { return len(list(b)) == 1 })
	hit(t, url, 2)
	hits, dbHits := appState(t, url)
	require.Equal(t, 5.0, hits)
	require.Equal(t, "5", dbHits)

	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", map[string]any{"backup": "no-such-backup"})
	require.Equal(t, http.StatusNotFound, code, body)
	require.Equal(t, "backup", body["field"])

	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", map[string]any{"backup": id})
	require.Equal(t, http.StatusAccepted, code, body)
	restoreDone := func(b map[string]any) bool {
		r, _ := b["restore"].(map[string]any)
		return r != nil && r["finishedAt"] != nil
	}
	b := p.waitBackups(name, "the restore", 2*time.Minute, restoreDone)
	r := b["restore"].(map[string]any)
	require.Equal(t, "succeeded", r["phase"], r)
	st = p.waitState(name, 50*time.Millisecond, time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	url = st["url"].(string)
	hits, dbHits = appState(t, url)
	require.Equal(t, 3.0, hits, "the app's volume is back as the backup took it")
	require.Equal(t, "3", dbHits, "the database is back as its dump took it")

	// Damage every pack of the repository: the next restore is refused
	// by its drills before anything is touched.
	hit(t, url, 1)
	packs := 0
	require.NoError(t, filepath.WalkDir(filepath.Join(cfg.Repos, name, "data"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		packs++
		_, err = f.WriteAt([]byte("not a pack any more, not a pack any more"), 8)
		return err
	}))
	require.Positive(t, packs)
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", map[string]any{"backup": id})
	require.Equal(t, http.StatusAccepted, code, body)
	first := r["requestedAt"]
	b = p.waitBackups(name, "the refused restore", 2*time.Minute, func(b map[string]any) bool {
		r, _ := b["restore"].(map[string]any)
		return restoreDone(b) && r["requestedAt"] != first
	})
	r = b["restore"].(map[string]any)
	require.Equal(t, "failed", r["phase"], r)
	require.Contains(t, r["error"], "nothing was touched")
	st = p.waitState(name, 50*time.Millisecond, time.Minute)
	hits, dbHits = appState(t, st["url"].(string))
	require.Equal(t, 4.0, hits, "a failed restore leaves the tenant serving its current data")
	require.Equal(t, "4", dbHits)
	p.checkHistory(tenant.WorkflowID(name), "tenant-restored-to-backup")
}
