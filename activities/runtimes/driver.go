// Package runtimes is the contract every runtime driver (Docker host,
// OpenShift cluster) fulfils, and the activities that dispatch a tenant's
// call to its runtime's driver under names that do not depend on which
// runtime carries it out.
//
// This file is the whole driver contract: the Driver interface, the
// optional capabilities a driver may add, the inputs and results the
// workflows exchange with it, and the failure types every driver reports
// for the same problem. The conformance suite in runtimes/runtimetest
// checks a driver against it; every driver runs that suite.
//
// A driver may also serve the backups of its tenants' data. Those
// capabilities are declared where they are used, in package backup:
// backup.VolumeHost and backup.DumpHost (Docker: volumes as host
// directories, dump tools run in the services) and backup.InPlace
// (OpenShift: volumes kept where they are).
package runtimes

import (
	"context"
	"fmt"
	"time"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Driver is what a runtime (Docker host, OpenShift cluster) must do for the
// tenant workflows. Every method is idempotent: it finds what an earlier
// attempt made (by deterministic names and labels) instead of making it twice,
// and the Remove methods succeed when there is nothing left to remove.
//
// Owner identifies the provisioning that made an object (its workflow run).
// An object of the same name but another owner is refused
// (ErrResourceNotOurs), never reused or replaced, and the Remove methods
// take only the owner's objects: a tenant requested again after its
// workflow was terminated can neither take over nor, by compensation,
// destroy the live tenant. An empty owner matches any.
//
// Failures a retry cannot fix are non-retryable temporal.ApplicationErrors
// whose type is one of the Err constants below (or a driver's own, for
// what only that runtime can meet, like a Docker host without room).
type Driver interface {
	// CreateNetwork makes the tenant's private network (Docker: a bridge
	// network; OpenShift: the project and its isolation policy).
	CreateNetwork(ctx context.Context, tenant, owner string) error
	// CreateVolumes makes the tenant's persistent volumes.
	CreateVolumes(ctx context.Context, tenant, owner string, volumes []string) error
	// StartService creates (once) and starts one service of the tenant. A
	// generation above 0 is a release candidate: it runs beside (Docker)
	// or rolls out over (OpenShift) the current one, with the same volumes,
	// while the current one keeps serving. A spec the runtime refuses is
	// ErrInvalidServiceSpec; an image it cannot have, ErrImageNotFound.
	StartService(ctx context.Context, tenant, owner string, svc spec.Service) (ServiceStatus, error)
	// WaitHealthy blocks until every service of env (the instance of its
	// generation) is ready, reporting what it waits for through progress,
	// and returns the tenant's endpoint. A service that fails its health
	// check, or stays unready past its budget, is ErrServiceUnhealthy.
	WaitHealthy(ctx context.Context, env spec.Environment, progress func(string)) (Endpoint, error)
	// RemoveServices removes every service of the tenant; its volumes and
	// their data stay.
	RemoveServices(ctx context.Context, tenant, owner string) error
	// RemoveVolumes deletes the tenant's volumes and their data.
	RemoveVolumes(ctx context.Context, tenant, owner string) error
	// RemoveNetwork removes the tenant's network.
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
	StartServices(ctx context.Context, tenant, owner string, services ...string) error
}

// ReadyDeadliner is a Driver whose runtime gives up on a rollout by
// itself (a Deployment's progress deadline): it must know how long the
// caller will wait, or it would give up sooner.
type ReadyDeadliner interface {
	StartServiceWithin(ctx context.Context, tenant, owner string, svc spec.Service, ready time.Duration) (ServiceStatus, error)
}

// Admitter is a Driver whose runtime admits tenants to start a few at a
// time, so that a batch larger than it can start at once queues instead
// of failing its health budgets (Docker: one engine on one host; a
// cluster's scheduler queues pods by itself). Admit admits the tenant or
// tells its place in the queue: with wait, it waits for its turn,
// reporting its place through progress. An admitted tenant is starting
// until its health wait ends.
type Admitter interface {
	Admit(ctx context.Context, tenant string, wait bool, progress func(Admission)) (Admission, error)
}

// Admission is a tenant's place at its runtime: admitted to start, or
// queued behind Ahead others while Starting of at most Limit start.
type Admission struct {
	Admitted bool `json:"admitted"`
	Ahead    int  `json:"ahead,omitempty"`
	Starting int  `json:"starting,omitempty"`
	Limit    int  `json:"limit,omitempty"`
}

// String says it as the Web UI and the progress query show it.
func (a Admission) String() string {
	if a.Admitted {
		return fmt.Sprintf("admitted (%d of %d starting)", a.Starting, a.Limit)
	}
	return fmt.Sprintf("queued for the host: %d ahead, %d of %d starting", a.Ahead, a.Starting, a.Limit)
}

// Failure types of the contract, shown in the Web UI and recorded in
// workflow histories: their values never change.
const (
	// ErrImageNotFound: neither the runtime nor its registry has the image.
	ErrImageNotFound = "ImageNotFound"
	// ErrServiceUnhealthy: a service failed its health check, or was not
	// ready within its budget.
	ErrServiceUnhealthy = "ServiceUnhealthy"
	// ErrInvalidServiceSpec: the runtime refuses the rendered service (or
	// environment) as it is.
	ErrInvalidServiceSpec = "InvalidServiceSpec"
	// ErrResourceNotOurs: an object of the tenant's name exists but another
	// provisioning (or someone else entirely) made it.
	ErrResourceNotOurs = "ResourceNotOurs"
	// ErrRuntimeNotConfigured: the tenant's runtime has no driver on this
	// worker.
	ErrRuntimeNotConfigured = "RuntimeNotConfigured"
	// ErrRegistryUnauthorized: the registry refused the credentials of a
	// pull (EnsureImage) or of an image build's push, or the user's rights
	// on the repository: one name for one problem, whoever met it.
	ErrRegistryUnauthorized = "RegistryUnauthorized"
	// ErrRegistryUnknown: the image's registry host name does not resolve.
	ErrRegistryUnknown = "RegistryUnknown"
	// ErrInvalidImageReference: an image reference the runtime cannot
	// parse.
	ErrInvalidImageReference = "InvalidImageReference"
)

// TenantRef names the tenant an activity works on, and the provisioning
// that owns its objects.
type TenantRef struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner,omitempty"`
	// Runtime is the tenant's runtime (a Driver name; empty: docker).
	Runtime string `json:"runtime,omitempty"`
	// Services limits StartServices to these services (empty: all of
	// them); the other activities ignore it.
	Services []string `json:"services,omitempty"`
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
