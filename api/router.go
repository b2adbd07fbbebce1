// Package api is Tenantflow's REST API: it translates HTTP requests into
// Temporal client calls (start the tenant workflow, query its state, list
// tenants from visibility) and back. It holds no business rules: everything a
// tenant goes through is decided by the Tenant workflow.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/audit"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/release"
)

// Temporal is the part of client.Client the API uses (client.Client
// satisfies it). Keeping it this small lets tests use an in-memory fake.
type Temporal interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
	QueryWorkflow(ctx context.Context, workflowID, runID, queryType string, args ...any) (converter.EncodedValue, error)
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	CheckHealth(ctx context.Context, request *client.CheckHealthRequest) (*client.CheckHealthResponse, error)
	UpdateWorkflow(ctx context.Context, options client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
	DescribeTaskQueue(ctx context.Context, taskqueue string, taskqueueType enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error)
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
}

// The real client must keep satisfying Temporal.
var _ Temporal = client.Client(nil)

// Config is the API's configuration; zero values of the optional fields get
// the defaults below.
type Config struct {
	TaskQueue    string        // task queue of the tenant workflows
	Tokens       *Tokens       // bearer tokens -> roles
	MaxBodyBytes int64         // default 64 KiB when 0
	QueryTimeout time.Duration // DefaultQueryTimeout when 0; also bounds the visibility list and Update waits
	// ReadWait bounds how long GET /v1/tenants/{name} waits for the
	// workflow's own answer before it answers from the recorded summary,
	// marked stale (DefaultReadWait when 0); ?fresh=true waits
	// QueryTimeout instead.
	ReadWait time.Duration
	// StateCacheSize bounds how many tenants' last state answers the API
	// keeps to answer reads of idle tenants without a query
	// (DefaultStateCacheSize when 0; negative: none).
	StateCacheSize int
	Builds         *Builds // image builds; nil disables their routes
	// Placement places new Docker tenants on the fleet's hosts (the host
	// registry); off, only those created with "host" are.
	Placement bool
	// HostLostAfter is how long a host's worker and engine stay
	// unreachable before the host watch finds it lost (0: a minute). It
	// applies when the watch starts, with the first host registered.
	HostLostAfter time.Duration
	// ReconcileEvery is the drift reconcile's round (0: 5 minutes) and
	// ReconcileGrace how long it reports an orphan of a finished run
	// before removing it (0: an hour); both apply when it starts.
	ReconcileEvery time.Duration
	ReconcileGrace time.Duration
	// DataConverter decodes the tenant memo's summary (stale reads; see
	// tenant.MemoSummary): the client's, with its codec (nil: the SDK's
	// default, for unencrypted payloads).
	DataConverter converter.DataConverter
	// Audit stores the audit trail (nil: entries go to the JSON log only,
	// and GET /v1/audit answers 503).
	Audit audit.Store
	// Logs reads Docker tenants' container logs (nil: GET
	// /v1/tenants/{name}/logs answers 503 for them).
	Logs LogSource
	// ClusterLogs reads OpenShift tenants' pod logs (nil: 501 for them).
	ClusterLogs runtimes.LogReader
}

const (
	defaultMaxBodyBytes = 64 << 10
	healthTimeout       = 2 * time.Second
)

// DefaultQueryTimeout bounds each query, visibility list and Update wait
// (sendUpdate) unless Config.QueryTimeout says otherwise. The HTTP server's
// write timeout must outlast it, or a slow answer is cut off unsent.
const DefaultQueryTimeout = 5 * time.Second

// DefaultReadWait is Config.ReadWait's default: well above a query's time
// to an idle workflow (a few ms), well below a portal's patience.
const DefaultReadWait = 500 * time.Millisecond

// withDefaults validates the configuration and fills in the defaults, so a
// misconfigured API fails at start-up with the setting's name, not on the
// first request.
func (c Config) withDefaults() (Config, error) {
	if c.TaskQueue == "" {
		return c, errors.New("api config: TaskQueue is required")
	}
	if c.Tokens == nil || len(c.Tokens.entries) == 0 {
		return c, errors.New("api config: Tokens is required (no bearer token could ever be accepted)")
	}
	if c.MaxBodyBytes < 0 {
		return c, fmt.Errorf("api config: MaxBodyBytes %d must not be negative", c.MaxBodyBytes)
	}
	if c.ReconcileEvery < 0 || c.ReconcileGrace < 0 {
		return c, fmt.Errorf("api config: ReconcileEvery %s and ReconcileGrace %s must not be negative", c.ReconcileEvery, c.ReconcileGrace)
	}
	if c.QueryTimeout < 0 {
		return c, fmt.Errorf("api config: QueryTimeout %s must not be negative", c.QueryTimeout)
	}
	if c.ReadWait < 0 {
		return c, fmt.Errorf("api config: ReadWait %s must not be negative", c.ReadWait)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.ReadWait == 0 {
		c.ReadWait = DefaultReadWait
	}
	if c.StateCacheSize == 0 {
		c.StateCacheSize = DefaultStateCacheSize
	}
	if c.ReadWait > c.QueryTimeout {
		c.ReadWait = c.QueryTimeout
	}
	if c.DataConverter == nil {
		c.DataConverter = converter.GetDefaultDataConverter()
	}
	return c, nil
}

// server carries the dependencies of the handlers; there is one per router
// and no package-level state.
type server struct {
	cfg       Config
	temporal  Temporal
	templates spec.Templates
	log       *slog.Logger
	// now is the clock of ages in answers (tests set it).
	now func() time.Time
	// states answers tenant reads whose workflow has not moved since.
	states *stateCache
	// metrics counts what the handlers see beyond requests (audit
	// failures).
	metrics *metrics
}

// NewRouter builds the API's HTTP handler. Metrics are registered on reg
// (nil: no metrics); /metrics is served only when reg is a
// *prometheus.Registry, since only then do we know what to gather. A nil log
// discards request logs.
func NewRouter(cfg Config, t Temporal, templates spec.Templates, log *slog.Logger, reg prometheus.Registerer) (*gin.Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, errors.New("api: Temporal client is required")
	}
	if len(templates) == 0 {
		return nil, errors.New("api: no templates (a tenant could never be created)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if r, ok := reg.(*prometheus.Registry); ok && r == nil {
		reg = nil // a nil *Registry in the interface would panic on Register
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, temporal: t, templates: templates, log: log, now: time.Now, states: newStateCache(cfg.StateCacheSize), metrics: m}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// The API never uses the client address for decisions; trusting no proxy
	// keeps X-Forwarded-For from being taken at face value anywhere.
	if err := r.SetTrustedProxies(nil); err != nil {
		return nil, fmt.Errorf("api: set trusted proxies: %w", err)
	}
	r.Use(observe(log, m), recovery(log))
	r.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("no route %s %s", c.Request.Method, c.Request.URL.Path)})
	})

	r.GET("/healthz", s.health)
	r.GET("/openapi.json", serveOpenAPI)
	if g, ok := reg.(*prometheus.Registry); ok {
		r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(g, promhttp.HandlerOpts{})))
	}

	tokens := cfg.Tokens
	all := []string{RoleOps, RoleDistributor, RoleDeveloper}
	v1 := r.Group("/v1")
	v1.POST("/tenants", s.audited("tenant.create"), RequireRoles(tokens, RoleOps, RoleDistributor), s.createTenant)
	v1.GET("/tenants", RequireRoles(tokens, all...), s.listTenants)
	v1.GET("/tenants/:name", RequireRoles(tokens, all...), s.getTenant)
	v1.GET("/tenants/:name/logs", RequireRoles(tokens, RoleOps, RoleDistributor), s.tenantLogs)
	v1.GET("/tenants/:name/credentials", s.audited("tenant.credentials"), RequireRoles(tokens, RoleDistributor, RoleOps), s.getCredentials)
	v1.PATCH("/tenants/:name", s.audited("tenant.configure"), RequireRoles(tokens, RoleOps, RoleDistributor), s.patchTenant)
	v1.POST("/tenants/:name/domains", s.audited("tenant.domain.add"), RequireRoles(tokens, RoleOps, RoleDistributor), s.addDomain)
	v1.DELETE("/tenants/:name/domains/:host", s.audited("tenant.domain.remove"), RequireRoles(tokens, RoleOps, RoleDistributor), s.removeDomain)
	v1.DELETE("/tenants/:name", s.audited("tenant.decommission"), RequireRoles(tokens, RoleOps, RoleDistributor), s.requestDecommission)
	v1.POST("/tenants/:name/decommission/confirm", s.audited("tenant.decommission-confirm"), RequireRoles(tokens, RoleOps, RoleDistributor), s.confirmDecommission)
	v1.POST("/tenants/:name/decommission/cancel", s.audited("tenant.decommission-cancel"), RequireRoles(tokens, RoleOps, RoleDistributor), s.cancelDecommission)
	v1.POST("/tenants/:name/restore", s.audited("tenant.restore"), RequireRoles(tokens, RoleOps, RoleDistributor), s.restoreTenant)
	v1.POST("/tenants/:name/backups", s.audited("tenant.backup"), RequireRoles(tokens, RoleOps, RoleDistributor), s.requestBackup)
	v1.GET("/tenants/:name/backups", RequireRoles(tokens, all...), s.listBackups)
	v1.GET("/tenants/:name/backups/:id", RequireRoles(tokens, all...), s.getBackup)
	v1.POST("/releases", s.audited("release.create"), RequireRoles(tokens, RoleDeveloper, RoleOps), s.createRelease)
	v1.GET("/releases", RequireRoles(tokens, all...), s.listReleases)
	v1.GET("/releases/:id", RequireRoles(tokens, all...), s.getRelease)
	v1.GET("/releases/:id/tenants", RequireRoles(tokens, all...), s.getReleaseTenants)
	v1.POST("/releases/:id/promote", s.audited("release.promote"), RequireRoles(tokens, RoleDeveloper), s.promoteRelease)
	v1.POST("/releases/:id/pause", s.audited("release.pause"), RequireRoles(tokens, RoleOps), s.controlRelease(release.UpdatePause))
	v1.POST("/releases/:id/resume", s.audited("release.resume"), RequireRoles(tokens, RoleOps), s.controlRelease(release.UpdateResume))
	v1.POST("/releases/:id/abort", s.audited("release.abort"), RequireRoles(tokens, RoleOps), s.controlRelease(release.UpdateAbort))
	v1.POST("/releases/:id/override-window", s.audited("release.override-window"), RequireRoles(tokens, RoleOps), s.overrideWindow)
	v1.POST("/tenants/:name/move", s.audited("tenant.move"), RequireRoles(tokens, RoleOps), s.moveTenant)
	v1.POST("/tenants/:name/suspend", s.audited("tenant.suspend"), RequireRoles(tokens, RoleOps, RoleDistributor), s.suspendTenant)
	v1.POST("/tenants/:name/resume", s.audited("tenant.resume"), RequireRoles(tokens, RoleOps, RoleDistributor), s.resumeTenant)
	v1.POST("/hosts", s.audited("host.register"), RequireRoles(tokens, RoleOps), s.registerHost)
	v1.GET("/hosts", RequireRoles(tokens, RoleOps), s.listHosts)
	v1.GET("/hosts/:name", RequireRoles(tokens, RoleOps), s.getHost)
	v1.POST("/hosts/:name/cordon", s.audited("host.cordon"), RequireRoles(tokens, RoleOps), s.setHostState(hosts.StateCordoned))
	v1.POST("/hosts/:name/uncordon", s.audited("host.uncordon"), RequireRoles(tokens, RoleOps), s.setHostState(hosts.StateActive))
	v1.POST("/hosts/:name/drain", s.audited("host.drain"), RequireRoles(tokens, RoleOps), s.drainHost)
	v1.GET("/hosts/:name/drain", RequireRoles(tokens, RoleOps), s.getDrain)
	v1.POST("/hosts/:name/evacuate", s.audited("host.evacuate"), RequireRoles(tokens, RoleOps), s.evacuateHost)
	v1.GET("/hosts/:name/evacuation", RequireRoles(tokens, RoleOps), s.getEvacuation)
	v1.GET("/reconcile", RequireRoles(tokens, RoleOps), s.getReconcile)
	v1.GET("/audit", RequireRoles(tokens, RoleOps), s.listAudit)
	if cfg.Builds != nil {
		v1.POST("/builds", s.audited("build.create"), RequireRoles(tokens, RoleDeveloper, RoleOps), s.createBuild)
		v1.GET("/builds/:id", RequireRoles(tokens, all...), s.getBuild)
		// GitLab authenticates with its webhook secret, not a bearer token.
		r.POST("/v1/hooks/gitlab", s.gitlabHook)
	}
	return r, nil
}

// health reports whether the Temporal frontend answers; load balancers and
// probes use it, so it needs no token, and its answer names no address or
// error text of Temporal's: the log has those.
func (s *server) health(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), healthTimeout)
	defer cancel()
	if _, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		s.log.WarnContext(ctx, "health check: temporal unreachable", "error", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "error": "temporal unreachable"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}
