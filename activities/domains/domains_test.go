package domains_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/domains"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

const platform = "apps.example.test"

// The whole path of a custom domain with the real servers: BIND serves the
// customer's zone, where the challenge record appears; Caddy serves HTTPS
// and obtains the domain's certificate from Pebble, which validates it
// through BIND; the check verifies the chain against Pebble's root.
func TestACustomDomainIsVerifiedAndServedOverHTTPS(t *testing.T) {
	bind := harness.StartBind(t, platform, "customer.test")
	caddy, pebble := harness.StartCaddyTLS(t, "tenantflow", bind.Addr)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("acme's app\n")) }))
	t.Cleanup(app.Close)
	px, err := proxy.New(proxy.Config{Enabled: true, AdminURL: caddy.AdminURL, Server: caddy.Server, Listen: caddy.HTTPAddr,
		Domain: platform, PublicScheme: "https"}, harness.Logger(t))
	require.NoError(t, err)
	dm, err := domains.New(domains.Config{Resolver: bind.Addr, TLSAddr: caddy.HTTPAddr, Roots: pebble.Roots}, harness.Logger(t))
	require.NoError(t, err)
	ctx := context.Background()
	const host = "crm.customer.test"
	bind.Add(t, host+". 60 IN A 127.0.0.1", "acme."+platform+". 60 IN A 127.0.0.1")

	name, value := domains.Challenge("acme", "run-1", host)
	require.Equal(t, "_tenantflow-challenge."+host, name)
	v, err := dm.VerifyDomain(ctx, domains.VerifyInput{Host: host, Name: name, Value: value})
	require.NoError(t, err)
	require.False(t, v.Verified, "no record yet")
	_, other := domains.Challenge("globex", "run-2", host)
	require.NotEqual(t, value, other, "the record names the tenant")
	bind.Add(t, name+". 60 IN TXT \""+other+"\"")
	v, err = dm.VerifyDomain(ctx, domains.VerifyInput{Host: host, Name: name, Value: value})
	require.NoError(t, err)
	require.False(t, v.Verified, "another tenant's record does not verify this one")
	require.Equal(t, []string{other}, v.Found)
	bind.Add(t, name+". 60 IN TXT \""+value+"\"")
	v, err = dm.VerifyDomain(ctx, domains.VerifyInput{Host: host, Name: name, Value: value})
	require.NoError(t, err)
	require.True(t, v.Verified)

	require.NoError(t, px.CheckDomainFree(ctx, proxy.DomainInput{Tenant: "acme", Host: host}))
	up := strings.TrimPrefix(app.URL, "http://")
	start := time.Now()
	_, err = px.EnsureRoute(ctx, proxy.RouteInput{Tenant: "acme", Upstreams: []string{up}, Owner: "run-1", Aliases: []string{host}})
	require.NoError(t, err)
	var ans domains.HTTPSAnswer
	harness.WaitFor(t, "a valid certificate for "+host, 2*time.Minute, func() error {
		ans, err = dm.CheckHTTPS(ctx, domains.HTTPSInput{Host: host})
		return err
	})
	t.Logf("%s answered over HTTPS %s after the route: %+v", host, time.Since(start).Round(time.Millisecond), ans)
	require.Equal(t, http.StatusOK, ans.Status)
	require.Contains(t, ans.Issuer, "Pebble")

	// A client of its own, trusting only Pebble's root, sees the app.
	conn, err := tls.Dial("tcp", caddy.HTTPAddr, &tls.Config{ServerName: host, RootCAs: pebble.RootPool(), MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	require.NoError(t, conn.VerifyHostname(host))
	conn.Close()

	// The name is acme's now: another tenant cannot claim it.
	err = px.CheckDomainFree(ctx, proxy.DomainInput{Tenant: "globex", Host: host})
	harness.RequireNonRetryable(t, err, proxy.ErrDomainTaken)
	require.Contains(t, err.Error(), "already served by tenant acme")

	// Taken off the route, the name is no longer served.
	_, err = px.EnsureRoute(ctx, proxy.RouteInput{Tenant: "acme", Upstreams: []string{up}, Owner: "run-1"})
	require.NoError(t, err)
	require.NoError(t, px.CheckDomainFree(ctx, proxy.DomainInput{Tenant: "globex", Host: host}))
	harness.WaitFor(t, host+" no longer served", 30*time.Second, func() error {
		if a, err := dm.CheckHTTPS(ctx, domains.HTTPSInput{Host: host}); err == nil && a.Status == http.StatusOK {
			return errors.New("still served")
		}
		return nil
	})
}

func TestUnconfiguredDomainsSayWhy(t *testing.T) {
	_, err := domains.Unconfigured().VerifyDomain(context.Background(), domains.VerifyInput{Host: "a.b", Name: domains.ChallengePrefix + "a.b", Value: "x"})
	e := harness.RequireNonRetryable(t, err, domains.ErrNotConfigured)
	require.Contains(t, e.Error(), "TENANTFLOW_PROXY_PUBLIC_SCHEME=https")
	for _, c := range []domains.Config{
		{Resolver: "nope", Timeout: time.Second},
		{TLSAddr: "127.0.0.1", Timeout: time.Second},
		{Roots: "/nonexistent.pem", Timeout: time.Second},
		{Timeout: -1},
	} {
		require.Error(t, c.Validate())
	}
}
