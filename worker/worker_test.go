package worker

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/proxy"
)

// The plan's host must be the name the proxy routes and DNS publishes,
// whatever case or trailing dot the operator configured.
func TestPlanHostMatchesTheRoutedName(t *testing.T) {
	for _, cfg := range []Config{
		{Proxy: proxy.Config{Enabled: true, Domain: "Apps.Example.COM."}},
		{DNS: dns.Config{Enabled: true, Zone: "APPS.example.com."}},
	} {
		a := &integrations.Activities{Settings: cfg.Settings()}
		plan, err := a.PlanIntegrations(context.Background(), integrations.Input{Tenant: "acme"})
		require.NoError(t, err)
		require.Equal(t, "acme.apps.example.com", plan.Host)
	}
}
