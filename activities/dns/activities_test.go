package dns_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

const zone = "apps.example.test"

// newActivities builds the activities for the BIND instance, pointing
// tenant names at target, after edit has changed the configuration.
func newActivities(t *testing.T, b *harness.Bind, target string, edit ...func(*dns.Config)) *dns.Activities {
	t.Helper()
	return dns.NewActivities(newClient(t, b, target, edit...))
}

// newClient is newActivities' client, for Check and Lookup.
func newClient(t *testing.T, b *harness.Bind, target string, edit ...func(*dns.Config)) *dns.Client {
	t.Helper()
	cfg := dns.Config{
		Enabled: true, Server: b.Addr, Zone: b.Zone,
		TSIGName: b.KeyName, TSIGSecret: b.KeySecret, TSIGAlgorithm: b.KeyAlgorithm,
		TTL: 120 * time.Second, Target: target, Timeout: 2 * time.Second,
	}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := dns.NewClient(cfg, harness.Logger(t))
	require.NoError(t, err)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// requireAppError asserts err is a non-retryable ApplicationError of type.
func requireAppError(t *testing.T, err error, typ string) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want ApplicationError %s, got %T: %v", typ, err, err)
	require.Equal(t, typ, appErr.Type())
	require.True(t, appErr.NonRetryable(), "%s must not be retried", typ)
	return appErr
}

func TestEnsureLookupRemove(t *testing.T) {
	b := harness.StartBind(t, zone)
	c := newClient(t, b, "10.0.0.42")
	a := dns.NewActivities(c)
	require.NoError(t, c.Check(ctx(t)))
	in := dns.RecordInput{Tenant: "acme", Name: "acme." + zone}

	rec, err := a.EnsureDNSRecord(ctx(t), in)
	require.NoError(t, err)
	require.Equal(t, dns.Record{Name: "acme." + zone + ".", Type: "A", Target: "10.0.0.42", TTL: 120}, rec)
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, "acme."+zone, "A"))
	got, err := c.Lookup(ctx(t), in.Name)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.42"}, got)
	require.Contains(t, b.Dig(t, "acme."+zone, "A", "+noall", "+answer"), "120\tIN\tA\t10.0.0.42")

	// A retry (same input, trailing dot or not) publishes nothing new.
	for _, name := range []string{in.Name, in.Name + ".", "ACME.Apps.Example.Test"} {
		_, err = a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: name})
		require.NoError(t, err)
	}
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, "acme."+zone, "A"), "exactly one A record")
	require.Empty(t, b.DigShort(t, "acme."+zone, "AAAA"))

	// A new ingress address replaces the record instead of adding one.
	_, err = newActivities(t, b, "10.0.0.43").EnsureDNSRecord(ctx(t), in)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.43"}, b.DigShort(t, "acme."+zone, "A"))

	// Another tenant's record is untouched by acme's removal.
	_, err = a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "globex", Name: "globex." + zone})
	require.NoError(t, err)

	require.NoError(t, a.RemoveDNSRecord(ctx(t), in))
	require.Equal(t, "NXDOMAIN", b.DigStatus(t, "acme."+zone, "A"))
	require.Empty(t, b.DigShort(t, "acme."+zone, "A"))
	got, err = c.Lookup(ctx(t), in.Name)
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, a.RemoveDNSRecord(ctx(t), in), "removing an absent record is success")
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, "globex."+zone, "A"))
}

func TestTargetSwitchesType(t *testing.T) {
	b := harness.StartBind(t, zone)
	in := dns.RecordInput{Tenant: "acme", Name: "acme." + zone + "."}
	name := "acme." + zone

	_, err := newActivities(t, b, "10.0.0.42").EnsureDNSRecord(ctx(t), in)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, name, "A"))

	// A → CNAME: the A record goes in the same update.
	cnameClient := newClient(t, b, "ingress.example.net")
	cname := dns.NewActivities(cnameClient)
	rec, err := cname.EnsureDNSRecord(ctx(t), in)
	require.NoError(t, err)
	require.Equal(t, dns.Record{Name: name + ".", Type: "CNAME", Target: "ingress.example.net.", TTL: 120}, rec)
	require.Equal(t, []string{"ingress.example.net."}, b.DigShort(t, name, "CNAME"))
	require.Equal(t, []string{"ingress.example.net."}, b.DigShort(t, name, "A"), "only the alias answers an A query")
	got, err := cnameClient.Lookup(ctx(t), name)
	require.NoError(t, err)
	require.Equal(t, []string{"ingress.example.net."}, got)
	_, err = cname.EnsureDNSRecord(ctx(t), in)
	require.NoError(t, err)
	require.Equal(t, []string{"ingress.example.net."}, b.DigShort(t, name, "CNAME"))

	// CNAME → AAAA.
	v6 := newActivities(t, b, "2001:db8::42")
	rec, err = v6.EnsureDNSRecord(ctx(t), in)
	require.NoError(t, err)
	require.Equal(t, "AAAA", rec.Type)
	require.Equal(t, []string{"2001:db8::42"}, b.DigShort(t, name, "AAAA"))
	require.Empty(t, b.DigShort(t, name, "CNAME"))
	require.Empty(t, b.DigShort(t, name, "A"))

	// Removal takes any of the types.
	require.NoError(t, v6.RemoveDNSRecord(ctx(t), in))
	require.Equal(t, "NXDOMAIN", b.DigStatus(t, name, "AAAA"))
}

func TestRejectedUpdateIsPermanent(t *testing.T) {
	b := harness.StartBind(t, zone)
	in := dns.RecordInput{Tenant: "acme", Name: "acme." + zone}
	wrongSecret := base64.StdEncoding.EncodeToString([]byte("not the key the server knows...."))
	for _, tc := range []struct {
		name  string
		edit  func(*dns.Config)
		rcode string
	}{
		{"wrong secret", func(c *dns.Config) { c.TSIGSecret = wrongSecret }, "BADSIG"},
		{"unknown key", func(c *dns.Config) { c.TSIGName = "someone-else" }, "BADKEY"},
		{"wrong algorithm", func(c *dns.Config) { c.TSIGAlgorithm = "hmac-sha512" }, "BADKEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newActivities(t, b, "10.0.0.42", tc.edit)
			_, err := a.EnsureDNSRecord(ctx(t), in)
			appErr := requireAppError(t, err, dns.ErrUpdateRejected)
			require.Contains(t, appErr.Message(), "NOTAUTH (TSIG "+tc.rcode+")")
			require.NotContains(t, appErr.Error(), wrongSecret)
			require.NotContains(t, appErr.Error(), b.KeySecret)
			_ = requireAppError(t, a.RemoveDNSRecord(ctx(t), in), dns.ErrUpdateRejected)
		})
	}
	require.Equal(t, "NXDOMAIN", b.DigStatus(t, "acme."+zone, "A"), "a rejected update changed the zone")

	// A zone the server does not serve: its answer names the rcode.
	otherClient := newClient(t, b, "10.0.0.42", func(c *dns.Config) { c.Zone = "other.example.test" })
	other := dns.NewActivities(otherClient)
	_, err := other.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: "acme.other.example.test"})
	appErr := requireAppError(t, err, dns.ErrUpdateRejected)
	require.Regexp(t, "NOTAUTH|REFUSED|NOTZONE", appErr.Error())
	require.Error(t, otherClient.Check(ctx(t)), "Check must notice the zone is not served")
}

func TestNameOutsideZone(t *testing.T) {
	b := harness.StartBind(t, zone)
	a := newActivities(t, b, "10.0.0.42")
	for _, name := range []string{"acme.example.org", "acme.notapps.example.test", zone, zone + ".", "", "ac me." + zone, "*." + zone} {
		_, err := a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: name})
		_ = requireAppError(t, err, dns.ErrInvalidName)
		_ = requireAppError(t, a.RemoveDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: name}), dns.ErrInvalidName)
	}
	// The zone's own records are intact.
	require.Equal(t, []string{"127.0.0.1"}, b.DigShort(t, "ns1."+zone, "A"))
	require.Len(t, b.DigShort(t, zone, "SOA"), 1)
}

func TestOutageIsRetryableAndJournalSurvives(t *testing.T) {
	b := harness.StartBind(t, zone)
	c := newClient(t, b, "10.0.0.42")
	a := dns.NewActivities(c)
	_, err := a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: "acme." + zone})
	require.NoError(t, err)

	b.Stop()
	in := dns.RecordInput{Tenant: "globex", Name: "globex." + zone}
	_, err = a.EnsureDNSRecord(ctx(t), in)
	harness.RequireRetryable(t, err)
	harness.RequireRetryable(t, a.RemoveDNSRecord(ctx(t), in))
	require.Error(t, c.Check(ctx(t)))
	_, err = c.Lookup(ctx(t), "acme."+zone)
	require.Error(t, err)

	b.Start()
	require.NoError(t, c.Check(ctx(t)))
	_, err = a.EnsureDNSRecord(ctx(t), in)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, "globex."+zone, "A"))
	// The record written before the outage came back from the journal.
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, "acme."+zone, "A"))
	got, err := c.Lookup(ctx(t), "acme."+zone)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.42"}, got)
}

// TestLookupFallsBackToTCP: an answer too big for UDP comes back truncated
// and is asked again over TCP, so nothing is silently cut off.
func TestLookupFallsBackToTCP(t *testing.T) {
	b := harness.StartBind(t, zone)
	name := "big." + zone + "."
	m := new(mdns.Msg)
	m.SetUpdate(zone + ".")
	var want []string
	for i := range 90 { // BIND allows at most 100 records per RRset
		ip := fmt.Sprintf("10.1.0.%d", i+1)
		want = append(want, ip)
		m.Insert([]mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}})
	}
	m.SetTsig(b.KeyName+".", mdns.HmacSHA256, 300, time.Now().Unix())
	c := &mdns.Client{Net: "tcp", TsigSecret: map[string]string{b.KeyName + ".": b.KeySecret}}
	r, _, err := c.Exchange(m, b.Addr)
	require.NoError(t, err)
	require.Equal(t, mdns.RcodeSuccess, r.Rcode)
	require.Len(t, b.DigShort(t, name, "A"), 90)
	udp := b.Dig(t, name, "A", "+ignore", "+bufsize=1232", "+noall", "+comments")
	require.Regexp(t, `flags:[a-z ]* tc[ ;]`, udp, "the UDP answer must be truncated for this test to mean anything")

	got, err := newClient(t, b, "10.0.0.42").Lookup(ctx(t), name)
	require.NoError(t, err)
	require.ElementsMatch(t, want, got)
}

// addForeignRecord adds an A record the way another tool would: a signed
// update without Tenantflow's owner marker.
func addForeignRecord(t *testing.T, b *harness.Bind, name, ip string) {
	t.Helper()
	rr, err := mdns.NewRR(name + ". 300 IN A " + ip)
	require.NoError(t, err)
	m := new(mdns.Msg)
	m.SetUpdate(zone + ".")
	m.Insert([]mdns.RR{rr})
	key := mdns.Fqdn(b.KeyName)
	m.SetTsig(key, mdns.Fqdn(b.KeyAlgorithm), 300, time.Now().Unix())
	c := &mdns.Client{TsigSecret: map[string]string{key: b.KeySecret}}
	r, _, err := c.Exchange(m, b.Addr)
	require.NoError(t, err)
	require.Equal(t, mdns.RcodeSuccess, r.Rcode)
}

// A tenant named like a record someone else keeps in the zone (www, ns1,
// mail) is refused, and the compensating removal leaves that record alone.
func TestNameInUseIsNeverTaken(t *testing.T) {
	b := harness.StartBind(t, zone)
	addForeignRecord(t, b, "www."+zone, "192.0.2.80")
	require.Equal(t, []string{"192.0.2.80"}, b.DigShort(t, "www."+zone, "A"))

	a := newActivities(t, b, "10.0.0.42")
	_, err := a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "www", Name: "www." + zone})
	harness.RequireNonRetryable(t, err, dns.ErrNameInUse)
	require.NoError(t, a.RemoveDNSRecord(ctx(t), dns.RecordInput{Tenant: "www", Name: "www." + zone}))
	require.Equal(t, []string{"192.0.2.80"}, b.DigShort(t, "www."+zone, "A"), "their record survives")
}
