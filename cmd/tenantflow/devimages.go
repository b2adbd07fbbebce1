package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/api/types/registry"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/dockerbuild"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/internal/devregistry"
)

// demoRepo is the demo app's repository in the dev registry.
const demoRepo = "demo/app"

// demoVersions are the demo app's releases `make run` puts in its
// registry: the tour releases v2 to tenants created on the template's
// image, and rolls it back.
var demoVersions = []string{"v1", "v2"}

// demoImagesFile lists them, pinned by digest, for the tour to read.
const demoImagesFile = "demo-images.json"

// startDevRegistry serves the dev registry and pushes the demo app's
// releases into it. A registry that cannot start stops dev (its address
// is a setting to change); images that cannot be made are a warning: the
// rest of the tour works without them.
func startDevRegistry(ctx context.Context, addr, dataDir, dockerHost string, log *slog.Logger) (*devregistry.Registry, map[string]string, error) {
	reg, err := devregistry.Start(ctx, addr, filepath.Join(dataDir, "registry"), log.With("component", "registry"))
	if err != nil {
		return nil, nil, fmt.Errorf("TENANTFLOW_DEV_REGISTRY_LISTEN: %w", err)
	}
	seedCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	images, err := seedDemoImages(seedCtx, reg.Addr, dockerHost, log)
	if err != nil {
		log.Warn("the demo app's releases are not in the dev registry: a release needs another image", "error", err)
		return reg, nil, nil
	}
	b, _ := json.MarshalIndent(images, "", "  ")
	if err := os.WriteFile(filepath.Join(dataDir, demoImagesFile), append(b, '\n'), 0o600); err != nil {
		log.Warn("demo releases pushed, but their list is not written", "error", err)
	}
	return reg, images, nil
}

// seedDemoImages makes each demo release from the demo image on the
// engine and pushes it; it returns each one's reference by digest.
// Pushing what the registry has uploads nothing: a restart is quick.
func seedDemoImages(ctx context.Context, regAddr, dockerHost string, log *slog.Logger) (map[string]string, error) {
	d, err := docker.New(ctx, docker.Config{Host: dockerHost}, log)
	if err != nil {
		return nil, fmt.Errorf("TENANTFLOW_DOCKER_HOST: %w", err)
	}
	defer d.Close()
	// The base must be on the engine: a build FROM a missing image would
	// look for it on Docker Hub.
	if _, err := d.Client().ImageInspect(ctx, demoimage.Tag); err != nil {
		return nil, fmt.Errorf("no %s on the engine (make demo-image builds it): %w", demoimage.Tag, err)
	}
	builder := dockerbuild.New(d.Client(), log)
	images := map[string]string{}
	for _, v := range demoVersions {
		tag := regAddr + "/" + demoRepo + ":" + v
		if _, err := demoimage.Derive(ctx, d, demoimage.Tag, tag, v); err != nil {
			return nil, fmt.Errorf("demo %s from %s: %w", v, demoimage.Tag, err)
		}
		digest, err := builder.PushImage(ctx, tag, registry.AuthConfig{}, nil)
		if err != nil {
			// The engine pushes from its own network: a remote engine,
			// Docker Desktop or a rootless one does not reach this
			// process's loopback.
			return nil, fmt.Errorf("the engine could not push to %s (is it on this machine, not rootless?): %w", regAddr, err)
		}
		images[v] = regAddr + "/" + demoRepo + "@" + digest
	}
	return images, nil
}
