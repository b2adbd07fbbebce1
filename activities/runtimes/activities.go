// Package runtimes is the contract every runtime driver (Docker host,
// OpenShift cluster) fulfils, and the activities that dispatch a tenant's
// call to its runtime's driver under names that do not depend on which
// runtime carries it out.
package runtimes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Driver is what a runtime (Docker host, OpenShift cluster) must do for the
// tenant workflows. Every method is idempotent: it finds what an earlier
// attempt made (by deterministic names and labels) instead of making it twice,
// and the Remove methods succeed when there is nothing left to remove.
//
// Owner identifies the provisioning that made an object (its workflow run).
// An object of the same name but another owner is refused, never reused or
// replaced, and the Remove methods take only the owner's objects: a tenant
// requested again after its workflow was terminated can neither take over
// nor, by compensation, destroy the live tenant. An empty owner matches any.
type Driver interface {
	CreateNetwork(ctx context.Context, tenant, owner string) error
	CreateVolumes(ctx context.Context, tenant, owner string, volumes []string) error
	StartService(ctx context.Context, tenant, owner string, svc spec.Service) (ServiceStatus, error)
	WaitHealthy(ctx context.Context, env spec.Environment, progress func(string)) (Endpoint, error)
	RemoveServices(ctx context.Context, tenant, owner string) error
	RemoveVolumes(ctx context.Context, tenant, owner string) error
	RemoveNetwork(ctx context.Context, tenant, owner string) error

	// EnsureImage makes the image available to the runtime (a Docker host
	// pulls it from its registry unless it has it already). An image the
	// registry does not have is a non-retryable ErrImageNotFound.
	EnsureImage(ctx context.Context, image string) error
	// RetireService gracefully stops and removes every instance of one
	// service of the tenant except generation Keep: the old instance after
	// a cut-over, or the candidate when a cut-over is rolled back.
	RetireService(ctx context.Context, in RetireInput) error

	// StopServices gracefully stops the tenant's services without removing
	// them, and StartServices starts them again: a decommission stops the
	// app before its data is backed up, and puts it back in service if the
	// backup cannot be verified.
	StopServices(ctx context.Context, in StopInput) error
	StartServices(ctx context.Context, tenant, owner string) error
}

// StopInput names the services of a tenant to stop (all when empty).
type StopInput struct {
	Tenant   string   `json:"tenant"`
	Owner    string   `json:"owner,omitempty"`
	Services []string `json:"services,omitempty"`
	// StopTimeout is how long each may finish its work after SIGTERM
	// (zero: 10 s).
	StopTimeout spec.Duration `json:"stopTimeout,omitempty"`
	// Runtime is the tenant's runtime (a Driver name; empty: docker).
	Runtime string `json:"runtime,omitempty"`
}

// ErrImageNotFound is the failure type of an image neither the runtime nor
// its registry has.
const ErrImageNotFound = "ImageNotFound"

// ImageInput names an image by reference (repo@sha256:… for releases).
type ImageInput struct {
	Image string `json:"image"`
	// Runtime is the tenant's runtime (a Driver name; empty: docker).
	Runtime string `json:"runtime,omitempty"`
}

// RetireInput names the instances of a service to stop and remove: all of
// the tenant's (and owner's) instances of Service but generation Keep.
type RetireInput struct {
	Tenant  string `json:"tenant"`
	Owner   string `json:"owner,omitempty"`
	Service string `json:"service"`
	Keep    int    `json:"keep"`
	// StopTimeout is how long an instance may finish in-flight work after
	// SIGTERM before it is killed (zero: 10 s).
	StopTimeout spec.Duration `json:"stopTimeout,omitempty"`
	// Runtime is the tenant's runtime (a Driver name; empty: docker).
	Runtime string `json:"runtime,omitempty"`
}

// TenantRef names the tenant an activity works on, and the provisioning
// that owns its objects.
type TenantRef struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner,omitempty"`
	// Runtime is the tenant's runtime (a Driver name; empty: docker).
	Runtime string `json:"runtime,omitempty"`
}

// VolumesInput asks for the tenant's volumes to exist.
type VolumesInput struct {
	Tenant  string   `json:"tenant"`
	Owner   string   `json:"owner,omitempty"`
	Volumes []string `json:"volumes"`
	// Runtime is the tenant's runtime (a Driver name; empty: docker).
	Runtime string `json:"runtime,omitempty"`
}

// ServiceInput asks for one service to be created and running.
type ServiceInput struct {
	Tenant  string       `json:"tenant"`
	Owner   string       `json:"owner,omitempty"`
	Service spec.Service `json:"service"`
	// ReadyTimeout, when set, is how long the service may take to become
	// ready (a release's health timeout): a runtime that enforces rollout
	// deadlines itself is told (see ReadyDeadliner).
	ReadyTimeout spec.Duration `json:"readyTimeout,omitempty"`
	// Runtime is the tenant's runtime (a Driver name; empty: docker).
	Runtime string `json:"runtime,omitempty"`
}

// ServiceStatus is what StartService reports about the running service.
type ServiceStatus struct {
	Service string `json:"service"`
	ID      string `json:"id"` // container id, deployment uid, …
	Image   string `json:"image"`
}

// Endpoint is where the tenant's public port answers.
type Endpoint struct {
	URL string `json:"url"`
}

// ErrRuntimeNotConfigured is the failure type of a tenant whose runtime
// this worker has no driver for.
const ErrRuntimeNotConfigured = "RuntimeNotConfigured"

// Activities is the runtime surface the workflows call. It delegates to the
// tenant's runtime's Driver, so workflows reference one set of type-checked
// activity names (var a *runtime.Activities; a.StartService) whatever the
// runtime, and pass the tenant's runtime along as data.
type Activities struct {
	// Drivers by runtime name; an empty name means Docker, the only
	// runtime before tenants named theirs.
	Drivers map[string]Driver
	// Heartbeat records progress of long activities; the worker sets it to
	// activity.RecordHeartbeat. Nil disables heartbeats (direct calls).
	Heartbeat func(ctx context.Context, details ...any)
}

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

// ReadyDeadliner is a Driver whose runtime gives up on a rollout by
// itself (a Deployment's progress deadline): it must know how long the
// caller will wait, or it would give up sooner.
type ReadyDeadliner interface {
	StartServiceWithin(ctx context.Context, tenant, owner string, svc spec.Service, ready time.Duration) (ServiceStatus, error)
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

// WaitHealthy blocks until every service passes its health check and
// heartbeats which ones it still waits for, so a stuck start is visible in the
// Web UI and a lost worker is noticed by the heartbeat timeout.
func (a *Activities) WaitHealthy(ctx context.Context, env spec.Environment) (Endpoint, error) {
	d, err := a.driver(env.Runtime)
	if err != nil {
		return Endpoint{}, err
	}
	progress := func(msg string) {
		if a.Heartbeat != nil {
			a.Heartbeat(ctx, msg)
		}
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

// StartServices starts the tenant's stopped services again.
func (a *Activities) StartServices(ctx context.Context, in TenantRef) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	return d.StartServices(ctx, in.Tenant, in.Owner)
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
