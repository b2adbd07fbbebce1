package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	gitlabapi "gitlab.com/gitlab-org/api/client-go"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// Builds configures the build routes; nil in Config disables them.
type Builds struct {
	Projects build.Projects
	Resolver build.CommitResolver
	// WebhookSecret is GitLab's X-Gitlab-Token for POST /v1/hooks/gitlab.
	WebhookSecret string
	// WebUIURL and Namespace make the link GitLab's commit status points
	// to: the build's workflow in the Temporal Web UI.
	WebUIURL  string
	Namespace string
}

const maxHookBytes = 4 << 20 // push events list up to 20 commits

// ResolveTimeout bounds resolving a ref in GitLab (up to four calls of
// GitLab's own timeout each) before a build starts, so the answer comes
// within the HTTP server's write timeout.
const ResolveTimeout = 20 * time.Second

var (
	refPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$`)
	zeroSHA    = regexp.MustCompile(`^0+$`)
)

// BuildID is the REST id of a build: project, commit and, for a tag build,
// the tag; reversible.
func BuildID(project, sha, tag string) string {
	id := strings.ReplaceAll(project, "/", "~") + "@" + sha
	if tag != "" {
		id += "+" + tag
	}
	return id
}

func parseBuildID(id string) (project, sha, tag string, ok bool) {
	i := strings.LastIndex(id, "@")
	if i <= 0 {
		return "", "", "", false
	}
	project, sha = strings.ReplaceAll(id[:i], "~", "/"), id[i+1:]
	sha, tag, _ = strings.Cut(sha, "+")
	ok = len(sha) == 40 && strings.Trim(sha, "0123456789abcdef") == "" && (tag == "" || dockerTag.MatchString(tag))
	return project, sha, tag, ok
}

// dockerTag is what a registry accepts as a tag: a Git tag that is not one
// cannot be built (it would fail only at the registry).
var dockerTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func tagOf(c gitlab.Commit) string {
	if c.RefType == "tag" {
		return c.Ref
	}
	return ""
}

type createBuildRequest struct {
	Project string `json:"project"`
	Ref     string `json:"ref"`
}

type buildResponse struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflowId"`
	Project    string `json:"project"`
	Ref        string `json:"ref"`
	SHA        string `json:"sha"`
	Status     string `json:"status"`
}

// createBuild resolves the ref first, so an unknown project or ref is a 400
// naming the field and nothing starts; then it starts (or joins) the build.
func (s *server) createBuild(c *gin.Context) {
	var req createBuildRequest
	if err := decodeJSONBody(c, s.cfg.MaxBodyBytes, &req); err != nil {
		respondFieldError(c, err)
		return
	}
	p := s.cfg.Builds.Projects[req.Project]
	switch {
	case req.Project == "":
		respondFieldError(c, badField("project", "project is required (e.g. group/app)"))
		return
	case p == nil:
		respondFieldError(c, badField("project", "project %q is not configured for builds (known: %s)", req.Project, strings.Join(s.cfg.Builds.Projects.Names(), ", ")))
		return
	case !refPattern.MatchString(req.Ref) || strings.Contains(req.Ref, ".."):
		respondFieldError(c, badField("ref", "ref must be a branch, tag or commit SHA"))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), ResolveTimeout)
	defer cancel()
	commit, err := s.cfg.Builds.Resolver.ResolveCommit(ctx, p.Path, req.Ref)
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr) && appErr.Type() == gitlab.ErrUnknownRef:
		respondFieldError(c, badField("ref", "%s", appErr.Message()))
		return
	case errors.As(err, &appErr) && appErr.Type() == gitlab.ErrUnknownProject:
		respondFieldError(c, badField("project", "%s", appErr.Message()))
		return
	case err != nil:
		s.log.ErrorContext(c.Request.Context(), "resolve ref failed", "project", p.Path, "ref", req.Ref, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("resolve %s@%s: %v", p.Path, req.Ref, err))
		return
	}
	if commit.RefType == "tag" && !dockerTag.MatchString(commit.Ref) {
		respondFieldError(c, badField("ref", "tag %q cannot be an image tag (letters, digits, '_', '.', '-'; at most 128)", commit.Ref))
		return
	}
	s.startBuild(c, p, commit, "api")
}

// startBuild starts the build workflow for a resolved commit, or joins the
// one already running for it (same id: conflict policy USE_EXISTING).
func (s *server) startBuild(c *gin.Context, p *build.Project, commit gitlab.Commit, trigger string) {
	id := imagebuild.WorkflowID(p.Path, commit.SHA, tagOf(commit))
	in := build.BuildInput{
		Project: p.Path, ProjectID: commit.ProjectID, Git: p.Git, SHA: commit.SHA, Ref: commit.Ref, RefType: commit.RefType,
		Image: p.Image, Dockerfile: p.Dockerfile, BuildArgs: p.Args(commit.SHA, commit.Ref),
	}
	opts := client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:            fmt.Sprintf("Build %s@%.12s (%s %s)", p.Path, commit.SHA, commit.RefType, commit.Ref),
		EnableEagerStart:         true,
	}
	req := imagebuild.Request{Build: in, TargetURL: s.workflowURL(id), RequestedBy: c.GetString(ctxCaller), Trigger: trigger}
	if _, err := s.temporal.ExecuteWorkflow(c.Request.Context(), opts, imagebuild.WorkflowType, req); err != nil {
		s.log.ErrorContext(c.Request.Context(), "start build failed", "project", p.Path, "sha", commit.SHA, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("start build of %s@%s: %v", p.Path, commit.SHA, err))
		return
	}
	bid := BuildID(p.Path, commit.SHA, tagOf(commit))
	c.Header("Location", "/v1/builds/"+bid)
	c.JSON(http.StatusAccepted, buildResponse{ID: bid, WorkflowID: id, Project: p.Path, Ref: commit.Ref, SHA: commit.SHA, Status: string(imagebuild.StatePending)})
}

func (s *server) workflowURL(id string) string {
	b := s.cfg.Builds
	if b.WebUIURL == "" {
		return ""
	}
	return strings.TrimSuffix(b.WebUIURL, "/") + "/namespaces/" + url.PathEscape(b.Namespace) + "/workflows/" + url.PathEscape(id)
}

// getBuild answers with the build's state from its workflow.
func (s *server) getBuild(c *gin.Context) {
	project, sha, tag, ok := parseBuildID(c.Param("id"))
	if !ok {
		respondFieldError(c, badField("id", "build id must be <group~project>@<40-hex sha>[+<tag>]"))
		return
	}
	wid := imagebuild.WorkflowID(project, sha, tag)
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	value, err := s.temporal.QueryWorkflow(ctx, wid, "", tenant.QueryState)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, fmt.Sprintf("build %s not found", c.Param("id")))
		return
	case err != nil:
		s.respondQueryError(ctx, c, "build "+c.Param("id"), err)
		return
	}
	var st imagebuild.Build
	if err := value.Get(&st); err != nil {
		respondError(c, http.StatusBadGateway, fmt.Sprintf("build %s: decode state: %v", c.Param("id"), err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": c.Param("id"), "workflowId": wid, "build": st})
}

// gitlabHook receives GitLab push and tag events. The shared secret in
// X-Gitlab-Token is compared in constant time; events for projects or
// branches that are not configured are acknowledged and ignored, so GitLab
// does not retry them. An event only says which configured ref moved: what
// is built is what GitLab answers for that ref (see confirmHookCommit).
func (s *server) gitlabHook(c *gin.Context) {
	want := sha256.Sum256([]byte(s.cfg.Builds.WebhookSecret))
	got := sha256.Sum256([]byte(c.GetHeader("X-Gitlab-Token")))
	if s.cfg.Builds.WebhookSecret == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		respondError(c, http.StatusUnauthorized, "missing or invalid X-Gitlab-Token")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxHookBytes))
	if err != nil {
		respondFieldError(c, badField("body", "webhook body unreadable or over %d bytes", maxHookBytes))
		return
	}
	event := gitlabapi.HookEventType(c.Request)
	parsed, err := gitlabapi.ParseWebhook(event, body)
	if err != nil {
		ignore(c, fmt.Sprintf("event %q is not handled", event))
		return
	}
	var claim hookClaim
	switch e := parsed.(type) {
	case *gitlabapi.PushEvent:
		claim = hookClaim{e.Project.PathWithNamespace, e.ProjectID, e.Project.ID, e.Ref, e.After, e.CheckoutSHA, false}
	case *gitlabapi.TagEvent:
		claim = hookClaim{e.Project.PathWithNamespace, e.ProjectID, e.Project.ID, e.Ref, e.After, e.CheckoutSHA, true}
	default:
		ignore(c, fmt.Sprintf("event %q is not handled", event))
		return
	}
	p, ref, reason := s.hookRef(claim)
	if reason != "" {
		ignore(c, reason)
		return
	}
	commit, ok := s.confirmHookCommit(c, p, ref, claim)
	if !ok {
		return
	}
	c.Set(ctxCaller, "gitlab-webhook")
	s.startBuild(c, p, commit, "webhook")
}

// hookClaim is what a push or tag event says happened. Only the webhook
// secret vouches for it, and that secret is shared by every project the
// hook is set on.
type hookClaim struct {
	project   string
	projectID int64  // project_id
	nestedID  int64  // project.id, when given
	ref       string // refs/heads/<branch> or refs/tags/<tag>
	after     string
	checkout  string
	isTag     bool
}

// isProject reports whether every project id the event gives is id.
func (e hookClaim) isProject(id int64) bool {
	return e.projectID == id && (e.nestedID == 0 || e.nestedID == id)
}

// hookRef decides which configured project and ref (kind and name) an
// event would build, or why it builds nothing (reason).
func (s *server) hookRef(e hookClaim) (*build.Project, gitlab.Commit, string) {
	kind, name := gitlab.RefBranch, strings.TrimPrefix(e.ref, "refs/heads/")
	if e.isTag {
		kind, name = gitlab.RefTag, strings.TrimPrefix(e.ref, "refs/tags/")
	}
	p := s.cfg.Builds.Projects[e.project]
	switch {
	case p == nil:
		return nil, gitlab.Commit{}, fmt.Sprintf("project %s is not configured for builds", e.project)
	case zeroSHA.MatchString(e.after) || e.checkout == "":
		return nil, gitlab.Commit{}, fmt.Sprintf("%s %s was deleted", kind, name)
	case !e.isTag && !p.BuildsBranch(name):
		return nil, gitlab.Commit{}, fmt.Sprintf("branch %s of %s does not build", name, e.project)
	case e.isTag && !p.Tags:
		return nil, gitlab.Commit{}, fmt.Sprintf("tags of %s do not build", e.project)
	case e.isTag && !dockerTag.MatchString(name):
		return nil, gitlab.Commit{}, fmt.Sprintf("tag %q cannot be an image tag", name)
	}
	return p, gitlab.Commit{Ref: name, RefType: kind}, ""
}

// confirmHookCommit asks GitLab what the ref of the configured project
// points to, and builds that, never the event's own project id and SHA.
// An event whose project id is not GitLab's id of the configured path is
// refused (409): GitLab fills both from one record, so such an event did
// not come from GitLab as it is (e.g. a fork's event relabelled with the
// configured path, to get the fork's code built under the configured
// image). An event whose SHA is no longer what the ref points to is
// ignored (200): the ref moved since, which happens to genuine events, and
// the newer commit's own event builds it. On false the request is
// answered.
func (s *server) confirmHookCommit(c *gin.Context, p *build.Project, ref gitlab.Commit, e hookClaim) (gitlab.Commit, bool) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), ResolveTimeout)
	defer cancel()
	commit, err := s.cfg.Builds.Resolver.ResolveRef(ctx, p.Path, ref.RefType, ref.Ref)
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr) && appErr.Type() == gitlab.ErrUnknownRef:
		ignore(c, fmt.Sprintf("%s %s of %s does not exist in GitLab (deleted since?): %s", ref.RefType, ref.Ref, p.Path, appErr.Message()))
		return commit, false
	case err != nil:
		s.log.ErrorContext(ctx, "resolve webhook ref failed", "project", p.Path, "ref", ref.Ref, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("resolve %s %s of %s in GitLab: %v", ref.RefType, ref.Ref, p.Path, err))
		return commit, false
	}
	if !e.isProject(commit.ProjectID) {
		s.log.WarnContext(ctx, "webhook event contradicts GitLab about the project: refused", "project", p.Path,
			"eventProjectID", e.projectID, "eventProjectDotID", e.nestedID, "gitlabProjectID", commit.ProjectID, "eventSHA", e.checkout)
		respondError(c, http.StatusConflict, fmt.Sprintf("the event names %s with project id %d (project.id %d), but GitLab's %s is project %d: nothing is built",
			e.project, e.projectID, e.nestedID, p.Path, commit.ProjectID))
		return commit, false
	}
	if !strings.EqualFold(commit.SHA, e.checkout) {
		ignore(c, fmt.Sprintf("%s %s of %s is at %.12s in GitLab, not the event's %.12s (moved since): nothing is built for this event",
			ref.RefType, ref.Ref, p.Path, commit.SHA, e.checkout))
		return commit, false
	}
	return commit, true
}

func ignore(c *gin.Context, reason string) {
	c.JSON(http.StatusOK, gin.H{"ignored": reason})
}
