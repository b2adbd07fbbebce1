package ldap

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Config is how the worker reaches the directory. The bind DN needs write
// access below BaseDN (add, delete, modify, Password Modify) and read access
// to userPassword there (DisableAccounts/EnableAccounts rewrite its values).
type Config struct {
	Enabled bool
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL    string
	BindDN string
	// BindPassword and BindPasswordFile are alternatives: exactly one is set
	// when the directory is enabled. The file keeps the secret out of the
	// process environment; its content is trimmed.
	BindPassword     string
	BindPasswordFile string
	// BaseDN is the container of the tenant OUs (ou=tenants,dc=example,dc=org).
	// It must exist: Tenantflow does not create it.
	BaseDN string
	// StartTLS upgrades an ldap:// connection before binding.
	StartTLS bool
	// TLSCA is a PEM file of CA certificates to trust instead of the
	// system's, for ldaps:// or StartTLS.
	TLSCA   string
	Timeout time.Duration
}

// Environment variable names, used in validation messages.
const (
	envEnabled          = "TENANTFLOW_LDAP_ENABLED"
	envURL              = "TENANTFLOW_LDAP_URL"
	envBindDN           = "TENANTFLOW_LDAP_BIND_DN"
	envBindPassword     = "TENANTFLOW_LDAP_BIND_PASSWORD"
	envBindPasswordFile = "TENANTFLOW_LDAP_BIND_PASSWORD_FILE"
	envBaseDN           = "TENANTFLOW_LDAP_BASE_DN"
	envStartTLS         = "TENANTFLOW_LDAP_START_TLS"
	envTLSCA            = "TENANTFLOW_LDAP_TLS_CA"
	envTimeout          = "TENANTFLOW_LDAP_TIMEOUT"
)

// Register binds the settings to flags and TENANTFLOW_LDAP_* variables.
func (c *Config) Register(s *config.Set) {
	s.Bool(&c.Enabled, "ldap-enabled", envEnabled, false, "create each tenant's directory OU, admin group and admin account in LDAP")
	s.String(&c.URL, "ldap-url", envURL, "ldap://127.0.0.1:389", "LDAP server URL (ldap:// or ldaps://)")
	s.String(&c.BindDN, "ldap-bind-dn", envBindDN, "", "DN the worker binds as (needs write access below the base DN)")
	s.Secret(&c.BindPassword, "ldap-bind-password", envBindPassword, "password of the bind DN (or use the _FILE variant)")
	s.String(&c.BindPasswordFile, "ldap-bind-password-file", envBindPasswordFile, "", "file holding the password of the bind DN")
	s.String(&c.BaseDN, "ldap-base-dn", envBaseDN, "", "existing container of the tenant OUs, e.g. ou=tenants,dc=example,dc=org")
	s.Bool(&c.StartTLS, "ldap-start-tls", envStartTLS, false, "upgrade ldap:// connections with StartTLS before binding")
	s.String(&c.TLSCA, "ldap-tls-ca", envTLSCA, "", "PEM file of CA certificates to trust for ldaps:// or StartTLS (default: system roots)")
	s.Duration(&c.Timeout, "ldap-timeout", envTimeout, 10*time.Second, "timeout of dialing and of each LDAP request")
}

// Validate reports every bad setting, naming its variable, when the
// directory is enabled.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	return c.check()
}

// check validates regardless of Enabled (New needs a usable config).
func (c Config) check() error {
	var problems config.Problems
	bad := problems.Add
	scheme := ""
	if u, err := url.Parse(c.URL); err != nil {
		bad(envURL, "%q is not a URL: %v", c.URL, err)
	} else {
		scheme = u.Scheme
		switch {
		case u.Scheme != "ldap" && u.Scheme != "ldaps":
			bad(envURL, "%q: scheme must be ldap:// or ldaps://", c.URL)
		case u.Host == "":
			bad(envURL, "%q: no host", c.URL)
		case u.Path != "" && u.Path != "/":
			bad(envURL, "%q: must not have a path (the base DN is %s)", c.URL, envBaseDN)
		}
	}
	for _, dn := range []struct{ env, val string }{{envBindDN, c.BindDN}, {envBaseDN, c.BaseDN}} {
		if strings.TrimSpace(dn.val) == "" {
			bad(dn.env, "required")
		} else if _, err := goldap.ParseDN(dn.val); err != nil {
			bad(dn.env, "%q is not a DN: %v", dn.val, err)
		}
	}
	switch {
	case c.BindPassword != "" && c.BindPasswordFile != "":
		bad(envBindPassword, "set either it or %s, not both", envBindPasswordFile)
	case c.BindPassword == "" && c.BindPasswordFile == "":
		bad(envBindPassword, "required (or %s)", envBindPasswordFile)
	case c.BindPasswordFile != "":
		if _, err := c.bindPassword(); err != nil {
			bad(envBindPasswordFile, "%v", err)
		}
	}
	if c.StartTLS && scheme == "ldaps" {
		bad(envStartTLS, "cannot be used with an ldaps:// URL (already TLS)")
	}
	if c.TLSCA != "" {
		if scheme != "ldaps" && !c.StartTLS {
			bad(envTLSCA, "is set but the connection is not TLS (use ldaps:// or %s=true)", envStartTLS)
		}
		if _, err := loadCA(c.TLSCA); err != nil {
			bad(envTLSCA, "%v", err)
		}
	}
	if c.Timeout <= 0 {
		bad(envTimeout, "must be positive, got %s", c.Timeout)
	}
	return problems.Err()
}

// bindPassword is the configured password, from the variable or the file.
// Errors name the file, never its content.
func (c Config) bindPassword() (string, error) {
	if c.BindPasswordFile == "" {
		return c.BindPassword, nil
	}
	b, err := os.ReadFile(c.BindPasswordFile)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", c.BindPasswordFile)
	}
	return pw, nil
}

func loadCA(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
