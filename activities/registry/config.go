package registry

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Environment variables, named in every validation error so the operator
// sees the setting to fix.
const (
	EnvEnabled            = "TENANTFLOW_REGISTRY_ENABLED"
	EnvURL                = "TENANTFLOW_REGISTRY_URL"
	EnvHost               = "TENANTFLOW_REGISTRY_HOST"
	EnvUser               = "TENANTFLOW_REGISTRY_USER"
	EnvPassword           = "TENANTFLOW_REGISTRY_PASSWORD"
	EnvTimeout            = "TENANTFLOW_REGISTRY_TIMEOUT"
	EnvInsecureSkipVerify = "TENANTFLOW_REGISTRY_INSECURE_SKIP_VERIFY"
)

// DefaultTimeout bounds one registry request (a token fetch counts as a
// request of its own) when Timeout is left at zero.
const DefaultTimeout = 30 * time.Second

// Config says which private registry receives the images Tenantflow builds
// and how to log in to it. The same credentials go to the Docker Engine for
// its push, so they need push and delete rights on the tenant repositories.
type Config struct {
	// Enabled turns the registry side of image builds on; when false
	// Validate accepts anything.
	Enabled bool
	// URL is the registry API endpoint, http(s)://host[:port], without
	// the /v2/ path.
	URL string
	// Host is the registry as written in image references
	// (<Host>/<repo>:<tag>); empty means URL's host[:port]. It differs
	// from URL's host behind a proxy or when the engine reaches the
	// registry by another name.
	Host string
	// User and Password log in with HTTP Basic, or at the token server
	// the registry names in its Bearer challenge; both empty is anonymous.
	User     string
	Password string
	// Timeout bounds each HTTP request; zero means DefaultTimeout.
	Timeout time.Duration
	// InsecureSkipVerify accepts any TLS certificate: only for a test
	// registry with a self-signed certificate.
	InsecureSkipVerify bool
}

// Register binds the settings to flags and TENANTFLOW_REGISTRY_* variables.
func (c *Config) Register(s *config.Set) {
	s.Bool(&c.Enabled, "registry-enabled", EnvEnabled, false, "push built tenant images to a private Docker registry")
	s.String(&c.URL, "registry-url", EnvURL, "", "registry API URL, http(s)://host[:port] (without /v2/)")
	s.String(&c.Host, "registry-host", EnvHost, "", "registry host[:port] as written in image references (default: the URL's host)")
	s.String(&c.User, "registry-user", EnvUser, "", "registry user with push and delete rights (empty: anonymous)")
	s.Secret(&c.Password, "registry-password", EnvPassword, "password or access token of the registry user (prefer the variable: flags show in ps)")
	s.Duration(&c.Timeout, "registry-timeout", EnvTimeout, DefaultTimeout, "timeout of one registry HTTP request")
	s.Bool(&c.InsecureSkipVerify, "registry-insecure-skip-verify", EnvInsecureSkipVerify, false, "accept any TLS certificate from the registry (test registries only)")
}

// Validate reports every bad setting by its variable name when the
// registry is enabled; a disabled component is not checked.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	_, err := c.settings()
	return err
}

// settings is the validated, normalised form of Config the client uses.
type settings struct {
	base    *url.URL // scheme://host[:port], empty Path
	host    string   // for image references
	timeout time.Duration
}

// hostRE is a registry host[:port] as the reference grammar accepts it
// (DNS name, IPv4 or bracketed IPv6, optional port).
var hostRE = regexp.MustCompile(`^(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]{1,5})?$`)

func (c Config) settings() (settings, error) {
	var s settings
	var errs []error
	u, err := url.Parse(strings.TrimSuffix(c.URL, "/"))
	switch {
	case c.URL == "":
		errs = append(errs, fmt.Errorf("%s is required: the registry API URL, e.g. https://registry.example.com", EnvURL))
	case err != nil:
		errs = append(errs, fmt.Errorf("%s=%q: not a URL: %w", EnvURL, c.URL, err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("%s=%q: scheme must be http or https", EnvURL, c.URL))
	case u.Host == "":
		errs = append(errs, fmt.Errorf("%s=%q: no host", EnvURL, c.URL))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("%s: credentials in the URL are not allowed, use %s and %s", EnvURL, EnvUser, EnvPassword))
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("%s=%q: give only scheme://host[:port]; the API is always under /v2/", EnvURL, c.URL))
	default:
		s.base = &url.URL{Scheme: u.Scheme, Host: u.Host}
	}

	hostEnv := EnvHost
	s.host = c.Host
	if s.host == "" && s.base != nil {
		s.host, hostEnv = s.base.Host, EnvURL+" (the default of "+EnvHost+")"
	}
	switch {
	case s.host == "":
		// URL is already reported.
	case !hostRE.MatchString(s.host):
		errs = append(errs, fmt.Errorf("%s: %q is not a registry host[:port] (no scheme, no path)", hostEnv, s.host))
	case !strings.ContainsAny(s.host, ".:") && s.host != "localhost":
		// Docker reads "name/repo" without a dot, colon or "localhost"
		// as a Docker Hub namespace, so the push would go to Docker Hub.
		errs = append(errs, fmt.Errorf("%s: %q would be read as a Docker Hub namespace in image references; use a host with a dot or a port", hostEnv, s.host))
	}

	if c.Password != "" && c.User == "" {
		errs = append(errs, fmt.Errorf("%s is set but %s is empty", EnvPassword, EnvUser))
	}
	if c.User != "" && c.Password == "" {
		errs = append(errs, fmt.Errorf("%s is required when %s is set", EnvPassword, EnvUser))
	}
	switch {
	case c.Timeout < 0:
		errs = append(errs, fmt.Errorf("%s=%s: must be positive", EnvTimeout, c.Timeout))
	case c.Timeout == 0:
		s.timeout = DefaultTimeout
	default:
		s.timeout = c.Timeout
	}
	return s, errors.Join(errs...)
}
