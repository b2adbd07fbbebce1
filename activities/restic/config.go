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
	EnvOffsitePruner   = "TENANTFLOW_OFFSITE_PRUNER"
	EnvConcurrency     = "TENANTFLOW_RESTIC_CONCURRENCY"
)

// DefaultConcurrency is how many backups, restores, drills and off-site
// copies a worker runs at once unless told otherwise.
const DefaultConcurrency = 4

// DefaultPruneQueue is the task queue an off-site pruner polls unless
// told otherwise (see Pruner).
const DefaultPruneQueue = "tenantflow-offsite-prune"

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
	// OffsitePruner is the task queue of the off-site pruner (see
	// Pruner), which holds the delete credential this worker never
	// has; CopyOffsite hands it to the workflow (OffsiteCopy.Prune).
	// Empty: Tenantflow never prunes the off-site copies.
	OffsitePruner string
	// Concurrency is how many backups, restores, drills and off-site
	// copies this worker runs at once: on a fleet host, what the host's
	// tenants' backups may take of its CPU and disk together (0:
	// DefaultConcurrency). The others wait their turn.
	Concurrency int
}

// Register binds the settings to flags and their variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.Repos, "restic-repos", EnvRepos, "", "absolute directory of the tenants' restic repositories (one per tenant); empty disables scheduled backups")
	s.String(&c.Keys, "restic-keys", EnvKeys, "", "absolute directory of the tenants' repository keys (deleting one erases that tenant's backups everywhere)")
	s.String(&c.Binary, "restic-binary", EnvBinary, "restic", "the restic program")
	s.String(&c.OffsiteURL, "offsite-url", EnvOffsiteURL, "", "base URL of the off-site restic REST server (rclone serve restic --append-only --private-repos); empty: no off-site copies")
	s.String(&c.OffsiteUser, "offsite-user", EnvOffsiteUser, "", "the worker's user on the off-site server")
	s.Secret(&c.OffsitePassword, "offsite-password", EnvOffsitePassword, "the worker's password on the off-site server")
	s.Int(&c.Concurrency, "restic-concurrency", EnvConcurrency, DefaultConcurrency, "backups, restores, drills and off-site copies run at once by this worker (on a fleet host: the host's share for its tenants); the rest wait their turn")
	s.String(&c.OffsitePruner, "offsite-pruner", EnvOffsitePruner, "", "task queue of the off-site pruner (tenantflow offsite-pruner, usually "+DefaultPruneQueue+"); empty: off-site copies are never pruned by Tenantflow")
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
	return fmt.Sprintf("{Repos:%s Keys:%s Binary:%s OffsiteURL:%s OffsiteUser:%s OffsitePassword:%s OffsitePruner:%s}",
		c.Repos, c.Keys, c.Binary, c.OffsiteURL, c.OffsiteUser, pw, c.OffsitePruner)
}

// Validate reports every bad setting by its variable name when backups
// are enabled; a disabled component is not checked.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var problems config.Problems
	if c.Concurrency < 0 || c.Concurrency > 64 {
		problems.Add(EnvConcurrency, "%d is not from 1 to 64", c.Concurrency)
	}
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
		checkServer(&problems, c.OffsiteURL, EnvOffsiteURL, EnvOffsitePassword)
		if c.OffsiteUser == "" {
			problems.Add(EnvOffsiteUser, "must be set when %s is", EnvOffsiteURL)
		}
		if c.OffsitePassword == "" {
			problems.Add(EnvOffsitePassword, "must be set when %s is", EnvOffsiteURL)
		}
	}
	switch {
	case c.OffsitePruner == "":
	case c.OffsiteURL == "":
		// Nothing would be copied, so nothing pruned: a setting
		// meant for another worker.
		problems.Add(EnvOffsitePruner, "is set but %s is not: there are no off-site copies to prune", EnvOffsiteURL)
	case strings.TrimSpace(c.OffsitePruner) != c.OffsitePruner:
		problems.Add(EnvOffsitePruner, "%q: a task queue name has no surrounding spaces", c.OffsitePruner)
	}
	return problems.Err()
}

// checkServer checks the base URL of an off-site server: http(s), with
// no credential in it (that goes in its own, secret, setting). A
// password in it is not repeated.
func checkServer(problems *config.Problems, base, env, envPassword string) {
	u, err := url.Parse(base)
	switch {
	case err != nil:
		problems.Add(env, "is not a URL")
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		problems.Add(env, "%q is not an http(s) URL", u.Redacted())
	case u.User != nil:
		problems.Add(env, "must not hold credentials; use %s and %s", EnvOffsiteUser, envPassword)
	}
}
