package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
)

// fleetBench is a platform behind Caddy with fleet hosts.
type fleetBench struct {
	p     *platform
	caddy *harness.Caddy
	hosts map[string]*fleetHost
}

// startFleetBench starts Caddy, the platform (placement on, the host
// watch at lostAfter) and the named hosts, with restic off-site when
// offsite is set.
func startFleetBench(b *testing.B, lostAfter time.Duration, offsite bool, names ...string) *fleetBench {
	b.Helper()
	caddy := harness.StartCaddy(b, "tenantflow")
	_, port, _ := strings.Cut(caddy.HTTPAddr, ":")
	cfg := &wiring.Config{Proxy: proxy.Config{Enabled: true, AdminURL: caddy.AdminURL, Server: caddy.Server,
		Listen: caddy.HTTPAddr, Domain: testDomain, PublicScheme: "http", PublicPort: port}}
	if offsite {
		cfg.Restic = offsiteRestic(b)
	}
	p := startPlatformWith(b, cfg, func(c *api.Config) { c.Placement, c.HostLostAfter = true, lostAfter })
	fb := &fleetBench{p: p, caddy: caddy, hosts: map[string]*fleetHost{}}
	for i, n := range names {
		hcfg := wiring.Config{Restic: cfg.Restic, FenceEvery: time.Second}
		if offsite {
			hcfg.Restic = resticOnHost(cfg.Restic, n)
		}
		fb.hosts[n] = startFleetHostWith(b, p, hcfg, n, fmt.Sprintf("z%d", i+1), "4Gi")
	}
	return fb
}

// usersOf starts one reader and one writer per tenant, through Caddy.
func (fb *fleetBench) usersOf(names []string) map[string]*users {
	out := map[string]*users{}
	for _, n := range names {
		out[n] = startUsers(fb.caddy.HTTPAddr, n+"."+testDomain, n, 1, 20*time.Millisecond, 200*time.Millisecond)
	}
	return out
}

func closeAll(us map[string]*users) {
	for _, u := range us {
		u.close()
	}
}

// requireNoWriteLost checks every tenant kept its acknowledged writes.
func (fb *fleetBench) requireNoWriteLost(b *testing.B, us map[string]*users) {
	b.Helper()
	for n, u := range us {
		hits, _ := appStateVia(b, fb.caddy.HTTPAddr, n+"."+testDomain)
		require.GreaterOrEqual(b, hits, float64(u.written.Load()), "tenant %s kept every acknowledged write", n)
	}
}

func pctl(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

// BenchmarkDrainUnderLoad drains a host of TENANTFLOW_BENCH_DRAIN_TENANTS
// (10) tenants, TENANTFLOW_BENCH_DRAIN_PARALLEL (2) at a time, onto two
// other hosts while each tenant's users read and write through Caddy:
// failed requests, each tenant's interruption as its users saw it
// (p50/p95), and the drain's total time against the sum of its moves.
func BenchmarkDrainUnderLoad(b *testing.B) {
	n := benchInt(b, "TENANTFLOW_BENCH_DRAIN_TENANTS", 10)
	parallel := benchInt(b, "TENANTFLOW_BENCH_DRAIN_PARALLEL", 2)
	fb := startFleetBench(b, time.Minute, false, "host-a", "host-b", "host-c")
	names := fb.p.placeTenants(b, "drb", "host-a", n, nil)
	us := fb.usersOf(names)
	time.Sleep(2 * time.Second)
	b.ResetTimer()
	start := time.Now()
	code, body, _ := fb.p.do(http.MethodPost, "/v1/hosts/host-a/drain", map[string]any{"maxParallel": parallel})
	require.Equal(b, http.StatusAccepted, code, body)
	d := fb.p.waitEmptying(b, "host-a", "drain", 10*time.Minute)
	b.StopTimer()
	time.Sleep(time.Second)
	closeAll(us)
	require.Equal(b, "done", d["phase"], d)
	require.Equal(b, float64(n), d["counts"].(map[string]any)["moved"], d)
	total := parseTime(b, d["finishedAt"]).Sub(parseTime(b, d["startedAt"]))
	var sum time.Duration
	var gaps []time.Duration
	failed, requests := 0, 0
	for _, e := range d["tenants"].([]any) {
		m := e.(map[string]any)
		sum += parseTime(b, m["finishedAt"]).Sub(parseTime(b, m["startedAt"]))
		u := us[m["tenant"].(string)]
		gap, f := interruption(u.between(start, parseTime(b, d["finishedAt"])))
		gaps, failed, requests = append(gaps, gap), failed+f, requests+len(u.samples)
	}
	fb.requireNoWriteLost(b, us)
	b.Logf("drain of %d tenants, %d at a time: %s (sum of the moves %s); interruption p50 %s p95 %s; %d of %d requests failed",
		n, parallel, total.Round(time.Millisecond), sum.Round(time.Millisecond), pctl(gaps, 0.5).Round(time.Millisecond),
		pctl(gaps, 0.95).Round(time.Millisecond), failed, requests)
	b.ReportMetric(total.Seconds(), "drain-s")
	b.ReportMetric(sum.Seconds(), "sum-of-moves-s")
	b.ReportMetric(total.Seconds()/sum.Seconds(), "drain/sum")
	b.ReportMetric(float64(pctl(gaps, 0.5).Milliseconds()), "interruption-p50-ms")
	b.ReportMetric(float64(pctl(gaps, 0.95).Milliseconds()), "interruption-p95-ms")
	b.ReportMetric(float64(failed), "failed-requests")
	b.ReportMetric(float64(requests), "requests")
}

// BenchmarkEvacuation kills a host of TENANTFLOW_BENCH_EVAC_TENANTS (10)
// tenants, each backed up off-site a moment before (then written to
// again), and evacuates it onto two other hosts,
// TENANTFLOW_BENCH_EVAC_PARALLEL (5) at a time, with the watch's
// threshold at TENANTFLOW_BENCH_LOST_AFTER_S (5) seconds: time from the
// kill to the host found lost, to the last tenant serving again (as its
// users saw it), and each tenant's recovery point (how much older its
// restored data is than the loss).
func BenchmarkEvacuation(b *testing.B) {
	n := benchInt(b, "TENANTFLOW_BENCH_EVAC_TENANTS", 10)
	parallel := benchInt(b, "TENANTFLOW_BENCH_EVAC_PARALLEL", 5)
	lost := time.Duration(benchInt(b, "TENANTFLOW_BENCH_LOST_AFTER_S", 5)) * time.Second
	fb := startFleetBench(b, lost, true, "host-a", "host-b", "host-c")
	names := fb.p.placeTenants(b, "evb", "host-a", n, map[string]any{
		"backups": map[string]any{"every": "1h", "offsite": true, "keep": map[string]any{"last": 3}}})
	for _, name := range names {
		fb.p.backUpOffsite(name)
	}
	us := fb.usersOf(names)
	time.Sleep(2 * time.Second) // written after the backups: what the host takes with it
	b.ResetTimer()
	killed := time.Now()
	fb.hosts["host-a"].kill(b)
	require.Eventually(b, func() bool {
		_, body, _ := fb.p.do(http.MethodGet, "/v1/hosts/host-a", nil)
		return body["state"] == "lost"
	}, 5*time.Minute, 100*time.Millisecond)
	foundLost := time.Since(killed)
	code, body, _ := fb.p.do(http.MethodPost, "/v1/hosts/host-a/evacuate", map[string]any{"maxParallel": parallel})
	require.Equal(b, http.StatusAccepted, code, body)
	ev := fb.p.waitEmptying(b, "host-a", "evacuation", 10*time.Minute)
	b.StopTimer()
	time.Sleep(time.Second)
	closeAll(us)
	require.Equal(b, "done", ev["phase"], ev)
	require.Equal(b, float64(n), ev["counts"].(map[string]any)["moved"], ev)
	var ages, serving []time.Duration
	for _, e := range ev["tenants"].([]any) {
		m := e.(map[string]any)
		ages = append(ages, time.Duration(m["recoveryAgeMs"].(float64)*float64(time.Millisecond)))
		u := us[m["tenant"].(string)]
		back := firstGoodAfter(u.between(killed, time.Now()), parseTime(b, m["servingAt"]).Add(-time.Second))
		require.False(b, back.IsZero(), "tenant %s serves again", m["tenant"])
		serving = append(serving, back.Sub(killed))
	}
	all := slices.Max(serving)
	b.Logf("%d tenants: host found lost %s after the kill (threshold %s); evacuation %s; all serving %s after the kill (p50 %s); recovery point age p50 %s, max %s",
		n, foundLost.Round(time.Millisecond), lost, parseTime(b, ev["finishedAt"]).Sub(parseTime(b, ev["startedAt"])).Round(time.Millisecond),
		all.Round(time.Millisecond), pctl(serving, 0.5).Round(time.Millisecond), pctl(ages, 0.5).Round(time.Millisecond), slices.Max(ages).Round(time.Millisecond))
	b.ReportMetric(foundLost.Seconds(), "found-lost-s")
	b.ReportMetric(parseTime(b, ev["finishedAt"]).Sub(parseTime(b, ev["startedAt"])).Seconds(), "evacuation-s")
	b.ReportMetric(all.Seconds(), "all-serving-s")
	b.ReportMetric(pctl(serving, 0.5).Seconds(), "serving-p50-s")
	b.ReportMetric(pctl(ages, 0.5).Seconds(), "recovery-age-p50-s")
	b.ReportMetric(slices.Max(ages).Seconds(), "recovery-age-max-s")
}

// firstGoodAfter is the end of the first good request sent after at.
func firstGoodAfter(samples []sample, at time.Time) time.Time {
	slices.SortFunc(samples, func(a, b sample) int { return a.start.Compare(b.start) })
	for _, s := range samples {
		if s.ok && !s.start.Before(at) {
			return s.end
		}
	}
	return time.Time{}
}
