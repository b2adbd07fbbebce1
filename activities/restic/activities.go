package restic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// Host gives the backups access to a runtime: its volumes as host
// directories, scratch volumes for drills, and its services' own dump and
// restore tools (in the running service, and in a scratch instance
// without network). The Docker driver is one.
type Host interface {
	backup.VolumeHost
	backup.DumpHost
}

// Activities back tenants up into their restic repositories. Every
// method is an activity; all are idempotent.
type Activities struct {
	Config Config
	Host   Host
	// Heartbeat records progress of long activities; the worker sets it to
	// activity.RecordHeartbeat. Nil disables heartbeats (direct calls).
	Heartbeat func(ctx context.Context, details ...any)
	Log       *slog.Logger

	slotsOnce sync.Once
	slots     chan struct{}
}

// slot waits, showing it in the activity's progress, until fewer than
// Config.Concurrency heavy operations run on this worker, and takes one.
func (a *Activities) slot(ctx context.Context, p *progress) (release func(), err error) {
	a.slotsOnce.Do(func() {
		n := a.Config.Concurrency
		if n <= 0 {
			n = DefaultConcurrency
		}
		a.slots = make(chan struct{}, n)
	})
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	default:
	}
	p.stage(fmt.Sprintf("waiting for one of the %d backup slots of this host", cap(a.slots)))
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// New checks the configuration and makes the repositories' and keys'
// directories (mode 0700) when they are missing. A configuration without
// Repos gives activities that fail with ErrNotConfigured, so a worker can
// register them whether or not it backs tenants up.
func New(cfg Config, host Host, log *slog.Logger) (*Activities, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("restic config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Activities{Config: cfg, Host: host, Log: log.With("component", "restic")}
	if !cfg.Enabled() {
		return a, nil
	}
	if host == nil {
		return nil, errors.New("restic: no runtime host for the tenants' volumes and dumps")
	}
	for _, d := range []struct{ env, dir string }{{EnvRepos, cfg.Repos}, {EnvKeys, cfg.Keys}} {
		if err := os.MkdirAll(d.dir, 0o700); err != nil {
			return nil, fmt.Errorf("restic: %s=%s: %w", d.env, d.dir, err)
		}
	}
	if fi, err := os.Stat(cfg.Keys); err == nil && fi.Mode().Perm()&0o077 != 0 {
		a.Log.Warn("the keys directory is readable by others than its owner: make it mode 0700",
			"dir", cfg.Keys, "mode", fi.Mode().Perm().String())
	}
	return a, nil
}

func (a *Activities) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// enabled fails when this worker has no repositories configured.
func (a *Activities) enabled() error {
	if !a.Config.Enabled() {
		return temporal.NewNonRetryableApplicationError("scheduled backups are not configured on this worker ("+EnvRepos+" is not set)", ErrNotConfigured, nil)
	}
	return nil
}

// offsiteEnabled fails when this worker has no off-site server configured.
func (a *Activities) offsiteEnabled() error {
	if err := a.enabled(); err != nil {
		return err
	}
	if !a.Config.Offsite() {
		return temporal.NewNonRetryableApplicationError("off-site copies are not configured on this worker ("+EnvOffsiteURL+" is not set)", ErrNotConfigured, nil)
	}
	return nil
}

// Names of the inputs.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)

// maxIDLen keeps the tag backup:<id> readable in restic's listings.
const maxIDLen = 128

func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrInvalidInput, nil)
}

func validTenant(tenant string) error {
	if !spec.IsDNSLabel(tenant, 63) {
		return invalid("tenant %q is not a DNS label", tenant)
	}
	return nil
}

func validRef(tenant, id string) error {
	if err := validTenant(tenant); err != nil {
		return err
	}
	if len(id) > maxIDLen || !idPattern.MatchString(id) {
		return invalid("backup id %q must match %s and have at most %d characters", id, idPattern, maxIDLen)
	}
	return nil
}

func (in BackupInput) validate() error {
	if err := validRef(in.Tenant, in.ID); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, v := range in.Volumes {
		if !spec.IsDNSLabel(v, 63) {
			return invalid("volume %q is not a DNS label", v)
		}
		if seen[v] {
			return invalid("volume %s is listed twice", v)
		}
		seen[v] = true
	}
	if q := in.Quiesce; q != nil && (!spec.IsDNSLabel(q.Service.Name, 63) || len(q.Pause) == 0 || len(q.Resume) == 0) {
		return invalid("quiesce needs a service, a pause and a resume command")
	}
	return validDumps(in.Dumps, false)
}

// validDumps checks the dumped services: DNS labels, each once, each
// with a dump command (and a restore command for a drill).
func validDumps(dumps []spec.Service, restore bool) error {
	seen := map[string]bool{}
	for _, s := range dumps {
		if !spec.IsDNSLabel(s.Name, 63) {
			return invalid("dumped service %q is not a DNS label", s.Name)
		}
		if seen[s.Name] {
			return invalid("service %s is dumped twice", s.Name)
		}
		seen[s.Name] = true
		if s.Backup == nil || len(s.Backup.Dump) == 0 {
			return invalid("service %s has no dump command (backup.dump)", s.Name)
		}
		if restore && len(s.Backup.Restore) == 0 {
			return invalid("service %s has no restore command (backup.restore): its dump cannot be drilled", s.Name)
		}
	}
	return nil
}

// passOn returns err unchanged when it is (or wraps) a Temporal
// ApplicationError, whose type and retry policy must reach the SDK as the
// outermost error, and wraps anything else with context.
func passOn(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}
