package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite/harness"
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
			harness.RequireNonRetryable(t, err, ErrVerificationFailed)
			t.Log(err)
			host.requireNoScratch(t)

			vol := host.volume(t, tenant, "data")
			_, err = a.RestoreVolumes(ctx, ref)
			harness.RequireNonRetryable(t, err, ErrVerificationFailed)

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

// small is the manifest of a small volume and a valid archive of it.
func small(t testing.TB) (VolumeArchive, []byte) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	sum := sha256.Sum256([]byte("evil"))
	entries := []Entry{
		{Path: ".", Type: TypeDir, Mode: 0o755, ModTime: now},
		{Path: "a", Type: TypeDir, Mode: 0o755, ModTime: now},
		{Path: "a/f", Type: TypeFile, Mode: 0o644, Size: 4, SHA256: hex.EncodeToString(sum[:]), ModTime: now},
		{Path: "l", Type: TypeSymlink, Mode: 0o777, Target: "a/f", ModTime: now},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		require.NoError(t, tw.WriteHeader(header(e)))
		if e.Type == TypeFile {
			_, err := tw.Write([]byte("evil"))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return VolumeArchive{Volume: "data", Archive: "data.tar", ArchiveBytes: int64(buf.Len()), ArchiveSHA256: sha256Hex(buf.Bytes()),
		DataBytes: 4, Files: 1, Entries: entries}, buf.Bytes()
}

// claiming is an archive whose file a/f claims size bytes, followed by
// only data bytes of them.
func claiming(t testing.TB, size int64, data int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}))
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755}))
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "a/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}))
	_, err := tw.Write(bytes.Repeat([]byte("x"), data))
	require.NoError(t, err)
	if int64(data) == size {
		require.NoError(t, tw.Close())
	}
	return buf.Bytes()
}

// sparse is an archive whose a/f is a PAX (GNU 1.0) sparse file of
// realSize bytes holding "evil" and a hole: the tar reader expands it.
// Go's tar writer drops sparse records, so the extended header is made by
// hand.
func sparse(t testing.TB, realSize int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}))
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755}))
	require.NoError(t, tw.Flush())
	var pax []byte
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "a/f"}, {"GNU.sparse.realsize", strconv.FormatInt(realSize, 10)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		pax = append(pax, strconv.Itoa(n)+rec...)
	}
	// A ustar header for the records, retyped as a PAX extended header.
	var xb bytes.Buffer
	xw := tar.NewWriter(&xb)
	require.NoError(t, xw.WriteHeader(&tar.Header{Name: "PaxHeaders/f", Typeflag: tar.TypeReg, Size: int64(len(pax)), Format: tar.FormatUSTAR}))
	block := xb.Bytes()[:512]
	block[156] = tar.TypeXHeader
	copy(block[148:156], "        ")
	var chk int
	for _, b := range block {
		chk += int(b)
	}
	copy(block[148:156], fmt.Sprintf("%06o\x00 ", chk))
	buf.Write(block)
	buf.Write(pax)
	buf.Write(make([]byte, 511-(len(pax)+511)%512))
	// The sparse map (one region: "evil" at 0) in its own block, then the data.
	sparseMap := append([]byte("1\n0\n4\n"), make([]byte, 512-6)...)
	tw = tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "a/f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 512 + 4, Format: tar.FormatUSTAR}))
	_, err := tw.Write(append(sparseMap, "evil"...))
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// written is the total size of the regular files under dir.
func written(t testing.TB, dir string) int64 {
	var n int64
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, err := d.Info()
			if err == nil {
				n += fi.Size()
			}
		}
		return err
	}))
	return n
}

// A small tampered archive claiming a huge or sparse file is refused before
// its data is written: the archive's checksum is only known at its end.
func TestArchiveClaimingOtherSizesIsRefused(t *testing.T) {
	va, _ := small(t)
	// The sparse archive really is sparse for Go's tar reader.
	tr := tar.NewReader(bytes.NewReader(sparse(t, 64<<20)))
	for {
		hdr, err := tr.Next()
		require.NoError(t, err)
		if hdr.Name == "a/f" {
			require.EqualValues(t, 64<<20, hdr.Size)
			break
		}
	}
	for name, archive := range map[string][]byte{
		"10 GiB claimed, truncated": claiming(t, 10<<30, 2<<20),
		"3 MiB, complete":           claiming(t, 3<<20, 3<<20),
		"sparse 64 MiB":             sparse(t, 64<<20),
	} {
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			a := &Activities{}
			_, _, err := a.restoreInto(context.Background(), bytes.NewReader(archive), va, dst, &progress{}, false)
			harness.RequireNonRetryable(t, err, ErrVerificationFailed)
			require.ErrorContains(t, err, `"a/f"`)
			require.ErrorContains(t, err, "refused")
			require.LessOrEqual(t, written(t, dst), va.DataBytes)
		})
	}
}

// FuzzExtract feeds arbitrary bytes as the archive of a small volume:
// nothing panics, nothing is written outside the volume, and never more
// than the manifest's data.
func FuzzExtract(f *testing.F) {
	va, good := small(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(claiming(f, 10<<30, 64<<10))
	f.Add(claiming(f, 1<<20, 1<<20))
	f.Add(sparse(f, 1<<30))
	f.Add([]byte{})
	f.Add([]byte("not a tar archive"))
	f.Fuzz(func(t *testing.T, archive []byte) {
		base := t.TempDir()
		t.Cleanup(func() { _ = emptyDir(base) }) // read-only directories, as not root
		dst := filepath.Join(base, "data")
		require.NoError(t, os.Mkdir(dst, 0o700))
		a := &Activities{}
		_, _, err := a.restoreInto(context.Background(), bytes.NewReader(archive), va, dst, &progress{}, false)
		if bytes.Equal(archive, good) {
			require.NoError(t, err)
		}
		require.Equal(t, []string{"data"}, listDir(t, base), "written outside the volume")
		require.LessOrEqual(t, written(t, dst), va.DataBytes)
	})
}
