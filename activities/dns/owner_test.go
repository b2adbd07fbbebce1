package dns_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// A tenant requested again after its workflow was terminated (run B) can
// neither take over the live tenant's name (run A) nor, by compensation,
// delete it; run A's retries and its own removal still work.
func TestNameOfAnotherRunIsNeitherTakenNorRemoved(t *testing.T) {
	b := harness.StartBind(t, zone)
	a := newActivities(t, b, "10.0.0.42")
	name := "acme." + zone
	runA := dns.RecordInput{Tenant: "acme", Name: name, Owner: "run-a"}
	runB := dns.RecordInput{Tenant: "acme", Name: name, Owner: "run-b"}

	_, err := a.EnsureDNSRecord(ctx(t), runA)
	require.NoError(t, err)
	require.Equal(t, []string{`"tenantflow-owner=acme/run-a"`}, b.DigShort(t, "_tenantflow."+name, "TXT"))

	_, err = newActivities(t, b, "10.0.0.99").EnsureDNSRecord(ctx(t), runB)
	appErr := requireAppError(t, err, dns.ErrResourceNotOurs)
	require.Contains(t, appErr.Message(), "tenantflow-owner=acme/run-a")
	runB.Adopt = true // adopting is for legacy marks only, never another run's
	_, err = newActivities(t, b, "10.0.0.99").EnsureDNSRecord(ctx(t), runB)
	_ = requireAppError(t, err, dns.ErrResourceNotOurs)
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, name, "A"), "run A's record changed")

	require.NoError(t, a.RemoveDNSRecord(ctx(t), runB), "compensation of run B succeeds")
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, name, "A"), "run B's compensation removed run A's record")
	require.Equal(t, []string{`"tenantflow-owner=acme/run-a"`}, b.DigShort(t, "_tenantflow."+name, "TXT"))

	// Run A's retry converges (a changed ingress too) and its removal works.
	_, err = a.EnsureDNSRecord(ctx(t), runA)
	require.NoError(t, err)
	_, err = newActivities(t, b, "10.0.0.43").EnsureDNSRecord(ctx(t), runA)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.43"}, b.DigShort(t, name, "A"))
	require.NoError(t, a.RemoveDNSRecord(ctx(t), runA))
	require.Equal(t, "NXDOMAIN", b.DigStatus(t, name, "A"))
	require.Empty(t, b.DigShort(t, "_tenantflow."+name, "TXT"))

	// Once the name is free, run B may have it.
	_, err = a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: name, Owner: "run-b"})
	require.NoError(t, err)
	require.Equal(t, []string{`"tenantflow-owner=acme/run-b"`}, b.DigShort(t, "_tenantflow."+name, "TXT"))
}

// A name published before runs were stamped carries the tenant's mark
// only: a provisioning (no Adopt) neither takes nor removes it; the release,
// decommission or restore of the existing tenant (Adopt) does.
func TestLegacyMarkIsAdoptedOnlyWithAdopt(t *testing.T) {
	b := harness.StartBind(t, zone)
	a := newActivities(t, b, "10.0.0.42")
	name := "acme." + zone
	_, err := a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: name}) // as before runs were stamped
	require.NoError(t, err)
	require.Equal(t, []string{`"tenantflow-owner=acme"`}, b.DigShort(t, "_tenantflow."+name, "TXT"))

	provision := dns.RecordInput{Tenant: "acme", Name: name, Owner: "run-a"}
	_, err = newActivities(t, b, "10.0.0.99").EnsureDNSRecord(ctx(t), provision)
	_ = requireAppError(t, err, dns.ErrResourceNotOurs)
	require.NoError(t, a.RemoveDNSRecord(ctx(t), provision))
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, name, "A"), "a provisioning touched a legacy name")

	release := provision
	release.Adopt = true
	_, err = newActivities(t, b, "10.0.0.43").EnsureDNSRecord(ctx(t), release)
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.43"}, b.DigShort(t, name, "A"))
	require.Equal(t, []string{`"tenantflow-owner=acme/run-a"`}, b.DigShort(t, "_tenantflow."+name, "TXT"), "adopted and restamped")

	// A decommission (Adopt) removes a legacy name of its tenant.
	other := "globex." + zone
	_, err = a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "globex", Name: other})
	require.NoError(t, err)
	require.NoError(t, a.RemoveDNSRecord(ctx(t), dns.RecordInput{Tenant: "globex", Name: other, Owner: "run-g"}))
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, other, "A"))
	require.NoError(t, a.RemoveDNSRecord(ctx(t), dns.RecordInput{Tenant: "globex", Name: other, Owner: "run-g", Adopt: true}))
	require.Equal(t, "NXDOMAIN", b.DigStatus(t, other, "A"))
	require.Empty(t, b.DigShort(t, "_tenantflow."+other, "TXT"))
}

// An empty Owner (a test's cleanup) matches any mark of the tenant, as in
// the other packages: it removes a name a run stamped, never one another
// tenant marked (even one whose name starts with its own).
func TestEmptyOwnerRemovesTheNameOfAnyRun(t *testing.T) {
	b := harness.StartBind(t, zone)
	a := newActivities(t, b, "10.0.0.42")
	name := "acme." + zone
	_, err := a.EnsureDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: name, Owner: "run-a"})
	require.NoError(t, err)

	require.NoError(t, a.RemoveDNSRecord(ctx(t), dns.RecordInput{Tenant: "acm", Name: name}))
	require.Equal(t, []string{"10.0.0.42"}, b.DigShort(t, name, "A"), "another tenant's cleanup removed acme's name")

	require.NoError(t, a.RemoveDNSRecord(ctx(t), dns.RecordInput{Tenant: "acme", Name: name}))
	require.Equal(t, "NXDOMAIN", b.DigStatus(t, name, "A"))
	require.Empty(t, b.DigShort(t, "_tenantflow."+name, "TXT"))
}
