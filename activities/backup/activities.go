// Package backup archives a decommissioned tenant's volumes into the backup
// location, verifies the archives by restoring them into scratch volumes,
// restores a tenant during the retention period and removes the backup
// after it.
//
// Layout of one backup, <Dir>/<tenant>/<id>/:
//
//	<volume>.tar           PAX tar of the volume, paths relative to its root
//	<volume>.tar.partial   the archive while it is written
//	<volume>.entries.json  the volume's entries; written (atomically) after
//	                       the archive was fsynced and renamed: the volume's
//	                       archive is complete
//	SHA256SUMS             sha256sum -c input for the archives and manifest
//	manifest.json          written last: the backup is complete
//
// Every activity is idempotent and resumable: a retry on another worker
// reuses the complete volume archives, rewrites the others from scratch and
// never renames an archive into place before it is fsynced.
package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// File names in a backup's directory.
const (
	manifestName = "manifest.json"
	sumsName     = "SHA256SUMS"
)

// VolumeHost gives the backup access to a runtime's volumes as host
// directories (Docker: the volume's mountpoint; the worker runs on the
// Docker host).
type VolumeHost interface {
	// VolumeDir is the host directory holding the tenant's volume (logical
	// name, e.g. "data"); owner as in runtime (empty = any).
	VolumeDir(ctx context.Context, tenant, owner, volume string) (string, error)
	// ScratchVolume makes an empty scratch volume named name for the tenant
	// (emptying it if it exists) and returns its directory.
	ScratchVolume(ctx context.Context, tenant, name string) (string, error)
	// RemoveScratchVolume removes it; no error when it is gone.
	RemoveScratchVolume(ctx context.Context, tenant, name string) error
}

// Activities are the backup steps of decommission and restore.
type Activities struct {
	Config Config
	Host   VolumeHost
	// Heartbeat records progress of long activities; the worker sets it to
	// activity.RecordHeartbeat. Nil disables heartbeats (direct calls).
	Heartbeat func(ctx context.Context, details ...any)
	Log       *slog.Logger
	// InPlace are the runtimes (by name) whose volumes their storage
	// keeps: their tenants' backups are kept in place, not archived.
	InPlace map[string]InPlace
	// Open reads an archive; nil is os.Open. Tests inject a faulty disk.
	Open func(name string) (io.ReadCloser, error)

	bufs sync.Pool // 1 MB data buffers
	// lockWait overrides lockWait (tests).
	lockWait time.Duration
}

// New checks the configuration and that the backup location exists.
func New(cfg Config, host VolumeHost, log *slog.Logger) (*Activities, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("backup config: %w", err)
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("backup config: %s is not set: decommission backups are disabled", EnvDir)
	}
	if host == nil {
		return nil, errors.New("backup: no volume host")
	}
	// Never created here: a location that is missing is a share that is
	// not mounted, and backups must not fill the local disk under it.
	if fi, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("backup location %s=%s is not a directory (create it, or mount the share): %w", EnvDir, cfg.Dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("backup location %s=%s is not a directory (create it, or mount the share)", EnvDir, cfg.Dir)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Activities{Config: cfg, Host: host, Log: log.With("component", "backup")}, nil
}

func (a *Activities) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// archiving fails when no backup location is configured: a worker that
// only keeps volumes in place has none.
func (a *Activities) archiving() error {
	if a.Config.Dir == "" || a.Host == nil {
		return temporal.NewNonRetryableApplicationError("no backup location is configured ("+EnvDir+")", "BackupNotConfigured", nil)
	}
	return nil
}

// location is the directory of one backup.
func (a *Activities) location(tenant, id string) string {
	return filepath.Join(a.Config.Dir, tenant, id)
}

// BackupVolumes archives the tenant's volumes under in.ID. A retry after
// success returns the same summary; a retry after a crash reuses the volume
// archives that are complete and rewrites the others.
func (a *Activities) BackupVolumes(ctx context.Context, in BackupInput) (Backup, error) {
	if ip := a.inPlace(in.Runtime); ip != nil {
		return a.keepVolumes(ctx, ip, in)
	}
	if err := a.archiving(); err != nil {
		return Backup{}, err
	}
	if err := in.validate(); err != nil {
		return Backup{}, err
	}
	dir := a.location(in.Tenant, in.ID)
	log := a.log().With("tenant", in.Tenant, "backup", in.ID)
	p, stop := a.track(ctx, "backup "+in.ID)
	defer stop()

	if err := a.makeDir(dir); err != nil {
		return Backup{}, fmt.Errorf("backup %s: %w", in.ID, err)
	}
	unlock, err := a.lockBackup(ctx, dir, p)
	if err != nil {
		return Backup{}, err
	}
	defer unlock()
	if b, ok, err := a.completed(dir, in); err != nil || ok {
		if ok {
			log.Info("backup complete already", "manifestSha256", b.ManifestSHA256)
		}
		return b, err
	}

	start := time.Now()
	archives := make([]VolumeArchive, 0, len(in.Volumes))
	for _, vol := range in.Volumes {
		va, err := a.backupVolume(ctx, dir, in, vol, p, log)
		if err != nil {
			return Backup{}, err
		}
		archives = append(archives, va)
	}

	dumps, err := dumpsOf(dir, in.Dumps)
	if err != nil {
		return Backup{}, err
	}
	m := Manifest{Version: ManifestVersion, Tenant: in.Tenant, ID: in.ID, CreatedAt: time.Now().UTC(), Volumes: archives, Dumps: dumps}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Backup{}, fmt.Errorf("backup %s: manifest: %w", in.ID, err)
	}
	sum := sha256Hex(data)
	var sums strings.Builder
	for _, va := range archives {
		fmt.Fprintf(&sums, "%s  %s\n", va.ArchiveSHA256, va.Archive)
	}
	for _, da := range dumps {
		fmt.Fprintf(&sums, "%s  %s\n", da.SHA256, da.File)
	}
	fmt.Fprintf(&sums, "%s  %s\n", sum, manifestName)
	if err := writeAtomic(dir, sumsName, []byte(sums.String())); err != nil {
		return Backup{}, fmt.Errorf("backup %s: %w", in.ID, err)
	}
	// Last: from here on the backup is complete.
	if err := writeAtomic(dir, manifestName, data); err != nil {
		return Backup{}, fmt.Errorf("backup %s: %w", in.ID, err)
	}
	b := m.summary(dir, sum)
	log.Info("backup complete", "location", dir, "manifestSha256", sum, "files", b.Files,
		"dataBytes", b.DataBytes, "archiveBytes", b.ArchiveBytes, "took", time.Since(start))
	return b, nil
}

// makeDir makes the backup's directory, durably, inside the backup location
// but never the location itself: a missing location is an NFS mount that
// is not there, and the backup must not go to the local disk under it.
func (a *Activities) makeDir(dir string) error {
	fi, err := os.Stat(a.Config.Dir)
	if err != nil {
		return fmt.Errorf("backup location (is it mounted?): %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("backup location %s is not a directory", a.Config.Dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The new directories' entries must survive a crash as their content does.
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return syncDir(a.Config.Dir)
}

// completed returns the summary of the backup in dir when its manifest
// exists: the retry of an attempt that succeeded.
func (a *Activities) completed(dir string, in BackupInput) (Backup, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return Backup{}, false, nil
	}
	if err != nil {
		return Backup{}, false, fmt.Errorf("backup %s: %w", in.ID, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		msg := fmt.Sprintf("backup %s: %s is unreadable: %v", in.ID, manifestName, err)
		return Backup{}, false, temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, err)
	}
	vols := make([]string, 0, len(m.Volumes))
	for _, v := range m.Volumes {
		vols = append(vols, v.Volume)
	}
	if m.Tenant != in.Tenant || m.ID != in.ID || !sameSet(vols, in.Volumes) {
		return Backup{}, false, invalid("backup %s exists already for tenant %s with volumes %v, not %v", in.ID, m.Tenant, vols, in.Volumes)
	}
	return m.summary(dir, sha256Hex(data)), true, nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// backupVolume returns the volume's complete archive, from an earlier
// attempt or written now.
func (a *Activities) backupVolume(ctx context.Context, dir string, in BackupInput, vol string, p *progress, log *slog.Logger) (VolumeArchive, error) {
	entriesName := vol + ".entries.json"
	tarPath := filepath.Join(dir, vol+".tar")
	if va, ok := reusable(dir, vol); ok {
		log.Info("volume archived by an earlier attempt: reused", "volume", vol, "archiveBytes", va.ArchiveBytes)
		return va, nil
	}
	// An entries file must never describe an archive other than its own.
	if err := os.Remove(filepath.Join(dir, entriesName)); err == nil {
		if err := syncDir(dir); err != nil {
			return VolumeArchive{}, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return VolumeArchive{}, fmt.Errorf("volume %s: %w", vol, err)
	}

	src, err := a.Host.VolumeDir(ctx, in.Tenant, in.Owner, vol)
	if err != nil {
		return VolumeArchive{}, passOn(err, "volume %s", vol)
	}
	start := time.Now()
	partial := tarPath + ".partial"
	va, err := a.writeArchive(ctx, src, partial, vol, p)
	if err != nil {
		return VolumeArchive{}, err
	}
	if err := os.Rename(partial, tarPath); err != nil {
		return VolumeArchive{}, fmt.Errorf("volume %s: %w", vol, err)
	}
	data, err := json.Marshal(va)
	if err != nil {
		return VolumeArchive{}, fmt.Errorf("volume %s: entries: %w", vol, err)
	}
	// Also makes the rename above durable (same directory).
	if err := writeAtomic(dir, entriesName, data); err != nil {
		return VolumeArchive{}, fmt.Errorf("volume %s: %w", vol, err)
	}
	took := time.Since(start)
	log.Info("volume archived", "volume", vol, "files", va.Files, "dataBytes", va.DataBytes,
		"archiveBytes", va.ArchiveBytes, "took", took, "mbPerSec", mbPerSec(va.DataBytes, took))
	return va, nil
}

// reusable returns the volume's archive when an earlier attempt completed
// it: its entries file exists and the archive has the size it records.
func reusable(dir, vol string) (VolumeArchive, bool) {
	data, err := os.ReadFile(filepath.Join(dir, vol+".entries.json"))
	if err != nil {
		return VolumeArchive{}, false
	}
	var va VolumeArchive
	if json.Unmarshal(data, &va) != nil || va.Volume != vol || va.Archive != vol+".tar" {
		return VolumeArchive{}, false
	}
	fi, err := os.Stat(filepath.Join(dir, va.Archive))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != va.ArchiveBytes {
		return VolumeArchive{}, false
	}
	return va, true
}

func mbPerSec(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}

// loadManifest reads the backup's manifest and checks it is the one the
// backup wrote (its checksum travelled through workflow history).
func (a *Activities) loadManifest(dir string, ref BackupRef) (Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		msg := fmt.Sprintf("backup %s of tenant %s does not exist (no %s in %s)", ref.ID, ref.Tenant, manifestName, dir)
		return Manifest{}, temporal.NewNonRetryableApplicationError(msg, ErrBackupNotFound, err)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("backup %s: %w", ref.ID, err)
	}
	if sum := sha256Hex(data); sum != ref.ManifestSHA256 {
		msg := fmt.Sprintf("backup %s: %s changed: sha256 %s, the backup wrote %s", ref.ID, manifestName, sum, ref.ManifestSHA256)
		return Manifest{}, temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		msg := fmt.Sprintf("backup %s: %s is unreadable: %v", ref.ID, manifestName, err)
		return Manifest{}, temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, err)
	}
	if m.Version != ManifestVersion || m.Tenant != ref.Tenant || m.ID != ref.ID {
		msg := fmt.Sprintf("backup %s: %s is version %d of backup %s of tenant %s", ref.ID, manifestName, m.Version, m.ID, m.Tenant)
		return Manifest{}, temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
	}
	for _, v := range m.Volumes {
		if validName(ref.Tenant, v.Volume) != nil || v.Archive != v.Volume+".tar" {
			msg := fmt.Sprintf("backup %s: %s names volume %q with archive %q", ref.ID, manifestName, v.Volume, v.Archive)
			return Manifest{}, temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
		}
	}
	return m, nil
}

// VerifyBackup restores every archive of the backup into a scratch volume,
// reads every file back and compares it all with the manifest, whose own
// checksum must be ref.ManifestSHA256. The scratch volumes are removed
// afterwards, whatever the outcome.
func (a *Activities) VerifyBackup(ctx context.Context, ref BackupRef) (Verification, error) {
	if ip := a.inPlace(ref.Runtime); ip != nil {
		return a.checkKept(ctx, ip, ref)
	}
	if err := a.archiving(); err != nil {
		return Verification{}, err
	}
	b, err := a.hold(ctx, ref, "verify")
	if err != nil {
		return Verification{}, err
	}
	defer b.release()
	v, err := a.verifyVolumes(ctx, ref, b)
	if err != nil {
		return v, err
	}
	return v, a.verifyDumps(ctx, ref, b)
}

// verifyDumps checks each dump of the backup by restoring it into a scratch
// instance of its service (see verifyDump), heartbeating while the tools
// run.
func (a *Activities) verifyDumps(ctx context.Context, ref BackupRef, b *held) error {
	if len(b.m.Dumps) == 0 {
		return nil
	}
	host, err := a.dumpHost()
	if err != nil {
		return err
	}
	for _, da := range b.m.Dumps {
		i := slices.IndexFunc(ref.Dumps, func(s spec.Service) bool { return s.Name == da.Service })
		if i < 0 || ref.Dumps[i].Backup == nil {
			return invalid("the backup holds a dump of %s, but the verification names no such service with dump and restore commands", da.Service)
		}
		start := time.Now()
		if err := a.verifyDump(ctx, host, ref.Tenant, b.dir, da, ref.Dumps[i], b.p); err != nil {
			a.log().Warn("verify failed", "tenant", ref.Tenant, "backup", ref.ID, "service", da.Service, "err", err)
			return err
		}
		a.log().Info("verify of dump done", "tenant", ref.Tenant, "backup", ref.ID, "service", da.Service, "bytes", da.Bytes, "took", time.Since(start))
	}
	return nil
}

// verifyVolumes restores every archive into a scratch volume and compares
// it with the manifest. Each archive is read once: extraction writes only
// what the manifest lists, and the archive's checksum is compared at its
// end.
func (a *Activities) verifyVolumes(ctx context.Context, ref BackupRef, b *held) (Verification, error) {
	return a.eachVolume(ref, b.m, "verify", func(_ int, va VolumeArchive) (int, int64, error) {
		return a.verifyVolume(ctx, ref, b.dir, va, b.p)
	})
}

// verifyVolume restores one archive into a scratch volume, removed after.
func (a *Activities) verifyVolume(ctx context.Context, ref BackupRef, dir string, va VolumeArchive, p *progress) (int, int64, error) {
	name := va.Volume + "-verify"
	scratch, err := a.Host.ScratchVolume(ctx, ref.Tenant, name)
	if err != nil {
		return 0, 0, passOn(err, "volume %s: scratch volume", va.Volume)
	}
	defer func() {
		// A fresh context: the activity's may be cancelled already.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := a.Host.RemoveScratchVolume(rctx, ref.Tenant, name); err != nil {
			a.log().Warn("scratch volume left behind", "tenant", ref.Tenant, "volume", name, "err", err)
		}
	}()
	archive, err := a.open(filepath.Join(dir, va.Archive))
	if err != nil {
		return 0, 0, fmt.Errorf("volume %s: open archive: %w", va.Volume, err)
	}
	defer archive.Close()
	// Each file is removed once checked: no need for a scratch volume
	// as large as the tenant's.
	return a.restoreInto(ctx, archive, va, scratch, p, true)
}

// RestoreVolumes gives the tenant's volumes the content of the backup and
// checks the result as VerifyBackup does. The volumes are the retained
// ones, a good copy of the data too, so nothing of them is touched before
// the manifest loaded and every archive and dump the restore reads proved
// to be what the backup wrote (size and SHA-256, end to end); a volume that
// already matches its manifest entries is left as it is, the others are
// emptied and refilled. A retry does the same, so it refills only what an
// interrupted attempt left unfinished.
func (a *Activities) RestoreVolumes(ctx context.Context, ref BackupRef) (Verification, error) {
	if ip := a.inPlace(ref.Runtime); ip != nil {
		// The data is where the tenant left it: check it still is.
		return a.checkKept(ctx, ip, ref)
	}
	if err := a.archiving(); err != nil {
		return Verification{}, err
	}
	b, err := a.hold(ctx, ref, "restore")
	if err != nil {
		return Verification{}, err
	}
	defer b.release()
	plan, err := a.planRestore(ctx, ref, b.m)
	if err != nil {
		return Verification{}, err
	}
	archives, err := a.openArchives(ctx, b.dir, b.m.Volumes, b.p)
	if err != nil {
		return Verification{}, err
	}
	defer closeAll(archives)
	dumps, err := a.openDumps(ctx, b.dir, b.m.Dumps, b.p)
	if err != nil {
		return Verification{}, err
	}
	closeAll(dumps) // LoadDumps reads them again: checked is enough here

	// Everything is proven: from here on the volumes change.
	for vol, dst := range plan.emptied {
		if err := emptyDir(dst); err != nil {
			return Verification{}, fmt.Errorf("volume %s: %w", vol, err)
		}
	}
	return a.eachVolume(ref, b.m, "restore", func(i int, va VolumeArchive) (int, int64, error) {
		return a.refill(ctx, archives[i], va, plan.dirs[va.Volume], b.p)
	})
}

// restorePlan is where a restore writes: the directory of each archived
// volume, and those of the dumped services' volumes, which start empty
// (LoadDumps fills them through the service once it runs).
type restorePlan struct {
	dirs    map[string]string
	emptied map[string]string
}

// planRestore finds every volume the restore writes before any is
// touched. A dumped service's volume that the backup also archives is
// refilled like the others; one it neither archives nor dumps would only
// lose its data, and is refused.
func (a *Activities) planRestore(ctx context.Context, ref BackupRef, m Manifest) (restorePlan, error) {
	plan := restorePlan{dirs: map[string]string{}, emptied: map[string]string{}}
	for _, va := range m.Volumes {
		dst, err := a.Host.VolumeDir(ctx, ref.Tenant, ref.Owner, va.Volume)
		if err != nil {
			return plan, passOn(err, "volume %s", va.Volume)
		}
		plan.dirs[va.Volume] = dst
	}
	for _, svc := range ref.Dumps {
		dumped := slices.ContainsFunc(m.Dumps, func(da DumpArchive) bool { return da.Service == svc.Name })
		for _, mnt := range svc.Mounts {
			if _, archived := plan.dirs[mnt.Volume]; archived {
				continue
			}
			if !dumped {
				return plan, invalid("volume %s of service %s would be emptied, but backup %s holds neither its archive nor a dump of %s", mnt.Volume, svc.Name, ref.ID, svc.Name)
			}
			dst, err := a.Host.VolumeDir(ctx, ref.Tenant, ref.Owner, mnt.Volume)
			if err != nil {
				return plan, passOn(err, "volume %s", mnt.Volume)
			}
			plan.emptied[mnt.Volume] = dst
		}
	}
	return plan, nil
}

// openArchives checks every archive end to end (see openChecked) and
// returns them open, in the manifest's order.
func (a *Activities) openArchives(ctx context.Context, dir string, vols []VolumeArchive, p *progress) ([]io.ReadCloser, error) {
	return openAll(len(vols), func(i int) (io.ReadCloser, error) {
		va := vols[i]
		return a.openChecked(ctx, dir, va.Archive, va.ArchiveBytes, va.ArchiveSHA256, "volume "+va.Volume+": archive "+va.Archive, p)
	})
}

// refill leaves the volume at dst alone when it matches the archive's
// entries already (the retained volume of a decommissioned tenant), and
// otherwise empties it and extracts the checked archive into it.
func (a *Activities) refill(ctx context.Context, archive io.Reader, va VolumeArchive, dst string, p *progress) (int, int64, error) {
	files, bytes, same, err := a.matches(ctx, dst, va, p)
	if err != nil {
		return 0, 0, err
	}
	if same {
		a.log().Info("volume matches its backup: kept as it is", "volume", va.Volume, "files", files, "dataBytes", bytes)
		return files, bytes, nil
	}
	if err := emptyDir(dst); err != nil {
		return 0, 0, fmt.Errorf("volume %s: %w", va.Volume, err)
	}
	return a.restoreInto(ctx, archive, va, dst, p, false)
}

// eachVolume runs one verification or restore per volume of the manifest,
// in order, and adds up what they checked.
func (a *Activities) eachVolume(ref BackupRef, m Manifest, what string, volume func(i int, va VolumeArchive) (int, int64, error)) (Verification, error) {
	log := a.log().With("tenant", ref.Tenant, "backup", ref.ID)
	start := time.Now()
	var v Verification
	for i, va := range m.Volumes {
		vstart := time.Now()
		files, bytes, err := volume(i, va)
		if err != nil {
			log.Warn(what+" failed", "volume", va.Volume, "err", err)
			return Verification{}, err
		}
		took := time.Since(vstart)
		log.Info(what+" of volume done", "volume", va.Volume, "files", files, "dataBytes", bytes, "took", took, "mbPerSec", mbPerSec(bytes, took))
		v.Files += files
		v.DataBytes += bytes
	}
	v.Took = time.Since(start)
	return v, nil
}

// emptyDir removes everything in dir but dir itself (a volume's mountpoint
// belongs to the runtime).
func emptyDir(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := removeContent(root); err == nil {
		return nil
	}
	// A read-only directory keeps its content from a worker that is not
	// root: make the directories writable and try again.
	_ = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = root.Chmod(p, 0o700)
		}
		return nil
	})
	if err := removeContent(root); err != nil {
		return fmt.Errorf("empty %s: %w", dir, err)
	}
	return nil
}

func removeContent(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
	}
	return nil
}

// RemoveBackup deletes the backup (at the end of retention) and the
// tenant's directory when no other backup is left in it. Nothing to remove
// is success.
func (a *Activities) RemoveBackup(ctx context.Context, ref BackupRef) error {
	if err := ref.validate(false); err != nil {
		return err
	}
	if ip := a.inPlace(ref.Runtime); ip != nil {
		return passOn(ip.ReleaseVolumes(ctx, ref.Tenant, ref.Owner), "release kept volumes of %s", ref.Tenant)
	}
	if err := a.archiving(); err != nil {
		return err
	}
	dir := a.location(ref.Tenant, ref.ID)
	if _, err := os.Lstat(dir); err == nil {
		unlock, err := a.lockBackup(ctx, dir, nil)
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		err = os.RemoveAll(dir)
		unlock()
		if err != nil {
			return fmt.Errorf("remove backup %s: %w", ref.ID, err)
		}
		a.log().Info("backup removed", "tenant", ref.Tenant, "backup", ref.ID, "location", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove backup %s: %w", ref.ID, err)
	}
	tenantDir := filepath.Dir(dir)
	if names, err := os.ReadDir(tenantDir); err == nil && len(names) == 0 {
		// A backup started meanwhile makes this fail: then the directory stays.
		_ = os.Remove(tenantDir)
	}
	return nil
}

// Location is the backup location as the worker's start-up check sees it.
type Location struct{ Config Config }

// Check reports whether the backup location exists and is writable, so a
// worker with a lost NFS mount says so before a tenant is decommissioned.
func (l Location) Check(ctx context.Context) error {
	if l.Config.Dir == "" {
		return nil // volumes kept in place only
	}
	fi, err := os.Stat(l.Config.Dir)
	if err != nil {
		return fmt.Errorf("backup location: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("backup location %s is not a directory", l.Config.Dir)
	}
	f, err := os.CreateTemp(l.Config.Dir, ".check-*")
	if err != nil {
		return fmt.Errorf("backup location is not writable: %w", err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("backup location: %w", err)
	}
	return nil
}
