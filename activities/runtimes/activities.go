package runtimes

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/internal/beat"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// Activities is the runtime surface the workflows call. It delegates to the
// tenant's runtime's Driver, so workflows reference one set of type-checked
// activity names (var a *runtimes.Activities; a.StartService) whatever the
// runtime, and pass the tenant's runtime along as data.
type Activities struct {
	// Drivers by runtime name; an empty name means Docker, the only
	// runtime before tenants named theirs.
	Drivers map[string]Driver
	// Heartbeat records progress of long activities; the worker sets it to
	// activity.RecordHeartbeat. Nil disables heartbeats (direct calls).
	Heartbeat func(ctx context.Context, details ...any)
	// HeartbeatEvery is how often WaitHealthy heartbeats while the driver
	// reports nothing (DefaultHeartbeatEvery when 0).
	HeartbeatEvery time.Duration
}

// DefaultHeartbeatEvery is Activities.HeartbeatEvery's default: a third
// of the health wait's heartbeat timeout (15 s).
const DefaultHeartbeatEvery = 5 * time.Second

// driver is the tenant's runtime's driver.
func (a *Activities) driver(name string) (Driver, error) {
	if name == "" {
		name = spec.Docker
	}
	if d := a.Drivers[name]; d != nil {
		return d, nil
	}
	// Permanent: the runtime steps are local activities, retried on this
	// same worker, so a retry cannot find another worker that has it.
	// Every worker of a task queue must have the same runtimes.
	msg := fmt.Sprintf("runtime %q is not configured on this worker (see the TENANTFLOW_%s_* settings; every worker of a task queue needs the same runtimes)", name, strings.ToUpper(name))
	return nil, temporal.NewNonRetryableApplicationError(msg, ErrRuntimeNotConfigured, nil)
}

// CreateNetwork makes the tenant's private network.
func (a *Activities) CreateNetwork(ctx context.Context, in TenantRef) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.CreateNetwork(ctx, in.Tenant, in.Owner)
}

// CreateVolumes makes the tenant's persistent volumes.
func (a *Activities) CreateVolumes(ctx context.Context, in VolumesInput) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.CreateVolumes(ctx, in.Tenant, in.Owner, in.Volumes)
}

// StartService creates (once) and starts one service of the tenant.
func (a *Activities) StartService(ctx context.Context, in ServiceInput) (ServiceStatus, error) {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return ServiceStatus{}, err
	}
	if rd, ok := d.(ReadyDeadliner); ok && in.ReadyTimeout > 0 {
		return rd.StartServiceWithin(ctx, in.Tenant, in.Owner, in.Service, in.ReadyTimeout.D())
	}
	return d.StartService(ctx, in.Tenant, in.Owner, in.Service)
}

// Creator is a runtime that can make a service's instance without
// starting it: a move prepares its target that way while the source
// serves, so the start in the tenant's interruption is only a start.
type Creator interface {
	CreateService(ctx context.Context, tenant, owner string, svc spec.Service) (ServiceStatus, error)
}

// CreateService makes one service of the tenant without starting it (on
// a runtime that cannot, nothing: StartService makes it later).
func (a *Activities) CreateService(ctx context.Context, in ServiceInput) (ServiceStatus, error) {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return ServiceStatus{}, err
	}
	if c, ok := d.(Creator); ok {
		return c.CreateService(ctx, in.Tenant, in.Owner, in.Service)
	}
	return ServiceStatus{Service: in.Service.Name, Image: in.Service.Image}, nil
}

// Admit admits the tenant to start on its runtime now, or tells its
// place in the runtime's queue (keeping it for a while): a runtime that
// queues nothing admits at once.
func (a *Activities) Admit(ctx context.Context, in TenantRef) (Admission, error) {
	ad, err := a.admitter(in.Runtime)
	if ad == nil || err != nil {
		return Admission{Admitted: err == nil}, err
	}
	return ad.Admit(ctx, in.Tenant, false, nil)
}

// admitter is the runtime's Admitter; nil for a runtime that queues
// nothing.
func (a *Activities) admitter(runtime string) (Admitter, error) {
	d, err := a.driver(runtime)
	if err != nil {
		return nil, err
	}
	ad, _ := d.(Admitter)
	return ad, nil
}

// AwaitAdmission waits in the runtime's queue until the tenant is
// admitted, heartbeating its place, so ops see in the Web UI how many
// are ahead and a lost worker is noticed by the heartbeat timeout.
func (a *Activities) AwaitAdmission(ctx context.Context, in TenantRef) (Admission, error) {
	ad, err := a.admitter(in.Runtime)
	if ad == nil || err != nil {
		return Admission{Admitted: err == nil}, err
	}
	set, stop := beat.Latest(ctx, a.heartbeatEvery(), a.Heartbeat, "joining the host's queue")
	defer stop()
	return ad.Admit(ctx, in.Tenant, true, func(st Admission) { set(st.String()) })
}

func (a *Activities) heartbeatEvery() time.Duration {
	return cmp.Or(a.HeartbeatEvery, DefaultHeartbeatEvery)
}

// WaitHealthy blocks until every service passes its health check and
// heartbeats which ones it still waits for, so a stuck start is visible in the
// Web UI and a lost worker is noticed by the heartbeat timeout.
func (a *Activities) WaitHealthy(ctx context.Context, env spec.Environment) (Endpoint, error) {
	d, err := a.driver(env.Runtime)
	if err != nil {
		return Endpoint{}, err
	}
	if a.Heartbeat == nil {
		return d.WaitHealthy(ctx, env, func(string) {})
	}
	// The heartbeat tells the server this worker lives, so it beats on
	// its own clock too: the driver reports only when a probe answers,
	// and on a swamped engine a probe waits for a slot and its exec for
	// longer than the heartbeat timeout. 51 of 200 tenants requested at
	// once on one engine failed so, their worker alive and waiting.
	set, stop := beat.Latest(ctx, a.heartbeatEvery(), a.Heartbeat, "waiting for the services' first probe")
	defer stop()
	progress := func(msg string) {
		set(msg)
		a.Heartbeat(ctx, msg)
	}
	// Returned unwrapped: the SDK reads only the outermost error, and a
	// wrapped non-retryable ApplicationError would be retried.
	return d.WaitHealthy(ctx, env, progress)
}

// EnsureImage makes the image available to the runtime before a cut-over
// starts an instance of it.
func (a *Activities) EnsureImage(ctx context.Context, in ImageInput) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.EnsureImage(ctx, in.Image)
}

// RetireService stops and removes the instances of a service other than
// the generation to keep.
func (a *Activities) RetireService(ctx context.Context, in RetireInput) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.RetireService(ctx, in)
}

// StopServices stops the named services of the tenant, keeping them.
func (a *Activities) StopServices(ctx context.Context, in StopInput) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.StopServices(ctx, in)
}

// StartServices starts the tenant's stopped services again (only
// in.Services when it names some).
func (a *Activities) StartServices(ctx context.Context, in TenantRef) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.StartServices(ctx, in.Tenant, in.Owner, in.Services...)
}

// RemoveServices removes every service (container) of the tenant.
func (a *Activities) RemoveServices(ctx context.Context, in TenantRef) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.RemoveServices(ctx, in.Tenant, in.Owner)
}

// RemoveVolumes deletes the tenant's volumes and their data. Only
// compensation of a failed provisioning (no data yet) and the end of
// retention call it.
func (a *Activities) RemoveVolumes(ctx context.Context, in TenantRef) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.RemoveVolumes(ctx, in.Tenant, in.Owner)
}

// RemoveNetwork removes the tenant's network.
func (a *Activities) RemoveNetwork(ctx context.Context, in TenantRef) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.RemoveNetwork(ctx, in.Tenant, in.Owner)
}
