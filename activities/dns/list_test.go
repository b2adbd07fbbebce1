package dns_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// Inspect tells a tenant's name apart: published by a run (its owner),
// absent, or held by someone else; it changes nothing.
func TestInspectReadsTheRecordAndItsOwners(t *testing.T) {
	b := harness.StartBind(t, zone)
	c := newClient(t, b, "10.0.0.42")
	a := dns.NewActivities(c)
	_, err := a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: "acme." + zone, Owner: "run-1"})
	require.NoError(t, err)
	addForeignRecord(t, b, "www."+zone, "10.9.9.9")

	st, err := c.Inspect(ctx(t), "acme", "acme."+zone)
	require.NoError(t, err)
	require.Equal(t, dns.NameState{Tenant: "acme", Name: "acme." + zone + ".", Addresses: []string{"10.0.0.42"}, Owners: []string{"run-1"}}, st)

	st, err = c.Inspect(ctx(t), "beta", "beta."+zone)
	require.NoError(t, err)
	require.Empty(t, st.Addresses, "absent")
	require.Empty(t, st.Owners)

	st, err = c.Inspect(ctx(t), "www", "www."+zone)
	require.NoError(t, err)
	require.Equal(t, []string{"10.9.9.9"}, st.Addresses)
	require.Empty(t, st.Owners, "not Tenantflow's")

	// Another tenant's mark on acme's name is not acme's.
	st, err = c.Inspect(ctx(t), "acme2", "acme."+zone)
	require.NoError(t, err)
	require.True(t, st.Foreign)
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, "acme."+zone, "A"), "nothing changed")
}
