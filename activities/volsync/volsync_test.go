package volsync

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

// dirs is a host's volumes: tenant/volume → directory.
type dirs map[string]string

func (d dirs) VolumeDir(_ context.Context, tenant, owner, vol string) (string, error) {
	if owner == "someone-else" {
		return "", temporal.NewNonRetryableApplicationError("volume "+vol+" belongs to another run", "OwnerMismatch", nil)
	}
	dir, ok := d[tenant+"/"+vol]
	if !ok {
		return "", temporal.NewNonRetryableApplicationError("volume "+vol+" of tenant "+tenant+" does not exist", "VolumeNotAccessible", nil)
	}
	return dir, nil
}

// pair is a source host and a receiving host serving the sync.
type pair struct {
	src, dst string
	acts     *Activities
	url      string
}

func newPair(t *testing.T) *pair {
	t.Helper()
	src, dst := t.TempDir(), t.TempDir()
	srv := httptest.NewServer((&Server{Volumes: dirs{"acme/data": dst}, Token: "s3cret"}).Handler())
	t.Cleanup(srv.Close)
	return &pair{src: src, dst: dst, url: srv.URL, acts: &Activities{Volumes: dirs{"acme/data": src}, Token: "s3cret"}}
}

func (p *pair) push(t *testing.T, final bool) Pushed {
	t.Helper()
	out, err := p.acts.PushVolumes(context.Background(), PushInput{Tenant: "acme", Owner: "run-1", Volumes: []string{"data"}, To: p.url, Final: final})
	require.NoError(t, err)
	return out
}

func write(t *testing.T, path, content string, age time.Duration) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o640))
	at := time.Now().Add(-age)
	require.NoError(t, os.Chtimes(path, at, at))
}

func requireSameTree(t *testing.T, src, dst string) {
	t.Helper()
	want, err := Manifest(src)
	require.NoError(t, err)
	have, err := Manifest(dst)
	require.NoError(t, err)
	require.Equal(t, want, have)
	for _, e := range want {
		if e.Type == TypeFile {
			a, err := os.ReadFile(filepath.Join(src, e.Path))
			require.NoError(t, err)
			b, err := os.ReadFile(filepath.Join(dst, e.Path))
			require.NoError(t, err)
			require.Equal(t, a, b, e.Path)
		}
	}
}

// A live pre-copy then a final pass leave an identical tree: content,
// modes, owners, times, links; the final pass sends only what changed,
// deletes what the source lost and replaces a directory by a file.
func TestAPreCopyThenAFinalPassLeaveAnIdenticalCopy(t *testing.T) {
	p := newPair(t)
	old := time.Hour
	write(t, filepath.Join(p.src, "pg/base/1"), "rows", old)
	write(t, filepath.Join(p.src, "pg/base/2"), "more rows", old)
	write(t, filepath.Join(p.src, "uploads/a.txt"), "hello", old)
	write(t, filepath.Join(p.src, "gone.txt"), "bye", old)
	write(t, filepath.Join(p.src, "becomes/file"), "x", old)
	require.NoError(t, os.Chmod(filepath.Join(p.src, "pg"), 0o700))
	require.NoError(t, os.Chmod(filepath.Join(p.src, "pg/base/1"), 0o600|os.ModeSetgid))
	require.NoError(t, os.Symlink("uploads/a.txt", filepath.Join(p.src, "latest")))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Lchown(filepath.Join(p.src, "pg"), 999, 999))
		require.NoError(t, os.Lchown(filepath.Join(p.src, "pg/base/2"), 999, 998))
	}
	// A stale temporary file of an interrupted pass on the receiver.
	write(t, filepath.Join(p.dst, tmpPrefix+"x"), "half", old)

	pre := p.push(t, false)
	require.Equal(t, 5, pre.Files)
	require.Equal(t, 1, pre.Deleted, "the stale temporary file goes")
	requireSameTree(t, p.src, p.dst)

	// While the tenant is stopped: one file changes, one goes, a directory
	// becomes a file, one file is new.
	write(t, filepath.Join(p.src, "pg/base/2"), "rows after the pre-copy", old/2)
	require.NoError(t, os.Remove(filepath.Join(p.src, "gone.txt")))
	require.NoError(t, os.RemoveAll(filepath.Join(p.src, "becomes")))
	write(t, filepath.Join(p.src, "becomes"), "now a file", old)
	write(t, filepath.Join(p.src, "uploads/b.txt"), "new", old)

	final := p.push(t, true)
	require.True(t, final.Verified)
	require.Equal(t, 3, final.Files, "only what changed travels")
	require.Equal(t, int64(len("rows after the pre-copy")+len("now a file")+len("new")), final.Bytes)
	require.Equal(t, 2, final.Deleted, "gone.txt and becomes/file")
	requireSameTree(t, p.src, p.dst)

	again := p.push(t, true)
	require.Zero(t, again.Files+again.Deleted, "nothing left to send")
}

// A file modified in the last seconds is copied unsettled by a live pass
// (its time on the receiver is the epoch) and sent again by the next.
func TestARecentlyModifiedFileIsSentAgain(t *testing.T) {
	p := newPair(t)
	write(t, filepath.Join(p.src, "hot"), "v1", 0)
	write(t, filepath.Join(p.src, "cold"), "c", time.Hour)
	p.push(t, false)
	fi, err := os.Stat(filepath.Join(p.dst, "hot"))
	require.NoError(t, err)
	require.Equal(t, int64(0), fi.ModTime().Unix(), "unsettled: the epoch")

	// Rewritten within the same clock tick: same size, same time.
	src := filepath.Join(p.src, "hot")
	before, err := os.Stat(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(src, []byte("v2"), 0o640))
	require.NoError(t, os.Chtimes(src, before.ModTime(), before.ModTime()))

	final := p.push(t, true)
	require.Equal(t, 1, final.Files, "the hot file, not the cold one")
	got, err := os.ReadFile(filepath.Join(p.dst, "hot"))
	require.NoError(t, err)
	require.Equal(t, "v2", string(got))
}

// A final pass fails when the receiver's copy does not end up equal.
func TestAFinalPassVerifiesTheCopy(t *testing.T) {
	p := newPair(t)
	write(t, filepath.Join(p.src, "f"), "data", time.Hour)
	p.push(t, true)
	u, err := url.Parse(p.url)
	require.NoError(t, err)
	u = u.JoinPath("volsync/v1/tenants/acme/volumes/data")
	require.NoError(t, p.acts.verify(context.Background(), u, p.src))
	write(t, filepath.Join(p.dst, "f"), "dAta", time.Hour)
	write(t, filepath.Join(p.dst, "intruder"), "x", time.Hour)
	err = p.acts.verify(context.Background(), u, p.src)
	require.ErrorContains(t, err, "1 entries differ ([f]), 1 extra ([intruder])")
}

// Hosts that do not share the token, and a volume of another run, are
// refused for good; nothing is written.
func TestRefusalsArePermanent(t *testing.T) {
	p := newPair(t)
	write(t, filepath.Join(p.src, "f"), "data", time.Hour)
	for _, tc := range []struct {
		name, owner, kind string
		acts              *Activities
	}{
		{"wrong token", "run-1", ErrUnauthorized, &Activities{Volumes: p.acts.Volumes, Token: "guess"}},
		{"another run's volume", "someone-else", "OwnerMismatch", p.acts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.acts.PushVolumes(context.Background(), PushInput{Tenant: "acme", Owner: tc.owner, Volumes: []string{"data"}, To: p.url})
			var appErr *temporal.ApplicationError
			require.True(t, errors.As(err, &appErr), "%v", err)
			require.Equal(t, tc.kind, appErr.Type())
			require.True(t, appErr.NonRetryable())
		})
	}
	_, err := os.Stat(filepath.Join(p.dst, "f"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = (&Activities{Volumes: p.acts.Volumes}).PushVolumes(context.Background(), PushInput{Tenant: "acme", Volumes: []string{"data"}, To: p.url})
	require.ErrorContains(t, err, EnvToken)
}

// An archive never writes outside the volume: not by a path, not through
// a link it made.
func TestAnArchiveStaysInsideTheVolume(t *testing.T) {
	outside := t.TempDir()
	for name, entries := range map[string][]tar.Header{
		"parent path":  {{Name: "../escaped", Typeflag: tar.TypeReg, Size: 1}},
		"through link": {{Name: "l", Typeflag: tar.TypeSymlink, Linkname: outside}, {Name: "l/escaped", Typeflag: tar.TypeReg, Size: 1}},
		"absolute":     {{Name: outside + "/escaped", Typeflag: tar.TypeReg, Size: 1}},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range entries {
				h.Mode = 0o644
				require.NoError(t, tw.WriteHeader(&h))
				if h.Size > 0 {
					_, err := tw.Write([]byte("x"))
					require.NoError(t, err)
				}
			}
			require.NoError(t, tw.Close())
			_, err := apply(t.TempDir(), &buf)
			require.Error(t, err)
			_, err = os.Stat(filepath.Join(outside, "escaped"))
			require.ErrorIs(t, err, os.ErrNotExist)
		})
	}
}
