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
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

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

// demoRepoDir and demoProjectsFile are the demo app's git repository and
// the projects file that builds it, in the data dir.
const (
	demoRepoDir      = "demo-repo"
	demoProjectsFile = "projects.yaml"
	demoBuildImage   = "builds/demo-app"
)

// seedDemoRepo makes the demo app's git repository once: two commits,
// tagged v1 and v2, whose Dockerfile builds on the demo image, so a build
// needs nothing from the network. It returns the projects file that
// builds it (from the registry alone, no GitLab).
func seedDemoRepo(dataDir string) (string, error) {
	dir, err := filepath.Abs(filepath.Join(dataDir, demoRepoDir))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); os.IsNotExist(err) {
		if err := initDemoRepo(dir); err != nil {
			return "", fmt.Errorf("demo repository %s: %w", dir, err)
		}
	}
	projects := filepath.Join(dataDir, demoProjectsFile)
	doc := fmt.Sprintf(`# Written by tenantflow dev: the demo app, built from its git repository
# in the data dir (no GitLab needed). Edit %s/Dockerfile, commit, and
# POST /v1/builds {"project":"demo/app","ref":"master"}.
projects:
  - path: demo/app
    git: %s
    image: %s
    branches: [master]
    tags: true
`, dir, dir, demoBuildImage)
	return projects, os.WriteFile(projects, []byte(doc), 0o600)
}

func initDemoRepo(dir string) error {
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		return err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	sig := &object.Signature{Name: "tenantflow dev", Email: "dev@tenantflow.invalid", When: time.Now()}
	for _, v := range demoVersions {
		dockerfile := "# The demo app, release " + v + ": the demo image, reporting " + v + " on /version.\n" +
			"FROM " + demoimage.Tag + "\nENV DEMO_VERSION=" + v + "\n"
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
			return err
		}
		if _, err := wt.Add("Dockerfile"); err != nil {
			return err
		}
		h, err := wt.Commit("Release "+v, &git.CommitOptions{Author: sig})
		if err != nil {
			return err
		}
		if _, err := repo.CreateTag(v, h, nil); err != nil {
			return err
		}
	}
	return nil
}
