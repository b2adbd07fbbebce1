// Package runtimetest is the conformance suite of runtime drivers. Every
// runtimes.Driver runs it from its own tests against its real runtime (a
// Docker Engine, a kube-apiserver), so what the contract promises is
// tested once, for all of them, instead of in a copy per driver:
//
//	func TestConformance(t *testing.T) {
//		runtimetest.Run(t, runtimetest.Runtime{Driver: …, Environment: …, …})
//	}
//
// A driver's own tests keep what only that runtime does (how it names and
// labels its objects, its rendering, its own failure types).
package runtimetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// Runtime is what the suite needs of one runtime besides its driver: what
// it can run, and a way to see what it holds without asking the driver.
type Runtime struct {
	// Driver is the driver under test (a new one per case, or the same).
	Driver func(t *testing.T) runtimes.Driver
	// Environment renders a runnable environment for tenant: images the
	// runtime can run, one service with the public port and one without,
	// and volumes mounted by them. Each call may render new secrets.
	Environment func(t *testing.T, tenant string) spec.Environment
	// Candidate turns svc into a release candidate of generation gen: an
	// image of its own that becomes healthy or, when healthy is false, one
	// that starts but never passes its health check.
	Candidate func(t *testing.T, svc spec.Service, gen int, healthy bool) spec.Service
	// Inventory lists what the runtime holds of the tenant, read past the
	// driver. Objects being deleted are left out.
	Inventory func(ctx context.Context, tenant string) (Inventory, error)

	// StoppedState is the State of a stopped service's instances (Docker:
	// "exited", the same containers); empty when a stopped service has no
	// instance at all (OpenShift scales its Deployment to zero).
	StoppedState string
	// NoGeneration is the failure type of RetireService keeping a
	// generation of which there is no instance (Docker: NoInstanceToKeep;
	// OpenShift: RolloutFailed, no ReplicaSet to roll back to).
	NoGeneration string
	// RefusedForOthers names the Driver methods that answer a call naming
	// another owner with ErrResourceNotOurs, where the others succeed
	// having done nothing. Either way the live tenant keeps everything.
	// OpenShift finds a tenant's project and Deployments by name, and
	// says so for RemoveNetwork and RetireService; Docker selects by owner
	// label and finds nothing.
	RefusedForOthers []string

	// Fresh, when set, checks what a freshly provisioned tenant serves at
	// its endpoint (Docker: the demo app counts its first hit in its db).
	Fresh func(t *testing.T, ep runtimes.Endpoint)
	// Serves, when set, checks that the tenant answers at its endpoint.
	Serves func(t *testing.T, ep runtimes.Endpoint)
	// Data, when set, reaches the tenant's volumes through its services;
	// nil where the runtime runs no real containers (kwok), and the suite
	// then checks the volumes' identities only.
	Data *Data
}

// Data writes to and reads from a running tenant's volumes.
type Data struct {
	// Put changes what the tenant's volumes hold and returns Get's answer.
	Put func(t *testing.T, ep runtimes.Endpoint) string
	// Get tells what the tenant's volumes hold.
	Get func(t *testing.T, ep runtimes.Endpoint) string
}

// Inventory is what a runtime holds of one tenant.
type Inventory struct {
	// Networks maps each network object to its identity (Docker: the
	// bridge network and its id; OpenShift: the isolation policy and its
	// uid).
	Networks map[string]string
	// Volumes maps each volume (its name in the template) to the identity
	// of its storage: the same identity is the same data.
	Volumes map[string]string
	// Instances are the services' instances (containers, pods), running
	// or not.
	Instances []Instance
}

// Instance is one instance of a service.
type Instance struct {
	Service    string
	Generation int
	ID         string
	// State is the runtime's word for it ("running", "exited"; "Running",
	// "Pending").
	State string
	// Serving: running, and ready where the runtime tells readiness.
	Serving bool
}

func (i Instance) String() string {
	return fmt.Sprintf("%s/%d %s %s serving=%t", i.Service, i.Generation, i.ID, i.State, i.Serving)
}

// sorted orders the instances so that two inventories compare equal.
func (inv Inventory) sorted() Inventory {
	slices.SortFunc(inv.Instances, func(a, b Instance) int {
		return strings.Compare(fmt.Sprint(a.Service, a.Generation, a.ID), fmt.Sprint(b.Service, b.Generation, b.ID))
	})
	return inv
}

// empty tells whether the runtime holds nothing of the tenant.
func (inv Inventory) empty() bool {
	return len(inv.Networks) == 0 && len(inv.Volumes) == 0 && len(inv.Instances) == 0
}

// of lists the instances of one service.
func (inv Inventory) of(service string) []Instance {
	var out []Instance
	for _, i := range inv.Instances {
		if i.Service == service {
			out = append(out, i)
		}
	}
	return out
}

// serving lists the serving instances of one service.
func (inv Inventory) serving(service string) []Instance {
	var out []Instance
	for _, i := range inv.of(service) {
		if i.Serving {
			out = append(out, i)
		}
	}
	return out
}

// ids names every instance by service, generation and id.
func (inv Inventory) ids(services ...string) []string {
	var out []string
	for _, i := range inv.Instances {
		if len(services) == 0 || slices.Contains(services, i.Service) {
			out = append(out, fmt.Sprintf("%s/%d/%s", i.Service, i.Generation, i.ID))
		}
	}
	sort.Strings(out)
	return out
}

func (inv Inventory) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "networks %v, volumes %v, instances:", inv.Networks, inv.Volumes)
	for _, i := range inv.Instances {
		b.WriteString("\n\t" + i.String())
	}
	return b.String()
}
