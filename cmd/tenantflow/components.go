package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/volsync"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/internal/audit"
	"github.com/tenantflow/tenantflow/internal/config"
	"github.com/tenantflow/tenantflow/internal/temporalx"
	"github.com/tenantflow/tenantflow/portal"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/reconcile"
)

// apiSettings are the API process's own settings.
type apiSettings struct {
	Listen       string
	TokensFile   string
	TemplatesDir string
	// Runtime is the default runtime of templates that name none.
	Runtime        string
	CodecOrigins   string
	CodecAnonymous bool
	// Image builds: on when ProjectsFile is set.
	ProjectsFile  string
	WebhookSecret string
	WebUIURL      string
	// Placement places new Docker tenants on the fleet's hosts.
	Placement bool
	// HostLostAfter: unreachable this long, a fleet host is lost.
	HostLostAfter time.Duration
	// ReconcileEvery is the drift reconcile's round.
	ReconcileEvery time.Duration
	// ReadWait bounds a tenant read's wait for its workflow (api.Config).
	ReadWait time.Duration
	// GitLab resolves refs for POST /v1/builds. In `dev` it is the worker's
	// settings (one flag set); `api` registers its own.
	GitLab *gitlab.Config
	// The audit trail's store: PostgreSQL (AuditDSN) or a directory, kept
	// AuditRetention.
	AuditDSN       string
	AuditDir       string
	AuditRetention time.Duration
	// LogsDocker is the engine whose tenants' logs GET …/logs reads (the
	// unplaced ones; fleet hosts' come from the registry).
	LogsDocker string
	// OpenShift is the cluster whose tenants' logs GET …/logs reads (not
	// enabled: those answer 501). In `dev` it is the worker's settings
	// (one flag set); `api` registers its own.
	OpenShift *openshift.Config
	// The distributor portal's session key (base64 of 32 bytes; empty: a
	// random one, sessions end with the process) and whether its cookie
	// is marked Secure (behind an HTTPS proxy).
	PortalSessionKey    string
	PortalSecureCookies bool
}

// defaultAuditRetention keeps the audit trail 400 days: a year and the
// month an annual review takes.
const defaultAuditRetention = 400 * 24 * time.Hour

func (a *apiSettings) register(s *config.Set) {
	s.String(&a.Listen, "api-listen", "TENANTFLOW_API_LISTEN", "127.0.0.1:8080", "REST API listen address")
	s.String(&a.TokensFile, "api-tokens-file", "TENANTFLOW_API_TOKENS_FILE", "", `JSON file mapping roles to bearer tokens: {"ops":"…","distributor":"…","developer":"…"} (required)`)
	s.String(&a.TemplatesDir, "templates-dir", "TENANTFLOW_TEMPLATES_DIR", "deploy/templates", "directory of tenant templates (*.yaml)")
	s.String(&a.Runtime, "runtime", "TENANTFLOW_RUNTIME", spec.Docker, "runtime of tenants whose template names none: docker or openshift")
	s.Bool(&a.Placement, "placement", "TENANTFLOW_PLACEMENT", false, "place new Docker tenants on the fleet's hosts (POST /v1/hosts); off: only those created with \"host\"")
	s.Duration(&a.HostLostAfter, "host-lost-after", "TENANTFLOW_HOST_LOST_AFTER", time.Minute, "how long a fleet host's worker and engine stay unreachable before it is lost (its tenants degraded, ready to evacuate)")
	s.Duration(&a.ReconcileEvery, "reconcile-every", "TENANTFLOW_RECONCILE_EVERY", reconcile.DefaultEvery, "how often the drift reconcile compares every engine, the proxy and DNS with the tenants (it reports orphans, repairs what is missing; applies when it starts)")
	s.Duration(&a.ReadWait, "api-read-wait", "TENANTFLOW_API_READ_WAIT", api.DefaultReadWait, "how long GET /v1/tenants/{name} waits for the tenant's workflow to answer before it answers from the state the workflow last recorded, marked stale (a busy tenant answers from it at once; ?fresh=true waits up to 5s)")
	s.String(&a.CodecOrigins, "codec-cors-origins", "TENANTFLOW_CODEC_CORS_ORIGINS", "", "comma-separated Web UI origins allowed to call /codec")
	s.Bool(&a.CodecAnonymous, "codec-allow-anonymous", "TENANTFLOW_CODEC_ALLOW_ANONYMOUS", false, "let /codec decrypt without a token (development on loopback only)")
	s.String(&a.ProjectsFile, "build-projects-file", "TENANTFLOW_BUILD_PROJECTS_FILE", "", "GitLab projects to build (YAML, see deploy/projects.example.yaml); empty: builds off")
	s.Secret(&a.WebhookSecret, "gitlab-webhook-secret", "TENANTFLOW_GITLAB_WEBHOOK_SECRET", "secret GitLab sends as X-Gitlab-Token to /v1/hooks/gitlab")
	s.String(&a.WebUIURL, "web-ui-url", "TENANTFLOW_WEB_UI_URL", "", "Temporal Web UI base URL, for links in GitLab commit statuses")
	s.Secret(&a.AuditDSN, "audit-dsn", "TENANTFLOW_AUDIT_DSN", "PostgreSQL URL of the audit trail (postgres://user:password@host:5432/db), shared by API replicas; the table is made if missing")
	s.String(&a.AuditDir, "audit-dir", "TENANTFLOW_AUDIT_DIR", "", "directory of the audit trail (daily JSON-lines files) for a single API process, when TENANTFLOW_AUDIT_DSN is not set; neither: entries go to the JSON log only")
	s.String(&a.LogsDocker, "logs-docker-host", "TENANTFLOW_LOGS_DOCKER_HOST", "", "Docker Engine whose unplaced tenants' container logs GET /v1/tenants/{name}/logs reads (empty: DOCKER_HOST or the default socket; dev: the worker's)")
	s.Secret(&a.PortalSessionKey, "portal-session-key", "TENANTFLOW_PORTAL_SESSION_KEY", "key sealing the portal's session cookies: base64 of 32 random bytes (openssl rand -base64 32), the same on every API replica; empty: a random key, and sign-ins end when the process stops")
	s.Bool(&a.PortalSecureCookies, "portal-secure-cookies", "TENANTFLOW_PORTAL_SECURE_COOKIES", false, "mark the portal's session cookie Secure (the API served over HTTPS behind a proxy)")
	s.Duration(&a.AuditRetention, "audit-retention", "TENANTFLOW_AUDIT_RETENTION", defaultAuditRetention, "how long audit entries are kept (at least 24h)")
}

// openAudit opens the audit trail's store (nil when none is set) and
// prunes it to its retention now and every six hours.
func openAudit(a apiSettings, log *slog.Logger) (audit.Store, error) {
	if a.AuditRetention < 24*time.Hour {
		return nil, fmt.Errorf("TENANTFLOW_AUDIT_RETENTION=%s must be at least 24h", a.AuditRetention)
	}
	var (
		store audit.Store
		err   error
	)
	switch {
	case a.AuditDSN != "":
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if store, err = audit.OpenPostgres(ctx, a.AuditDSN); err != nil {
			return nil, fmt.Errorf("TENANTFLOW_AUDIT_DSN: %w", err)
		}
	case a.AuditDir != "":
		if store, err = audit.OpenFileStore(a.AuditDir); err != nil {
			return nil, fmt.Errorf("TENANTFLOW_AUDIT_DIR: %w", err)
		}
	default:
		log.Warn("audit trail not stored (set TENANTFLOW_AUDIT_DSN or TENANTFLOW_AUDIT_DIR): its entries are in the JSON log only")
		return nil, nil
	}
	go func() {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			n, err := store.Prune(ctx, time.Now().Add(-a.AuditRetention))
			cancel()
			if err != nil {
				log.Warn("audit prune failed", "error", err)
			} else if n > 0 {
				log.Info("audit pruned", "deleted", n, "retention", a.AuditRetention.String())
			}
			time.Sleep(6 * time.Hour)
		}
	}()
	return store, nil
}

// checkCodec refuses anonymous decryption on a listener other machines can
// reach: anyone reaching the API could then read every payload in history,
// generated passwords included.
func (a apiSettings) checkCodec() error {
	if a.CodecAnonymous && !loopbackListen(a.Listen) {
		return fmt.Errorf("TENANTFLOW_CODEC_ALLOW_ANONYMOUS=true needs a loopback TENANTFLOW_API_LISTEN "+
			"(127.0.0.1:<port>, [::1]:<port> or localhost:<port>), not %q: anyone reaching it could decrypt "+
			"the payloads in history; drop it and give the Web UI an ops token instead", a.Listen)
	}
	return nil
}

// loopbackListen reports whether a listen address (host:port) accepts
// connections from this machine only. An empty host listens on every
// interface; other names are not resolved, since they may change.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parse parses a subcommand's flags; -h prints them and stops.
func parse(s *config.Set, args []string) error {
	err := s.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	return err
}

// newRegistry is the process's Prometheus registry with Go and process
// collectors; SDK and API metrics are added to it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// dial connects to Temporal with metrics on reg.
func dial(ctx context.Context, cfg temporalx.Config, reg *prometheus.Registry, log *slog.Logger) (client.Client, error) {
	metrics, err := temporalx.MetricsHandler(reg)
	if err != nil {
		return nil, err
	}
	return temporalx.Dial(ctx, cfg, log, metrics)
}

// startWorker connects to the configured runtimes (Docker Engine, OpenShift
// cluster), checks the namespace and starts the worker; stop waits for
// running activities (up to the stop timeout).
func startWorker(ctx context.Context, c client.Client, tcfg temporalx.Config, wcfg wiring.Config, deps wiring.Deps, log *slog.Logger) (stop func(), err error) {
	var closers []func()
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	var runtimes []any
	if !wcfg.DockerDisabled {
		driver, err := docker.New(ctx, wcfg.Docker, log.With("component", "docker"))
		if err != nil {
			return nil, fmt.Errorf("TENANTFLOW_DOCKER_HOST: %w", err)
		}
		closers = append(closers, func() { driver.Close() })
		if err := deps.UseDocker(driver); err != nil {
			closeAll()
			return nil, err
		}
		runtimes = append(runtimes, "docker", driver.Client().DaemonHost())
		if used, capacity, err := driver.SubnetUsage(ctx); err == nil {
			log.Info("docker tenant capacity", "subnetsUsed", used, "subnets", capacity)
		}
	}
	if wcfg.OpenShift.Enabled() {
		driver, err := openshift.New(ctx, wcfg.OpenShift, nil, log.With("component", "openshift"))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("openshift: %w", err)
		}
		deps.UseOpenShift(driver)
		runtimes = append(runtimes, "openshift", driver.Server())
	}
	if err := wiring.CheckSearchAttributes(ctx, c, tcfg.Namespace); err != nil {
		closeAll()
		return nil, err
	}
	log.Info("integrations", "enabled", deps.Integrations.Enabled())
	wiring.CheckIntegrations(ctx, deps, log)
	w := wiring.New(c, tcfg.TaskQueue, wcfg, deps)
	if err := w.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("start worker on task queue %s: %w", tcfg.TaskQueue, err)
	}
	log.Info("worker started", append([]any{"taskQueue", tcfg.TaskQueue, "namespace", tcfg.Namespace}, runtimes...)...)
	if wcfg.Host != "" {
		hw := wiring.NewHostWorker(c, wcfg.Host, wcfg, deps)
		if err := hw.Start(); err != nil {
			w.Stop()
			closeAll()
			return nil, fmt.Errorf("start the worker of host %s: %w", wcfg.Host, err)
		}
		closers = append([]func(){hw.Stop}, closers...)
		log.Info("host worker started", "host", wcfg.Host, "taskQueue", hosts.TaskQueue(wcfg.Host))
		if wcfg.HostSync.Listen != "" {
			stopSync, err := serveSync(ctx, wcfg.HostSync.Listen, deps, log)
			if err != nil {
				w.Stop()
				closeAll()
				return nil, err
			}
			closers = append([]func(){stopSync}, closers...)
		}
	}
	return func() {
		log.Info("worker stopping", "grace", wcfg.StopTimeout)
		w.Stop()
		closeAll()
	}, nil
}

// serveSync serves the copies of volumes into this host's tenants (the
// target side of a move).
func serveSync(ctx context.Context, addr string, deps wiring.Deps, log *slog.Logger) (stop func(), err error) {
	h := deps.SyncHandler()
	if h == nil {
		return nil, fmt.Errorf("%s: serving volume copies needs the Docker Engine and %s", volsync.EnvListen, volsync.EnvToken)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", volsync.EnvListen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("volume sync server stopped", "error", err)
		}
	}()
	log.Info("volume sync serving", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// apiFiles are the API's local configuration files, loaded and checked.
type apiFiles struct {
	templates spec.Templates
	tokens    *api.Tokens
	builds    *api.Builds // nil: builds off
}

func loadAPIFiles(a apiSettings) (apiFiles, error) {
	if err := a.checkCodec(); err != nil {
		return apiFiles{}, err
	}
	if a.ReadWait < 0 || a.ReadWait > api.DefaultQueryTimeout {
		return apiFiles{}, fmt.Errorf("TENANTFLOW_API_READ_WAIT=%s must be between 0 (the default) and %s", a.ReadWait, api.DefaultQueryTimeout)
	}
	templates, err := spec.LoadTemplates(a.TemplatesDir)
	if err != nil {
		return apiFiles{}, fmt.Errorf("TENANTFLOW_TEMPLATES_DIR: %w", err)
	}
	if err := templates.WithDefaultRuntime(a.Runtime); err != nil {
		return apiFiles{}, fmt.Errorf("TENANTFLOW_RUNTIME: %w", err)
	}
	if a.TokensFile == "" {
		return apiFiles{}, errors.New("TENANTFLOW_API_TOKENS_FILE is required (JSON mapping roles to bearer tokens)")
	}
	tokens, err := api.LoadTokens(a.TokensFile)
	if err != nil {
		return apiFiles{}, fmt.Errorf("TENANTFLOW_API_TOKENS_FILE: %w", err)
	}
	files := apiFiles{templates: templates, tokens: tokens}
	if a.ProjectsFile != "" {
		projects, err := build.LoadProjects(a.ProjectsFile)
		if err != nil {
			return apiFiles{}, fmt.Errorf("TENANTFLOW_BUILD_PROJECTS_FILE: %w", err)
		}
		resolver := build.Resolver{Projects: projects}
		if projects.NeedGitLab() {
			// Projects without a git remote are GitLab's: refs are
			// resolved there, and pushes come from its webhook.
			if a.GitLab == nil || !a.GitLab.Enabled {
				return apiFiles{}, errors.New("TENANTFLOW_BUILD_PROJECTS_FILE lists GitLab projects (without git:) but TENANTFLOW_GITLAB_ENABLED is not set: their refs are resolved in GitLab")
			}
			if len(a.WebhookSecret) < 16 {
				return apiFiles{}, errors.New("TENANTFLOW_GITLAB_WEBHOOK_SECRET must be at least 16 characters when GitLab projects are built")
			}
			glc, err := gitlab.NewClient(*a.GitLab, slog.Default().With("component", "gitlab"))
			if err != nil {
				return apiFiles{}, fmt.Errorf("gitlab: %w", err)
			}
			resolver.GitLab = glc
		}
		files.builds = &api.Builds{Projects: projects, Resolver: resolver, WebhookSecret: a.WebhookSecret, WebUIURL: a.WebUIURL}
	}
	return files, nil
}

// buildAPI returns the router with the codec endpoint mounted.
func buildAPI(a apiSettings, files apiFiles, tcfg temporalx.Config, c client.Client, reg *prometheus.Registry, log *slog.Logger) (http.Handler, error) {
	templates, tokens := files.templates, files.tokens
	keys, err := tcfg.Keyring()
	if err != nil {
		return nil, fmt.Errorf("TENANTFLOW_CODEC_KEYS: %w", err)
	}
	if files.builds != nil {
		files.builds.Namespace = tcfg.Namespace
	}
	trail, err := openAudit(a, log.With("component", "audit"))
	if err != nil {
		return nil, err
	}
	clusterLogs, err := openShiftLogs(a, log.With("component", "logs"))
	if err != nil {
		return nil, err
	}
	acfg := api.Config{TaskQueue: tcfg.TaskQueue, Tokens: tokens, Builds: files.builds, Placement: a.Placement, HostLostAfter: a.HostLostAfter, ReconcileEvery: a.ReconcileEvery, ReadWait: a.ReadWait, DataConverter: keys.DataConverter(), Audit: trail,
		Logs: (&docker.Engines{Shared: a.LogsDocker, Log: log.With("component", "logs")}).LogReader, ClusterLogs: clusterLogs}
	r, err := api.NewRouter(acfg, c, templates, log.With("component", "api"), reg)
	if err != nil {
		return nil, err
	}
	startReconcile(c, acfg, log)
	var origins []string
	for _, o := range strings.Split(a.CodecOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	if a.CodecAnonymous {
		log.Warn("codec endpoint decrypts without authentication (TENANTFLOW_CODEC_ALLOW_ANONYMOUS): development only")
	}
	codec := keys.WebHandler(origins, func(r *http.Request) bool {
		if a.CodecAnonymous {
			return true
		}
		role, ok := tokens.Role(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		return ok && role == api.RoleOps
	})
	r.Any("/codec/*op", gin.WrapH(http.StripPrefix("/codec", codec)))
	if err := mountPortal(r, a, templates, log); err != nil {
		return nil, err
	}
	log.Info("api configured", "templates", templates.Names(), "codecOrigins", origins)
	return r, nil
}

// mountPortal serves the distributor portal at /portal; it calls the API
// in-process, with each person's own token.
func mountPortal(r *gin.Engine, a apiSettings, templates spec.Templates, log *slog.Logger) error {
	var key []byte
	if a.PortalSessionKey != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.PortalSessionKey))
		if err != nil || len(k) != 32 {
			return errors.New("TENANTFLOW_PORTAL_SESSION_KEY: want base64 of 32 bytes (openssl rand -base64 32)")
		}
		key = k
	}
	p, err := portal.New(portal.Config{
		API: &http.Client{Transport: portal.InProcess(r)}, BaseURL: "http://api.internal",
		Templates: templates, SessionKey: key, SecureCookies: a.PortalSecureCookies,
	}, log.With("component", "portal"))
	if err != nil {
		return err
	}
	h := gin.WrapH(p)
	r.GET(portal.Prefix, h)
	r.Any(portal.Prefix+"/*page", h)
	return nil
}

// openShiftLogs is the reader of the OpenShift tenants' logs, on the
// cluster the worker runs them on; nil when the API has none.
func openShiftLogs(a apiSettings, log *slog.Logger) (runtimes.LogReader, error) {
	if a.OpenShift == nil || !a.OpenShift.Enabled() {
		return nil, nil
	}
	return &clusterLogs{cfg: *a.OpenShift, log: log}, nil
}

// clusterLogs reads OpenShift tenants' logs, connecting to the cluster on
// first use: a cluster that does not answer fails those reads (503), never
// the API's start.
type clusterLogs struct {
	cfg openshift.Config
	log *slog.Logger
	mu  sync.Mutex
	d   *openshift.Driver
}

func (c *clusterLogs) Logs(ctx context.Context, in runtimes.LogsInput, emit func(runtimes.LogLine) error) error {
	c.mu.Lock()
	if c.d == nil {
		d, err := openshift.New(ctx, c.cfg, nil, c.log)
		if err != nil {
			c.mu.Unlock()
			return fmt.Errorf("openshift cluster: %w", err)
		}
		c.d = d
	}
	d := c.d
	c.mu.Unlock()
	return d.Logs(ctx, in, emit)
}

// startReconcile starts the drift reconcile with the API, fleet or not;
// a failure is not fatal: the first host registered starts it too.
func startReconcile(c client.Client, acfg api.Config, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := api.EnsureReconcile(ctx, c, acfg); err != nil {
		log.Warn("drift reconcile not started now; registering a host starts it", "error", err)
	}
}

// httpLimits bound what one connection may cost a server.
type httpLimits struct {
	ReadHeader time.Duration // the request's headers
	Read       time.Duration // the whole request, body included
	// Write runs from the end of the request's headers to the end of the
	// answer: reading the body, the handler and sending the answer.
	Write          time.Duration
	Idle           time.Duration // a keep-alive connection between requests
	MaxHeaderBytes int
}

// defaultHTTPLimits: a request (API bodies are at most 64 KiB, codec
// batches 8 MiB) must arrive within Read, so a client declaring a large
// body and trickling it is cut off; Write outlasts Read plus the slowest
// answer (a DELETE or a promote waits for a query and an Update in turn,
// each at most api.DefaultQueryTimeout; a build api.ResolveTimeout for
// GitLab, then up to 10 s for a workflow start), so no answer the API
// computes is cut off unsent. Keep-alive connections are closed after
// Idle, beyond the usual 60 s of load balancers, which close first and so
// never reuse a connection the server is closing.
var defaultHTTPLimits = httpLimits{
	ReadHeader:     10 * time.Second,
	Read:           30 * time.Second,
	Write:          90 * time.Second,
	Idle:           120 * time.Second,
	MaxHeaderBytes: 64 << 10,
}

// serveHTTP serves h on addr until ctx ends, then drains in-flight requests.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return serve(ctx, ln, h, defaultHTTPLimits, log)
}

// serve serves h on ln within limits until ctx ends, then drains in-flight
// requests.
func serve(ctx context.Context, ln net.Listener, h http.Handler, limits httpLimits, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeader,
		ReadTimeout:       limits.Read,
		WriteTimeout:      limits.Write,
		IdleTimeout:       limits.Idle,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("http listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
