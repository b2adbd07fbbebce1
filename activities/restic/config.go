package restic

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Environment variables, named in every validation error so the operator
// sees the setting to fix.
const (
	EnvRepos           = "TENANTFLOW_RESTIC_REPOS"
	EnvKeys            = "TENANTFLOW_RESTIC_KEYS"
	EnvBinary          = "TENANTFLOW_RESTIC_BINARY"
	EnvOffsiteURL      = "TENANTFLOW_OFFSITE_URL"
	EnvOffsiteUser     = "TENANTFLOW_OFFSITE_USER"
	EnvOffsitePassword = "TENANTFLOW_OFFSITE_PASSWORD"
)

// Config says where the tenants' restic repositories and their keys are,
// and where the off-site copies go.
type Config struct {
	// Repos is the absolute directory (local disk or an NFS mount shared
	// by the workers) holding one repository per tenant: <Repos>/<tenant>.
	// Empty disables scheduled backups.
	Repos string
	// Keys is the absolute directory of the tenants' repository keys, one
	// file per tenant (<Keys>/<tenant>.key, mode 0600). Deleting a key
	// makes every copy of that tenant's backups unreadable, off-site
	// included: keep this directory apart from Repos, and back it up on
	// its own medium.
	Keys string
	// Binary is the restic program (default: restic on PATH).
	Binary string
	// OffsiteURL is the base of the off-site repositories, restic's REST
	// protocol, e.g. http://backup.example:8000/; the tenant's repository
	// is <OffsiteURL><OffsiteUser>/<tenant>-<key digest>/ (the server runs with
	// --private-repos and --append-only). Empty: no off-site copies.
	OffsiteURL string
	// OffsiteUser and OffsitePassword are the worker's credential on the
	// off-site server; they never appear in logs, errors or history.
	OffsiteUser     string
	OffsitePassword string
}

// Register binds the settings to flags and their variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.Repos, "restic-repos", EnvRepos, "", "absolute directory of the tenants' restic repositories (one per tenant); empty disables scheduled backups")
	s.String(&c.Keys, "restic-keys", EnvKeys, "", "absolute directory of the tenants' repository keys (deleting one erases that tenant's backups everywhere)")
	s.String(&c.Binary, "restic-binary", EnvBinary, "restic", "the restic program")
	s.String(&c.OffsiteURL, "offsite-url", EnvOffsiteURL, "", "base URL of the off-site restic REST server (rclone serve restic --append-only --private-repos); empty: no off-site copies")
	s.String(&c.OffsiteUser, "offsite-user", EnvOffsiteUser, "", "the worker's user on the off-site server")
	s.Secret(&c.OffsitePassword, "offsite-password", EnvOffsitePassword, "the worker's password on the off-site server")
}

// Enabled reports whether scheduled backups are configured.
func (c Config) Enabled() bool { return c.Repos != "" }

// Offsite reports whether off-site copies are configured.
func (c Config) Offsite() bool { return c.OffsiteURL != "" }

// String shows the configuration in logs and errors, without the password.
func (c Config) String() string {
	pw := ""
	if c.OffsitePassword != "" {
		pw = "(set)"
	}
	return fmt.Sprintf("{Repos:%s Keys:%s Binary:%s OffsiteURL:%s OffsiteUser:%s OffsitePassword:%s}",
		c.Repos, c.Keys, c.Binary, c.OffsiteURL, c.OffsiteUser, pw)
}

// Validate reports every bad setting by its variable name when backups
// are enabled; a disabled component is not checked.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var problems config.Problems
	if !filepath.IsAbs(c.Repos) {
		problems.Add(EnvRepos, "%q is not an absolute path", c.Repos)
	}
	switch {
	case c.Keys == "":
		problems.Add(EnvKeys, "must be set when %s is", EnvRepos)
	case !filepath.IsAbs(c.Keys):
		problems.Add(EnvKeys, "%q is not an absolute path", c.Keys)
	case filepath.Clean(c.Keys) == filepath.Clean(c.Repos) || strings.HasPrefix(filepath.Clean(c.Keys)+"/", filepath.Clean(c.Repos)+"/"):
		// Keys beside the repositories would travel with every copy of
		// them: crypto-erasure would erase nothing.
		problems.Add(EnvKeys, "%q must not be inside %s (%q)", c.Keys, EnvRepos, c.Repos)
	}
	if c.Binary == "" {
		problems.Add(EnvBinary, "must not be empty")
	}
	if c.OffsiteURL != "" {
		u, err := url.Parse(c.OffsiteURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			problems.Add(EnvOffsiteURL, "%q is not an http(s) URL", c.OffsiteURL)
		case u.User != nil:
			problems.Add(EnvOffsiteURL, "must not hold credentials; use %s and %s", EnvOffsiteUser, EnvOffsitePassword)
		}
		if c.OffsiteUser == "" {
			problems.Add(EnvOffsiteUser, "must be set when %s is", EnvOffsiteURL)
		}
		if c.OffsitePassword == "" {
			problems.Add(EnvOffsitePassword, "must be set when %s is", EnvOffsiteURL)
		}
	}
	return problems.Err()
}
