package e2e

import (
	"cmp"
	"fmt"
	"net/http"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// hostCPU reads the machine's busy and total CPU time (jiffies, all cores)
// from /proc/stat.
func hostCPU(tb testing.TB) (busy, total uint64) {
	tb.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			tb.Fatal(err)
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// cpuCores is how many cores' worth of CPU the machine was busy with over d.
func cpuCores(tb testing.TB, d time.Duration) float64 {
	b0, t0 := hostCPU(tb)
	time.Sleep(d)
	b1, t1 := hostCPU(tb)
	return float64(b1-b0) / float64(t1-t0) * float64(goruntime.NumCPU())
}

// BenchmarkHostCapacity requests many tenants at once on one Docker engine
// (TENANTFLOW_BENCH_TENANTS, 200 by default), as a provider onboarding a
// batch of customers, and reports the time until all are active, tenants
// per minute, and the host's CPU per idle tenant once they all run
// (measured against the same host before they were requested). Every
// tenant must end active: a host that cannot take them must refuse at
// once, not fail them after retries.
//
// Then the fleet's life on that one engine: a release of a new image (from
// a local registry, pinned by digest) to every tenant,
// TENANTFLOW_BENCH_CAPACITY_PARALLEL (10) at a time, while GET
// /v1/tenants/{name} runs at 200 requests/s and the list at 4 pages/s
// (open loop); its wall time against ceil(N/P) × one tenant's cut-over;
// and a batch of P tenants decommissioned at once.
func BenchmarkHostCapacity(b *testing.B) {
	n := benchInt(b, "TENANTFLOW_BENCH_TENANTS", 200)
	par := benchInt(b, "TENANTFLOW_BENCH_CAPACITY_PARALLEL", 10)
	// The light template (the demo app and its store) by default: the
	// default template's PostgreSQL needs `make postgres-image` and about
	// 40 MB a tenant.
	tpl := cmp.Or(os.Getenv("TENANTFLOW_BENCH_TEMPLATE"), "light")
	if tpl == "default" {
		postgresImage(b)
	}
	// The batch decommission backs its tenants up first. The host's
	// admission is the worker's default unless
	// TENANTFLOW_BENCH_STARTING_TENANTS sets it (a large value: none).
	p := startPlatformWith(b, &wiring.Config{
		Backup: backup.Config{Dir: b.TempDir(), Retention: time.Hour},
		Docker: docker.Config{StartingTenants: benchInt(b, "TENANTFLOW_BENCH_STARTING_TENANTS", 0)},
	})
	rb := &releaseBench{t: b, p: p, reg: harness.StartRegistry(b, harness.RegistryOptions{})}
	images := []string{rb.pushDemo("v2", false), rb.pushDemo("v3", false)}
	time.Sleep(5 * time.Second)
	baseline := cpuCores(b, 20*time.Second)
	for i := 0; i < b.N; i++ {
		prefix := fmt.Sprintf("cap%04x-", i)
		names := make([]string, n)
		for j := range names {
			names[j] = fmt.Sprintf("%s%03d", prefix, j)
		}
		destroyed := false
		b.Cleanup(func() {
			if !destroyed { // the run stopped half-way
				destroyAll(p, names)
			}
		})

		start := time.Now()
		var g errgroup.Group
		g.SetLimit(32)
		for _, name := range names {
			g.Go(func() error {
				code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": tpl, "stage": "prod"})
				if code != http.StatusAccepted {
					return fmt.Errorf("POST %s: %d %v", name, code, body)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		requested := time.Since(start)
		failed, last := 0, time.Duration(0)
		pending := map[string]bool{}
		for _, name := range names {
			pending[name] = true
		}
		deadline := time.Now().Add(30 * time.Minute)
		mostQueued := 0 // tenants seen waiting for the host's admission in one sweep
		for len(pending) > 0 && time.Now().Before(deadline) {
			queued := 0
			for name := range pending {
				code, st, _ := p.do(http.MethodGet, "/v1/tenants/"+name, nil)
				if code != http.StatusOK {
					continue
				}
				if prog, _ := st["progress"].(map[string]any); prog != nil && strings.Contains(fmt.Sprint(prog["step"]), tenant.StepQueued) {
					queued++
				}
				switch st["state"] {
				case string(tenant.StateActive):
					delete(pending, name)
					last = time.Since(start)
				case string(tenant.StateFailed):
					delete(pending, name)
					failed++
					b.Logf("%s failed: %v", name, st["error"])
				}
			}
			mostQueued = max(mostQueued, queued)
			time.Sleep(500 * time.Millisecond)
		}
		if len(pending) > 0 || failed > 0 {
			b.Fatalf("%d tenants failed and %d were still provisioning after 30 minutes", failed, len(pending))
		}
		b.StopTimer()
		time.Sleep(15 * time.Second) // the last starts settle
		idle := cpuCores(b, 30*time.Second)
		perTenant := (idle - baseline) / float64(n)
		b.ReportMetric(last.Seconds(), "s-to-all-active")
		b.ReportMetric(float64(n)/last.Minutes(), "tenants/min")
		b.ReportMetric(perTenant*1000, "idle-millicores/tenant")
		b.ReportMetric(idle, "idle-host-cores")
		b.ReportMetric(float64(mostQueued), "most-queued")
		b.Logf("%d %s tenants requested in %s, all active after %s (%.1f/min), up to %d seen queued for the host at once; host busy %.3f cores idle before, %.3f with them: %.2f millicores per idle tenant",
			n, tpl, requested.Round(time.Millisecond), last.Round(time.Second), float64(n)/last.Minutes(), mostQueued, baseline, idle, perTenant*1000)
		b.StartTimer()
		fleetLife(b, rb, names, images, par)
		b.StopTimer()
		destroyAll(p, names)
		destroyed = true
		b.StartTimer()
	}
}

// fleetLife releases a new image to every tenant of a running fleet on
// one engine under reads, then decommissions the last par of them (the
// rest is left to the caller), and reports what it measured.
func fleetLife(b *testing.B, rb *releaseBench, names, images []string, par int) {
	p, n := rb.p, len(names)
	idle := startReads(p, names)
	time.Sleep(10 * time.Second)
	b.Logf("reads on the idle fleet (10 s): %s", idle.stop())

	oneID := rb.startRelease(map[string]any{"image": images[0], "tenants": map[string]any{"names": names[:1]},
		"maxParallel": 1, "failureThreshold": 0, "drain": "0s"})
	promoteAndWait(b, rb, oneID, 5*time.Minute)
	t1 := time.Duration(releaseTenants(b, p, oneID)[0].CutoverMillis) * time.Millisecond

	readers := startReads(p, names)
	start := time.Now()
	id := rb.startRelease(map[string]any{"image": images[1], "tenants": map[string]any{"names": names},
		"batchSize": n, "maxParallel": par, "failureThreshold": 0, "drain": "0s"})
	promoteAndWait(b, rb, id, 60*time.Minute)
	wall := time.Since(start)
	reads := readers.stop()
	cutovers := releasedCutovers(b, p, id, n)
	limit := time.Duration((n+par-1)/par) * t1
	b.Logf("release: one cut-over %s; %d tenants %d at a time in %s, limit %s: %.2f×; cut-over p50 %s p95 %s",
		t1, n, par, wall.Round(time.Millisecond), limit, wall.Seconds()/limit.Seconds(), percentile(cutovers, 0.5), percentile(cutovers, 0.95))
	b.Logf("reads during the release: %s", reads)

	batch := names[n-par:]
	start = time.Now()
	decommissionBatch(b, p, batch)
	decom := time.Since(start)
	b.Logf("decommission: %d tenants at once in %s", len(batch), decom.Round(time.Millisecond))

	reportFleetRelease(b, wall, limit, reads, decom)
}

// destroyAll removes many tenants, a few at a time.
func destroyAll(p *platform, names []string) {
	var g errgroup.Group
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error { p.destroy(name); return nil })
	}
	_ = g.Wait()
}
