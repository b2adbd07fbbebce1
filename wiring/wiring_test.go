package wiring

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/registry"
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

// A worker needs a runtime, and an OpenShift-only worker can neither run
// Docker tenants nor build images; each refusal names the setting.
func TestRuntimeSettingsAreChecked(t *testing.T) {
	_, err := NewIntegrations(Config{DockerDisabled: true}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "TENANTFLOW_DOCKER_DISABLED")
	require.ErrorContains(t, err, openshift.EnvKubeconfig)

	_, err = NewIntegrations(Config{Docker: docker.Config{SubnetPool: "10.9.0.0/33"}}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, docker.EnvSubnetPool)

	_, err = NewIntegrations(Config{DockerDisabled: true, CacheSize: -1}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "TENANTFLOW_WORKER_CACHE_SIZE=-1 must not be negative")

	_, err = NewIntegrations(Config{OpenShift: openshift.Config{Kubeconfig: "/k", InCluster: true, VolumeSize: "1Gi"}}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "openshift: set TENANTFLOW_OPENSHIFT_KUBECONFIG or TENANTFLOW_OPENSHIFT_IN_CLUSTER, not both")

	_, err = NewIntegrations(Config{DockerDisabled: true, OpenShift: openshift.Config{Kubeconfig: "/k", VolumeSize: "1Gi"},
		GitLab: gitlab.Config{Enabled: true}, Registry: registry.Config{Enabled: true}}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "image builds (TENANTFLOW_REGISTRY_ENABLED) run on the Docker Engine")

	_, err = NewIntegrations(Config{DockerDisabled: true, OpenShift: openshift.Config{Kubeconfig: "/k", VolumeSize: "1Gi"},
		GitLab: gitlab.Config{Enabled: true}}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "TENANTFLOW_GITLAB_ENABLED builds images: it needs TENANTFLOW_REGISTRY_ENABLED too")

	// OpenShift tenants keep their volumes for the retention, backup
	// location or not: no retention would purge them at once.
	_, err = NewIntegrations(Config{DockerDisabled: true, OpenShift: openshift.Config{Kubeconfig: "/k", VolumeSize: "1Gi"}}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "TENANTFLOW_BACKUP_RETENTION 0s must be positive")

	d, err := NewIntegrations(Config{DockerDisabled: true, OpenShift: openshift.Config{Kubeconfig: "/k", VolumeSize: "1Gi"},
		Backup: backup.Config{Retention: time.Hour}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, []string{"docker"}, d.Integrations.Routed, "only Docker tenants are behind the proxy")
}

// Builds of git projects need the registry alone: the build activities
// then read git repositories, and nothing of GitLab's is registered.
func TestBuildsWithoutGitLab(t *testing.T) {
	d, err := NewIntegrations(Config{DockerDisabled: false, Backup: backup.Config{Retention: time.Hour},
		Registry: registry.Config{Enabled: true, URL: "http://127.0.0.1:5050"}}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NotNil(t, d.Build)
	require.NotNil(t, d.Build.Git)
	require.Nil(t, d.Build.Source, "no GitLab source (a typed nil would pass for one)")
	require.Nil(t, d.GitLab)
}
