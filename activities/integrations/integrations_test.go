package integrations

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlan(t *testing.T) {
	a := &Activities{Settings: Settings{Routing: true, Domain: "apps.example.com.", PublicScheme: "https",
		DNS: true, Directory: true, CMDB: true, Supervision: true, ProbePublic: true}}
	p, err := a.PlanIntegrations(context.Background(), Input{Tenant: "acme"})
	require.NoError(t, err)
	require.Equal(t, Plan{Routing: true, Host: "acme.apps.example.com", URL: "https://acme.apps.example.com",
		DNS: true, Directory: true, AdminUser: "admin", CMDB: true, Supervision: true, ProbePublic: true}, p)

	a.Settings.PublicPort, a.Settings.PublicScheme = "8443", ""
	p, _ = a.PlanIntegrations(context.Background(), Input{Tenant: "acme"})
	require.Equal(t, "https://acme.apps.example.com:8443", p.URL)

	// Probing the public URL needs a public URL.
	a.Settings = Settings{DNS: true, Domain: "apps.example.com", Supervision: true, ProbePublic: true}
	p, _ = a.PlanIntegrations(context.Background(), Input{Tenant: "acme"})
	require.False(t, p.ProbePublic)
	require.Empty(t, p.URL)
	require.Equal(t, "acme.apps.example.com", p.Host)

	a.Settings = Settings{Routing: true}
	_, err = a.PlanIntegrations(context.Background(), Input{Tenant: "acme"})
	require.ErrorContains(t, err, "TENANTFLOW_PROXY_DOMAIN")

	require.Equal(t, []string{"routing", "dns", "ldap", "cmdb", "supervision"},
		Settings{Routing: true, DNS: true, Directory: true, CMDB: true, Supervision: true}.Enabled())
	require.Equal(t, []string{}, Settings{}.Enabled())

	none, err := (&Activities{}).PlanIntegrations(context.Background(), Input{Tenant: "acme"})
	require.NoError(t, err)
	require.Equal(t, Plan{}, none)
}
