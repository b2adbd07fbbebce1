package restic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// ErrRestoreFailed is a backup that did not restore into the tenant (its data
// did not read back, or its restore command refused it). Non-retryable:
// the caller puts the tenant back to its safety backup.
const ErrRestoreFailed = "BackupRestoreFailed"

// RestoreInput asks for the tenant's live data to be replaced by a
// backup's: each volume part replaces the content of the tenant's volume
// (its services that use it stopped by the caller), and each dump is
// loaded into the running service with its restore command.
type RestoreInput struct {
	Tenant  string `json:"tenant"`
	Owner   string `json:"owner,omitempty"`
	Runtime string `json:"runtime,omitempty"`
	ID      string `json:"id"`
	// Dumps are the backup's dumped services, rendered for the tenant.
	Dumps []spec.Service `json:"dumps,omitempty"`
	// Offsite reads the backup from the off-site copy (a lost host's
	// tenant brought back elsewhere) instead of the local repository.
	Offsite bool `json:"offsite,omitempty"`
}

// Restored is what a restore put in place.
type Restored struct {
	ID    string        `json:"id"`
	Files int           `json:"files"`
	Bytes int64         `json:"bytes"`
	Took  time.Duration `json:"took"`
}

// RestoreBackup replaces the tenant's data with a backup's. Each volume
// is restored first into a scratch volume beside it (restic restore
// --verify, then counted against the manifest), and only then does its
// content replace the live volume's, entry by entry by rename on the same
// file system: the live data is never touched before its replacement is
// complete and checked. A retry does it all again. The caller takes a
// safety backup first and restores it when this fails.
func (a *Activities) RestoreBackup(ctx context.Context, in RestoreInput) (Restored, error) {
	if err := a.enabled(); err != nil {
		return Restored{}, err
	}
	if err := validRef(in.Tenant, in.ID); err != nil {
		return Restored{}, err
	}
	if err := validDumps(in.Dumps, true); err != nil {
		return Restored{}, err
	}
	p, stop := a.track(ctx, "restore of "+in.ID)
	defer stop()
	release, err := a.slot(ctx, p)
	if err != nil {
		return Restored{}, err
	}
	defer release()
	repo, err := a.readRepository(ctx, Ref{Tenant: in.Tenant, ID: in.ID}, in.Offsite, p)
	if err != nil {
		return Restored{}, err
	}
	if repo.unlock != nil {
		defer repo.unlock()
	}
	start := time.Now()
	snaps, err := a.snapshots(ctx, repo.repository, tagBackup+in.ID)
	if err != nil {
		return Restored{}, err
	}
	m, ok := manifestOf(snaps)
	if !ok {
		return Restored{}, notFound(Ref{Tenant: in.Tenant, ID: in.ID}, "the repository has no manifest of it")
	}
	b, err := a.readManifest(ctx, repo.repository, m, in.Tenant, in.ID)
	if err != nil {
		return Restored{}, restoreFailed(err, "backup %s: manifest", in.ID)
	}
	out := Restored{ID: in.ID}
	// Volumes first (their services are stopped), then the dumps into
	// the running databases.
	for _, kind := range []string{PartVolume, PartDump} {
		for _, part := range b.Parts {
			if part.Kind != kind {
				continue
			}
			if part.empty() {
				if err := a.emptyVolume(ctx, in, part.Name); err != nil {
					return Restored{}, err
				}
				continue
			}
			i := slices.IndexFunc(snaps, func(s snapshot) bool { return s.has(part.Kind + ":" + part.Name) })
			if i < 0 {
				msg := fmt.Sprintf("backup %s: no snapshot of %s %s", in.ID, part.Kind, part.Name)
				return Restored{}, temporal.NewNonRetryableApplicationError(msg, ErrRestoreFailed, nil)
			}
			if kind == PartVolume {
				err = a.restoreVolume(ctx, repo.repository, in, part, snaps[i], p)
			} else {
				j := slices.IndexFunc(in.Dumps, func(s spec.Service) bool { return s.Name == part.Name })
				if j < 0 {
					return Restored{}, invalid("backup %s holds a dump of %s, but the restore names no such service", in.ID, part.Name)
				}
				err = a.loadDump(ctx, repo.repository, in, part, snaps[i], in.Dumps[j], p)
			}
			if err != nil {
				return Restored{}, err
			}
			out.Files += part.Files
			out.Bytes += part.Bytes
		}
	}
	out.Took = time.Since(start)
	a.log().Info("backup restored into the tenant", "tenant", in.Tenant, "backup", in.ID, "files", out.Files, "bytes", out.Bytes, "took", out.Took)
	return out, nil
}

// restoreVolume restores the part into a scratch volume, checks it, and
// moves its content into the tenant's volume in place of the old.
func (a *Activities) restoreVolume(ctx context.Context, repo repository, in RestoreInput, part Part, snap snapshot, p *progress) error {
	p.stage("restore of " + in.ID + ": volume " + part.Name)
	live, err := a.Host.VolumeDir(ctx, in.Tenant, in.Owner, part.Name)
	if err != nil {
		return passOn(err, "volume %s", part.Name)
	}
	dir, remove, err := a.restoreToScratch(ctx, repo, Ref{Tenant: in.Tenant, ID: in.ID}, "restore-"+part.Name, part, snap, ErrRestoreFailed)
	if err != nil {
		return err
	}
	defer remove()
	// The replacement is complete and checked: now the live content goes.
	if err := replaceContent(live, dir); err != nil {
		return fmt.Errorf("volume %s: put the restored files in place: %w", part.Name, err)
	}
	return syncTree(live)
}

// emptyVolume restores a volume that was backed up empty.
func (a *Activities) emptyVolume(ctx context.Context, in RestoreInput, vol string) error {
	live, err := a.Host.VolumeDir(ctx, in.Tenant, in.Owner, vol)
	if err != nil {
		return passOn(err, "volume %s", vol)
	}
	if err := clearDir(live); err != nil {
		return fmt.Errorf("volume %s: empty it as the backup took it: %w", vol, err)
	}
	return syncTree(live)
}

// clearDir removes every entry of dir.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// replaceContent empties live and moves every entry of from into it.
// Both are directories of the same engine's volumes (one file system), so
// each move is a rename; across file systems it fails rather than copy.
func replaceContent(live, from string) error {
	if err := clearDir(live); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		err := os.Rename(filepath.Join(from, e.Name()), filepath.Join(live, e.Name()))
		if errors.Is(err, syscall.EXDEV) {
			return fmt.Errorf("the scratch volume %s is on another file system than %s", from, live)
		}
		if err != nil {
			return err
		}
	}
	// The root keeps its own mode and owner: a backup of "." does not
	// hold them, and the scratch volume's root is the engine's, not the
	// service's.
	return nil
}

// loadDump streams the part's dump into the running service's restore
// command, checking that what it read is what the backup took.
func (a *Activities) loadDump(ctx context.Context, repo repository, in RestoreInput, part Part, snap snapshot, svc spec.Service, p *progress) error {
	p.stage("restore of " + in.ID + ": load the dump of " + svc.Name)
	read, resticErr, execErr, err := a.feedDump(ctx, repo, snap, svc, p, func(stdin io.Reader) error {
		return a.Host.ExecInService(ctx, in.Tenant, in.Owner, svc, svc.Backup.Restore, stdin, io.Discard)
	})
	switch {
	case err != nil:
		return err
	case resticErr != nil:
		return restoreFailed(resticErr, "backup %s: the dump of %s does not read back", in.ID, svc.Name)
	case execErr != nil:
		return restoreFailed(serviceFailure(execErr), "backup %s: the dump of %s does not load", in.ID, svc.Name)
	}
	if got := read.sum(); got != part.SHA256 || read.n != part.Bytes {
		msg := fmt.Sprintf("backup %s: the dump of %s read back as %d bytes with sha256 %s, the backup took %d bytes with sha256 %s",
			in.ID, svc.Name, read.n, got, part.Bytes, part.SHA256)
		return temporal.NewNonRetryableApplicationError(msg, ErrRestoreFailed, nil)
	}
	return nil
}

// restoreFailed is unusable for a restore: a backup it cannot use is
// ErrRestoreFailed.
func restoreFailed(err error, format string, args ...any) error {
	return unusable(ErrRestoreFailed, err, format, args...)
}
