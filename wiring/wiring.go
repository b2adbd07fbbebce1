// Package wiring wires configuration to clients to registrations: it builds
// the runtime driver, registers the workflows and activities on the task
// queue and runs the Temporal worker until its context ends. Several
// processes running it share the task queue; scaling out is Temporal's job.
package wiring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/analysis"
	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/dockerbuild"
	"github.com/tenantflow/tenantflow/activities/domains"
	"github.com/tenantflow/tenantflow/activities/drift"
	"github.com/tenantflow/tenantflow/activities/fence"
	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/activities/gitsource"
	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/activities/placement"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/registry"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/activities/volsync"
	"github.com/tenantflow/tenantflow/internal/config"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
	"github.com/tenantflow/tenantflow/workflows/reconcile"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// Config holds the worker's own settings (Temporal settings are dialled by
// the caller, which shares them with the API).
type Config struct {
	// DockerDisabled makes a worker without a Docker Engine (OpenShift
	// only); by default a Docker Engine runs tenants of runtime docker and
	// image builds. OpenShift, when configured, runs tenants whose
	// template says runtime openshift.
	DockerDisabled bool
	Docker         docker.Config
	OpenShift      openshift.Config
	Proxy          proxy.Config
	DNS            dns.Config
	LDAP           ldap.Config
	CMDB           cmdb.Config
	Supervision    supervision.Config
	// Analysis is the Prometheus releases read for canary analysis.
	Analysis analysis.Config
	// Domains checks tenants' custom domains (with an HTTPS proxy).
	Domains domains.Config
	// Backup is where decommissioned tenants' data goes, and how long it
	// is kept.
	Backup backup.Config
	// Restic is where the tenants' scheduled backups go (one restic
	// repository and key per tenant) and their off-site copies.
	Restic restic.Config
	// GitLab and Registry enable image builds (both, or neither).
	GitLab   gitlab.Config
	Registry registry.Config
	// AdminUser is the uid of each tenant's first directory account.
	AdminUser string
	// ProbePublic makes supervision probe the public URL instead of the
	// service's own endpoint.
	ProbePublic bool
	// StopTimeout is how long running activities get to finish on shutdown.
	StopTimeout time.Duration
	// CacheSize is how many workflows the process keeps in memory between
	// their tasks (the SDK's sticky cache, shared by its workers); one
	// evicted replays its history on its next task. 0: the SDK's 10,000.
	CacheSize int
	// Host is the fleet host this worker serves: besides the shared task
	// queue it polls the host's own (hosts.TaskQueue) for the tenants
	// placed there, on the engine of TENANTFLOW_DOCKER_HOST. Empty: no
	// fleet host.
	Host string
	// HostSync serves and sends the volume copies of moves between hosts.
	HostSync HostSync
	// FenceEvery is how often a host worker reads its host's registration
	// (0: 5 s).
	FenceEvery time.Duration
}

// HostSync configures the copy of tenants' volumes between fleet hosts
// (a move): the host worker serves copies into its tenants on Listen;
// every host shares Token.
type HostSync struct {
	Listen string
	Token  string
}

// check names the settings that do not go together.
func (h HostSync) check(host string) []error {
	var errs []error
	if h.Listen != "" && host == "" {
		errs = append(errs, fmt.Errorf("%s is set but %s is not: only a fleet host's worker serves volume copies", volsync.EnvListen, EnvHost))
	}
	if h.Listen != "" && len(h.Token) < 16 {
		errs = append(errs, fmt.Errorf("%s: serving volume copies needs a token of at least 16 characters, the same on every host", volsync.EnvToken))
	}
	return errs
}

// EnvHost names the fleet host a worker serves.
const EnvHost = "TENANTFLOW_HOST"

// Register binds the settings to flags and TENANTFLOW_* variables.
// EnvCacheSize names Config.CacheSize's variable; DefaultCacheSize is the
// SDK's own default.
const (
	EnvCacheSize     = "TENANTFLOW_WORKER_CACHE_SIZE"
	DefaultCacheSize = 10000
)

// Register binds the worker's settings to flags and TENANTFLOW_*
// variables, each integration's with its own.
func (c *Config) Register(s *config.Set) {
	s.Bool(&c.DockerDisabled, "docker-disabled", "TENANTFLOW_DOCKER_DISABLED", false, "no Docker Engine: an OpenShift-only worker (no docker tenants, no image builds)")
	s.String(&c.Docker.Host, "docker-host", "TENANTFLOW_DOCKER_HOST", "", "Docker Engine address (default: DOCKER_HOST or the local socket)")
	s.String(&c.Docker.PublishIP, "docker-publish-ip", "TENANTFLOW_DOCKER_PUBLISH_IP", "127.0.0.1", "host address tenant endpoints are published on")
	s.String(&c.Docker.SubnetPool, "docker-subnet-pool", docker.EnvSubnetPool, docker.DefaultSubnetPool, "IPv4 prefix each Docker tenant's network gets a subnet of (its size is the host's tenant capacity)")
	s.Int(&c.Docker.ProbeConcurrency, "docker-probe-concurrency", docker.EnvProbeConcurrency, docker.DefaultProbeConcurrency, "health probes run at once on the Docker Engine while tenants start (a burst queues instead of swamping the engine)")
	s.Int(&c.Docker.StartConcurrency, "docker-start-concurrency", docker.EnvStartConcurrency, docker.DefaultStartConcurrency, "containers created and started at once on the Docker Engine (a batch of tenants queues)")
	s.Int(&c.Docker.StartingTenants, "docker-starting-tenants", docker.EnvStartingTenants, docker.DefaultStartingTenants, "tenants starting at once on the Docker Engine, until healthy (the rest of a batch queues, its health budgets not yet running)")
	s.Int(&c.Docker.SubnetBits, "docker-subnet-bits", docker.EnvSubnetBits, docker.DefaultSubnetBits, "prefix length of each tenant's subnet (28: 13 containers)")
	s.String(&c.Docker.Ship.Address, "logs-syslog-address", docker.EnvShipAddress, "", "syslog receiver every tenant container's output is shipped to, tagged <tenant>/<service>/<generation>: udp://host:port, tcp://…, tcp+tls://…, unix:///… (empty: none)")
	s.String(&c.Docker.Ship.Format, "logs-syslog-format", docker.EnvShipFormat, "rfc5424micro", "syslog format of shipped lines: rfc5424micro, rfc5424 or rfc3164")
	s.String(&c.Docker.Ship.Facility, "logs-syslog-facility", docker.EnvShipFacility, "daemon", "syslog facility of shipped lines")
	s.Duration(&c.StopTimeout, "stop-timeout", "TENANTFLOW_WORKER_STOP_TIMEOUT", 30*time.Second, "grace period for running activities on shutdown")
	s.Int(&c.CacheSize, "workflow-cache-size", EnvCacheSize, DefaultCacheSize, "workflows kept in memory between their tasks (each tenant is one; an evicted one replays its history on its next task)")
	s.String(&c.Host, "host", EnvHost, "", "fleet host this worker serves (registered with POST /v1/hosts); it polls that host's task queue too")
	s.String(&c.HostSync.Listen, "host-sync-listen", volsync.EnvListen, "", "address the fleet host's worker serves volume copies on (moves onto this host), e.g. :7380; register it as the host's \"sync\" URL")
	s.Duration(&c.FenceEvery, "host-fence-every", "TENANTFLOW_HOST_FENCE_EVERY", 5*time.Second, "how often a fleet host's worker reads its host's registration (while lost, it refuses work and stops the tenants placed elsewhere)")
	s.Secret(&c.HostSync.Token, "host-sync-token", volsync.EnvToken, "token every fleet host shares to copy volumes between them (at least 16 characters)")
	s.String(&c.AdminUser, "ldap-admin-user", "TENANTFLOW_LDAP_ADMIN_USER", "admin", "uid of each tenant's first directory account")
	s.Bool(&c.ProbePublic, "supervision-probe-public", "TENANTFLOW_SUPERVISION_PROBE_PUBLIC", false, "probe the tenant's public URL (needs routing and DNS) instead of its service endpoint")
	c.OpenShift.Register(s)
	c.Proxy.Register(s)
	c.DNS.Register(s)
	c.LDAP.Register(s)
	c.CMDB.Register(s)
	c.Supervision.Register(s)
	c.Analysis.Register(s)
	c.Domains.Register(s)
	c.Backup.Register(s)
	c.Restic.Register(s)
	c.GitLab.Register(s)
	c.Registry.Register(s)
}

// Settings derives the integration plan settings from the configuration.
func (c Config) Settings() integrations.Settings {
	domain := c.Proxy.Domain
	if domain == "" {
		domain = c.DNS.Zone
	}
	// Normalised as the proxy and DNS packages normalise it, so the plan's
	// host is exactly the name routed and published.
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	return integrations.Settings{
		Routing: c.Proxy.Enabled, Domain: domain, PublicScheme: c.Proxy.PublicScheme, PublicPort: c.Proxy.PublicPort,
		DNS: c.DNS.Enabled, Directory: c.LDAP.Enabled, AdminUser: c.AdminUser, CMDB: c.CMDB.Enabled,
		Supervision: c.Supervision.Enabled(), ProbePublic: c.ProbePublic,
		Backup: c.Backup.Enabled(), Retention: c.Backup.Retention,
		// Only Docker tenants sit behind the proxy: an OpenShift Route is
		// the tenant's URL by itself.
		Routed: []string{spec.Docker},
	}
}

// NewIntegrations validates and builds every enabled integration, so a
// misconfigured one stops the worker at start-up with the setting's name.
// It makes no network calls; see CheckIntegrations.
func NewIntegrations(c Config, log *slog.Logger) (Deps, error) {
	d := Deps{checks: map[string]checker{}, backupCfg: c.Backup, resticCfg: c.Restic, log: log}
	var errs []error
	enable := func(enabled bool, name string, mk func() error) {
		if enabled {
			if err := mk(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	d.newOutsideSystems(c, log, enable)
	acfg := c.Analysis
	if acfg.PrometheusURL == "" && c.Supervision.Enabled() {
		acfg.PrometheusURL = c.Supervision.Prometheus.URL
	}
	var err error
	if d.Analysis, err = analysis.New(acfg, log.With("component", "analysis")); err != nil {
		errs = append(errs, fmt.Errorf("analysis: %w", err))
	}
	if c.Proxy.Enabled && strings.EqualFold(c.Proxy.PublicScheme, "https") {
		dcfg := c.Domains
		if dcfg.TLSAddr == "" {
			dcfg.TLSAddr = defaultTLSAddr(c.Proxy)
		}
		if d.Domains, err = domains.New(dcfg, log.With("component", "domains")); err != nil {
			errs = append(errs, fmt.Errorf("domains: %w", err))
		}
	}
	errs = append(errs, c.checkRuntimes()...)
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("%s=%d must not be negative", EnvCacheSize, c.CacheSize))
	}
	if c.Host != "" && (!spec.IsDNSLabel(c.Host, 40) || c.DockerDisabled) {
		errs = append(errs, fmt.Errorf("%s %q: a fleet host is a host name (as registered) served by a worker with a Docker Engine", EnvHost, c.Host))
	}
	errs = append(errs, c.HostSync.check(c.Host)...)
	d.syncToken = c.HostSync.Token
	if c.GitLab.Enabled && !c.Registry.Enabled {
		errs = append(errs, errors.New("TENANTFLOW_GITLAB_ENABLED builds images: it needs TENANTFLOW_REGISTRY_ENABLED too"))
	} else if c.Registry.Enabled {
		d.newBuilds(c, log, enable)
	}
	d.Integrations = c.Settings()
	if c.LDAP.Enabled && !validUID(c.AdminUser) {
		errs = append(errs, fmt.Errorf("TENANTFLOW_LDAP_ADMIN_USER %q is not a simple uid", c.AdminUser))
	}
	if c.DNS.Enabled && c.Proxy.Enabled && c.Proxy.Domain != "" &&
		strings.TrimSuffix(c.Proxy.Domain, ".") != strings.TrimSuffix(c.DNS.Zone, ".") &&
		!strings.HasSuffix(strings.TrimSuffix(c.Proxy.Domain, "."), "."+strings.TrimSuffix(c.DNS.Zone, ".")) {
		errs = append([]error{fmt.Errorf("TENANTFLOW_PROXY_DOMAIN %q is not inside TENANTFLOW_DNS_ZONE %q", c.Proxy.Domain, c.DNS.Zone)}, errs...)
	}
	return d, errors.Join(errs...)
}

// enabler builds one integration when it is enabled, keeping its error
// under the integration's name.
type enabler func(enabled bool, name string, mk func() error)

// newOutsideSystems builds the clients and activities of the proxy, DNS,
// LDAP, CMDB and supervision, each client kept for the start-up check.
func (d *Deps) newOutsideSystems(c Config, log *slog.Logger, enable enabler) {
	enable(c.Proxy.Enabled, "proxy", func() error {
		cl, err := proxy.NewClient(c.Proxy, log.With("component", "proxy"))
		if err == nil {
			d.Proxy, d.checks["proxy"], d.proxyClient = proxy.NewActivities(cl), cl, cl
		}
		return err
	})
	enable(c.DNS.Enabled, "dns", func() error {
		cl, err := dns.NewClient(c.DNS, log.With("component", "dns"))
		if err == nil {
			d.DNS, d.checks["dns"], d.dnsClient = dns.NewActivities(cl), cl, cl
		}
		return err
	})
	enable(c.LDAP.Enabled, "ldap", func() error {
		cl, err := ldap.NewClient(c.LDAP, log.With("component", "ldap"))
		if err == nil {
			d.LDAP, d.checks["ldap"] = ldap.NewActivities(cl), cl
		}
		return err
	})
	enable(c.CMDB.Enabled, "cmdb", func() error {
		cl, err := cmdb.NewClient(c.CMDB, log.With("component", "cmdb"))
		if err == nil {
			d.CMDB, d.checks["cmdb"] = cmdb.NewActivities(cl), cl
		}
		return err
	})
	enable(c.Supervision.Enabled(), "supervision", func() error {
		slog := log.With("component", "supervision")
		drv, err := supervision.NewDriver(c.Supervision, slog)
		if err == nil {
			d.Supervision, d.checks["supervision"] = supervision.NewActivities(drv, slog), drv
		}
		return err
	})
}

// newBuilds builds the registry client (and GitLab's, when enabled) and
// the image build activities.
func (d *Deps) newBuilds(c Config, log *slog.Logger, enable enabler) {
	var err error
	enable(c.GitLab.Enabled, "gitlab", func() error {
		d.gitlabClient, err = gitlab.NewClient(c.GitLab, log.With("component", "gitlab"))
		return err
	})
	enable(true, "registry", func() error {
		d.registryClient, err = registry.NewClient(c.Registry, log.With("component", "registry"))
		return err
	})
	if d.registryClient == nil {
		return
	}
	// Projects with a git remote build with the registry alone; GitLab's
	// need GitLab too.
	d.checks["registry"] = d.registryClient
	d.Build = &build.Activities{Git: gitsource.Archiver{}, Registry: d.registryClient,
		Heartbeat: activity.RecordHeartbeat, Log: log.With("component", "build")}
	if d.gitlabClient != nil {
		d.checks["gitlab"] = d.gitlabClient
		d.GitLab = gitlab.NewActivities(d.gitlabClient)
		d.Build.Source = d.gitlabClient
	}
}

// checkRuntimes refuses settings no runtime can work with, each error
// naming its setting.
func (c Config) checkRuntimes() []error {
	var errs []error
	if err := c.Backup.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("backup: %w", err))
	}
	if err := c.Restic.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("restic: %w", err))
	}
	if err := c.OpenShift.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("openshift: %w", err))
	}
	if c.OpenShift.Enabled() && c.Backup.Retention <= 0 {
		// OpenShift tenants keep their volumes for the retention even
		// without a backup location: zero would purge them at once.
		errs = append(errs, fmt.Errorf("%s %s must be positive", backup.EnvRetention, c.Backup.Retention))
	}
	if !c.DockerDisabled {
		if err := c.Docker.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("docker: %w", err))
		}
	}
	if c.DockerDisabled && !c.OpenShift.Enabled() {
		errs = append(errs, fmt.Errorf("no runtime: TENANTFLOW_DOCKER_DISABLED is set and neither %s nor %s is", openshift.EnvKubeconfig, openshift.EnvInCluster))
	}
	if c.DockerDisabled && c.Registry.Enabled {
		errs = append(errs, errors.New("image builds (TENANTFLOW_REGISTRY_ENABLED) run on the Docker Engine: unset TENANTFLOW_DOCKER_DISABLED"))
	}
	return errs
}

func validUID(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// CheckIntegrations asks each enabled outside system for a sign of life
// and logs the outcome. A system that is down now is not fatal: activities
// retry until it is back.
func CheckIntegrations(ctx context.Context, d Deps, log *slog.Logger) {
	checks := maps.Clone(d.checks)
	if d.Backup != nil {
		checks["backup"] = backup.Location{Config: d.Backup.Config}
	}
	if d.Restic != nil && d.Restic.Config.Enabled() {
		checks["restic"] = restic.Check{Config: d.Restic.Config}
	}
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		c := checks[name]
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := c.Check(cctx); err != nil {
			log.Warn("integration not reachable now; its activities will retry", "integration", name, "error", err)
		} else {
			log.Info("integration reachable", "integration", name)
		}
		cancel()
	}
}

// Deps are the clients the activities use; a nil integration is disabled
// (the workflows learn that from Integrations and never call it).
type Deps struct {
	// Runtimes are the tenant runtimes by name (spec.Docker, …).
	Runtimes     map[string]runtimes.Driver
	Integrations integrations.Settings
	Proxy        *proxy.Activities
	DNS          *dns.Activities
	LDAP         *ldap.Activities
	CMDB         *cmdb.Activities
	Supervision  *supervision.Activities
	GitLab       *gitlab.Activities
	Build        *build.Activities
	// Fleet sends releases to tenant workflows; New fills it in with the
	// worker's own Temporal client.
	Fleet *fleet.Activities
	// Placement reserves room on fleet hosts through the host registry;
	// New fills it in with the worker's client.
	Placement *placement.Activities
	// Drift reads the tenants, routes and records for the drift
	// reconcile; New fills it in with the worker's client.
	Drift *drift.Activities
	// Backup archives and restores tenant volumes; UseDocker makes it when
	// a backup location is configured.
	Backup *backup.Activities
	// Sync sends a tenant's volumes to another fleet host (a move);
	// UseDocker makes it.
	Sync *volsync.Activities
	// Restic takes, copies, prunes and drills scheduled backups;
	// UseDocker makes it when TENANTFLOW_RESTIC_REPOS is set. Without it
	// the activities answer that backups are not configured.
	Restic *restic.Activities
	// Analysis reads the probes for releases' canary analysis.
	Analysis *analysis.Activities
	// Domains checks custom domains (nil without an HTTPS proxy: the
	// unconfigured activities answer why).
	Domains *domains.Activities

	proxyClient    *proxy.Client
	dnsClient      *dns.Client
	gitlabClient   *gitlab.Client
	registryClient *registry.Client
	checks         map[string]checker // what CheckIntegrations asks for a sign of life
	backupCfg      backup.Config
	resticCfg      restic.Config
	syncToken      string
	docker         *docker.Driver
	log            *slog.Logger
}

// The Docker driver runs databases' dump tools for backups.
var _ backup.DumpHost = (*docker.Driver)(nil)

// UseDocker makes the Docker driver the runtime of tenants, the engine of
// image builds and the host of the volumes backups read.
func (d *Deps) UseDocker(drv *docker.Driver) error {
	d.useRuntime(spec.Docker, drv)
	if d.backupCfg.Enabled() {
		b, err := backup.New(d.backupCfg, drv, d.logger().With("component", "backup"))
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		b.Heartbeat = activity.RecordHeartbeat
		if d.Backup != nil {
			b.InPlace = d.Backup.InPlace
		}
		d.Backup = b
	}
	d.docker = drv
	d.Sync = &volsync.Activities{Volumes: drv, Token: d.syncToken, Heartbeat: activity.RecordHeartbeat, Log: d.logger().With("component", "volsync")}
	if d.resticCfg.Enabled() {
		r, err := restic.New(d.resticCfg, drv, d.logger().With("component", "restic"))
		if err != nil {
			return fmt.Errorf("restic: %w", err)
		}
		r.Heartbeat = activity.RecordHeartbeat
		d.Restic = r
	}
	if d.registryClient != nil {
		// Releases pull their image from the same registry builds push to.
		drv.AddRegistryAuth(d.registryClient.AuthConfig())
	}
	if d.Build != nil {
		d.Build.Engine = dockerbuild.New(drv.Client(), d.logger().With("component", "build"))
	}
	return nil
}

// UseOpenShift makes the OpenShift driver the runtime of tenants whose
// template says runtime openshift. Their volumes are kept in place by the
// cluster's storage at decommission, so they need no backup location.
func (d *Deps) UseOpenShift(drv *openshift.Driver) {
	d.useRuntime(spec.OpenShift, drv)
	if d.Backup == nil {
		d.Backup = &backup.Activities{Heartbeat: activity.RecordHeartbeat, Log: d.logger().With("component", "backup")}
	}
	if d.Backup.InPlace == nil {
		d.Backup.InPlace = map[string]backup.InPlace{}
	}
	d.Backup.InPlace[spec.OpenShift] = drv
	if !slices.Contains(d.Integrations.KeepInPlace, spec.OpenShift) {
		d.Integrations.KeepInPlace = append(d.Integrations.KeepInPlace, spec.OpenShift)
	}
}

func (d *Deps) useRuntime(name string, drv runtimes.Driver) {
	if d.Runtimes == nil {
		d.Runtimes = map[string]runtimes.Driver{}
	}
	d.Runtimes[name] = drv
}

func (d *Deps) logger() *slog.Logger {
	if d.log == nil {
		return slog.Default()
	}
	return d.log
}

// RegisterWorkflows registers every workflow under its stable type name; the
// replay tests use it too, so they replay exactly what workers run.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(tenant.Workflow, workflow.RegisterOptions{Name: tenant.WorkflowType})
	r.RegisterWorkflowWithOptions(imagebuild.Workflow, workflow.RegisterOptions{Name: imagebuild.WorkflowType})
	r.RegisterWorkflowWithOptions(release.Workflow, workflow.RegisterOptions{Name: release.WorkflowType})
	r.RegisterWorkflowWithOptions(hosts.Workflow, workflow.RegisterOptions{Name: hosts.WorkflowType})
	r.RegisterWorkflowWithOptions(hosts.DrainWorkflow, workflow.RegisterOptions{Name: hosts.DrainWorkflowType})
	r.RegisterWorkflowWithOptions(hosts.EvacuateWorkflow, workflow.RegisterOptions{Name: hosts.EvacuateWorkflowType})
	r.RegisterWorkflowWithOptions(hosts.WatchWorkflow, workflow.RegisterOptions{Name: hosts.WatchWorkflowType})
	r.RegisterWorkflowWithOptions(reconcile.Workflow, workflow.RegisterOptions{Name: reconcile.WorkflowType})
}

// Register puts every workflow and activity on a worker: each activities
// struct whole (every exported method of it is an activity, named after
// the method), the disabled integrations not at all.
func Register(r worker.Registry, deps Deps) {
	RegisterWorkflows(r)
	r.RegisterActivity(&runtimes.Activities{Drivers: deps.Runtimes, Heartbeat: activity.RecordHeartbeat})
	r.RegisterActivity(&integrations.Activities{Settings: deps.Integrations})
	r.RegisterActivity(deps.restic())
	r.RegisterActivity(deps.analysis())
	r.RegisterActivity(cmp.Or(deps.Domains, domains.Unconfigured()))
	for _, a := range []any{deps.Proxy, deps.DNS, deps.LDAP, deps.CMDB, deps.Supervision, deps.GitLab, deps.Build, deps.Fleet, deps.Placement, deps.Drift, deps.Backup} {
		if !reflect.ValueOf(a).IsNil() {
			r.RegisterActivity(a)
		}
	}
}

// restic is what registers the restic activities. Always registered:
// unconfigured, they answer that backups are not configured instead of
// waiting for a worker that has them.
func (d Deps) sync() *volsync.Activities {
	if d.Sync == nil {
		return &volsync.Activities{}
	}
	return d.Sync
}

// SyncHandler is what a fleet host's worker serves on
// TENANTFLOW_HOST_SYNC_LISTEN: copies of volumes into its tenants. Nil
// without a Docker Engine or a token.
func (d Deps) SyncHandler() http.Handler {
	if d.Sync == nil || d.Sync.Token == "" {
		return nil
	}
	return (&volsync.Server{Volumes: d.Sync.Volumes, Token: d.Sync.Token, Log: d.logger().With("component", "volsync")}).Handler()
}

// drift is what reads the tenants, the proxy's routes and the DNS
// records for the drift reconcile, with the worker's client.
func (d Deps) drift(c client.Client) *drift.Activities {
	a := &drift.Activities{Client: c, Proxy: d.proxyClient, DNS: d.dnsClient}
	if d.dnsClient != nil {
		a.Domain = d.Integrations.Domain
	}
	return a
}

// defaultTLSAddr is where the proxy serves HTTPS when
// TENANTFLOW_DOMAINS_TLS_ADDR is not set: the admin API's host, on the
// port of the first listen address.
func defaultTLSAddr(p proxy.Config) string {
	host := "127.0.0.1"
	if u, err := url.Parse(p.AdminURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	port := "443"
	first, _, _ := strings.Cut(p.Listen, ",")
	if _, pt, err := net.SplitHostPort(strings.TrimSpace(first)); err == nil && pt != "" {
		port = pt
	}
	return net.JoinHostPort(host, port)
}

// analysis is always registered: unconfigured, it answers that canary
// analysis needs Prometheus, and the release pauses as inconclusive.
func (d Deps) analysis() *analysis.Activities {
	if d.Analysis == nil {
		a, _ := analysis.New(analysis.Config{}, d.logger())
		return a
	}
	return d.Analysis
}

func (d Deps) restic() *restic.Activities {
	if d.Restic == nil {
		return &restic.Activities{}
	}
	return d.Restic
}

// checker is what answers CheckIntegrations.
type checker interface{ Check(context.Context) error }

// New builds the worker for the task queue.
func New(c client.Client, taskQueue string, cfg Config, deps Deps) worker.Worker {
	if cfg.CacheSize > 0 {
		// Process-wide, and read when the first worker starts.
		worker.SetStickyWorkflowCacheSize(cfg.CacheSize)
	}
	host, _ := os.Hostname()
	w := worker.New(c, taskQueue, worker.Options{
		Identity:          fmt.Sprintf("tenantflow-worker@%s:%d", host, os.Getpid()),
		WorkerStopTimeout: cfg.StopTimeout,
	})
	if deps.Fleet == nil {
		deps.Fleet = &fleet.Activities{Client: c, Heartbeat: activity.RecordHeartbeat}
	}
	if deps.Placement == nil {
		deps.Placement = &placement.Activities{Client: c}
	}
	if deps.Drift == nil {
		deps.Drift = deps.drift(c)
	}
	Register(w, deps)
	return w
}

// NewHostWorker builds the worker of one fleet host: it polls the host's
// own task queue (hosts.TaskQueue) for the runtime, backup and restic
// activities of the tenants placed there, with deps' clients of this
// host's engine and volumes. No workflow runs on it.
//
// While the registry says the host is lost, the worker is fenced
// (activities/fence): it refuses every activity but the watch's ping
// and stops the containers of tenants placed elsewhere since. It reads
// the registry once before it polls, then every few seconds.
func NewHostWorker(c client.Client, host string, cfg Config, deps Deps) worker.Worker {
	name, _ := os.Hostname()
	if deps.docker == nil {
		panic("wiring: a host worker needs its Docker Engine (Deps.UseDocker)")
	}
	g := &fence.Guard{Client: c, Host: host, Engine: deps.docker.Client(), Every: cfg.FenceEvery, Log: deps.logger().With("component", "fence")}
	w := worker.New(c, hosts.TaskQueue(host), worker.Options{
		Identity:          fmt.Sprintf("tenantflow-host-worker@%s:%d/%s", name, os.Getpid(), host),
		WorkerStopTimeout: cfg.StopTimeout,
		Interceptors:      []interceptor.WorkerInterceptor{g.Interceptor()},
	})
	RegisterHost(w, deps)
	w.RegisterActivityWithOptions(g.PingHost, activity.RegisterOptions{Name: hosts.ActivityPingHost})
	return &fencedWorker{Worker: w, guard: g}
}

// fencedWorker runs a host worker with its fence.
type fencedWorker struct {
	worker.Worker
	guard  *fence.Guard
	cancel context.CancelFunc
}

// Start reads the registry (a lost host starts fenced), then polls.
func (f *fencedWorker) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	first, stop := context.WithTimeout(ctx, 10*time.Second)
	if err := f.guard.Check(first); err != nil {
		f.guard.Log.Warn("fence: the host registry did not answer before the worker started", "host", f.guard.Host, "error", err)
	}
	stop()
	go f.guard.Run(ctx)
	return f.Worker.Start()
}

// Stop stops the fence and the worker.
func (f *fencedWorker) Stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.Worker.Stop()
}

// RegisterHost puts a host's activities on a worker: those that reach
// its engine and volumes.
func RegisterHost(r worker.ActivityRegistry, deps Deps) {
	r.RegisterActivity(&runtimes.Activities{Drivers: deps.Runtimes, Heartbeat: activity.RecordHeartbeat})
	r.RegisterActivity(deps.restic())
	r.RegisterActivity(deps.analysis())
	r.RegisterActivity(cmp.Or(deps.Domains, domains.Unconfigured()))
	r.RegisterActivity(deps.sync())
	if deps.Backup != nil {
		r.RegisterActivity(deps.Backup)
	}
}

// CheckSearchAttributes fails with the command to run when the namespace
// lacks a search attribute the workflows upsert: otherwise every tenant
// workflow would fail its first workflow task, far from the cause.
func CheckSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	var missing []string
	for _, k := range searchattr.Keys {
		if resp.GetCustomAttributes()[k.GetName()] != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			missing = append(missing, k.GetName())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("namespace %s lacks Keyword search attributes %s: run `temporal operator search-attribute create --namespace %s --type Keyword --name %s`",
			namespace, strings.Join(missing, ", "), namespace, strings.Join(missing, " --name "))
	}
	return nil
}
