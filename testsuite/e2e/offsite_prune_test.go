package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// The workers copy off-site through an append-only server; the off-site
// pruner, a worker of its own holding the only delete credential, applies
// the tenant's retention to the off-site copy after each local one.
func TestOffsitePrunerAppliesTheRetentionOffsite(t *testing.T) {
	harness.RequireBinary(t, "restic", "restic")
	off := harness.StartOffsite(t)
	off.StartPruning(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	p := startPlatformWith(t, &wiring.Config{Restic: restic.Config{
		Repos: filepath.Join(dir, "repos"), Keys: keys, Binary: "restic",
		OffsiteURL: off.URL, OffsiteUser: off.User, OffsitePassword: off.Password, OffsitePruner: restic.DefaultPruneQueue,
	}})
	pruner, err := restic.NewPruner(restic.PruneConfig{Keys: keys, Binary: "restic", URL: off.PruneURL, User: off.User, Password: off.PrunePassword},
		harness.Logger(t))
	require.NoError(t, err)
	w := worker.New(p.temporal.Client, restic.DefaultPruneQueue, worker.Options{})
	w.RegisterActivity(pruner)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	name := tenantName("op")
	t.Cleanup(func() { p.destroy(name) })
	code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod",
		"backups": map[string]any{"every": "10s", "offsite": true, "keep": map[string]any{"last": 1}}})
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)

	b := p.waitBackups(name, "an off-site prune that forgot a backup", 2*time.Minute, func(b map[string]any) bool {
		op, _ := b["offsitePrune"].(map[string]any)
		return op != nil && op["prunedAt"] != nil && len(op["forgotten"].([]any)) > 0
	})
	op := b["offsitePrune"].(map[string]any)
	require.Equal(t, restic.DefaultPruneQueue, op["queue"])
	var forgotten []string
	for _, id := range op["forgotten"].([]any) {
		forgotten = append(forgotten, id.(string))
	}

	// The off-site repository itself, opened with the tenant's key: the
	// forgotten backups are gone, the newest one copied is there.
	offsite := offsiteBackups(t, off.RepoDir(name), filepath.Join(keys, name+".key"))
	for _, id := range forgotten {
		require.NotContains(t, offsite, id, "forgotten off-site")
	}
	require.NotEmpty(t, offsite)
	local := list(b)
	require.Contains(t, offsite, local[len(local)-1]["id"], "the newest backup stays off-site")
	p.checkHistory(tenant.WorkflowID(name), "tenant-offsite-pruned")
}

// offsiteBackups lists the backup ids in an off-site repository, read
// straight from the server's storage.
func offsiteBackups(t *testing.T, repo, key string) []string {
	t.Helper()
	require.NotEmpty(t, repo, "no off-site repository")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "restic", "-r", repo, "--password-file", key, "--no-cache", "--no-lock", "snapshots", "--json").Output()
	require.NoError(t, err)
	var snaps []struct {
		Tags []string `json:"tags"`
	}
	require.NoError(t, json.Unmarshal(out, &snaps))
	var ids []string
	for _, s := range snaps {
		for _, tag := range s.Tags {
			if id, ok := strings.CutPrefix(tag, "backup:"); ok && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
