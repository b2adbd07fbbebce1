package e2e

import (
	"context"
	"crypto/rand"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// localRestic is the settings of restic repositories and keys in the
// test's temp dir, without off-site copies; the test needs restic.
func localRestic(t *testing.T) restic.Config {
	t.Helper()
	harness.RequireBinary(t, "restic", "restic")
	dir := t.TempDir()
	return restic.Config{Repos: filepath.Join(dir, "repos"), Keys: filepath.Join(dir, "keys"), Binary: "restic"}
}

// backupsOf is GET /v1/tenants/{name}/backups.
func (p *platform) backupsOf(name string) map[string]any {
	p.t.Helper()
	code, body, _ := p.do(http.MethodGet, "/v1/tenants/"+name+"/backups", nil)
	require.Equal(p.t, http.StatusOK, code, body)
	return body
}

// waitBackups polls the tenant's backups until ok accepts them.
func (p *platform) waitBackups(name, what string, timeout time.Duration, ok func(b map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		// A query waits for the workflow task under way, which holds the
		// tenant's local activities (a service's stop grace among them):
		// 503 then, and the next poll answers.
		code, body, _ := p.do(http.MethodGet, "/v1/tenants/"+name+"/backups", nil)
		if code != http.StatusServiceUnavailable {
			require.Equal(p.t, http.StatusOK, code, body)
		}
		if last = body; code == http.StatusOK && ok(last) {
			return last
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.t.Fatalf("tenant %s: %s not within %s; last answer %v", name, what, timeout, last)
	return nil
}

// servesItsData accepts the demo app's GET / of tenant name with its
// database answering: a backup must not cost the tenant its data.
func servesItsData(name string) func(host, body string) bool {
	return func(_, body string) bool {
		return strings.Contains(body, `"tenant":"`+name+`"`) && !strings.Contains(body, "dbError")
	}
}

func list(b map[string]any) []map[string]any {
	raw, _ := b["list"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		out = append(out, r.(map[string]any))
	}
	return out
}

// A tenant whose policy says every 10 s is backed up on schedule while it
// serves under load: copied off-site, deduplicated, drilled from the
// off-site copy; a corrupted off-site repository fails the next drill.
func TestScheduledBackupsWhileServing(t *testing.T) {
	harness.RequireBinary(t, "restic", "restic")
	postgresImage(t) // the default template's database
	off := harness.StartOffsite(t)
	dir := t.TempDir()
	p := startPlatformWith(t, &wiring.Config{Restic: restic.Config{
		Repos: filepath.Join(dir, "repos"), Keys: filepath.Join(dir, "keys"), Binary: "restic",
		OffsiteURL: off.URL, OffsiteUser: off.User, OffsitePassword: off.Password,
	}})
	name := tenantName("bk")
	t.Cleanup(func() { p.destroy(name) })

	// Bad policies are refused, naming the field, and nothing starts.
	code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "stage": "prod",
		"backups": map[string]any{"every": "1s"}})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "backups.every", body["field"], body)

	code, body, _ = p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "stage": "prod",
		"backups": map[string]any{"every": "10s", "offsite": true, "drillEvery": "10s", "keep": map[string]any{"last": 3}}})
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	policy := st["backups"].(map[string]any)["policy"].(map[string]any)
	require.Equal(t, "10s", policy["every"], "the policy is shown with durations as people write them")

	// 4 MB of incompressible data in the app's volume: what a second
	// backup must not store again.
	mp, err := p.driver.VolumeDir(context.Background(), name, "", "data")
	require.NoError(t, err)
	blob := make([]byte, 4<<20)
	_, _ = rand.Read(blob)
	require.NoError(t, os.WriteFile(filepath.Join(mp, "blob.bin"), blob, 0o644))

	u, err := url.Parse(st["url"].(string))
	require.NoError(t, err)
	load := harness.StartLoad(u.Host, []string{u.Host}, "/", 2, 20*time.Millisecond, servesItsData(name))

	b := p.waitBackups(name, "two backups and a drill", 90*time.Second, func(b map[string]any) bool {
		ls := list(b)
		return len(ls) >= 2 && ls[len(ls)-1]["bytes"].(float64) > 4<<20 && b["lastDrill"] != nil
	})
	report := load.Stop()
	require.Empty(t, report.Failures, "the tenant serves while it is backed up (%d requests)", report.Requests)
	require.Greater(t, report.Requests, 100)
	t.Logf("load during backups: %d requests, 0 failed", report.Requests)

	ls := list(b)
	newest := ls[len(ls)-1]
	require.Equal(t, "scheduled", newest["reason"])
	require.NotNil(t, newest["offsiteAt"], newest)
	require.Less(t, newest["added"].(float64), newest["bytes"].(float64)/10,
		"a backup of unchanged data stores almost nothing: %v", newest)
	drill := b["lastDrill"].(map[string]any)
	require.Equal(t, "passed", drill["outcome"], drill)
	require.Equal(t, true, drill["offsite"], "the off-site copy is drilled")
	require.NotNil(t, b["newestOffsiteAgeSeconds"])

	// On demand: accepted at once, then listed.
	code, body, hdr := p.do(http.MethodPost, "/v1/tenants/"+name+"/backups", map[string]any{"reason": "before a migration"})
	require.Equal(t, http.StatusAccepted, code, body)
	id := body["id"].(string)
	require.Equal(t, "/v1/tenants/"+name+"/backups/"+id, hdr.Get("Location"))
	p.waitBackups(name, "the on-demand backup", 60*time.Second, func(b map[string]any) bool {
		for _, r := range list(b) {
			if r["id"] == id {
				return r["reason"] == "on-demand"
			}
		}
		return false
	})
	code, body, _ = p.do(http.MethodGet, "/v1/tenants/"+name+"/backups/no-such-backup", nil)
	require.Equal(t, http.StatusNotFound, code, body)
	require.Equal(t, "backup", body["field"])

	// Flip bytes in every pack of the off-site copy: the next drill of
	// the newest backup must fail, and say so.
	drilledAt := b["lastDrill"].(map[string]any)["at"]
	packs := 0
	require.NotEmpty(t, off.RepoDir(name), "the tenant has an off-site repository")
	require.NoError(t, filepath.WalkDir(filepath.Join(off.RepoDir(name), "data"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, 64)
		if _, err := f.ReadAt(buf, 16); err != nil {
			return err
		}
		for i := range buf {
			buf[i] ^= 0xff
		}
		packs++
		_, err = f.WriteAt(buf, 16)
		return err
	}))
	require.Positive(t, packs)
	b = p.waitBackups(name, "a failed drill", 90*time.Second, func(b map[string]any) bool {
		d, _ := b["lastDrill"].(map[string]any)
		return d != nil && d["at"] != drilledAt && d["outcome"] == "failed"
	})
	require.NotEmpty(t, b["lastDrill"].(map[string]any)["error"])
	t.Logf("failed drill: %s", b["lastDrill"].(map[string]any)["error"])
	st = p.waitState(name, 50*time.Millisecond, time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], "a failed drill never touches the tenant")
	require.NotContains(t, p.rawHistory(tenant.WorkflowID(name)), off.Password, "the off-site password is not in history")
	p.checkHistory(tenant.WorkflowID(name), "tenant-backups")
}
