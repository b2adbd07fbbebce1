package restic

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Snapshot tags and names.
const (
	// snapshotHost is every snapshot's host: a part's parent is the same
	// part of the previous backup, whichever worker took it.
	snapshotHost = "tenantflow"
	tagBackup    = "backup:"
	tagManifest  = "manifest"
	manifestFile = "manifest.json"
	// resticTime is the layout of restic backup --time (the child runs
	// in UTC).
	resticTime = "2006-01-02 15:04:05"
	// maxManifest bounds a manifest read back.
	maxManifest = 1 << 20
)

func dumpFile(svc string) string { return svc + ".dump" }

// TakeBackup backs the tenant up under in.ID: each dumped service's
// dump, streamed from the service's own tool into restic, then each
// volume's directory, then the manifest that makes the backup complete.
// A retry returns the complete backup when its manifest exists, and
// otherwise forgets what earlier attempts left and takes every part
// again (deduplication makes that cheap).
func (a *Activities) TakeBackup(ctx context.Context, in BackupInput) (Backup, error) {
	if err := a.enabled(); err != nil {
		return Backup{}, err
	}
	if err := in.validate(); err != nil {
		return Backup{}, err
	}
	log := a.log().With("tenant", in.Tenant, "backup", in.ID)
	p, stop := a.track(ctx, "backup "+in.ID)
	defer stop()
	release, err := a.slot(ctx, p)
	if err != nil {
		return Backup{}, err
	}
	defer release()
	unlock, err := a.lockTenant(ctx, in.Tenant, p)
	if err != nil {
		return Backup{}, err
	}
	defer unlock()
	repo, err := a.ensureLocal(ctx, in.Tenant)
	if err != nil {
		return Backup{}, err
	}
	if err := a.unlockStale(ctx, repo); err != nil {
		return Backup{}, err
	}
	snaps, err := a.earlierAttempt(ctx, repo, in)
	if err != nil {
		return Backup{}, err
	}
	if m, ok := manifestOf(snaps); ok {
		b, err := a.readManifest(ctx, repo, m, in.Tenant, in.ID)
		if err != nil {
			return Backup{}, err
		}
		if err := sameParts(b, in); err != nil {
			return Backup{}, err
		}
		log.Info("backup complete already", "manifest", b.Manifest)
		return b, nil
	}
	if err := a.forget(ctx, repo, snapshotIDs(snaps)); err != nil {
		return Backup{}, err
	}
	if len(snaps) > 0 {
		log.Info("parts of an earlier attempt forgotten", "snapshots", len(snaps))
	}

	start := time.Now()
	b := Backup{ID: in.ID, Tenant: in.Tenant, Reason: in.Reason, CreatedAt: start.UTC().Truncate(time.Second)}
	for _, svc := range in.Dumps {
		part, err := a.dumpPart(ctx, repo, in, b.CreatedAt, svc, p)
		if err != nil {
			log.Warn("dump failed", "service", svc.Name, "err", err)
			return Backup{}, err
		}
		b.Parts = append(b.Parts, part)
	}
	resume, err := a.quiesce(ctx, in, p)
	if err != nil {
		return Backup{}, err
	}
	for _, vol := range in.Volumes {
		part, err := a.volumePart(ctx, repo, in, b.CreatedAt, vol, p)
		if err != nil {
			log.Warn("volume backup failed", "volume", vol, "err", err)
			resume()
			return Backup{}, err
		}
		b.Parts = append(b.Parts, part)
	}
	resume()
	if err := a.fullIDs(ctx, repo, in.ID, b.Parts); err != nil {
		return Backup{}, err
	}
	for _, part := range b.Parts {
		b.Bytes += part.Bytes
		b.Added += part.Added
	}
	p.stage("backup " + in.ID + ": manifest")
	if b.RepositoryBytes, err = a.repositoryBytes(ctx, repo); err != nil {
		return Backup{}, err
	}
	b.Took = time.Since(start)
	data, err := json.Marshal(b)
	if err != nil {
		return Backup{}, fmt.Errorf("backup %s: manifest: %w", in.ID, err)
	}
	// Last: from here on the backup is complete.
	sum, err := a.backupStdin(ctx, repo, backupArgs(in.ID, b.CreatedAt, tagManifest, "--stdin", "--stdin-filename", manifestFile), p,
		func(w io.Writer) error { _, err := w.Write(data); return err })
	if err != nil {
		return Backup{}, err
	}
	manifest := []Part{{Snapshot: sum.SnapshotID}}
	if err := a.fullIDs(ctx, repo, in.ID, manifest); err != nil {
		return Backup{}, err
	}
	b.Manifest = manifest[0].Snapshot
	log.Info("backup complete", "manifest", b.Manifest, "parts", len(b.Parts), "bytes", b.Bytes,
		"added", b.Added, "repositoryBytes", b.RepositoryBytes, "took", b.Took)
	return b, nil
}

// backupArgs are restic backup's arguments for one snapshot of backup id.
func backupArgs(id string, at time.Time, tag string, rest ...string) []string {
	args := []string{"backup", "--json", "--host", snapshotHost, "--time", at.UTC().Format(resticTime),
		"--tag", tagBackup + id, "--tag", tag}
	return append(args, rest...)
}

// dumpPart streams the service's dump (its own tool, run in the running
// service) into restic backup --stdin, hashing and counting it on the
// way. When the dump fails, restic is killed before it sees the end of
// its input: otherwise it would store the truncated dump as a snapshot.
func (a *Activities) dumpPart(ctx context.Context, repo repository, in BackupInput, at time.Time, svc spec.Service, p *progress) (Part, error) {
	p.stage("backup " + in.ID + ": dump of " + svc.Name)
	start := time.Now()
	h := sha256.New()
	var n int64
	args := backupArgs(in.ID, at, PartDump+":"+svc.Name, "--stdin", "--stdin-filename", dumpFile(svc.Name))
	sum, err := a.backupStdin(ctx, repo, args, p, func(w io.Writer) error {
		counted := writerFunc(func(b []byte) (int, error) {
			h.Write(b)
			n += int64(len(b))
			p.add(len(b))
			return len(b), nil
		})
		return a.Host.ExecInService(ctx, in.Tenant, in.Owner, svc, svc.Backup.Dump, nil, io.MultiWriter(w, counted))
	})
	if err != nil {
		return Part{}, passOn(err, "dump of %s", svc.Name)
	}
	if sum.TotalBytesProcessed != n {
		return Part{}, fmt.Errorf("dump of %s: restic stored %d bytes of the %d the dump wrote", svc.Name, sum.TotalBytesProcessed, n)
	}
	part := Part{Kind: PartDump, Name: svc.Name, Snapshot: sum.SnapshotID, Files: 1, Bytes: n, Added: sum.DataAdded,
		SHA256: hex.EncodeToString(h.Sum(nil))}
	a.log().Info("dump backed up", "tenant", in.Tenant, "backup", in.ID, "service", svc.Name,
		"bytes", part.Bytes, "added", part.Added, "sha256", part.SHA256, "took", time.Since(start))
	return part, nil
}

// volumePart backs the volume's directory up in place: its content is the
// snapshot's root.
func (a *Activities) volumePart(ctx context.Context, repo repository, in BackupInput, at time.Time, vol string, p *progress) (Part, error) {
	p.stage("backup " + in.ID + ": volume " + vol)
	start := time.Now()
	dir, err := a.Host.VolumeDir(ctx, in.Tenant, in.Owner, vol)
	if err != nil {
		return Part{}, passOn(err, "volume %s", vol)
	}
	// restic refuses an empty snapshot ("snapshot is empty"), and a new
	// tenant's volumes often are: the manifest records the part empty.
	// A volume emptied between here and restic fails the attempt, and
	// the retry records it empty.
	if entries, err := os.ReadDir(dir); err != nil {
		return Part{}, fmt.Errorf("volume %s: read %s: %w", vol, dir, err)
	} else if len(entries) == 0 {
		a.log().Info("volume backed up empty", "tenant", in.Tenant, "backup", in.ID, "volume", vol)
		return Part{Kind: PartVolume, Name: vol}, nil
	}
	var sum backupMessage
	_, err = a.run(ctx, command{repo: repo, dir: dir, args: backupArgs(in.ID, at, PartVolume+":"+vol, "."), onLine: onBackupLine(p, &sum)})
	if re, ok := asResticError(err); ok && re.exitCode() == 3 {
		// The snapshot exists but lacks what restic could not read: the
		// retry forgets it with the other parts and takes it again. A
		// file that vanished mid-backup is read on the next attempt; what
		// is still unreadable on the third is not a race (restic also
		// says this when the parent snapshot's trees do not load from a
		// damaged repository).
		msg := fmt.Sprintf("volume %s: restic could not read every file of %s", vol, dir)
		if attempt(ctx) >= unreadableAttempts {
			return Part{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s, %d times: %v", msg, unreadableAttempts, err), ErrUnreadable, err)
		}
		return Part{}, fmt.Errorf("%s: %w", msg, err)
	}
	if err != nil {
		return Part{}, err
	}
	if sum.SnapshotID == "" {
		return Part{}, fmt.Errorf("volume %s: restic backup on %s reported no snapshot", vol, repo.name)
	}
	part := Part{Kind: PartVolume, Name: vol, Snapshot: sum.SnapshotID, Files: sum.TotalFilesProcessed,
		Bytes: sum.TotalBytesProcessed, Added: sum.DataAdded}
	a.log().Info("volume backed up", "tenant", in.Tenant, "backup", in.ID, "volume", vol, "files", part.Files,
		"bytes", part.Bytes, "added", part.Added, "took", time.Since(start))
	return part, nil
}

// backupMessage is a line of restic backup --json: a status or the
// summary.
type backupMessage struct {
	MessageType         string  `json:"message_type"`
	PercentDone         float64 `json:"percent_done"`
	TotalBytes          int64   `json:"total_bytes"`
	BytesDone           int64   `json:"bytes_done"`
	DataAdded           int64   `json:"data_added"`
	TotalFilesProcessed int     `json:"total_files_processed"`
	TotalBytesProcessed int64   `json:"total_bytes_processed"`
	SnapshotID          string  `json:"snapshot_id"`
}

// onBackupLine reports status lines as progress and keeps the summary.
func onBackupLine(p *progress, sum *backupMessage) func([]byte) {
	return func(line []byte) {
		var m backupMessage
		if json.Unmarshal(line, &m) != nil {
			return
		}
		switch m.MessageType {
		case "status":
			if m.TotalBytes > 0 {
				p.set(m.BytesDone, m.TotalBytes, m.PercentDone)
			}
		case "summary":
			*sum = m
		}
	}
}

// backupStdin runs restic backup with args, its standard input written by
// feed. When feed fails, restic is killed before its input ends, so it
// records nothing; a restic that stopped by itself is the error then.
func (a *Activities) backupStdin(ctx context.Context, repo repository, args []string, p *progress, feed func(io.Writer) error) (backupMessage, error) {
	var sum backupMessage
	r, stdin, err := a.start(ctx, command{repo: repo, args: args, onLine: onBackupLine(p, &sum)}, true)
	if err != nil {
		return sum, err
	}
	if ferr := feed(stdin); ferr != nil {
		r.kill()
		_, rerr := r.wait()
		if rerr != nil && !exitSignal(rerr) {
			return sum, rerr // restic ended first; the feed then failed to write
		}
		return sum, ferr
	}
	if err := stdin.Close(); err != nil {
		r.kill()
		_, _ = r.wait()
		return sum, fmt.Errorf("restic backup on %s: close its input: %w", repo.name, err)
	}
	if _, err := r.wait(); err != nil {
		return sum, err
	}
	if sum.SnapshotID == "" {
		return sum, fmt.Errorf("restic backup on %s reported no snapshot", repo.name)
	}
	return sum, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// fullIDs replaces the parts' short snapshot ids (all restic 0.14's
// backup --json reports) by the full ones: from the names in the local
// repository's snapshots/ directory (the repository format's layout),
// else from restic snapshots.
func (a *Activities) fullIDs(ctx context.Context, repo repository, id string, parts []Part) error {
	names, _ := os.ReadDir(filepath.Join(repo.location, "snapshots"))
	missing := false
	for i := range parts {
		if parts[i].empty() {
			continue
		}
		var found []string
		for _, n := range names {
			if strings.HasPrefix(n.Name(), parts[i].Snapshot) {
				found = append(found, n.Name())
			}
		}
		if len(found) == 1 && len(found[0]) == 64 {
			parts[i].Snapshot = found[0]
		} else {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	snaps, err := a.snapshots(ctx, repo, tagBackup+id)
	if err != nil {
		return err
	}
	for i := range parts {
		if len(parts[i].Snapshot) == 64 || parts[i].empty() {
			continue
		}
		j := slices.IndexFunc(snaps, func(s snapshot) bool { return s.ShortID == parts[i].Snapshot })
		if j < 0 {
			return fmt.Errorf("backup %s: snapshot %s is not in %s", id, parts[i].Snapshot, repo.name)
		}
		parts[i].Snapshot = snaps[j].ID
	}
	return nil
}

// forget forgets the snapshots (their data stays until a prune).
func (a *Activities) forget(ctx context.Context, repo repository, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := a.run(ctx, command{repo: repo, args: append([]string{"forget"}, ids...)})
	return err
}

func snapshotIDs(snaps []snapshot) []string {
	ids := make([]string, 0, len(snaps))
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids
}

// manifestOf is the manifest among a backup's snapshots.
func manifestOf(snaps []snapshot) (snapshot, bool) {
	for _, s := range snaps {
		if s.has(tagManifest) {
			return s, true
		}
	}
	return snapshot{}, false
}

// readManifest reads a backup's manifest from its snapshot.
func (a *Activities) readManifest(ctx context.Context, repo repository, m snapshot, tenant, id string) (Backup, error) {
	var buf bytes.Buffer
	lw := &limitWriter{w: &buf, n: maxManifest}
	if _, err := a.run(ctx, command{repo: repo, args: []string{"dump", m.ID, "/" + manifestFile}, stdout: lw}); err != nil {
		return Backup{}, err
	}
	var b Backup
	if err := json.Unmarshal(buf.Bytes(), &b); err != nil {
		return Backup{}, fmt.Errorf("backup %s: the manifest in snapshot %s of %s is unreadable: %w", id, m.ShortID, repo.name, err)
	}
	if b.Tenant != tenant || (id != "" && b.ID != id) || m.tag(tagBackup) != b.ID {
		msg := fmt.Sprintf("snapshot %s of %s tagged %s holds the manifest of backup %s of tenant %s", m.ShortID, repo.name, tagBackup+m.tag(tagBackup), b.ID, b.Tenant)
		return Backup{}, temporal.NewNonRetryableApplicationError(msg, ErrBackupNotFound, nil)
	}
	b.Manifest = m.ID
	return b, nil
}

// limitWriter fails once more than n bytes were written.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, fmt.Errorf("more than %d bytes", maxManifest)
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// sameParts checks that a complete backup found under the input's id is
// the one the input asks for.
func sameParts(b Backup, in BackupInput) error {
	var have, want []string
	for _, p := range b.Parts {
		have = append(have, p.Kind+":"+p.Name)
	}
	for _, s := range in.Dumps {
		want = append(want, PartDump+":"+s.Name)
	}
	for _, v := range in.Volumes {
		want = append(want, PartVolume+":"+v)
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return invalid("backup %s of tenant %s exists already with parts %v, not %v", in.ID, in.Tenant, have, want)
	}
	return nil
}

// manifestReaders is how many manifests ListBackups reads at once: each
// read is a restic process that spends most of its time deriving the key.
const manifestReaders = 2

// ListBackups returns the tenant's complete backups, oldest first, as
// their manifests describe them; none when the tenant has no repository.
// It reads without the tenant's lock: during a prune (which locks the
// repository exclusively) it fails, and is retried.
func (a *Activities) ListBackups(ctx context.Context, tenant string) ([]Backup, error) {
	if err := a.enabled(); err != nil {
		return nil, err
	}
	if err := validTenant(tenant); err != nil {
		return nil, err
	}
	repo, ok, err := a.existingLocal(tenant)
	if err != nil || !ok {
		return []Backup{}, err
	}
	_, stop := a.track(ctx, "list the backups of "+tenant)
	defer stop()
	snaps, err := a.snapshots(ctx, repo, tagManifest)
	if err != nil {
		return nil, err
	}
	out := make([]Backup, len(snaps))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(manifestReaders)
	for i, s := range snaps {
		g.Go(func() error {
			b, err := a.readManifest(gctx, repo, s, tenant, "")
			out[i] = b
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y Backup) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.ID, y.ID))
	})
	return out, nil
}

// unreadableAttempts is how many attempts of a backup may find files
// restic cannot read before the backup fails for good.
const unreadableAttempts = 3

// attempt is the activity's attempt (1 for a direct call).
func attempt(ctx context.Context) int32 {
	if !activity.IsActivity(ctx) {
		return 1
	}
	return activity.GetInfo(ctx).Attempt
}

// quiesceTimeout bounds each of the quiesce hook's commands.
const quiesceTimeout = time.Minute

// quiesce runs the template's pause command in its service before the
// volumes are read; resume runs the resume command, once, on a context of
// its own (the activity's may be over), and logs what it could not do.
func (a *Activities) quiesce(ctx context.Context, in BackupInput, p *progress) (resume func(), err error) {
	q := in.Quiesce
	if q == nil || len(in.Volumes) == 0 {
		return func() {}, nil
	}
	p.stage("backup " + in.ID + ": quiesce " + q.Service.Name)
	pctx, cancel := context.WithTimeout(ctx, quiesceTimeout)
	defer cancel()
	if err := a.Host.ExecInService(pctx, in.Tenant, in.Owner, q.Service, q.Pause, nil, io.Discard); err != nil {
		// A pause that failed half-way is undone as well.
		a.resume(ctx, in)
		return nil, passOn(err, "quiesce %s", q.Service.Name)
	}
	var once sync.Once
	return func() { once.Do(func() { a.resume(ctx, in) }) }, nil
}

func (a *Activities) resume(ctx context.Context, in BackupInput) {
	q := in.Quiesce
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), quiesceTimeout)
	defer cancel()
	if err := a.Host.ExecInService(rctx, in.Tenant, in.Owner, q.Service, q.Resume, nil, io.Discard); err != nil {
		a.log().Error("resume after the backup failed: the service may still hold its writes", "tenant", in.Tenant,
			"backup", in.ID, "service", q.Service.Name, "err", err)
	}
}

// earlierAttempt lists the snapshots that earlier attempts of the backup
// made. The first attempt leaves a mark before its first snapshot
// (<Repos>/.started/<tenant>/<id>), so a backup never begun needs no
// restic run to know that there is nothing: a run spends half a second
// of CPU deriving the key, and a fleet backs up every night.
func (a *Activities) earlierAttempt(ctx context.Context, repo repository, in BackupInput) ([]snapshot, error) {
	dir := filepath.Join(a.Config.Repos, startedDir, in.Tenant)
	mark := filepath.Join(dir, in.ID)
	if _, err := os.Stat(mark); err == nil {
		return a.snapshots(ctx, repo, tagBackup+in.ID)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup %s: %w", in.ID, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup %s: %w", in.ID, err)
	}
	f, err := os.OpenFile(mark, os.O_CREATE|os.O_WRONLY, 0o600)
	if err == nil {
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("backup %s: mark its first attempt: %w", in.ID, err)
	}
	return nil, nil
}

// startedDir holds the marks of begun backups, per tenant, beside the
// repositories (a tenant's name is a DNS label: no dot).
const startedDir = ".started"
