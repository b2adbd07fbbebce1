package docker

import (
	"context"
	"io"

	"github.com/docker/docker/api/types/registry"

	"github.com/tenantflow/tenantflow/activities/dockerbuild"
)

// Image builds and pushes moved to package dockerbuild: the runtime driver
// only pulls (EnsureImage). These forwarders keep the callers outside the
// runtime building until they switch (wiring sets build.Activities.Engine
// to the driver; testsuite/e2e tags and pushes with it); delete this file
// then.

// builder is the engine's image builder.
func (d *Driver) builder() *dockerbuild.Builder { return dockerbuild.New(d.cli, d.log) }

// BuildImage builds an image on the engine.
//
// Deprecated: use dockerbuild.New(d.Client(), log).BuildImage.
func (d *Driver) BuildImage(ctx context.Context, buildContext io.Reader, opts dockerbuild.BuildOptions) (string, error) {
	return d.builder().BuildImage(ctx, buildContext, opts)
}

// PushImage has the engine push ref and returns the stored digest.
//
// Deprecated: use dockerbuild.New(d.Client(), log).PushImage.
func (d *Driver) PushImage(ctx context.Context, ref string, auth registry.AuthConfig, progress func(line string)) (string, error) {
	return d.builder().PushImage(ctx, ref, auth, progress)
}

// TagImage gives the local image source the name target.
//
// Deprecated: use dockerbuild.New(d.Client(), log).TagImage.
func (d *Driver) TagImage(ctx context.Context, source, target string) error {
	return d.builder().TagImage(ctx, source, target)
}
