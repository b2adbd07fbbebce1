package build

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/activities/gitsource"
)

// CommitResolver turns a ref into a commit: the GitLab client, or
// Resolver for projects with a git remote too. ResolveCommit takes any
// branch, tag or SHA; ResolveRef only the kind of ref a webhook event
// names.
type CommitResolver interface {
	ResolveCommit(ctx context.Context, project, ref string) (gitlab.Commit, error)
	ResolveRef(ctx context.Context, project, refType, name string) (gitlab.Commit, error)
}

// Resolver resolves the configured projects' refs where each project
// lives: in its git remote (Project.Git), else in GitLab. It is what the
// API asks before it starts a build.
type Resolver struct {
	Projects Projects
	GitLab   CommitResolver // the GitLab client; nil: no GitLab configured
}

// ErrUnknownProject is the failure type of a project that is not
// configured (GitLab's name for it, so the API maps both alike).
const ErrUnknownProject = gitlab.ErrUnknownProject

// ResolveCommit resolves a branch, a tag or a SHA of project.
func (r Resolver) ResolveCommit(ctx context.Context, project, ref string) (gitlab.Commit, error) {
	p, err := r.project(project)
	if err != nil {
		return gitlab.Commit{}, err
	}
	if p.Git == "" {
		return r.GitLab.ResolveCommit(ctx, project, ref)
	}
	c, err := gitsource.ResolveCommit(ctx, p.Git, ref)
	return commitOf(project, c), err
}

// ResolveRef resolves a branch or a tag of project by its kind.
func (r Resolver) ResolveRef(ctx context.Context, project, refType, name string) (gitlab.Commit, error) {
	p, err := r.project(project)
	if err != nil {
		return gitlab.Commit{}, err
	}
	if p.Git == "" {
		return r.GitLab.ResolveRef(ctx, project, refType, name)
	}
	c, err := gitsource.ResolveRef(ctx, p.Git, refType, name)
	return commitOf(project, c), err
}

func (r Resolver) project(name string) (*Project, error) {
	p := r.Projects[name]
	switch {
	case p == nil:
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("project %q is not configured", name), ErrUnknownProject, nil)
	case p.Git == "" && r.GitLab == nil:
		return nil, errors.New("project " + name + " is GitLab's, and GitLab is not configured")
	}
	return p, nil
}

func commitOf(project string, c gitsource.Commit) gitlab.Commit {
	return gitlab.Commit{Project: project, SHA: c.SHA, Ref: c.Ref, RefType: c.RefType}
}
