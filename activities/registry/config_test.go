package registry_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/registry"
	"github.com/tenantflow/tenantflow/internal/config"
)

func TestValidate(t *testing.T) {
	ok := registry.Config{Enabled: true, URL: "https://registry.example.com", User: "ci", Password: "pw", Timeout: 10 * time.Second}
	require.NoError(t, ok.Validate())
	require.NoError(t, registry.Config{URL: "::bad"}.Validate(), "disabled: not checked")

	for _, tc := range []struct {
		name string
		edit func(*registry.Config)
		want []string
	}{
		{"no URL", func(c *registry.Config) { c.URL = "" }, []string{registry.EnvURL}},
		{"bad scheme", func(c *registry.Config) { c.URL = "ftp://registry.example.com" }, []string{registry.EnvURL}},
		{"path", func(c *registry.Config) { c.URL = "https://registry.example.com/v2/" }, []string{registry.EnvURL}},
		{"credentials in URL", func(c *registry.Config) { c.URL = "https://u:p@registry.example.com" }, []string{registry.EnvURL}},
		{"host with scheme", func(c *registry.Config) { c.Host = "https://registry.example.com" }, []string{registry.EnvHost}},
		{"Docker Hub namespace", func(c *registry.Config) { c.Host = "registry" }, []string{registry.EnvHost}},
		{"URL host read as namespace", func(c *registry.Config) { c.URL = "http://registry" }, []string{registry.EnvURL, registry.EnvHost}},
		{"password without user", func(c *registry.Config) { c.User = "" }, []string{registry.EnvPassword, registry.EnvUser}},
		{"user without password", func(c *registry.Config) { c.Password = "" }, []string{registry.EnvPassword}},
		{"negative timeout", func(c *registry.Config) { c.Timeout = -time.Second }, []string{registry.EnvTimeout}},
		{"several", func(c *registry.Config) { c.URL, c.Timeout = "", -1 }, []string{registry.EnvURL, registry.EnvTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, err.Error(), "pw\"", "no password in messages")
			_, err = registry.NewClient(c, nil)
			require.Error(t, err, "NewClient validates")
		})
	}

	for _, good := range []string{"registry.example.com:5000", "localhost:5000", "localhost", "127.0.0.1:5000", "[::1]:5000"} {
		c := ok
		c.Host = good
		require.NoError(t, c.Validate(), good)
	}
	_, err := registry.NewClient(registry.Config{URL: "https://registry.example.com"}, nil)
	require.ErrorContains(t, err, registry.EnvEnabled)
}

func TestRegister(t *testing.T) {
	t.Setenv(registry.EnvEnabled, "true")
	t.Setenv(registry.EnvURL, "https://registry.example.com:5443")
	t.Setenv(registry.EnvUser, "ci")
	t.Setenv(registry.EnvPassword, "very-secret-value")
	t.Setenv(registry.EnvTimeout, "7s")
	t.Setenv(registry.EnvInsecureSkipVerify, "true")
	var c registry.Config
	s := config.New("test")
	c.Register(s)
	require.NoError(t, s.Parse(nil))
	require.Equal(t, registry.Config{
		Enabled: true, URL: "https://registry.example.com:5443", User: "ci", Password: "very-secret-value",
		Timeout: 7 * time.Second, InsecureSkipVerify: true,
	}, c)
	require.NoError(t, c.Validate())
	cl, err := registry.NewClient(c, nil)
	require.NoError(t, err)
	require.Equal(t, "registry.example.com:5443/t/app:v1", cl.Ref("t/app", "v1"))

	var help bytes.Buffer
	s.FS.SetOutput(&help)
	s.FS.PrintDefaults()
	require.NotContains(t, help.String(), "very-secret-value")
	require.True(t, strings.Contains(help.String(), registry.EnvPassword))

	t.Setenv(registry.EnvTimeout, "soon")
	s = config.New("test")
	(&registry.Config{}).Register(s)
	require.ErrorContains(t, s.Parse(nil), registry.EnvTimeout)
}
