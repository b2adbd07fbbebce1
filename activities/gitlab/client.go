// Package gitlab lets build workflows turn a commit of a GitLab project
// into an image: resolve what a branch, tag or SHA points to now (so a
// build is pinned to one commit however the branch moves), download that
// commit's tree as a tar.gz stream, and report the build on the commit as
// an external commit status that developers see next to their pipelines.
//
// It talks to GitLab's REST API v4 through gitlab.com/gitlab-org/api/client-go
// with the library's own retries turned off: Temporal's retry policy is
// the one place retries are decided, and a call fails fast with an error
// that says whether retrying can help.
package gitlab

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Client is a GitLab API client for builds. It holds the helpers that are
// not activities (Check, Archive); Activities wraps the rest.
type Client struct {
	api     *gl.Client
	log     *slog.Logger
	timeout time.Duration
}

// Kinds of ref a commit was resolved from (Commit.RefType).
const (
	RefBranch = "branch"
	RefTag    = "tag"
	RefCommit = "commit"
)

// Commit is the commit a ref pointed to when it was resolved, which the
// rest of a build works on so that a branch moving meanwhile changes
// nothing.
type Commit struct {
	// Project is the canonical path ("group/app"), ProjectID its id: later
	// calls use the id, which survives renames and transfers.
	Project   string `json:"project"`
	ProjectID int64  `json:"projectID"`
	SHA       string `json:"sha"`
	// Ref is the branch or tag name resolved; empty when the ref was a
	// SHA, so that it can be handed to SetCommitStatus as is (GitLab then
	// files the status under the first branch holding the commit).
	Ref     string `json:"ref"`
	RefType string `json:"refType"`
	Title   string `json:"title"`
	WebURL  string `json:"webURL"`
}

// NewClient validates cfg and prepares the client. It does no network
// I/O: the worker calls Check to learn whether GitLab answers.
func NewClient(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Bounds the wait for an answer, archives included, without cutting
	// a long archive download short as http.Client.Timeout would.
	tr.ResponseHeaderTimeout = cfg.Timeout
	if cfg.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in, for test instances
	}
	api, err := gl.NewClient(cfg.Token,
		gl.WithBaseURL(cfg.URL),
		gl.WithHTTPClient(&http.Client{Transport: tr}),
		gl.WithoutRetries(),
		gl.WithUserAgent("tenantflow"),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envURL, err)
	}
	return &Client{api: api, log: log, timeout: cfg.Timeout}, nil
}

// call returns the request option that runs one API call under ctx,
// bounded by the configured timeout.
func (c *Client) call(ctx context.Context) (gl.RequestOptionFunc, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	return gl.WithContext(ctx), cancel
}

// Check makes one cheap authenticated request (GET /version) proving that
// GitLab answers at the configured URL and accepts the token.
func (c *Client) Check(ctx context.Context) error {
	opt, cancel := c.call(ctx)
	defer cancel()
	v, _, err := c.api.Version.GetVersion(opt)
	if err != nil {
		return classify("check GitLab", err)
	}
	c.log.Debug("GitLab answers", "version", v.Version)
	return nil
}

var shaLike = regexp.MustCompile(`^[0-9a-fA-F]{4,40}$`)

// ResolveCommit finds the commit ref names in project (a path such as
// "group/app", or a numeric id): a branch first, then a tag, then a full
// or abbreviated SHA, the order in which a name is most likely meant.
// An unknown project or ref is a non-retryable UnknownProject or
// UnknownRef error; a refused token is GitLabUnauthorized.
func (c *Client) ResolveCommit(ctx context.Context, project, ref string) (Commit, error) {
	if project == "" || ref == "" {
		return Commit{}, permanent(ErrInvalidInput, nil, "resolve commit: project and ref are required (got project %q, ref %q)", project, ref)
	}
	p, err := c.project(ctx, project)
	if err != nil {
		return Commit{}, err
	}
	kinds := []string{RefBranch, RefTag}
	if shaLike.MatchString(ref) {
		kinds = append(kinds, RefCommit)
	}
	for _, kind := range kinds {
		if out, found, err := c.lookup(ctx, p, kind, ref); found || err != nil {
			return out, err
		}
	}
	return Commit{}, permanent(ErrUnknownRef, nil, "GitLab project %s has no branch, tag or commit %q", p.PathWithNamespace, ref)
}

// ResolveRef finds the commit a branch or a tag (refType RefBranch or
// RefTag) of project points to now, and nothing else: a push or tag event
// names the kind of its ref, and a tag must not be taken for a branch of
// the same name. Errors are those of ResolveCommit.
func (c *Client) ResolveRef(ctx context.Context, project, refType, name string) (Commit, error) {
	if project == "" || name == "" || (refType != RefBranch && refType != RefTag) {
		return Commit{}, permanent(ErrInvalidInput, nil, "resolve ref: need a project, a ref name and the ref type %s or %s (got %q, %q, %q)",
			RefBranch, RefTag, project, name, refType)
	}
	p, err := c.project(ctx, project)
	if err != nil {
		return Commit{}, err
	}
	out, found, err := c.lookup(ctx, p, refType, name)
	if err == nil && !found {
		err = permanent(ErrUnknownRef, nil, "GitLab project %s has no %s %q", p.PathWithNamespace, refType, name)
	}
	return out, err
}

// project gets a project by path or id.
func (c *Client) project(ctx context.Context, project string) (*gl.Project, error) {
	opt, cancel := c.call(ctx)
	defer cancel()
	p, _, err := c.api.Projects.GetProject(project, nil, opt)
	switch {
	case statusOf(err) == http.StatusNotFound:
		return nil, permanent(ErrUnknownProject, err, "GitLab project %q not found, or not visible to the token", project)
	case err != nil:
		return nil, classify("get GitLab project "+project, err)
	}
	return p, nil
}

// lookup resolves name as one kind of ref of p; found is false when GitLab
// has no such ref (404).
func (c *Client) lookup(ctx context.Context, p *gl.Project, refType, name string) (out Commit, found bool, err error) {
	opt, cancel := c.call(ctx)
	defer cancel()
	var cm *gl.Commit
	switch refType {
	case RefBranch:
		var b *gl.Branch
		if b, _, err = c.api.Branches.GetBranch(p.ID, name, opt); err == nil {
			cm = b.Commit
		}
	case RefTag:
		var t *gl.Tag
		if t, _, err = c.api.Tags.GetTag(p.ID, name, opt); err == nil {
			cm = t.Commit
		}
	default:
		cm, _, err = c.api.Commits.GetCommit(p.ID, name, nil, opt)
	}
	switch {
	case statusOf(err) == http.StatusNotFound:
		return Commit{}, false, nil
	case err != nil:
		return Commit{}, false, classify(fmt.Sprintf("get %s %s of %s", refType, name, p.PathWithNamespace), err)
	case cm == nil || cm.ID == "":
		return Commit{}, false, fmt.Errorf("resolve %s %s in %s: GitLab answered without a commit", refType, name, p.PathWithNamespace)
	}
	out = Commit{Project: p.PathWithNamespace, ProjectID: p.ID, SHA: cm.ID, Ref: name, RefType: refType, Title: cm.Title, WebURL: cm.WebURL}
	if refType == RefCommit {
		out.Ref = "" // see Commit.Ref
	}
	return out, true, nil
}
