package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/domains"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// httpsGet asks the proxy for https://<host>/ as a customer's browser
// would: SNI host, the chain checked against the ACME server's root.
func (s *servers) httpsGet(host string) (int, string, error) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.pebble.RootPool(), MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, s.caddy.HTTPAddr)
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// domainOf is the tenant's custom domain host as its state shows it.
func domainOf(st map[string]any, host string) map[string]any {
	list, _ := st["domains"].([]any)
	for _, d := range list {
		if m := d.(map[string]any); m["host"] == host {
			return m
		}
	}
	return nil
}

// TestACustomDomainOverHTTPS: a distributor adds crm.customer.test to a
// tenant; the tenant names the TXT record to add and waits for it; once the
// customer's DNS has it, the route serves the name and Caddy obtains its
// certificate from the ACME server (Pebble, validating through BIND). The
// customer's browser, trusting only Pebble's root, reaches the app; a
// suspend shows the maintenance page there too; a removal takes the name
// off; every step is in the audit trail.
func TestACustomDomainOverHTTPS(t *testing.T) {
	srv, cfg := startServersTLS(t)
	p := startPlatformWith(t, cfg)
	name := tenantName("dom")
	t.Cleanup(func() { p.destroy(name) })
	p.requestTenant(name, "light", "prod")
	st := p.waitState(name, 100*time.Millisecond, 3*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.True(t, strings.HasPrefix(st["url"].(string), "https://"), st["url"])
	dist := "distributor-" + p.token

	code, out, _ := p.doAs(dist, http.MethodPost, "/v1/tenants/"+name+"/domains", map[string]any{"host": "https://crm.customer.test/"})
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Equal(t, "host", out["field"])
	code, out, _ = p.doAs(dist, http.MethodPost, "/v1/tenants/"+name+"/domains", map[string]any{"host": "shop." + testDomain})
	require.Equal(t, http.StatusConflict, code, out)
	require.Contains(t, out["error"], "platform's own domain")

	const host = "crm." + customerZone
	code, out, _ = p.doAs(dist, http.MethodPost, "/v1/tenants/"+name+"/domains", map[string]any{"host": host})
	require.Equal(t, http.StatusAccepted, code, out)
	require.Equal(t, string(tenant.DomainVerifying), out["status"])
	record := out["record"].(map[string]any)
	require.Equal(t, domains.ChallengePrefix+host, record["name"])
	require.Equal(t, "TXT", record["type"])

	// The first look finds nothing; the customer adds the records.
	p.waitFor(name, 100*time.Millisecond, 30*time.Second, "the first look", func(st map[string]any) bool {
		d := domainOf(st, host)
		return d != nil && strings.Contains(d["error"].(string), "is not there yet")
	})
	srv.bind.Add(t, host+". 60 IN A 127.0.0.1", record["name"].(string)+". 60 IN TXT \""+record["value"].(string)+"\"")
	st = p.waitFor(name, 200*time.Millisecond, 2*time.Minute, "the domain active", func(st map[string]any) bool {
		d := domainOf(st, host)
		return d != nil && (d["status"] == string(tenant.DomainActive) || d["status"] == string(tenant.DomainFailed))
	})
	d := domainOf(st, host)
	require.Equal(t, string(tenant.DomainActive), d["status"], d)
	require.Contains(t, d["issuer"], "Pebble")

	code, body, err := srv.httpsGet(host)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)
	var app struct {
		Tenant string `json:"tenant"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &app), body)
	require.Equal(t, name, app.Tenant, "the customer's name reaches the tenant's own app")

	// A suspend keeps the alias: the maintenance page answers on it.
	code, out, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/suspend", map[string]any{"reason": "invoice 7"})
	require.Equal(t, http.StatusAccepted, code, out)
	p.waitFor(name, 100*time.Millisecond, time.Minute, "suspended", func(st map[string]any) bool { return st["state"] == string(tenant.StateSuspended) })
	code, body, err = srv.httpsGet(host)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	code, out, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/resume", map[string]any{"reason": "paid"})
	require.Equal(t, http.StatusAccepted, code, out)
	p.waitFor(name, 100*time.Millisecond, time.Minute, "active", func(st map[string]any) bool { return st["state"] == string(tenant.StateActive) })
	code, _, err = srv.httpsGet(host)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	// Removed: the route no longer serves the name.
	code, out, _ = p.doAs(dist, http.MethodDelete, "/v1/tenants/"+name+"/domains/nope."+customerZone, nil)
	require.Equal(t, http.StatusNotFound, code, out)
	require.Equal(t, "host", out["field"])
	code, out, _ = p.doAs(dist, http.MethodDelete, "/v1/tenants/"+name+"/domains/"+host, nil)
	require.Equal(t, http.StatusAccepted, code, out)
	p.waitFor(name, 100*time.Millisecond, 30*time.Second, "the domain gone", func(st map[string]any) bool { return domainOf(st, host) == nil })
	code, body, err = srv.httpsGet(host)
	require.False(t, err == nil && code == http.StatusOK && strings.Contains(body, name), "still served: %d %s %v", code, body, err)

	// A removal asked the moment the name first answers (the tenant's
	// domain step may still be checking it) wins over that check.
	const www = "www." + customerZone
	_, value := domains.Challenge(name, st["provisionId"].(string), www)
	srv.bind.Add(t, www+". 60 IN A 127.0.0.1", domains.ChallengePrefix+www+". 60 IN TXT \""+value+"\"")
	code, out, _ = p.doAs(dist, http.MethodPost, "/v1/tenants/"+name+"/domains", map[string]any{"host": www})
	require.Equal(t, http.StatusAccepted, code, out)
	require.Eventually(t, func() bool {
		code, body, err := srv.httpsGet(www)
		return err == nil && code == http.StatusOK && strings.Contains(body, name)
	}, time.Minute, 10*time.Millisecond, "the record in place, the name answers by itself")
	code, out, _ = p.doAs(dist, http.MethodDelete, "/v1/tenants/"+name+"/domains/"+www, nil)
	require.Equal(t, http.StatusAccepted, code, out)
	p.waitFor(name, 100*time.Millisecond, 30*time.Second, "www gone", func(st map[string]any) bool { return domainOf(st, www) == nil })

	code, out, _ = p.do(http.MethodGet, "/v1/audit?tenant="+name, nil)
	require.Equal(t, http.StatusOK, code, out)
	var actions []string
	for _, e := range out["entries"].([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string))
	}
	for _, want := range []string{"tenant.domain.add", "tenant.domain.remove"} {
		require.True(t, slices.Contains(actions, want), "%s in %v", want, actions)
	}
	p.checkHistory(tenant.WorkflowID(name), "tenant-custom-domain")
}
