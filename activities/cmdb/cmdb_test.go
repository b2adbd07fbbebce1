package cmdb

import (
	"context"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite/itopfake"
)

const (
	itopUser = "tenantflow"
	itopPwd  = "Sup3r-secret!"
)

func testConfig(url string) Config {
	return Config{Enabled: true, URL: url, User: itopUser, Password: itopPwd, Auth: AuthForm, Version: "1.3", Timeout: 5 * time.Second}
}

func newActivities(t *testing.T, cfg Config) *Activities {
	t.Helper()
	a, err := New(cfg, harness.Logger(t))
	require.NoError(t, err)
	a.now = func() time.Time { return time.Date(2025, 3, 14, 23, 30, 0, 0, time.UTC) }
	return a
}

func setup(t *testing.T) (*itopfake.Server, *Activities) {
	t.Helper()
	s := itopfake.New(t, itopUser, itopPwd)
	return s, newActivities(t, testConfig(s.URL))
}

func prodInput(tenant string) CMDBInput {
	return CMDBInput{
		Tenant: tenant, Stage: "prod", Template: "shop", URL: "https://" + tenant + ".example.com",
		Services: []CMDBService{{Name: "web", Image: "nginx:1.27", ContainerID: "3f2a9c81d0e4b5a6c7d8"}, {Name: "db", Image: "postgres:16"}},
	}
}

// tenantObjects reads, from the fake itself, the organizations coded
// tenant and the applications named for it.
func tenantObjects(s *itopfake.Server, tenant string) (orgs, apps []itopfake.Object) {
	for _, o := range s.Objects(ClassOrganization) {
		if o.Fields["code"] == OrganizationCode(tenant) {
			orgs = append(orgs, o)
		}
	}
	for _, o := range s.Objects(ClassApplication) {
		if o.Fields["name"] == ApplicationName(tenant) {
			apps = append(apps, o)
		}
	}
	return orgs, apps
}

func creates(s *itopfake.Server) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Operation == "core/create" {
			n++
		}
	}
	return n
}

func TestRegisterCreatesOrganizationAndApplication(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	rec, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)

	orgs, apps := tenantObjects(s, "acme")
	require.Len(t, orgs, 1)
	require.Len(t, apps, 1)
	require.Equal(t, rec.OrganizationID, orgs[0].ID)
	require.Equal(t, rec.ApplicationSolutionID, apps[0].ID)
	require.Equal(t, "acme", orgs[0].Fields["name"])
	require.Equal(t, StatusActive, orgs[0].Fields["status"])
	app := apps[0].Fields
	require.Equal(t, orgs[0].ID, app["org_id"])
	require.Equal(t, StatusActive, app["status"])
	require.Equal(t, CriticityHigh, app["business_criticity"])
	require.Equal(t, "2025-03-14", app["move2production"])
	require.Contains(t, app["description"], "URL: https://acme.example.com")
	require.Contains(t, app["description"], "Template: shop")
	require.Contains(t, app["description"], "Stage: prod")
	require.Contains(t, app["description"], "- web: nginx:1.27 (container 3f2a9c81d0e4)")
	require.Contains(t, app["description"], "- db: postgres:16")
	require.Empty(t, rec.SoftwareIDs)

	// Credentials went as auth_user/auth_pwd, the default.
	for _, c := range s.Calls() {
		require.Equal(t, "form", c.Auth)
	}

	staging := prodInput("beta")
	staging.Stage = "staging"
	_, err = a.RegisterInCMDB(ctx, staging)
	require.NoError(t, err)
	_, apps = tenantObjects(s, "beta")
	require.Len(t, apps, 1)
	require.Equal(t, CriticityLow, apps[0].Fields["business_criticity"])
	require.Equal(t, StatusActive, apps[0].Fields["status"])
}

func TestRegisterAgainUpdatesInPlace(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	first, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)
	made := creates(s)

	second, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)
	require.Equal(t, first, second)
	require.Equal(t, made, creates(s), "a second registration created something")
	for _, c := range s.Calls()[len(s.Calls())-2:] {
		require.Equal(t, "core/get", c.Operation, "an unchanged registration only reads")
	}

	a.now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	changed := prodInput("acme")
	changed.URL = "https://shop.acme.example"
	changed.Stage = "staging"
	third, err := a.RegisterInCMDB(ctx, changed)
	require.NoError(t, err)
	require.Equal(t, first, third)

	orgs, apps := tenantObjects(s, "acme")
	require.Len(t, orgs, 1)
	require.Len(t, apps, 1)
	require.Contains(t, apps[0].Fields["description"], "URL: https://shop.acme.example")
	require.NotContains(t, apps[0].Fields["description"], "acme.example.com")
	require.Equal(t, CriticityLow, apps[0].Fields["business_criticity"])
	require.Equal(t, "2025-03-14", apps[0].Fields["move2production"], "move2production is set on creation only")
	require.Equal(t, made, creates(s))
}

func TestRemoveDeletesWhatRegisterCreated(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	_, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)
	_, err = a.RegisterInCMDB(ctx, prodInput("other"))
	require.NoError(t, err)

	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme"}))
	orgs, apps := tenantObjects(s, "acme")
	require.Empty(t, orgs)
	require.Empty(t, apps)
	orgs, apps = tenantObjects(s, "other")
	require.Len(t, orgs, 1, "another tenant's organization was touched")
	require.Len(t, apps, 1)

	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme"}), "removing again")
	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "never-registered"}))
}

func TestRemoveKeepsAnOrganizationOthersUse(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	rec, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)
	// Someone attached their own application to the tenant's organization.
	theirs := s.Seed(ClassApplication, map[string]any{"name": "acme billing", "org_id": rec.OrganizationID})

	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme"}))
	_, apps := tenantObjects(s, "acme")
	require.Empty(t, apps, "our application is deleted")
	_, ok := s.Object(ClassApplication, theirs)
	require.True(t, ok, "their application is kept")
	_, ok = s.Object(ClassOrganization, rec.OrganizationID)
	require.True(t, ok, "the organization they use is kept")
}

func TestMarkObsoleteKeepsEverything(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	rec, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)

	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme"}))
	orgs, apps := tenantObjects(s, "acme")
	require.Len(t, orgs, 1)
	require.Len(t, apps, 1)
	require.Equal(t, rec.OrganizationID, orgs[0].ID)
	require.Equal(t, rec.ApplicationSolutionID, apps[0].ID)
	require.Equal(t, StatusInactive, apps[0].Fields["status"])
	require.Equal(t, StatusInactive, orgs[0].Fields["status"])

	calls := len(s.Calls())
	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme"}))
	for _, c := range s.Calls()[calls:] {
		require.Equal(t, "core/get", c.Operation, "marking twice writes nothing")
	}
	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "never-registered"}))

	// Registering again (a tenant brought back) makes them active again.
	again, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)
	require.Equal(t, rec, again)
	orgs, apps = tenantObjects(s, "acme")
	require.Equal(t, StatusActive, apps[0].Fields["status"])
	require.Equal(t, StatusActive, orgs[0].Fields["status"])
}

func TestSameNameOrganizationOfSomeoneElseIsNotTouched(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	// iTop allows duplicate names: these belong to people, not Tenantflow.
	sameName := s.Seed(ClassOrganization, map[string]any{"name": "acme", "code": "ACME-CORP"})
	sameCodeOtherCase := s.Seed(ClassOrganization, map[string]any{"name": "Acme Inc.", "code": "ACME"})
	before := s.Objects(ClassOrganization)

	rec, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)
	require.NotEqual(t, sameName, rec.OrganizationID)
	require.NotEqual(t, sameCodeOtherCase, rec.OrganizationID)
	orgs, _ := tenantObjects(s, "acme")
	require.Len(t, orgs, 1)
	require.Len(t, s.Objects(ClassOrganization), 3)

	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme"}))
	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme"}))
	require.Equal(t, before, s.Objects(ClassOrganization), "someone else's organizations changed")
}

func TestDuplicateApplicationsAreCollapsed(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	// What an attempt that timed out after its create, then retried, leaves.
	org := s.Seed(ClassOrganization, map[string]any{"name": "acme", "code": OrganizationCode("acme")})
	keep := s.Seed(ClassApplication, map[string]any{"name": ApplicationName("acme"), "org_id": org})
	s.Seed(ClassApplication, map[string]any{"name": ApplicationName("acme"), "org_id": org})

	rec, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)
	require.Equal(t, org, rec.OrganizationID)
	require.Equal(t, keep, rec.ApplicationSolutionID)
	_, apps := tenantObjects(s, "acme")
	require.Len(t, apps, 1)
	require.Equal(t, CriticityHigh, apps[0].Fields["business_criticity"])
}

func TestWrongPasswordIsPermanent(t *testing.T) {
	s := itopfake.New(t, itopUser, itopPwd)
	for _, auth := range []string{AuthForm, AuthBasic} {
		t.Run(auth, func(t *testing.T) {
			cfg := testConfig(s.URL)
			cfg.Auth = auth
			cfg.Password = "wrong-password"
			a := newActivities(t, cfg)
			_, err := a.RegisterInCMDB(context.Background(), prodInput("acme"))
			harness.RequireNonRetryable(t, err, ErrUnauthorized)
			require.Contains(t, err.Error(), "Invalid login")
			require.NotContains(t, err.Error(), "wrong-password")
			harness.RequireNonRetryable(t, a.RemoveFromCMDB(context.Background(), CMDBRef{Tenant: "acme"}), ErrUnauthorized)
			harness.RequireNonRetryable(t, a.client.Check(context.Background()), ErrUnauthorized)
		})
	}
	require.Empty(t, s.Objects(ClassOrganization))

	// The right password over Basic authentication works.
	cfg := testConfig(s.URL)
	cfg.Auth = AuthBasic
	a := newActivities(t, cfg)
	require.NoError(t, a.client.Check(context.Background()))
	_, err := a.RegisterInCMDB(context.Background(), prodInput("acme"))
	require.NoError(t, err)
	calls := s.Calls()
	require.Equal(t, "basic", calls[len(calls)-1].Auth)
}

func TestOutageIsRetryable(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()

	s.SetDown(true)
	_, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	harness.RequireRetryable(t, err)
	require.Contains(t, err.Error(), "503")
	harness.RequireRetryable(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme"}))
	harness.RequireRetryable(t, a.client.Check(ctx))
	s.SetDown(false)

	rec, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)

	s.SetDropConnections(true)
	harness.RequireRetryable(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme"}))
	s.SetDropConnections(false)
	require.NoError(t, a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme"}))

	orgs, apps := tenantObjects(s, "acme")
	require.Len(t, orgs, 1)
	require.Len(t, apps, 1)
	require.Equal(t, rec.ApplicationSolutionID, apps[0].ID)
	require.Equal(t, StatusInactive, apps[0].Fields["status"])
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	a := newActivities(t, testConfig("http://"+addr))
	_, err = a.RegisterInCMDB(context.Background(), prodInput("acme"))
	harness.RequireRetryable(t, err)
	require.NotContains(t, err.Error(), itopPwd)
}

func TestITopFailureCodes(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()

	// Internal errors (locks, deadlocks) are retried, message kept.
	s.FailNext(CodeInternalError, "Error: SQLSTATE[40001]: Serialization failure: 1213 Deadlock found when trying to get lock")
	_, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	harness.RequireRetryable(t, err)
	require.Contains(t, err.Error(), "Deadlock found")
	_, err = a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)

	// Code 100 saying the request does not fit the datamodel is permanent.
	s.FailNext(CodeInternalError, "Error: Unexpected value for attribute 'status': Value not allowed [production]")
	_, err = a.RegisterInCMDB(ctx, prodInput("acme"))
	harness.RequireNonRetryable(t, err, ErrRequestRejected)

	// iTop 3.2's answers to values and keys that do not fit are permanent,
	// as the fake answers them and as a real iTop words them.
	for _, msg := range []string{
		`Error: move2production: Wrong format for date attribute move2production, expecting "Y-m-d" and got "14/03/2025"`,
		"Error: org_id: No item found for query: SELECT Organization WHERE code = 'tenantflow-acme'",
		"Error: Invalid object ApplicationSolution::42",
		"Error: org_id: Attribute pointing to an object that is either non existing or not readable by the current user: current_object = ApplicationSolution::-1, attcode = org_id",
	} {
		s.FailNext(CodeInternalError, msg)
		_, err = a.RegisterInCMDB(ctx, prodInput("acme"))
		harness.RequireNonRetryable(t, err, ErrRequestRejected)
		require.Contains(t, err.Error(), msg[len("Error: "):])
	}

	for _, code := range []int{CodeMissingVersion, CodeMissingJSON, CodeInvalidJSON, CodeUnsupportedVersion, CodeUnknownOperation, CodeUnsafe, CodeInvalidPage} {
		s.FailNext(code, "Error: refused")
		err := a.MarkObsoleteInCMDB(ctx, CMDBRef{Tenant: "acme"})
		harness.RequireNonRetryable(t, err, ErrRequestRejected)
		require.Contains(t, err.Error(), "Error: refused")
	}
	s.FailNext(CodeUnauthorized, "Error: The current user does not have enough permissions for deleting data of class ApplicationSolution")
	harness.RequireNonRetryable(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme"}), ErrUnauthorized)

	orgs, apps := tenantObjects(s, "acme")
	require.Len(t, orgs, 1)
	require.Len(t, apps, 1)
}

func TestUnsupportedVersionIsPermanent(t *testing.T) {
	s := itopfake.New(t, itopUser, itopPwd)
	cfg := testConfig(s.URL)
	cfg.Version = "2.0"
	a := newActivities(t, cfg)
	err := a.client.Check(context.Background())
	harness.RequireNonRetryable(t, err, ErrRequestRejected)
	require.Contains(t, err.Error(), "There is no service available for version '2.0'")
}

func TestAPIVersion10WithoutKeys(t *testing.T) {
	s := itopfake.New(t, itopUser, itopPwd)
	cfg := testConfig(s.URL)
	cfg.Version = "1.0" // answers have no "key": ids come from "Class::id"
	a := newActivities(t, cfg)
	rec, err := a.RegisterInCMDB(context.Background(), prodInput("acme"))
	require.NoError(t, err)
	orgs, apps := tenantObjects(s, "acme")
	require.Len(t, orgs, 1)
	require.Equal(t, orgs[0].ID, rec.OrganizationID)
	require.Equal(t, apps[0].ID, rec.ApplicationSolutionID)
	require.NoError(t, a.RemoveFromCMDB(context.Background(), CMDBRef{Tenant: "acme"}))
	require.Empty(t, s.Objects(ClassOrganization))
}

func TestInvalidTenantIsPermanent(t *testing.T) {
	s, a := setup(t)
	for _, tenant := range []string{"", "Acme", "acme'; --", "-acme", strings.Repeat("a", 64)} {
		_, err := a.RegisterInCMDB(context.Background(), CMDBInput{Tenant: tenant})
		harness.RequireNonRetryable(t, err, ErrInvalidInput)
		harness.RequireNonRetryable(t, a.RemoveFromCMDB(context.Background(), CMDBRef{Tenant: tenant}), ErrInvalidInput)
		harness.RequireNonRetryable(t, a.MarkObsoleteInCMDB(context.Background(), CMDBRef{Tenant: tenant}), ErrInvalidInput)
	}
	require.Empty(t, s.Calls())
}

func TestCheck(t *testing.T) {
	s, a := setup(t)
	require.NoError(t, a.client.Check(context.Background()))
	require.Equal(t, "core/get", s.Calls()[0].Operation)
}

func TestOQLQuote(t *testing.T) {
	require.Equal(t, `'acme'`, oqlQuote("acme"))
	require.Equal(t, `'it\'s \\ ok'`, oqlQuote(`it's \ ok`))
}

// A customer's own organization coded with the tenant's bare name is never
// adopted, renamed, or deleted by compensation.
func TestForeignOrganizationIsLeftAlone(t *testing.T) {
	s, a := setup(t)
	ctx := context.Background()
	theirs := s.Seed(ClassOrganization, map[string]any{"name": "ACME Corporation", "code": "acme"})
	rec, err := a.RegisterInCMDB(ctx, prodInput("acme"))
	require.NoError(t, err)
	require.NotEqual(t, theirs, rec.OrganizationID)
	require.NoError(t, a.RemoveFromCMDB(ctx, CMDBRef{Tenant: "acme"}))
	o, ok := s.Object(ClassOrganization, theirs)
	require.True(t, ok, "their organization must survive")
	require.Equal(t, "ACME Corporation", o.Fields["name"])
}
