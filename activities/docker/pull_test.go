package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/dockerbuild"
	"github.com/tenantflow/tenantflow/activities/registry"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// What the pull tests (EnsureImage) need to put an image into a registry
// first: a tiny image built, tagged and pushed with dockerbuild, as an
// image build would.

// pushedImage builds a tiny image, tags it repo:tag in the registry of c
// and pushes it there. It returns the reference, the local image id and
// the pushed digest; the image leaves the engine when the test ends.
func pushedImage(t *testing.T, d *docker.Driver, c *registry.Client, repo, tag string) (ref, id, digest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	local := "tenantflow-pull-test:" + harness.RandomHex(t, 4)
	id = harness.TinyImage(t, d, local)
	b := dockerbuild.New(d.Client(), harness.Logger(t))
	ref = c.Ref(repo, tag)
	require.NoError(t, b.TagImage(ctx, local, ref))
	digest, err := b.PushImage(ctx, ref, c.AuthConfig(), nil)
	require.NoError(t, err)
	return ref, id, digest
}
