package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/workflows"
)

const (
	testSHA    = "0123456789abcdef0123456789abcdef01234567"
	testSecret = "webhook-secret-0123456789"
)

type fakeResolver struct {
	err      error
	deadline *time.Time // set to the call's deadline, when not nil
}

func (r fakeResolver) ResolveCommit(ctx context.Context, project, ref string) (gitlab.Commit, error) {
	if r.deadline != nil {
		*r.deadline, _ = ctx.Deadline()
	}
	if r.err != nil {
		return gitlab.Commit{}, r.err
	}
	return gitlab.Commit{Project: project, ProjectID: 42, SHA: testSHA, Ref: ref, RefType: "branch"}, nil
}

func withBuilds(res CommitResolver) envOption {
	return func(c *Config) {
		projects, err := build.ParseProjects([]byte(`
projects:
  - {path: group/app, image: tenants/app, buildArgs: {VERSION: "${shortSha}-${ref}"}, branches: [main]}
`))
		if err != nil {
			panic(err)
		}
		c.Builds = &Builds{Projects: projects, Resolver: res, WebhookSecret: testSecret, WebUIURL: "http://ui:8233", Namespace: "default"}
	}
}

func TestCreateBuild(t *testing.T) {
	e := newTestEnv(t, withBuilds(fakeResolver{}))
	rec := e.do(http.MethodPost, "/v1/builds", developerToken, `{"project":"group/app","ref":"main"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, "/v1/builds/group~app@"+testSHA, rec.Header().Get("Location"))
	starts := e.temporal.startCalls()
	require.Len(t, starts, 1)
	opts := starts[0].opts
	assert.Equal(t, "build:group/app@"+testSHA, opts.ID)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, opts.WorkflowIDConflictPolicy)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, opts.WorkflowIDReusePolicy)
	req := starts[0].args[0].(workflows.BuildRequest)
	assert.Equal(t, build.BuildInput{Project: "group/app", ProjectID: 42, SHA: testSHA, Ref: "main", RefType: "branch",
		Image: "tenants/app", Dockerfile: "Dockerfile", BuildArgs: map[string]string{"VERSION": "0123456789ab-main"}}, req.Build)
	assert.Equal(t, "http://ui:8233/namespaces/default/workflows/build:group%2Fapp@"+testSHA, req.TargetURL)
	assert.Equal(t, "api", req.Trigger)
}

func TestCreateBuildResolvesWithinResolveTimeout(t *testing.T) {
	var deadline time.Time
	e := newTestEnv(t, withBuilds(fakeResolver{deadline: &deadline}))
	before := time.Now()
	rec := e.do(http.MethodPost, "/v1/builds", developerToken, `{"project":"group/app","ref":"main"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.False(t, deadline.IsZero(), "GitLab is asked under a deadline")
	assert.WithinDuration(t, before.Add(ResolveTimeout), deadline, time.Second)
}

func TestCreateBuildBadInput(t *testing.T) {
	tests := []struct {
		name, token, body string
		res               CommitResolver
		code              int
		field             string
	}{
		{"distributor may not", distributorToken, `{"project":"group/app","ref":"main"}`, fakeResolver{}, http.StatusForbidden, ""},
		{"no project", opsToken, `{"ref":"main"}`, fakeResolver{}, http.StatusBadRequest, "project"},
		{"unconfigured project", opsToken, `{"project":"other/app","ref":"main"}`, fakeResolver{}, http.StatusBadRequest, "project"},
		{"bad ref", opsToken, `{"project":"group/app","ref":"a..b"}`, fakeResolver{}, http.StatusBadRequest, "ref"},
		{"unknown ref", opsToken, `{"project":"group/app","ref":"nope"}`,
			fakeResolver{err: temporal.NewNonRetryableApplicationError("no ref nope", gitlab.ErrUnknownRef, nil)}, http.StatusBadRequest, "ref"},
		{"project gone in GitLab", opsToken, `{"project":"group/app","ref":"main"}`,
			fakeResolver{err: temporal.NewNonRetryableApplicationError("no project", gitlab.ErrUnknownProject, nil)}, http.StatusBadRequest, "project"},
		{"GitLab down", opsToken, `{"project":"group/app","ref":"main"}`, fakeResolver{err: context.DeadlineExceeded}, http.StatusServiceUnavailable, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, withBuilds(tc.res))
			rec := e.do(http.MethodPost, "/v1/builds", tc.token, tc.body)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			if tc.field != "" {
				var body map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
				assert.Equal(t, tc.field, body["field"])
			}
			assert.Empty(t, e.temporal.startCalls(), "nothing may start")
		})
	}
}

func hook(e *testEnv, event, token, body string) *httptest.ResponseRecorder {
	req := newRequest(http.MethodPost, "/v1/hooks/gitlab", body)
	req.Header.Set("X-Gitlab-Event", event)
	if token != "" {
		req.Header.Set("X-Gitlab-Token", token)
	}
	return serve(e, req)
}

func pushEvent(project, ref, after string) string {
	checkout := after
	if strings.Trim(after, "0") == "" {
		checkout = "" // GitLab sends no checkout_sha for a deleted branch
	}
	return `{"object_kind":"push","event_name":"push","before":"` + strings.Repeat("0", 40) + `","after":"` + after +
		`","ref":"` + ref + `","checkout_sha":"` + checkout + `","project_id":42,"project":{"id":42,"path_with_namespace":"` + project + `"}}`
}

func TestGitLabHook(t *testing.T) {
	tests := []struct {
		name, event, token, body string
		code                     int
		ignored                  string
	}{
		{"no token", "Push Hook", "", pushEvent("group/app", "refs/heads/main", testSHA), http.StatusUnauthorized, ""},
		{"wrong token", "Push Hook", "nope", pushEvent("group/app", "refs/heads/main", testSHA), http.StatusUnauthorized, ""},
		{"push to main", "Push Hook", testSecret, pushEvent("group/app", "refs/heads/main", testSHA), http.StatusAccepted, ""},
		{"other branch", "Push Hook", testSecret, pushEvent("group/app", "refs/heads/dev", testSHA), http.StatusOK, "does not build"},
		{"other project", "Push Hook", testSecret, pushEvent("other/app", "refs/heads/main", testSHA), http.StatusOK, "not configured"},
		{"branch deleted", "Push Hook", testSecret, pushEvent("group/app", "refs/heads/main", strings.Repeat("0", 40)), http.StatusOK, "deleted"},
		{"tags off", "Tag Push Hook", testSecret, strings.Replace(pushEvent("group/app", "refs/tags/v1", testSHA), `"push"`, `"tag_push"`, 2), http.StatusOK, "do not build"},
		{"other event", "Issue Hook", testSecret, `{"object_kind":"issue"}`, http.StatusOK, "not handled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, withBuilds(fakeResolver{}))
			rec := hook(e, tc.event, tc.token, tc.body)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			if tc.ignored != "" {
				assert.Contains(t, rec.Body.String(), tc.ignored)
			}
			if tc.code == http.StatusAccepted {
				starts := e.temporal.startCalls()
				require.Len(t, starts, 1)
				req := starts[0].args[0].(workflows.BuildRequest)
				assert.Equal(t, testSHA, req.Build.SHA)
				assert.Equal(t, "main", req.Build.Ref)
				assert.Equal(t, "webhook", req.Trigger)
			} else {
				assert.Empty(t, e.temporal.startCalls())
			}
		})
	}
}

func TestBuildRoutesOffWithoutProjects(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/builds", opsToken, `{"project":"group/app","ref":"main"}`)
	assert.Equal(t, http.StatusNotFound, rec.Code)
	rec = hook(e, "Push Hook", testSecret, pushEvent("group/app", "refs/heads/main", testSHA))
	assert.Equal(t, http.StatusNotFound, rec.Code)
}
