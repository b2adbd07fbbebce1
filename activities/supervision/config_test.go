package supervision_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/internal/config"
)

const password = "do-not-print-this-password"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// requireAppError asserts err is a non-retryable ApplicationError of type.
func requireAppError(t *testing.T, err error, typ string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want ApplicationError %s, got %T: %v", typ, err, err)
	require.Equal(t, typ, appErr.Type(), "error: %v", err)
	require.True(t, appErr.NonRetryable(), "%s must not be retried", typ)
}

func promConfig(dir string) supervision.Config {
	return supervision.Config{Driver: "prometheus", Timeout: 5 * time.Second,
		Prometheus: supervision.PrometheusConfig{SDDir: dir}}
}

func icingaConfig(ca string) supervision.Config {
	return supervision.Config{Driver: "icinga2", Timeout: 5 * time.Second,
		Icinga2: supervision.Icinga2Config{URL: "https://icinga.example.test:5665", User: "tenantflow", Password: password, CA: ca}}
}

func TestValidateNamesTheVariable(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("not a certificate"), 0o644))
	for _, tc := range []struct {
		name string
		cfg  supervision.Config
		env  string
	}{
		{"unknown driver", supervision.Config{Driver: "nagios", Timeout: time.Second}, supervision.EnvDriver},
		{"prometheus no dir", promConfig(""), supervision.EnvPrometheusSDDir},
		{"prometheus relative dir", promConfig("targets"), supervision.EnvPrometheusSDDir},
		{"prometheus bad url", func() supervision.Config {
			c := promConfig("/srv/sd")
			c.Prometheus.URL = "prometheus:9090"
			return c
		}(), supervision.EnvPrometheusURL},
		{"timeout zero", func() supervision.Config { c := promConfig("/srv/sd"); c.Timeout = 0; return c }(), supervision.EnvTimeout},
		{"icinga no url", func() supervision.Config { c := icingaConfig(ca); c.Icinga2.URL = ""; return c }(), supervision.EnvIcinga2URL},
		{"icinga plain http", func() supervision.Config { c := icingaConfig(ca); c.Icinga2.URL = "http://icinga:5665"; return c }(), supervision.EnvIcinga2URL},
		{"icinga credentials in url", func() supervision.Config {
			c := icingaConfig(ca)
			c.Icinga2.URL = "https://root:" + password + "@icinga:5665"
			return c
		}(), supervision.EnvIcinga2URL},
		{"icinga no user", func() supervision.Config { c := icingaConfig(ca); c.Icinga2.User = ""; return c }(), supervision.EnvIcinga2User},
		{"icinga no password", func() supervision.Config { c := icingaConfig(ca); c.Icinga2.Password = ""; return c }(), supervision.EnvIcinga2Password},
		{"icinga no trust", icingaConfig(""), supervision.EnvIcinga2CA},
		{"icinga ca missing", icingaConfig("/nonexistent/ca.pem"), supervision.EnvIcinga2CA},
		{"icinga ca and insecure", func() supervision.Config {
			c := icingaConfig(ca)
			c.Icinga2.InsecureSkipVerify = true
			return c
		}(), supervision.EnvIcinga2InsecureSkip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.env)
			require.NotContains(t, err.Error(), password)
			_, err = supervision.New(tc.cfg, nil)
			require.ErrorContains(t, err, tc.env)
		})
	}

	// A CA file that holds no certificate passes Validate (it exists) but
	// New names the variable.
	_, err := supervision.New(icingaConfig(ca), nil)
	require.ErrorContains(t, err, supervision.EnvIcinga2CA)
}

func TestValidConfigs(t *testing.T) {
	require.NoError(t, supervision.Config{}.Validate(), "driver unset means none")
	require.False(t, supervision.Config{}.Enabled())
	require.False(t, supervision.Config{Driver: "none"}.Enabled())
	_, err := supervision.New(supervision.Config{Driver: "none"}, nil)
	require.ErrorContains(t, err, supervision.EnvDriver, "New without a driver must say supervision is off")

	c := promConfig(t.TempDir())
	require.True(t, c.Enabled())
	require.NoError(t, c.Validate())
	ic := icingaConfig("")
	ic.Icinga2.InsecureSkipVerify = true
	require.NoError(t, ic.Validate())
	_, err = supervision.New(ic, nil)
	require.NoError(t, err)
	require.NotContains(t, fmt.Sprint(ic), password)
}

func TestRegisterReadsEnvironment(t *testing.T) {
	t.Setenv(supervision.EnvDriver, "icinga2")
	t.Setenv(supervision.EnvIcinga2Password, password)
	t.Setenv(supervision.EnvTimeout, "3s")
	t.Setenv(supervision.EnvIcinga2InsecureSkip, "true")
	var c supervision.Config
	s := config.New("worker")
	c.Register(s)
	require.NoError(t, s.Parse(nil))
	require.Equal(t, "icinga2", c.Driver)
	require.Equal(t, password, c.Icinga2.Password)
	require.Equal(t, 3*time.Second, c.Timeout)
	require.True(t, c.Icinga2.InsecureSkipVerify)
	var usage strings.Builder
	s.FS.SetOutput(&usage)
	s.FS.PrintDefaults()
	require.NotContains(t, usage.String(), password, "-h must not print the password")
}

func TestInvalidInputIsPermanent(t *testing.T) {
	dir := t.TempDir()
	a, err := supervision.New(promConfig(dir), nil)
	require.NoError(t, err)
	for _, in := range []supervision.WatchInput{
		{Tenant: "Acme", URL: "http://acme.example.test/"},
		{Tenant: "../etc", URL: "http://acme.example.test/"},
		{Tenant: "acme", URL: "ftp://acme.example.test/"},
		{Tenant: "acme", URL: "acme.example.test"},
		{Tenant: "acme", URL: "http://user:" + password + "@acme.example.test/"},
	} {
		err := a.StartSupervision(ctx(t), in)
		requireAppError(t, err, supervision.ErrInvalidInput)
		require.NotContains(t, err.Error(), password)
	}
	requireAppError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "a/b"}), supervision.ErrInvalidInput)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}
