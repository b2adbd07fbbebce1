package ldap_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/internal/config"
)

func validConfig() ldap.Config {
	return ldap.Config{
		Enabled: true, URL: "ldap://ldap.example.org", BindDN: "cn=admin,dc=example,dc=org",
		BindPassword: "secret", BaseDN: base, Timeout: 10 * time.Second,
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	notPEM := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))

	require.NoError(t, validConfig().Validate())
	require.NoError(t, ldap.Config{}.Validate(), "disabled: nothing to check")

	for name, tc := range map[string]struct {
		mutate func(*ldap.Config)
		env    []string
	}{
		"bad scheme":         {func(c *ldap.Config) { c.URL = "http://ldap.example.org" }, []string{"TENANTFLOW_LDAP_URL"}},
		"no host":            {func(c *ldap.Config) { c.URL = "ldap://" }, []string{"TENANTFLOW_LDAP_URL"}},
		"bad bind DN":        {func(c *ldap.Config) { c.BindDN = "admin" }, []string{"TENANTFLOW_LDAP_BIND_DN"}},
		"no base DN":         {func(c *ldap.Config) { c.BaseDN = "" }, []string{"TENANTFLOW_LDAP_BASE_DN"}},
		"no password":        {func(c *ldap.Config) { c.BindPassword = "" }, []string{"TENANTFLOW_LDAP_BIND_PASSWORD"}},
		"both passwords":     {func(c *ldap.Config) { c.BindPasswordFile = empty }, []string{"TENANTFLOW_LDAP_BIND_PASSWORD"}},
		"empty file":         {func(c *ldap.Config) { c.BindPassword, c.BindPasswordFile = "", empty }, []string{"TENANTFLOW_LDAP_BIND_PASSWORD_FILE"}},
		"missing file":       {func(c *ldap.Config) { c.BindPassword, c.BindPasswordFile = "", dir+"/nope" }, []string{"TENANTFLOW_LDAP_BIND_PASSWORD_FILE"}},
		"StartTLS and ldaps": {func(c *ldap.Config) { c.URL, c.StartTLS = "ldaps://ldap.example.org", true }, []string{"TENANTFLOW_LDAP_START_TLS"}},
		"CA without TLS":     {func(c *ldap.Config) { c.TLSCA = notPEM }, []string{"TENANTFLOW_LDAP_TLS_CA"}},
		"CA not PEM":         {func(c *ldap.Config) { c.StartTLS, c.TLSCA = true, notPEM }, []string{"TENANTFLOW_LDAP_TLS_CA"}},
		"zero timeout":       {func(c *ldap.Config) { c.Timeout = 0 }, []string{"TENANTFLOW_LDAP_TIMEOUT"}},
		"several at once": {func(c *ldap.Config) { c.URL, c.BaseDN = "ftp://x", "nope" },
			[]string{"TENANTFLOW_LDAP_URL", "TENANTFLOW_LDAP_BASE_DN"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			require.Error(t, err)
			for _, env := range tc.env {
				require.ErrorContains(t, err, env)
			}
			require.NotContains(t, err.Error(), "secret", "the password is never echoed")
			_, err = ldap.New(c, nil)
			require.Error(t, err, "New validates too")
		})
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	for k, v := range map[string]string{
		"TENANTFLOW_LDAP_ENABLED":            "true",
		"TENANTFLOW_LDAP_URL":                "ldaps://ldap.example.org:636",
		"TENANTFLOW_LDAP_BIND_DN":            "cn=tenantflow,dc=example,dc=org",
		"TENANTFLOW_LDAP_BIND_PASSWORD_FILE": "/run/secrets/ldap",
		"TENANTFLOW_LDAP_BASE_DN":            base,
		"TENANTFLOW_LDAP_TIMEOUT":            "3s",
	} {
		t.Setenv(k, v)
	}
	var c ldap.Config
	s := config.New("test")
	c.Register(s)
	require.NoError(t, s.Parse(nil))
	require.Equal(t, ldap.Config{
		Enabled: true, URL: "ldaps://ldap.example.org:636", BindDN: "cn=tenantflow,dc=example,dc=org",
		BindPasswordFile: "/run/secrets/ldap", BaseDN: base, Timeout: 3 * time.Second,
	}, c)

	t.Setenv("TENANTFLOW_LDAP_TIMEOUT", "soon")
	s = config.New("test")
	c.Register(s)
	require.ErrorContains(t, s.Parse(nil), "TENANTFLOW_LDAP_TIMEOUT")
}

func TestConfigDefaults(t *testing.T) {
	var c ldap.Config
	c.Register(config.New("test"))
	require.Equal(t, "ldap://127.0.0.1:389", c.URL)
	require.Equal(t, 10*time.Second, c.Timeout)
	require.False(t, c.Enabled)
}

// The password file is trimmed (a trailing newline is the norm) and works
// against the real server.
func TestBindPasswordFile(t *testing.T) {
	srv, cfg, _ := directory(t)
	file := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(file, []byte(srv.RootPassword+"\n"), 0o600))
	cfg.BindPassword, cfg.BindPasswordFile = "", file
	require.NoError(t, newClient(t, cfg).Check(context.Background()))
}
