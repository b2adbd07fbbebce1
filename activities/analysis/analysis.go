// Package analysis measures how tenants serve, from the probes Prometheus
// keeps of them, for a release's canary analysis: the canaries on the new
// image against tenants still on the old one.
//
// The figures come from the blackbox probes supervision registers for every
// tenant (deploy/prometheus: job tenantflow-blackbox, label tenant). They
// follow each cut-over, since the tenant's probe is repointed at its new
// instance, and they see what a customer sees when the probes go through
// the proxy (TENANTFLOW_SUPERVISION_PROBE_PUBLIC). Caddy's own metrics
// would do as well, but the Caddy Debian ships (2.6) labels them by server
// and handler only, not by host, so they cannot tell tenants apart.
package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Settings.
const (
	EnvPrometheusURL = "TENANTFLOW_ANALYSIS_PROMETHEUS_URL"
	EnvJob           = "TENANTFLOW_ANALYSIS_JOB"
	EnvTimeout       = "TENANTFLOW_ANALYSIS_TIMEOUT"
	// DefaultJob is the scrape job of deploy/prometheus/prometheus.yml
	// that probes the tenants.
	DefaultJob = "tenantflow-blackbox"
)

// ErrNotConfigured is the failure type when no Prometheus is configured: a
// release whose plan asks for an analysis then pauses as inconclusive.
const ErrNotConfigured = "AnalysisNotConfigured"

// Config says where the probes are read.
type Config struct {
	// PrometheusURL is Prometheus' base URL (empty: canary analysis is
	// not available on this worker).
	PrometheusURL string
	// Job is the scrape job whose probe_success and probe_duration_seconds
	// series carry a tenant label.
	Job     string
	Timeout time.Duration
}

// Register binds the settings to flags and TENANTFLOW_ANALYSIS_* variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.PrometheusURL, "analysis-prometheus-url", EnvPrometheusURL, "", "Prometheus that scrapes the tenants' probes, read by releases whose plan has a canary analysis (default: the supervision's Prometheus URL)")
	s.String(&c.Job, "analysis-job", EnvJob, DefaultJob, "scrape job of the tenants' blackbox probes (series labelled tenant)")
	s.Duration(&c.Timeout, "analysis-timeout", EnvTimeout, 10*time.Second, "timeout of one query to Prometheus")
}

// jobRE is what a job name may hold: it goes into a PromQL string.
var jobRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// Validate reports bad settings by their variable names.
func (c Config) Validate() error {
	var problems config.Problems
	if c.PrometheusURL != "" {
		u, err := url.Parse(c.PrometheusURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			problems.Add(EnvPrometheusURL, "%q is not an http(s) URL with a host", c.PrometheusURL)
		case u.User != nil:
			problems.Add(EnvPrometheusURL, "must not contain credentials")
		}
	}
	if !jobRE.MatchString(c.Job) {
		problems.Add(EnvJob, "%q is not a job name", c.Job)
	}
	if c.Timeout <= 0 {
		problems.Add(EnvTimeout, "%s must be positive", c.Timeout)
	}
	return problems.Err()
}

// Group is tenants whose probes are measured over the Range that ends at
// Until.
type Group struct {
	Tenants []string  `json:"tenants"`
	Until   time.Time `json:"until"`
}

// CompareInput asks for the canaries' figures and the baseline's, each
// over Range.
type CompareInput struct {
	Release  string        `json:"release"`
	Canary   Group         `json:"canary"`
	Baseline Group         `json:"baseline"`
	Range    time.Duration `json:"range"`
}

// Figures are what the probes of a group of tenants saw.
type Figures struct {
	// Probes is how many probes were kept, Failed how many of them failed
	// (no answer, or not 2xx).
	Probes int `json:"probes"`
	Failed int `json:"failed"`
	// ErrorRate is Failed / Probes (0 without probes).
	ErrorRate float64 `json:"errorRate"`
	// LatencyMillis is a probe's mean duration.
	LatencyMillis float64 `json:"latencyMillis"`
}

// Comparison is the answer of CompareCanaries.
type Comparison struct {
	Canary   Figures `json:"canary"`
	Baseline Figures `json:"baseline"`
}

// Activities read the probes from Prometheus.
type Activities struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger
}

// New builds the activities; without a Prometheus URL they answer
// ErrNotConfigured. An empty job or a zero timeout take their defaults.
func New(cfg Config, log *slog.Logger) (*Activities, error) {
	if cfg.Job == "" {
		cfg.Job = DefaultJob
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Activities{cfg: cfg, http: &http.Client{Timeout: cfg.Timeout}, log: log}, nil
}

// MaxTenants bounds a group: the names go into one query.
const MaxTenants = 100

// tenantRE is a tenant name, as the API accepts it.
var tenantRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// CompareCanaries measures the canaries and the baseline. An empty group has zero
// figures. It only reads, so a retry is harmless.
func (a *Activities) CompareCanaries(ctx context.Context, in CompareInput) (Comparison, error) {
	if a == nil || a.cfg.PrometheusURL == "" {
		return Comparison{}, temporal.NewNonRetryableApplicationError(
			"canary analysis needs Prometheus: set "+EnvPrometheusURL+" on the worker", ErrNotConfigured, nil)
	}
	if in.Range < time.Second {
		return Comparison{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("analysis range %s is under a second", in.Range), "BadInput", nil)
	}
	for _, g := range []Group{in.Canary, in.Baseline} {
		if err := checkGroup(g); err != nil {
			return Comparison{}, err
		}
	}
	// The errors are not wrapped: a non-retryable one must stay on top.
	var out Comparison
	var err error
	if out.Canary, err = a.measure(ctx, in.Canary, in.Range); err != nil {
		return out, err
	}
	if out.Baseline, err = a.measure(ctx, in.Baseline, in.Range); err != nil {
		return out, err
	}
	a.log.InfoContext(ctx, "canary analysis measured", "release", in.Release, "canaries", strings.Join(in.Canary.Tenants, ","),
		"canaryProbes", out.Canary.Probes, "canaryErrorRate", out.Canary.ErrorRate, "canaryLatencyMillis", out.Canary.LatencyMillis,
		"baselineProbes", out.Baseline.Probes, "baselineErrorRate", out.Baseline.ErrorRate, "baselineLatencyMillis", out.Baseline.LatencyMillis)
	return out, nil
}

// checkGroup refuses names that could not be put in a query.
func checkGroup(g Group) error {
	if len(g.Tenants) > MaxTenants {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d tenants in one group, over %d", len(g.Tenants), MaxTenants), "BadInput", nil)
	}
	for _, n := range g.Tenants {
		if !tenantRE.MatchString(n) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%q is not a tenant name", n), "BadInput", nil)
		}
	}
	return nil
}

// measure sums the group's probes over rng up to g.Until.
func (a *Activities) measure(ctx context.Context, g Group, rng time.Duration) (Figures, error) {
	if len(g.Tenants) == 0 {
		return Figures{}, nil
	}
	sel := fmt.Sprintf(`{job=%q,tenant=~%q}`, a.cfg.Job, strings.Join(g.Tenants, "|"))
	win := "[" + strconv.FormatInt(int64(rng/time.Second), 10) + "s]"
	probes, err := a.scalar(ctx, "sum(count_over_time(probe_success"+sel+win+"))", g.Until)
	if err != nil {
		return Figures{}, err
	}
	ok, err := a.scalar(ctx, "sum(sum_over_time(probe_success"+sel+win+"))", g.Until)
	if err != nil {
		return Figures{}, err
	}
	secs, err := a.scalar(ctx, "sum(sum_over_time(probe_duration_seconds"+sel+win+"))", g.Until)
	if err != nil {
		return Figures{}, err
	}
	f := Figures{Probes: int(probes), Failed: int(probes - ok)}
	if f.Probes > 0 {
		f.ErrorRate = float64(f.Failed) / float64(f.Probes)
		f.LatencyMillis = secs * 1000 / probes
	}
	return f, nil
}

// scalar runs an instant query at t whose answer is one number (an empty
// vector, when no series matched, is 0).
func (a *Activities) scalar(ctx context.Context, query string, t time.Time) (float64, error) {
	q := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(a.cfg.PrometheusURL, "/")+"/api/v1/query?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("query prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("read prometheus answer: %w", err)
	}
	var env struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return 0, fmt.Errorf("prometheus answered %d: %.200s", resp.StatusCode, body)
	}
	if env.Status != "success" {
		err := fmt.Errorf("prometheus refused %s: %s: %s", query, env.ErrorType, env.Error)
		if env.ErrorType == "bad_data" {
			return 0, temporal.NewNonRetryableApplicationError(err.Error(), "BadQuery", nil)
		}
		return 0, err
	}
	if env.Data.ResultType != "vector" || len(env.Data.Result) > 1 {
		return 0, fmt.Errorf("prometheus answered %s with %d series, not one number", env.Data.ResultType, len(env.Data.Result))
	}
	if len(env.Data.Result) == 0 {
		return 0, nil
	}
	s, _ := env.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errors.New("prometheus answered a value that is not a number: " + s)
	}
	return v, nil
}
