package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// ErrServiceCommandFailed is the failure type of a dump or restore command
// that exited non-zero.
const ErrServiceCommandFailed = "ServiceCommandFailed"

// scratchInstanceName is the container a dump is verified in: a
// throw-away instance of the service on scratch volumes ("." never occurs
// in a service's instance names).
func scratchInstanceName(tenant, svc string) string { return ContainerName(tenant, svc) + ".scratch" }

// scratchVolumeFor is the scratch volume that stands for vol in a scratch
// instance.
func scratchVolumeFor(vol string) string { return vol + "-dump" }

// ExecInService runs cmd in the tenant's running instance of svc (its
// generation) once it is healthy, feeding stdin (may be nil) and copying
// its stdout to stdout. A database's dump and restore tools run this way.
// A non-zero exit is a non-retryable ErrServiceCommandFailed carrying the end of
// stderr.
func (d *Driver) ExecInService(ctx context.Context, tenant, owner string, svc spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	name := InstanceName(tenant, svc.Name, svc.Generation)
	info, err := d.cli.ContainerInspect(ctx, name)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", name, err)
	}
	if info.Config != nil {
		if err := checkOwner("container", name, tenant, owner, info.Config.Labels); err != nil {
			return err
		}
	}
	return d.execWhenHealthy(ctx, name, svc, cmd, stdin, stdout)
}

// StartScratchInstance starts a throw-away instance of svc on fresh
// scratch volumes, without a network, to verify a dump by restoring it.
// An instance an interrupted verification left is replaced.
func (d *Driver) StartScratchInstance(ctx context.Context, tenant string, svc spec.Service) error {
	if err := d.RemoveScratchInstance(ctx, tenant, svc); err != nil {
		return err
	}
	name := scratchInstanceName(tenant, svc.Name)
	cfg, hostCfg, _ := d.containerSpec(tenant, "", "scratch", svc)
	cfg.Labels[LabelScratch] = "true"
	cfg.ExposedPorts = nil
	hostCfg.PortBindings = nil
	hostCfg.NetworkMode = "none"
	hostCfg.RestartPolicy = container.RestartPolicy{}
	hostCfg.Mounts = nil
	for _, m := range svc.Mounts {
		if _, err := d.ScratchVolume(ctx, tenant, scratchVolumeFor(m.Volume)); err != nil {
			return err
		}
		hostCfg.Mounts = append(hostCfg.Mounts, mount.Mount{Type: mount.TypeVolume, Source: ScratchVolumeName(tenant, scratchVolumeFor(m.Volume)), Target: m.Path})
	}
	created, err := d.cli.ContainerCreate(ctx, cfg, hostCfg, nil, nil, name)
	if err != nil {
		return fmt.Errorf("create scratch instance %s: %w", name, err)
	}
	if err := d.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("start scratch instance %s: %w", name, err)
	}
	return nil
}

// ExecInScratchInstance runs cmd in the scratch instance of svc once it is
// healthy.
func (d *Driver) ExecInScratchInstance(ctx context.Context, tenant string, svc spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	return d.execWhenHealthy(ctx, scratchInstanceName(tenant, svc.Name), svc, cmd, stdin, stdout)
}

// RemoveScratchInstance removes the scratch instance of svc and its
// scratch volumes; nothing to remove is fine.
func (d *Driver) RemoveScratchInstance(ctx context.Context, tenant string, svc spec.Service) error {
	name := scratchInstanceName(tenant, svc.Name)
	info, err := d.cli.ContainerInspect(ctx, name)
	switch {
	case err == nil:
		if info.Config == nil || info.Config.Labels[LabelScratch] != "true" || info.Config.Labels[LabelTenant] != tenant {
			msg := fmt.Sprintf("container %s exists but is not a Tenantflow scratch instance of %s", name, tenant)
			return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrResourceNotOurs, nil)
		}
		if err := d.cli.ContainerRemove(ctx, info.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove scratch instance %s: %w", name, err)
		}
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect scratch instance %s: %w", name, err)
	}
	for _, m := range svc.Mounts {
		if err := d.RemoveScratchVolume(ctx, tenant, scratchVolumeFor(m.Volume)); err != nil {
			return err
		}
	}
	return nil
}

// execWhenHealthy waits until the container runs and, when it has a health
// check, is healthy (within the check's own budget), then runs cmd in it.
func (d *Driver) execWhenHealthy(ctx context.Context, name string, svc spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	deadline := time.Now().Add(spec.HealthBudget(svc.HealthCheck))
	for {
		info, err := d.cli.ContainerInspect(ctx, name)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", name, err)
		}
		st := info.State
		if st != nil && st.Health != nil && st.Health.Status == "unhealthy" {
			msg := fmt.Sprintf("%s is unhealthy: cannot run %q in it", name, cmd)
			return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrServiceUnhealthy, nil)
		}
		ready, why := st != nil && st.Running, "not running"
		if ready && svc.HealthCheck != nil && len(svc.HealthCheck.Command) > 0 {
			// A service that just started is probed at once, not when
			// the engine's steady check next runs.
			if err := d.probe(ctx, func() error {
				res := d.serviceHealthy(ctx, info, svc, spec.Port{})
				ready, why = res.healthy, res.why
				return nil
			}); err != nil {
				return err
			}
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready to run %q: %s", name, cmd, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(d.cfg.PollInterval, svc.HealthCheck.ProbeInterval())):
		}
	}
	return d.exec(ctx, name, cmd, stdin, stdout)
}

// exec runs cmd in the container, streaming stdin and stdout.
func (d *Driver) exec(ctx context.Context, name string, cmd []string, stdin io.Reader, stdout io.Writer) error {
	ex, err := d.cli.ContainerExecCreate(ctx, name, container.ExecOptions{
		Cmd: cmd, AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return fmt.Errorf("exec %q in %s: %w", cmd, name, err)
	}
	att, err := d.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("attach to %q in %s: %w", cmd, name, err)
	}
	defer att.Close()
	inErr := make(chan error, 1)
	if stdin != nil {
		go func() {
			_, err := io.Copy(att.Conn, stdin)
			// The command sees the end of its input.
			inErr <- errors.Join(err, att.CloseWrite())
		}()
	} else {
		inErr <- nil
	}
	var stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(stdout, &limitedBuffer{buf: &stderr, max: 4096}, att.Reader); err != nil {
		return fmt.Errorf("read output of %q in %s: %w", cmd, name, err)
	}
	if err := <-inErr; err != nil {
		return fmt.Errorf("feed %q in %s: %w", cmd, name, err)
	}
	res, err := d.cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return fmt.Errorf("inspect exec of %q in %s: %w", cmd, name, err)
	}
	if res.ExitCode != 0 {
		msg := fmt.Sprintf("%q in %s exited with %d: %s", cmd, name, res.ExitCode, bytes.TrimSpace(stderr.Bytes()))
		return temporal.NewNonRetryableApplicationError(msg, ErrServiceCommandFailed, nil)
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it and drops the rest,
// so a chatty command cannot fill the worker's memory.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
