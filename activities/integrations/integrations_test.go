package integrations

import (
	"context"
	"testing"
	"time"

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

// An OpenShift tenant's Route is its URL, so it is not routed through the
// proxy, and its volumes are kept in place, so it needs no backup location.
func TestPlanFollowsTheRuntime(t *testing.T) {
	a := &Activities{Settings: Settings{Routing: true, Domain: "apps.example.com", DNS: true, Supervision: true, ProbePublic: true,
		Retention: time.Hour, Routed: []string{"docker"}, KeepInPlace: []string{"openshift"}}}
	docker, err := a.PlanIntegrations(context.Background(), Input{Tenant: "acme"})
	require.NoError(t, err)
	require.True(t, docker.Routing)
	require.True(t, docker.ProbePublic)
	require.False(t, docker.Backup, "a Docker tenant needs the backup location")
	require.Equal(t, docker, must(a.PlanIntegrations(context.Background(), Input{Tenant: "acme", Runtime: "docker"})), "no runtime is docker")

	os, err := a.PlanIntegrations(context.Background(), Input{Tenant: "acme", Runtime: "openshift"})
	require.NoError(t, err)
	require.False(t, os.Routing)
	require.False(t, os.ProbePublic)
	require.Empty(t, os.URL)
	require.False(t, os.DNS, "the router's wildcard record serves it")
	require.Empty(t, os.Host)
	require.True(t, os.Backup)
	require.Equal(t, time.Hour, os.Retention)
}

func must(p Plan, err error) Plan {
	if err != nil {
		panic(err)
	}
	return p
}
