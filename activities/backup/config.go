package backup

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Environment variables, named in every validation error so the operator
// sees the setting to fix.
const (
	EnvDir       = "TENANTFLOW_BACKUP_DIR"
	EnvRetention = "TENANTFLOW_BACKUP_RETENTION"
)

// DefaultRetention is how long a decommissioned tenant's backup is kept
// (and the tenant can be restored) when nothing else is configured.
const DefaultRetention = 720 * time.Hour

// Config says where decommission backups go and how long they are kept.
type Config struct {
	// Dir is the backup location, an absolute directory on the worker's
	// host (local disk or an NFS mount shared by the workers). Empty
	// disables decommission backups.
	Dir string
	// Retention is how long a backup is kept after the decommission; the
	// tenant can be restored from it until then.
	Retention time.Duration
}

// Register binds the settings to flags and TENANTFLOW_BACKUP_* variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.Dir, "backup-dir", EnvDir, "", "absolute directory (local or NFS) that receives a tenant's volumes at decommission; empty disables decommission backups")
	s.Duration(&c.Retention, "backup-retention", EnvRetention, DefaultRetention, "how long a decommissioned tenant's backup is kept (and the tenant restorable)")
}

// Enabled reports whether decommission backups are configured.
func (c Config) Enabled() bool { return c.Dir != "" }

// String shows the configuration in logs and errors.
func (c Config) String() string {
	return fmt.Sprintf("{Dir:%s Retention:%s}", c.Dir, c.Retention)
}

// Validate reports every bad setting by its variable name when backups are
// enabled; a disabled component is not checked.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var problems config.Problems
	if !filepath.IsAbs(c.Dir) {
		// A relative directory would depend on the worker's working
		// directory: two workers would write to different places.
		problems.Add(EnvDir, "%q is not an absolute path", c.Dir)
	}
	if c.Retention <= 0 {
		problems.Add(EnvRetention, "%s must be positive", c.Retention)
	}
	return problems.Err()
}
