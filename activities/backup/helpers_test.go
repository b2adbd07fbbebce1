package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dirHost is a VolumeHost of plain directories: volumes live in
// <vols>/<tenant>/<volume>, scratch volumes in <scratch>/<tenant>/<name>.
type dirHost struct {
	mu      sync.Mutex
	vols    string
	scratch string
	made    []string // scratch directories ever made
}

func newHost(t *testing.T) *dirHost {
	return &dirHost{vols: t.TempDir(), scratch: t.TempDir()}
}

// volume makes (if needed) and returns a volume's directory.
func (h *dirHost) volume(t *testing.T, tenant, vol string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := filepath.Join(h.vols, tenant, vol)
	require.NoError(t, os.MkdirAll(d, 0o755))
	return d
}

// moveVolumes points the host at a fresh, empty set of volumes.
func (h *dirHost) moveVolumes(t *testing.T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vols = t.TempDir()
}

func (h *dirHost) VolumeDir(_ context.Context, tenant, _, vol string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := filepath.Join(h.vols, tenant, vol)
	if _, err := os.Stat(d); err != nil {
		return "", err
	}
	return d, nil
}

func (h *dirHost) ScratchVolume(_ context.Context, tenant, name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d := filepath.Join(h.scratch, tenant, name)
	if err := os.RemoveAll(d); err != nil {
		return "", err
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	h.made = append(h.made, d)
	return d, nil
}

func (h *dirHost) RemoveScratchVolume(_ context.Context, tenant, name string) error {
	return os.RemoveAll(filepath.Join(h.scratch, tenant, name))
}

// requireNoScratch asserts that every scratch volume made was removed.
func (h *dirHost) requireNoScratch(t *testing.T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.made, "no scratch volume was made")
	for _, d := range h.made {
		require.NoDirExists(t, d)
	}
}

func newActivities(t *testing.T, host VolumeHost) *Activities {
	a, err := New(Config{Dir: t.TempDir(), Retention: time.Hour}, host, nil)
	require.NoError(t, err)
	return a
}

// requireAppError asserts err is a non-retryable ApplicationError of type.
var asRoot = os.Geteuid() == 0

// makeTree fills dir with every kind of entry a volume may hold.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	write := func(p string, data []byte, mode os.FileMode) {
		full := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, data, mode))
		require.NoError(t, os.Chmod(full, mode))
	}
	big := make([]byte, 3*bufSize+12345) // spans several buffers
	for i := range big {
		big[i] = byte(i*7 + i/1000)
	}
	write("a/b/c.txt", []byte("hello\n"), 0o644)
	write("a/b/big.bin", big, 0o644)
	write("empty", nil, 0o644)
	write("secret", []byte("s3cret"), 0o600)
	write("bin/run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	require.NoError(t, os.Symlink("a/b/c.txt", filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "abs-link")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "emptydir"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "shared"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(dir, "shared"), 0o775|os.ModeSetgid|os.ModeSticky))
	write("shared/readonly", []byte("ro"), 0o444)
	if asRoot {
		require.NoError(t, os.Lchown(filepath.Join(dir, "secret"), 1234, 5678))
		require.NoError(t, os.Lchown(filepath.Join(dir, "link"), 4321, 8765))
		require.NoError(t, os.Lchown(filepath.Join(dir, "shared"), 1000, 1000))
		write("bin/suid", []byte("x"), 0o755)
		require.NoError(t, os.Chmod(filepath.Join(dir, "bin/suid"), 0o755|os.ModeSetuid))
	}
	// Times with nanoseconds, set deepest first so creating content does
	// not move them again.
	when := time.Date(2023, 4, 5, 6, 7, 8, 123456789, time.UTC)
	var paths []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		if fi, err := os.Lstat(paths[i]); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			require.NoError(t, os.Chtimes(paths[i], when, when.Add(time.Duration(i)*time.Second)))
		}
	}
	require.NoError(t, os.Chmod(dir, 0o750))
}

// tree describes every entry under dir in one comparable string each.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		uid, gid := owner(fi)
		desc := fmt.Sprintf("%s uid=%d gid=%d", fi.Mode(), uid, gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			sum := sha256.Sum256(data)
			desc += fmt.Sprintf(" size=%d sha=%s mtime=%s", fi.Size(), hex.EncodeToString(sum[:]), fi.ModTime().UTC().Format(time.RFC3339Nano))
		default:
			desc += " mtime=" + fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
		out[rel] = desc
		return nil
	}))
	return out
}

// listDir is the sorted file names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// withSuffix keeps the names ending in suffix.
func withSuffix(names []string, suffix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			out = append(out, n)
		}
	}
	return out
}

// flipReader flips the byte at offset at of the stream: a disk returning
// one bad byte.
type flipReader struct {
	r   io.ReadCloser
	pos int64
	at  int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.pos && f.at < f.pos+int64(n) {
		p[f.at-f.pos] ^= 0x40
	}
	f.pos += int64(n)
	return n, err
}

func (f *flipReader) Close() error { return f.r.Close() }
