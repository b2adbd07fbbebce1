package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/activities/registry"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/gitlabfake"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
)

const (
	gitlabToken   = "glpat-test-token-0123456789"
	hookSecret    = "gitlab-webhook-secret-0123"
	demoProject   = "demo/app"
	demoImageRepo = "tenants/demo-app"
)

// buildBench is the build side of the platform for one test: a fake GitLab
// holding the demo app's repository, a real registry, the real engine.
type buildBench struct {
	*platform
	gitlab   *gitlabfake.Server
	project  *gitlabfake.Project
	registry *harness.Registry
	regc     *registry.Client
}

// demoRepository is the demo app's source as a repository: its Go source,
// its Dockerfile, and the static binary the Dockerfile copies. The engine
// here cannot pull a Go builder image, so the build cannot compile; a real
// project would use a multi-stage Dockerfile instead.
func demoRepository(t testing.TB) map[string][]byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "internal", "demoapp", "main.go"))
	require.NoError(t, err)
	dir := t.TempDir()
	bin, err := demoimage.CompileBinary(context.Background(), dir)
	require.NoError(t, err)
	binary, err := os.ReadFile(bin)
	require.NoError(t, err)
	return map[string][]byte{
		"main.go":    src,
		"Dockerfile": []byte(demoimage.Dockerfile),
		"demo-app":   binary,
		"data/.keep": nil,
	}
}

func startBuildBench(t testing.TB) *buildBench {
	t.Helper()
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	gl := gitlabfake.New(t, gitlabToken)
	proj := gl.AddProject(demoProject)
	wcfg := &wiring.Config{
		GitLab:   gitlab.Config{Enabled: true, URL: gl.URL, Token: gitlabToken, Timeout: 10 * time.Second},
		Registry: registry.Config{Enabled: true, URL: reg.URL, Timeout: 10 * time.Second},
	}
	glc, err := gitlab.NewClient(wcfg.GitLab, harness.Logger(t))
	require.NoError(t, err)
	regc, err := registry.NewClient(wcfg.Registry, harness.Logger(t))
	require.NoError(t, err)
	projects, err := build.ParseProjects([]byte(`
projects:
  - path: demo/app
    image: tenants/demo-app
    buildArgs: {VERSION: "${shortSha}"}
    branches: [main]
    tags: true
`))
	require.NoError(t, err)
	p := startPlatformWith(t, wcfg, func(c *api.Config) {
		c.Builds = &api.Builds{Projects: projects, Resolver: glc, WebhookSecret: hookSecret,
			WebUIURL: "http://127.0.0.1:8233", Namespace: "default"}
	})
	return &buildBench{platform: p, gitlab: gl, project: proj, registry: reg, regc: regc}
}

// hook delivers a GitLab webhook event.
func (b *buildBench) hook(event string, payload []byte, token string) (int, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.api.URL+"/v1/hooks/gitlab", bytes.NewReader(payload))
	req.Header.Set("X-Gitlab-Event", event)
	req.Header.Set("X-Gitlab-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = jsonDecode(resp.Body, &out)
	return resp.StatusCode, out
}

// waitBuild polls GET /v1/builds/{id} until the build is over.
func (b *buildBench) waitBuild(id string, timeout time.Duration) map[string]any {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		code, body, _ := b.do(http.MethodGet, "/v1/builds/"+id, nil)
		if code == http.StatusOK {
			last = body["build"].(map[string]any)
			if s := last["state"]; s == string(imagebuild.StateSucceeded) || s == string(imagebuild.StateFailed) {
				return last
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("build %s not over after %s: %v", id, timeout, last)
	return nil
}

// waitClosed waits until the build's workflow run has finished (it reports
// "succeeded" before its last GitLab status call returns; a request in
// between joins that run instead of starting a new one).
// A tag's build is its own run (tag "" for a branch's).
func (b *buildBench) waitClosed(project, sha, tag string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = b.temporal.Client.GetWorkflow(ctx, imagebuild.WorkflowID(project, sha, tag), "").Get(ctx, nil)
}

func (b *buildBench) archiveDownloads() int {
	n := 0
	for _, c := range b.gitlab.Calls() {
		if strings.Contains(c.Path, "/repository/archive") {
			n++
		}
	}
	return n
}

func TestPushEventBuildsTheImageOnce(t *testing.T) {
	b := startBuildBench(t)
	sha := b.project.Commit("main", demoRepository(t), "demo app")
	event := b.gitlab.PushEvent(b.project, "main", strings.Repeat("0", 40), sha)

	code, _ := b.hook("Push Hook", event, "wrong-secret")
	require.Equal(t, http.StatusUnauthorized, code)

	code, body := b.hook("Push Hook", event, hookSecret)
	require.Equal(t, http.StatusAccepted, code, body)
	id := body["id"].(string)
	st := b.waitBuild(id, 5*time.Minute)
	require.Equal(t, string(imagebuild.StateSucceeded), st["state"], st)
	img := st["image"].(map[string]any)
	digest := img["digest"].(string)
	require.True(t, strings.HasPrefix(digest, "sha256:"), img)
	require.Equal(t, false, st["skipped"])

	// The registry serves that digest for the commit's tag…
	got, found, err := b.regc.ManifestDigest(context.Background(), demoImageRepo, sha)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, digest, got)
	// …and the engine pulls it back by digest.
	_, _ = b.driver.Client().ImageRemove(context.Background(), b.regc.Ref(demoImageRepo, sha), image.RemoveOptions{Force: true})
	byDigest := b.registry.Host + "/" + demoImageRepo
	rc, err := b.driver.Client().ImagePull(context.Background(), byDigest+"@"+digest, image.PullOptions{})
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	inspect, err := b.driver.Client().ImageInspect(context.Background(), byDigest+"@"+digest)
	require.NoError(t, err)
	require.Equal(t, sha, inspect.Config.Labels["org.opencontainers.image.revision"])
	t.Cleanup(func() {
		_, _ = b.driver.Client().ImageRemove(context.Background(), byDigest+"@"+digest, image.RemoveOptions{Force: true})
	})

	// GitLab saw pending → running → success.
	b.waitClosed(demoProject, sha, "")
	var states []string
	for _, s := range b.gitlab.Statuses(b.project, sha) {
		states = append(states, s.State)
	}
	require.Equal(t, []string{"success"}, lastStates(states))

	// A second delivery of the same event builds nothing.
	b.waitClosed(demoProject, sha, "")
	downloads := b.archiveDownloads()
	code, body = b.hook("Push Hook", event, hookSecret)
	require.Equal(t, http.StatusAccepted, code, body)
	st = b.waitBuild(body["id"].(string), time.Minute)
	require.Equal(t, string(imagebuild.StateSucceeded), st["state"], st)
	require.Equal(t, true, st["skipped"])
	require.Equal(t, digest, st["image"].(map[string]any)["digest"])
	require.Equal(t, downloads, b.archiveDownloads(), "no second download, so no second build")

	// Events for other branches are acknowledged and ignored.
	other := b.gitlab.PushEvent(b.project, "feature", strings.Repeat("0", 40), sha)
	code, body = b.hook("Push Hook", other, hookSecret)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body["ignored"], "does not build")

	b.checkHistory(imagebuild.WorkflowID(demoProject, sha, ""), "build-succeeded")
}

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// lastStates keeps the final state GitLab reports (statuses are listed
// newest last per commit and name).
func lastStates(states []string) []string {
	if len(states) == 0 {
		return nil
	}
	return states[len(states)-1:]
}

func TestBuildRequestsAndFailures(t *testing.T) {
	b := startBuildBench(t)
	files := demoRepository(t)
	sha := b.project.Commit("main", files, "demo app")

	// Bad input: a 400 naming the field, and nothing starts.
	for _, tc := range []struct{ body, field string }{
		{`{"project":"nope/app","ref":"main"}`, "project"},
		{`{"project":"demo/app","ref":"no-such-branch"}`, "ref"},
		{`{"project":"demo/app","ref":"../x"}`, "ref"},
	} {
		code, body, _ := b.do(http.MethodPost, "/v1/builds", rawJSON(tc.body))
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Equal(t, tc.field, body["field"])
	}

	// A tag build is also tagged with the tag's name.
	b.project.Tag("v1.0.0", sha)
	code, body, _ := b.do(http.MethodPost, "/v1/builds", map[string]any{"project": demoProject, "ref": "v1.0.0"})
	require.Equal(t, http.StatusAccepted, code, body)
	st := b.waitBuild(body["id"].(string), 5*time.Minute)
	require.Equal(t, string(imagebuild.StateSucceeded), st["state"], st)
	tagDigest, found, err := b.regc.ManifestDigest(context.Background(), demoImageRepo, "v1.0.0")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, st["image"].(map[string]any)["digest"], tagDigest)

	// A commit without a Dockerfile fails, readable and for good; GitLab
	// says failed; nothing is tagged.
	delete(files, "Dockerfile")
	broken := b.project.Commit("main", files, "drop the Dockerfile")
	code, body, _ = b.do(http.MethodPost, "/v1/builds", map[string]any{"project": demoProject, "ref": broken})
	require.Equal(t, http.StatusAccepted, code, body)
	st = b.waitBuild(body["id"].(string), 5*time.Minute)
	require.Equal(t, string(imagebuild.StateFailed), st["state"], st)
	require.Contains(t, st["error"], build.ErrDockerfileMissing)
	b.waitClosed(demoProject, broken, "") // the final GitLab status is posted last
	statuses := b.gitlab.Statuses(b.project, broken)
	require.Equal(t, "failed", statuses[len(statuses)-1].State)
	_, found, err = b.regc.ManifestDigest(context.Background(), demoImageRepo, broken)
	require.NoError(t, err)
	require.False(t, found)

	// A failing build step is a readable permanent failure too.
	files["Dockerfile"] = []byte("FROM scratch\nCOPY missing-file /x\n")
	failing := b.project.Commit("main", files, "break the build")
	code, body, _ = b.do(http.MethodPost, "/v1/builds", map[string]any{"project": demoProject, "ref": failing})
	require.Equal(t, http.StatusAccepted, code, body)
	st = b.waitBuild(body["id"].(string), 5*time.Minute)
	require.Equal(t, string(imagebuild.StateFailed), st["state"], st)
	require.Contains(t, st["error"], build.ErrBuildFailed)
	b.checkHistory(imagebuild.WorkflowID(demoProject, failing, ""), "build-failed")
}
