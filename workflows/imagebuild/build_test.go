package imagebuild

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

type buildMocks struct {
	mu       sync.Mutex
	statuses []string
	builds   int
	removed  int
	keep     []string
	buildAt  time.Time
	found    map[string]string // what FindImage reports per tag
}

// statusDelay makes every GitLab status call take that long (simulated).
var statusDelay time.Duration

func newBuildEnv(t *testing.T, inRegistry bool, buildErr error, statusErr error) (*testsuite.TestWorkflowEnvironment, *buildMocks) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowType})
	g0, b0 := &gitlab.Activities{}, &build.Activities{}
	for _, fn := range []any{g0.SetCommitStatus, b0.FindImage, b0.BuildAndPushImage, b0.RemoveImage} {
		env.RegisterActivity(fn)
	}
	m := &buildMocks{}
	var partial partialRegistry
	if errors.As(buildErr, &partial) {
		m.found = partial.found
		buildErr = partial.err
	}
	var g *gitlab.Activities
	var b *build.Activities
	env.OnActivity(g.SetCommitStatus, mock.Anything, mock.Anything).After(statusDelay).Return(func(_ context.Context, in gitlab.StatusInput) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.statuses = append(m.statuses, in.State)
		require.Equal(t, CommitStatusName, in.Name)
		require.Equal(t, "http://ui/wf", in.TargetURL)
		return statusErr
	})
	img := build.Image{Repository: "tenants/app", Tags: []string{"abc"}, Ref: "reg/tenants/app:abc"}
	env.OnActivity(b.FindImage, mock.Anything, mock.Anything).Return(func(context.Context, build.BuildInput) (build.Image, error) {
		if inRegistry {
			img.Digest = "sha256:old"
		}
		img.Found = m.found
		return img, nil
	})
	env.OnActivity(b.BuildAndPushImage, mock.Anything, mock.Anything).Return(func(context.Context, build.BuildInput) (build.Image, error) {
		m.mu.Lock()
		m.builds++
		m.buildAt = env.Now()
		m.mu.Unlock()
		if buildErr != nil {
			return build.Image{}, buildErr
		}
		img.Digest, img.Built = "sha256:new", true
		return img, nil
	})
	env.OnActivity(b.RemoveImage, mock.Anything, mock.Anything).Return(func(_ context.Context, in build.RemoveInput) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.removed++
		m.keep = in.Keep
		return nil
	})
	return env, m
}

var buildRequest = Request{
	Build:     build.BuildInput{Project: "group/app", ProjectID: 7, SHA: "abc", Ref: "main", RefType: "branch", Image: "tenants/app", Dockerfile: "Dockerfile"},
	TargetURL: "http://ui/wf",
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) Build {
	t.Helper()
	var st Build
	require.NoError(t, env.GetWorkflowResult(&st))
	return st
}

func TestBuildPushesAndReportsToGitLab(t *testing.T) {
	env, m := newBuildEnv(t, false, nil, nil)
	env.ExecuteWorkflow(WorkflowType, buildRequest)
	st := result(t, env)
	require.Equal(t, StateSucceeded, st.State)
	require.Equal(t, "sha256:new", st.Image.Digest)
	require.False(t, st.Skipped)
	require.Equal(t, flow.Progress{Done: 2, Total: 2}, st.Progress)
	require.Equal(t, []string{"pending", "running", "success"}, m.statuses)
	require.Equal(t, 1, m.builds)
	require.Zero(t, m.removed)
}

// A project with a git remote has no GitLab to report to: the build runs
// the same, without a commit status.
func TestGitProjectBuildReportsNoStatus(t *testing.T) {
	env, m := newBuildEnv(t, false, nil, nil)
	req := buildRequest
	req.Build.ProjectID, req.Build.Git = 0, "/srv/git/app"
	env.ExecuteWorkflow(WorkflowType, req)
	st := result(t, env)
	require.Equal(t, StateSucceeded, st.State)
	require.Equal(t, "sha256:new", st.Image.Digest)
	require.Equal(t, 1, m.builds)
	require.Empty(t, m.statuses)
}

func TestBuildSkipsWhatTheRegistryHas(t *testing.T) {
	env, m := newBuildEnv(t, true, nil, nil)
	env.ExecuteWorkflow(WorkflowType, buildRequest)
	st := result(t, env)
	require.Equal(t, StateSucceeded, st.State)
	require.True(t, st.Skipped)
	require.Equal(t, "sha256:old", st.Image.Digest)
	require.Equal(t, 0, m.builds)
	require.Equal(t, []string{"pending", "success"}, m.statuses)
}

func TestBuildFailureIsPermanentAndReported(t *testing.T) {
	env, m := newBuildEnv(t, false, temporal.NewNonRetryableApplicationError("no Dockerfile", build.ErrDockerfileMissing, nil), nil)
	env.ExecuteWorkflow(WorkflowType, buildRequest)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &appErr)
	require.Equal(t, ErrBuildFailed, appErr.Type())
	require.Equal(t, 1, m.builds, "a permanent failure is not retried")
	require.Equal(t, 1, m.removed, "what the failed build pushed is untagged")
	require.Equal(t, []string{"pending", "running", "failed"}, m.statuses)
	v, err := env.QueryWorkflow(QueryState)
	require.NoError(t, err)
	var st Build
	require.NoError(t, v.Get(&st))
	require.Equal(t, StateFailed, st.State)
	require.Contains(t, st.Error, build.ErrDockerfileMissing)
}

func TestBuildSurvivesAGitLabStatusOutage(t *testing.T) {
	env, m := newBuildEnv(t, false, nil, temporal.NewNonRetryableApplicationError("gitlab down", "GitLabRejected", errors.New("x")))
	env.ExecuteWorkflow(WorkflowType, buildRequest)
	require.Equal(t, StateSucceeded, result(t, env).State, "reporting to GitLab must not decide the build")
	require.Equal(t, 1, m.builds)
}

// partialRegistry makes FindImage report some tags present (a tag build of
// a commit built before) and the build fail with err.
type partialRegistry struct {
	found map[string]string
	err   error
}

func (p partialRegistry) Error() string { return p.err.Error() }

func TestFailedTagBuildKeepsWhatWasThere(t *testing.T) {
	failure := temporal.NewNonRetryableApplicationError("step failed", build.ErrBuildFailed, nil)
	env, m := newBuildEnv(t, false, partialRegistry{found: map[string]string{"abc": "sha256:deployed"}, err: failure}, nil)
	env.ExecuteWorkflow(WorkflowType, buildRequest)
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, 1, m.removed)
	require.Equal(t, []string{"sha256:deployed"}, m.keep, "the commit's existing image must survive")
}

func TestSlowGitLabDoesNotHoldTheBuildUp(t *testing.T) {
	statusDelay = 10 * time.Minute
	t.Cleanup(func() { statusDelay = 0 })
	env, m := newBuildEnv(t, false, nil, nil)
	start := env.Now()
	env.ExecuteWorkflow(WorkflowType, buildRequest)
	require.Equal(t, StateSucceeded, result(t, env).State)
	require.Less(t, m.buildAt.Sub(start), time.Minute, "the build starts without waiting for GitLab")
	require.Equal(t, []string{"pending", "running", "success"}, m.statuses, "statuses still go out, in order")
}
