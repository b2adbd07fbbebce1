package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/docker"
	ldapacts "github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// provisionDirect makes the same Docker calls the workflow makes, with the
// same concurrency (network ∥ volumes, then services ∥, then the health wait),
// but with no orchestration: the baseline for the overhead figure.
func provisionDirect(ctx context.Context, d *docker.Driver, env spec.Environment) (runtimes.Endpoint, error) {
	var wg sync.WaitGroup
	var netErr, volErr error
	wg.Add(2)
	go func() { defer wg.Done(); netErr = d.CreateNetwork(ctx, env.Tenant, "bench") }()
	go func() { defer wg.Done(); volErr = d.CreateVolumes(ctx, env.Tenant, "bench", env.Volumes) }()
	wg.Wait()
	if err := errors.Join(netErr, volErr); err != nil {
		return runtimes.Endpoint{}, err
	}
	errs := make([]error, len(env.Services))
	for i, s := range env.Services {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = d.StartService(ctx, env.Tenant, "bench", s) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return runtimes.Endpoint{}, err
	}
	return d.WaitHealthy(ctx, env, func(string) {})
}

// BenchmarkProvisionOverhead provisions one tenant through the REST API (POST,
// then GET until active, polling every 20 ms as a portal would) and, in the same run, makes the
// same Docker calls directly. It reports both times and the overhead.
func BenchmarkProvisionOverhead(b *testing.B) {
	p := startPlatform(b)
	tpls, err := spec.LoadTemplates(filepath.Join(harness.RepoRoot(), "deploy", "templates"))
	if err != nil {
		b.Fatal(err)
	}
	tpl := tpls["light"]
	ctx := context.Background()

	// Warm up both paths once (image layers, worker caches, connections).
	warm := tenantName("bench-warm")
	p.provisionViaAPI(warm)
	p.destroy(warm)

	var viaAPI, direct []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := tenantName("bench-api")
		start := time.Now()
		p.provisionViaAPI(name)
		viaAPI = append(viaAPI, time.Since(start))
		b.StopTimer()
		p.destroy(name)
		b.StartTimer()

		name = tenantName("bench-direct")
		secrets, err := tpl.GenerateSecrets()
		if err != nil {
			b.Fatal(err)
		}
		env, err := tpl.Render(name, "staging", secrets)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if _, err := provisionDirect(ctx, p.driver, env); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(start))
		b.StopTimer()
		p.destroy(name)
		b.StartTimer()
	}
	b.StopTimer()
	api, dir := median(viaAPI), median(direct)
	b.ReportMetric(float64(api.Milliseconds()), "api-ms")
	b.ReportMetric(float64(dir.Milliseconds()), "direct-ms")
	b.ReportMetric(float64(api-dir)/float64(dir)*100, "overhead-%")
	b.Logf("median over %d: via API %s, direct %s, ratio %.3f", b.N, api, dir, float64(api)/float64(dir))
	b.Logf("via API: %v", viaAPI)
	b.Logf("direct:  %v", direct)
}

func (p *platform) provisionViaAPI(name string) {
	p.t.Helper()
	p.requestTenant(name, "light", "staging")
	st := p.waitState(name, 20*time.Millisecond, time.Minute)
	if st["state"] != string(tenant.StateActive) {
		p.t.Fatalf("tenant %s: %v", name, st)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkProvisionWithIntegrations provisions a tenant with every
// integration on (real Caddy, BIND, slapd, Prometheus file_sd, the iTop
// fake) through the API and, in the same run, times each branch of the
// work alone by calling the same activities directly: the runtime chain
// (containers → route → supervision) and DNS, LDAP and CMDB. The total is
// reported against the slowest branch (the critical path).
func BenchmarkProvisionWithIntegrations(b *testing.B) {
	_, cfg := startServers(b)
	p := startPlatformWith(b, cfg)
	tpls, err := spec.LoadTemplates(filepath.Join(harness.RepoRoot(), "deploy", "templates"))
	if err != nil {
		b.Fatal(err)
	}
	tpl := tpls["light"]
	ctx := context.Background()
	d := p.deps

	warm := tenantName("bench-warm")
	p.provisionViaAPI(warm)
	p.destroy(warm)

	var totals, criticals []time.Duration
	branch := map[string][]time.Duration{}
	timeIt := func(name string, fn func() error) time.Duration {
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		el := time.Since(start)
		branch[name] = append(branch[name], el)
		return el
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := tenantName("bench-full")
		start := time.Now()
		p.provisionViaAPI(name)
		totals = append(totals, time.Since(start))
		b.StopTimer()
		p.destroy(name)

		name = tenantName("bench-branch")
		secrets, _ := tpl.GenerateSecrets()
		env, err := tpl.Render(name, "staging", secrets)
		if err != nil {
			b.Fatal(err)
		}
		host := name + "." + testDomain
		crit := timeIt("runtime+route+supervision", func() error {
			ep, err := provisionDirect(ctx, p.driver, env)
			if err != nil {
				return err
			}
			up := strings.TrimPrefix(ep.URL, "http://")
			if _, err := d.Proxy.EnsureRoute(ctx, proxy.RouteInput{Tenant: name, Upstreams: []string{up}}); err != nil {
				return err
			}
			return d.Supervision.StartSupervision(ctx, supervision.WatchInput{Tenant: name, Stage: "staging", URL: ep.URL})
		})
		for _, br := range []struct {
			name string
			fn   func() error
		}{
			{"dns", func() error {
				_, err := d.DNS.EnsureDNSRecord(ctx, dns.RecordInput{Tenant: name, Name: host})
				return err
			}},
			{"ldap", func() error {
				_, err := d.LDAP.EnsureDirectory(ctx, ldapacts.DirectoryInput{Tenant: name, AdminUser: "admin", AdminPassword: "bench-password-0123456789"})
				return err
			}},
			{"cmdb", func() error {
				_, err := d.CMDB.RegisterInCMDB(ctx, cmdb.CMDBInput{Tenant: name, Stage: "staging", Template: "light", URL: "http://" + host})
				return err
			}},
		} {
			if el := timeIt(br.name, br.fn); el > crit {
				crit = el
			}
		}
		criticals = append(criticals, crit)
		p.destroy(name)
		b.StartTimer()
	}
	b.StopTimer()
	total, crit := median(totals), median(criticals)
	b.ReportMetric(float64(total.Milliseconds()), "total-ms")
	b.ReportMetric(float64(crit.Milliseconds()), "critical-path-ms")
	b.ReportMetric(float64(total)/float64(crit), "total/critical")
	for name, ds := range branch {
		b.Logf("branch %-26s median %s", name, median(ds))
	}
	b.Logf("median over %d: total via API %s, critical path %s, ratio %.3f", b.N, total, crit, float64(total)/float64(crit))
}

// BenchmarkImageBuild measures, through the REST API, a cold build+push of
// a new commit (its binary differs, so its layer is new to the engine and
// the registry) and, in the same run, a no-op rebuild of the same commit,
// which finds the image in the registry and builds nothing.
func BenchmarkImageBuild(b *testing.B) {
	bb := startBuildBench(b)
	files := demoRepository(b)
	binary := files["demo-app"]
	var cold, noop []time.Duration
	for i := 0; i < b.N; i++ {
		// Trailing bytes change the binary's layer without changing the ELF.
		files["demo-app"] = append(append([]byte(nil), binary...), []byte(fmt.Sprintf("\nbuild %d %d", i, time.Now().UnixNano()))...)
		sha := bb.project.Commit("main", files, fmt.Sprintf("change %d", i))
		for _, out := range []*[]time.Duration{&cold, &noop} {
			start := time.Now()
			code, body, _ := bb.do(http.MethodPost, "/v1/builds", map[string]any{"project": demoProject, "ref": sha})
			if code != http.StatusAccepted {
				b.Fatalf("POST /v1/builds: %d %v", code, body)
			}
			st := bb.waitBuild(body["id"].(string), 5*time.Minute)
			if st["state"] != string(imagebuild.StateSucceeded) {
				b.Fatalf("build: %v", st)
			}
			*out = append(*out, time.Since(start))
			bb.waitClosed(demoProject, sha, "")
			if (out == &noop) != (st["skipped"] == true) {
				b.Fatalf("skipped=%v on the %s build: %v", st["skipped"], map[bool]string{true: "no-op", false: "cold"}[out == &noop], st)
			}
		}
	}
	b.StopTimer()
	c, n := median(cold), median(noop)
	b.ReportMetric(float64(c.Milliseconds()), "cold-build-push-ms")
	b.ReportMetric(float64(n.Milliseconds()), "noop-rebuild-ms")
	b.Logf("median over %d: cold build+push %s, no-op rebuild %s", b.N, c, n)
}

// BenchmarkRelease releases a new image to N tenants under load through
// the proxy and reports failed requests, the release's wall time against
// the limit ceil(N/parallel) × one tenant's cut-over time (measured in the
// same run, under the same load, by a release to one tenant just before),
// and the per-tenant cut-over p50/p95, for two degrees of parallelism: the
// host's core count and more. Three images rotate so that every cut-over
// of every iteration is real.
func BenchmarkRelease(b *testing.B) {
	const n = 20
	rb := startReleaseBench(b)
	images := []string{rb.pushDemo("v2", false), rb.pushDemo("v3", false), rb.pushDemo("v4", false)}
	tenants := make([]string, n)
	for i := range tenants {
		tenants[i] = tenantName("bench-rel")
	}
	rb.provision("prod", tenants...)
	// 40 users, a request every 200 ms each: 200 requests/s through Caddy,
	// which leaves the two cores to the cut-overs being measured.
	load := rb.load(tenants, 200*time.Millisecond, "v1", "v2", "v3", "v4")

	// run releases image to the named tenants and promotes it as soon as it
	// waits for that (there is no staging tenant here).
	run := func(b *testing.B, image string, names []string, maxParallel int) (time.Duration, release.Release) {
		start := time.Now()
		id := rb.startRelease(map[string]any{"image": image, "tenants": map[string]any{"names": names},
			"batchSize": len(names), "maxParallel": maxParallel, "failureThreshold": 0}) // the default 2 s drain
		rb.waitRelease(id, 2*time.Minute, release.StateAwaitingPromotion)
		code, out, _ := rb.p.doAs("developer-"+rb.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", nil)
		if code != http.StatusOK {
			b.Fatalf("promote: %d %v", code, out)
		}
		st := rb.waitRelease(id, 5*time.Minute, release.StateCompleted, release.StatePaused)
		if st.State != release.StateCompleted || st.Failures > 0 {
			b.Fatalf("release %s: %s, %d failures: %+v", id, st.State, st.Failures, st.Tenants)
		}
		for _, tr := range st.Tenants {
			if tr.Status != release.TenantUpdated {
				b.Fatalf("release %s: tenant %s %s", id, tr.Name, tr.Status)
			}
		}
		return time.Since(start), st
	}

	fleet := -1 // index of the image the fleet runs (-1: the template's)
	for _, parallel := range []int{2, 5} {
		b.Run(fmt.Sprintf("tenants=%d/parallel=%d", n, parallel), func(b *testing.B) {
			var ratios, totals, limits []float64
			var cutovers []time.Duration
			before := load.Snapshot()
			for i := 0; i < b.N; i++ {
				one, all := (fleet+1)%3, (fleet+2)%3
				_, single := run(b, images[one], tenants[:1], 1)
				t1 := time.Duration(single.Tenants[0].CutoverMillis) * time.Millisecond
				total, st := run(b, images[all], tenants, parallel)
				fleet = all
				limit := time.Duration((n+parallel-1)/parallel) * t1
				totals = append(totals, total.Seconds())
				limits = append(limits, limit.Seconds())
				ratios = append(ratios, float64(total)/float64(limit))
				for _, tr := range st.Tenants {
					cutovers = append(cutovers, time.Duration(tr.CutoverMillis)*time.Millisecond)
				}
				b.Logf("one tenant's cut-over %s; %d tenants, %d at a time: %s (limit %s, ratio %.2f)",
					t1, n, parallel, total.Round(time.Millisecond), limit, float64(total)/float64(limit))
			}
			after := load.Snapshot()
			sort.Slice(cutovers, func(i, j int) bool { return cutovers[i] < cutovers[j] })
			pct := func(p float64) time.Duration { return cutovers[int(p*float64(len(cutovers)-1))] }
			failed := len(after.Failures) - len(before.Failures)
			b.ReportMetric(float64(failed), "failed-requests")
			b.ReportMetric(float64(after.Requests-before.Requests), "requests")
			b.ReportMetric(medianOf(totals), "total-s")
			b.ReportMetric(medianOf(limits), "limit-s")
			b.ReportMetric(medianOf(ratios), "total/limit")
			b.ReportMetric(float64(pct(0.5).Milliseconds()), "cutover-p50-ms")
			b.ReportMetric(float64(pct(0.95).Milliseconds()), "cutover-p95-ms")
			if failed > 0 {
				b.Fatalf("%d requests failed; first: %s", failed, after.Failures[len(before.Failures)])
			}
		})
	}
	rep := load.Stop()
	b.Logf("load: %d requests, %d failed, %d TCP handshakes reset by a proxy reload and re-dialled", rep.Requests, len(rep.Failures), rep.DialResets)
}

func medianOf(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// BenchmarkDecommissionBackup backs up and verifies a tenant's 200 MB Docker
// volume (40 random 5 MB files and 200 small ones) through the backup
// activities and the Docker driver (scratch volumes on the engine), and in
// the same run times a plain `tar -cf` of the same volume directory into
// the same backup location. Target: backup+verify at least 0.8x of tar.
func BenchmarkDecommissionBackup(b *testing.B) {
	if os.Geteuid() != 0 {
		harness.Unavailable(b, "reading Docker volume mountpoints needs root")
	}
	tarCmd, err := exec.LookPath("tar")
	if err != nil {
		harness.Unavailable(b, "no tar to compare with")
	}
	ctx := context.Background()
	d := harness.Docker(b)
	tenant := fmt.Sprintf("bench-bak-%06d", time.Now().UnixNano()%1e6)
	b.Cleanup(func() {
		_ = d.RemoveVolumes(ctx, tenant, "")
		for i := range b.N {
			_ = d.RemoveScratchVolume(ctx, tenant, fmt.Sprintf("data-verify-%d", i))
		}
	})
	if err := d.CreateVolumes(ctx, tenant, "bench", []string{"data"}); err != nil {
		b.Fatal(err)
	}
	src, err := d.VolumeDir(ctx, tenant, "bench", "data")
	if err != nil {
		b.Fatal(err)
	}
	size := harness.WriteBenchVolume(b, src)
	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o700); err != nil {
		b.Fatal(err)
	}
	a, err := backup.New(backup.Config{Dir: filepath.Join(dir, "backups"), Retention: time.Hour}, d, harness.Logger(b))
	if err != nil {
		b.Fatal(err)
	}
	plain := filepath.Join(dir, "backups", "plain.tar")
	var tarT, backupT, verifyT time.Duration
	b.ResetTimer()
	for i := range b.N {
		_ = os.Remove(plain)
		start := time.Now()
		if out, err := exec.Command(tarCmd, "-cf", plain, "-C", src, ".").CombinedOutput(); err != nil {
			b.Fatalf("tar: %v: %s", err, out)
		}
		tarT += time.Since(start)

		in := backup.BackupInput{Tenant: tenant, Owner: "bench", ID: fmt.Sprintf("bench-%d", i), Volumes: []string{"data"}}
		start = time.Now()
		bk, err := a.BackupVolumes(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := a.VerifyBackup(ctx, backup.BackupRef{Tenant: tenant, Owner: "bench", ID: in.ID, ManifestSHA256: bk.ManifestSHA256}); err != nil {
			b.Fatal(err)
		}
		backupT += mid.Sub(start)
		verifyT += time.Since(mid)
		if err := a.RemoveBackup(ctx, backup.BackupRef{Tenant: tenant, ID: in.ID}); err != nil {
			b.Fatal(err)
		}
	}
	mb := float64(size) / (1 << 20) * float64(b.N)
	rate := func(d time.Duration) float64 { return mb / d.Seconds() }
	b.ReportMetric(float64(size)/(1<<20), "volume-MB")
	b.ReportMetric(rate(tarT), "tar-MB/s")
	b.ReportMetric(rate(backupT), "backup-MB/s")
	b.ReportMetric(rate(verifyT), "verify-MB/s")
	b.ReportMetric(rate(backupT+verifyT), "backup+verify-MB/s")
	b.ReportMetric(tarT.Seconds()/(backupT+verifyT).Seconds(), "ratio")
}
