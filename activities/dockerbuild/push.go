package dockerbuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/internal/registryauth"
	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// pushMessage is one JSON message of the engine's push stream.
type pushMessage struct {
	Status         string `json:"status"`
	ID             string `json:"id"`
	ProgressDetail struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux *struct {
		Tag    string `json:"Tag"`
		Digest string `json:"Digest"`
		Size   int64  `json:"Size"`
	} `json:"aux"`
}

// digestLine is the engine's last status line, "<tag>: digest: <d> size: <n>",
// read when an old engine sends no aux message.
var digestLine = regexp.MustCompile(`digest: (\S+:[0-9a-fA-F]+) size: \d+`)

// PushImage has the engine push ref (<registry>/<repo>:<tag>) with auth and
// returns the manifest digest the registry stored, so the deployment can
// pin ref@digest. Pushing an image the registry already has uploads
// nothing and returns the same digest: retries are safe. progress gets
// one line per layer state change (Preparing, Pushing, Pushed, Layer
// already exists…), not every progress-bar tick. Refused credentials and a
// missing local image are permanent failures; the rest (registry down,
// 5xx, network) is retried.
func (b *Builder) PushImage(ctx context.Context, ref string, auth registry.AuthConfig, progress func(line string)) (digest string, err error) {
	if progress == nil {
		progress = func(string) {}
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("push %s: %v", ref, err), runtimes.ErrInvalidImageReference, nil)
	}
	encoded, err := registry.EncodeAuthConfig(auth)
	if err != nil {
		return "", fmt.Errorf("push %s: encode credentials: %w", ref, err)
	}
	body, err := b.cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: encoded})
	if err != nil {
		return "", pushError(ref, err.Error(), err)
	}
	defer body.Close()

	states := map[string]string{} // layer id → last status reported
	dec := json.NewDecoder(body)
	for {
		var msg pushMessage
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("push %s: read engine output: %w", ref, err)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return "", pushError(ref, msg.ErrorDetail.Message, nil)
		}
		if msg.Error != "" {
			return "", pushError(ref, msg.Error, nil)
		}
		if msg.Aux != nil && msg.Aux.Digest != "" {
			digest = msg.Aux.Digest
			continue
		}
		if msg.Status == "" {
			continue
		}
		if msg.ID == "" {
			if m := digestLine.FindStringSubmatch(msg.Status); m != nil && digest == "" {
				digest = m[1]
			}
			progress(msg.Status)
			continue
		}
		if states[msg.ID] == msg.Status {
			continue
		}
		states[msg.ID] = msg.Status
		line := msg.ID + ": " + msg.Status
		if msg.ProgressDetail.Total > 0 {
			line += " (" + strconv.FormatInt(msg.ProgressDetail.Total, 10) + " bytes)"
		}
		progress(line)
	}
	if digest == "" {
		return "", fmt.Errorf("push %s: the engine reported no digest", ref)
	}
	b.log.InfoContext(ctx, "image pushed", "ref", ref, "digest", digest)
	return digest, nil
}

// pushError sorts a push failure: what a retry cannot fix (credentials,
// rights, a missing local image) is non-retryable; the rest is transient.
func pushError(ref, msg string, cause error) error {
	text := fmt.Sprintf("push %s: %s", ref, msg)
	lower := strings.ToLower(msg)
	switch {
	case registryauth.Refused(cause, msg):
		return temporal.NewNonRetryableApplicationError(text, runtimes.ErrRegistryUnauthorized, nil)
	case cerrdefs.IsNotFound(cause) ||
		strings.Contains(lower, "does not exist locally") ||
		strings.Contains(lower, "no such image"):
		return temporal.NewNonRetryableApplicationError(text, runtimes.ErrImageNotFound, nil)
	case cerrdefs.IsInvalidArgument(cause):
		return temporal.NewNonRetryableApplicationError(text, runtimes.ErrInvalidImageReference, nil)
	case cause != nil:
		return fmt.Errorf("push %s: %w", ref, cause)
	default:
		return errors.New(text)
	}
}

// TagImage gives the local image source the name target (typically the
// registry reference before PushImage). Tagging again is harmless: the
// engine moves the tag, so retries are safe.
func (b *Builder) TagImage(ctx context.Context, source, target string) error {
	err := b.cli.ImageTag(ctx, source, target)
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("tag %s as %s: %v", source, target, err), runtimes.ErrImageNotFound, nil)
	case cerrdefs.IsInvalidArgument(err):
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("tag %s as %s: %v", source, target, err), runtimes.ErrInvalidImageReference, nil)
	default:
		return fmt.Errorf("tag %s as %s: %w", source, target, err)
	}
}

// RemoveImage deletes the local name ref (the image itself goes with its
// last name), so pushed build results do not pile up on the Docker host.
// An image already gone is success.
func (b *Builder) RemoveImage(ctx context.Context, ref string) error {
	_, err := b.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}
