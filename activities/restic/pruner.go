package restic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// Pruner applies the tenants' retention to their off-site copies.
//
// The workers' off-site credential adds and never deletes (their server
// runs with --append-only): a worker taken over cannot destroy the
// copies that must outlive this site. Pruning deletes, so it is split
// off:
//
//   - the operator runs a second `rclone serve restic --private-repos`,
//     WITHOUT --append-only, over the same storage as the workers' one,
//     reachable only from the pruner's host, with the same user name and
//     a password of its own;
//   - `tenantflow offsite-pruner` holds that password (PruneConfig) and
//     read access to the keys directory; it polls a task queue of its own
//     (DefaultPruneQueue) and registers only this type, whose one
//     exported method, PruneOffsite, is its one activity;
//   - the workers register *Activities, which has no way to delete off
//     site, and never hold the password; Config.OffsitePruner only tells
//     the workflow (OffsiteCopy.Prune) which queue to send PruneOffsite
//     to.
//
// Add no other exported method: each would be an activity of the
// pruner's worker.
type Pruner struct {
	Config PruneConfig
	// Heartbeat records progress; the pruner's worker sets it to
	// activity.RecordHeartbeat. Nil disables heartbeats (direct calls).
	Heartbeat func(ctx context.Context, details ...any)
	Log       *slog.Logger
}

// NewPruner checks the configuration and that the keys directory is
// there. It makes nothing: the pruner only reads the keys.
func NewPruner(cfg PruneConfig, log *slog.Logger) (*Pruner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("off-site pruner config: %w", err)
	}
	fi, err := os.Stat(cfg.Keys)
	if err != nil {
		return nil, fmt.Errorf("off-site pruner: %s=%s: %w", EnvKeys, cfg.Keys, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("off-site pruner: %s=%s is not a directory", EnvKeys, cfg.Keys)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pruner{Config: cfg, Log: log.With("component", "offsite-pruner")}, nil
}

// PruneOffsite applies in to the tenant's off-site copy as ApplyRetention
// applies it to the local repository (the same policy, the same pinned
// backups, the parts of copies interrupted more than an hour ago), through
// the prune server; it forgets and prunes only when something is to be
// forgotten. Kept and Forgotten are the backups of the off-site copy,
// which may hold fewer than the local repository (a copy that failed);
// RepositoryBytes is 0. A tenant without an off-site repository, or one
// whose key the keys directory never had, gives an empty Retention; one
// whose key was erased, ErrKeyGone. A retry forgets what is left to
// forget; restic prune is itself resumable.
func (p *Pruner) PruneOffsite(ctx context.Context, in RetentionInput) (Retention, error) {
	if err := p.configured(); err != nil {
		return Retention{}, err
	}
	pol, err := in.policy()
	if err != nil {
		return Retention{}, err
	}
	a := p.activities()
	prog, stop := a.track(ctx, "off-site retention of "+in.Tenant)
	defer stop()
	repo, ok, err := p.existingOffsite(ctx, a, in.Tenant)
	if err != nil || !ok {
		return emptyRetention(), err
	}
	r, err := a.applyPolicy(ctx, repo, pol, prog)
	if err != nil {
		return Retention{}, keyErr(err, repo)
	}
	a.log().Info("off-site retention applied", "tenant", in.Tenant, "repository", repo.name,
		"kept", len(r.Kept), "forgotten", len(r.Forgotten))
	return r, nil
}

// configured fails, for good, when the pruner is not configured.
func (p *Pruner) configured() error {
	if p.Config.URL == "" {
		return notConfigured("off-site pruning is not configured on this worker (%s is not set)", EnvOffsitePruneURL)
	}
	if err := p.Config.Validate(); err != nil {
		return notConfigured("off-site pruner config: %v", err)
	}
	return nil
}

// activities are the restic runs of the pruner: the off-site server is
// the prune server, and no local repository is configured, so none of
// their own activities would run.
func (p *Pruner) activities() *Activities {
	c := p.Config
	return &Activities{
		Config:    Config{Keys: c.Keys, Binary: c.Binary, OffsiteURL: c.URL, OffsiteUser: c.User, OffsitePassword: c.Password},
		Heartbeat: p.Heartbeat,
		Log:       p.Log,
	}
}

// existingOffsite returns the tenant's off-site repository through the
// prune server, its stale locks removed (those of a killed restic, ours
// or a worker's); false when there is nothing to prune.
func (p *Pruner) existingOffsite(ctx context.Context, a *Activities, tenant string) (repository, bool, error) {
	if known, err := p.knownKey(a, tenant); err != nil || !known {
		return repository{}, false, err
	}
	if err := p.Config.deletes(ctx); err != nil {
		return repository{}, false, err
	}
	repo, err := a.offsite(tenant)
	if err != nil {
		return repository{}, false, err
	}
	_, err = a.run(ctx, command{repo: repo, args: []string{"unlock"}})
	re, isRestic := asResticError(err)
	switch {
	case err == nil:
		return repo, true, nil
	case isRestic && re.refused():
		return repo, false, fmt.Errorf("the off-site prune server refuses user %s (%s, %s): %w", p.Config.User, EnvOffsiteUser, EnvOffsitePrunePassword, err)
	case isRestic && re.noRepository():
		return repo, false, nil // nothing copied yet
	}
	return repo, false, keyErr(err, repo)
}

// knownKey reports whether the tenant has a key the pruner can use.
// Without one, the off-site repository's name (see OffsiteName) is
// unknown, and its content unreadable: ErrKeyGone when the keys
// directory shows the tenant had a key (its <tenant>.lock, which the
// worker's first activity on a tenant makes and erasure leaves), and
// nothing to prune when it never heard of the tenant.
func (p *Pruner) knownKey(a *Activities, tenant string) (bool, error) {
	_, err := os.Stat(a.keyPath(tenant))
	if errors.Is(err, os.ErrNotExist) {
		if _, lockErr := os.Stat(filepath.Join(p.Config.Keys, tenant+".lock")); errors.Is(lockErr, os.ErrNotExist) {
			return false, nil
		}
	}
	if err := a.checkKey(tenant, "the off-site repository"); err != nil {
		return false, err
	}
	return true, nil
}
