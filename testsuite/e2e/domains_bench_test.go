package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/domains"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// BenchmarkCustomDomain measures, for a custom domain whose records the
// customer put in place beforehand, the time from POST …/domains to the
// first valid HTTPS answer of the tenant's app on it: the record looked
// up, the route changed, the certificate obtained by Caddy from the ACME
// server (Pebble, validating TLS-ALPN-01 through BIND) and checked by a
// client that trusts only Pebble's root. Each iteration is a new name, so
// every certificate is really issued.
func BenchmarkCustomDomain(b *testing.B) {
	srv, cfg := startServersTLS(b)
	p := startPlatformWith(b, cfg)
	name := tenantName("bdom")
	b.Cleanup(func() { p.destroy(name) })
	p.requestTenant(name, "light", "prod")
	if st := p.waitState(name, 100*time.Millisecond, 3*time.Minute); st["state"] != string(tenant.StateActive) {
		b.Fatalf("tenant: %v", st)
	}
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		host := fmt.Sprintf("d%d-%s.%s", i, name, customerZone)
		_, value := challengeFor(p, name, host)
		srv.bind.Add(b, host+". 60 IN A 127.0.0.1", "_tenantflow-challenge."+host+". 60 IN TXT \""+value+"\"")
		b.StartTimer()
		start := time.Now()
		code, out, _ := p.doAs("distributor-"+p.token, http.MethodPost, "/v1/tenants/"+name+"/domains", map[string]any{"host": host})
		if code != http.StatusAccepted {
			b.Fatalf("POST domains: %d %v", code, out)
		}
		for {
			code, body, err := srv.httpsGet(host)
			if err == nil && code == http.StatusOK && strings.Contains(body, name) {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("%s: no valid HTTPS answer after 2 minutes: %d %v", host, code, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		// Room for the next: a tenant has at most 20 domains.
		if code, out, _ := p.doAs("distributor-"+p.token, http.MethodDelete, "/v1/tenants/"+name+"/domains/"+host, nil); code != http.StatusAccepted {
			b.Fatalf("DELETE domain: %d %v", code, out)
		}
		p.waitFor(name, 50*time.Millisecond, 30*time.Second, "the domain gone", func(st map[string]any) bool { return domainOf(st, host) == nil })
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
	b.Logf("POST …/domains to the first valid HTTPS answer, over %d names: p50 %s, max %s", len(took), took[len(took)/2], took[len(took)-1])
}

// challengeFor is the record the tenant will ask for host: the customer
// puts it in place before asking.
func challengeFor(p *platform, name, host string) (string, string) {
	code, st, _ := p.do(http.MethodGet, "/v1/tenants/"+name, nil)
	if code != http.StatusOK {
		p.t.Fatalf("GET tenant: %d %v", code, st)
	}
	return domains.Challenge(name, st["provisionId"].(string), host)
}
