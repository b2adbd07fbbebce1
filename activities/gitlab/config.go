package gitlab

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Config is how the worker reaches GitLab. The token (a personal, group
// or project access token) needs the api scope: read_api reads
// projects and archives but cannot post commit statuses.
type Config struct {
	Enabled bool
	// URL is GitLab's base URL (https://gitlab.example.com, or with the
	// relative root it is served under); the client adds /api/v4.
	URL   string
	Token string
	// Timeout bounds each API call, and for archives the wait for GitLab
	// to start answering (the download itself is bounded by the
	// activity's context).
	Timeout            time.Duration
	InsecureSkipVerify bool
}

// Environment variable names, used in validation messages.
const (
	envEnabled            = "TENANTFLOW_GITLAB_ENABLED"
	envURL                = "TENANTFLOW_GITLAB_URL"
	envToken              = "TENANTFLOW_GITLAB_TOKEN"
	envTimeout            = "TENANTFLOW_GITLAB_TIMEOUT"
	envInsecureSkipVerify = "TENANTFLOW_GITLAB_INSECURE_SKIP_VERIFY"
)

// Register binds the settings to flags and TENANTFLOW_GITLAB_* variables.
func (c *Config) Register(s *config.Set) {
	s.Bool(&c.Enabled, "gitlab-enabled", envEnabled, false, "build images from commits of GitLab projects")
	s.String(&c.URL, "gitlab-url", envURL, "", "GitLab base URL, e.g. https://gitlab.example.com (the API is <url>/api/v4)")
	s.Secret(&c.Token, "gitlab-token", envToken, "GitLab access token with the api scope")
	s.Duration(&c.Timeout, "gitlab-timeout", envTimeout, 30*time.Second, "timeout of each GitLab API request")
	s.Bool(&c.InsecureSkipVerify, "gitlab-insecure-skip-verify", envInsecureSkipVerify, false, "do not verify GitLab's TLS certificate (test instances only)")
}

// Validate reports every bad setting, naming its variable, when GitLab is
// enabled.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	return c.check()
}

// check validates regardless of Enabled (NewClient needs a usable
// config). Messages never quote the token.
func (c Config) check() error {
	var problems config.Problems
	bad := problems.Add
	if u, err := url.Parse(c.URL); c.URL == "" {
		bad(envURL, "required (GitLab base URL, e.g. https://gitlab.example.com)")
	} else if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold credentials
		}
		bad(envURL, "not a URL: %v", err)
	} else {
		switch {
		case u.User != nil:
			bad(envURL, "must not hold credentials: set %s", envToken)
		case u.Scheme != "http" && u.Scheme != "https":
			bad(envURL, "%q: scheme must be http:// or https://", c.URL)
		case u.Host == "":
			bad(envURL, "%q: no host", c.URL)
		case u.RawQuery != "" || u.Fragment != "":
			bad(envURL, "%q: must not have a query or fragment", c.URL)
		}
	}
	switch {
	case c.Token == "":
		bad(envToken, "required (an access token with the api scope)")
	case strings.TrimSpace(c.Token) != c.Token || strings.ContainsAny(c.Token, " \t\r\n"):
		bad(envToken, "contains whitespace (a stray newline from a file?)")
	}
	if c.Timeout <= 0 {
		bad(envTimeout, "must be positive, got %s", c.Timeout)
	}
	return problems.Err()
}
