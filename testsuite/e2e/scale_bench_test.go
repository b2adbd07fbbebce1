package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/temporalx"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/kube"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// BenchmarkScale (`make bench-scale`) runs a fleet of
// TENANTFLOW_BENCH_SCALE_TENANTS OpenShift tenants (1,000) on the test
// control plane (kwok runs their pods), against the Temporal server
// TENANTFLOW_TEMPORAL_SERVER names (the dev server, or the full server on
// PostgreSQL), with a worker process and an API process of the real
// binary:
//
//  1. the driver alone provisions N tenants, TENANTFLOW_BENCH_SCALE_PARALLEL
//     (50) at a time, without Temporal; they are deleted again;
//  2. the platform provisions N tenants through the API, as many at a time:
//     tenants per minute, and the ratio of the two wall times;
//  3. a release to one tenant measures one cut-over; then a release to all
//     N with maxParallel P: wall time against ceil(N/P) × one cut-over, and
//     the Temporal server's CPU seconds per cut-over;
//  4. meanwhile GET /v1/tenants/{name} at 200 requests/s (open loop) and
//     GET /v1/tenants?pageSize=100 pages at 4/s: p50 and p99;
//  5. the worker's and the API's memory with the fleet;
//  6. a batch of P tenants decommissioned at once.
func BenchmarkScale(b *testing.B) {
	n := benchInt(b, "TENANTFLOW_BENCH_SCALE_TENANTS", 1000)
	par := benchInt(b, "TENANTFLOW_BENCH_SCALE_PARALLEL", 50)
	bin := buildTenantflow(b)
	// 110 pods per node: room for every tenant's two pods and a wave's
	// surge. Every tenant binds two volumes, the driver's run as many.
	o := startOpenShiftPlatform(b, bin, time.Hour, kube.Options{Nodes: (2*n+2*par)/100 + 2, PVs: 4*n + 10})
	server, err := o.temporal.ServerPIDs()
	if err != nil {
		b.Fatal(err)
	}
	apiProc, view := startAPIProcess(b, bin, o.platform, "API process", append(processEnv(o.temporal.Config),
		"TENANTFLOW_API_TOKENS_FILE="+writeTokensFile(b, o.token),
		"TENANTFLOW_RUNTIME="+spec.OpenShift,
	))
	b.Logf("server %s; %d tenants, %d at a time; %d fake nodes", serverKind(), n, par, (2*n+2*par)/100+2)
	b.ResetTimer()

	// 1. The driver alone.
	driverWall := o.provisionWithDriver(b, n, par)
	b.Logf("driver alone: %d tenants in %s (%.0f tenants/min)", n, driverWall.Round(time.Millisecond), perMinute(n, driverWall))

	// 2. The platform.
	names := make([]string, n)
	run := rand.Uint32() & 0xffff
	for i := range names {
		names[i] = fmt.Sprintf("sc%04d-%04x", i, run)
	}
	cpu0 := serverCPU(b, server)
	start := time.Now()
	forEach(names, par, func(name string) error {
		code, body := retryUnavailable(func() (int, map[string]any) {
			code, body, _ := view.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod"})
			return code, body
		})
		if code != http.StatusAccepted {
			return fmt.Errorf("POST %s: %d %v", name, code, body)
		}
		return waitActive(view, name, 200*time.Millisecond, 10*time.Minute)
	}, b)
	platformWall := time.Since(start)
	provCPU := serverCPU(b, server) - cpu0
	b.Logf("platform: %d tenants in %s (%.0f tenants/min), %.2f× the driver alone; server CPU %.1f s (%.0f ms per tenant)",
		n, platformWall.Round(time.Millisecond), perMinute(n, platformWall), platformWall.Seconds()/driverWall.Seconds(),
		provCPU.Seconds(), float64(provCPU.Milliseconds())/float64(n))

	// 3 and 4. One cut-over, then the fleet's release under reads.
	rb := &releaseBench{t: b, p: view}
	oneID := rb.startRelease(map[string]any{"image": digestImage("registry.test/demo-app", 2), "tenants": map[string]any{"names": names[:1]},
		"maxParallel": 1, "failureThreshold": 0, "drain": "0s"})
	promoteAndWait(b, rb, oneID, 5*time.Minute)
	one := releaseTenants(b, view, oneID)[0]
	t1 := time.Duration(one.CutoverMillis) * time.Millisecond

	// Reads alone first, on the idle fleet, for comparison.
	idle := startReads(view, names)
	idleCPU := serverCPU(b, server)
	idleStart := time.Now()
	time.Sleep(10 * time.Second)
	idleReads := idle.stop()
	readsCPU := serverCPU(b, server) - idleCPU
	// What the reads alone cost the server, per second of reading: the
	// release's CPU net of its reads is estimated from it.
	readsRate := readsCPU.Seconds() / time.Since(idleStart).Seconds()
	b.Logf("reads on the idle fleet (10 s): %s; server CPU %.1f s (%.2f cores)", idleReads, readsCPU.Seconds(), readsRate)

	readers := startReads(view, names)
	cpu0 = serverCPU(b, server)
	start = time.Now()
	id := rb.startRelease(map[string]any{"image": digestImage("registry.test/demo-app", 3), "tenants": map[string]any{"names": names},
		"batchSize": n, "maxParallel": par, "failureThreshold": 0, "drain": "0s"})
	promoteAndWait(b, rb, id, 60*time.Minute)
	releaseWall := time.Since(start)
	releaseCPU := serverCPU(b, server) - cpu0
	reads := readers.stop()
	cutovers := releasedCutovers(b, view, id, n)
	limit := time.Duration((n+par-1)/par) * t1
	netCPU := max(0, releaseCPU.Seconds()-readsRate*releaseWall.Seconds())
	b.Logf("release: one cut-over %s; %d tenants %d at a time in %s, limit %s: %.2f×; cut-over p50 %s p95 %s; server CPU %.1f s, %.0f ms per cut-over (%.0f ms net of the reads, at their idle cost)",
		t1, n, par, releaseWall.Round(time.Millisecond), limit, releaseWall.Seconds()/limit.Seconds(),
		percentile(cutovers, 0.5), percentile(cutovers, 0.95), releaseCPU.Seconds(), float64(releaseCPU.Milliseconds())/float64(n), netCPU*1000/float64(n))
	b.Logf("reads during the release: %s", reads)

	// 5. Memory.
	workerRSS, workerPeak, err := harness.ProcMemory(o.worker.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	apiRSS, apiPeak, err := harness.ProcMemory(apiProc.Pid())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("memory with %d tenants: worker %d MB (peak %d MB), API %d MB (peak %d MB)", n, workerRSS>>20, workerPeak>>20, apiRSS>>20, apiPeak>>20)
	for name, pid := range server {
		rss, peak, err := harness.ProcMemory(pid)
		if err == nil {
			b.Logf("memory: %s %d MB (peak %d MB; for PostgreSQL the postmaster alone)", name, rss>>20, peak>>20)
		}
	}

	// 6. A batch decommissioned at once.
	batch := names[n-par:]
	start = time.Now()
	decommissionBatch(b, view, batch)
	decomWall := time.Since(start)
	b.Logf("decommission: %d tenants at once in %s", len(batch), decomWall.Round(time.Millisecond))
	b.StopTimer()

	b.ReportMetric(perMinute(n, platformWall), "provision-tenants/min")
	b.ReportMetric(platformWall.Seconds()/driverWall.Seconds(), "provision/driver")
	b.ReportMetric(releaseCPU.Seconds()/float64(n), "server-cpu-s/cutover")
	b.ReportMetric(netCPU/float64(n), "server-cpu-s/cutover-net-of-reads")
	b.ReportMetric(float64(workerRSS>>20), "worker-MB")
	b.ReportMetric(float64(apiRSS>>20), "api-MB")
	reportFleetRelease(b, releaseWall, limit, reads, decomWall)
}

// decommissionBatch decommissions the tenants all at once (force: no
// confirmation) and waits until each is retained. A 503 (no worker
// answered in time: they may still be catching up after a release) is
// retried, as a client would; a 409 after a 503 means the first request
// did go through: the 503 said only that no answer came in time.
func decommissionBatch(b testing.TB, p *platform, batch []string) {
	b.Helper()
	forEach(batch, len(batch), func(name string) error {
		tried := false
		code, body := retryUnavailable(func() (int, map[string]any) {
			code, body, _ := p.do(http.MethodDelete, "/v1/tenants/"+name+"?force=true&reason=bench", nil)
			if code == http.StatusConflict && tried {
				return http.StatusAccepted, body
			}
			tried = true
			return code, body
		})
		if code != http.StatusAccepted {
			return fmt.Errorf("DELETE %s: %d %v", name, code, body)
		}
		return waitPhase(p, name, tenant.PhaseRetained, 500*time.Millisecond, 10*time.Minute)
	}, b)
}

// reportFleetRelease reports what both fleet benchmarks measure of a
// release under reads and the batch decommission after it, and fails b
// if a read failed.
func reportFleetRelease(b *testing.B, wall, limit time.Duration, reads readReport, decom time.Duration) {
	b.ReportMetric(wall.Seconds(), "release-s")
	b.ReportMetric(wall.Seconds()/limit.Seconds(), "release/limit")
	b.ReportMetric(float64(percentile(reads.get.ds, 0.5).Microseconds())/1000, "get-p50-ms")
	b.ReportMetric(float64(percentile(reads.get.ds, 0.99).Microseconds())/1000, "get-p99-ms")
	b.ReportMetric(float64(percentile(reads.list.ds, 0.99).Microseconds())/1000, "list-p99-ms")
	b.ReportMetric(decom.Seconds(), "decommission-batch-s")
	if reads.get.failed > 0 || reads.list.failed > 0 {
		b.Fatalf("failed reads during the release: %s", reads)
	}
}

// provisionWithDriver makes n tenants' objects on the cluster with the
// driver alone, par at a time, as the workflow's activities do (project
// and volumes, the services, the health wait), reports the wall time and
// deletes them, waiting until their projects are gone.
func (o *openshiftPlatform) provisionWithDriver(b *testing.B, n, par int) time.Duration {
	b.Helper()
	ctx := context.Background()
	cfg := openshift.Config{Kubeconfig: o.kubeconfig, NamespacePrefix: "tf-", RouteDomain: "apps.test", StorageClass: kube.StorageClass,
		VolumeSize: "1Gi", RolloutTimeout: 5 * time.Minute, QPS: 100}
	rc, err := cfg.RESTConfig()
	if err != nil {
		b.Fatal(err)
	}
	d, err := openshift.New(ctx, cfg, rc, harness.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	tpls, err := spec.LoadTemplates(filepath.Join(harness.RepoRoot(), "deploy", "templates"))
	if err != nil {
		b.Fatal(err)
	}
	tpl := tpls["light"]
	names := make([]string, n)
	run := rand.Uint32() & 0xffff
	for i := range names {
		names[i] = fmt.Sprintf("drv%04d-%04x", i, run)
	}
	start := time.Now()
	forEach(names, par, func(name string) error {
		secrets, err := tpl.GenerateSecrets()
		if err != nil {
			return err
		}
		env, err := tpl.Render(name, "prod", secrets)
		if err != nil {
			return err
		}
		env.Runtime = spec.OpenShift
		if err := d.CreateNetwork(ctx, name, "bench"); err != nil {
			return err
		}
		if err := d.CreateVolumes(ctx, name, "bench", env.Volumes); err != nil {
			return err
		}
		errs := make([]error, len(env.Services))
		var wg sync.WaitGroup
		for i, s := range env.Services {
			wg.Go(func() { _, errs[i] = d.StartService(ctx, name, "bench", s) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		_, err = d.WaitHealthy(ctx, env, func(string) {})
		return err
	}, b)
	wall := time.Since(start)
	forEach(names, 20, func(name string) error {
		return o.kube.CoreV1().Namespaces().Delete(ctx, d.Namespace(name), metav1.DeleteOptions{})
	}, b)
	harness.WaitFor(b, "the driver's projects deleted", 15*time.Minute, func() error {
		l, err := o.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		left := 0
		for _, ns := range l.Items {
			if len(ns.Name) > 6 && ns.Name[:6] == "tf-drv" {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d left", left)
		}
		return nil
	})
	return wall
}

// forEach runs f for every name, par at a time, and fails b with the
// first error once all have run.
func forEach(names []string, par int, f func(string) error, b testing.TB) {
	b.Helper()
	sem := make(chan struct{}, par)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(name); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}

// retryUnavailable sends a request until it is answered otherwise than
// 503, for at most a minute.
func retryUnavailable(send func() (int, map[string]any)) (int, map[string]any) {
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := send()
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(time.Second)
	}
}

// waitActive polls the tenant (its workflow's own answers) until active.
func waitActive(p *platform, name string, poll, timeout time.Duration) error {
	return waitTenant(p, name, poll, timeout, func(st map[string]any) (bool, error) {
		switch st["state"] {
		case string(tenant.StateActive):
			return true, nil
		case string(tenant.StateFailed):
			return false, fmt.Errorf("%s failed: %v", name, st["error"])
		}
		return false, nil
	})
}

// waitPhase polls the tenant until its decommission reaches phase.
func waitPhase(p *platform, name string, phase tenant.Phase, poll, timeout time.Duration) error {
	return waitTenant(p, name, poll, timeout, func(st map[string]any) (bool, error) {
		d := decommissionOf(st)
		switch d["phase"] {
		case string(phase):
			return true, nil
		case string(tenant.PhaseFailed):
			return false, fmt.Errorf("%s: decommission failed: %v", name, d)
		}
		return false, nil
	})
}

// waitTenant polls GET /v1/tenants/{name} until done says so; stale
// answers (the memo's summary) are skipped.
func waitTenant(p *platform, name string, poll, timeout time.Duration, done func(map[string]any) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		code, st, _ := p.do(http.MethodGet, "/v1/tenants/"+name, nil)
		if code == http.StatusOK && st["stale"] != true {
			last = st
			ok, err := done(st)
			if err != nil || ok {
				return err
			}
		}
		time.Sleep(poll)
	}
	return fmt.Errorf("tenant %s: not done within %s; last %v", name, timeout, last)
}

// promoteAndWait promotes the release once it waits for that (there is
// no staging tenant) and waits until it completes.
func promoteAndWait(b testing.TB, rb *releaseBench, id string, timeout time.Duration) {
	b.Helper()
	waitReleaseState(b, rb, id, timeout, release.StateAwaitingPromotion)
	code, out, _ := rb.p.doAs("developer-"+rb.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", nil)
	if code != http.StatusOK && code != http.StatusAccepted {
		b.Fatalf("promote %s: %d %v", id, code, out)
	}
	if st := waitReleaseState(b, rb, id, timeout, release.StateCompleted, release.StatePaused); st.State != release.StateCompleted {
		b.Fatalf("release %s: %s (%s)", id, st.State, st.PauseReason)
	}
}

// waitReleaseState polls the release's summary (?view=summary: its full
// state lists every tenant) once a second until it is in one of states.
func waitReleaseState(b testing.TB, rb *releaseBench, id string, timeout time.Duration, states ...release.State) releaseSummary {
	b.Helper()
	deadline := time.Now().Add(timeout)
	var last releaseSummary
	for time.Now().Before(deadline) {
		code, out, _ := rb.p.do(http.MethodGet, "/v1/releases/"+id+"?view=summary", nil)
		if code == http.StatusOK {
			var st releaseSummary
			raw, _ := json.Marshal(out)
			if err := json.Unmarshal(raw, &st); err != nil {
				b.Fatal(err)
			}
			last = st
			if slices.Contains(states, st.State) {
				return st
			}
		}
		time.Sleep(time.Second)
	}
	b.Fatalf("release %s never reached %v; last %+v", id, states, last)
	return last
}

// releaseSummary is what the benchmark reads of GET
// /v1/releases/{id}?view=summary.
type releaseSummary struct {
	State       release.State                `json:"state"`
	Phase       release.Phase                `json:"phase"`
	Wave        int                          `json:"wave"`
	PauseReason string                       `json:"pauseReason"`
	Counts      map[release.TenantStatus]int `json:"counts"`
}

// releasedCutovers requires each of the release's n tenants updated and
// returns their cut-over times.
func releasedCutovers(b testing.TB, p *platform, id string, n int) []time.Duration {
	b.Helper()
	parts := releaseTenants(b, p, id)
	if len(parts) != n {
		b.Fatalf("release %s lists %d tenants, want %d", id, len(parts), n)
	}
	cutovers := make([]time.Duration, 0, n)
	for _, tr := range parts {
		if tr.Status != release.TenantUpdated {
			b.Fatalf("release %s: tenant %s %s: %s", id, tr.Name, tr.Status, tr.Error)
		}
		cutovers = append(cutovers, time.Duration(tr.CutoverMillis)*time.Millisecond)
	}
	return cutovers
}

// releaseTenants pages through GET /v1/releases/{id}/tenants.
func releaseTenants(b testing.TB, p *platform, id string) []release.Tenant {
	b.Helper()
	var all []release.Tenant
	for {
		path := fmt.Sprintf("/v1/releases/%s/tenants?offset=%d&limit=%d", id, len(all), release.MaxTenantsPage)
		code, out, _ := p.do(http.MethodGet, path, nil)
		if code != http.StatusOK {
			b.Fatalf("GET %s: %d %v", path, code, out)
		}
		var page release.TenantPage
		raw, _ := json.Marshal(out)
		if err := json.Unmarshal(raw, &page); err != nil {
			b.Fatal(err)
		}
		all = append(all, page.Tenants...)
		if len(page.Tenants) == 0 || len(all) >= page.Total {
			return all
		}
	}
}

// latencies is one kind of read's outcomes.
type latencies struct {
	ds     []time.Duration
	failed int
	stale  int
	first  string // the first failure
}

func (l *latencies) String() string {
	return fmt.Sprintf("%d, p50 %s p99 %s max %s, %d stale, %d failed %s",
		len(l.ds), percentile(l.ds, 0.5).Round(10*time.Microsecond), percentile(l.ds, 0.99).Round(10*time.Microsecond), percentile(l.ds, 1).Round(10*time.Microsecond), l.stale, l.failed, l.first)
}

// readReport is what the readers saw.
type readReport struct{ get, list *latencies }

func (r readReport) String() string {
	return fmt.Sprintf("GET /v1/tenants/{name}: %s; GET /v1/tenants?pageSize=100: %s", r.get, r.list)
}

// readLoad sends reads on a fixed schedule (open loop: a slow answer
// does not delay the next request).
type readLoad struct {
	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	rep      readReport
}

// startReads sends GET /v1/tenants/{name} for a random tenant 200 times a
// second and walks GET /v1/tenants?pageSize=100 four pages a second.
func startReads(p *platform, names []string) *readLoad {
	rl := &readLoad{done: make(chan struct{}), rep: readReport{get: &latencies{}, list: &latencies{}}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	read := func(l *latencies, path string) (map[string]any, bool) {
		req, _ := http.NewRequest(http.MethodGet, p.api.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+p.token)
		start := time.Now()
		resp, err := client.Do(req)
		var body map[string]any
		if err == nil {
			raw, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = rerr
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: %s", resp.Status, raw)
			}
			if err == nil {
				err = json.Unmarshal(raw, &body)
			}
		}
		d := time.Since(start)
		rl.mu.Lock()
		defer rl.mu.Unlock()
		l.ds = append(l.ds, d)
		if err != nil {
			l.failed++
			if l.first == "" {
				l.first = fmt.Sprintf("(first: %s %v)", path, err)
			}
			return nil, false
		}
		if body["stale"] == true {
			l.stale++
		}
		return body, true
	}
	suffix := os.Getenv("TENANTFLOW_BENCH_SCALE_READ_QUERY") // e.g. ?fresh=true
	rl.wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-rl.done:
				return
			case <-tick.C:
				name := names[rand.IntN(len(names))]
				rl.wg.Go(func() { read(rl.rep.get, "/v1/tenants/"+name+suffix) })
			}
		}
	})
	rl.wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		token := ""
		for {
			select {
			case <-rl.done:
				return
			case <-tick.C:
				path := "/v1/tenants?pageSize=100"
				if token != "" {
					path += "&pageToken=" + token
				}
				body, ok := read(rl.rep.list, path)
				token = ""
				if ok {
					token, _ = body["nextPageToken"].(string)
				}
			}
		}
	})
	return rl
}

// stop ends the load and reports it.
func (rl *readLoad) stop() readReport {
	rl.stopOnce.Do(func() { close(rl.done) })
	rl.wg.Wait()
	return rl.rep
}

// serverCPU is the CPU the Temporal server's processes used so far.
func serverCPU(b testing.TB, pids map[string]int) time.Duration {
	b.Helper()
	var total time.Duration
	for name, pid := range pids {
		d, err := harness.ProcCPU(pid)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		total += d
	}
	return total
}

func perMinute(n int, d time.Duration) float64 { return float64(n) / d.Minutes() }

// serverKind names the Temporal server the benchmarks run against.
func serverKind() string {
	if os.Getenv(temporaltest.ServerEnv) == "cluster" {
		return "full server on PostgreSQL"
	}
	return "dev server"
}

// processEnv is what every worker and API process of a test needs: the
// server, its namespace and task queue, and the codec's keys.
func processEnv(c temporalx.Config) []string {
	return append(os.Environ(),
		"TENANTFLOW_TEMPORAL_ADDRESS="+c.Address,
		"TENANTFLOW_TEMPORAL_NAMESPACE="+c.Namespace,
		"TENANTFLOW_TASK_QUEUE="+c.TaskQueue,
		"TENANTFLOW_CODEC_KEYS="+temporaltest.TestCodecKeys,
		"TENANTFLOW_LOG_LEVEL=warn",
	)
}

// writeTokensFile writes the platform's three tokens (ops, and the
// distributor's and developer's derived from it) for API processes.
func writeTokensFile(t testing.TB, token string) string {
	t.Helper()
	raw, err := json.Marshal(map[string]string{"ops": token, "distributor": "distributor-" + token, "developer": "developer-" + token})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
