package docker

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

var _ runtimes.Resizer = (*Driver)(nil)

// ResizeService sets a running service's memory, CPU and process limits
// in place (the engine's update: no restart), on the tenant's own
// container only. Memory swap follows memory, as when the container was
// created with it.
func (d *Driver) ResizeService(ctx context.Context, in runtimes.ResizeInput) error {
	name := InstanceName(in.Tenant, in.Service, in.Generation)
	c, err := d.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("service %s of %s has no container %s", in.Service, in.Tenant, name), runtimes.ErrCannotResize, nil)
	}
	if err != nil {
		return fmt.Errorf("inspect container %s: %w", name, err)
	}
	if err := checkOwner("container", name, in.Tenant, in.Owner, c.Config.Labels); err != nil {
		return err
	}
	r := container.Resources{Memory: in.Resources.MemoryBytes(), NanoCPUs: int64(in.Resources.CPUs * 1e9)}
	if r.Memory > 0 {
		// As the engine set it at creation (swap unset: twice the
		// memory); without it, raising memory above the old swap fails.
		r.MemorySwap = 2 * r.Memory
	}
	if in.Resources.Pids > 0 {
		pids := in.Resources.Pids
		r.PidsLimit = &pids
	}
	if _, err := d.cli.ContainerUpdate(ctx, name, container.UpdateConfig{Resources: r}); err != nil {
		return fmt.Errorf("update container %s: %w", name, err)
	}
	d.log.InfoContext(ctx, "service resized", "tenant", in.Tenant, "service", in.Service, "memory", in.Resources.Memory, "cpus", in.Resources.CPUs)
	return nil
}
