package restic

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"time"

	"go.temporal.io/sdk/temporal"
)

// copiedLine is what restic copy prints for each snapshot it copied (it
// skips those an earlier copy brought over).
var copiedLine = regexp.MustCompile(`(?m)^snapshot [0-9a-f]+ saved$`)

// CopyOffsite copies the backup's snapshots to the tenant's off-site
// repository, the parts first and the manifest last, so an off-site
// manifest always has its parts. The off-site repository is initialised
// on the first copy, with the same key and the local repository's
// chunker parameters (so copies deduplicate). restic copy skips what an
// earlier attempt copied: a retry copies what is left.
func (a *Activities) CopyOffsite(ctx context.Context, ref Ref) (OffsiteCopy, error) {
	if err := a.offsiteEnabled(); err != nil {
		return OffsiteCopy{}, err
	}
	if err := validRef(ref.Tenant, ref.ID); err != nil {
		return OffsiteCopy{}, err
	}
	log := a.log().With("tenant", ref.Tenant, "backup", ref.ID)
	p, stop := a.track(ctx, "off-site copy of "+ref.ID)
	defer stop()
	release, err := a.slot(ctx, p)
	if err != nil {
		return OffsiteCopy{}, err
	}
	defer release()
	unlock, err := a.lockTenant(ctx, ref.Tenant, p)
	if err != nil {
		return OffsiteCopy{}, err
	}
	defer unlock()
	local, ok, err := a.existingLocal(ref.Tenant)
	if err != nil {
		return OffsiteCopy{}, err
	}
	if !ok {
		return OffsiteCopy{}, notFound(ref, "the tenant has no repository")
	}
	if err := a.unlockStale(ctx, local); err != nil {
		return OffsiteCopy{}, err
	}
	snaps, err := a.snapshots(ctx, local, tagBackup+ref.ID)
	if err != nil {
		return OffsiteCopy{}, err
	}
	manifest, ok := manifestOf(snaps)
	if !ok {
		return OffsiteCopy{}, notFound(ref, "it has no manifest")
	}
	var parts []string
	for _, s := range snaps {
		if s.ID != manifest.ID {
			parts = append(parts, s.ID)
		}
	}
	remote, err := a.offsite(ref.Tenant)
	if err != nil {
		return OffsiteCopy{}, err
	}
	start := time.Now()
	copied := 0
	for _, ids := range [][]string{parts, {manifest.ID}} {
		if len(ids) == 0 {
			continue
		}
		n, err := a.copySnapshots(ctx, local, remote, ids)
		if err != nil {
			return OffsiteCopy{}, err
		}
		copied += n
	}
	log.Info("backup copied off-site", "repository", remote.name, "copied", copied, "took", time.Since(start))
	return OffsiteCopy{Copied: copied, CopiedAt: time.Now().UTC(), Prune: a.Config.OffsitePruner}, nil
}

// copySnapshots copies the snapshots from local to remote, initialising
// remote when it does not exist yet, and counts what it copied.
func (a *Activities) copySnapshots(ctx context.Context, local, remote repository, ids []string) (int, error) {
	var out bytes.Buffer
	c := command{repo: remote, from: &local, args: append([]string{"copy"}, ids...), stdout: &out}
	_, err := a.run(ctx, c)
	if re, ok := asResticError(err); ok && re.refused() {
		return 0, fmt.Errorf("the off-site server refuses user %s (%s, %s): %w", a.Config.OffsiteUser, EnvOffsiteUser, EnvOffsitePassword, err)
	}
	if re, ok := asResticError(err); ok && re.noRepository() {
		if err := a.initOffsite(ctx, local, remote); err != nil {
			return 0, err
		}
		out.Reset()
		_, err = a.run(ctx, c)
	}
	if err != nil {
		return 0, keyErr(err, remote)
	}
	return len(copiedLine.FindAll(out.Bytes(), -1)), nil
}

// initOffsite initialises the tenant's off-site repository with its key
// and the local repository's chunker parameters. restic writes the key
// before the config, so an init that a crash interrupted is done again
// (with one more key file of the same password).
func (a *Activities) initOffsite(ctx context.Context, local, remote repository) error {
	_, err := a.run(ctx, command{repo: remote, from: &local, args: []string{"init", "--copy-chunker-params"}})
	if err != nil {
		return keyErr(err, remote)
	}
	a.log().Info("off-site repository initialised", "repository", remote.name)
	return nil
}

// keyErr names the case of a repository that exists but does not open
// with the tenant's key: off-site, the name of a tenant whose backups
// were erased, reused. Nothing on this side can fix that.
func keyErr(err error, repo repository) error {
	if re, ok := asResticError(err); ok && re.wrongKey() {
		msg := fmt.Sprintf("the repository %s does not open with the tenant's key (was the name of a tenant whose backups were erased reused?): %v", repo.name, err)
		return temporal.NewNonRetryableApplicationError(msg, ErrKeyGone, nil)
	}
	return err
}

func notFound(ref Ref, why string) error {
	msg := fmt.Sprintf("backup %s of tenant %s is not complete: %s", ref.ID, ref.Tenant, why)
	return temporal.NewNonRetryableApplicationError(msg, ErrBackupNotFound, nil)
}
