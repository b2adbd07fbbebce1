package dockerbuild_test

import (
	"context"
	"io"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/dockerbuild"
	"github.com/tenantflow/tenantflow/activities/registry"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// engine connects to the local engine (through the Docker driver, as the
// worker does) and returns the driver and a builder on it.
func engine(t *testing.T) (*docker.Driver, *dockerbuild.Builder) {
	t.Helper()
	d := harness.Docker(t)
	return d, dockerbuild.New(d.Client(), harness.Logger(t))
}

// pushedRef tags a fresh tiny image as repo:tag in the registry and returns
// the reference and the local image id.
func pushedRef(t *testing.T, d *docker.Driver, c *registry.Client, repo, tag string) (ref, id string) {
	t.Helper()
	local := "tenantflow-push-test:" + harness.RandomHex(t, 4)
	id = harness.TinyImage(t, d, local)
	ref = c.Ref(repo, tag)
	require.NoError(t, dockerbuild.New(d.Client(), harness.Logger(t)).TagImage(context.Background(), local, ref))
	return ref, id
}

func TestPushImage(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	d, b := engine(t)
	c := harness.RegistryClient(t, reg, "")
	ctx := context.Background()
	repo := "tenants/push-" + harness.RandomHex(t, 4)

	_, found, err := c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.False(t, found, "nothing pushed yet")

	ref, id := pushedRef(t, d, c, repo, "v1")
	var lines []string
	digest, err := b.PushImage(ctx, ref, c.AuthConfig(), func(l string) { lines = append(lines, l) })
	require.NoError(t, err)
	require.Regexp(t, `^sha256:[0-9a-f]{64}$`, digest)
	t.Logf("push progress:\n%s", strings.Join(lines, "\n"))
	require.NotEmpty(t, lines)
	seen := map[string]bool{}
	for _, l := range lines {
		require.False(t, seen[l], "progress line repeated (not throttled): %q", l)
		seen[l] = true
	}

	// The registry itself holds exactly this manifest under the tag.
	got, found := reg.ManifestDigest(t, repo, "v1")
	require.True(t, found)
	require.Equal(t, digest, got)
	require.Equal(t, []string{"v1"}, reg.Tags(t, repo))
	require.Equal(t, []string{digest}, reg.ManifestRevisions(t, repo))
	got, found, err = c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, digest, got)

	// A second push (a retried activity) stores nothing new.
	again, err := b.PushImage(ctx, ref, c.AuthConfig(), nil)
	require.NoError(t, err)
	require.Equal(t, digest, again)
	require.Equal(t, []string{digest}, reg.ManifestRevisions(t, repo))
	require.Equal(t, []string{"v1"}, reg.Tags(t, repo))

	// Drop the image from the engine and pull it back by digest: the
	// registry serves the very image that was built.
	harness.RemoveImage(t, d, id)
	_, err = d.Client().ImageInspect(ctx, id)
	require.True(t, cerrdefs.IsNotFound(err), "image still on the engine: %v", err)
	byDigest := reg.Host + "/" + repo + "@" + digest
	rc, err := d.Client().ImagePull(ctx, byDigest, image.PullOptions{})
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	t.Cleanup(func() { harness.RemoveImage(t, d, byDigest) })
	info, err := d.Client().ImageInspect(ctx, byDigest)
	require.NoError(t, err)
	require.Equal(t, id, info.ID)
	require.Contains(t, info.RepoDigests, byDigest)
}

func TestPushImageAuth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token bool
	}{{"htpasswd", false}, {"token", true}} {
		t.Run(tc.name, func(t *testing.T) {
			reg := harness.StartRegistry(t, harness.RegistryOptions{User: "builder", Password: "right-password", TokenAuth: tc.token})
			d, b := engine(t)
			ctx := context.Background()
			repo := "tenants/auth-" + harness.RandomHex(t, 4)

			wrong := harness.RegistryClient(t, reg, "wrong-password")
			ref, _ := pushedRef(t, d, wrong, repo, "v1")
			_, err := b.PushImage(ctx, ref, wrong.AuthConfig(), nil)
			harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
			t.Logf("push with a wrong password: %v", err)
			require.NotContains(t, err.Error(), "wrong-password")
			_, _, err = wrong.ManifestDigest(ctx, repo, "v1")
			harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
			_, found := reg.ManifestDigest(t, repo, "v1")
			require.False(t, found, "a refused push stored a manifest")

			right := harness.RegistryClient(t, reg, "right-password")
			digest, err := b.PushImage(ctx, ref, right.AuthConfig(), nil)
			require.NoError(t, err)
			got, found := reg.ManifestDigest(t, repo, "v1")
			require.True(t, found)
			require.Equal(t, digest, got)
			got, found, err = right.ManifestDigest(ctx, repo, "v1")
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, digest, got)
			if tc.token {
				require.Positive(t, reg.TokensIssued())
			}
		})
	}
}

func TestPushImageFailures(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	d, b := engine(t)
	c := harness.RegistryClient(t, reg, "")
	ctx := context.Background()

	// An image the engine does not have cannot appear by retrying.
	_, err := b.PushImage(ctx, c.Ref("tenants/absent-"+harness.RandomHex(t, 4), "v1"), c.AuthConfig(), nil)
	harness.RequireNonRetryable(t, err, runtimes.ErrImageNotFound)
	t.Logf("push of an absent image: %v", err)
	_, err = b.PushImage(ctx, "127.0.0.1:1/UPPER/case:v1", c.AuthConfig(), nil)
	harness.RequireNonRetryable(t, err, runtimes.ErrInvalidImageReference)

	// Registry down: transient; back up: the same call succeeds.
	repo := "tenants/outage-" + harness.RandomHex(t, 4)
	ref, _ := pushedRef(t, d, c, repo, "v1")
	reg.Stop()
	_, err = b.PushImage(ctx, ref, c.AuthConfig(), nil)
	harness.RequireRetryable(t, err)
	t.Logf("push while the registry is down: %v", err)
	reg.Start()
	digest, err := b.PushImage(ctx, ref, c.AuthConfig(), nil)
	require.NoError(t, err)
	got, found := reg.ManifestDigest(t, repo, "v1")
	require.True(t, found)
	require.Equal(t, digest, got)
}

func TestPushRemoveImage(t *testing.T) {
	d, b := engine(t)
	ctx := context.Background()
	local := "tenantflow-push-test:" + harness.RandomHex(t, 4)
	id := harness.TinyImage(t, d, local)
	other := "tenantflow-push-test:other-" + harness.RandomHex(t, 4)

	require.NoError(t, b.TagImage(ctx, local, other))
	require.NoError(t, b.TagImage(ctx, local, other), "tagging again is harmless")
	info, err := d.Client().ImageInspect(ctx, other)
	require.NoError(t, err)
	require.Equal(t, id, info.ID)
	err = b.TagImage(ctx, "tenantflow-push-test:absent-"+harness.RandomHex(t, 4), other)
	harness.RequireNonRetryable(t, err, runtimes.ErrImageNotFound)

	require.NoError(t, b.RemoveImage(ctx, other))
	_, err = d.Client().ImageInspect(ctx, other)
	require.True(t, cerrdefs.IsNotFound(err), "tag still there: %v", err)
	_, err = d.Client().ImageInspect(ctx, local)
	require.NoError(t, err, "removing one name keeps the image's other names")
	require.NoError(t, b.RemoveImage(ctx, other), "removing an absent image is success")
}
