// Package demoimage builds the demo tenant app's image FROM scratch through
// the Docker Engine API. The engines Tenantflow develops on have no images and
// cannot pull any, so the default template's image is made from the project's
// own static binary.
package demoimage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/dockerbuild"
)

// Tag is the image the default template runs.
const Tag = "tenantflow/demo-app:dev"

// Dockerfile of the demo image. /data is created owned by nobody so a fresh
// named volume mounted there inherits that owner and the app can write to it.
const Dockerfile = `FROM scratch
ARG VERSION=dev
ENV DEMO_VERSION=$VERSION
ARG HEALTHZ=ok
ENV DEMO_HEALTHZ=$HEALTHZ
ARG FAULT=
ENV DEMO_FAULT=$FAULT
COPY --chown=65534:65534 data /data
COPY demo-app /demo-app
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/demo-app"]
CMD ["serve"]
`

// CompileBinary builds a static demo-app binary into dir and returns its path.
// It needs the Go toolchain and must run inside the module.
func CompileBinary(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "demo-app")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out,
		"github.com/tenantflow/tenantflow/internal/demoapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compile demo-app: %w\n%s", err, b)
	}
	return out, nil
}

// Build makes the image tag from the binary at binPath; version ends up in the
// app's /version answer, so release tests can tell images apart.
func Build(ctx context.Context, d *docker.Driver, binPath, tag, version string) (string, error) {
	return BuildWith(ctx, d, binPath, tag, version, Options{})
}

// BuildUnhealthy makes an image like Build whose app serves everything but
// always fails /healthz (503), so a release of it must be rolled back.
func BuildUnhealthy(ctx context.Context, d *docker.Driver, binPath, tag, version string) (string, error) {
	return BuildWith(ctx, d, binPath, tag, version, Options{Unhealthy: true})
}

// Options make a deliberately bad release candidate.
type Options struct {
	// Unhealthy: the app always fails /healthz (503).
	Unhealthy bool
	// Fault: the app passes its health check but its home page answers
	// 500 ("error") or slowly ("slow"), which only canary analysis sees.
	Fault string
}

// BuildWith makes the image tag like Build, with opts.
func BuildWith(ctx context.Context, d *docker.Driver, binPath, tag, version string, opts Options) (string, error) {
	healthz := "ok"
	if opts.Unhealthy {
		healthz = "fail"
	}
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return "", fmt.Errorf("read demo-app binary: %w", err)
	}
	buildCtx, err := dockerbuild.ContextTar(map[string]dockerbuild.ContextFile{
		"Dockerfile": {Mode: 0o644, Data: []byte(Dockerfile)},
		"demo-app":   {Mode: 0o755, Data: bin},
		"data":       {Mode: 0o755, Dir: true},
	})
	if err != nil {
		return "", err
	}
	// The build runs on the engine that runs the tenants.
	return dockerbuild.New(d.Client(), nil).BuildImage(ctx, buildCtx, dockerbuild.BuildOptions{
		Tags:      []string{tag},
		BuildArgs: map[string]string{"VERSION": version, "HEALTHZ": healthz, "FAULT": opts.Fault},
		Labels: map[string]string{
			"org.opencontainers.image.title":   "tenantflow demo-app",
			"org.opencontainers.image.version": version,
			"tenantflow.demo.healthz":          healthz,
			"tenantflow.demo.fault":            opts.Fault,
		},
	})
}

// Derive makes the image tag from base (a demo image on the engine) with
// the app reporting version: a new release of the same app without
// compiling it again, as `make run` seeds its registry.
func Derive(ctx context.Context, d *docker.Driver, base, tag, version string) (string, error) {
	dockerfile := "FROM " + base + "\nENV DEMO_VERSION=" + version + "\n"
	buildCtx, err := dockerbuild.ContextTar(map[string]dockerbuild.ContextFile{
		"Dockerfile": {Mode: 0o644, Data: []byte(dockerfile)},
	})
	if err != nil {
		return "", err
	}
	return dockerbuild.New(d.Client(), nil).BuildImage(ctx, buildCtx, dockerbuild.BuildOptions{
		Tags:   []string{tag},
		Labels: map[string]string{"org.opencontainers.image.version": version},
	})
}
