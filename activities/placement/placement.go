// Package placement lets a tenant's workflow reserve and release room on
// a Docker host through the host registry (workflows/hosts), an Update of
// its workflow sent with the worker's own Temporal client; and lets a
// host's drain (hosts.DrainWorkflow) set the host draining, list its
// tenants and move each away through the tenant's own workflow.
package placement

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// ErrNoRegistry is the failure type when no host was ever registered.
const ErrNoRegistry = "NoHostRegistry"

// Activities talk to the registry, and to tenants being drained, with
// the worker's client.
type Activities struct {
	Client client.Client
	// PollEvery is how often MoveTenant asks the tenant how its move
	// goes (zero: 1 s).
	PollEvery time.Duration
}

// ReserveHost places the tenant (the same host again for a retry of the
// same reservation: the Update id is derived from the owner and the pin,
// so a move's reservation of its target is another Update than the
// provisioning's). A refusal (no host fits, the pinned one cannot) is
// permanent.
func (a *Activities) ReserveHost(ctx context.Context, in hosts.ReserveInput) (hosts.Placement, error) {
	var p hosts.Placement
	id := "reserve:" + in.Tenant + ":" + in.Owner + ":" + in.Pin
	if in.Op != "" {
		id += ":" + in.Op
	}
	err := a.update(ctx, id, hosts.UpdateReserve, in, &p)
	return p, err
}

// ReleaseHost gives the tenant's reservation back; a reservation another
// run made stays (refused, permanent).
func (a *Activities) ReleaseHost(ctx context.Context, in hosts.ReleaseInput) error {
	return a.update(ctx, "release:"+in.Tenant+":"+in.Owner+":"+in.Host, hosts.UpdateRelease, in, nil)
}

// ResizeReservation changes the room the tenant's reservation holds (a
// plan change); each step (in.Op) is an Update of its own, so a retry
// gets its first answer. A refusal (no room, not the owner) is permanent.
func (a *Activities) ResizeReservation(ctx context.Context, in hosts.ResizeInput) error {
	return a.update(ctx, "resize:"+in.Tenant+":"+in.Owner+":"+in.Host+":"+in.Op, hosts.UpdateResize, in, nil)
}

func (a *Activities) update(ctx context.Context, id, name string, arg, result any) error {
	h, err := a.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		UpdateID: id, WorkflowID: hosts.WorkflowID, UpdateName: name, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, result)
	}
	var notFound *serviceerror.NotFound
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notFound):
		return temporal.NewNonRetryableApplicationError("no host is registered (POST /v1/hosts): "+notFound.Error(), ErrNoRegistry, err)
	case errors.As(err, &appErr):
		return temporal.NewNonRetryableApplicationError(appErr.Message(), appErr.Type(), err)
	default:
		return fmt.Errorf("host registry %s: %w", name, err)
	}
}

// Registered reads the host registry (its hosts query) with c; ok is
// false when no host was ever registered (the registry does not run).
func Registered(ctx context.Context, c client.Client) (list []hosts.Host, ok bool, err error) {
	v, err := c.QueryWorkflow(ctx, hosts.WorkflowID, "", hosts.QueryHosts)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("query the host registry: %w", err)
	}
	if err := v.Get(&list); err != nil {
		return nil, false, fmt.Errorf("decode the hosts: %w", err)
	}
	return list, true, nil
}
