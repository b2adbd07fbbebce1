package restic

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Environment variables of the off-site pruner of its own; it shares
// TENANTFLOW_RESTIC_KEYS, TENANTFLOW_RESTIC_BINARY and
// TENANTFLOW_OFFSITE_USER with the worker.
const (
	EnvOffsitePruneURL      = "TENANTFLOW_OFFSITE_PRUNE_URL"
	EnvOffsitePrunePassword = "TENANTFLOW_OFFSITE_PRUNE_PASSWORD"
)

// PruneConfig is what the off-site pruner holds (see Pruner): read
// access to the tenants' keys and the credential that deletes on the
// off-site storage. The worker never has it.
type PruneConfig struct {
	// Keys is the absolute directory of the tenants' keys, as the
	// workers have it (<Keys>/<tenant>.key): read only, a mount or a
	// copy.
	Keys string
	// Binary is the restic program (default: restic on PATH).
	Binary string
	// URL is the base of the second off-site server: the same storage as
	// the workers' OffsiteURL, served without --append-only, reachable
	// from the pruner's host only. A tenant's repository is
	// <URL><User>/<OffsiteName(tenant, key)>/, the path the worker
	// copies to.
	URL string
	// User is the user name on it: the workers' TENANTFLOW_OFFSITE_USER,
	// since --private-repos keeps each user to /<user>/.
	User string
	// Password is the pruner's own password there; it never appears in
	// logs, errors or history.
	Password string
}

// Register binds the settings to flags and their variables.
func (c *PruneConfig) Register(s *config.Set) {
	s.String(&c.Keys, "restic-keys", EnvKeys, "", "absolute directory of the tenants' repository keys (read only)")
	s.String(&c.Binary, "restic-binary", EnvBinary, "restic", "the restic program")
	s.String(&c.URL, "offsite-prune-url", EnvOffsitePruneURL, "", "base URL of the off-site server that may delete: rclone serve restic --private-repos WITHOUT --append-only, over the workers' off-site storage (required)")
	s.String(&c.User, "offsite-user", EnvOffsiteUser, "", "the workers' user on the off-site server (required)")
	s.Secret(&c.Password, "offsite-prune-password", EnvOffsitePrunePassword, "the pruner's password on that server (required)")
}

// String shows the configuration in logs and errors, without the password.
func (c PruneConfig) String() string {
	pw := ""
	if c.Password != "" {
		pw = "(set)"
	}
	return fmt.Sprintf("{Keys:%s Binary:%s URL:%s User:%s Password:%s}", c.Keys, c.Binary, c.URL, c.User, pw)
}

// Validate reports every bad setting by its variable name: a pruner has
// nothing to do without any of them.
func (c PruneConfig) Validate() error {
	var problems config.Problems
	switch {
	case c.Keys == "":
		problems.Add(EnvKeys, "must be set: the off-site repositories open with the tenants' keys")
	case !filepath.IsAbs(c.Keys):
		problems.Add(EnvKeys, "%q is not an absolute path", c.Keys)
	}
	if c.Binary == "" {
		problems.Add(EnvBinary, "must not be empty")
	}
	if c.URL == "" {
		problems.Add(EnvOffsitePruneURL, "must be set")
	} else {
		checkServer(&problems, c.URL, EnvOffsitePruneURL, EnvOffsitePrunePassword)
	}
	if c.User == "" {
		problems.Add(EnvOffsiteUser, "must be set (the workers' user on the off-site server)")
	}
	if c.Password == "" {
		problems.Add(EnvOffsitePrunePassword, "must be set")
	}
	return problems.Err()
}

// notConfigured is a setting of the pruner to fix: nothing a retry
// changes.
func notConfigured(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrNotConfigured, nil)
}

// PruneCheck is the off-site pruner as its start-up check sees it.
type PruneCheck struct{ Config PruneConfig }

// Check reports whether the pruner can work: its settings are valid,
// restic runs, the keys directory reads, and the prune server takes the
// credential and deletes. A setting to fix is a non-retryable
// ErrNotConfigured, as PruneOffsite reports it; any other error (the
// server unreachable, failing) may pass by itself.
func (c PruneCheck) Check(ctx context.Context) error {
	if err := c.Config.Validate(); err != nil {
		return notConfigured("off-site pruner config: %v", err)
	}
	if err := checkBinary(ctx, c.Config.Binary); err != nil {
		return notConfigured("%v", err)
	}
	if _, err := os.ReadDir(c.Config.Keys); err != nil {
		return notConfigured("%s=%s: %v", EnvKeys, c.Config.Keys, err)
	}
	return c.Config.deletes(ctx)
}

// probeRepository is the repository the deletion probe names: never one
// of ours, since OffsiteName ends in 12 hex digits.
const probeRepository = "tenantflow-prune-probe"

// deletes asks the prune server to delete a snapshot that no repository
// has: a server that may delete answers 404, an append-only one 403
// (rclone and rest-server refuse every deletion but of a lock before
// looking), and a wrong credential 401. So the case of a pruner pointed
// at the workers' append-only server shows at once, instead of restic
// forget retrying its refused deletions for a minute. Nothing exists
// to be deleted.
func (c PruneConfig) deletes(ctx context.Context) error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return notConfigured("%s is not a URL", EnvOffsitePruneURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + c.User + "/" + probeRepository + "/snapshots/" + strings.Repeat("0", 64)
	status, err := ask(ctx, http.MethodDelete, u, c.User, c.Password)
	switch {
	case err != nil:
		return fmt.Errorf("off-site prune server %s (%s) is unreachable: %w", u.Host, EnvOffsitePruneURL, err)
	case status == http.StatusUnauthorized:
		return notConfigured("off-site prune server %s refuses user %s (%s, %s): %s", u.Host, c.User, EnvOffsiteUser, EnvOffsitePrunePassword, statusLine(status))
	case status == http.StatusForbidden:
		return notConfigured("off-site prune server %s (%s) refuses deletions for user %s: %s; it must be a server without --append-only, apart from the workers' (%s)",
			u.Host, EnvOffsitePruneURL, c.User, statusLine(status), EnvOffsiteURL)
	case status == http.StatusNotFound || status/100 == 2:
		return nil
	}
	return fmt.Errorf("off-site prune server %s (%s) answers a deletion with %s", u.Host, EnvOffsitePruneURL, statusLine(status))
}
