package restic

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// errServiceCommandFailed is the runtimes' failure type of a dump or
// restore command that exited non-zero (docker.ErrServiceCommandFailed;
// named here so that this package does not depend on a driver).
const errServiceCommandFailed = "ServiceCommandFailed"

// cleanupTimeout bounds the removal of a drill's scratch volumes and
// instances, which runs on a fresh context: the activity's may be over.
const cleanupTimeout = time.Minute

// DrillBackup proves a backup restorable: each volume part is restored
// into a scratch volume (restic restore --verify, then its files counted
// against the manifest), and each dump part is loaded into a scratch
// instance of its service without network, which must dump back to the
// SHA-256 recorded at backup. With in.Offsite it drills the off-site
// copy, from the off-site repository alone (another worker, with only the
// keys, can do it). Scratch volumes and instances are removed afterwards,
// whatever the outcome.
//
// A backup that does not restore, or restores to something else, is a
// non-retryable ErrDrillFailed naming the part; a failure of the runtime,
// the network or a lock is retried.
func (a *Activities) DrillBackup(ctx context.Context, in DrillInput) (Drill, error) {
	if err := a.enabled(); err != nil {
		return Drill{}, err
	}
	if in.Offsite {
		if err := a.offsiteEnabled(); err != nil {
			return Drill{}, err
		}
	}
	if err := validRef(in.Tenant, in.ID); err != nil {
		return Drill{}, err
	}
	if err := validDumps(in.Dumps, true); err != nil {
		return Drill{}, err
	}
	ref := Ref{Tenant: in.Tenant, ID: in.ID}
	where := "local"
	if in.Offsite {
		where = "off-site"
	}
	p, stop := a.track(ctx, "drill of "+in.ID+" ("+where+")")
	defer stop()
	release, err := a.slot(ctx, p)
	if err != nil {
		return Drill{}, err
	}
	defer release()
	repo, err := a.readRepository(ctx, ref, in.Offsite, p)
	if err != nil {
		return Drill{}, err
	}
	if repo.unlock != nil {
		defer repo.unlock()
	}
	start := time.Now()
	snaps, err := a.snapshots(ctx, repo.repository, tagBackup+in.ID)
	if re, ok := asResticError(err); ok && re.noRepository() {
		return Drill{}, notFound(ref, "the "+where+" repository does not exist")
	}
	if re, ok := asResticError(err); ok && re.wrongKey() {
		return Drill{}, keyErr(err, repo.repository)
	}
	if err != nil {
		return Drill{}, drillFailed(err, "backup %s: the snapshots of the %s repository", in.ID, where)
	}
	m, ok := manifestOf(snaps)
	if !ok {
		return Drill{}, notFound(ref, "the "+where+" repository has no manifest of it")
	}
	b, err := a.readManifest(ctx, repo.repository, m, in.Tenant, in.ID)
	if err != nil {
		return Drill{}, drillFailed(err, "backup %s: manifest", in.ID)
	}
	d := Drill{ID: in.ID, Offsite: in.Offsite}
	for _, part := range b.Parts {
		if part.empty() {
			continue // nothing was taken, nothing to restore
		}
		i := slices.IndexFunc(snaps, func(s snapshot) bool { return s.has(part.Kind + ":" + part.Name) })
		if i < 0 {
			msg := fmt.Sprintf("backup %s: the %s repository has no snapshot of %s %s", in.ID, where, part.Kind, part.Name)
			return Drill{}, temporal.NewNonRetryableApplicationError(msg, ErrDrillFailed, nil)
		}
		var files int
		var bytes int64
		switch part.Kind {
		case PartVolume:
			files, bytes, err = a.drillVolume(ctx, repo.repository, in, part, snaps[i], p)
		case PartDump:
			j := slices.IndexFunc(in.Dumps, func(s spec.Service) bool { return s.Name == part.Name })
			if j < 0 {
				return Drill{}, invalid("backup %s holds a dump of %s, but the drill names no such service", in.ID, part.Name)
			}
			files, bytes, err = a.drillDump(ctx, repo.repository, in, part, snaps[i], in.Dumps[j], p)
		default:
			msg := fmt.Sprintf("backup %s: part %s of unknown kind %q", in.ID, part.Name, part.Kind)
			return Drill{}, temporal.NewNonRetryableApplicationError(msg, ErrDrillFailed, nil)
		}
		if err != nil {
			a.log().Warn("drill failed", "tenant", in.Tenant, "backup", in.ID, "offsite", in.Offsite, "part", part.Kind+":"+part.Name, "err", err)
			return Drill{}, err
		}
		d.Files += files
		d.Bytes += bytes
	}
	d.Took, d.CheckedAt = time.Since(start), time.Now().UTC()
	a.log().Info("drill passed", "tenant", in.Tenant, "backup", in.ID, "offsite", in.Offsite,
		"files", d.Files, "bytes", d.Bytes, "took", d.Took)
	return d, nil
}

// drilled is the repository a drill reads, and the tenant's lock when it
// is the local one.
type drilled struct {
	repository
	unlock func()
}

// readRepository opens the repository to read backup ref from (a drill,
// a restore). The local one is read under the tenant's lock (so no prune
// removes data under the reader, and stale locks can be removed); the
// off-site one needs only the key.
func (a *Activities) readRepository(ctx context.Context, ref Ref, offsite bool, p *progress) (drilled, error) {
	if offsite {
		r, err := a.offsite(ref.Tenant)
		if err != nil {
			return drilled{}, err
		}
		return drilled{repository: r}, a.checkKey(ref.Tenant, r.name)
	}
	unlock, err := a.lockTenant(ctx, ref.Tenant, p)
	if err != nil {
		return drilled{}, err
	}
	r, ok, err := a.existingLocal(ref.Tenant)
	if err == nil && !ok {
		err = notFound(ref, "the tenant has no repository")
	}
	if err == nil {
		err = a.unlockStale(ctx, r)
	}
	if err != nil {
		unlock()
		return drilled{}, err
	}
	return drilled{repository: r, unlock: unlock}, nil
}

// drillVolume restores the part into a scratch volume and counts what it
// restored against the manifest.
func (a *Activities) drillVolume(ctx context.Context, repo repository, in DrillInput, part Part, snap snapshot, p *progress) (int, int64, error) {
	p.stage("drill of " + in.ID + ": restore of volume " + part.Name)
	_, remove, err := a.restoreToScratch(ctx, repo, Ref{Tenant: in.Tenant, ID: in.ID}, "drill-"+part.Name, part, snap, ErrDrillFailed)
	if err != nil {
		return 0, 0, err
	}
	remove()
	return part.Files, part.Bytes, nil
}

// restoreToScratch restores a volume part of backup ref into the scratch
// volume name (restic restore --verify) and counts its files against the
// manifest; a backup that does not restore, or restores to something
// else, is a non-retryable error of type typ. remove removes the scratch
// volume (on a context of its own: the activity's may be over); on error
// it is removed already.
func (a *Activities) restoreToScratch(ctx context.Context, repo repository, ref Ref, name string, part Part, snap snapshot, typ string) (dir string, remove func(), err error) {
	dir, err = a.Host.ScratchVolume(ctx, ref.Tenant, name)
	if err != nil {
		return "", nil, passOn(err, "volume %s: scratch volume", part.Name)
	}
	remove = func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := a.Host.RemoveScratchVolume(rctx, ref.Tenant, name); err != nil {
			a.log().Warn("scratch volume left behind", "tenant", ref.Tenant, "volume", name, "err", err)
		}
	}
	if _, err := a.run(ctx, command{repo: repo, args: []string{"restore", snap.ID, "--target", dir, "--verify"}}); err != nil {
		remove()
		return "", nil, unusable(typ, err, "backup %s: volume %s does not restore", ref.ID, part.Name)
	}
	files, bytes, err := count(dir)
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("volume %s: count the restored files: %w", part.Name, err)
	}
	if files != part.Files || bytes != part.Bytes {
		remove()
		msg := fmt.Sprintf("backup %s: volume %s restores to %d files of %d bytes, the backup took %d files of %d bytes",
			ref.ID, part.Name, files, bytes, part.Files, part.Bytes)
		return "", nil, temporal.NewNonRetryableApplicationError(msg, typ, nil)
	}
	return dir, remove, nil
}

// count counts what restic counts as a backup's files (the regular ones:
// not directories, symlinks or devices) and their bytes.
func count(root string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += fi.Size()
		return nil
	})
	return files, bytes, err
}

// drillDump loads the dump into a scratch instance of its service with
// the service's restore command, then dumps that instance again: both
// the dump read back and the new dump must have the recorded SHA-256.
func (a *Activities) drillDump(ctx context.Context, repo repository, in DrillInput, part Part, snap snapshot, svc spec.Service, p *progress) (int, int64, error) {
	p.stage("drill of " + in.ID + ": scratch instance of " + svc.Name)
	if err := a.Host.StartScratchInstance(ctx, in.Tenant, svc); err != nil {
		return 0, 0, passOn(err, "dump of %s: scratch instance", svc.Name)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := a.Host.RemoveScratchInstance(rctx, in.Tenant, svc); err != nil {
			a.log().Warn("scratch instance left behind", "tenant", in.Tenant, "service", svc.Name, "err", err)
		}
	}()

	p.stage("drill of " + in.ID + ": restore of the dump of " + svc.Name)
	read, resticErr, execErr, err := a.feedDump(ctx, repo, snap, svc, p, func(stdin io.Reader) error {
		return a.Host.ExecInScratchInstance(ctx, in.Tenant, svc, svc.Backup.Restore, stdin, io.Discard)
	})
	switch {
	case err != nil:
		return 0, 0, err
	case resticErr != nil:
		return 0, 0, drillFailed(resticErr, "backup %s: the dump of %s does not read back", in.ID, svc.Name)
	case execErr != nil:
		return 0, 0, drillFailed(serviceFailure(execErr), "backup %s: the dump of %s does not restore into a scratch instance", in.ID, svc.Name)
	}
	if got := read.sum(); got != part.SHA256 || read.n != part.Bytes {
		msg := fmt.Sprintf("backup %s: the dump of %s reads back as %d bytes with sha256 %s, the backup took %d bytes with sha256 %s",
			in.ID, svc.Name, read.n, got, part.Bytes, part.SHA256)
		return 0, 0, temporal.NewNonRetryableApplicationError(msg, ErrDrillFailed, nil)
	}

	p.stage("drill of " + in.ID + ": dump of the scratch instance of " + svc.Name)
	h := sha256.New()
	var n int64
	out := writerFunc(func(b []byte) (int, error) { h.Write(b); n += int64(len(b)); p.add(len(b)); return len(b), nil })
	if err := a.Host.ExecInScratchInstance(ctx, in.Tenant, svc, svc.Backup.Dump, nil, out); err != nil {
		return 0, 0, drillFailed(serviceFailure(err), "backup %s: the scratch instance of %s restored from its dump does not dump", in.ID, svc.Name)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != part.SHA256 {
		msg := fmt.Sprintf("backup %s: restored into a scratch instance, the dump of %s dumps again as %d bytes with sha256 %s, not %s",
			in.ID, svc.Name, n, got, part.SHA256)
		return 0, 0, temporal.NewNonRetryableApplicationError(msg, ErrDrillFailed, nil)
	}
	return 1, part.Bytes, nil
}

func cmpErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// hashReader hashes and counts what is read through it.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	p   *progress
	n   int64
	eof bool
}

func (r *hashReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.h.Write(b[:n])
		r.n += int64(n)
		r.p.add(n)
	}
	if err != nil {
		r.eof = true
	}
	return n, err
}

func (r *hashReader) sum() string { return hex.EncodeToString(r.h.Sum(nil)) }

// serviceFailure marks the runtime's verdicts on the service (its command
// failed, it is unhealthy) as findings of the drill: the restored data is
// what the service refuses. Other errors are the runtime's own.
func serviceFailure(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && (appErr.Type() == errServiceCommandFailed || appErr.Type() == runtimes.ErrServiceUnhealthy) {
		return &finding{err: err}
	}
	return err
}

// finding is a failure that a drill reports as ErrDrillFailed.
type finding struct{ err error }

func (f *finding) Error() string { return f.err.Error() }
func (f *finding) Unwrap() error { return f.err }

// drillFailed is unusable for a drill: its finding is ErrDrillFailed.
func drillFailed(err error, format string, args ...any) error {
	return unusable(ErrDrillFailed, err, format, args...)
}

// unusable turns what says the backup is unrestorable (restic failing on
// its content, the service refusing it) into a non-retryable error of
// type typ (a drill's finding, a restore's refusal); the failures of
// infrastructure (a lock, the network, the disk, the runtime) pass on to
// be retried.
func unusable(typ string, err error, format string, args ...any) error {
	var f *finding
	re, isRestic := asResticError(err)
	switch {
	case errors.As(err, &f):
	case isRestic && re.wrongKey():
	case isRestic && !re.infrastructure():
	default:
		return passOn(err, format, args...)
	}
	msg := fmt.Sprintf(format, args...) + ": " + err.Error()
	return temporal.NewNonRetryableApplicationError(msg, typ, nil)
}

// feedDump streams the dump in snap into restore (the service's restore
// command, in a scratch instance or the live service) and returns what it
// read, hashed. resticErr is restic's failure to read the dump back (not
// the kill of a restic whose reader stopped early); execErr the restore
// command's; err a failure to start restic. What the command leaves
// unread is read and hashed too.
func (a *Activities) feedDump(ctx context.Context, repo repository, snap snapshot, svc spec.Service, p *progress,
	restore func(stdin io.Reader) error) (read *hashReader, resticErr, execErr, err error) {
	pr, pw := io.Pipe()
	r, _, err := a.start(ctx, command{repo: repo, args: []string{"dump", snap.ID, "/" + dumpFile(svc.Name)}, stdout: pw}, false)
	if err != nil {
		return nil, nil, nil, err
	}
	// The pipe ends when restic does, with its error when it failed.
	resticDone := make(chan error, 1)
	go func() {
		_, err := r.wait()
		pw.CloseWithError(cmpErr(err, io.EOF))
		resticDone <- err
	}()
	read = &hashReader{r: pr, h: sha256.New(), p: p}
	execErr = restore(read)
	if execErr == nil {
		_, _ = io.Copy(io.Discard, read)
	} else if !read.eof {
		r.kill()
	}
	pr.Close()
	if resticErr = <-resticDone; r.killed {
		resticErr = nil
	}
	return read, resticErr, execErr, nil
}
