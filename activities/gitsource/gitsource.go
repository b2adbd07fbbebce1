// Package gitsource reads the commits Tenantflow builds from any git
// repository, besides GitLab's API: a remote go-git speaks (https, http,
// ssh, git) or a repository on the worker's disk. It resolves a branch,
// a tag or a SHA to a commit, and makes the commit's tree a tar.gz
// archive laid out as GitLab's are (one top directory), which the build
// activities read the same way.
//
// It is pure Go (go-git): no git binary is needed.
package gitsource

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"go.temporal.io/sdk/temporal"
)

// ErrUnknownRef is the failure type of a branch, tag or commit the
// repository does not have (the same name as GitLab's, so the API maps
// both alike).
const ErrUnknownRef = "UnknownRef"

// ErrUnreadable is the failure type of a repository that cannot be read
// at all (no such path, not a repository).
const ErrUnreadable = "RepositoryUnreadable"

// Commit is a resolved ref.
type Commit struct {
	SHA string
	// Ref is the branch or tag name, "" for a SHA; RefType says which:
	// branch, tag or commit.
	Ref, RefType string
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Local tells whether remote names a repository on this machine (a path,
// or a file:// URL) rather than a server.
func Local(remote string) bool {
	return filepath.IsAbs(remote) || strings.HasPrefix(remote, "file://")
}

// ResolveCommit resolves ref (a branch, a tag or a full SHA) in remote.
func ResolveCommit(ctx context.Context, remote, ref string) (Commit, error) {
	refs, err := listRefs(ctx, remote)
	if err != nil {
		return Commit{}, err
	}
	if sha, ok := refs["refs/heads/"+ref]; ok {
		return Commit{SHA: sha, Ref: ref, RefType: "branch"}, nil
	}
	if sha, ok := refs["refs/tags/"+ref]; ok {
		return Commit{SHA: sha, Ref: ref, RefType: "tag"}, nil
	}
	if fullSHA.MatchString(ref) {
		return Commit{SHA: ref, RefType: "commit"}, nil
	}
	return Commit{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("git repository %s has no branch, tag or commit %q", Redact(remote), ref), ErrUnknownRef, nil)
}

// ResolveRef resolves a branch or a tag by its kind.
func ResolveRef(ctx context.Context, remote, refType, name string) (Commit, error) {
	refs, err := listRefs(ctx, remote)
	if err != nil {
		return Commit{}, err
	}
	prefix := map[string]string{"branch": "refs/heads/", "tag": "refs/tags/"}[refType]
	if sha, ok := refs[prefix+name]; ok && prefix != "" {
		return Commit{SHA: sha, Ref: name, RefType: refType}, nil
	}
	return Commit{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("git repository %s has no %s %q", Redact(remote), refType, name), ErrUnknownRef, nil)
}

// listRefs maps each branch and tag to its commit (an annotated tag to the
// commit it names).
func listRefs(ctx context.Context, remote string) (map[string]string, error) {
	var list []*plumbing.Reference
	if Local(remote) {
		repo, err := openLocal(remote)
		if err != nil {
			return nil, err
		}
		iter, err := repo.References()
		if err != nil {
			return nil, err
		}
		_ = iter.ForEach(func(r *plumbing.Reference) error { list = append(list, peel(repo, r)); return nil })
	} else {
		rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{remote}})
		var err error
		if list, err = rem.ListContext(ctx, &git.ListOptions{PeelingOption: git.AppendPeeled}); err != nil {
			return nil, fmt.Errorf("list the refs of %s: %w", Redact(remote), err)
		}
	}
	out := map[string]string{}
	for _, r := range list {
		if r.Type() != plumbing.HashReference {
			continue
		}
		name := r.Name().String()
		if base, ok := strings.CutSuffix(name, "^{}"); ok {
			out[base] = r.Hash().String() // the peeled tag wins
			continue
		}
		if _, seen := out[name]; !seen {
			out[name] = r.Hash().String()
		}
	}
	return out, nil
}

// peel turns a local annotated tag into its commit.
func peel(repo *git.Repository, r *plumbing.Reference) *plumbing.Reference {
	if r.Type() != plumbing.HashReference || !r.Name().IsTag() {
		return r
	}
	if tag, err := repo.TagObject(r.Hash()); err == nil {
		if c, err := tag.Commit(); err == nil {
			return plumbing.NewHashReference(r.Name(), c.Hash)
		}
	}
	return r
}

func openLocal(remote string) (*git.Repository, error) {
	path := strings.TrimPrefix(remote, "file://")
	repo, err := git.PlainOpenWithOptions(path, &git.PlainOpenOptions{DetectDotGit: false})
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("git repository %s: %v", path, err), ErrUnreadable, err)
	}
	return repo, nil
}

// Archiver is Archive as the build activities take it.
type Archiver struct{}

// Archive is Archive.
func (Archiver) Archive(ctx context.Context, remote, sha string) (io.ReadCloser, error) {
	return Archive(ctx, remote, sha)
}

// Archive is the commit's tree as a tar.gz under one top directory.
// A remote is cloned into memory first (its objects only, no checkout).
func Archive(ctx context.Context, remote, sha string) (io.ReadCloser, error) {
	if !fullSHA.MatchString(sha) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("commit %q is not a full SHA", sha), ErrUnknownRef, nil)
	}
	var repo *git.Repository
	var err error
	if Local(remote) {
		repo, err = openLocal(remote)
	} else {
		repo, err = git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: remote, NoCheckout: true, Tags: git.AllTags})
		if err != nil {
			err = fmt.Errorf("clone %s: %w", Redact(remote), err)
		}
	}
	if err != nil {
		return nil, err
	}
	commit, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("git repository %s has no commit %s", Redact(remote), sha), ErrUnknownRef, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTarGz(ctx, tree, "src-"+sha[:12], pw)) }()
	return pr, nil
}

// writeTarGz writes tree under top as a tar.gz.
func writeTarGz(ctx context.Context, tree *object.Tree, top string, w io.Writer) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: top + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, entry, err := walker.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := writeEntry(tw, tree, top, name, entry); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeEntry(tw *tar.Writer, tree *object.Tree, top, name string, entry object.TreeEntry) error {
	path := top + "/" + name
	switch entry.Mode {
	case filemode.Dir:
		return tw.WriteHeader(&tar.Header{Name: path + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	case filemode.Submodule:
		return nil // a submodule's commit is in another repository
	}
	f, err := tree.File(name)
	if err != nil {
		return err
	}
	if entry.Mode == filemode.Symlink {
		target, err := f.Contents()
		if err != nil {
			return err
		}
		return tw.WriteHeader(&tar.Header{Name: path, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777})
	}
	mode := int64(0o644)
	if entry.Mode == filemode.Executable {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Name: path, Typeflag: tar.TypeReg, Mode: mode, Size: f.Size}); err != nil {
		return err
	}
	r, err := f.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(tw, r)
	return err
}

// Redact is remote without a password, for messages and logs.
func Redact(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || u.User == nil {
		return remote
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
