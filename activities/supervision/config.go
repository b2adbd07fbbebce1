package supervision

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Environment variables, named in every validation error so the operator
// sees the setting to fix.
const (
	EnvDriver              = "TENANTFLOW_SUPERVISION_DRIVER"
	EnvTimeout             = "TENANTFLOW_SUPERVISION_TIMEOUT"
	EnvPrometheusSDDir     = "TENANTFLOW_SUPERVISION_PROMETHEUS_SD_DIR"
	EnvPrometheusURL       = "TENANTFLOW_SUPERVISION_PROMETHEUS_URL"
	EnvIcinga2URL          = "TENANTFLOW_SUPERVISION_ICINGA2_URL"
	EnvIcinga2User         = "TENANTFLOW_SUPERVISION_ICINGA2_USER"
	EnvIcinga2Password     = "TENANTFLOW_SUPERVISION_ICINGA2_PASSWORD"
	EnvIcinga2CA           = "TENANTFLOW_SUPERVISION_ICINGA2_CA"
	EnvIcinga2InsecureSkip = "TENANTFLOW_SUPERVISION_ICINGA2_INSECURE_SKIP_VERIFY"
	EnvIcinga2HostTemplate = "TENANTFLOW_SUPERVISION_ICINGA2_HOST_TEMPLATE"
)

// Driver names accepted in TENANTFLOW_SUPERVISION_DRIVER.
const (
	DriverNone       = "none"
	DriverPrometheus = "prometheus"
	DriverIcinga2    = "icinga2"
)

// Config selects the monitoring system that alerts when a tenant's URL stops
// answering, and how to reach it. Only the selected driver's settings are
// checked.
type Config struct {
	// Driver is none (supervision off), prometheus or icinga2.
	Driver string
	// Timeout bounds each request to the monitoring system.
	Timeout    time.Duration
	Prometheus PrometheusConfig
	Icinga2    Icinga2Config
}

// PrometheusConfig locates the file_sd directory Prometheus watches. Writing
// files there needs no credentials and keeps working while Prometheus
// restarts.
type PrometheusConfig struct {
	// SDDir is the directory a file_sd_configs entry of Prometheus globs
	// (see deploy/prometheus/prometheus.yml); the worker must be able to
	// write there and Prometheus to read.
	SDDir string
	// URL is Prometheus' base URL; optional, only Check uses it (/-/ready).
	URL string
}

// Icinga2Config is how the worker reaches the Icinga 2 REST API to create
// host and service objects: an ApiUser allowed objects/* on hosts and
// services (objects/query, objects/create, objects/modify, objects/delete).
type Icinga2Config struct {
	URL      string // https://icinga.example.internal:5665
	User     string
	Password string // never logged nor put in an error message
	// CA is the PEM file that signed the API certificate (the Icinga CA,
	// /var/lib/icinga2/ca/ca.crt); InsecureSkipVerify is the lab-only
	// alternative.
	CA                 string
	InsecureSkipVerify bool
	// HostTemplate is imported by every tenant host, so ops decide check
	// intervals, notification users and groups in Icinga's own config.
	HostTemplate string
}

// Register binds the settings to flags and TENANTFLOW_SUPERVISION_* variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.Driver, "supervision-driver", EnvDriver, DriverNone, "monitoring that alerts when a tenant's URL is down: none, prometheus or icinga2")
	s.Duration(&c.Timeout, "supervision-timeout", EnvTimeout, 10*time.Second, "timeout of one request to the monitoring system")
	s.String(&c.Prometheus.SDDir, "supervision-prometheus-sd-dir", EnvPrometheusSDDir, "", "directory of Prometheus file_sd target files (one per tenant)")
	s.String(&c.Prometheus.URL, "supervision-prometheus-url", EnvPrometheusURL, "", "Prometheus base URL, checked at start-up (optional)")
	s.String(&c.Icinga2.URL, "supervision-icinga2-url", EnvIcinga2URL, "", "Icinga 2 API base URL (https://host:5665)")
	s.String(&c.Icinga2.User, "supervision-icinga2-user", EnvIcinga2User, "", "Icinga 2 ApiUser name")
	s.Secret(&c.Icinga2.Password, "supervision-icinga2-password", EnvIcinga2Password, "Icinga 2 ApiUser password (prefer the variable: flags show in ps)")
	s.String(&c.Icinga2.CA, "supervision-icinga2-ca", EnvIcinga2CA, "", "PEM file of the CA that signed the Icinga 2 API certificate")
	s.Bool(&c.Icinga2.InsecureSkipVerify, "supervision-icinga2-insecure-skip-verify", EnvIcinga2InsecureSkip, false, "do not verify the Icinga 2 API certificate (lab only)")
	s.String(&c.Icinga2.HostTemplate, "supervision-icinga2-host-template", EnvIcinga2HostTemplate, "", "Icinga 2 host template every tenant host imports (optional)")
}

// driver is the normalised driver name; empty means none.
func (c Config) driver() string {
	d := strings.ToLower(strings.TrimSpace(c.Driver))
	if d == "" {
		return DriverNone
	}
	return d
}

// Enabled reports whether a monitoring system is configured; the worker
// registers the supervision activities only then.
func (c Config) Enabled() bool { return c.driver() != DriverNone }

// LogValue logs the configuration with the Icinga password redacted.
func (c Config) LogValue() slog.Value {
	pw := ""
	if c.Icinga2.Password != "" {
		pw = "[redacted]"
	}
	return slog.GroupValue(
		slog.String("driver", c.driver()), slog.Duration("timeout", c.Timeout),
		slog.String("prometheusSDDir", c.Prometheus.SDDir), slog.String("prometheusURL", c.Prometheus.URL),
		slog.String("icinga2URL", c.Icinga2.URL), slog.String("icinga2User", c.Icinga2.User),
		slog.String("icinga2Password", pw), slog.String("icinga2CA", c.Icinga2.CA),
		slog.Bool("icinga2InsecureSkipVerify", c.Icinga2.InsecureSkipVerify),
		slog.String("icinga2HostTemplate", c.Icinga2.HostTemplate))
}

// String is LogValue's text, so printing a Config never shows the password.
func (c Config) String() string { return c.LogValue().String() }

// Validate reports every bad setting of the selected driver by its variable
// name; with the driver none nothing else is checked.
func (c Config) Validate() error {
	var problems config.Problems
	bad := problems.Add
	switch c.driver() {
	case DriverNone:
		return nil
	case DriverPrometheus:
		dir := strings.TrimSpace(c.Prometheus.SDDir)
		if dir == "" {
			bad(EnvPrometheusSDDir, "is empty: set the directory Prometheus' file_sd_configs watches")
		} else if !filepath.IsAbs(dir) {
			bad(EnvPrometheusSDDir, "%q is not an absolute path", c.Prometheus.SDDir)
		}
		if c.Prometheus.URL != "" {
			if err := checkBaseURL(c.Prometheus.URL, "http", "https"); err != nil {
				bad(EnvPrometheusURL, "%v", err)
			}
		}
	case DriverIcinga2:
		if c.Icinga2.URL == "" {
			bad(EnvIcinga2URL, "is empty (e.g. https://icinga.example.internal:5665)")
		} else if err := checkBaseURL(c.Icinga2.URL, "https"); err != nil {
			bad(EnvIcinga2URL, "%v", err)
		}
		if strings.TrimSpace(c.Icinga2.User) == "" {
			bad(EnvIcinga2User, "is empty: set the ApiUser name")
		}
		if c.Icinga2.Password == "" {
			bad(EnvIcinga2Password, "is empty: set the ApiUser password")
		}
		switch {
		case c.Icinga2.CA == "" && !c.Icinga2.InsecureSkipVerify:
			bad(EnvIcinga2CA, "is empty: set the Icinga CA file (or %s=true in a lab)", EnvIcinga2InsecureSkip)
		case c.Icinga2.CA != "" && c.Icinga2.InsecureSkipVerify:
			bad(EnvIcinga2InsecureSkip, "is true while %s is set: choose one", EnvIcinga2CA)
		case c.Icinga2.CA != "":
			if _, err := os.Stat(c.Icinga2.CA); err != nil {
				bad(EnvIcinga2CA, "%v", err)
			}
		}
	default:
		bad(EnvDriver, "%q is not one of none, prometheus, icinga2", c.Driver)
	}
	if c.Timeout <= 0 {
		bad(EnvTimeout, "%s must be positive", c.Timeout)
	}
	return problems.Err()
}

// checkBaseURL accepts an absolute URL with one of the schemes and a host,
// without credentials (they have their own settings and must not be
// logged with the URL).
func checkBaseURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	switch {
	case !ok:
		return fmt.Errorf("%q: scheme must be %s", u.Redacted(), strings.Join(schemes, " or "))
	case u.Host == "":
		return fmt.Errorf("%q has no host", u.Redacted())
	case u.User != nil:
		return fmt.Errorf("%q must not contain credentials", u.Redacted())
	}
	return nil
}
