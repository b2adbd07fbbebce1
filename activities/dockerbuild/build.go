// Package dockerbuild builds images on a Docker Engine and hands them to a
// registry: build from a context, tag, push (returning the digest the
// registry stored) and remove the local name. The GitLab image builds
// (package build) and the demo image builder use it; the runtime drivers
// do not: a runtime only pulls (runtimes.Driver.EnsureImage).
package dockerbuild

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// Builder builds, tags, pushes and removes images on one Docker Engine.
type Builder struct {
	cli *client.Client
	log *slog.Logger
}

// New uses the engine client cli (the Docker driver's, see
// docker.Driver.Client: builds run on the engine that runs the tenants).
func New(cli *client.Client, log *slog.Logger) *Builder {
	if log == nil {
		log = slog.Default()
	}
	return &Builder{cli: cli, log: log}
}

// ContextFile is one entry of a build context made in memory.
type ContextFile struct {
	Mode int64
	Data []byte
	Dir  bool
}

// ContextTar packs files into the tar stream ImageBuild expects. Entries are
// written in name order so the same files always give the same context.
func ContextTar(files map[string]ContextFile) (*bytes.Buffer, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	buf := &bytes.Buffer{}
	tw := tar.NewWriter(buf)
	for _, n := range names {
		f := files[n]
		hdr := &tar.Header{Name: n, Mode: f.Mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}
		if f.Dir {
			hdr = &tar.Header{Name: strings.TrimSuffix(n, "/") + "/", Mode: f.Mode, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", n, err)
		}
		if !f.Dir {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("tar %s: %w", n, err)
			}
		}
	}
	return buf, tw.Close()
}

// BuildError is a build the engine ran and that failed (a missing
// Dockerfile, a failing step): running it again gives the same result.
type BuildError struct{ Message string }

func (e *BuildError) Error() string { return "image build failed: " + e.Message }

// BuildOptions describe one image build.
type BuildOptions struct {
	Tags       []string
	Dockerfile string
	BuildArgs  map[string]string
	Labels     map[string]string
	// Log receives each line of build output (may be nil).
	Log func(line string)
}

// BuildImage builds an image from a tar build context through the Engine API
// and returns its id. Build errors reported inside the JSON stream (the
// engine answers 200 and fails later) are returned as errors.
func (b *Builder) BuildImage(ctx context.Context, buildContext io.Reader, opts BuildOptions) (string, error) {
	args := map[string]*string{}
	for k, v := range opts.BuildArgs {
		args[k] = &v
	}
	resp, err := b.cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        opts.Tags,
		Dockerfile:  opts.Dockerfile,
		BuildArgs:   args,
		Labels:      opts.Labels,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		if strings.Contains(err.Error(), "Cannot locate specified Dockerfile") {
			return "", &BuildError{Message: err.Error()}
		}
		return "", fmt.Errorf("build %v: %w", opts.Tags, err)
	}
	defer resp.Body.Close()
	var id string
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
			Aux    *struct {
				ID string `json:"ID"`
			} `json:"aux"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("build %v: read output: %w", opts.Tags, err)
		}
		if msg.Error != "" {
			return "", &BuildError{Message: msg.Error}
		}
		if msg.Aux != nil && msg.Aux.ID != "" {
			id = msg.Aux.ID
		}
		if line := strings.TrimRight(msg.Stream, "\n"); line != "" && opts.Log != nil {
			opts.Log(line)
		}
	}
	if id == "" {
		return "", fmt.Errorf("build %v: the engine reported no image id", opts.Tags)
	}
	return id, nil
}
