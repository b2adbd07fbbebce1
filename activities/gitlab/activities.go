package gitlab

import (
	"context"
	"log/slog"
)

// Activities are the GitLab steps of a build workflow. Every exported
// method is registered as an activity; helpers that are not activities
// (Check, Archive) stay on Client.
type Activities struct {
	client *Client
	log    *slog.Logger
}

// NewActivities wraps c for registration with a worker.
func NewActivities(c *Client) *Activities {
	return &Activities{client: c, log: c.log}
}

// ResolveInput names a ref of a project: a branch, a tag, or a full or
// abbreviated SHA, in a project given by path ("group/app") or id.
type ResolveInput struct {
	Project string `json:"project"`
	Ref     string `json:"ref"`
}

// ResolveCommit pins a build to the commit in.Ref points to now, so that
// every later step (archive, statuses, image labels) sees the same tree
// even if the branch moves during the build. It only reads, so a retry
// is harmless.
func (a *Activities) ResolveCommit(ctx context.Context, in ResolveInput) (Commit, error) {
	c, err := a.client.ResolveCommit(ctx, in.Project, in.Ref)
	if err != nil {
		a.log.Warn("resolve GitLab commit failed", "project", in.Project, "ref", in.Ref, "error", err)
		return Commit{}, err // as is: a non-retryable error must stay outermost
	}
	a.log.Info("resolved GitLab commit", "project", c.Project, "projectID", c.ProjectID, "ref", in.Ref,
		"refType", c.RefType, "sha", c.SHA)
	return c, nil
}

// SetCommitStatus shows the build's progress on the commit in GitLab
// (pending, running, then success, failed or canceled), where developers
// look for it. Retries are safe: a status already in the requested state
// is left alone (see Client.SetCommitStatus).
func (a *Activities) SetCommitStatus(ctx context.Context, in StatusInput) error {
	if err := a.client.SetCommitStatus(ctx, in); err != nil {
		a.log.Warn("set GitLab commit status failed", "projectID", in.ProjectID, "sha", in.SHA, "name", in.Name,
			"state", in.State, "error", err)
		return err
	}
	a.log.Info("set GitLab commit status", "projectID", in.ProjectID, "sha", in.SHA, "name", in.Name, "state", in.State)
	return nil
}
