package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// LabelScratch marks a volume made only to verify a backup; it never holds
// a tenant's live data.
const LabelScratch = "tenantflow.scratch"

// ErrVolumeNotAccessible is the failure type of a volume whose directory on
// the Docker host the worker cannot read, so it cannot back it up.
const ErrVolumeNotAccessible = "VolumeNotAccessible"

// ScratchVolumeName is the volume a backup of the tenant's volume is
// restored into to be verified. The dot cannot occur in a template's
// volume names (DNS labels), so it never names a tenant's own volume.
func ScratchVolumeName(tenant, name string) string { return VolumeName(tenant, name) + ".scratch" }

// VolumeDir is the host directory of one of the tenant's volumes (its
// mountpoint). Backups read and restores write there directly: the worker
// runs on the Docker host (as health checks already require), and copying
// through the engine's archive API is several times slower.
func (d *Driver) VolumeDir(ctx context.Context, tenant, owner, vol string) (string, error) {
	name := VolumeName(tenant, vol)
	v, err := d.cli.VolumeInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		msg := fmt.Sprintf("volume %s of tenant %s does not exist", name, tenant)
		return "", temporal.NewNonRetryableApplicationError(msg, ErrVolumeNotAccessible, err)
	}
	if err != nil {
		return "", fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if err := checkOwner("volume", name, tenant, owner, v.Labels); err != nil {
		return "", err
	}
	return d.accessible(name, v)
}

func (d *Driver) accessible(name string, v volume.Volume) (string, error) {
	if v.Driver != "local" || v.Mountpoint == "" {
		msg := fmt.Sprintf("volume %s (driver %s) has no local mountpoint: back it up with its storage driver's own tools", name, v.Driver)
		return "", temporal.NewNonRetryableApplicationError(msg, ErrVolumeNotAccessible, nil)
	}
	if _, err := os.ReadDir(v.Mountpoint); err != nil {
		msg := fmt.Sprintf("volume %s: the worker cannot read %s (%v): run the worker on the Docker host as a user that can read Docker's volumes (root)", name, v.Mountpoint, err)
		return "", temporal.NewNonRetryableApplicationError(msg, ErrVolumeNotAccessible, err)
	}
	return v.Mountpoint, nil
}

// ScratchVolume makes an empty scratch volume for the tenant (replacing
// one an interrupted verification left) and returns its directory.
func (d *Driver) ScratchVolume(ctx context.Context, tenant, name string) (string, error) {
	if err := d.RemoveScratchVolume(ctx, tenant, name); err != nil {
		return "", err
	}
	vname := ScratchVolumeName(tenant, name)
	labels := ownedLabels(tenant, "")
	labels[LabelScratch] = "true"
	v, err := d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: vname, Labels: labels})
	if err != nil {
		return "", fmt.Errorf("create scratch volume %s: %w", vname, err)
	}
	return d.accessible(vname, v)
}

// RemoveScratchVolume removes the scratch volume; gone already is fine.
func (d *Driver) RemoveScratchVolume(ctx context.Context, tenant, name string) error {
	vname := ScratchVolumeName(tenant, name)
	v, err := d.cli.VolumeInspect(ctx, vname)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect scratch volume %s: %w", vname, err)
	}
	if v.Labels[LabelScratch] != "true" || v.Labels[LabelTenant] != tenant {
		msg := fmt.Sprintf("volume %s exists but is not a Tenantflow scratch volume of %s", vname, tenant)
		return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrResourceNotOurs, nil)
	}
	if err := d.cli.VolumeRemove(ctx, vname, true); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove scratch volume %s: %w", vname, err)
	}
	return nil
}

// StopServices gracefully stops every instance of the named services of
// the tenant (all services when none is named), in parallel, without
// removing them: a decommission stops the app before its data is backed up
// and starts it again if the backup fails. Stopped containers stay
// stopped (restart policy unless-stopped) until StartServices.
func (d *Driver) StopServices(ctx context.Context, in runtimes.StopInput) error {
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: ownedFilter(in.Tenant, in.Owner)})
	if err != nil {
		return fmt.Errorf("list containers of %s: %w", in.Tenant, err)
	}
	timeout := defaultStopTimeout
	if in.StopTimeout > 0 {
		timeout = int((in.StopTimeout.D() + time.Second - 1) / time.Second)
	}
	errc := make(chan error, len(list))
	n := 0
	for _, c := range list {
		if len(in.Services) > 0 && !slices.Contains(in.Services, c.Labels[LabelService]) || c.State != container.StateRunning && c.State != container.StateRestarting {
			continue
		}
		n++
		go func(id, name string) {
			err := d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout})
			if err != nil && !cerrdefs.IsNotFound(err) {
				errc <- fmt.Errorf("stop container %s: %w", name, err)
				return
			}
			errc <- nil
		}(c.ID, firstName(c.Names))
	}
	var errs error
	for range n {
		errs = errors.Join(errs, <-errc)
	}
	if errs == nil {
		d.log.InfoContext(ctx, "services stopped", "tenant", in.Tenant, "services", strings.Join(in.Services, ","), "containers", n)
	}
	return errs
}

// StartServices starts every existing container of the tenant again (the
// undo of StopServices); running ones are left alone.
func (d *Driver) StartServices(ctx context.Context, tenant, owner string, services ...string) error {
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: ownedFilter(tenant, owner)})
	if err != nil {
		return fmt.Errorf("list containers of %s: %w", tenant, err)
	}
	var errs error
	for _, c := range list {
		if c.State == container.StateRunning || len(services) > 0 && !slices.Contains(services, c.Labels[LabelService]) {
			continue
		}
		if err := d.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			errs = errors.Join(errs, fmt.Errorf("start container %s: %w", firstName(c.Names), err))
		}
	}
	return errs
}
