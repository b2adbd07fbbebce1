package proxy_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// routeOwner reads, from Caddy, the owner the tenant's route names in its
// vars handler ("" when it has none).
func routeOwner(t *testing.T, caddy *harness.Caddy, tenant string) string {
	t.Helper()
	status, body := caddy.Admin(t, http.MethodGet, "/id/tenantflow-"+tenant, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /id/tenantflow-%s: %d %s", tenant, status, body)
	}
	var r struct {
		Handle []map[string]any `json:"handle"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	for _, h := range r.Handle {
		if h["handler"] == "vars" {
			o, _ := h[proxy.OwnerVar].(string)
			return o
		}
	}
	return ""
}

func requireNotOurs(t *testing.T, err error) {
	t.Helper()
	harness.RequireNonRetryable(t, err, proxy.ErrResourceNotOurs)
}

// A tenant requested again after its workflow was terminated (run B) can
// neither take over the live tenant's route (run A) nor unroute it by
// compensation; run A's retries and removal still work.
func TestRouteOfAnotherRunIsNeitherTakenNorRemoved(t *testing.T) {
	caddy := harness.StartCaddy(t, "tenantflow")
	a := newActivities(t, caddy)
	upA, upB := upstream(t, "run A"), upstream(t, "run B")

	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upA}, Owner: "run-a"}); err != nil {
		t.Fatal(err)
	}
	if o := routeOwner(t, caddy, "acme"); o != "run-a" {
		t.Fatalf("route owner %q, want run-a (Caddy must keep the vars handler)", o)
	}
	if body := served(t, caddy, "acme."+domain, "run A"); body != "run A" {
		t.Fatalf("acme served %q, want run A", body)
	}
	_, before := caddy.Admin(t, http.MethodGet, "/config/", nil)

	for _, adopt := range []bool{false, true} { // adopting is for unstamped routes only
		_, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upB}, Owner: "run-b", Adopt: adopt})
		requireNotOurs(t, err)
	}
	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "acme", Owner: "run-b"}); err != nil {
		t.Fatalf("run B's compensation: %v", err)
	}
	if _, after := caddy.Admin(t, http.MethodGet, "/config/", nil); string(after) != string(before) {
		t.Fatalf("run B changed Caddy's config:\nbefore %s\nafter  %s", before, after)
	}
	if body := served(t, caddy, "acme."+domain, "run A"); body != "run A" {
		t.Fatalf("acme served %q after run B, want run A", body)
	}

	// Run A's retry changes nothing; a switch of its own works.
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upA}, Owner: "run-a"}); err != nil {
		t.Fatal(err)
	}
	if _, after := caddy.Admin(t, http.MethodGet, "/config/", nil); string(after) != string(before) {
		t.Fatal("run A's retry rewrote Caddy's config")
	}
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upB}, Owner: "run-a"}); err != nil {
		t.Fatal(err)
	}
	if d := dials(t, caddy, "tenantflow-acme"); !slices.Equal(d, []string{upB}) {
		t.Fatalf("dials %v after run A's switch", d)
	}
	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "acme", Owner: "run-a"}); err != nil {
		t.Fatal(err)
	}
	if n := countID(t, caddy, "tenantflow-acme"); n != 0 {
		t.Fatalf("%d routes of acme left after run A's removal", n)
	}
}

// A route made before runs were stamped (no vars handler) is never taken
// over or removed by a provisioning; the release, decommission or restore of
// the existing tenant (Adopt) does, and stamps it.
func TestLegacyRouteIsAdoptedOnlyWithAdopt(t *testing.T) {
	caddy := harness.StartCaddy(t, "tenantflow")
	a := newActivities(t, caddy)
	upOld, upNew := upstream(t, "old"), upstream(t, "new")
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upOld}}); err != nil {
		t.Fatal(err)
	}
	if o := routeOwner(t, caddy, "acme"); o != "" {
		t.Fatalf("a route without owner names %q", o)
	}

	_, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upNew}, Owner: "run-new"})
	requireNotOurs(t, err)
	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "acme", Owner: "run-new"}); err != nil {
		t.Fatal(err)
	}
	if d := dials(t, caddy, "tenantflow-acme"); !slices.Equal(d, []string{upOld}) {
		t.Fatalf("a provisioning changed a route from before runs were stamped: dials %v", d)
	}

	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "acme", Upstreams: []string{upNew}, Owner: "run-old", Adopt: true}); err != nil {
		t.Fatal(err)
	}
	if o := routeOwner(t, caddy, "acme"); o != "run-old" {
		t.Fatalf("adopted route names owner %q, want run-old", o)
	}
	if body := served(t, caddy, "acme."+domain, "new"); body != "new" {
		t.Fatalf("acme served %q after the release, want new", body)
	}

	// A decommission (Adopt) removes an unstamped route of its tenant.
	if _, err := a.EnsureRoute(ctx(t), proxy.RouteInput{Tenant: "globex", Upstreams: []string{upOld}}); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "globex", Owner: "run-g"}); err != nil {
		t.Fatal(err)
	}
	if n := countID(t, caddy, "tenantflow-globex"); n != 1 {
		t.Fatalf("removed without Adopt: %d routes left", n)
	}
	if err := a.RemoveRoute(ctx(t), proxy.RouteRef{Tenant: "globex", Owner: "run-g", Adopt: true}); err != nil {
		t.Fatal(err)
	}
	if n := countID(t, caddy, "tenantflow-globex"); n != 0 {
		t.Fatalf("%d routes of globex left after the decommission", n)
	}
}
