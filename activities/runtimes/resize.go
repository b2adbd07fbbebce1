package runtimes

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Resizer changes the limits of a running service in place, without a
// restart (Docker's update): how a plan change resizes the services a
// cut-over does not replace (a database).
type Resizer interface {
	ResizeService(ctx context.Context, in ResizeInput) error
}

// ResizeInput names one service instance of the tenant and its new
// limits.
type ResizeInput struct {
	Runtime    string         `json:"runtime,omitempty"`
	Tenant     string         `json:"tenant"`
	Owner      string         `json:"owner,omitempty"`
	Service    string         `json:"service"`
	Generation int            `json:"generation,omitempty"`
	Resources  spec.Resources `json:"resources"`
}

// ErrCannotResize is the failure type for a runtime that cannot change a
// service's limits in place.
const ErrCannotResize = "CannotResize"

// ResizeService sets the service's limits in place; setting the limits it
// already has changes nothing, so a retry is harmless.
func (a *Activities) ResizeService(ctx context.Context, in ResizeInput) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	r, ok := d.(Resizer)
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("runtime %s cannot resize a service in place", in.Runtime), ErrCannotResize, nil)
	}
	return r.ResizeService(ctx, in)
}
