package registry_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/registry"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

func newClient(t *testing.T, reg *harness.Registry, password string) *registry.Client {
	t.Helper()
	c, err := registry.NewClient(registry.Config{Enabled: true, URL: reg.URL, User: reg.User, Password: password}, harness.Logger(t))
	require.NoError(t, err)
	return c
}

func uniqueRepo(t *testing.T, prefix string) string {
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "tenants/" + prefix + "-" + hex.EncodeToString(b)
}

func TestManifestDigest(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	c := newClient(t, reg, "")
	ctx := context.Background()
	require.NoError(t, c.Check(ctx))
	repo := uniqueRepo(t, "app")

	_, found, err := c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.False(t, found, "unknown repository")

	digest := reg.PutImage(t, repo, "v1", "first")
	got, found, err := c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, digest, got)

	_, found, err = c.ManifestDigest(ctx, repo, "v2")
	require.NoError(t, err)
	require.False(t, found, "unknown tag of a known repository")

	// Moving the tag to another image changes the answer: nothing cached.
	second := reg.PutImage(t, repo, "v1", "second")
	require.NotEqual(t, digest, second)
	got, found, err = c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, second, got)

	got, found, err = c.ManifestDigest(ctx, repo, digest)
	require.NoError(t, err, "a digest works where a tag does")
	require.True(t, found)
	require.Equal(t, digest, got)

	require.Equal(t, reg.Host+"/"+repo+":v1", c.Ref(repo, "v1"))
	require.Equal(t, reg.Host, c.AuthConfig().ServerAddress)
}

func TestDeleteManifest(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	c := newClient(t, reg, "")
	ctx := context.Background()
	repo := uniqueRepo(t, "del")
	digest := reg.PutImage(t, repo, "v1", "to delete")
	keep := reg.PutImage(t, repo, "v2", "to keep")
	require.ElementsMatch(t, []string{digest, keep}, reg.ManifestRevisions(t, repo))

	require.NoError(t, c.DeleteManifest(ctx, repo, digest))
	_, found := reg.ManifestDigest(t, repo, "v1")
	require.False(t, found, "the tag went with its manifest")
	_, found = reg.ManifestDigest(t, repo, digest)
	require.False(t, found)
	require.Equal(t, []string{keep}, reg.ManifestRevisions(t, repo))
	require.Equal(t, []string{"v2"}, reg.Tags(t, repo), "other tags stay")
	_, found, err := c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.False(t, found)

	require.NoError(t, c.DeleteManifest(ctx, repo, digest), "deleting again is success")
	require.NoError(t, c.DeleteManifest(ctx, uniqueRepo(t, "never"), digest), "unknown repository is success")
	require.Equal(t, []string{keep}, reg.ManifestRevisions(t, repo))
}

func TestDeleteDisabled(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{DisableDelete: true})
	c := newClient(t, reg, "")
	repo := uniqueRepo(t, "nodel")
	digest := reg.PutImage(t, repo, "v1", "stays")

	err := c.DeleteManifest(context.Background(), repo, digest)
	harness.RequireNonRetryable(t, err, registry.ErrDeleteDisabled)
	got, found := reg.ManifestDigest(t, repo, "v1")
	require.True(t, found)
	require.Equal(t, digest, got)
}

func TestInvalidInput(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	c := newClient(t, reg, "")
	ctx := context.Background()
	_, _, err := c.ManifestDigest(ctx, "Tenants/App", "v1")
	harness.RequireNonRetryable(t, err, registry.ErrInvalidReference)
	_, _, err = c.ManifestDigest(ctx, "tenants/app", "bad tag")
	harness.RequireNonRetryable(t, err, registry.ErrInvalidReference)
	err = c.DeleteManifest(ctx, "tenants/app", "v1")
	harness.RequireNonRetryable(t, err, registry.ErrInvalidReference)
	err = c.DeleteManifest(ctx, "../etc", "sha256:"+strings.Repeat("0", 64))
	harness.RequireNonRetryable(t, err, registry.ErrInvalidReference)
}

func TestBasicAuth(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{User: "builder", Password: "s3cret-basic"})
	ctx := context.Background()
	repo := uniqueRepo(t, "basic")
	digest := reg.PutImage(t, repo, "v1", "basic")

	right := newClient(t, reg, "s3cret-basic")
	require.NoError(t, right.Check(ctx))
	got, found, err := right.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, digest, got)
	require.Equal(t, "builder", right.AuthConfig().Username)

	wrong := newClient(t, reg, "not-the-password")
	err = wrong.Check(ctx)
	harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
	require.NotContains(t, err.Error(), "not-the-password")
	_, _, err = wrong.ManifestDigest(ctx, repo, "v1")
	harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
	err = wrong.DeleteManifest(ctx, repo, digest)
	harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
	_, found = reg.ManifestDigest(t, repo, "v1")
	require.True(t, found, "a refused delete deleted")

	anonymous, err := registry.NewClient(registry.Config{Enabled: true, URL: reg.URL}, harness.Logger(t))
	require.NoError(t, err)
	harness.RequireNonRetryable(t, anonymous.Check(ctx), runtimes.ErrRegistryUnauthorized)
}

// TestBearerAuth runs the token flow of GitLab's registry and Harbor: the
// registry answers 401 with a Bearer challenge naming a token server, which
// checks the credentials and signs a token the registry verifies.
func TestBearerAuth(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{User: "builder", Password: "s3cret-token", TokenAuth: true})
	ctx := context.Background()
	repo := uniqueRepo(t, "bearer")
	digest := reg.PutImage(t, repo, "v1", "bearer")

	c := newClient(t, reg, "s3cret-token")
	require.NoError(t, c.Check(ctx))
	got, found, err := c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, digest, got)
	issued := reg.TokensIssued()
	require.Positive(t, issued)
	_, _, err = c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.Equal(t, issued, reg.TokensIssued(), "the token of the scope is reused until it expires")

	// Delete needs another scope: a token of its own.
	require.NoError(t, c.DeleteManifest(ctx, repo, digest))
	require.Greater(t, reg.TokensIssued(), issued)
	_, found = reg.ManifestDigest(t, repo, "v1")
	require.False(t, found)
	require.NoError(t, c.DeleteManifest(ctx, repo, digest))

	wrong := newClient(t, reg, "not-the-password")
	err = wrong.Check(ctx)
	harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
	require.NotContains(t, err.Error(), "not-the-password")
	_, _, err = wrong.ManifestDigest(ctx, repo, "v1")
	harness.RequireNonRetryable(t, err, runtimes.ErrRegistryUnauthorized)
}

func TestOutage(t *testing.T) {
	reg := harness.StartRegistry(t, harness.RegistryOptions{User: "builder", Password: "s3cret-outage"})
	c := newClient(t, reg, "s3cret-outage")
	ctx := context.Background()
	repo := uniqueRepo(t, "outage")
	digest := reg.PutImage(t, repo, "v1", "survives")
	require.NoError(t, c.Check(ctx))

	reg.Stop()
	_, _, err := c.ManifestDigest(ctx, repo, "v1")
	harness.RequireRetryable(t, err)
	harness.RequireRetryable(t, c.Check(ctx))
	harness.RequireRetryable(t, c.DeleteManifest(ctx, repo, digest))

	reg.Start()
	got, found, err := c.ManifestDigest(ctx, repo, "v1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, digest, got)
}
