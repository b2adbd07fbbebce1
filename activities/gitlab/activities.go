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
