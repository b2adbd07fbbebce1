package cmdb

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/internal/config"
)

func TestValidateNamesTheVariable(t *testing.T) {
	require.NoError(t, Config{}.Validate(), "disabled: nothing to check")

	err := Config{Enabled: true, Auth: "token", Version: "latest"}.Validate()
	require.Error(t, err)
	for _, env := range []string{envURL, envUser, envPassword, envAuth, envVersion, envTimeout} {
		require.Contains(t, err.Error(), env)
	}

	good := Config{Enabled: true, URL: "https://itop.example.com/itop/", User: "tf", Password: "pw", Auth: AuthForm, Version: "1.3", Timeout: time.Second}
	require.NoError(t, good.Validate())

	cases := []struct {
		env    string
		mutate func(*Config)
	}{
		{envURL, func(c *Config) { c.URL = "ftp://itop.example.com" }},
		{envURL, func(c *Config) { c.URL = "https://tf:pw@itop.example.com" }},
		{envURL, func(c *Config) { c.URL = "https://itop.example.com/webservices/rest.php" }},
		{envPassword, func(c *Config) { c.PasswordFile = "/etc/itop-password" }},
		{envPasswordFile, func(c *Config) { c.Password = ""; c.PasswordFile = "/nonexistent/itop-password" }},
		{envAuth, func(c *Config) { c.Auth = "" }},
	}
	for _, tc := range cases {
		c := good
		tc.mutate(&c)
		err := c.Validate()
		require.Error(t, err, tc.env)
		require.Contains(t, err.Error(), tc.env)
		require.NotContains(t, err.Error(), "pw@", "no secret in messages")
	}
}

func TestPasswordFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(file, []byte("from-file\n"), 0o600))
	c := Config{Enabled: true, URL: "http://127.0.0.1:1", User: "tf", PasswordFile: file, Auth: AuthBasic, Version: "1.3", Timeout: time.Second}
	require.NoError(t, c.Validate())
	pw, err := c.password()
	require.NoError(t, err)
	require.Equal(t, "from-file", pw)
}

func TestRegisterReadsEnvironment(t *testing.T) {
	t.Setenv(envEnabled, "true")
	t.Setenv(envURL, "https://itop.example.com")
	t.Setenv(envUser, "tf")
	t.Setenv(envPassword, "pw")
	t.Setenv(envTimeout, "3s")
	t.Setenv(envInsecureSkipVerify, "true")
	var c Config
	s := config.New("test")
	c.Register(s)
	require.NoError(t, s.Parse(nil))
	require.True(t, c.Enabled)
	require.Equal(t, AuthForm, c.Auth)
	require.Equal(t, "1.3", c.Version)
	require.Equal(t, 3*time.Second, c.Timeout)
	require.True(t, c.InsecureSkipVerify)
	require.NoError(t, c.Validate())

	_, err := New(Config{Enabled: true}, nil)
	require.Error(t, err, "New validates")
}
