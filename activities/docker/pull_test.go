package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/dockerbuild"
	"github.com/tenantflow/tenantflow/activities/registry"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// What the pull tests (EnsureImage) need to put an image into a registry
// first: a tiny image built, tagged and pushed with dockerbuild, as an
// image build would.

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// removeImageID deletes an image with all its tags and digest references.
func removeImageID(t *testing.T, d *docker.Driver, id string) {
	_, err := d.Client().ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("clean up image %s: %v", id, err)
	}
}

func registryClient(t *testing.T, reg *harness.Registry, password string) *registry.Client {
	t.Helper()
	c, err := registry.NewClient(registry.Config{Enabled: true, URL: reg.URL, User: reg.User, Password: password}, harness.Logger(t))
	require.NoError(t, err)
	return c
}

// pushedImage builds a FROM-scratch image holding one file with unique
// content, tags it repo:tag in the registry of c and pushes it there. It
// returns the reference, the local image id and the pushed digest, and
// removes the image (every name of it) from the engine when the test ends.
func pushedImage(t *testing.T, d *docker.Driver, c *registry.Client, repo, tag string) (ref, id, digest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := dockerbuild.New(d.Client(), harness.Logger(t))
	local := "tenantflow-pull-test:" + randomSuffix(t)
	buildCtx, err := dockerbuild.ContextTar(map[string]dockerbuild.ContextFile{
		"Dockerfile": {Mode: 0o644, Data: []byte("FROM scratch\nCOPY f /f\n")},
		"f":          {Mode: 0o644, Data: []byte("tenantflow pull test " + local + "\n")},
	})
	require.NoError(t, err)
	id, err = b.BuildImage(ctx, buildCtx, dockerbuild.BuildOptions{Tags: []string{local}})
	require.NoError(t, err)
	t.Cleanup(func() { removeImageID(t, d, id) })
	ref = c.Ref(repo, tag)
	require.NoError(t, b.TagImage(ctx, local, ref))
	digest, err = b.PushImage(ctx, ref, c.AuthConfig(), nil)
	require.NoError(t, err)
	return ref, id, digest
}
