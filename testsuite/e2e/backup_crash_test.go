package e2e

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// resticRunning reports whether a restic process of the backup runs.
func resticRunning(t *testing.T, id string) bool {
	t.Helper()
	out, _ := exec.Command("ps", "-eo", "args").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "restic ") || strings.Contains(l, "/restic ") {
			if strings.Contains(l, "backup:"+id) {
				return true
			}
		}
	}
	return false
}

// The worker is killed (SIGKILL) while restic backs a tenant up: its
// restic dies with it, the next worker takes the backup over, clears the
// stale lock and completes it, and the repository checks clean.
func TestWorkerKilledMidBackup(t *testing.T) {
	harness.RequireBinary(t, "restic", "restic")
	bin := buildTenantflow(t)
	p := startPlatformWith(t, nil)
	dir := t.TempDir()
	repos, keys := filepath.Join(dir, "repos"), filepath.Join(dir, "keys")
	env := []string{"TENANTFLOW_RESTIC_REPOS=" + repos, "TENANTFLOW_RESTIC_KEYS=" + keys}
	first := startWorkerProcess(t, bin, p, env...)
	name := tenantName("bkcrash")
	t.Cleanup(func() { p.destroy(name) })
	p.requestTenant(name, "light", "prod")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)

	// Enough incompressible data for restic to be caught in the middle.
	mp, err := p.driver.VolumeDir(context.Background(), name, "", "data")
	require.NoError(t, err)
	for i := range 6 {
		f, err := os.Create(filepath.Join(mp, "blob"+string(rune('a'+i))+".bin"))
		require.NoError(t, err)
		_, err = io.CopyN(f, rand.Reader, 64<<20)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}

	code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/backups", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	id := body["id"].(string)
	require.Eventually(t, func() bool { return resticRunning(t, id) }, time.Minute, 20*time.Millisecond, "restic backs the tenant up")
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	require.Eventually(t, func() bool { return !resticRunning(t, id) }, 5*time.Second, 50*time.Millisecond,
		"restic dies with the worker that ran it")

	startWorkerProcess(t, bin, p, env...)
	// Until the new worker took the tenant's history over (the dead
	// worker's sticky queue times out), queries go unanswered: 503.
	var b map[string]any
	require.Eventually(t, func() bool {
		code, body, _ := p.do(http.MethodGet, "/v1/tenants/"+name+"/backups", nil)
		if code != http.StatusOK {
			return false
		}
		b = body
		if b["running"] != nil {
			return false // its retention still runs
		}
		for _, r := range list(b) {
			if r["id"] == id {
				return true
			}
		}
		return false
	}, 3*time.Minute, 250*time.Millisecond, "the next worker completes the backup")
	require.Empty(t, b["lastError"], b)

	// The repository is consistent and holds no lock.
	cmd := exec.Command("restic", "--no-cache", "-r", filepath.Join(repos, name), "check")
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD_FILE="+filepath.Join(keys, name+".key"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "restic check: %s", out)
	locks, err := os.ReadDir(filepath.Join(repos, name, "locks"))
	require.NoError(t, err)
	require.Empty(t, locks, "no lock is left behind")

	// The backup really was taken over: its activity ran again.
	iter := p.temporal.Client.GetWorkflowHistory(context.Background(), tenant.WorkflowID(name), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var attempt int32
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			attempt = max(attempt, a.Attempt)
		}
	}
	require.GreaterOrEqual(t, attempt, int32(2), "TakeBackup ran again after the crash")
}
