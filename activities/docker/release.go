package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/internal/registryauth"
	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// ErrNoInstanceToKeep is the failure type of a RetireService asked to keep a
// generation that has no instance: retiring the others would take the
// service down.
const ErrNoInstanceToKeep = "NoInstanceToKeep"

// defaultStopTimeout is how long a retired instance may drain in-flight
// requests after SIGTERM when the release sets no time (Docker's default).
const defaultStopTimeout = 10

// AddRegistryAuth gives EnsureImage the credentials of one registry
// (auth.ServerAddress, host[:port]) for pulls of images hosted there. The
// worker calls it at start-up for the registry releases are pushed to.
func (d *Driver) AddRegistryAuth(auth registry.AuthConfig) {
	d.authMu.Lock()
	defer d.authMu.Unlock()
	if d.auths == nil {
		d.auths = map[string]registry.AuthConfig{}
	}
	d.auths[registryHost(auth.ServerAddress)] = auth
}

// registryHost reduces a server address as people write it
// ("https://reg.example:5000/", "index.docker.io") to the host[:port] an
// image reference names, so credentials are found by the image's domain.
func registryHost(addr string) string {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "https://"), "http://")
	addr, _, _ = strings.Cut(addr, "/")
	switch addr {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return addr
}

func (d *Driver) authFor(host string) (registry.AuthConfig, bool) {
	d.authMu.RLock()
	defer d.authMu.RUnlock()
	a, ok := d.auths[host]
	return a, ok
}

// EnsureImage makes image (repo:tag or repo@sha256:…) available on the
// engine before a cut-over starts an instance of it: nothing to do when the
// engine has it, else a pull with the credentials of the image's registry.
// An image the registry does not have, refused credentials and a reference
// that cannot be parsed are permanent; the rest (registry down) is retried.
func (d *Driver) EnsureImage(ctx context.Context, ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		msg := fmt.Sprintf("image %q: %v", ref, err)
		return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrInvalidImageReference, nil)
	}
	_, err = d.cli.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return nil
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}

	opts := image.PullOptions{}
	if auth, ok := d.authFor(reference.Domain(named)); ok {
		if opts.RegistryAuth, err = registry.EncodeAuthConfig(auth); err != nil {
			return fmt.Errorf("pull %s: encode credentials: %w", ref, err)
		}
	}
	body, err := d.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return pullError(ref, err.Error(), err)
	}
	defer body.Close()
	// The engine answers 200 and reports most failures inside the stream,
	// and the pull is complete only once the stream ends.
	dec := json.NewDecoder(body)
	for {
		var msg pullMessage
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("pull %s: read engine output: %w", ref, err)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return pullError(ref, msg.ErrorDetail.Message, nil)
		}
		if msg.Error != "" {
			return pullError(ref, msg.Error, nil)
		}
	}
	d.log.InfoContext(ctx, "image pulled", "image", ref)
	return nil
}

// pullMessage is the part of one JSON message of the engine's pull stream
// that reports a failure.
type pullMessage struct {
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// pullError sorts a pull failure: what a retry cannot fix (an image the
// registry does not have, refused credentials, a registry name that does
// not resolve) is non-retryable; the rest (registry down, 5xx, network) is
// transient, retried within the cut-over's pull budget.
func pullError(ref, msg string, cause error) error {
	msg = strings.TrimPrefix(msg, "Error response from daemon: ")
	lower := strings.ToLower(msg)
	switch {
	case registryauth.Refused(cause, msg):
		text := fmt.Sprintf("pull %s: the registry refused the credentials: %s", ref, msg)
		return temporal.NewNonRetryableApplicationError(text, runtimes.ErrRegistryUnauthorized, nil)
	case cerrdefs.IsNotFound(cause) ||
		strings.Contains(lower, "manifest unknown") ||
		strings.Contains(lower, "name unknown") ||
		strings.Contains(lower, "not found"):
		text := fmt.Sprintf("image %s is not in its registry: %s", ref, msg)
		return temporal.NewNonRetryableApplicationError(text, runtimes.ErrImageNotFound, nil)
	case strings.Contains(lower, "no such host"):
		// The registry's name does not resolve (NXDOMAIN): a typo or a
		// registry that is gone, not an outage. Retrying would hold the
		// tenant for the whole pull budget to fail the same way.
		text := fmt.Sprintf("pull %s: the registry's name does not resolve: %s", ref, msg)
		return temporal.NewNonRetryableApplicationError(text, runtimes.ErrRegistryUnknown, nil)
	case cerrdefs.IsInvalidArgument(cause):
		text := fmt.Sprintf("pull %s: %s", ref, msg)
		return temporal.NewNonRetryableApplicationError(text, runtimes.ErrInvalidImageReference, nil)
	case cause != nil:
		return fmt.Errorf("pull %s: %w", ref, cause)
	default:
		return fmt.Errorf("pull %s: %s", ref, msg)
	}
}

// RetireService stops and removes the tenant's instances of one service
// except generation in.Keep: the old instance once the proxy points at the
// candidate, or the candidate when a cut-over is rolled back. Each gets
// SIGTERM (the image's STOPSIGNAL if it declares one) and in.StopTimeout to
// finish in-flight requests before it is killed. Volumes stay: they are
// shared with the kept instance. Nothing left to retire is success.
//
// It refuses to retire anything while no instance of generation Keep
// exists (whatever its owner): that would leave the tenant without the
// service, and means the caller's idea of the cut-over is wrong.
func (d *Driver) RetireService(ctx context.Context, in runtimes.RetireInput) error {
	if in.Tenant == "" || in.Service == "" {
		msg := fmt.Sprintf("retire: tenant %q and service %q must both be set", in.Tenant, in.Service)
		return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrInvalidServiceSpec, nil)
	}
	f := filters.NewArgs(
		filters.Arg("label", LabelTenant+"="+in.Tenant),
		filters.Arg("label", LabelService+"="+in.Service),
	)
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list instances of %s/%s: %w", in.Tenant, in.Service, err)
	}
	kept := false
	var retire []container.Summary
	for _, c := range list {
		gen, ok := generationOf(c.Labels)
		switch {
		case !ok:
			// Not a label we wrote: leave the container alone.
			d.log.WarnContext(ctx, "instance with an unreadable generation left alone", "tenant", in.Tenant,
				"service", in.Service, "container", c.ID[:12], "generation", c.Labels[LabelGeneration])
		case gen == in.Keep:
			kept = true
		case in.Owner == "" || c.Labels[LabelOwner] == in.Owner:
			retire = append(retire, c)
		}
	}
	if len(retire) == 0 {
		return nil
	}
	if !kept {
		msg := fmt.Sprintf("service %s of %s has no instance of generation %d to keep: refusing to retire the other %d",
			in.Service, in.Tenant, in.Keep, len(retire))
		return temporal.NewNonRetryableApplicationError(msg, ErrNoInstanceToKeep, nil)
	}

	timeout := defaultStopTimeout
	if in.StopTimeout > 0 {
		// Whole seconds (the Engine API's unit), never less than asked.
		timeout = int(math.Ceil(in.StopTimeout.D().Seconds()))
	}
	var errs error
	for _, c := range retire {
		gen, _ := generationOf(c.Labels)
		name := strings.TrimPrefix(firstName(c.Names), "/")
		err := d.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = errors.Join(errs, fmt.Errorf("stop %s: %w", name, err))
			continue
		}
		// RemoveVolumes false: the engine would keep named volumes anyway,
		// but these are shared with the kept instance, so ask for nothing.
		err = d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: false})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = errors.Join(errs, fmt.Errorf("remove %s: %w", name, err))
			continue
		}
		d.log.InfoContext(ctx, "service instance retired", "tenant", in.Tenant, "service", in.Service,
			"generation", gen, "kept", in.Keep, "container", name)
	}
	return errs
}

// generationOf reads LabelGeneration (absent: generation 0).
func generationOf(labels map[string]string) (int, bool) {
	v, ok := labels[LabelGeneration]
	if !ok {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n > 0
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
