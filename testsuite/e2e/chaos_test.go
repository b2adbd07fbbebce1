package e2e

// The chaos suite: crashes and outages at random moments, against the real
// engine, Caddy, BIND, slapd, Prometheus, the iTop fake and a dev server,
// with the worker as a process of its own. Each test draws its moments from
// a seed it logs; TENANTFLOW_CHAOS_SEED=<seed> replays the same moments.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// chaosRand is the test's source of random moments, from
// TENANTFLOW_CHAOS_SEED or the clock; the seed is logged so a failure can
// be replayed.
func chaosRand(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TENANTFLOW_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "TENANTFLOW_CHAOS_SEED")
		seed = v
	}
	t.Logf("chaos seed %d (replay: TENANTFLOW_CHAOS_SEED=%d go test -run '^%s$' ./testsuite/e2e/)", seed, seed, t.Name())
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// between is a random duration in [lo, hi).
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// workerEnv is the environment of a worker process configured as cfg's
// integrations are (the settings startServers makes).
func workerEnv(cfg *wiring.Config) []string {
	env := []string{"TENANTFLOW_LDAP_ADMIN_USER=" + cfg.AdminUser}
	if c := cfg.Proxy; c.Enabled {
		env = append(env, "TENANTFLOW_PROXY_ENABLED=true", "TENANTFLOW_PROXY_ADMIN_URL="+c.AdminURL, "TENANTFLOW_PROXY_SERVER="+c.Server,
			"TENANTFLOW_PROXY_LISTEN="+c.Listen, "TENANTFLOW_PROXY_DOMAIN="+c.Domain, "TENANTFLOW_PROXY_PUBLIC_SCHEME="+c.PublicScheme,
			"TENANTFLOW_PROXY_PUBLIC_PORT="+c.PublicPort)
	}
	if c := cfg.DNS; c.Enabled {
		env = append(env, "TENANTFLOW_DNS_ENABLED=true", "TENANTFLOW_DNS_SERVER="+c.Server, "TENANTFLOW_DNS_ZONE="+c.Zone,
			"TENANTFLOW_DNS_TSIG_NAME="+c.TSIGName, "TENANTFLOW_DNS_TSIG_SECRET="+c.TSIGSecret, "TENANTFLOW_DNS_TSIG_ALGORITHM="+c.TSIGAlgorithm,
			"TENANTFLOW_DNS_TTL="+c.TTL.String(), "TENANTFLOW_DNS_TARGET="+c.Target, "TENANTFLOW_DNS_TIMEOUT="+c.Timeout.String())
	}
	if c := cfg.LDAP; c.Enabled {
		env = append(env, "TENANTFLOW_LDAP_ENABLED=true", "TENANTFLOW_LDAP_URL="+c.URL, "TENANTFLOW_LDAP_BIND_DN="+c.BindDN,
			"TENANTFLOW_LDAP_BIND_PASSWORD="+c.BindPassword, "TENANTFLOW_LDAP_BASE_DN="+c.BaseDN, "TENANTFLOW_LDAP_TIMEOUT="+c.Timeout.String())
	}
	if c := cfg.CMDB; c.Enabled {
		env = append(env, "TENANTFLOW_CMDB_ENABLED=true", "TENANTFLOW_CMDB_URL="+c.URL, "TENANTFLOW_CMDB_USER="+c.User,
			"TENANTFLOW_CMDB_PASSWORD="+c.Password, "TENANTFLOW_CMDB_AUTH="+c.Auth, "TENANTFLOW_CMDB_VERSION="+c.Version,
			"TENANTFLOW_CMDB_TIMEOUT="+c.Timeout.String())
	}
	if c := cfg.Supervision; c.Enabled() {
		env = append(env, "TENANTFLOW_SUPERVISION_DRIVER="+c.Driver, "TENANTFLOW_SUPERVISION_TIMEOUT="+c.Timeout.String(),
			"TENANTFLOW_SUPERVISION_PROMETHEUS_SD_DIR="+c.Prometheus.SDDir, "TENANTFLOW_SUPERVISION_PROMETHEUS_URL="+c.Prometheus.URL)
	}
	return env
}

// chaosPlatform is the platform with every integration on and the worker
// as a process that the test kills and restarts.
type chaosPlatform struct {
	*platform
	srv    *servers
	bin    string
	env    []string
	worker *exec.Cmd
	kills  int
}

func startChaosPlatform(t *testing.T, tmp *temporaltest.Temporal) *chaosPlatform {
	t.Helper()
	bin := buildTenantflow(t)
	srv, cfg := startServers(t)
	p := startPlatformOnServer(t, tmp, spec.Docker, nil)
	// The test's own clients of the integrations, to clean up after it.
	deps, err := wiring.NewIntegrations(*cfg, harness.Logger(t))
	require.NoError(t, err)
	p.deps = deps
	c := &chaosPlatform{platform: p, srv: srv, bin: bin, env: workerEnv(cfg)}
	c.startWorker()
	return c
}

func (c *chaosPlatform) startWorker() {
	c.worker = startWorkerProcess(c.t, c.bin, c.platform, c.env...)
}

// crashWorker kills the worker process (SIGKILL: no shutdown, activities
// cut off mid-call) and starts a new one after pause.
func (c *chaosPlatform) crashWorker(pause time.Duration) {
	require.NoError(c.t, c.worker.Process.Signal(syscall.SIGKILL))
	_ = c.worker.Wait()
	c.kills++
	time.Sleep(pause)
	c.startWorker()
}

// settled tells whether every tenant ended its provisioning.
func (c *chaosPlatform) settled(names []string) bool {
	for _, n := range names {
		code, st, _ := c.do(http.MethodGet, "/v1/tenants/"+n, nil)
		if code != http.StatusOK || (st["state"] != string(tenant.StateActive) && st["state"] != string(tenant.StateFailed)) {
			return false
		}
	}
	return true
}

// census counts what every system holds of the chaos tenants (those whose
// name has prefix), per tenant and kind. An object of no such tenant, or
// stamped with another run than the tenant's, is an orphan: a leftover of
// an attempt that should have been reused or undone.
type census struct {
	prefix string
	owners map[string]string // tenant → its provisioning run
	per    map[string]map[string]int
	orphan []string
}

// add counts one object; owner is its run stamp where the test reads it
// here ("" where requireStampedBy checks it).
func (cs *census) add(kind, what, tenant, owner string) {
	if !strings.HasPrefix(tenant, cs.prefix) {
		return
	}
	if run, ok := cs.owners[tenant]; !ok || (owner != "" && owner != run) {
		cs.orphan = append(cs.orphan, fmt.Sprintf("%s %s (tenant %s, run %q)", kind, what, tenant, owner))
		return
	}
	cs.set(tenant, kind, cs.per[tenant][kind]+1)
}

// set records how many objects of kind the tenant has.
func (cs *census) set(tenant, kind string, n int) {
	if cs.per[tenant] == nil {
		cs.per[tenant] = map[string]int{}
	}
	cs.per[tenant][kind] = n
}

// duplicates lists each tenant kind held more than once, and fails the test
// for one missing.
func (cs *census) duplicates(t *testing.T, kinds ...string) []string {
	t.Helper()
	var dup []string
	for tenant := range cs.owners {
		for _, kind := range kinds {
			switch n := cs.per[tenant][kind]; {
			case n > 1:
				dup = append(dup, fmt.Sprintf("%s %s: %d", tenant, kind, n))
			case n < 1:
				t.Errorf("%s %s: missing", tenant, kind)
			}
		}
	}
	return dup
}

// requireExactlyOneOfEach checks that each tenant is active and has exactly
// its own objects everywhere, each stamped with its provisioning run; it
// returns the duplicates and orphans it found.
func (c *chaosPlatform) requireExactlyOneOfEach(t *testing.T, prefix string, names []string) (dup, orphan []string) {
	t.Helper()
	cs := &census{prefix: prefix, owners: map[string]string{}, per: map[string]map[string]int{}}
	for _, n := range names {
		// The workflow's own answer: a worker just restarted on a busy
		// machine may miss the query timeout, and the API then answers
		// the memo's summary (stale, without the provisioning's id).
		st := c.waitFor(n, 200*time.Millisecond, time.Minute, "answered by its workflow", func(map[string]any) bool { return true })
		require.Equal(t, string(tenant.StateActive), st["state"], "%s: %v", n, st)
		cs.owners[n] = st["provisionId"].(string)
	}
	c.countEngine(t, cs)
	c.srv.countOutside(t, cs)
	for _, n := range names {
		// DNS: one address record and one owner marker.
		host := n + "." + testDomain
		cs.set(n, "dns A", len(c.srv.bind.DigShort(t, host, "A")))
		cs.set(n, "dns owner TXT", len(c.srv.bind.DigShort(t, "_tenantflow."+host, "TXT")))
		c.srv.requireStampedBy(t, n, cs.owners[n])
	}
	dup = cs.duplicates(t, "container app", "container db", "volume data", "volume dbdata", "network",
		"route", "ldap ou", "cmdb application", "target file", "dns A", "dns owner TXT")
	return dup, cs.orphan
}

// countEngine counts the tenants' containers (each must run), volumes and
// networks, by their labels.
func (c *chaosPlatform) countEngine(t *testing.T, cs *census) {
	ctx := context.Background()
	managed := filters.NewArgs(filters.Arg("label", docker.LabelManaged+"=true"))
	cl := c.driver.Client()
	ctrs, err := cl.ContainerList(ctx, container.ListOptions{All: true, Filters: managed})
	require.NoError(t, err)
	for _, ct := range ctrs {
		if strings.HasPrefix(ct.Labels[docker.LabelTenant], cs.prefix) {
			require.Equal(t, "running", ct.State, ct.Names[0])
		}
		cs.add("container "+ct.Labels[docker.LabelService], ct.Names[0], ct.Labels[docker.LabelTenant], ct.Labels[docker.LabelOwner])
	}
	vols, err := cl.VolumeList(ctx, volume.ListOptions{Filters: managed})
	require.NoError(t, err)
	for _, v := range vols.Volumes {
		cs.add("volume "+v.Labels[docker.LabelVolume], v.Name, v.Labels[docker.LabelTenant], v.Labels[docker.LabelOwner])
	}
	nets, err := cl.NetworkList(ctx, network.ListOptions{Filters: managed})
	require.NoError(t, err)
	for _, nw := range nets {
		cs.add("network", nw.Name, nw.Labels[docker.LabelTenant], nw.Labels[docker.LabelOwner])
	}
}

// countOutside counts the tenants' Caddy routes, LDAP OUs, iTop
// applications and Prometheus target files.
func (s *servers) countOutside(t *testing.T, cs *census) {
	code, raw := s.caddy.Admin(t, http.MethodGet, "/config/apps/http/servers/"+s.caddy.Server+"/routes", nil)
	require.Equal(t, http.StatusOK, code, string(raw))
	var routes []struct {
		Match []struct {
			Host []string `json:"host"`
		} `json:"match"`
	}
	require.NoError(t, json.Unmarshal(raw, &routes))
	for _, r := range routes {
		for _, m := range r.Match {
			for _, h := range m.Host {
				cs.add("route", h, strings.TrimSuffix(h, "."+testDomain), "")
			}
		}
	}
	res, err := s.slapd.Conn(t).Search(ldap.NewSearchRequest(s.base, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=organizationalUnit)", []string{"ou"}, nil))
	require.NoError(t, err)
	for _, e := range res.Entries {
		cs.add("ldap ou", e.DN, e.GetAttributeValue("ou"), "")
	}
	for _, o := range s.itop.Objects("ApplicationSolution") {
		cs.add("cmdb application", o.Fields["name"], strings.TrimPrefix(o.Fields["name"], cmdb.ApplicationName("")), "")
	}
	files, err := filepath.Glob(filepath.Join(s.prom.SDDir, "tenantflow-*.json"))
	require.NoError(t, err)
	for _, f := range files {
		cs.add("target file", f, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "tenantflow-"), ".json"), "")
	}
}

// TestChaosWorkerKilledDuringProvisioning: tenants are requested at once,
// and more while the worker is killed (SIGKILL) at random moments twenty
// times and started again each time. Every tenant ends active with exactly
// its containers, volumes, network, one route, one DNS record, one LDAP
// OU, one CMDB application and one supervision target, each of its own
// run; nothing of any tenant is duplicated or left orphaned.
func TestChaosWorkerKilledDuringProvisioning(t *testing.T) {
	r := chaosRand(t)
	c := startChaosPlatform(t, nil)
	prefix := fmt.Sprintf("chaos%04x-", r.Uint32()&0xffff)
	var names []string
	request := func(n int) {
		for range n {
			name := fmt.Sprintf("%s%02d", prefix, len(names))
			t.Cleanup(func() { c.destroy(name) })
			// Some take longer to become healthy, so kills land in
			// every step of provisioning.
			template := "light"
			if r.IntN(3) == 0 {
				template = "slow"
			}
			c.requestTenant(name, template, "prod")
			names = append(names, name)
		}
	}
	request(12)
	const kills = 20
	for i := range kills {
		time.Sleep(between(r, 300*time.Millisecond, 2500*time.Millisecond))
		c.crashWorker(between(r, 0, 700*time.Millisecond))
		if i < 4 {
			request(1) // requested while the worker is down or just back
		}
	}
	unsettled := 0
	for _, n := range names {
		code, st, _ := c.do(http.MethodGet, "/v1/tenants/"+n, nil)
		if code != http.StatusOK || st["state"] != string(tenant.StateActive) {
			unsettled++
		}
	}
	require.Eventually(t, func() bool { return c.settled(names) }, 5*time.Minute, 250*time.Millisecond)

	dup, orphan := c.requireExactlyOneOfEach(t, prefix, names)
	t.Logf("chaos: %d worker kills, %d tenants (%d still provisioning after the last kill), %d duplicates, %d orphans",
		c.kills, len(names), unsettled, len(dup), len(orphan))
	require.Empty(t, dup, "duplicated objects")
	require.Empty(t, orphan, "orphaned objects")
	for _, n := range names {
		code, page, err := c.srv.caddy.ProxyGet(n + "." + testDomain)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, page)
	}
}

// TestChaosWorkerKilledDuringReleaseUnderLoad: a release over staging and
// prod while users hit every tenant through Caddy, and the worker is
// killed at random moments. No request fails, every tenant ends on the new
// image with exactly one instance of it.
func TestChaosWorkerKilledDuringReleaseUnderLoad(t *testing.T) {
	harness.RequireAcceptQueueMigration(t)
	r := chaosRand(t)
	c := startChaosPlatform(t, nil)
	c.releaseUnderChaos(t, r, 8, func(time.Duration) { c.crashWorker(between(r, 0, 500*time.Millisecond)) })
	t.Logf("chaos: %d worker kills during the release", c.kills)
	require.GreaterOrEqual(t, c.kills, 3)
}

// TestChaosTemporalServerKilledMidRelease: the Temporal server is killed
// (SIGKILL) mid-release and started again on the same database. The
// release completes, users see no failure, nothing is duplicated.
func TestChaosTemporalServerKilledMidRelease(t *testing.T) {
	harness.RequireAcceptQueueMigration(t)
	r := chaosRand(t)
	tmp := temporaltest.StartPersistent(t)
	c := startChaosPlatform(t, tmp.Temporal)
	serverKills := 0
	c.releaseUnderChaos(t, r, 3, func(down time.Duration) {
		tmp.Kill()
		serverKills++
		time.Sleep(down)
		tmp.Start()
	})
	t.Logf("chaos: %d Temporal server kills during the release", serverKills)
	require.GreaterOrEqual(t, serverKills, 2)
}

// releaseUnderChaos provisions staging and prod tenants, then releases a
// new image to them under load, calling crash at random moments until the
// release ends (at most crashes times); it checks that no request failed and that each tenant
// runs exactly one instance of the new image.
func (c *chaosPlatform) releaseUnderChaos(t *testing.T, r *rand.Rand, crashes int, crash func(down time.Duration)) {
	b := &releaseBench{t: t, p: c.platform, srv: c.srv, reg: harness.StartRegistry(t, harness.RegistryOptions{})}
	image := b.pushDemo("v2", false)
	staging := []string{tenantName("cs"), tenantName("cs")}
	prod := []string{tenantName("cp"), tenantName("cp"), tenantName("cp"), tenantName("cp")}
	b.provision("staging", staging...)
	b.provision("prod", prod...)
	all := append(append([]string(nil), staging...), prod...)

	load := b.load(all, 5*time.Millisecond, "v1", "v2")
	id := b.startRelease(map[string]any{"image": image, "tenants": map[string]any{"all": true},
		"canary": 1, "batchSize": 2, "maxParallel": 2, "drain": "1s", "failureThreshold": 0})
	deadline := time.Now().Add(6 * time.Minute)
	promoted := false
	for time.Now().Before(deadline) {
		code, st := b.release(id)
		if code == http.StatusOK && slices.Contains([]release.State{release.StateCompleted, release.StatePaused, release.StateAborted}, st.State) {
			break
		}
		if code == http.StatusOK && st.State == release.StateAwaitingPromotion && !promoted {
			code, out, _ := c.doAs("developer-"+c.token, http.MethodPost, "/v1/releases/"+id+"/promote", map[string]any{"reason": "chaos"})
			require.Equal(t, http.StatusOK, code, out)
			promoted = true
		}
		time.Sleep(between(r, 200*time.Millisecond, 2*time.Second))
		if code, st := b.release(id); crashes > 0 && code == http.StatusOK && (st.State == release.StateRunning || st.State == release.StateAwaitingPromotion) {
			crash(between(r, 200*time.Millisecond, 2*time.Second))
			crashes--
		}
	}
	st := b.waitRelease(id, 3*time.Minute, release.StateCompleted, release.StatePaused, release.StateAborted)
	time.Sleep(300 * time.Millisecond)
	requireNoFailedRequest(t, load.Stop())
	require.Equal(t, release.StateCompleted, st.State, st)
	for _, tr := range st.Tenants {
		require.Equal(t, release.TenantUpdated, tr.Status, tr)
	}
	for _, n := range all {
		require.Equal(t, "v2", b.version(n), n)
		require.Equal(t, map[string]string{docker.InstanceName(n, "app", 1): image}, b.appContainers(n), "one instance of the new image")
		require.Len(t, c.residue(n), 2+2+1, "%s: 2 containers, 2 volumes, 1 network", n)
	}
}

// TestChaosOutsideSystemsDownDuringProvisioning: Caddy, slapd and BIND go
// down at random moments while tenants are provisioned, each for a few
// seconds, and come back. Every step retries through the outage; every
// tenant ends active with exactly one of each of its objects.
func TestChaosOutsideSystemsDownDuringProvisioning(t *testing.T) {
	r := chaosRand(t)
	c := startChaosPlatform(t, nil)
	prefix := fmt.Sprintf("down%04x-", r.Uint32()&0xffff)
	var names []string
	for i := range 8 {
		name := fmt.Sprintf("%s%02d", prefix, i)
		t.Cleanup(func() { c.destroy(name) })
		c.requestTenant(name, "light", "prod")
		names = append(names, name)
	}
	type system struct {
		name        string
		stop, start func()
	}
	systems := []system{
		{"caddy", c.srv.caddy.Stop, c.srv.caddy.Start},
		{"slapd", c.srv.slapd.Stop, c.srv.slapd.Start},
		{"bind", c.srv.bind.Stop, c.srv.bind.Start},
	}
	outages := 0
	done := make(chan struct{})
	for _, s := range systems {
		// Each system goes down once or twice, on its own schedule, so
		// outages overlap at times.
		down := []time.Duration{between(r, 0, 2*time.Second), between(r, 2*time.Second, 6*time.Second)}
		up := []time.Duration{between(r, 2*time.Second, 8*time.Second), between(r, 2*time.Second, 8*time.Second)}
		n := 1 + r.IntN(2)
		outages += n
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range n {
				time.Sleep(down[i])
				s.stop()
				time.Sleep(up[i])
				s.start()
			}
		}()
	}
	for range systems {
		<-done
	}
	unsettled := 0
	for _, n := range names {
		if code, st, _ := c.do(http.MethodGet, "/v1/tenants/"+n, nil); code != http.StatusOK || st["state"] != string(tenant.StateActive) {
			unsettled++
		}
	}
	require.Eventually(t, func() bool { return c.settled(names) }, 5*time.Minute, 250*time.Millisecond)
	dup, orphan := c.requireExactlyOneOfEach(t, prefix, names)
	t.Logf("chaos: %d outages of caddy, slapd and bind, %d tenants (%d still provisioning when all were back), %d duplicates, %d orphans",
		outages, len(names), unsettled, len(dup), len(orphan))
	require.Empty(t, dup, "duplicated objects")
	require.Empty(t, orphan, "orphaned objects")
}
