package runtimes

import (
	"context"
	"fmt"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// The drift reconcile (workflows/reconcile) compares what a runtime holds
// with what the tenants expect. A driver that can list what it made
// implements Scanner; the activities below carry the call to it.

// ObjectKind names a kind of runtime object the reconcile compares.
type ObjectKind string

// Kinds of runtime objects.
const (
	ObjectContainer ObjectKind = "container"
	ObjectNetwork   ObjectKind = "network"
	ObjectVolume    ObjectKind = "volume"
)

// ErrVolumeKept is the failure type of a request to remove a volume as
// an orphan: the reconcile never destroys data.
const ErrVolumeKept = "VolumeKept"

// Object is one object of a runtime that carries Tenantflow's labels.
type Object struct {
	Kind ObjectKind `json:"kind"`
	Name string     `json:"name"`
	ID   string     `json:"id"`
	// Tenant, Owner (the provisioning run), Service and Generation are
	// read from its labels.
	Tenant     string `json:"tenant"`
	Owner      string `json:"owner,omitempty"`
	Service    string `json:"service,omitempty"`
	Volume     string `json:"volume,omitempty"`
	Generation int    `json:"generation,omitempty"`
	// Running and State are a container's.
	Running bool   `json:"running,omitempty"`
	State   string `json:"state,omitempty"`
}

// Inventory is what a scan of one runtime found.
type Inventory struct {
	Objects []Object `json:"objects"`
	// Unsupported says why nothing was scanned (no such runtime on the
	// worker, or a driver that cannot list); empty when scanned.
	Unsupported string `json:"unsupported,omitempty"`
}

// Scanner is a Driver that lists the objects it made (whatever their
// state, scratch objects of a backup's verification left out) and
// removes one of them, a container or a network, if its labels still
// name the same tenant and owner.
type Scanner interface {
	Scan(ctx context.Context) ([]Object, error)
	RemoveObject(ctx context.Context, o Object) error
}

// ScanInput names the runtime to scan (empty: docker).
type ScanInput struct {
	Runtime string `json:"runtime,omitempty"`
}

// RemoveObjectInput names an orphan to remove from a runtime.
type RemoveObjectInput struct {
	Runtime string `json:"runtime,omitempty"`
	Object  Object `json:"object"`
}

// ScanEngine lists the objects with Tenantflow's labels on this worker's
// engine. A worker without the runtime, or with a driver that cannot
// list, answers why in Inventory.Unsupported instead of failing: the
// reconcile then knows the engine was not looked at.
func (a *Activities) ScanEngine(ctx context.Context, in ScanInput) (Inventory, error) {
	name := in.Runtime
	if name == "" {
		name = spec.Docker
	}
	d := a.Drivers[name]
	if d == nil {
		return Inventory{Unsupported: fmt.Sprintf("runtime %q is not configured on this worker", name)}, nil
	}
	s, ok := d.(Scanner)
	if !ok {
		return Inventory{Unsupported: fmt.Sprintf("the %s driver cannot list its objects", name)}, nil
	}
	objs, err := s.Scan(ctx)
	if err != nil {
		return Inventory{}, err
	}
	if objs == nil {
		objs = []Object{}
	}
	return Inventory{Objects: objs}, nil
}

// RemoveOrphan removes an orphaned container or network (never a
// volume: ErrVolumeKept).
func (a *Activities) RemoveOrphan(ctx context.Context, in RemoveObjectInput) error {
	d, err := a.driver(in.Runtime)
	if err != nil {
		return err
	}
	s, ok := d.(Scanner)
	if !ok {
		return fmt.Errorf("runtime %q cannot remove %s %s: its driver cannot list its objects", in.Runtime, in.Object.Kind, in.Object.Name)
	}
	return s.RemoveObject(ctx, in.Object)
}
