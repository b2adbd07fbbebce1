package cmdb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

func runInput(tenant, owner string) CMDBInput {
	in := prodInput(tenant)
	in.Owner = owner
	return in
}

// A tenant requested again after its workflow was terminated (run B) is
// refused while run A's entry is active, and B's compensation (remove or
// mark obsolete) leaves A's entry as it is.
func TestEntryOfAnotherRunIsNeitherAdoptedNorRemoved(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	recA, err := a.RegisterInCMDB(ctx, runInput("acme", "run-a"))
	require.NoError(t, err)
	_, apps := tenantObjects(s, "acme")
	require.Len(t, apps, 1)
	require.Contains(t, apps[0].Fields["description"], "Tenantflow owner: run-a")
	before := s.Objects(ClassApplication)
	orgsBefore := s.Objects(ClassOrganization)

	for _, adopt := range []bool{false, true} { // adopting is for entries from before runs were stamped only
		in := runInput("acme", "run-b")
		in.Adopt = adopt
		_, err = a.RegisterInCMDB(ctx, in)
		appErr := harness.RequireNonRetryable(t, err, ErrResourceNotOurs)
		require.Contains(t, appErr.Error(), "run-a")
	}
	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme", Owner: "run-b"}))
	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme", Owner: "run-b"}))
	require.Equal(t, before, s.Objects(ClassApplication), "run B changed run A's application")
	require.Equal(t, orgsBefore, s.Objects(ClassOrganization), "run B changed the organization")

	// Run A's retry converges on its own entry.
	made := creates(s)
	again, err := a.RegisterInCMDB(ctx, runInput("acme", "run-a"))
	require.NoError(t, err)
	require.Equal(t, recA, again)
	require.Equal(t, made, creates(s))
	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme", Owner: "run-a"}))
	orgs, apps := tenantObjects(s, "acme")
	require.Empty(t, apps)
	require.Empty(t, orgs)
}

// Trigger (a): tenant acme was purged, its entry stays obsolete with its
// history. A new acme registers its own entry beside it (never adopting
// it), and the new one's compensation deletes only its own entry and puts
// the organization back to obsolete.
func TestNewTenantOfAPurgedNameKeepsThePredecessorsHistory(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	old, err := a.RegisterInCMDB(ctx, runInput("acme", "run-old"))
	require.NoError(t, err)
	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme", Owner: "run-old"}))
	oldApp, ok := s.Object(ClassApplication, old.ApplicationSolutionID)
	require.True(t, ok)

	rec, err := a.RegisterInCMDB(ctx, runInput("acme", "run-new"))
	require.NoError(t, err)
	require.NotEqual(t, old.ApplicationSolutionID, rec.ApplicationSolutionID, "the predecessor's entry was adopted")
	require.Equal(t, old.OrganizationID, rec.OrganizationID, "the organization stands for the name")
	orgs, apps := tenantObjects(s, "acme")
	require.Len(t, apps, 2)
	require.Equal(t, StatusActive, orgs[0].Fields["status"])
	got, _ := s.Object(ClassApplication, old.ApplicationSolutionID)
	require.Equal(t, oldApp, got, "the predecessor's entry changed")

	// A retry of the new registration finds its own entry again.
	again, err := a.RegisterInCMDB(ctx, runInput("acme", "run-new"))
	require.NoError(t, err)
	require.Equal(t, rec, again)

	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme", Owner: "run-new"}))
	orgs, apps = tenantObjects(s, "acme")
	require.Len(t, apps, 1)
	require.Equal(t, oldApp, apps[0], "the predecessor's history was touched")
	require.Len(t, orgs, 1)
	require.Equal(t, StatusInactive, orgs[0].Fields["status"], "the organization is obsolete again")
}

// An entry made before runs were stamped: an active one (a live tenant of
// before the change) refuses a provisioning and survives its compensation;
// the existing tenant's release or restore (Adopt) takes it over.
func TestLegacyEntryIsAdoptedOnlyWithAdopt(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	legacy, err := a.RegisterInCMDB(ctx, prodInput("acme")) // no owner: as before runs were stamped
	require.NoError(t, err)
	before := s.Objects(ClassApplication)

	_, err = a.RegisterInCMDB(ctx, runInput("acme", "run-new"))
	harness.RequireNonRetryable(t, err, ErrResourceNotOurs)
	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme", Owner: "run-new"}))
	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme", Owner: "run-new"}))
	require.Equal(t, before, s.Objects(ClassApplication), "a provisioning touched an entry from before runs were stamped")

	release := runInput("acme", "run-old")
	release.Adopt = true
	rec, err := a.RegisterInCMDB(ctx, release)
	require.NoError(t, err)
	require.Equal(t, legacy, rec)
	app, _ := s.Object(ClassApplication, rec.ApplicationSolutionID)
	require.Contains(t, app.Fields["description"], "Tenantflow owner: run-old", "adopted and stamped")

	// A decommission (Adopt) marks an unstamped entry of its tenant obsolete.
	_, err = a.RegisterInCMDB(ctx, prodInput("globex"))
	require.NoError(t, err)
	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "globex", Owner: "run-g"}))
	_, apps := tenantObjects(s, "globex")
	require.Equal(t, StatusActive, apps[0].Fields["status"], "marked obsolete without Adopt")
	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "globex", Owner: "run-g", Adopt: true}))
	_, apps = tenantObjects(s, "globex")
	require.Equal(t, StatusInactive, apps[0].Fields["status"])
}

// A bad date, answered the way iTop 3.2 words it (the fake does too), is
// not retried: a retry sends the same date.
func TestBadDateAsITopAnswersIsPermanent(t *testing.T) {
	s, a := setup(t)
	org := s.Seed(ClassOrganization, map[string]any{"name": "acme", "code": OrganizationCode("acme")})
	_, err := a.client.create(context.Background(), ClassApplication,
		map[string]any{"name": ApplicationName("acme"), "org_id": idKey(org), "move2production": "14/03/2025"}, appFields, "test")
	err = activityError(err)
	harness.RequireNonRetryable(t, err, ErrRequestRejected)
	require.Contains(t, err.Error(), `Wrong format for date attribute move2production, expecting "Y-m-d" and got "14/03/2025"`)
	require.Empty(t, s.Objects(ClassApplication))
}
