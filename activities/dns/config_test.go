package dns_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/internal/config"
)

// secret is a well-formed key that must never show up in messages.
const secret = "c2VjcmV0LWtleS1kby1ub3QtcHJpbnQtbWUtZXZlci0xMjM0NTY3OA=="

func validConfig() dns.Config {
	return dns.Config{
		Enabled: true, Server: "127.0.0.1:53", Zone: "apps.example.com",
		TSIGName: "tenantflow-key", TSIGSecret: secret, TSIGAlgorithm: "hmac-sha256",
		TTL: 300 * time.Second, Target: "192.0.2.10", Timeout: 5 * time.Second,
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*dns.Config)
		env  string
	}{
		{"server not host:port", func(c *dns.Config) { c.Server = "127.0.0.1" }, dns.EnvServer},
		{"server bad port", func(c *dns.Config) { c.Server = "127.0.0.1:99999" }, dns.EnvServer},
		{"zone empty", func(c *dns.Config) { c.Zone = "" }, dns.EnvZone},
		{"zone invalid", func(c *dns.Config) { c.Zone = "apps..example.com" }, dns.EnvZone},
		{"zone root", func(c *dns.Config) { c.Zone = "." }, dns.EnvZone},
		{"key name empty", func(c *dns.Config) { c.TSIGName = "" }, dns.EnvTSIGName},
		{"secret empty", func(c *dns.Config) { c.TSIGSecret = "" }, dns.EnvTSIGSecret},
		{"secret not base64", func(c *dns.Config) { c.TSIGSecret = "not base64!!" + secret }, dns.EnvTSIGSecret},
		{"algorithm unknown", func(c *dns.Config) { c.TSIGAlgorithm = "hmac-md5" }, dns.EnvTSIGAlgorithm},
		{"ttl zero", func(c *dns.Config) { c.TTL = 0 }, dns.EnvTTL},
		{"ttl fractional", func(c *dns.Config) { c.TTL = 1500 * time.Millisecond }, dns.EnvTTL},
		{"target empty", func(c *dns.Config) { c.Target = "" }, dns.EnvTarget},
		{"target bad address", func(c *dns.Config) { c.Target = "10.0.0.256" }, dns.EnvTarget},
		{"target bad hostname", func(c *dns.Config) { c.Target = "ingress host" }, dns.EnvTarget},
		{"timeout zero", func(c *dns.Config) { c.Timeout = 0 }, dns.EnvTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(&c)
			err := c.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.env)
			require.NotContains(t, err.Error(), secret)
			_, err = dns.New(c, nil)
			require.ErrorContains(t, err, tc.env)
		})
	}
}

func TestValidateReportsEverySetting(t *testing.T) {
	err := dns.Config{Enabled: true}.Validate()
	require.Error(t, err)
	for _, env := range []string{dns.EnvServer, dns.EnvZone, dns.EnvTSIGName, dns.EnvTSIGSecret, dns.EnvTTL, dns.EnvTarget, dns.EnvTimeout} {
		require.Contains(t, err.Error(), env)
	}
	require.NoError(t, dns.Config{}.Validate(), "a disabled component is not validated")
}

func TestValidateAccepts(t *testing.T) {
	for _, edit := range []func(*dns.Config){
		func(c *dns.Config) {},
		func(c *dns.Config) { c.Zone = "Apps.Example.COM." },
		func(c *dns.Config) { c.Target = "2001:db8::10" },
		func(c *dns.Config) { c.Target = "ingress.example.net." },
		func(c *dns.Config) { c.TSIGAlgorithm = "HMAC-SHA512" },
		func(c *dns.Config) { c.TSIGAlgorithm = "hmac-sha1." },
		func(c *dns.Config) { c.Server = "ns1.example.com:5353" },
	} {
		c := validConfig()
		edit(&c)
		require.NoError(t, c.Validate(), "%s", c)
	}
}

func TestRegisterReadsEnvironment(t *testing.T) {
	t.Setenv(dns.EnvEnabled, "true")
	t.Setenv(dns.EnvZone, "apps.example.com")
	t.Setenv(dns.EnvTSIGSecret, secret)
	t.Setenv(dns.EnvTTL, "1m")
	var c dns.Config
	s := config.New("test")
	c.Register(s)
	require.NoError(t, s.Parse(nil))
	require.True(t, c.Enabled)
	require.Equal(t, "apps.example.com", c.Zone)
	require.Equal(t, secret, c.TSIGSecret)
	require.Equal(t, time.Minute, c.TTL)
	require.Equal(t, "127.0.0.1:53", c.Server)
	require.Equal(t, "hmac-sha256", c.TSIGAlgorithm)
	require.Equal(t, 5*time.Second, c.Timeout)

	// Neither -h nor printing or logging the config shows the secret.
	var usage bytes.Buffer
	s.FS.SetOutput(&usage)
	s.FS.PrintDefaults()
	require.Contains(t, usage.String(), dns.EnvTSIGSecret)
	require.NotContains(t, usage.String(), secret)
	require.NotContains(t, fmt.Sprintf("%v %+v %s", c, c, c), secret)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "dns", c)
	require.NotContains(t, logged.String(), secret)
	require.True(t, strings.Contains(logged.String(), "apps.example.com"))
}
