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
	"github.com/tenantflow/tenantflow/testsuite/gitlabfake"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
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

func (r fakeResolver) ResolveRef(_ context.Context, project, refType, name string) (gitlab.Commit, error) {
	if r.err != nil {
		return gitlab.Commit{}, r.err
	}
	return gitlab.Commit{Project: project, ProjectID: 42, SHA: testSHA, Ref: name, RefType: refType}, nil
}

func withBuilds(res build.CommitResolver) envOption {
	return withProjects(res, `
projects:
  - {path: group/app, image: tenants/app, buildArgs: {VERSION: "${shortSha}-${ref}"}, branches: [main]}
`)
}

func withProjects(res build.CommitResolver, yaml string) envOption {
	return func(c *Config) {
		projects, err := build.ParseProjects([]byte(yaml))
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
	req := starts[0].args[0].(imagebuild.Request)
	assert.Equal(t, build.BuildInput{Project: "group/app", ProjectID: 42, SHA: testSHA, Ref: "main", RefType: "branch",
		Image: "tenants/app", Dockerfile: "Dockerfile", BuildArgs: map[string]string{"VERSION": "0123456789ab-main"}}, req.Build)
	assert.Equal(t, "http://ui:8233/namespaces/default/workflows/build:group%2Fapp@"+testSHA, req.TargetURL)
	assert.Equal(t, "api", req.Trigger)
}

// A project with a git remote builds from it: its input carries the
// remote, for the worker to read the commit there.
func TestCreateBuildOfAGitProject(t *testing.T) {
	e := newTestEnv(t, withProjects(fakeResolver{}, `
projects:
  - {path: demo/app, git: /srv/git/demo, image: builds/demo-app}
`))
	rec := e.do(http.MethodPost, "/v1/builds", developerToken, `{"project":"demo/app","ref":"v2"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	req := e.temporal.startCalls()[0].args[0].(imagebuild.Request)
	assert.Equal(t, "/srv/git/demo", req.Build.Git)
	assert.Equal(t, "builds/demo-app", req.Build.Image)
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
		res               build.CommitResolver
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
				req := starts[0].args[0].(imagebuild.Request)
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

// gitLabWithFork is a fake GitLab holding the configured project group/app
// and a fork of it, mallory/app, whose main holds code group/app never had;
// the API resolves through the real GitLab client.
type gitLabWithFork struct {
	srv              *gitlabfake.Server
	app, fork        *gitlabfake.Project
	head, tag, alien string
	env              *testEnv
}

func newGitLabWithFork(t *testing.T) *gitLabWithFork {
	t.Helper()
	const token = "glpat-api-test-token"
	g := &gitLabWithFork{srv: gitlabfake.New(t, token)}
	g.app = g.srv.AddProject("group/app")
	g.head = g.app.Commit("main", map[string][]byte{"Dockerfile": []byte("FROM scratch\n")}, "App")
	g.app.Commit("v1", map[string][]byte{"Dockerfile": []byte("FROM scratch\nLABEL branch=v1\n")}, "A branch named like the tag")
	g.app.Tag("v1", g.head)
	g.tag = g.head
	g.fork = g.srv.AddProject("mallory/app")
	g.alien = g.fork.Commit("main", map[string][]byte{"Dockerfile": []byte("FROM scratch\nLABEL evil=1\n")}, "Not yours")
	client, err := gitlab.NewClient(gitlab.Config{Enabled: true, URL: g.srv.URL, Token: token, Timeout: 5 * time.Second}, nil)
	require.NoError(t, err)
	g.env = newTestEnv(t, withProjects(client, `
projects:
  - {path: group/app, image: tenants/app, branches: [main, release], tags: true}
`))
	return g
}

// relabel rewrites a webhook body: set maps JSON paths ("project_id",
// "project.path_with_namespace") to new values.
func relabel(t *testing.T, body []byte, set map[string]any) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	for path, v := range set {
		obj := m
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			obj = obj[k].(map[string]any)
		}
		obj[keys[len(keys)-1]] = v
	}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return string(out)
}

func TestGitLabHookBuildsWhatGitLabSays(t *testing.T) {
	g := newGitLabWithFork(t)
	forkAsApp := map[string]any{"project.path_with_namespace": "group/app"}
	appIDs := map[string]any{"project.path_with_namespace": "group/app", "project_id": g.app.ID, "project.id": g.app.ID}
	tests := []struct {
		name, event, body string
		code              int
		answer            string // in the body
		sha, refType      string // of the build started, for 202
	}{
		{"genuine push", gitlabfake.PushHook, string(g.srv.PushEvent(g.app, "main", "", g.head)), http.StatusAccepted, "", g.head, gitlab.RefBranch},
		{"genuine tag, a branch of its name elsewhere", gitlabfake.TagPushHook, string(g.srv.TagEvent(g.app, "v1")), http.StatusAccepted, "", g.tag, gitlab.RefTag},
		{"fork's push relabelled with the configured path", gitlabfake.PushHook,
			relabel(t, g.srv.PushEvent(g.fork, "main", "", g.alien), forkAsApp), http.StatusConflict, "GitLab's group/app is project 1", "", ""},
		{"fork's push with the configured path and id", gitlabfake.PushHook,
			relabel(t, g.srv.PushEvent(g.fork, "main", "", g.alien), appIDs), http.StatusOK, `"ignored"`, "", ""},
		{"only project.id relabelled", gitlabfake.PushHook,
			relabel(t, g.srv.PushEvent(g.fork, "main", "", g.alien), map[string]any{"project.path_with_namespace": "group/app", "project_id": g.app.ID}),
			http.StatusConflict, "project.id 2", "", ""},
		{"branch gone from GitLab", gitlabfake.PushHook,
			relabel(t, g.srv.PushEvent(g.app, "main", "", g.head), map[string]any{"ref": "refs/heads/release"}), http.StatusOK, "does not exist in GitLab", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(g.env.temporal.startCalls())
			rec := hook(g.env, tc.event, testSecret, tc.body)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tc.answer)
			starts := g.env.temporal.startCalls()[before:]
			if tc.code != http.StatusAccepted {
				assert.Empty(t, starts, "nothing is built")
				return
			}
			require.Len(t, starts, 1)
			in := starts[0].args[0].(imagebuild.Request).Build
			assert.Equal(t, tc.sha, in.SHA)
			assert.Equal(t, g.app.ID, in.ProjectID)
			assert.Equal(t, tc.refType, in.RefType)
			assert.Equal(t, "tenants/app", in.Image)
		})
	}
	for _, call := range g.srv.Calls() {
		assert.NotContains(t, call.Path, "mallory", "the fork is never asked for")
	}
}

func TestGitLabHookIgnoresAMovedBranch(t *testing.T) {
	g := newGitLabWithFork(t)
	event := g.srv.PushEvent(g.app, "main", "", g.head)
	moved := g.app.Commit("main", map[string][]byte{"Dockerfile": []byte("FROM scratch\nLABEL v=2\n")}, "Newer")
	rec := hook(g.env, gitlabfake.PushHook, testSecret, string(event))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "is at "+moved[:12]+" in GitLab, not the event's "+g.head[:12])
	assert.Empty(t, g.env.temporal.startCalls())

	// The newer push's own event builds the newer commit.
	rec = hook(g.env, gitlabfake.PushHook, testSecret, string(g.srv.PushEvent(g.app, "main", g.head, moved)))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Len(t, g.env.temporal.startCalls(), 1)
	assert.Equal(t, moved, g.env.temporal.startCalls()[0].args[0].(imagebuild.Request).Build.SHA)
}

func TestGitLabHookGitLabDown(t *testing.T) {
	e := newTestEnv(t, withBuilds(fakeResolver{err: context.DeadlineExceeded}))
	rec := hook(e, "Push Hook", testSecret, pushEvent("group/app", "refs/heads/main", testSHA))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Empty(t, e.temporal.startCalls())
}
