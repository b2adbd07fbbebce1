package backup

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

const tenant = "acme"

func backupInput(id string, vols ...string) BackupInput {
	return BackupInput{Tenant: tenant, Owner: "run-1", ID: id, Volumes: vols}
}

func refOf(b Backup) BackupRef {
	return BackupRef{Tenant: tenant, Owner: "run-1", ID: b.ID, ManifestSHA256: b.ManifestSHA256}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	require.NoError(t, os.WriteFile(filepath.Join(host.volume(t, tenant, "logs"), "app.log"), []byte("line\n"), 0o640))
	want := map[string]map[string]string{
		"data": tree(t, filepath.Join(host.vols, tenant, "data")),
		"logs": tree(t, filepath.Join(host.vols, tenant, "logs")),
	}

	b, err := a.BackupVolumes(ctx, backupInput("20240101-1", "data", "logs"))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(a.Config.Dir, tenant, "20240101-1"), b.Location)
	require.Len(t, b.Volumes, 2)
	require.Equal(t, "data.tar", b.Volumes[0].Archive)
	wantFiles := 7 // 6 in data (+1 setuid file as root), 1 in logs
	if asRoot {
		wantFiles++
	}
	require.Equal(t, wantFiles, b.Files)
	manifest, err := os.ReadFile(filepath.Join(b.Location, manifestName))
	require.NoError(t, err)
	require.Equal(t, sha256Hex(manifest), b.ManifestSHA256)
	for _, v := range b.Volumes {
		fi, err := os.Stat(filepath.Join(b.Location, v.Archive))
		require.NoError(t, err)
		require.Equal(t, v.ArchiveBytes, fi.Size())
		require.FileExists(t, filepath.Join(b.Location, v.Volume+".entries.json"))
	}
	require.Empty(t, withSuffix(listDir(t, b.Location), ".partial"))
	require.Empty(t, withSuffix(listDir(t, b.Location), ".tmp"))
	if sha, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sha, "-c", "--quiet", sumsName)
		cmd.Dir = b.Location
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "sha256sum -c: %s", out)
	}
	if tarCmd, err := exec.LookPath("tar"); err == nil {
		out, err := exec.Command(tarCmd, "-tvf", filepath.Join(b.Location, "data.tar")).CombinedOutput()
		require.NoError(t, err, "GNU tar reads the archive: %s", out)
		require.Contains(t, string(out), "a/b/big.bin")
	}

	v, err := a.VerifyBackup(ctx, refOf(b))
	require.NoError(t, err)
	require.Equal(t, b.Files, v.Files)
	require.Equal(t, b.DataBytes, v.DataBytes)
	host.requireNoScratch(t)

	// Restore into other (empty) volumes and compare the trees.
	host.moveVolumes(t)
	host.volume(t, tenant, "data")
	host.volume(t, tenant, "logs")
	r, err := a.RestoreVolumes(ctx, refOf(b))
	require.NoError(t, err)
	require.Equal(t, b.Files, r.Files)
	for vol, w := range want {
		require.Equal(t, w, tree(t, filepath.Join(host.vols, tenant, vol)), "volume %s", vol)
	}
}

func TestHeartbeatReportsProgress(t *testing.T) {
	a := &Activities{}
	beats := make(chan string, 100)
	a.Heartbeat = func(_ context.Context, details ...any) { beats <- details[0].(string) }
	p, stop := a.track(context.Background(), "backup x")
	p.stage("volume data", 200<<20)
	p.add(120 << 20)
	select {
	case msg := <-beats:
		require.Equal(t, "volume data: 120/200 MB", msg)
	case <-time.After(2 * time.Second):
		t.Fatal("no heartbeat")
	}
	stop()
}

func TestBackupIsIdempotent(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	host.volume(t, tenant, "cache")

	in := backupInput("b1", "data", "cache")
	first, err := a.BackupVolumes(ctx, in)
	require.NoError(t, err)
	second, err := a.BackupVolumes(ctx, in)
	require.NoError(t, err)
	require.Equal(t, first, second)
	names := listDir(t, first.Location)
	require.Equal(t, []string{"cache.tar", "data.tar"}, withSuffix(names, ".tar"))
	require.Empty(t, withSuffix(names, ".partial"))

	_, err = a.BackupVolumes(ctx, backupInput("b1", "data"))
	harness.RequireNonRetryable(t, err, ErrInvalidInput)
}

// aged sets a file's mtime an hour back, so a rewrite would show.
func aged(t *testing.T, path string) time.Time {
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.NoError(t, os.Chtimes(path, old, old))
	return old
}

func mtime(t *testing.T, path string) time.Time {
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.ModTime()
}

func TestResumeAfterCrash(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	require.NoError(t, os.WriteFile(filepath.Join(host.volume(t, tenant, "logs"), "app.log"), []byte(strings.Repeat("log\n", 1000)), 0o644))

	// An attempt that completed "data" and crashed while writing "logs".
	done, err := a.BackupVolumes(ctx, backupInput("r1", "data"))
	require.NoError(t, err)
	dir := done.Location
	require.NoError(t, os.Remove(filepath.Join(dir, manifestName)))
	require.NoError(t, os.Remove(filepath.Join(dir, sumsName)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "logs.tar.partial"), []byte(strings.Repeat("garbage", 10000)), 0o600))
	dataTar := filepath.Join(dir, "data.tar")
	old := aged(t, dataTar)

	b, err := a.BackupVolumes(ctx, backupInput("r1", "data", "logs"))
	require.NoError(t, err)
	require.Equal(t, old, mtime(t, dataTar), "the complete archive was reused")
	require.Equal(t, done.Volumes[0], b.Volumes[0])
	names := listDir(t, dir)
	require.Equal(t, []string{"data.tar", "logs.tar"}, withSuffix(names, ".tar"))
	require.Empty(t, withSuffix(names, ".partial"))
	_, err = a.VerifyBackup(ctx, refOf(b))
	require.NoError(t, err)
}

func TestResumeWithoutManifest(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	host.volume(t, tenant, "cache")

	first, err := a.BackupVolumes(ctx, backupInput("m1", "data", "cache"))
	require.NoError(t, err)
	// Crash after both volumes, before the manifest.
	require.NoError(t, os.Remove(filepath.Join(first.Location, manifestName)))
	olds := map[string]time.Time{}
	for _, v := range first.Volumes {
		olds[v.Archive] = aged(t, filepath.Join(first.Location, v.Archive))
	}

	b, err := a.BackupVolumes(ctx, backupInput("m1", "data", "cache"))
	require.NoError(t, err)
	for name, old := range olds {
		require.Equal(t, old, mtime(t, filepath.Join(first.Location, name)), name)
	}
	require.Equal(t, first.Volumes, b.Volumes)
	_, err = a.VerifyBackup(ctx, refOf(b))
	require.NoError(t, err)
}

// A stale entries file next to an archive of another size is not trusted.
func TestTruncatedArchiveIsRewritten(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	first, err := a.BackupVolumes(ctx, backupInput("t1", "data"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(first.Location, manifestName)))
	require.NoError(t, os.Truncate(filepath.Join(first.Location, "data.tar"), 1000))

	b, err := a.BackupVolumes(ctx, backupInput("t1", "data"))
	require.NoError(t, err)
	require.Equal(t, first.Volumes, b.Volumes)
	_, err = a.VerifyBackup(ctx, refOf(b))
	require.NoError(t, err)
}

// dataOffset is where a file's data starts in a tar archive.
func dataOffset(t *testing.T, archive, name string) (int64, int64) {
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	cr := &countReader{r: f}
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		require.NoError(t, err, "%s not in %s", name, archive)
		if hdr.Name == name {
			return cr.n, hdr.Size
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestVerifyDetectsACorruptArchive(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	b, err := a.BackupVolumes(ctx, backupInput("c1", "data"))
	require.NoError(t, err)

	archive := filepath.Join(b.Location, "data.tar")
	off, size := dataOffset(t, archive, "a/b/big.bin")
	a.Open = func(name string) (io.ReadCloser, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		return &flipReader{r: f, at: off + size/2}, nil
	}
	_, err = a.VerifyBackup(ctx, refOf(b))
	appErr := harness.RequireNonRetryable(t, err, ErrVerificationFailed)
	require.Contains(t, appErr.Error(), "a/b/big.bin")
	require.Contains(t, appErr.Error(), "volume data")
	host.requireNoScratch(t)

	// The archive on disk is fine: a good disk verifies.
	a.Open = nil
	_, err = a.VerifyBackup(ctx, refOf(b))
	require.NoError(t, err)
}

func TestVerifyDetectsAChangedManifest(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	b, err := a.BackupVolumes(ctx, backupInput("c2", "data"))
	require.NoError(t, err)

	path := filepath.Join(b.Location, manifestName)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), `"mode": 384`, `"mode": 420`, 1)), 0o600))
	_, err = a.VerifyBackup(ctx, refOf(b))
	appErr := harness.RequireNonRetryable(t, err, ErrVerificationFailed)
	require.Contains(t, appErr.Error(), "manifest.json changed")
	_, err = a.RestoreVolumes(ctx, refOf(b))
	harness.RequireNonRetryable(t, err, ErrVerificationFailed)

	require.NoError(t, os.Remove(path))
	_, err = a.VerifyBackup(ctx, refOf(b))
	harness.RequireNonRetryable(t, err, ErrBackupNotFound)
}

// A file of the archive that is not what the manifest says is caught even
// when the archive's checksum was forged to match.
func TestVerifyComparesMetadata(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	b, err := a.BackupVolumes(ctx, backupInput("c3", "data"))
	require.NoError(t, err)

	m := readManifest(t, b.Location)
	for i, e := range m.Volumes[0].Entries {
		if e.Path == "secret" {
			m.Volumes[0].Entries[i].Mode = 0o640
		}
	}
	ref := writeManifest(t, b.Location, m)
	_, err = a.VerifyBackup(ctx, ref)
	appErr := harness.RequireNonRetryable(t, err, ErrVerificationFailed)
	require.Contains(t, appErr.Error(), "secret: mode 0600 restored, 0640 backed up")
}

func TestRestoreReplacesTheVolume(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	src := host.volume(t, tenant, "data")
	makeTree(t, src)
	want := tree(t, src)
	b, err := a.BackupVolumes(ctx, backupInput("rs1", "data"))
	require.NoError(t, err)

	// The tenant kept working: new files, changed and removed ones.
	require.NoError(t, os.WriteFile(filepath.Join(src, "new.txt"), []byte("new"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a/b/c.txt"), []byte("changed"), 0o644))
	require.NoError(t, os.RemoveAll(filepath.Join(src, "bin")))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "emptydir/sub/deeper"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(src, "emptydir/sub"), 0o500))
	require.NoError(t, os.Chmod(src, 0o700))

	_, err = a.RestoreVolumes(ctx, refOf(b))
	require.NoError(t, err)
	require.Equal(t, want, tree(t, src))
	// A retry restores again.
	_, err = a.RestoreVolumes(ctx, refOf(b))
	require.NoError(t, err)
	require.Equal(t, want, tree(t, src))
}

func TestRemoveBackup(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	makeTree(t, host.volume(t, tenant, "data"))
	b1, err := a.BackupVolumes(ctx, backupInput("x1", "data"))
	require.NoError(t, err)
	b2, err := a.BackupVolumes(ctx, backupInput("x2", "data"))
	require.NoError(t, err)

	ref := BackupRef{Tenant: tenant, ID: b1.ID}
	require.NoError(t, a.RemoveBackup(ctx, ref))
	require.NoDirExists(t, b1.Location)
	require.DirExists(t, b2.Location, "another backup of the tenant stays")
	require.NoError(t, a.RemoveBackup(ctx, ref), "removing twice is fine")

	require.NoError(t, a.RemoveBackup(ctx, BackupRef{Tenant: tenant, ID: b2.ID}))
	require.NoDirExists(t, filepath.Join(a.Config.Dir, tenant), "the empty tenant directory goes too")
	require.NoError(t, a.RemoveBackup(ctx, BackupRef{Tenant: tenant, ID: b2.ID}))
	require.DirExists(t, a.Config.Dir)
}

func TestUnsupportedFileType(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	a := newActivities(t, host)
	dir := host.volume(t, tenant, "data")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "run"), 0o755))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "run/pipe"), 0o600))
	_, err := a.BackupVolumes(ctx, backupInput("u1", "data"))
	appErr := harness.RequireNonRetryable(t, err, ErrUnsupportedFileType)
	require.Contains(t, appErr.Error(), "run/pipe")
	require.NoFileExists(t, filepath.Join(a.Config.Dir, tenant, "u1", manifestName))
}

func TestInvalidInput(t *testing.T) {
	ctx := context.Background()
	a := newActivities(t, newHost(t))
	for _, in := range []BackupInput{
		{Tenant: "Acme", ID: "x", Volumes: []string{"data"}},
		{Tenant: "../etc", ID: "x"},
		{Tenant: tenant, ID: "../x"},
		{Tenant: tenant, ID: ".x"},
		{Tenant: tenant, ID: "a/b"},
		{Tenant: tenant, ID: ""},
		{Tenant: tenant, ID: "x", Volumes: []string{"data", "data"}},
		{Tenant: tenant, ID: "x", Volumes: []string{"../data"}},
	} {
		_, err := a.BackupVolumes(ctx, in)
		harness.RequireNonRetryable(t, err, ErrInvalidInput)
	}
	_, err := a.VerifyBackup(ctx, BackupRef{Tenant: tenant, ID: "x"})
	harness.RequireNonRetryable(t, err, ErrInvalidInput)
	require.Error(t, a.RemoveBackup(ctx, BackupRef{Tenant: tenant, ID: ".."}))
	require.Empty(t, listDir(t, a.Config.Dir))
}

func TestCheck(t *testing.T) {
	a := newActivities(t, newHost(t))
	require.NoError(t, Location{Config: a.Config}.Check(context.Background()))
	require.Empty(t, listDir(t, a.Config.Dir))
	require.NoError(t, os.RemoveAll(a.Config.Dir))
	require.Error(t, Location{Config: a.Config}.Check(context.Background()))

	// A location that is gone (NFS not mounted) is not made again.
	_, err := a.BackupVolumes(context.Background(), backupInput("l1"))
	require.ErrorContains(t, err, "mounted")
	require.NoDirExists(t, a.Config.Dir)
}

func TestLockExcludesAConcurrentAttempt(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lock(context.Background(), dir, lockWait)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = lock(ctx, dir, lockWait)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	unlock()
	unlock2, err := lock(context.Background(), dir, lockWait)
	require.NoError(t, err)
	unlock2()
}

func TestNonUTF8NameIsUnsupported(t *testing.T) {
	host := newHost(t)
	a := newActivities(t, host)
	dir := host.volume(t, tenant, "data")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "caf\xe9"), []byte("latin-1"), 0o644))
	_, err := a.BackupVolumes(context.Background(), backupInput("n1", "data"))
	harness.RequireNonRetryable(t, err, ErrUnsupportedFileType)
}

// A file that changes size while it is read fails the attempt, retryably:
// the next attempt reads a quiet volume.
func TestFileChangingWhileReadIsRetryable(t *testing.T) {
	for name, change := range map[string]func(path string) error{
		"grows": func(path string) error {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("more"))
			return err
		},
		"shrinks": func(path string) error { return os.Truncate(path, 10) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "log")
			require.NoError(t, os.WriteFile(path, make([]byte, bufSize+100), 0o644))
			root, err := os.OpenRoot(dir)
			require.NoError(t, err)
			defer root.Close()
			entries, infos, _, err := scan(root, "data")
			require.NoError(t, err)
			a := &Activities{}
			changed := false
			send := func(c chunk) error {
				if c.buf != nil {
					a.putBuf(c.buf)
				}
				if !changed {
					changed = true
					return change(path)
				}
				return nil
			}
			err = a.readFile(root, "data", &entries[1], infos[1], send)
			require.ErrorContains(t, err, "log "+map[string]string{"grows": "grew", "shrinks": "shrank"}[name])
			var appErr *temporal.ApplicationError
			require.False(t, errors.As(err, &appErr), "retryable")
		})
	}
}
