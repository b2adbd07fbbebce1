package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/registry"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
)

// A project whose source is a git repository (here a path on the worker,
// as `make run`'s demo app) builds without GitLab: the API resolves the
// tag in the repository, the worker archives that commit's tree, builds
// it and pushes it to a real registry; the same tag again builds nothing.
func TestBuildFromAGitRepository(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	require.NoError(t, err)
	wt, err := repo.Worktree()
	require.NoError(t, err)
	for name, b := range demoRepository(t) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
		_, err := wt.Add(name)
		require.NoError(t, err)
	}
	h, err := wt.Commit("demo app", &git.CommitOptions{Author: &object.Signature{Name: "test", Email: "test@tenantflow.invalid", When: time.Now()}})
	require.NoError(t, err)
	_, err = repo.CreateTag("v1", h, nil)
	require.NoError(t, err)
	sha := h.String()

	wcfg := &wiring.Config{Registry: registry.Config{Enabled: true, URL: reg.URL, Timeout: 10 * time.Second}}
	regc, err := registry.NewClient(wcfg.Registry, harness.Logger(t))
	require.NoError(t, err)
	projects, err := build.ParseProjects([]byte(`
projects:
  - path: demo/app
    git: ` + dir + `
    image: tenants/demo-app
    buildArgs: {VERSION: "${shortSha}"}
    tags: true
`))
	require.NoError(t, err)
	p := startPlatformWith(t, wcfg, func(c *api.Config) {
		c.Builds = &api.Builds{Projects: projects, Resolver: build.Resolver{Projects: projects},
			WebUIURL: "http://127.0.0.1:8233", Namespace: "default"}
	})
	b := &buildBench{platform: p, registry: reg, regc: regc}

	code, body, _ := p.do(http.MethodPost, "/v1/builds", map[string]any{"project": demoProject, "ref": "v1"})
	require.Equal(t, http.StatusAccepted, code, body)
	id := body["id"].(string)
	st := b.waitBuild(id, 5*time.Minute)
	require.Equal(t, string(imagebuild.StateSucceeded), st["state"], st)
	digest := st["image"].(map[string]any)["digest"].(string)
	require.True(t, strings.HasPrefix(digest, "sha256:"), st)

	// The registry serves it under the tag's name, and it is that commit.
	got, found, err := regc.ManifestDigest(context.Background(), demoImageRepo, "v1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, digest, got)
	ref := reg.Host + "/" + demoImageRepo + "@" + digest
	inspect, err := p.driver.Client().ImageInspect(context.Background(), ref)
	require.NoError(t, err)
	require.Equal(t, sha, inspect.Config.Labels["org.opencontainers.image.revision"])
	t.Cleanup(func() {
		_, _ = p.driver.Client().ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true})
	})

	// The same tag again, once that run has ended: a new one finds the
	// image and builds nothing.
	b.waitClosed(demoProject, sha, "v1")
	b.checkHistory(imagebuild.WorkflowID(demoProject, sha, "v1"), "build-git-succeeded")
	code, body, _ = p.do(http.MethodPost, "/v1/builds", map[string]any{"project": demoProject, "ref": "v1"})
	require.Equal(t, http.StatusAccepted, code, body)
	st = b.waitBuild(body["id"].(string), time.Minute)
	require.Equal(t, string(imagebuild.StateSucceeded), st["state"], st)
	require.Equal(t, true, st["skipped"], st)
	require.Equal(t, digest, st["image"].(map[string]any)["digest"])
}
