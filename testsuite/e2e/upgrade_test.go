package e2e

// The upgrade test: tenants provisioned by the previous version of
// Tenantflow keep working once its worker and API are replaced by the
// current ones (ADR 0006).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// fallbackPreviousCommit is v0.2.0's commit, the upgrade's starting point
// in a clone that has the history but not the tags.
const fallbackPreviousCommit = "8325bfa"

// TestUpgradeFromPreviousVersion provisions two tenants with the previous
// version's API and worker (the newest tag before HEAD, built from a git
// worktree), replaces both by the current ones, as a deployment does, and
// then releases a new image to both tenants and decommissions one: the
// current code carries on the very runs the previous version started.
// A history the current code cannot replay fails its workflow tasks, and
// the test stops at the first failed task.
func TestUpgradeFromPreviousVersion(t *testing.T) {
	start := time.Now()
	prev := previousVersion(t)
	prevBin := buildPrevious(t, prev)
	currentBin := buildTenantflow(t)
	t.Logf("%s and the current binary built in %s", prev.rev, time.Since(start).Round(time.Second))
	u := startUpgradePlatform(t)

	// Before: the previous version alone, with every integration.
	prevAPI := u.startPreviousAPI(prevBin, prev.dir)
	prevWorker := startWorkerProcess(t, prevBin, u.p, u.workerEnv...)
	u.names = []string{tenantName("upg"), tenantName("upg")}
	for _, n := range u.names {
		t.Cleanup(func() { u.p.destroy(n) })
		prevAPI.view.requestTenant(n, "default", "staging")
	}
	runs := map[string]string{}
	for _, n := range u.names {
		st := prevAPI.view.waitFor(n, 100*time.Millisecond, 3*time.Minute, "provisioned", stateIs(tenant.StateActive, tenant.StateFailed))
		require.Equal(t, string(tenant.StateActive), st["state"], st)
		require.Len(t, st["resources"], 5, "the previous version registered the tenant everywhere: %v", st["resources"])
		require.Equal(t, "v1", u.bench.version(n))
		runs[n] = u.currentRun(n)
	}
	t.Logf("%s provisioned by %s at %s", strings.Join(u.names, ", "), prev.rev, time.Since(start).Round(time.Second))

	// The upgrade: the previous worker stops as a deployment stops it, and
	// so does its API; the current worker and the current (in-process) API
	// take over.
	stopGracefully(t, prevWorker)
	prevAPI.proc.Stop()
	currentWorker := startWorkerProcess(t, currentBin, u.p, u.workerEnv...)

	u.releaseToBoth()
	t.Logf("released by the current version at %s", time.Since(start).Round(time.Second))
	u.decommissionFirst()
	t.Logf("decommissioned by the current version at %s", time.Since(start).Round(time.Second))

	for _, n := range u.names {
		require.Equal(t, runs[n], u.currentRun(n), "the current worker carried on the run the previous version started")
		u.requireTasksHandedOver(n, prevWorker.Process.Pid, currentWorker.Process.Pid)
	}
	u.p.checkHistory(tenant.WorkflowID(u.names[1]), "tenant-upgraded")
}

// upgradePlatform is the platform with every integration on, backups, a
// registry for the release's image, and workers as processes.
type upgradePlatform struct {
	t         *testing.T
	p         *platform
	bench     *releaseBench
	workerEnv []string
	names     []string // the tenants the previous version provisioned
}

func startUpgradePlatform(t *testing.T) *upgradePlatform {
	srv, cfg := startServers(t)
	cfg.Backup = backup.Config{Dir: t.TempDir(), Retention: time.Hour}
	p := startPlatformOnServer(t, nil, spec.Docker, nil)
	// The test's own clients of the integrations, to clean up after it.
	deps, err := wiring.NewIntegrations(*cfg, harness.Logger(t))
	require.NoError(t, err)
	p.deps = deps
	env := append(workerEnv(cfg),
		backup.EnvDir+"="+cfg.Backup.Dir, backup.EnvRetention+"="+cfg.Backup.Retention.String())
	bench := &releaseBench{t: t, p: p, srv: srv, reg: harness.StartRegistry(t, harness.RegistryOptions{})}
	return &upgradePlatform{t: t, p: p, bench: bench, workerEnv: env}
}

// releaseToBoth releases a new image to both (staging) tenants with the
// current code and checks that they serve it.
func (u *upgradePlatform) releaseToBoth() {
	t := u.t
	image := u.bench.pushDemo("v2", false)
	id := u.bench.startRelease(map[string]any{"image": image, "tenants": map[string]any{"stage": "staging"}, "drain": "500ms"})
	var st release.Release
	u.waitUntil("release "+id+" completed", 3*time.Minute, func() bool {
		_, st = u.bench.release(id)
		return st.State == release.StateCompleted || st.State == release.StatePaused || st.State == release.StateAborted
	})
	require.Equal(t, release.StateCompleted, st.State, st)
	var released []string
	for _, tr := range st.Tenants {
		require.Equal(t, release.TenantUpdated, tr.Status, tr)
		released = append(released, tr.Name)
	}
	require.ElementsMatch(t, u.names, released)
	for _, n := range u.names {
		require.Equal(t, "v2", u.bench.version(n), n)
		require.Equal(t, map[string]string{docker.InstanceName(n, "app", 1): image}, u.bench.appContainers(n), "the old instance is gone")
	}
}

// decommissionFirst decommissions the first tenant in two steps
// (distributor asks, ops confirm) and checks that the second serves on.
func (u *upgradePlatform) decommissionFirst() {
	t, p := u.t, u.p
	gone, kept := u.names[0], u.names[1]
	code, body, _ := p.doAs("distributor-"+p.token, http.MethodDelete, "/v1/tenants/"+gone, map[string]any{"reason": "end of contract"})
	require.Equal(t, http.StatusAccepted, code, body)
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+gone+"/decommission/confirm", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	var st map[string]any
	u.waitUntil(gone+" decommissioned", 2*time.Minute, func() bool {
		var code int
		code, st, _ = p.do(http.MethodGet, "/v1/tenants/"+gone, nil)
		return code == http.StatusOK && phaseIs(tenant.PhaseRetained, tenant.PhaseFailed)(st)
	})
	require.Equal(t, string(tenant.StateDecommissioned), st["state"], st)
	require.Equal(t, string(tenant.PhaseRetained), decommissionOf(st)["phase"], st)
	residue := p.residue(gone)
	slices.Sort(residue)
	require.Equal(t, []string{"volume " + docker.VolumeName(gone, "data"), "volume " + docker.VolumeName(gone, "dbdata")}, residue,
		"only the retained volumes are left")

	code, st, _ = p.do(http.MethodGet, "/v1/tenants/"+kept, nil)
	require.Equal(t, http.StatusOK, code, st)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Equal(t, "v2", u.bench.version(kept), "the other tenant serves on")
}

// stateIs accepts a tenant (as the API shows it) in one of states.
func stateIs(states ...tenant.State) func(map[string]any) bool {
	return func(st map[string]any) bool {
		s, _ := st["state"].(string)
		return slices.Contains(states, tenant.State(s))
	}
}

// waitUntil polls ok, failing at once when a tenant's workflow task failed
// (the current code could not replay the previous version's history).
func (u *upgradePlatform) waitUntil(what string, timeout time.Duration, ok func() bool) {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range u.names {
			if failed := u.failedTasks(n); len(failed) > 0 {
				u.t.Fatalf("tenant %s: a workflow task failed on the current worker: %s", n, failed[0])
			}
		}
		if ok() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	u.t.Fatalf("not %s within %s", what, timeout)
}

// currentRun is the run id of the tenant's workflow now.
func (u *upgradePlatform) currentRun(name string) string {
	u.t.Helper()
	d, err := u.p.temporal.Client.DescribeWorkflowExecution(context.Background(), tenant.WorkflowID(name), "")
	require.NoError(u.t, err)
	return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}

// history is the tenant's current run's history.
func (u *upgradePlatform) history(name string) []*historypb.HistoryEvent {
	u.t.Helper()
	iter := u.p.temporal.Client.GetWorkflowHistory(context.Background(), tenant.WorkflowID(name), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(u.t, err)
		events = append(events, ev)
	}
	return events
}

// failedTasks describes the tenant's failed workflow tasks (cause and
// decrypted message: a non-deterministic replay says so here).
func (u *upgradePlatform) failedTasks(name string) []string {
	var out []string
	failures := temporaltest.TestKeyring(u.t).FailureConverter()
	for _, ev := range u.history(name) {
		if a := ev.GetWorkflowTaskFailedEventAttributes(); a != nil {
			out = append(out, fmt.Sprintf("%s by %s: %v", a.GetCause(), a.GetIdentity(), failures.FailureToError(a.GetFailure())))
		}
	}
	return out
}

// requireTasksHandedOver checks that the previous worker completed the
// tenant's workflow tasks until the upgrade and the current one every task
// after it, in one run, without a failed task.
func (u *upgradePlatform) requireTasksHandedOver(name string, prevPid, currentPid int) {
	u.t.Helper()
	var byWorker []string
	for _, ev := range u.history(name) {
		if a := ev.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			switch id := a.GetIdentity(); {
			case strings.HasSuffix(id, ":"+strconv.Itoa(prevPid)):
				byWorker = append(byWorker, "previous")
			case strings.HasSuffix(id, ":"+strconv.Itoa(currentPid)):
				byWorker = append(byWorker, "current")
			default:
				byWorker = append(byWorker, id)
			}
		}
	}
	switchAt := slices.Index(byWorker, "current")
	require.Positive(u.t, switchAt, "tasks by worker: %v", byWorker)
	require.Equal(u.t, slices.Repeat([]string{"previous"}, switchAt), byWorker[:switchAt], "tasks by worker")
	require.Equal(u.t, slices.Repeat([]string{"current"}, len(byWorker)-switchAt), byWorker[switchAt:], "tasks by worker")
	require.Empty(u.t, u.failedTasks(name))
}

// previousRelease is the version the upgrade starts from, checked out.
type previousRelease struct {
	rev string // a tag, or fallbackPreviousCommit
	dir string // its git worktree
}

// previousVersion checks out the newest v* tag that is an ancestor of
// HEAD (the one before HEAD's own tag when HEAD is tagged), else
// fallbackPreviousCommit, in a worktree removed when the test ends.
func previousVersion(t *testing.T) previousRelease {
	harness.SkipShort(t, "the upgrade from the previous version")
	root := harness.RepoRoot()
	git := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	base := "HEAD"
	if _, err := git("describe", "--exact-match", "--tags", "--match", "v[0-9]*", "HEAD"); err == nil {
		base = "HEAD^"
	}
	rev, err := git("describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", base)
	if err != nil {
		if _, err := git("cat-file", "-e", fallbackPreviousCommit+"^{commit}"); err != nil {
			harness.Unavailable(t, "no previous version in %s: no v* tag before HEAD and no commit %s (git fetch --tags)", root, fallbackPreviousCommit)
		}
		rev = fallbackPreviousCommit
	}
	dir := filepath.Join(t.TempDir(), "previous")
	if out, err := git("worktree", "add", "--detach", dir, rev); err != nil {
		t.Fatalf("git worktree add %s: %v\n%s", rev, err, out)
	}
	t.Cleanup(func() {
		if out, err := git("worktree", "remove", "--force", dir); err != nil {
			t.Errorf("git worktree remove %s: %v\n%s", dir, err, out)
		}
	})
	t.Logf("upgrading from %s", rev)
	return previousRelease{rev: rev, dir: dir}
}

// buildPrevious compiles the previous version's binary. -trimpath keeps
// the worktree's path out of the build, so the Go build cache serves the
// next run.
func buildPrevious(t *testing.T, prev previousRelease) string {
	bin := filepath.Join(t.TempDir(), "tenantflow-"+prev.rev)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+prev.rev, "-o", bin, "./cmd/tenantflow")
	cmd.Dir = prev.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tenantflow %s: %v\n%s", prev.rev, err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	require.Equal(t, prev.rev, strings.TrimSpace(string(out)), "the binary is the previous version's")
	return bin
}

// previousAPI is the previous version's `tenantflow api` process, and the
// platform as seen through it.
type previousAPI struct {
	proc *harness.Process
	view *platform
}

// startPreviousAPI runs the previous version's API against the test's
// server, with the platform's tokens and the previous version's templates.
func (u *upgradePlatform) startPreviousAPI(bin, dir string) previousAPI {
	t, p := u.t, u.p
	tokens, err := json.Marshal(map[string]string{"ops": p.token, "distributor": "distributor-" + p.token, "developer": "developer-" + p.token})
	require.NoError(t, err)
	tokensFile := filepath.Join(t.TempDir(), "tokens.json")
	require.NoError(t, os.WriteFile(tokensFile, tokens, 0o600))
	addr := harness.Addr(harness.FreePort(t))
	env := append(os.Environ(),
		"TENANTFLOW_TEMPORAL_ADDRESS="+p.temporal.Config.Address,
		"TENANTFLOW_TEMPORAL_NAMESPACE="+p.temporal.Config.Namespace,
		"TENANTFLOW_TASK_QUEUE="+p.temporal.Config.TaskQueue,
		"TENANTFLOW_CODEC_KEYS="+temporaltest.TestCodecKeys,
		"TENANTFLOW_API_LISTEN="+addr,
		"TENANTFLOW_API_TOKENS_FILE="+tokensFile,
		"TENANTFLOW_TEMPLATES_DIR="+filepath.Join(dir, "deploy", "templates"),
		"TENANTFLOW_LOG_LEVEL=warn",
	)
	proc := harness.NewProcess(t, dir, env, bin, "api")
	proc.Start()
	harness.WaitFor(t, "the previous version's API", 30*time.Second, harness.HTTPOK("http://"+addr+"/healthz"))
	view := *p
	view.api = &httptest.Server{URL: "http://" + addr}
	return previousAPI{proc: proc, view: &view}
}

// stopGracefully stops a worker process as a deployment does (SIGTERM)
// and requires a clean exit.
func stopGracefully(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "the previous worker exits cleanly on SIGTERM")
	case <-time.After(45 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the previous worker did not stop within 45 s of SIGTERM (killed: %v)", <-done)
	}
}
