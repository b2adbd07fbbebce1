package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/domains"
	ldapacts "github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/itopfake"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

const testDomain = "apps.example.test"

// servers are the real outside systems of one test: Caddy, BIND, slapd,
// Prometheus with the blackbox exporter, and the iTop fake.
type servers struct {
	caddy *harness.Caddy
	bind  *harness.Bind
	slapd *harness.Slapd
	prom  *harness.Prometheus
	itop  *itopfake.Server
	base  string // LDAP container of tenant OUs
	// pebble is the ACME server of a Caddy that serves HTTPS
	// (startServersTLS), nil otherwise.
	pebble *harness.Pebble
}

// customerZone is the zone of customers' own domains in the test's BIND.
const customerZone = "customer.test"

func startServers(t testing.TB) (*servers, *wiring.Config) {
	return startServersWith(t, false)
}

// startServersTLS is startServers with Caddy serving the tenants over
// HTTPS, its certificates obtained from Pebble, and BIND serving the
// customers' zone too: what custom domains need.
func startServersTLS(t testing.TB) (*servers, *wiring.Config) {
	return startServersWith(t, true)
}

func startServersWith(t testing.TB, https bool) (*servers, *wiring.Config) {
	s := &servers{
		bind:  harness.StartBind(t, testDomain, customerZone),
		slapd: harness.StartSlapd(t),
		prom:  harness.StartPrometheus(t),
		itop:  itopfake.New(t, "tenantflow", "itop-password-123"),
	}
	scheme := "http"
	if https {
		scheme = "https"
		s.caddy, s.pebble = harness.StartCaddyTLS(t, "tenantflow", s.bind.Addr)
	} else {
		s.caddy = harness.StartCaddy(t, "tenantflow")
	}
	s.base = "ou=tenants," + s.slapd.Suffix
	s.slapd.AddOU(t, s.base)
	_, port, _ := strings.Cut(s.caddy.HTTPAddr, ":")
	cfg := &wiring.Config{
		Proxy: proxy.Config{Enabled: true, AdminURL: s.caddy.AdminURL, Server: s.caddy.Server, Listen: s.caddy.HTTPAddr,
			Domain: testDomain, PublicScheme: scheme, PublicPort: port},
		DNS: dns.Config{Enabled: true, Server: s.bind.Addr, Zone: testDomain, TSIGName: s.bind.KeyName, TSIGSecret: s.bind.KeySecret,
			TSIGAlgorithm: s.bind.KeyAlgorithm, TTL: 60 * time.Second, Target: "127.0.0.1", Timeout: 2 * time.Second},
		LDAP: ldapacts.Config{Enabled: true, URL: s.slapd.URL, BindDN: s.slapd.RootDN, BindPassword: s.slapd.RootPassword,
			BaseDN: s.base, Timeout: 5 * time.Second},
		CMDB: cmdb.Config{Enabled: true, URL: s.itop.URL, User: "tenantflow", Password: "itop-password-123", Auth: "form",
			Version: "1.3", Timeout: 5 * time.Second},
		Supervision: supervision.Config{Driver: supervision.DriverPrometheus, Timeout: 5 * time.Second,
			Prometheus: supervision.PrometheusConfig{SDDir: s.prom.SDDir, URL: s.prom.URL}},
		AdminUser: "admin",
	}
	if https {
		cfg.Domains = domains.Config{Resolver: s.bind.Addr, TLSAddr: s.caddy.HTTPAddr, Roots: s.pebble.Roots, Timeout: 5 * time.Second}
	}
	return s, cfg
}

// holdsNothingOf asserts that no server keeps anything of the tenant.
func (s *servers) holdsNothingOf(t *testing.T, p *platform, name string) {
	t.Helper()
	require.Empty(t, p.residue(name), "docker")
	code, _ := s.caddy.Admin(t, http.MethodGet, "/id/"+proxy.RouteIDPrefix+name, nil)
	require.Equal(t, http.StatusNotFound, code, "caddy route")
	require.Equal(t, "NXDOMAIN", s.bind.DigStatus(t, name+"."+testDomain, "A"), "dns")
	require.Equal(t, "NXDOMAIN", s.bind.DigStatus(t, "_tenantflow."+name+"."+testDomain, "TXT"), "dns owner marker")
	conn := s.slapd.Conn(t)
	_, err := conn.Search(ldap.NewSearchRequest("ou="+name+","+s.base, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject), "ldap: %v", err)
	for _, o := range s.itop.Objects("ApplicationSolution") {
		require.NotEqual(t, cmdb.ApplicationName(name), o.Fields["name"], "cmdb application")
	}
	for _, o := range s.itop.Objects("Organization") {
		require.NotEqual(t, cmdb.OrganizationCode(name), o.Fields["code"], "cmdb organization")
	}
	_, err = os.Stat(filepath.Join(s.prom.SDDir, "tenantflow-"+name+".json"))
	require.True(t, os.IsNotExist(err), "supervision target file")
}

// requireStampedBy asserts that each server's object of the tenant names
// run as its owner.
func (s *servers) requireStampedBy(t *testing.T, name, run string) {
	t.Helper()
	host := name + "." + testDomain
	require.Equal(t, []string{`"tenantflow-owner=` + name + "/" + run + `"`}, s.bind.DigShort(t, "_tenantflow."+host, "TXT"), "dns owner marker")
	res, err := s.slapd.Conn(t).Search(ldap.NewSearchRequest("ou="+name+","+s.base, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"description"}, nil))
	require.NoError(t, err)
	require.Contains(t, res.Entries[0].GetAttributeValues("description"), "Tenantflow owner "+run, "ldap OU")
	code, route := s.caddy.Admin(t, http.MethodGet, "/id/"+proxy.RouteIDPrefix+name, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(route), `"`+proxy.OwnerVar+`":"`+run+`"`, "caddy route")
	for _, o := range s.itop.Objects("ApplicationSolution") {
		if o.Fields["name"] == cmdb.ApplicationName(name) {
			require.Contains(t, o.Fields["description"], "Tenantflow owner: "+run, "cmdb application")
		}
	}
	file, err := os.ReadFile(filepath.Join(s.prom.SDDir, "tenantflow-"+name+".json"))
	require.NoError(t, err)
	require.Contains(t, string(file), `"`+supervision.OwnerLabel+`":"`+run+`"`, "supervision target file")
}

// servingTenant provisions a light tenant with every integration,
// writes hits through its URL and fetches its first directory account: it
// returns the tenant, its host name and a bind of that account (which
// binds now).
func servingTenant(t *testing.T, srv *servers, p *platform, prefix string, hits int) (name, host string, bind func() error) {
	t.Helper()
	name = tenantName(prefix)
	t.Cleanup(func() { p.destroy(name) })
	host = name + "." + testDomain
	p.requestTenant(name, "light", "prod")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	for range hits {
		code, body := proxyDo(t, srv.caddy.HTTPAddr, http.MethodPost, host, "/hits")
		require.Equal(t, http.StatusOK, code, body)
	}
	code, creds, _ := p.doAs("distributor-"+p.token, http.MethodGet, "/v1/tenants/"+name+"/credentials", nil)
	require.Equal(t, http.StatusOK, code, creds)
	bind = func() error {
		conn, err := ldap.DialURL(srv.slapd.URL)
		require.NoError(t, err)
		defer conn.Close()
		return conn.Bind(creds["dn"].(string), creds["password"].(string))
	}
	require.NoError(t, bind())
	return name, host, bind
}

func TestProvisionWithAllIntegrations(t *testing.T) {
	srv, cfg := startServers(t)
	p := startPlatformWith(t, cfg)
	name := tenantName("full")
	t.Cleanup(func() { p.destroy(name) })

	p.requestTenant(name, "light", "prod")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	host := name + "." + testDomain
	_, port, _ := strings.Cut(srv.caddy.HTTPAddr, ":")
	require.Equal(t, "http://"+host+":"+port, st["url"])
	kinds := map[string]bool{}
	for _, r := range st["resources"].([]any) {
		kinds[r.(map[string]any)["kind"].(string)] = true
	}
	require.Equal(t, map[string]bool{"route": true, "dns": true, "ldap": true, "cmdb": true, "supervision": true}, kinds)

	// Its URL through the proxy reaches the tenant's own app.
	code, page, err := srv.caddy.ProxyGet(host)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, page)
	var app map[string]any
	require.NoError(t, json.Unmarshal([]byte(page), &app))
	require.Equal(t, name, app["tenant"])

	// It resolves.
	require.Equal(t, []string{"127.0.0.1"}, srv.bind.DigShort(t, host, "A"))

	// The distributor fetches the first account once, and it binds.
	code, creds, _ := p.doAs("distributor-"+p.token, http.MethodGet, "/v1/tenants/"+name+"/credentials", nil, "Idempotency-Key", "portal-0001")
	require.Equal(t, http.StatusOK, code, creds)
	// The portal's retry with the same key (say its first answer was lost)
	// gets the same account; any new request gets 410.
	code, retried, _ := p.doAs("distributor-"+p.token, http.MethodGet, "/v1/tenants/"+name+"/credentials", nil, "Idempotency-Key", "portal-0001")
	require.Equal(t, http.StatusOK, code, retried)
	require.Equal(t, creds["password"], retried["password"])
	conn, err := ldap.DialURL(srv.slapd.URL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(creds["dn"].(string), creds["password"].(string)))
	code, again, _ := p.doAs("distributor-"+p.token, http.MethodGet, "/v1/tenants/"+name+"/credentials", nil)
	require.Equal(t, http.StatusGone, code, again)

	// The CMDB knows it, once.
	var apps int
	for _, o := range srv.itop.Objects("ApplicationSolution") {
		if o.Fields["name"] == cmdb.ApplicationName(name) {
			apps++
		}
	}
	require.Equal(t, 1, apps)

	// Every outside object names the provisioning run that made it, so a
	// tenant of the same name requested again can neither take it over nor
	// remove it.
	run, _ := st["provisionId"].(string)
	require.NotEmpty(t, run)
	srv.requireStampedBy(t, name, run)

	// Supervision probes it, and raises the alert when its app is stopped.
	probe := func(metric string) float64 {
		var out struct { // API unwraps Prometheus's "data" envelope
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		}
		if err := srv.prom.API("/api/v1/query?query="+url.QueryEscape(metric+`{tenant="`+name+`"}`), &out); err != nil || len(out.Result) == 0 {
			return -1
		}
		v, _ := strconv.ParseFloat(out.Result[0].Value[1].(string), 64)
		return v
	}
	if !assert.Eventually(t, func() bool { return probe("probe_success") == 1 }, time.Minute, 200*time.Millisecond) {
		var targets any
		_ = srv.prom.API("/api/v1/targets", &targets)
		files, _ := os.ReadDir(srv.prom.SDDir)
		t.Fatalf("probe_success never 1; targets %v; sd files %v", targets, files)
	}
	timeout := 5
	require.NoError(t, p.driver.Client().ContainerStop(context.Background(), docker.ContainerName(name, "app"), container.StopOptions{Timeout: &timeout}))
	require.Eventually(t, func() bool {
		var out struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		if err := srv.prom.API("/api/v1/alerts", &out); err != nil {
			return false
		}
		for _, a := range out.Alerts {
			if a.Labels["tenant"] == name && a.Labels["alertname"] == "TenantDown" && a.State == "firing" {
				return true
			}
		}
		return false
	}, 90*time.Second, 500*time.Millisecond, "TenantDown must fire once the app is stopped")

	p.checkHistory(tenant.WorkflowID(name), "provision-integrations-active")
}

func TestIntegrationFailureIsCompensatedEverywhere(t *testing.T) {
	srv, cfg := startServers(t)
	// Supervision is misconfigured (its target directory is missing): the
	// last step fails permanently after every other step has succeeded.
	cfg.Supervision.Prometheus.SDDir = filepath.Join(t.TempDir(), "missing")
	p := startPlatformWith(t, cfg)
	name := tenantName("undo")
	t.Cleanup(func() { p.destroy(name) })

	p.requestTenant(name, "light", "staging")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateFailed), st["state"], st)
	require.Contains(t, st["error"], supervision.ErrMisconfigured)
	srv.holdsNothingOf(t, p, name)
}

// pendingAttempts returns the attempt number of each pending activity.
func (p *platform) pendingAttempts(name string) map[string]int32 {
	desc, err := p.temporal.Client.DescribeWorkflowExecution(context.Background(), tenant.WorkflowID(name), "")
	if err != nil {
		return nil
	}
	out := map[string]int32{}
	for _, a := range desc.PendingActivities {
		out[a.ActivityType.GetName()] = a.Attempt
	}
	return out
}

// TestOutagesAreWaitedOut takes the directory, DNS server, CMDB and proxy
// down before a tenant is requested; each step keeps retrying (seen failing
// at least once), and when the servers come back the tenant completes.
func TestOutagesAreWaitedOut(t *testing.T) {
	srv, cfg := startServers(t)
	p := startPlatformWith(t, cfg)
	name := tenantName("outage")
	t.Cleanup(func() { p.destroy(name) })

	srv.slapd.Stop()
	srv.bind.Stop()
	srv.itop.SetDown(true)
	srv.caddy.Stop()
	p.requestTenant(name, "light", "staging")

	// The servers stay down until every step has failed at least once: the
	// retries, not luck, must bring the tenant up.
	want := []string{"EnsureDirectory", "EnsureDNSRecord", "RegisterInCMDB", "EnsureRoute"}
	require.Eventually(t, func() bool {
		got := p.pendingAttempts(name)
		for _, a := range want {
			if got[a] < 2 {
				return false
			}
		}
		return true
	}, time.Minute, 100*time.Millisecond, "every step should be retrying")
	srv.slapd.Start()
	srv.bind.Start()
	srv.itop.SetDown(false)
	srv.caddy.Start()

	st := p.waitState(name, 100*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.NotEmpty(t, st["accounts"])
	require.Equal(t, []string{"127.0.0.1"}, srv.bind.DigShort(t, name+"."+testDomain, "A"))
	code, _, err := srv.caddy.ProxyGet(name + "." + testDomain)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
}
