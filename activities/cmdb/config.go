package cmdb

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Config is how the worker reaches iTop. The user needs the "REST Services
// User" profile plus write, bulk write and delete rights on Organization and
// ApplicationSolution (iTop refuses REST calls to users without that
// profile, even administrators).
type Config struct {
	Enabled bool
	// URL is iTop's root (https://itop.example.com or …/itop), the API being
	// <URL>/webservices/rest.php.
	URL  string
	User string
	// Password and PasswordFile are alternatives: exactly one is set when the
	// CMDB is enabled. The file keeps the secret out of the environment.
	Password     string
	PasswordFile string
	// Auth is how credentials are sent: "form" (auth_user/auth_pwd
	// parameters, which every iTop login mode accepts for REST) or "basic"
	// (HTTP Basic authentication, needed behind some SSO front ends).
	Auth string
	// Version is the REST API version asked for (?version=).
	Version            string
	Timeout            time.Duration
	InsecureSkipVerify bool
}

// Environment variable names, used in validation messages.
const (
	envEnabled            = "TENANTFLOW_CMDB_ENABLED"
	envURL                = "TENANTFLOW_CMDB_URL"
	envUser               = "TENANTFLOW_CMDB_USER"
	envPassword           = "TENANTFLOW_CMDB_PASSWORD"
	envPasswordFile       = "TENANTFLOW_CMDB_PASSWORD_FILE"
	envAuth               = "TENANTFLOW_CMDB_AUTH"
	envVersion            = "TENANTFLOW_CMDB_VERSION"
	envTimeout            = "TENANTFLOW_CMDB_TIMEOUT"
	envInsecureSkipVerify = "TENANTFLOW_CMDB_INSECURE_SKIP_VERIFY"
)

// Ways of sending credentials (Config.Auth).
const (
	AuthForm  = "form"
	AuthBasic = "basic"
)

// Register binds the settings to flags and TENANTFLOW_CMDB_* variables.
func (c *Config) Register(s *config.Set) {
	s.Bool(&c.Enabled, "cmdb-enabled", envEnabled, false, "register each tenant in the iTop CMDB (Organization + ApplicationSolution)")
	s.String(&c.URL, "cmdb-url", envURL, "", "iTop root URL, e.g. https://itop.example.com (the API is <url>/webservices/rest.php)")
	s.String(&c.User, "cmdb-user", envUser, "", "iTop user with the REST Services User profile")
	s.Secret(&c.Password, "cmdb-password", envPassword, "password of the iTop user (or use the _FILE variant)")
	s.String(&c.PasswordFile, "cmdb-password-file", envPasswordFile, "", "file holding the password of the iTop user")
	s.String(&c.Auth, "cmdb-auth", envAuth, AuthForm, "how credentials are sent: form (auth_user/auth_pwd) or basic (HTTP Basic)")
	s.String(&c.Version, "cmdb-version", envVersion, "1.3", "iTop REST API version")
	s.Duration(&c.Timeout, "cmdb-timeout", envTimeout, 10*time.Second, "timeout of each iTop REST request")
	s.Bool(&c.InsecureSkipVerify, "cmdb-insecure-skip-verify", envInsecureSkipVerify, false, "do not verify iTop's TLS certificate (test instances only)")
}

// Validate reports every bad setting, naming its variable, when the CMDB is
// enabled.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	return c.check()
}

var apiVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// check validates regardless of Enabled (New needs a usable config).
func (c Config) check() error {
	var problems config.Problems
	bad := problems.Add
	if u, err := url.Parse(c.URL); c.URL == "" {
		bad(envURL, "required (iTop root URL, e.g. https://itop.example.com)")
	} else if err != nil {
		bad(envURL, "%q is not a URL: %v", c.URL, err)
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			bad(envURL, "%q: scheme must be http:// or https://", c.URL)
		case u.Host == "":
			bad(envURL, "%q: no host", c.URL)
		case u.User != nil:
			bad(envURL, "must not hold credentials: set %s and %s", envUser, envPassword)
		case u.RawQuery != "" || u.Fragment != "":
			bad(envURL, "%q: must not have a query or fragment", c.URL)
		case strings.HasSuffix(strings.TrimRight(u.Path, "/"), ".php"):
			bad(envURL, "%q: give iTop's root URL, not a page (the API path %s is added)", c.URL, restPath)
		}
	}
	if strings.TrimSpace(c.User) == "" {
		bad(envUser, "required")
	}
	switch {
	case c.Password != "" && c.PasswordFile != "":
		bad(envPassword, "set either it or %s, not both", envPasswordFile)
	case c.Password == "" && c.PasswordFile == "":
		bad(envPassword, "required (or %s)", envPasswordFile)
	case c.PasswordFile != "":
		if _, err := c.password(); err != nil {
			bad(envPasswordFile, "%v", err)
		}
	}
	if c.Auth != AuthForm && c.Auth != AuthBasic {
		bad(envAuth, "%q: must be %s or %s", c.Auth, AuthForm, AuthBasic)
	}
	if !apiVersion.MatchString(c.Version) {
		bad(envVersion, "%q: must look like 1.3", c.Version)
	}
	if c.Timeout <= 0 {
		bad(envTimeout, "must be positive, got %s", c.Timeout)
	}
	return problems.Err()
}

// password is the configured password, from the variable or the file.
// Errors name the file, never its content.
func (c Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", c.PasswordFile)
	}
	return pw, nil
}
