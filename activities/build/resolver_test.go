package build

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/activities/gitsource"
)

// gitlabResolver answers every ref with one commit, recording the asks.
type gitlabResolver struct{ asked []string }

func (g *gitlabResolver) ResolveCommit(_ context.Context, project, ref string) (gitlab.Commit, error) {
	g.asked = append(g.asked, project+"@"+ref)
	return gitlab.Commit{Project: project, ProjectID: 7, SHA: "from-gitlab", Ref: ref, RefType: "branch"}, nil
}

func (g *gitlabResolver) ResolveRef(_ context.Context, project, refType, name string) (gitlab.Commit, error) {
	g.asked = append(g.asked, project+"@"+refType+":"+name)
	return gitlab.Commit{Project: project, ProjectID: 7, SHA: "from-gitlab", Ref: name, RefType: refType}, nil
}

// gitRepo is a repository on disk with one commit on master, tagged v1.
func gitRepo(t *testing.T) (dir, sha string) {
	t.Helper()
	dir = t.TempDir()
	repo, err := git.PlainInit(dir, false)
	require.NoError(t, err)
	wt, err := repo.Worktree()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644))
	_, err = wt.Add("Dockerfile")
	require.NoError(t, err)
	h, err := wt.Commit("one", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.org", When: time.Now()}})
	require.NoError(t, err)
	_, err = repo.CreateTag("v1", h, nil)
	require.NoError(t, err)
	return dir, h.String()
}

func TestResolverAsksWhereTheProjectLives(t *testing.T) {
	dir, sha := gitRepo(t)
	gl := &gitlabResolver{}
	r := Resolver{GitLab: gl, Projects: Projects{
		"group/app": {Path: "group/app", Image: "tenants/app"},
		"demo/app":  {Path: "demo/app", Git: dir, Image: "builds/demo-app"},
	}}
	ctx := context.Background()

	c, err := r.ResolveCommit(ctx, "demo/app", "v1")
	require.NoError(t, err)
	assert.Equal(t, gitlab.Commit{Project: "demo/app", SHA: sha, Ref: "v1", RefType: "tag"}, c)
	c, err = r.ResolveRef(ctx, "demo/app", "branch", "master")
	require.NoError(t, err)
	assert.Equal(t, sha, c.SHA)
	assert.Empty(t, gl.asked, "GitLab is not asked about a git project")

	c, err = r.ResolveCommit(ctx, "group/app", "main")
	require.NoError(t, err)
	assert.Equal(t, "from-gitlab", c.SHA)
	assert.Equal(t, []string{"group/app@main"}, gl.asked)

	_, err = r.ResolveCommit(ctx, "demo/app", "v9")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	assert.Equal(t, gitlab.ErrUnknownRef, appErr.Type(), "the API maps it as GitLab's")

	_, err = r.ResolveCommit(ctx, "other/app", "main")
	require.True(t, errors.As(err, &appErr))
	assert.Equal(t, gitlab.ErrUnknownProject, appErr.Type())

	noGitLab := Resolver{Projects: r.Projects}
	_, err = noGitLab.ResolveCommit(ctx, "group/app", "main")
	assert.ErrorContains(t, err, "GitLab is not configured")
	_, err = noGitLab.ResolveCommit(ctx, "demo/app", "master")
	assert.NoError(t, err)
}

func TestProjectsTakeAGitRemote(t *testing.T) {
	ps, err := ParseProjects([]byte(`projects:
  - {path: demo/app, git: /srv/git/app, image: builds/demo-app}
  - {path: team/api, git: "https://git.example.org/team/api.git", image: builds/api}
  - {path: group/app, image: tenants/app}
`))
	require.NoError(t, err)
	assert.Equal(t, "/srv/git/app", ps["demo/app"].Git)
	assert.True(t, ps.NeedGitLab())
	delete(ps, "group/app")
	assert.False(t, ps.NeedGitLab())

	example, err := LoadProjects("../../deploy/projects.example.yaml")
	require.NoError(t, err)
	assert.Equal(t, "https://git.example.org/team/api.git", example["team/api"].Git)

	for _, bad := range []string{"relative/path", "ftp://x/y", "https://"} {
		_, err := ParseProjects([]byte(`projects: [{path: demo/app, git: "` + bad + `", image: builds/demo-app}]`))
		assert.ErrorContains(t, err, "git ", bad)
	}
}

// A build reads a git project's commit from its git source, a GitLab
// project's from GitLab; a source the worker lacks is a permanent failure.
func TestArchiveComesFromTheProjectsSource(t *testing.T) {
	a := &Activities{}
	_, err := a.archive(context.Background(), BuildInput{Project: "demo/app", Git: "/srv/git/app", SHA: "abc"})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	assert.Equal(t, ErrNoSource, appErr.Type())
	assert.True(t, appErr.NonRetryable())

	dir, sha := gitRepo(t)
	a.Git = gitsource.Archiver{}
	rc, err := a.archive(context.Background(), BuildInput{Project: "demo/app", Git: dir, SHA: sha})
	require.NoError(t, err)
	rc.Close()
	_, err = a.archive(context.Background(), BuildInput{Project: "group/app", ProjectID: 7, SHA: sha})
	require.True(t, errors.As(err, &appErr))
	assert.Equal(t, ErrNoSource, appErr.Type(), "a GitLab project on a worker without GitLab")
}
