package ldap_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

const base = "ou=tenants,dc=example,dc=org"

// directory starts slapd with the tenants container and returns activities
// bound as its root DN.
func directory(t *testing.T) (*harness.Slapd, ldap.Config, *ldap.Activities) {
	t.Helper()
	srv := harness.StartSlapd(t)
	srv.AddOU(t, base)
	cfg := ldap.Config{
		Enabled: true, URL: srv.URL, BindDN: srv.RootDN, BindPassword: srv.RootPassword,
		BaseDN: base, Timeout: 5 * time.Second,
	}
	return srv, cfg, newActivities(t, cfg)
}

func newActivities(t *testing.T, cfg ldap.Config) *ldap.Activities {
	t.Helper()
	return ldap.NewActivities(newClient(t, cfg))
}

// newClient is newActivities' client, for Check.
func newClient(t *testing.T, cfg ldap.Config) *ldap.Client {
	t.Helper()
	c, err := ldap.NewClient(cfg, harness.Logger(t))
	require.NoError(t, err)
	return c
}

// bind tries the credentials on a fresh connection, as a user would.
func bind(t *testing.T, url, dn, password string) error {
	t.Helper()
	c, err := goldap.DialURL(url, goldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	require.NoError(t, err)
	defer c.Close()
	return c.Bind(dn, password)
}

func requireBindRejected(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.True(t, goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials), "want invalid credentials, got %v", err)
}

// entries lists the DNs below (and including) dn, read as the root DN.
func entries(t *testing.T, srv *harness.Slapd, dn string) ([]*goldap.Entry, error) {
	t.Helper()
	res, err := srv.Conn(t).Search(goldap.NewSearchRequest(dn, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectClass", "member", "userPassword", "description"}, nil))
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

func entry(t *testing.T, srv *harness.Slapd, dn string) *goldap.Entry {
	t.Helper()
	res, err := srv.Conn(t).Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectClass", "member", "userPassword", "description", "uid", "cn", "sn"}, nil))
	require.NoError(t, err, dn)
	require.Len(t, res.Entries, 1)
	return res.Entries[0]
}

func TestEnsureDirectory(t *testing.T) {
	srv, _, a := directory(t)
	ctx := context.Background()
	in := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"}

	d, err := a.EnsureDirectory(ctx, in)
	require.NoError(t, err)
	require.Equal(t, ldap.Directory{
		OU:    "ou=acme," + base,
		Group: "cn=acme-admins,ou=acme," + base,
		Admin: "uid=admin,ou=acme," + base,
	}, d)

	require.NoError(t, bind(t, srv.URL, d.Admin, in.AdminPassword))
	requireBindRejected(t, bind(t, srv.URL, d.Admin, "correct-horse-battery-2"))

	ou := entry(t, srv, d.OU)
	require.Equal(t, []string{"Tenantflow tenant acme"}, ou.GetAttributeValues("description"))
	require.Contains(t, ou.GetAttributeValues("objectClass"), "organizationalUnit")

	admin := entry(t, srv, d.Admin)
	require.Contains(t, admin.GetAttributeValues("objectClass"), "inetOrgPerson")
	require.Equal(t, []string{"admin"}, admin.GetAttributeValues("uid"))
	pw := admin.GetAttributeValues("userPassword")
	require.Len(t, pw, 1)
	require.True(t, strings.HasPrefix(pw[0], "{"), "stored password is not hashed")
	require.NotContains(t, pw[0], in.AdminPassword)

	group := entry(t, srv, d.Group)
	require.Contains(t, group.GetAttributeValues("objectClass"), "groupOfNames")
	require.Equal(t, []string{d.Admin}, group.GetAttributeValues("member"))

	all, err := entries(t, srv, d.OU)
	require.NoError(t, err)
	require.Len(t, all, 3)
}

func TestEnsureDirectoryTwiceConverges(t *testing.T) {
	srv, _, a := directory(t)
	ctx := context.Background()
	in := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "first-password-0123"}
	d1, err := a.EnsureDirectory(ctx, in)
	require.NoError(t, err)
	before, err := entries(t, srv, d1.OU)
	require.NoError(t, err)

	in.AdminPassword = "second-password-4567"
	d2, err := a.EnsureDirectory(ctx, in)
	require.NoError(t, err)
	require.Equal(t, d1, d2)

	after, err := entries(t, srv, d2.OU)
	require.NoError(t, err)
	require.Len(t, after, 3)
	require.Len(t, before, 3)
	require.Equal(t, []string{d2.Admin}, entry(t, srv, d2.Group).GetAttributeValues("member"))

	require.NoError(t, bind(t, srv.URL, d2.Admin, "second-password-4567"))
	requireBindRejected(t, bind(t, srv.URL, d2.Admin, "first-password-0123"))
}

func TestEnsureDirectoryRepairsGroupMembership(t *testing.T) {
	srv, _, a := directory(t)
	ctx := context.Background()
	in := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "first-password-0123"}
	d, err := a.EnsureDirectory(ctx, in)
	require.NoError(t, err)

	// someone replaced the member (groupOfNames needs one)
	require.NoError(t, srv.Conn(t).Modify(&goldap.ModifyRequest{DN: d.Group, Changes: []goldap.Change{{
		Operation: goldap.ReplaceAttribute, Modification: goldap.PartialAttribute{Type: "member", Vals: []string{srv.RootDN}},
	}}}))
	_, err = a.EnsureDirectory(ctx, in)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{srv.RootDN, d.Admin}, entry(t, srv, d.Group).GetAttributeValues("member"))
}

func TestEnsureDirectoryLeavesForeignEntryAlone(t *testing.T) {
	srv, _, a := directory(t)
	srv.AddOU(t, "ou=acme,"+base) // not made by Tenantflow: no description
	_, err := a.EnsureDirectory(context.Background(),
		ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "first-password-0123"})
	harness.RequireNonRetryable(t, err, ldap.ErrEntryNotOurs)
	all, err := entries(t, srv, "ou=acme,"+base)
	require.NoError(t, err)
	require.Len(t, all, 1, "nothing may be added below a foreign OU")
}

func TestDisableAndEnableAccounts(t *testing.T) {
	srv, _, a := directory(t)
	ctx := context.Background()
	in := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"}
	d, err := a.EnsureDirectory(ctx, in)
	require.NoError(t, err)
	hash := entry(t, srv, d.Admin).GetAttributeValues("userPassword")[0]

	ref := ldap.DirectoryRef{Tenant: "acme"}
	require.NoError(t, a.DisableAccounts(ctx, ref))
	requireBindRejected(t, bind(t, srv.URL, d.Admin, in.AdminPassword))
	locked := entry(t, srv, d.Admin).GetAttributeValues("userPassword")
	require.Equal(t, []string{ldap.DisabledPrefix + hash}, locked)
	// the stored value itself is no password either (no cleartext fallback)
	requireBindRejected(t, bind(t, srv.URL, d.Admin, locked[0]))

	require.NoError(t, a.DisableAccounts(ctx, ref), "disable twice")
	require.Equal(t, locked, entry(t, srv, d.Admin).GetAttributeValues("userPassword"), "prefixed once only")
	all, err := entries(t, srv, d.OU)
	require.NoError(t, err)
	require.Len(t, all, 3, "disabling deletes nothing")

	require.NoError(t, a.EnableAccounts(ctx, ref))
	require.NoError(t, bind(t, srv.URL, d.Admin, in.AdminPassword))
	require.Equal(t, []string{hash}, entry(t, srv, d.Admin).GetAttributeValues("userPassword"))
	require.NoError(t, a.EnableAccounts(ctx, ref), "enable twice")
	require.NoError(t, bind(t, srv.URL, d.Admin, in.AdminPassword))
}

func TestRemoveDirectory(t *testing.T) {
	srv, _, a := directory(t)
	ctx := context.Background()
	d, err := a.EnsureDirectory(ctx, ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"})
	require.NoError(t, err)
	other, err := a.EnsureDirectory(ctx, ldap.DirectoryInput{Tenant: "other", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"})
	require.NoError(t, err)
	// a nested entry, to prove children go first
	srv.AddOU(t, "ou=extra,"+d.OU)
	srv.AddOU(t, "ou=deeper,ou=extra,"+d.OU)

	ref := ldap.DirectoryRef{Tenant: "acme"}
	require.NoError(t, a.RemoveDirectory(ctx, ref))
	_, err = entries(t, srv, d.OU)
	require.True(t, goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject), "OU still there: %v", err)
	require.NoError(t, a.RemoveDirectory(ctx, ref), "remove again")

	left, err := entries(t, srv, other.OU)
	require.NoError(t, err)
	require.Len(t, left, 3, "another tenant's directory is untouched")

	require.NoError(t, a.DisableAccounts(ctx, ref), "nothing left to disable is success")
	harness.RequireNonRetryable(t, a.EnableAccounts(ctx, ref), ldap.ErrDirectoryMissing)
}

func TestInvalidInput(t *testing.T) {
	_, _, a := directory(t)
	const secret = "short-secret"
	for name, in := range map[string]ldap.DirectoryInput{
		"tenant not a label": {Tenant: "Acme,dc=x", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"},
		"empty tenant":       {Tenant: "", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"},
		"uid with comma":     {Tenant: "acme", AdminUser: "ad,min", AdminPassword: "correct-horse-battery-1"},
		"uid uppercase":      {Tenant: "acme", AdminUser: "Admin", AdminPassword: "correct-horse-battery-1"},
		"short password":     {Tenant: "acme", AdminUser: "admin", AdminPassword: secret},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := a.EnsureDirectory(context.Background(), in)
			harness.RequireNonRetryable(t, err, ldap.ErrInvalidInput)
			require.NotContains(t, err.Error(), secret)
		})
	}
	harness.RequireNonRetryable(t, a.RemoveDirectory(context.Background(), ldap.DirectoryRef{Tenant: "*"}), ldap.ErrInvalidInput)
}

func TestBindRejected(t *testing.T) {
	_, cfg, _ := directory(t)
	cfg.BindPassword = "not-the-root-password"
	c := newClient(t, cfg)
	a := ldap.NewActivities(c)
	harness.RequireNonRetryable(t, c.Check(context.Background()), ldap.ErrBindRejected)
	_, err := a.EnsureDirectory(context.Background(), ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"})
	appErr := harness.RequireNonRetryable(t, err, ldap.ErrBindRejected)
	require.NotContains(t, appErr.Error(), cfg.BindPassword)
}

func TestBaseMissing(t *testing.T) {
	_, cfg, _ := directory(t)
	cfg.BaseDN = "ou=missing,dc=example,dc=org"
	c := newClient(t, cfg)
	a := ldap.NewActivities(c)
	harness.RequireNonRetryable(t, c.Check(context.Background()), ldap.ErrBaseMissing)
	_, err := a.EnsureDirectory(context.Background(), ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"})
	harness.RequireNonRetryable(t, err, ldap.ErrBaseMissing)
}

func TestOutage(t *testing.T) {
	srv, cfg, a := directory(t)
	c := newClient(t, cfg)
	ctx := context.Background()
	first, err := a.EnsureDirectory(ctx, ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"})
	require.NoError(t, err)

	srv.Stop()
	in := ldap.DirectoryInput{Tenant: "beta", AdminUser: "boss", AdminPassword: "correct-horse-battery-2"}
	_, err = a.EnsureDirectory(ctx, in)
	harness.RequireRetryable(t, err)
	harness.RequireRetryable(t, c.Check(ctx))
	harness.RequireRetryable(t, a.RemoveDirectory(ctx, ldap.DirectoryRef{Tenant: "acme"}))

	srv.Start()
	d, err := a.EnsureDirectory(ctx, in)
	require.NoError(t, err)
	require.NoError(t, bind(t, srv.URL, d.Admin, in.AdminPassword))
	kept, err := entries(t, srv, first.OU)
	require.NoError(t, err)
	require.Len(t, kept, 3, "data from before the restart persists")
	require.NoError(t, bind(t, srv.URL, first.Admin, "correct-horse-battery-1"))
}

func TestCanceledContext(t *testing.T) {
	_, _, a := directory(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := a.EnsureDirectory(ctx, ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"})
	require.ErrorIs(t, err, context.Canceled)
}

func TestTLS(t *testing.T) {
	srv, cfg, _ := directory(t)
	in := ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"}

	startTLS := cfg
	startTLS.StartTLS, startTLS.TLSCA = true, srv.CAFile
	c := newClient(t, startTLS)
	a := ldap.NewActivities(c)
	require.NoError(t, c.Check(context.Background()))
	_, err := a.EnsureDirectory(context.Background(), in)
	require.NoError(t, err)

	ldaps := cfg
	ldaps.URL, ldaps.TLSCA = srv.LDAPSURL, srv.CAFile
	d, err := newActivities(t, ldaps).EnsureDirectory(context.Background(), in)
	require.NoError(t, err)
	require.NoError(t, bind(t, srv.URL, d.Admin, in.AdminPassword))

	untrusted := cfg
	untrusted.URL = srv.LDAPSURL // system roots do not know the test CA
	err = newClient(t, untrusted).Check(context.Background())
	require.ErrorContains(t, err, "certificate")
}

func TestClientSideHashFallback(t *testing.T) {
	srv, _, a := directory(t)
	d, err := a.EnsureDirectory(context.Background(), ldap.DirectoryInput{Tenant: "acme", AdminUser: "admin", AdminPassword: "correct-horse-battery-1"})
	require.NoError(t, err)

	require.NoError(t, ldap.StoreSSHA(srv.Conn(t), d.Admin, "fallback-password-123"))
	pw := entry(t, srv, d.Admin).GetAttributeValues("userPassword")
	require.Len(t, pw, 1)
	require.True(t, strings.HasPrefix(pw[0], "{SSHA}"), pw[0])
	require.NoError(t, bind(t, srv.URL, d.Admin, "fallback-password-123"))
	requireBindRejected(t, bind(t, srv.URL, d.Admin, "correct-horse-battery-1"))
}

// A foreign OU with the tenant's name is refused by Ensure and survives the
// compensation that follows.
func TestRemoveLeavesForeignDirectoryAlone(t *testing.T) {
	srv := harness.StartSlapd(t)
	base := "ou=tenants," + srv.Suffix
	srv.AddOU(t, base)
	srv.AddOU(t, "ou=people,"+base)
	srv.AddOU(t, "ou=staff,ou=people,"+base)
	a, err := ldap.New(ldap.Config{Enabled: true, URL: srv.URL, BindDN: srv.RootDN, BindPassword: srv.RootPassword, BaseDN: base, Timeout: 5 * time.Second}, nil)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = a.EnsureDirectory(ctx, ldap.DirectoryInput{Tenant: "people", AdminUser: "admin", AdminPassword: "a-long-enough-password"})
	harness.RequireNonRetryable(t, err, ldap.ErrEntryNotOurs)
	require.NoError(t, a.RemoveDirectory(ctx, ldap.DirectoryRef{Tenant: "people"}))
	conn := srv.Conn(t)
	res, err := conn.Search(goldap.NewSearchRequest("ou=people,"+base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 2, "the foreign OU and its child must survive")
}
