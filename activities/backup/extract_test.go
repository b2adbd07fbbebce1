package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite"
)

func readManifest(t *testing.T, dir string) Manifest {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	require.NoError(t, err)
	var m Manifest
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// writeManifest replaces the manifest and returns the ref that accepts it.
func writeManifest(t *testing.T, dir string, m Manifest) BackupRef {
	data, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, manifestName), data, 0o600))
	return BackupRef{Tenant: m.Tenant, ID: m.ID, ManifestSHA256: sha256Hex(data)}
}

// hostile writes a backup whose archive holds hdrs (file data "evil") and
// whose manifest lists them, with the archive's true checksum: only the
// extraction itself stands between it and the host.
func hostile(t *testing.T, a *Activities, id string, hdrs ...*tar.Header) BackupRef {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now().UTC().Truncate(time.Second)
	entries := []Entry{{Path: ".", Type: TypeDir, Mode: 0o755, ModTime: now}}
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: now}))
	for _, h := range hdrs {
		h.ModTime, h.Mode = now, 0o644
		e := Entry{Path: filepath.Clean(h.Name), Mode: 0o644, ModTime: now}
		switch h.Typeflag {
		case tar.TypeSymlink:
			e.Type, e.Target, e.Mode, h.Mode = TypeSymlink, h.Linkname, 0o777, 0o777
		case tar.TypeDir:
			e.Type, e.Mode, h.Mode = TypeDir, 0o755, 0o755
		default:
			h.Typeflag, h.Size = tar.TypeReg, 4
			sum := sha256.Sum256([]byte("evil"))
			e.Type, e.Size, e.SHA256 = TypeFile, 4, hex.EncodeToString(sum[:])
		}
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte("evil"))
			require.NoError(t, err)
		}
		entries = append(entries, e)
	}
	require.NoError(t, tw.Close())
	dir := filepath.Join(a.Config.Dir, tenant, id)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.tar"), buf.Bytes(), 0o600))
	return writeManifest(t, dir, Manifest{Version: ManifestVersion, Tenant: tenant, ID: id, CreatedAt: now,
		Volumes: []VolumeArchive{{Volume: "data", Archive: "data.tar", ArchiveBytes: int64(buf.Len()),
			ArchiveSHA256: sha256Hex(buf.Bytes()), Files: 1, DataBytes: 4, Entries: entries}}})
}

func TestHostileArchivesAreRefused(t *testing.T) {
	ctx := context.Background()
	for name, hdrs := range map[string][]*tar.Header{
		"dot-dot":      {{Name: "../evil"}},
		"deep dot-dot": {{Name: "a/", Typeflag: tar.TypeDir}, {Name: "a/../../evil"}},
		"absolute":     {{Name: "/OUTSIDE/evil"}},
		"symlink then write": {
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/OUTSIDE"},
			{Name: "link/evil"},
		},
		"relative symlink then write": {
			{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../OUTSIDE"},
			{Name: "up/evil"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			host := newHost(t)
			a := newActivities(t, host)
			outside := t.TempDir()
			for _, h := range hdrs {
				h.Name = replaceOutside(h.Name, outside)
				h.Linkname = replaceOutside(h.Linkname, outside)
			}
			ref := hostile(t, a, "h1", hdrs...)
			_, err := a.VerifyBackup(ctx, ref)
			testsuite.RequireNonRetryable(t, err, ErrVerificationFailed)
			t.Log(err)
			host.requireNoScratch(t)

			vol := host.volume(t, tenant, "data")
			_, err = a.RestoreVolumes(ctx, ref)
			testsuite.RequireNonRetryable(t, err, ErrVerificationFailed)

			require.Empty(t, listDir(t, outside), "nothing written outside")
			require.NoFileExists(t, filepath.Join(filepath.Dir(vol), "evil"))
			require.NoFileExists(t, filepath.Join(host.scratch, tenant, "evil"))
			require.NoFileExists(t, filepath.Join(a.Config.Dir, tenant, "evil"))
		})
	}
}

func replaceOutside(s, outside string) string {
	return strings.ReplaceAll(s, "/OUTSIDE", outside)
}
