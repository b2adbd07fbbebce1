package gitsource

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

// testRepo is a repository on disk with two commits: v1 (an annotated
// tag) and main one commit later.
type testRepo struct {
	dir      string
	v1, main string
}

func newTestRepo(t *testing.T) testRepo {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	require.NoError(t, err)
	wt, err := repo.Worktree()
	require.NoError(t, err)
	write := func(name, data string, mode os.FileMode) {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(data), mode))
		require.NoError(t, os.Chmod(path, mode))
		_, err := wt.Add(name)
		require.NoError(t, err)
	}
	sig := &object.Signature{Name: "dev", Email: "dev@example.org", When: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	commit := func(msg string) string {
		h, err := wt.Commit(msg, &git.CommitOptions{Author: sig})
		require.NoError(t, err)
		return h.String()
	}
	write("Dockerfile", "FROM scratch\nENV V=1\n", 0o644)
	write("bin/app", "#!/bin/sh\necho v1\n", 0o755)
	write("etc/deep/conf.txt", "one\n", 0o644)
	require.NoError(t, os.Symlink("bin/app", filepath.Join(dir, "app")))
	_, err = wt.Add("app")
	require.NoError(t, err)
	v1 := commit("v1")
	_, err = repo.CreateTag("v1", mustHash(v1), &git.CreateTagOptions{Tagger: sig, Message: "release v1"})
	require.NoError(t, err)
	write("Dockerfile", "FROM scratch\nENV V=2\n", 0o644)
	main := commit("v2")
	head, err := repo.Head()
	require.NoError(t, err)
	require.Equal(t, "refs/heads/master", head.Name().String(), "go-git's default branch")
	return testRepo{dir: dir, v1: v1, main: main}
}

func TestResolve(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	for _, remote := range []string{r.dir, "file://" + r.dir} {
		c, err := ResolveCommit(ctx, remote, "master")
		require.NoError(t, err)
		assert.Equal(t, Commit{SHA: r.main, Ref: "master", RefType: "branch"}, c)
		c, err = ResolveCommit(ctx, remote, "v1")
		require.NoError(t, err)
		assert.Equal(t, Commit{SHA: r.v1, Ref: "v1", RefType: "tag"}, c, "the annotated tag's commit, not the tag object")
		c, err = ResolveCommit(ctx, remote, r.v1)
		require.NoError(t, err)
		assert.Equal(t, Commit{SHA: r.v1, RefType: "commit"}, c)
		c, err = ResolveRef(ctx, remote, "tag", "v1")
		require.NoError(t, err)
		assert.Equal(t, r.v1, c.SHA)
	}
	for _, bad := range []func() error{
		func() error { _, err := ResolveCommit(ctx, r.dir, "v3"); return err },
		func() error { _, err := ResolveRef(ctx, r.dir, "branch", "v1"); return err },
		func() error { _, err := ResolveRef(ctx, r.dir, "tag", "master"); return err },
	} {
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(bad(), &appErr))
		assert.Equal(t, ErrUnknownRef, appErr.Type())
	}
	_, err := ResolveCommit(ctx, filepath.Join(r.dir, "nope"), "master")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	assert.Equal(t, ErrUnreadable, appErr.Type())
}

// entry is one archive member as the test reads it.
type entry struct {
	mode int64
	kind byte
	data string
	link string
}

func readArchive(t *testing.T, rc io.ReadCloser) map[string]entry {
	t.Helper()
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		b, _ := io.ReadAll(tr)
		out[h.Name] = entry{mode: h.Mode, kind: h.Typeflag, data: string(b), link: h.Linkname}
	}
}

func TestArchiveIsTheCommitsTree(t *testing.T) {
	r := newTestRepo(t)
	rc, err := Archive(context.Background(), r.dir, r.v1)
	require.NoError(t, err)
	got := readArchive(t, rc)
	top := "src-" + r.v1[:12] + "/"
	assert.Equal(t, "FROM scratch\nENV V=1\n", got[top+"Dockerfile"].data, "the tag's content, not the branch's")
	assert.Equal(t, int64(0o755), got[top+"bin/app"].mode)
	assert.Equal(t, int64(0o644), got[top+"etc/deep/conf.txt"].mode)
	assert.Equal(t, byte(tar.TypeSymlink), got[top+"app"].kind)
	assert.Equal(t, "bin/app", got[top+"app"].link)
	assert.Equal(t, byte(tar.TypeDir), got[top+"etc/deep/"].kind)
	for name := range got {
		assert.Contains(t, name, top, "one top directory, as GitLab's archives")
	}

	rc, err = Archive(context.Background(), r.dir, r.main)
	require.NoError(t, err)
	assert.Equal(t, "FROM scratch\nENV V=2\n", readArchive(t, rc)["src-"+r.main[:12]+"/Dockerfile"].data)

	_, err = Archive(context.Background(), r.dir, "0123456789012345678901234567890123456789")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	assert.Equal(t, ErrUnknownRef, appErr.Type())
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "https://bot:xxxxx@git.example.org/a/b.git", Redact("https://bot:s3cret@git.example.org/a/b.git"))
	assert.Equal(t, "/srv/git/app", Redact("/srv/git/app"))
}

func mustHash(s string) plumbing.Hash { return plumbing.NewHash(s) }
