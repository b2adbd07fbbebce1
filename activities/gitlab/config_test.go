package gitlab

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/internal/config"
)

func TestValidateNamesTheVariable(t *testing.T) {
	require.NoError(t, Config{}.Validate(), "disabled: nothing to check")

	err := Config{Enabled: true}.Validate()
	require.Error(t, err)
	for _, env := range []string{envURL, envToken, envTimeout} {
		require.Contains(t, err.Error(), env)
	}

	const secret = "glpat-Very-S3cret"
	good := Config{Enabled: true, URL: "https://gitlab.example.com", Token: secret, Timeout: time.Second}
	require.NoError(t, good.Validate())

	cases := []struct {
		env    string
		mutate func(*Config)
	}{
		{envURL, func(c *Config) { c.URL = "gitlab.example.com" }},
		{envURL, func(c *Config) { c.URL = "ftp://gitlab.example.com" }},
		{envURL, func(c *Config) { c.URL = "https://oauth2:" + secret + "@gitlab.example.com" }},
		{envURL, func(c *Config) { c.URL = "https://oauth2:" + secret + "@gitlab.example.com:port" }},
		{envURL, func(c *Config) { c.URL = "https://gitlab.example.com/?private_token=x" }},
		{envToken, func(c *Config) { c.Token = secret + "\n" }},
		{envToken, func(c *Config) { c.Token = "" }},
		{envTimeout, func(c *Config) { c.Timeout = 0 }},
	}
	for _, tc := range cases {
		c := good
		tc.mutate(&c)
		err := c.Validate()
		require.Error(t, err, tc.env)
		require.Contains(t, err.Error(), tc.env)
		require.NotContains(t, err.Error(), secret, "no secret in messages")
		_, err = NewClient(c, nil)
		require.Error(t, err, "NewClient validates even when disabled")
	}
}

func TestRegisterReadsEnvironment(t *testing.T) {
	const secret = "glpat-from-env"
	t.Setenv(envEnabled, "true")
	t.Setenv(envURL, "https://gitlab.example.com/")
	t.Setenv(envToken, secret)
	t.Setenv(envTimeout, "3s")
	t.Setenv(envInsecureSkipVerify, "true")
	var c Config
	s := config.New("test")
	c.Register(s)
	require.NoError(t, s.Parse(nil))
	require.True(t, c.Enabled)
	require.Equal(t, "https://gitlab.example.com/", c.URL)
	require.Equal(t, secret, c.Token)
	require.Equal(t, 3*time.Second, c.Timeout)
	require.True(t, c.InsecureSkipVerify)
	require.NoError(t, c.Validate())

	var help bytes.Buffer
	s.FS.SetOutput(&help)
	s.FS.PrintDefaults()
	require.Contains(t, help.String(), envToken)
	require.NotContains(t, help.String(), secret, "-h never shows the token")

	t.Setenv(envTimeout, "soon")
	s = config.New("test")
	(&Config{}).Register(s)
	err := s.Parse(nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), envTimeout)
}
