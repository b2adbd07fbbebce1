package proxy_test

import (
	"net/http"
	"testing"

	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// Routes lists Tenantflow's routes with their owner runs (none on an
// empty Caddy), and leaves out a route made by hand.
func TestRoutesListsTenantflowsRoutesWithTheirOwners(t *testing.T) {
	caddy := harness.StartCaddy(t, "tenantflow")
	c := newClient(t, caddy)
	if got, err := c.Routes(ctx(t)); err != nil || len(got) != 0 {
		t.Fatalf("Routes on an empty Caddy: %v, %v", got, err)
	}
	a := proxy.NewActivities(c)
	up := upstream(t, "app")
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{up}, Owner: "run-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "legacy", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	if status, body := caddy.Admin(t, http.MethodPost, "/config/apps/http/servers/tenantflow/routes",
		map[string]any{"@id": "by-hand", "handle": []any{map[string]any{"handler": "static_response", "body": "hi"}}}); status != http.StatusOK {
		t.Fatalf("add a route by hand: %d %s", status, body)
	}
	got, err := c.Routes(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("routes %+v, want acme's and legacy's", got)
	}
	byTenant := map[string]proxy.ListedRoute{}
	for _, r := range got {
		byTenant[r.Tenant] = r
	}
	if r := byTenant["acme"]; r.ID != "tenantflow-acme" || r.Owner != "run-1" || !r.Stamped || len(r.Upstreams) != 1 || r.Upstreams[0] != up {
		t.Fatalf("acme's route %+v", r)
	}
	if r := byTenant["legacy"]; r.Stamped || r.Owner != "" {
		t.Fatalf("legacy route %+v: made without an owner", r)
	}
}
