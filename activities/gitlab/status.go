package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Commit status states GitLab accepts (StatusInput.State).
const (
	StatePending  = "pending"
	StateRunning  = "running"
	StateSuccess  = "success"
	StateFailed   = "failed"
	StateCanceled = "canceled"
	StateSkipped  = "skipped"
)

var states = []string{StatePending, StateRunning, StateSuccess, StateFailed, StateCanceled, StateSkipped}

// defaultStatusName is the name GitLab gives a status posted without one.
const defaultStatusName = "default"

// StatusInput is a build's state to show on a commit. Name tells
// Tenantflow's statuses apart from other systems' (e.g. "tenantflow/build");
// Ref is the branch or tag the status is filed under (Commit.Ref; empty
// lets GitLab pick the first branch holding the commit).
type StatusInput struct {
	ProjectID   int64  `json:"projectID"`
	SHA         string `json:"sha"`
	State       string `json:"state"`
	Name        string `json:"name"`
	Ref         string `json:"ref"`
	TargetURL   string `json:"targetURL"`
	Description string `json:"description"`
}

// SetCommitStatus shows in.State on the commit, idempotently. GitLab's
// statuses follow a state machine: a pending or running status of the
// same name is updated, a finished one is never touched again and posting
// creates a new one. So a retry must not repost what is already there:
// when the latest status of that name (and ref) already has the state,
// target URL and description asked for, nothing is posted; and when
// GitLab refuses a transition ("Cannot transition status via :run from
// :running") the status is read back and the refusal accepted if it is
// in the requested state. Any other refusal is a non-retryable
// GitLabRejected error.
func (c *Client) SetCommitStatus(ctx context.Context, in StatusInput) error {
	if in.ProjectID <= 0 || !fullSHA.MatchString(in.SHA) || !slices.Contains(states, in.State) {
		return permanent(ErrInvalidInput, nil, "set commit status: need a project id, a full commit SHA and a state among %s "+
			"(got %d, %q, %q)", strings.Join(states, ", "), in.ProjectID, in.SHA, in.State)
	}
	name := in.Name
	if name == "" {
		name = defaultStatusName
	}
	what := fmt.Sprintf("set %s status %q on commit %s of project %d", in.State, name, in.SHA, in.ProjectID)

	latest, err := c.latestStatus(ctx, in.ProjectID, in.SHA, name, in.Ref)
	if err != nil {
		return c.statusError(what, err)
	}
	if latest != nil && latest.Status == in.State && latest.TargetURL == in.TargetURL && latest.Description == in.Description {
		c.log.Debug("commit status already set", "projectID", in.ProjectID, "sha", in.SHA, "name", name, "state", in.State, "id", latest.ID)
		return nil
	}

	opts := &gl.SetCommitStatusOptions{State: gl.BuildStateValue(in.State), Name: gl.Ptr(name)}
	if in.Ref != "" {
		opts.Ref = gl.Ptr(in.Ref)
	}
	if in.TargetURL != "" {
		opts.TargetURL = gl.Ptr(in.TargetURL)
	}
	if in.Description != "" {
		opts.Description = gl.Ptr(in.Description)
	}
	opt, cancel := c.call(ctx)
	_, _, err = c.api.Commits.SetCommitStatus(in.ProjectID, in.SHA, opts, opt)
	cancel()
	if err == nil {
		return nil
	}
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "Cannot transition status") {
		return c.statusError(what, err)
	}
	// Refused as a transition: fine if an earlier attempt (or another
	// worker) already got the status where it should be.
	latest, lerr := c.latestStatus(ctx, in.ProjectID, in.SHA, name, in.Ref)
	if lerr != nil {
		return c.statusError(what+" (reading it back)", lerr)
	}
	if latest != nil && latest.Status == in.State {
		c.log.Info("commit status was already in the requested state", "projectID", in.ProjectID, "sha", in.SHA,
			"name", name, "state", in.State, "id", latest.ID)
		return nil
	}
	current := "none"
	if latest != nil {
		current = latest.Status
	}
	return permanent(ErrRejected, err, "%s: GitLab refused the transition from %s: %v", what, current, err)
}

// latestStatus is the newest status of that name (and ref, when given)
// on the commit, nil when there is none. GitLab lists the latest status
// of each name by default, oldest id first.
func (c *Client) latestStatus(ctx context.Context, projectID int64, sha, name, ref string) (*gl.CommitStatus, error) {
	lo := &gl.GetCommitStatusesOptions{Name: gl.Ptr(name), ListOptions: gl.ListOptions{PerPage: 100}}
	if ref != "" {
		lo.Ref = gl.Ptr(ref)
	}
	var latest *gl.CommitStatus
	for page := int64(1); ; page++ {
		lo.Page = page
		opt, cancel := c.call(ctx)
		list, resp, err := c.api.Commits.GetCommitStatuses(projectID, sha, lo, opt)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, st := range list {
			if st != nil && (latest == nil || st.ID > latest.ID) {
				latest = st
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return latest, nil
		}
	}
}

// statusError classifies a failed status call; 404 means the project or
// commit is unknown, or no branch holds the commit and no ref was given.
func (c *Client) statusError(what string, err error) error {
	if statusOf(err) == http.StatusNotFound {
		return permanent(ErrUnknownRef, err, "%s: GitLab has no such project or commit "+
			"(or, without a ref, no branch holding it)", what)
	}
	return classify(what, err)
}
