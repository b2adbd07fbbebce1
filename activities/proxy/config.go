package proxy

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Environment variables, named in every validation error so the operator
// sees the setting to fix.
const (
	EnvEnabled      = "TENANTFLOW_PROXY_ENABLED"
	EnvAdminURL     = "TENANTFLOW_PROXY_ADMIN_URL"
	EnvServer       = "TENANTFLOW_PROXY_SERVER"
	EnvListen       = "TENANTFLOW_PROXY_LISTEN"
	EnvDomain       = "TENANTFLOW_PROXY_DOMAIN"
	EnvPublicScheme = "TENANTFLOW_PROXY_PUBLIC_SCHEME"
	EnvPublicPort   = "TENANTFLOW_PROXY_PUBLIC_PORT"
)

// Config says which Caddy serves the tenants and under which names. Caddy
// is changed only through its admin API, so its own config file (or
// Caddyfile) keeps whatever else it serves; Tenantflow only owns the routes
// whose @id starts with "tenantflow-" in one HTTP server.
type Config struct {
	// Enabled turns the proxy step on; when false Validate accepts anything.
	Enabled bool
	// AdminURL is Caddy's admin endpoint. Caddy checks the Host header, so
	// use the host the admin listener was configured with.
	AdminURL string
	// Server is the key under apps.http.servers that holds tenant routes.
	Server string
	// Listen is the comma-separated listen addresses given to Server when
	// Tenantflow has to create it; an existing server keeps its own.
	Listen string
	// Domain is the parent of every tenant host: <tenant>.<Domain>.
	Domain string
	// PublicScheme is how users reach tenants: https (Caddy obtains a
	// certificate per tenant host) or http (automatic HTTPS is disabled on
	// the server Tenantflow creates).
	PublicScheme string
	// PublicPort, when set, is appended to the reported tenant URL (a proxy
	// on a non-standard port, tests).
	PublicPort string
}

// Register binds the settings to flags and TENANTFLOW_PROXY_* variables.
func (c *Config) Register(s *config.Set) {
	s.Bool(&c.Enabled, "proxy-enabled", EnvEnabled, false, "route each tenant's host name to its app through Caddy's admin API")
	s.String(&c.AdminURL, "proxy-admin-url", EnvAdminURL, "http://127.0.0.1:2019", "Caddy admin API URL")
	s.String(&c.Server, "proxy-server", EnvServer, "tenantflow", "key under apps.http.servers that holds the tenant routes")
	s.String(&c.Listen, "proxy-listen", EnvListen, ":443", "comma-separated listen addresses of that server, used when Tenantflow creates it")
	s.String(&c.Domain, "proxy-domain", EnvDomain, "", "parent domain of tenant hosts: <tenant>.<domain> (e.g. apps.example.com)")
	s.String(&c.PublicScheme, "proxy-public-scheme", EnvPublicScheme, "https", "scheme of tenant URLs: https or http")
	s.String(&c.PublicPort, "proxy-public-port", EnvPublicPort, "", "port appended to tenant URLs (empty: the scheme's default)")
}

// Validate reports every bad setting by its variable name when the proxy is
// enabled; a disabled component is not checked.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	_, err := c.settings()
	return err
}

// settings is the validated, normalised form of Config the activities use.
type settings struct {
	admin  *url.URL // no trailing slash in Path
	server string
	listen []string
	domain string // lower case, no trailing dot
	scheme string // "https" or "http"
	port   string // "" or 1–65535
}

// serverName is restricted so it can be put in an admin API path as is.
var serverName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c Config) settings() (settings, error) {
	var s settings
	var problems config.Problems
	bad := problems.Add

	u, err := url.Parse(strings.TrimSpace(c.AdminURL))
	switch {
	case err != nil:
		bad(EnvAdminURL, "%q is not a URL", c.AdminURL)
	case u.Scheme != "http" && u.Scheme != "https":
		bad(EnvAdminURL, "%q: scheme must be http or https", c.AdminURL)
	case u.Host == "":
		bad(EnvAdminURL, "%q has no host", c.AdminURL)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		bad(EnvAdminURL, "%q: only scheme, host, port and path are allowed", u.Redacted())
	default:
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = ""
		s.admin = u
	}

	s.server = strings.TrimSpace(c.Server)
	if !serverName.MatchString(s.server) {
		bad(EnvServer, "%q: use 1–64 letters, digits, '-' or '_'", c.Server)
	}

	for _, a := range strings.Split(c.Listen, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !validListen(a) {
			bad(EnvListen, "%q is not a listen address like :443 or 127.0.0.1:8443", a)
			continue
		}
		s.listen = append(s.listen, a)
	}
	if len(s.listen) == 0 {
		bad(EnvListen, "is empty (e.g. :443)")
	}

	s.domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.Domain)), ".")
	switch {
	case s.domain == "":
		bad(EnvDomain, "is empty (e.g. apps.example.com)")
	case !validHostname(s.domain):
		bad(EnvDomain, "%q is not a valid domain name", c.Domain)
	case len(s.domain) > 253-64:
		bad(EnvDomain, "%q leaves no room for a 63-character tenant label", c.Domain)
	}

	s.scheme = strings.ToLower(strings.TrimSpace(c.PublicScheme))
	if s.scheme != "https" && s.scheme != "http" {
		bad(EnvPublicScheme, "%q is neither https nor http", c.PublicScheme)
	}

	s.port = strings.TrimSpace(c.PublicPort)
	if s.port != "" {
		if n, err := strconv.Atoi(s.port); err != nil || n < 1 || n > 65535 {
			bad(EnvPublicPort, "%q is not a port number (1–65535)", c.PublicPort)
		}
	}

	if err := problems.Err(); err != nil {
		return settings{}, err
	}
	return s, nil
}

// validListen accepts Caddy network addresses with a port: ":443",
// "127.0.0.1:8080", "[::1]:443", "tcp/:443", "tcp4/0.0.0.0:80-81".
func validListen(a string) bool {
	if i := strings.IndexByte(a, '/'); i >= 0 {
		if !strings.HasPrefix(a[:i], "tcp") {
			return false // unix sockets and UDP-only listeners serve no tenant URL
		}
		a = a[i+1:]
	}
	_, port, err := net.SplitHostPort(a)
	if err != nil || port == "" {
		return false
	}
	for _, p := range strings.SplitN(port, "-", 2) {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			return false
		}
	}
	return true
}

// validHostname accepts lower-case names made of 1–63 character labels of
// letters, digits and '-', not starting or ending with '-': the names that
// can appear in a URL and a certificate.
func validHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

func validLabel(label string) bool {
	if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for _, r := range label {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
