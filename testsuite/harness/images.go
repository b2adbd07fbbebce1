package harness

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
)

// RandomHex is n random bytes in hex: a name no other test run takes, or
// (64 characters) a digest no registry holds.
func RandomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// TinyImage builds a FROM-scratch image holding one file with content
// unique to tag, tagged tag, and removes the image (every name of it) from
// the engine when the test ends. It returns the image id.
func TinyImage(t testing.TB, d *docker.Driver, tag string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	buildCtx, err := dockerbuild.ContextTar(map[string]dockerbuild.ContextFile{
		"Dockerfile": {Mode: 0o644, Data: []byte("FROM scratch\nCOPY f /f\n")},
		"f":          {Mode: 0o644, Data: []byte("tenantflow test image " + tag + "\n")},
	})
	require.NoError(t, err)
	id, err := dockerbuild.New(d.Client(), Logger(t)).BuildImage(ctx, buildCtx, dockerbuild.BuildOptions{Tags: []string{tag}})
	require.NoError(t, err)
	t.Cleanup(func() { RemoveImage(t, d, id) })
	return id
}

// RemoveImage deletes an image with all its tags and digest references.
func RemoveImage(t testing.TB, d *docker.Driver, id string) {
	_, err := d.Client().ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("clean up image %s: %v", id, err)
	}
}

// RegistryClient is a registry client for reg as its user, with password
// (reg.Password, or a wrong one to test refusals).
func RegistryClient(t testing.TB, reg *Registry, password string) *registry.Client {
	t.Helper()
	c, err := registry.NewClient(registry.Config{Enabled: true, URL: reg.URL, User: reg.User, Password: password}, Logger(t))
	require.NoError(t, err)
	return c
}
