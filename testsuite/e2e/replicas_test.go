package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/workflows/release"
)

// replicas is Tenantflow deployed as an operator runs it: the full
// Temporal server on PostgreSQL, two worker processes and two API
// processes of the real binary.
type replicas struct {
	t       *testing.T
	p       *platform
	bin     string
	workers []*harness.Process
	apis    []*harness.Process
	// views is the platform as seen through each API process.
	views []*platform
}

func startReplicas(t *testing.T) *replicas {
	t.Helper()
	bin := buildTenantflow(t)
	cluster := temporaltest.StartCluster(t)
	// No in-process worker: the worker processes do the work.
	p := startPlatformOnServer(t, cluster.Temporal, spec.Docker, nil)
	r := &replicas{t: t, p: p, bin: bin}
	tokens := writeTokensFile(r.t, r.p.token)
	for i := range 2 {
		r.workers = append(r.workers, r.startWorker(i))
		proc, view := r.startAPI(i, tokens)
		r.apis, r.views = append(r.apis, proc), append(r.views, view)
	}
	return r
}

// startWorker runs `tenantflow worker`; its output shows if the test fails.
func (r *replicas) startWorker(i int) *harness.Process {
	env := append(processEnv(r.p.temporal.Config), "TENANTFLOW_WORKER_METRICS_LISTEN=", "TENANTFLOW_WORKER_STOP_TIMEOUT=3s")
	proc := harness.NewProcess(r.t, harness.RepoRoot(), env, r.bin, "worker")
	proc.Start()
	r.t.Logf("worker %d started", i)
	return proc
}

// startAPI runs `tenantflow api` and waits for its /healthz; the view
// sends the platform's requests to it.
func (r *replicas) startAPI(i int, tokens string) (*harness.Process, *platform) {
	return startAPIProcess(r.t, r.bin, r.p, fmt.Sprintf("API process %d", i), append(processEnv(r.p.temporal.Config), "TENANTFLOW_API_TOKENS_FILE="+tokens))
}

// startAPIProcess runs `tenantflow api` with env (the server, the codec
// keys, the tokens file), on a free port with the repository's templates,
// and waits for its /healthz; the view sends p's requests to it.
func startAPIProcess(t testing.TB, bin string, p *platform, what string, env []string) (*harness.Process, *platform) {
	t.Helper()
	addr := harness.Addr(harness.FreePort(t))
	env = append(env,
		"TENANTFLOW_API_LISTEN="+addr,
		"TENANTFLOW_TEMPLATES_DIR="+filepath.Join(harness.RepoRoot(), "deploy", "templates"),
	)
	proc := harness.NewProcess(t, harness.RepoRoot(), env, bin, "api")
	proc.Start()
	harness.WaitFor(t, what, time.Minute, harness.HTTPOK("http://"+addr+"/healthz"))
	view := *p
	view.api = &httptest.Server{URL: "http://" + addr}
	return proc, &view
}

// reads is what a portal saw polling GET /v1/tenants/{name}.
type reads struct {
	mu       sync.Mutex
	total    int
	stale    int
	failures []string
}

func (rd *reads) add(name string, code int, stale bool, body string, err error) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.total++
	switch {
	case err != nil:
		rd.failures = append(rd.failures, fmt.Sprintf("%s %s: %v", time.Now().Format(time.StampMilli), name, err))
	case code != http.StatusOK:
		rd.failures = append(rd.failures, fmt.Sprintf("%s %s: %d %s", time.Now().Format(time.StampMilli), name, code, body))
	case stale:
		rd.stale++
	}
}

// pollTenants reads the tenants in turn through view, one request every
// ~50 ms, until stop is called; stop returns what was seen.
func pollTenants(view *platform, names []string) (stop func() *reads) {
	rd := &reads{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	client := &http.Client{Timeout: 30 * time.Second}
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			name := names[i%len(names)]
			code, stale, body, err := getTenant(ctx, client, view, name)
			if ctx.Err() != nil {
				return // the request was cut by stop, not by the API
			}
			rd.add(name, code, stale, body, err)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() *reads {
		cancel()
		<-done
		return rd
	}
}

// getTenant sends one GET /v1/tenants/{name} as ops.
func getTenant(ctx context.Context, client *http.Client, view *platform, name string) (code int, stale bool, body string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, view.api.URL+"/v1/tenants/"+name, nil)
	if err != nil {
		return 0, false, "", err
	}
	req.Header.Set("Authorization", "Bearer "+view.token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, "", err
	}
	defer resp.Body.Close()
	var out struct {
		Stale bool `json:"stale"`
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, false, "", err
	}
	_ = json.Unmarshal(raw, &out)
	if out.Stale != (resp.Header.Get(api.StaleHeader) == "1") {
		return resp.StatusCode, out.Stale, string(raw), fmt.Errorf("stale %v but header %s=%q: %s", out.Stale, api.StaleHeader, resp.Header.Get(api.StaleHeader), raw)
	}
	return resp.StatusCode, out.Stale, string(raw), nil
}

// waitReleaseUnderWay waits until the release updates a tenant or awaits
// its promotion: the moment to crash replicas mid-release.
func waitReleaseUnderWay(t *testing.T, b *releaseBench, id string) release.Release {
	t.Helper()
	var last release.Release
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if code, st := b.release(id); code == http.StatusOK {
			last = st
			if st.State != release.StateRunning || slices.Contains(slices.Collect(maps.Values(statuses(st))), release.TenantUpdating) {
				return st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("release %s never got under way; last %+v", id, last)
	return last
}

// TestReplicasKeepServingThroughAWorkerAndAnAPICrash runs two workers
// and two APIs on the full Temporal server, SIGKILLs one of each in the
// middle of a release, and requires the release to complete and every
// read of a tenant through the surviving API to answer 200 — fresh from
// a worker, or stale from the state the workflow last recorded.
func TestReplicasKeepServingThroughAWorkerAndAnAPICrash(t *testing.T) {
	r := startReplicas(t)
	apiA, apiB := r.views[0], r.views[1]
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	viaA := &releaseBench{t: t, p: apiA, reg: reg}
	viaB := &releaseBench{t: t, p: apiB, reg: reg}

	image := viaB.pushDemo("v2", false)
	staging, prod := []string{tenantName("rep-s")}, []string{tenantName("rep-p"), tenantName("rep-p")}
	viaA.provision("staging", staging...)
	viaB.provision("prod", prod...)
	all := append(append([]string(nil), staging...), prod...)

	stop := pollTenants(apiB, all)
	id := viaB.startRelease(map[string]any{"image": image, "tenants": map[string]any{"all": true},
		"canary": 1, "batchSize": 1, "maxParallel": 1, "drain": "500ms", "failureThreshold": 0})
	st := waitReleaseUnderWay(t, viaB, id)
	t.Logf("release %s under way (%s, %v): killing worker 0 and API 0", id, st.State, statuses(st))
	r.workers[0].Kill()
	r.apis[0].Kill()
	resp, err := http.Get(apiA.api.URL + "/healthz")
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "API 0 is down")

	st = viaB.waitRelease(id, 6*time.Minute, release.StateAwaitingPromotion, release.StatePaused, release.StateAborted)
	require.Equal(t, release.StateAwaitingPromotion, st.State, st)
	code, out, _ := apiB.doAs("developer-"+apiB.token, http.MethodPost, "/v1/releases/"+id+"/promote", map[string]any{"reason": "replicas test"})
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, code, out)
	st = viaB.waitRelease(id, 6*time.Minute, release.StateCompleted, release.StatePaused, release.StateAborted)
	time.Sleep(2 * time.Second) // the portal keeps reading after the release
	seen := stop()

	t.Logf("reads through API 1: %d, %d of them stale, %d failed", seen.total, seen.stale, len(seen.failures))
	require.Equal(t, release.StateCompleted, st.State, st)
	require.Zero(t, st.Failures, st)
	for _, tr := range st.Tenants {
		require.Equal(t, release.TenantUpdated, tr.Status, tr)
	}
	require.Empty(t, seen.failures, "every read through the surviving API answers 200")
	require.Greater(t, seen.total, 20, "the reads kept going through the release")
	for _, n := range all {
		code, ten, _ := apiB.do(http.MethodGet, "/v1/tenants/"+n, nil)
		require.Equal(t, http.StatusOK, code, ten)
		require.Equal(t, image, ten["image"], ten)
	}
}
