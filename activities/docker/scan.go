package docker

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// The engine's side of the drift reconcile (runtimes.Scanner): every
// container (running or not), network and volume labelled with a tenant,
// and the removal of an orphaned container or network.

var _ runtimes.Scanner = (*Driver)(nil)

// labelled selects the objects that name a tenant.
func labelled() filters.Args { return filters.NewArgs(filters.Arg("label", LabelTenant)) }

// Scan lists the engine's objects that carry a tenant label, scratch
// objects of a backup's verification left out.
func (d *Driver) Scan(ctx context.Context) ([]runtimes.Object, error) {
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: labelled()})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	ns, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: labelled()})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	vs, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: labelled()})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []runtimes.Object
	for _, c := range cs {
		if c.Labels[LabelScratch] != "true" {
			out = append(out, containerObject(c))
		}
	}
	for _, n := range ns {
		out = append(out, labelledObject(runtimes.ObjectNetwork, n.Name, n.ID, n.Labels))
	}
	for _, v := range vs.Volumes {
		if v.Labels[LabelScratch] != "true" {
			out = append(out, labelledObject(runtimes.ObjectVolume, v.Name, v.Name, v.Labels))
		}
	}
	return out, nil
}

func containerObject(c container.Summary) runtimes.Object {
	name := c.ID
	if len(c.Names) > 0 {
		name = strings.TrimPrefix(c.Names[0], "/")
	}
	o := labelledObject(runtimes.ObjectContainer, name, c.ID, c.Labels)
	o.Running, o.State = c.State == container.StateRunning, c.State
	return o
}

func labelledObject(kind runtimes.ObjectKind, name, id string, l map[string]string) runtimes.Object {
	gen, _ := strconv.Atoi(l[LabelGeneration])
	return runtimes.Object{Kind: kind, Name: name, ID: id, Tenant: l[LabelTenant], Owner: l[LabelOwner],
		Service: l[LabelService], Volume: l[LabelVolume], Generation: gen}
}

// RemoveObject force-removes an orphaned container, or removes an
// orphaned network, if its labels still name o's tenant and owner; one
// gone already is success. A volume is refused (runtimes.ErrVolumeKept).
func (d *Driver) RemoveObject(ctx context.Context, o runtimes.Object) error {
	switch o.Kind {
	case runtimes.ObjectContainer:
		info, err := d.cli.ContainerInspect(ctx, o.ID)
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("inspect container %s: %w", o.Name, err)
		}
		var labels map[string]string
		if info.Config != nil {
			labels = info.Config.Labels
		}
		if err := sameOwner("container", o, labels); err != nil {
			return err
		}
		if err := d.cli.ContainerRemove(ctx, o.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s: %w", o.Name, err)
		}
	case runtimes.ObjectNetwork:
		info, err := d.cli.NetworkInspect(ctx, o.ID, network.InspectOptions{})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("inspect network %s: %w", o.Name, err)
		}
		if err := sameOwner("network", o, info.Labels); err != nil {
			return err
		}
		if err := d.cli.NetworkRemove(ctx, o.ID); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove network %s: %w", o.Name, err)
		}
	default:
		msg := fmt.Sprintf("%s %s is not removed: the reconcile never deletes data", o.Kind, o.Name)
		return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrVolumeKept, nil)
	}
	d.log.InfoContext(ctx, "orphan removed", "kind", o.Kind, "name", o.Name, "tenant", o.Tenant, "owner", o.Owner)
	return nil
}

// sameOwner refuses to remove an object whose labels changed since it
// was found (another object now has its id or name).
func sameOwner(kind string, o runtimes.Object, l map[string]string) error {
	if l[LabelTenant] != o.Tenant || l[LabelOwner] != o.Owner {
		msg := fmt.Sprintf("%s %s no longer names tenant %s and owner %q: left alone", kind, o.Name, o.Tenant, o.Owner)
		return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrResourceNotOurs, nil)
	}
	return nil
}
