package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A tenant with a backup policy is decommissioned through its restic
// repository: its final backup is drilled before the teardown, brings it
// back during the retention, and at the end of the retention its key
// goes, leaving nothing readable anywhere, off-site included.
func TestDecommissionThroughTheRepository(t *testing.T) {
	harness.RequireBinary(t, "restic", "restic")
	postgresImage(t) // the default template's database
	off := harness.StartOffsite(t)
	dir := t.TempDir()
	cfg := restic.Config{Repos: filepath.Join(dir, "repos"), Keys: filepath.Join(dir, "keys"), Binary: "restic",
		OffsiteURL: off.URL, OffsiteUser: off.User, OffsitePassword: off.Password}
	p := startPlatformWith(t, &wiring.Config{Restic: cfg, Backup: backup.Config{Retention: 20 * time.Second}})
	name := tenantName("dr")
	t.Cleanup(func() { p.destroy(name) })
	code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "stage": "prod",
		"backups": map[string]any{"every": "24h", "offsite": true}})
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	url := st["url"].(string)
	hit(t, url, 3)
	// A marker to look for in the repositories once the key is gone.
	mp, err := p.driver.VolumeDir(context.Background(), name, "", "data")
	require.NoError(t, err)
	marker := []byte("tenant-data-marker-" + harness.RandomHex(t, 8))
	require.NoError(t, os.WriteFile(filepath.Join(mp, "marker.txt"), bytes.Repeat(marker, 100), 0o644))

	decommission := func() map[string]any {
		code, body, _ := p.do(http.MethodDelete, "/v1/tenants/"+name+"?force=true&reason=test", nil)
		require.Equal(t, http.StatusAccepted, code, body)
		st := p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "retained", phaseIs(tenant.PhaseRetained, tenant.PhaseFailed))
		d := decommissionOf(st)
		require.Equal(t, string(tenant.PhaseRetained), d["phase"], d)
		return d
	}
	d := decommission()
	final, _ := d["final"].(map[string]any)
	require.NotNil(t, final, "the final backup is in the repository: %v", d)
	require.Nil(t, d["backup"], "no archive")
	require.NotNil(t, d["verifiedAt"])

	// Back during the retention, with its data.
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = p.waitFor(name, 100*time.Millisecond, 2*time.Minute, "restored", phaseIs(tenant.PhaseRestored, tenant.PhaseRetained))
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	hits, dbHits := appState(t, st["url"].(string))
	require.Equal(t, 3.0, hits)
	require.Equal(t, "3", dbHits)

	// Decommissioned again, and this time the retention ends.
	decommission()
	st = p.waitFor(name, 250*time.Millisecond, 2*time.Minute, "purged", phaseIs(tenant.PhasePurged))
	require.Equal(t, string(tenant.StateDecommissioned), st["state"], st)
	desc, err := p.temporal.Client.DescribeWorkflowExecution(context.Background(), tenant.WorkflowID(name), "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())

	// Crypto-erasure: no key, no local repository; the append-only
	// off-site copy is still there, unreadable, and holds the data only
	// encrypted.
	_, err = os.Stat(filepath.Join(cfg.Keys, name+".key"))
	require.ErrorIs(t, err, fs.ErrNotExist, "the key is erased")
	_, err = os.Stat(filepath.Join(cfg.Repos, name))
	require.ErrorIs(t, err, fs.ErrNotExist, "the local repository is removed")
	offDir := off.RepoDir(name)
	require.NotEmpty(t, offDir, "the append-only server kept the off-site copy")
	require.NoError(t, filepath.WalkDir(offDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.False(t, bytes.Contains(b, marker), "%s holds the tenant's data in clear", path)
		return nil
	}))
	guess := filepath.Join(t.TempDir(), "guess.key")
	require.NoError(t, os.WriteFile(guess, []byte(harness.RandomHex(t, 32)), 0o600))
	cmd := exec.Command("restic", "--no-cache", "-r", offDir, "snapshots")
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD_FILE="+guess)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the off-site repository opens without its key: %s", out)
	require.Contains(t, string(out), "wrong password")
	p.checkHistory(tenant.WorkflowID(name), "tenant-decommissioned-restic")
}
