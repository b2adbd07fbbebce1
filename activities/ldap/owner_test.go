package ldap_test

import (
	"context"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// A tenant requested again after its workflow was terminated (run B) can
// neither adopt the live tenant's directory (run A) with its users, nor
// delete or lock it by compensation.
func TestDirectoryOfAnotherRunIsNeitherAdoptedNorRemoved(t *testing.T) {
	srv, _, a := directory(t)
	ctx := context.Background()
	runA := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1", Owner: "run-a"}
	d, err := a.EnsureDirectory(ctx, runA)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"Tenantflow tenant acme", "Tenantflow owner run-a"}, entry(t, srv, d.OU).GetAttributeValues("description"))
	before, err := entries(t, srv, d.OU)
	require.NoError(t, err)

	runB := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "another-password-456", Owner: "run-b"}
	_, err = a.EnsureDirectory(ctx, runB)
	appErr := harness.RequireNonRetryable(t, err, ldap.ErrResourceNotOurs)
	require.Contains(t, appErr.Error(), "run-a")
	runB.Adopt = true // adopting is for directories from before runs were stamped only
	_, err = a.EnsureDirectory(ctx, runB)
	harness.RequireNonRetryable(t, err, ldap.ErrResourceNotOurs)
	refB := ldap.DirectoryRef{Tenant: "acme", Owner: "run-b"}
	harness.RequireNonRetryable(t, a.EnableAccounts(ctx, refB), ldap.ErrResourceNotOurs)

	require.NoError(t, a.DisableAccounts(ctx, refB), "run B's undo succeeds")
	require.NoError(t, a.RemoveDirectory(ctx, refB), "run B's compensation succeeds")
	after, err := entries(t, srv, d.OU)
	require.NoError(t, err)
	require.Equal(t, before, after, "run B changed run A's directory")
	require.NoError(t, bind(t, srv.URL, d.Admin, runA.AdminPassword), "run A's admin must still bind with its own password")

	// Run A's retry converges; its own removal works.
	_, err = a.EnsureDirectory(ctx, runA)
	require.NoError(t, err)
	refA := ldap.DirectoryRef{Tenant: "acme", Owner: "run-a"}
	require.NoError(t, a.DisableAccounts(ctx, refA))
	requireBindRejected(t, bind(t, srv.URL, d.Admin, runA.AdminPassword))
	require.NoError(t, a.EnableAccounts(ctx, refA))
	require.NoError(t, bind(t, srv.URL, d.Admin, runA.AdminPassword))
	require.NoError(t, a.RemoveDirectory(ctx, refA))
	_, err = entries(t, srv, d.OU)
	require.True(t, goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject), "run A's OU still there: %v", err)
}

// A directory made before runs were stamped (description "Tenantflow
// tenant <t>" only) — the previous customer's after an incomplete purge, or
// a live tenant's from before the change — is never adopted by a
// provisioning; the release, decommission or restore of the existing tenant
// (Adopt) takes it over.
func TestLegacyDirectoryIsAdoptedOnlyWithAdopt(t *testing.T) {
	srv, _, a := directory(t)
	ctx := context.Background()
	legacy := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "previous-customer-pw1"}
	d, err := a.EnsureDirectory(ctx, legacy) // no owner: as before runs were stamped
	require.NoError(t, err)
	require.Equal(t, []string{"Tenantflow tenant acme"}, entry(t, srv, d.OU).GetAttributeValues("description"))
	require.NoError(t, a.DisableAccounts(ctx, ldap.DirectoryRef{Tenant: "acme"}))
	before, err := entries(t, srv, d.OU)
	require.NoError(t, err)

	provision := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "new-customer-pw-789", Owner: "run-new"}
	_, err = a.EnsureDirectory(ctx, provision)
	harness.RequireNonRetryable(t, err, ldap.ErrResourceNotOurs)
	require.NoError(t, a.RemoveDirectory(ctx, ldap.DirectoryRef{Tenant: "acme", Owner: "run-new"}))
	after, err := entries(t, srv, d.OU)
	require.NoError(t, err)
	require.Equal(t, before, after, "a provisioning touched a directory from before runs were stamped")

	// The existing tenant's restore (Adopt) re-enables and stamps it.
	restore := ldap.DirectoryRef{Tenant: "acme", Owner: "run-old", Adopt: true}
	require.NoError(t, a.EnableAccounts(ctx, restore))
	require.NoError(t, bind(t, srv.URL, d.Admin, legacy.AdminPassword))
	require.ElementsMatch(t, []string{"Tenantflow tenant acme", "Tenantflow owner run-old"}, entry(t, srv, d.OU).GetAttributeValues("description"))
	_, err = a.EnsureDirectory(ctx, ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "new-customer-pw-789", Owner: "run-new", Adopt: true})
	harness.RequireNonRetryable(t, err, ldap.ErrResourceNotOurs)

	// A purge (Adopt) removes a legacy directory of its tenant.
	other, err := a.EnsureDirectory(ctx, ldap.DirectoryInput{Tenant: "globex", AdminUser: "admin", AdminPassword: "globex-password-1234"})
	require.NoError(t, err)
	require.NoError(t, a.RemoveDirectory(ctx, ldap.DirectoryRef{Tenant: "globex", Owner: "run-g"}))
	_, err = entries(t, srv, other.OU)
	require.NoError(t, err, "removed without Adopt")
	require.NoError(t, a.RemoveDirectory(ctx, ldap.DirectoryRef{Tenant: "globex", Owner: "run-g", Adopt: true}))
	_, err = entries(t, srv, other.OU)
	require.True(t, goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject), "OU still there: %v", err)
}
