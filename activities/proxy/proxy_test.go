package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

const domain = "apps.example.test"

// upstream is a tenant app answering body to every request; it returns its
// host:port, the dial address a route points to.
func upstream(t *testing.T, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func newActivities(t *testing.T, caddy *harness.Caddy) *proxy.Activities {
	t.Helper()
	return proxy.NewActivities(newClient(t, caddy))
}

func newClient(t *testing.T, caddy *harness.Caddy) *proxy.Client {
	t.Helper()
	_, port, _ := net.SplitHostPort(caddy.HTTPAddr)
	c, err := proxy.NewClient(proxy.Config{
		Enabled:      true,
		AdminURL:     caddy.AdminURL,
		Server:       "tenantflow",
		Listen:       caddy.HTTPAddr,
		Domain:       domain,
		PublicScheme: "http",
		PublicPort:   port,
	}, harness.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// routes reads the tenant server's routes from Caddy.
func routes(t *testing.T, caddy *harness.Caddy) []map[string]any {
	t.Helper()
	status, body := caddy.Admin(t, http.MethodGet, "/config/apps/http/servers/tenantflow/routes", nil)
	if status != http.StatusOK {
		t.Fatalf("GET routes: %d %s", status, body)
	}
	var rs []map[string]any
	if err := json.Unmarshal(body, &rs); err != nil {
		t.Fatalf("routes %s: %v", body, err)
	}
	return rs
}

// countID is how many of Caddy's routes carry the @id.
func countID(t *testing.T, caddy *harness.Caddy, id string) int {
	t.Helper()
	n := 0
	for _, r := range routes(t, caddy) {
		if r["@id"] == id {
			n++
		}
	}
	return n
}

// dials reads the upstreams of one route from Caddy by its @id.
func dials(t *testing.T, caddy *harness.Caddy, id string) []string {
	t.Helper()
	status, body := caddy.Admin(t, http.MethodGet, "/id/"+id, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /id/%s: %d %s", id, status, body)
	}
	var r struct {
		Match []struct {
			Host []string `json:"host"`
		} `json:"match"`
		Handle []struct {
			Handler   string `json:"handler"`
			Upstreams []struct {
				Dial string `json:"dial"`
			} `json:"upstreams"`
		} `json:"handle"`
		Terminal bool `json:"terminal"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	// A vars handler naming the owner may come first; the proxy is last.
	last := len(r.Handle) - 1
	if last < 0 || r.Handle[last].Handler != "reverse_proxy" || !r.Terminal || len(r.Match) != 1 {
		t.Fatalf("route %s is not a terminal reverse_proxy route: %s", id, body)
	}
	var d []string
	for _, u := range r.Handle[last].Upstreams {
		d = append(d, u.Dial)
	}
	return d
}

// served is what Caddy answers for the host: the body of the upstream that
// handled the request.
//
// Caddy answers the admin request once the new config runs, but the old
// server may still accept a connection for a few milliseconds and answer
// it with the old config (an empty 200 where the route did not exist, the
// previous upstream after a switch): the answer is polled for until it is
// want, for up to a second.
func served(t *testing.T, caddy *harness.Caddy, host, want string) string {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		status, body, err := caddy.ProxyGet(host)
		if err != nil {
			t.Fatalf("GET via caddy for %s: %v", host, err)
		}
		if status != http.StatusOK {
			t.Fatalf("GET via caddy for %s: status %d, body %q", host, status, body)
		}
		if body == want || time.Now().After(deadline) {
			return body
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEnsureRouteServesTenantThroughCaddy(t *testing.T) {
	harness.RequireAcceptQueueMigration(t)
	caddy := harness.StartCaddy(t, "tenantflow")
	c := newClient(t, caddy)
	a := proxy.NewActivities(c)
	upA, upB := upstream(t, "upstream A"), upstream(t, "upstream B")
	if err := c.Check(ctx(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}

	got, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upA}})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(caddy.HTTPAddr)
	want := proxy.Route{ID: "tenantflow-acme", Host: "acme." + domain, URL: "http://acme." + domain + ":" + port, Upstreams: []string{upA}}
	if got.ID != want.ID || got.Host != want.Host || got.URL != want.URL || !slices.Equal(got.Upstreams, want.Upstreams) {
		t.Fatalf("EnsureRoute = %+v, want %+v", got, want)
	}
	if d := dials(t, caddy, "tenantflow-acme"); !slices.Equal(d, []string{upA}) {
		t.Fatalf("Caddy route dials %v, want [%s]", d, upA)
	}
	if body := served(t, caddy, "acme."+domain, "upstream A"); body != "upstream A" {
		t.Fatalf("acme served %q, want upstream A", body)
	}

	// Same input again: Caddy's config is not even rewritten.
	_, before := caddy.Admin(t, http.MethodGet, "/config/", nil)
	for range 2 {
		if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upA}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, after := caddy.Admin(t, http.MethodGet, "/config/", nil); string(after) != string(before) {
		t.Fatalf("repeated EnsureRoute changed Caddy's config:\nbefore %s\nafter  %s", before, after)
	}

	// Switch to B, several times: still one route, now serving B.
	for range 3 {
		if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upB}}); err != nil {
			t.Fatal(err)
		}
	}
	if body := served(t, caddy, "acme."+domain, "upstream B"); body != "upstream B" {
		t.Fatalf("after the switch acme served %q, want upstream B", body)
	}
	if n, all := countID(t, caddy, "tenantflow-acme"), len(routes(t, caddy)); n != 1 || all != 1 {
		t.Fatalf("Caddy holds %d routes, %d with @id tenantflow-acme; want exactly 1", all, n)
	}

	// Several upstreams are kept in order.
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upA, upB}}); err != nil {
		t.Fatal(err)
	}
	if d := dials(t, caddy, "tenantflow-acme"); !slices.Equal(d, []string{upA, upB}) {
		t.Fatalf("Caddy route dials %v, want [%s %s]", d, upA, upB)
	}
}

// A suspended tenant's route answers every request with the maintenance
// page (503, Retry-After, the message escaped) and reaches no upstream;
// the route switched back serves the tenant again. Both are one change of
// the same route, owner kept.
func TestMaintenancePageAndBack(t *testing.T) {
	caddy := harness.StartCaddy(t, "tenantflow")
	a := newActivities(t, caddy)
	up := upstream(t, "upstream A")
	in := proxy.RouteInput{Tenant: "acme", Upstreams: []string{up}, Owner: "run-1"}
	if _, err := a.EnsureRoute(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	served(t, caddy, "acme."+domain, "upstream A")

	msg := "Suspended <unpaid invoice>: contact billing"
	got, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Owner: "run-1", Maintenance: msg})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Maintenance || len(got.Upstreams) != 0 {
		t.Fatalf("EnsureRoute = %+v, want the maintenance route", got)
	}
	var resp *http.Response
	deadline := time.Now().Add(2 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, "http://"+caddy.HTTPAddr+"/any/path", nil)
		req.Host = "acme." + domain
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || time.Now().After(deadline) {
			break
		}
		resp.Body.Close()
		time.Sleep(10 * time.Millisecond)
	}
	body := make([]byte, 4096)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	page := string(body[:n])
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != proxy.MaintenanceRetryAfter ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("maintenance answer %d %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(page, "Suspended &lt;unpaid invoice&gt;: contact billing") || strings.Contains(page, "upstream A") {
		t.Fatalf("maintenance page %q", page)
	}
	if n := countID(t, caddy, "tenantflow-acme"); n != 1 {
		t.Fatalf("%d routes of acme", n)
	}
	// Another run cannot switch it back: the owner was kept.
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{up}, Owner: "run-2"}); err == nil {
		t.Fatal("another run took over the maintenance route")
	}

	if _, err := a.EnsureRoute(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	served(t, caddy, "acme."+domain, "upstream A")
	if d := dials(t, caddy, "tenantflow-acme"); !slices.Equal(d, []string{up}) {
		t.Fatalf("dials %v after resume", d)
	}

	// A maintenance route with upstreams, or none without, is refused
	// before anything is sent.
	for _, bad := range []proxy.RouteInput{
		{Tenant: "acme", Owner: "run-1", Maintenance: msg, Upstreams: []string{up}},
		{Tenant: "acme", Owner: "run-1"},
	} {
		var appErr *temporal.ApplicationError
		if _, err := a.EnsureRoute(ctx(t), bad); !errors.As(err, &appErr) || appErr.Type() != proxy.ErrInvalidInput {
			t.Fatalf("EnsureRoute(%+v) = %v, want %s", bad, err, proxy.ErrInvalidInput)
		}
	}
}

func TestRemoveRouteLeavesOtherTenants(t *testing.T) {
	harness.RequireAcceptQueueMigration(t)
	caddy := harness.StartCaddy(t, "tenantflow")
	a := newActivities(t, caddy)
	upA, upB := upstream(t, "upstream A"), upstream(t, "upstream B")
	for tenant, up := range map[string]string{"acme": upA, "globex": upB} {
		if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: tenant, Upstreams: []string{up}}); err != nil {
			t.Fatal(err)
		}
	}
	if body := served(t, caddy, "acme."+domain, "upstream A"); body != "upstream A" {
		t.Fatalf("acme served %q before removal", body)
	}

	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if status, body := caddy.Admin(t, http.MethodGet, "/id/tenantflow-acme", nil); status != http.StatusNotFound {
		t.Fatalf("GET /id/tenantflow-acme after removal: %d %s", status, body)
	}
	// No route matches: Caddy answers an empty 200 itself, no upstream body.
	if status, body, err := caddy.ProxyGet("acme." + domain); err != nil || body != "" {
		t.Fatalf("acme still routed after removal: status %d body %q err %v", status, body, err)
	}
	if body := served(t, caddy, "globex."+domain, "upstream B"); body != "upstream B" {
		t.Fatalf("globex served %q after acme's removal, want upstream B", body)
	}
	if rs := routes(t, caddy); len(rs) != 1 || rs[0]["@id"] != "tenantflow-globex" {
		t.Fatalf("routes left: %v", rs)
	}

	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "acme"}); err != nil {
		t.Fatalf("second removal: %v", err)
	}
	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "never-created"}); err != nil {
		t.Fatalf("removal of a route that never existed: %v", err)
	}
	if len(routes(t, caddy)) != 1 {
		t.Fatal("repeated removal changed other routes")
	}
}

func TestEnsureRouteCreatesServerOnEmptyCaddy(t *testing.T) {
	caddy := harness.StartCaddy(t, "")
	if status, body := caddy.Admin(t, http.MethodGet, "/config/apps", nil); status != http.StatusOK || strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("expected a Caddy without apps, got %d %s", status, body)
	}
	a := newActivities(t, caddy)
	upA, upB := upstream(t, "upstream A"), upstream(t, "upstream B")

	// Several attempts racing on an empty Caddy (a retry overlapping a slow
	// first attempt) make one server and one route.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upA}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	status, body := caddy.Admin(t, http.MethodGet, "/config/apps/http/servers", nil)
	var servers map[string]struct {
		Listen         []string       `json:"listen"`
		AutomaticHTTPS map[string]any `json:"automatic_https"`
		Routes         []any          `json:"routes"`
	}
	if err := json.Unmarshal(body, &servers); status != http.StatusOK || err != nil {
		t.Fatalf("servers: %d %s %v", status, body, err)
	}
	srv, ok := servers["tenantflow"]
	if len(servers) != 1 || !ok || !slices.Equal(srv.Listen, []string{caddy.HTTPAddr}) || srv.AutomaticHTTPS["disable"] != true || len(srv.Routes) != 1 {
		t.Fatalf("created server config: %s", body)
	}
	harness.WaitFor(t, "tenant listener", 10*time.Second, harness.DialReady(caddy.HTTPAddr))
	if body := served(t, caddy, "acme."+domain, "upstream A"); body != "upstream A" {
		t.Fatalf("acme served %q, want upstream A", body)
	}

	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "globex", Upstreams: []string{upB}}); err != nil {
		t.Fatal(err)
	}
	if n := len(routes(t, caddy)); n != 2 {
		t.Fatalf("%d routes after a second tenant, want 2", n)
	}
	if body := served(t, caddy, "globex."+domain, "upstream B"); body != "upstream B" {
		t.Fatalf("globex served %q, want upstream B", body)
	}
}

func TestCaddyOutageIsRetryable(t *testing.T) {
	harness.RequireAcceptQueueMigration(t)
	caddy := harness.StartCaddy(t, "tenantflow")
	c := newClient(t, caddy)
	a := proxy.NewActivities(c)
	upA, upB := upstream(t, "upstream A"), upstream(t, "upstream B")
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upA}}); err != nil {
		t.Fatal(err)
	}

	caddy.Stop()
	_, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upB}})
	harness.RequireRetryable(t, err)
	harness.RequireRetryable(t, a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "globex"}))
	if err := c.Check(ctx(t)); err == nil {
		t.Fatal("Check succeeded while Caddy is down")
	}

	caddy.Start() // resumes the config it had, with acme → A
	if body := served(t, caddy, "acme."+domain, "upstream A"); body != "upstream A" {
		t.Fatalf("after restart acme served %q, want upstream A", body)
	}
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upB}}); err != nil {
		t.Fatalf("same call after restart: %v", err)
	}
	if body := served(t, caddy, "acme."+domain, "upstream B"); body != "upstream B" {
		t.Fatalf("acme served %q, want upstream B", body)
	}
	if n := countID(t, caddy, "tenantflow-acme"); n != 1 {
		t.Fatalf("%d routes with @id tenantflow-acme, want 1", n)
	}
	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "globex"}); err != nil {
		t.Fatalf("same removal after restart: %v", err)
	}
}

func TestInvalidInputIsNonRetryable(t *testing.T) {
	caddy := harness.StartCaddy(t, "tenantflow")
	a := newActivities(t, caddy)
	up := upstream(t, "upstream A")
	for _, tc := range []struct {
		name string
		in   proxy.RouteInput
	}{
		{"upstream without port", proxy.RouteInput{Tenant: "acme", Upstreams: []string{"127.0.0.1"}}},
		{"upstream port out of range", proxy.RouteInput{Tenant: "acme", Upstreams: []string{"127.0.0.1:99999"}}},
		{"upstream port zero", proxy.RouteInput{Tenant: "acme", Upstreams: []string{"127.0.0.1:0"}}},
		{"upstream placeholder", proxy.RouteInput{Tenant: "acme", Upstreams: []string{"{http.request.host}:80"}}},
		{"one bad upstream among good ones", proxy.RouteInput{Tenant: "acme", Upstreams: []string{up, "nope"}}},
		{"no upstream", proxy.RouteInput{Tenant: "acme"}},
		{"tenant upper case", proxy.RouteInput{Tenant: "Acme", Upstreams: []string{up}}},
		{"tenant with dot", proxy.RouteInput{Tenant: "a.b", Upstreams: []string{up}}},
		{"tenant empty", proxy.RouteInput{Upstreams: []string{up}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.EnsureRoute(ctx(t), tc.in)
			harness.RequireNonRetryable(t, err, proxy.ErrInvalidInput)
		})
	}
	harness.RequireNonRetryable(t, a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "-acme"}), proxy.ErrInvalidInput)
	if rs := routes(t, caddy); len(rs) != 0 {
		t.Fatalf("invalid input reached Caddy: %v", rs)
	}
}

func TestRefusedByCaddyIsNonRetryable(t *testing.T) {
	caddy := harness.StartCaddy(t, "tenantflow")
	// Caddy checks the Host header of admin requests: allow only the
	// address the harness uses, then talk to it as "localhost".
	adminHost := strings.TrimPrefix(caddy.AdminURL, "http://")
	if status, body := caddy.Admin(t, http.MethodPost, "/config/admin/origins", []string{adminHost}); status != http.StatusOK {
		t.Fatalf("set admin origins: %d %s", status, body)
	}
	_, port, _ := net.SplitHostPort(adminHost)
	_, httpPort, _ := net.SplitHostPort(caddy.HTTPAddr)
	c, err := proxy.NewClient(proxy.Config{
		Enabled: true, AdminURL: "http://localhost:" + port, Server: "tenantflow", Listen: caddy.HTTPAddr,
		Domain: domain, PublicScheme: "http", PublicPort: httpPort,
	}, harness.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := proxy.NewActivities(c)
	harness.WaitFor(t, "caddy admin with new origins", 10*time.Second, func() error {
		if status, _ := caddy.Admin(t, http.MethodGet, "/config/admin", nil); status != http.StatusOK {
			return fmt.Errorf("status %d", status)
		}
		return nil
	})

	_, err = a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upstream(t, "upstream A")}})
	harness.RequireNonRetryable(t, err, proxy.ErrConfigRejected)
	if !strings.Contains(err.Error(), "host not allowed") {
		t.Fatalf("error does not carry Caddy's reason: %v", err)
	}
	harness.RequireNonRetryable(t, a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "acme"}), proxy.ErrConfigRejected)
	if err := c.Check(ctx(t)); err == nil {
		t.Fatal("Check succeeded although Caddy refuses our Host header")
	}
	if len(routes(t, caddy)) != 0 {
		t.Fatal("a refused request changed Caddy's routes")
	}
}

// TestSwitchUnderLoadDropsNoRequest is the guarantee the release workflow
// builds on: while the route flips between two upstreams, every request
// gets an answer from one of them, never Caddy's empty "no route" answer
// nor a 502 (a delete-then-add switch fails this test at once).
func TestSwitchUnderLoadDropsNoRequest(t *testing.T) {
	harness.RequireAcceptQueueMigration(t)
	caddy := harness.StartCaddy(t, "tenantflow")
	a := newActivities(t, caddy)
	upA, upB := upstream(t, "upstream A"), upstream(t, "upstream B")
	host := "acme." + domain
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upA}}); err != nil {
		t.Fatal(err)
	}

	load := harness.StartLoad(caddy.HTTPAddr, []string{host}, "/", 4, 2*time.Millisecond, func(_, body string) bool {
		return body == "upstream A" || body == "upstream B"
	})
	switches := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); switches++ {
		up := upB
		if switches%2 == 1 {
			up = upA
		}
		if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{up}}); err != nil {
			load.Stop()
			t.Fatalf("switch %d: %v", switches, err)
		}
		time.Sleep(50 * time.Millisecond) // let requests reach the new upstream before the next flip
	}
	rep := load.Stop()
	seen := rep.Answers[host]
	t.Logf("%d switches, %d requests, answers %v, %d failures, %d TCP handshakes reset and re-dialled",
		switches, rep.Requests, seen, len(rep.Failures), rep.DialResets)
	if len(rep.Failures) > 0 {
		t.Fatalf("%d requests failed during switches, first: %s", len(rep.Failures), rep.Failures[0])
	}
	if switches < 4 || seen["upstream A"] == 0 || seen["upstream B"] == 0 || seen["upstream A"]+seen["upstream B"] < 50 {
		t.Fatalf("load test did not exercise the switch: %d switches, answers %v", switches, seen)
	}
	if n := countID(t, caddy, "tenantflow-acme"); n != 1 {
		t.Fatalf("%d routes with @id tenantflow-acme, want 1", n)
	}
}

// TestActivitiesThroughTemporal runs the activities as a worker does, so the
// result's JSON and the error's retryability are what a workflow sees after
// Temporal's conversion. Host is a helper, not an activity: the worker must
// register the struct with SkipInvalidStructFunctions.
func TestActivitiesThroughTemporal(t *testing.T) {
	caddy := harness.StartCaddy(t, "tenantflow")
	a := newActivities(t, caddy)
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivityWithOptions(a, activity.RegisterOptions{SkipInvalidStructFunctions: true})
	up := upstream(t, "upstream A")

	val, err := env.ExecuteActivity(a.EnsureRoute, proxy.RouteInput{Tenant: "acme", Upstreams: []string{up}})
	if err != nil {
		t.Fatal(err)
	}
	var r proxy.Route
	if err := val.Get(&r); err != nil {
		t.Fatal(err)
	}
	if r.ID != "tenantflow-acme" || r.Host != "acme."+domain || !slices.Equal(r.Upstreams, []string{up}) {
		t.Fatalf("route through Temporal: %+v", r)
	}
	if body := served(t, caddy, r.Host, "upstream A"); body != "upstream A" {
		t.Fatalf("acme served %q", body)
	}

	_, err = env.ExecuteActivity(a.EnsureRoute, proxy.RouteInput{Tenant: "acme", Upstreams: []string{"127.0.0.1"}})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != proxy.ErrInvalidInput {
		t.Fatalf("invalid upstream through Temporal: want non-retryable %s, got %v", proxy.ErrInvalidInput, err)
	}

	if _, err := env.ExecuteActivity(a.RemoveRoute, proxy.RouteRef{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if n := countID(t, caddy, "tenantflow-acme"); n != 0 {
		t.Fatalf("%d routes left after RemoveRoute through Temporal", n)
	}
}
