package placement

import (
	"context"
	"errors"
	"fmt"
	"time"

	dockerclient "github.com/docker/docker/client"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// The host watch's activities on the shared queue (hosts.WatchWorkflow).

// ListHosts are the registered hosts (none when nothing was registered).
func (a *Activities) ListHosts(ctx context.Context) ([]hosts.Host, error) {
	list, _, err := Registered(ctx, a.Client)
	return list, err
}

// ProbeEngine pings a host's engine at its registered endpoint, from
// this worker: the answer is "" when it answers, else why not. An
// endpoint this worker cannot reach (another machine's unix socket)
// does not answer.
func (a *Activities) ProbeEngine(ctx context.Context, in hosts.ProbeInput) (string, error) {
	c, err := dockerclient.NewClientWithOpts(dockerclient.WithHost(in.Docker), dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("host %s: docker endpoint %q: %v", in.Host, in.Docker, err), hosts.ErrInvalid, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		return err.Error(), nil
	}
	return "", nil
}

// NotifyTenants signals every tenant reserved on the host. A tenant
// whose workflow ended is skipped.
func (a *Activities) NotifyTenants(ctx context.Context, in hosts.NotifyInput) (int, error) {
	names, err := a.HostTenants(ctx, in.Host)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		err := a.Client.SignalWorkflow(ctx, tenantWorkflowID(name), "", in.Signal, in.Event)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			continue
		case err != nil:
			return n, fmt.Errorf("signal %s to tenant %s: %w", in.Signal, name, err)
		}
		n++
	}
	return n, nil
}
