package proxy_test

import (
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/internal/config"
)

func validConfig() proxy.Config {
	return proxy.Config{
		Enabled:      true,
		AdminURL:     "http://127.0.0.1:2019",
		Server:       "tenantflow",
		Listen:       ":443",
		Domain:       "apps.example.com",
		PublicScheme: "https",
	}
}

func TestRegisterReadsEnvironment(t *testing.T) {
	t.Setenv(proxy.EnvEnabled, "true")
	t.Setenv(proxy.EnvDomain, "apps.example.org")
	t.Setenv(proxy.EnvPublicPort, "8443")
	var c proxy.Config
	s := config.New("test")
	c.Register(s)
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := proxy.Config{
		Enabled: true, AdminURL: "http://127.0.0.1:2019", Server: "tenantflow", Listen: ":443",
		Domain: "apps.example.org", PublicScheme: "https", PublicPort: "8443",
	}
	if c != want {
		t.Fatalf("config = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults plus a domain must be valid: %v", err)
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	if err := (proxy.Config{}).Validate(); err != nil {
		t.Fatalf("disabled config must not be checked: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*proxy.Config)
		env  string
	}{
		{"admin url not a url", func(c *proxy.Config) { c.AdminURL = "http://[::1" }, proxy.EnvAdminURL},
		{"admin url no scheme", func(c *proxy.Config) { c.AdminURL = "127.0.0.1:2019" }, proxy.EnvAdminURL},
		{"admin url with query", func(c *proxy.Config) { c.AdminURL = "http://127.0.0.1:2019/?x=1" }, proxy.EnvAdminURL},
		{"server with slash", func(c *proxy.Config) { c.Server = "a/b" }, proxy.EnvServer},
		{"listen empty", func(c *proxy.Config) { c.Listen = " , " }, proxy.EnvListen},
		{"listen without port", func(c *proxy.Config) { c.Listen = ":443,0.0.0.0" }, proxy.EnvListen},
		{"domain empty", func(c *proxy.Config) { c.Domain = "" }, proxy.EnvDomain},
		{"domain bad label", func(c *proxy.Config) { c.Domain = "apps_x.example.com" }, proxy.EnvDomain},
		{"domain leading hyphen", func(c *proxy.Config) { c.Domain = "-apps.example.com" }, proxy.EnvDomain},
		{"scheme", func(c *proxy.Config) { c.PublicScheme = "ftp" }, proxy.EnvPublicScheme},
		{"port", func(c *proxy.Config) { c.PublicPort = "70000" }, proxy.EnvPublicPort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.env) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.env)
			}
			if _, err := proxy.New(c, nil); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}

	c := validConfig()
	c.Domain, c.PublicScheme = "", "gopher"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), proxy.EnvDomain) || !strings.Contains(err.Error(), proxy.EnvPublicScheme) {
		t.Fatalf("Validate() = %v, want both %s and %s named", err, proxy.EnvDomain, proxy.EnvPublicScheme)
	}
}

func TestHostAndCaseNormalisation(t *testing.T) {
	c := validConfig()
	c.Domain = "Apps.Example.COM."
	c.PublicScheme = "HTTP"
	c.Listen = "tcp/:80, [::1]:8080"
	a, err := proxy.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := proxy.Host(a, "acme"); got != "acme.apps.example.com" {
		t.Fatalf("Host = %q", got)
	}
}
