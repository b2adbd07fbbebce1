package proxy_test

import (
	"net/http"
	"strings"
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

// A domain another route serves is taken: another tenant's alias, or a
// route made by hand, exact or by a wildcard; the tenant's own route and
// names no route matches are free.
func TestCheckDomainFree(t *testing.T) {
	caddy := harness.StartCaddy(t, "tenantflow")
	a := proxy.NewActivities(newClient(t, caddy))
	up := upstream(t, "app")
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{up}, Owner: "run-1", Aliases: []string{"crm.customer.test"}}); err != nil {
		t.Fatal(err)
	}
	if status, body := caddy.Admin(t, http.MethodPost, "/config/apps/http/servers/tenantflow/routes",
		map[string]any{"match": []any{map[string]any{"host": []string{"*.wild.test"}}}, "handle": []any{map[string]any{"handler": "static_response", "body": "hi"}}}); status != http.StatusOK {
		t.Fatalf("add a route by hand: %d %s", status, body)
	}
	for _, c := range []struct {
		tenant, host, takenBy string
	}{
		{"acme", "crm.customer.test", ""},
		{"globex", "crm.customer.test", "tenant acme"},
		{"globex", "shop.wild.test", "a route made by hand"},
		{"globex", "a.shop.wild.test", ""},
		{"globex", "wild.test", ""},
		{"globex", "www.customer.test", ""},
	} {
		err := a.CheckDomainFree(ctx(t), proxy.DomainInput{Tenant: c.tenant, Host: c.host})
		if c.takenBy == "" {
			if err != nil {
				t.Errorf("%s for %s: %v, want free", c.host, c.tenant, err)
			}
			continue
		}
		appErr := harness.RequireNonRetryable(t, err, proxy.ErrDomainTaken)
		if !strings.Contains(appErr.Error(), "already served by "+c.takenBy) {
			t.Errorf("%s for %s: %v, want served by %s", c.host, c.tenant, err, c.takenBy)
		}
	}
}
