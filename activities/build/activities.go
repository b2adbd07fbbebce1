package build

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/registry"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/dockerbuild"
)

// Failure types a retry cannot fix, as shown in the Web UI.
const (
	ErrBuildFailed       = "BuildFailed"
	ErrDockerfileMissing = "DockerfileMissing"
	ErrDigestMismatch    = "DigestMismatch"
)

// Source yields a repository archive (tar.gz) at a commit: GitLab's.
type Source interface {
	Archive(ctx context.Context, projectID int64, sha string) (io.ReadCloser, error)
}

// GitSource yields the archive of a commit of any git repository
// (gitsource), laid out as GitLab's: one top directory.
type GitSource interface {
	Archive(ctx context.Context, remote, sha string) (io.ReadCloser, error)
}

// ErrNoSource is the failure type of a build whose project's source this
// worker does not have (a GitLab project without GitLab configured).
const ErrNoSource = "BuildSourceMissing"

// Engine builds and pushes images: a Docker Engine's dockerbuild.Builder.
type Engine interface {
	BuildImage(ctx context.Context, buildContext io.Reader, opts dockerbuild.BuildOptions) (string, error)
	PushImage(ctx context.Context, ref string, auth registry.AuthConfig, progress func(line string)) (string, error)
}

// Registry is the private registry the images go to.
type Registry interface {
	ManifestDigest(ctx context.Context, repo, tag string) (digest string, found bool, err error)
	DeleteManifest(ctx context.Context, repo, digest string) error
	Ref(repo, tag string) string
	AuthConfig() registry.AuthConfig
}

// Activities build images. Heartbeat reports progress (build log lines,
// push progress); the worker sets it to activity.RecordHeartbeat.
type Activities struct {
	Source    Source    // GitLab projects' (nil: GitLab is not configured)
	Git       GitSource // projects with a git remote
	Engine    Engine
	Registry  Registry
	Heartbeat func(ctx context.Context, details ...any)
	Log       *slog.Logger
}

// BuildInput is one commit to build.
type BuildInput struct {
	Project   string `json:"project"`
	ProjectID int64  `json:"projectId"`
	// Git is the project's git remote or path; empty: a GitLab project.
	Git        string            `json:"git,omitempty"`
	SHA        string            `json:"sha"`
	Ref        string            `json:"ref"`
	RefType    string            `json:"refType"` // branch, tag or commit
	Image      string            `json:"image"`   // registry repository
	Dockerfile string            `json:"dockerfile"`
	BuildArgs  map[string]string `json:"buildArgs,omitempty"`
}

// Tags are the image tags of a build: the commit SHA, and the tag's name
// for a tag build.
func (in BuildInput) Tags() []string {
	tags := []string{in.SHA}
	if in.RefType == "tag" && in.Ref != "" {
		tags = append(tags, in.Ref)
	}
	return tags
}

// Image is a built image as the registry holds it.
type Image struct {
	Repository string   `json:"repository"`
	Tags       []string `json:"tags"`
	Ref        string   `json:"ref"`    // <registry>/<repo>:<sha>
	Digest     string   `json:"digest"` // empty: not (entirely) in the registry
	Built      bool     `json:"built"`  // false when it was there already
	// Found is what the registry held per tag when looked up.
	Found map[string]string `json:"found,omitempty"`
}

// Digests lists the digests found, for RemoveInput.Keep.
func (img Image) Digests() []string {
	var out []string
	for _, d := range img.Found {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// RemoveInput untags a failed build's image, keeping the digests the
// registry held before the build (they are someone else's).
type RemoveInput struct {
	Build BuildInput `json:"build"`
	Keep  []string   `json:"keep,omitempty"`
}

func (a *Activities) heartbeat(ctx context.Context, msg string) {
	if a.Heartbeat != nil {
		a.Heartbeat(ctx, msg)
	}
}

func (a *Activities) logger() *slog.Logger {
	if a.Log == nil {
		return slog.Default()
	}
	return a.Log
}

// FindImage looks the build's tags up in the registry: an image is there
// only when every tag is, at one digest.
func (a *Activities) FindImage(ctx context.Context, in BuildInput) (Image, error) {
	img := Image{Repository: in.Image, Tags: in.Tags(), Ref: a.Registry.Ref(in.Image, in.SHA), Found: map[string]string{}}
	complete := true
	for _, tag := range img.Tags {
		digest, found, err := a.Registry.ManifestDigest(ctx, in.Image, tag)
		if err != nil {
			return Image{}, err
		}
		if !found || (img.Digest != "" && digest != img.Digest) {
			complete = false
		}
		if found {
			img.Found[tag] = digest
			img.Digest = digest
		}
	}
	if !complete {
		img.Digest = ""
	}
	return img, nil
}

// BuildAndPushImage builds the commit and pushes every tag, then checks the
// registry serves the pushed digest. It is idempotent: when the registry
// already holds the image (an earlier attempt finished) it returns at once.
func (a *Activities) BuildAndPushImage(ctx context.Context, in BuildInput) (Image, error) {
	img, err := a.FindImage(ctx, in)
	if err != nil || img.Digest != "" {
		return img, err
	}
	log := a.logger().With("project", in.Project, "sha", in.SHA)
	// Build steps and layer uploads can be silent for minutes; a ticker keeps
	// heartbeating the last progress so only a dead worker times out.
	var last atomic.Value
	progress := func(msg string) { last.Store(msg); a.heartbeat(ctx, msg) }
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				a.heartbeat(ctx, last.Load().(string))
			}
		}
	}()
	progress("downloading the repository archive")
	archive, err := a.archive(ctx, in)
	if err != nil {
		return Image{}, err
	}
	defer archive.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(stripTopDir(archive, pw)) }()

	refs := make([]string, len(img.Tags))
	for i, t := range img.Tags {
		refs[i] = a.Registry.Ref(in.Image, t)
	}
	_, err = a.Engine.BuildImage(ctx, pr, dockerbuild.BuildOptions{
		Tags:       refs,
		Dockerfile: in.Dockerfile,
		BuildArgs:  in.BuildArgs,
		Labels: map[string]string{
			"org.opencontainers.image.revision": in.SHA,
			"org.opencontainers.image.source":   in.Project,
			"org.opencontainers.image.ref.name": in.Ref,
		},
		Log: func(line string) { progress("build: " + line) },
	})
	pr.Close()
	var buildErr *dockerbuild.BuildError
	switch {
	case errors.As(err, &buildErr) && strings.Contains(buildErr.Message, "Cannot locate specified Dockerfile"):
		return Image{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s@%s has no %s", in.Project, in.SHA[:min(12, len(in.SHA))], in.Dockerfile), ErrDockerfileMissing, err)
	case errors.As(err, &buildErr):
		return Image{}, temporal.NewNonRetryableApplicationError(buildErr.Error(), ErrBuildFailed, err)
	case err != nil:
		return Image{}, err
	}

	var digest string
	for _, ref := range refs {
		d, err := a.Engine.PushImage(ctx, ref, a.Registry.AuthConfig(), func(line string) { progress("push: " + line) })
		if err != nil {
			return Image{}, err
		}
		digest = d
	}
	// The registry must serve what was pushed; otherwise nothing stays
	// tagged with a digest nobody verified.
	got, err := a.FindImage(ctx, in)
	if err != nil {
		return Image{}, err
	}
	if got.Digest != digest {
		if got.Digest != "" {
			_ = a.Registry.DeleteManifest(ctx, in.Image, got.Digest)
		}
		msg := fmt.Sprintf("registry serves %q for %s, pushed %s", got.Digest, img.Ref, digest)
		return Image{}, temporal.NewNonRetryableApplicationError(msg, ErrDigestMismatch, nil)
	}
	got.Built = true
	log.Info("image pushed", "ref", got.Ref, "digest", got.Digest)
	return got, nil
}

// archive is the commit's tree from the project's source.
func (a *Activities) archive(ctx context.Context, in BuildInput) (io.ReadCloser, error) {
	switch {
	case in.Git != "" && a.Git != nil:
		return a.Git.Archive(ctx, in.Git, in.SHA)
	case in.Git == "" && a.Source != nil:
		return a.Source.Archive(ctx, in.ProjectID, in.SHA)
	}
	return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: this worker has no source for it (GitLab configured: %t)", in.Project, a.Source != nil), ErrNoSource, nil)
}

// RemoveImage deletes what the registry holds under the build's tags
// unless its digest was there before the build (Keep): the compensation of
// a build that failed after pushing some tags, so nothing half-pushed stays
// tagged and nothing older is touched.
func (a *Activities) RemoveImage(ctx context.Context, rm RemoveInput) error {
	in := rm.Build
	for _, tag := range in.Tags() {
		digest, found, err := a.Registry.ManifestDigest(ctx, in.Image, tag)
		if err != nil {
			return err
		}
		if found && !slices.Contains(rm.Keep, digest) {
			if err := a.Registry.DeleteManifest(ctx, in.Image, digest); err != nil {
				return err
			}
			a.logger().Info("removed half-pushed image", "project", in.Project, "tag", tag, "digest", digest)
		}
	}
	return nil
}

// stripTopDir copies a GitLab repository archive (tar.gz, everything under
// "<name>-<sha>-<sha>/") into an uncompressed tar rooted at the repository,
// which is what the engine expects as a build context.
func stripTopDir(gz io.Reader, w io.Writer) error {
	zr, err := gzip.NewReader(gz)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	tr := tar.NewReader(zr)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // git's pax header with the commit id
		}
		_, rest, _ := strings.Cut(hdr.Name, "/")
		if rest == "" {
			continue
		}
		hdr.Name = rest
		if hdr.Typeflag == tar.TypeLink {
			_, hdr.Linkname, _ = strings.Cut(hdr.Linkname, "/")
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("build context: %w", err)
		}
	}
	return tw.Close()
}
