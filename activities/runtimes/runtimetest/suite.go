package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// Owners of the suite's provisionings: the tenant's, and another run that
// asks for the same tenant (its workflow terminated, the name requested
// again).
const (
	owner = "conformance-run-1"
	other = "conformance-run-2"
)

// settle bounds how long the runtime may take to show what a driver call
// did (a Deployment's pods go after the call returns).
const settle = 60 * time.Second

// Run runs every case of the contract against the runtime, each on a
// tenant of its own.
func Run(t *testing.T, rt Runtime) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, *tenant)
	}{
		{"IdempotentCreate", idempotentCreate},
		{"OwnershipRefusal", ownershipRefusal},
		{"CutOverToNewGeneration", cutOverToNewGeneration},
		{"GenerationsSideBySide", generationsSideBySide},
		{"StopStart", stopStart},
		{"VolumesKept", volumesKept},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newTenant(t, rt)) })
	}
}

// tenant is one case's tenant on the runtime under test.
type tenant struct {
	rt   Runtime
	d    runtimes.Driver
	name string
	env  spec.Environment
	ctx  context.Context
}

// newTenant names a tenant no other case or run uses and removes whatever
// the runtime holds of it when the case ends.
func newTenant(t *testing.T, rt Runtime) *tenant {
	tn := &tenant{rt: rt, d: rt.Driver(t), name: "conf" + harness.UniqueSuffix(), ctx: context.Background()}
	tn.env = rt.Environment(t, tn.name)
	t.Cleanup(func() {
		ctx := context.Background()
		err := errors.Join(tn.d.RemoveServices(ctx, tn.name, ""), tn.d.RemoveVolumes(ctx, tn.name, ""), tn.d.RemoveNetwork(ctx, tn.name, ""))
		if err != nil {
			t.Errorf("clean up tenant %s: %v", tn.name, err)
		}
	})
	return tn
}

// public is the environment's service with the public port, other one
// without.
func (tn *tenant) public(t *testing.T) (pub, other spec.Service) {
	t.Helper()
	p, _, ok := tn.env.PublicPort()
	require.True(t, ok, "the environment has no public port")
	for _, s := range tn.env.Services {
		if s.Name != p.Name {
			return p, s
		}
	}
	t.Fatal("the environment needs a service without the public port")
	return p, spec.Service{}
}

// provision does what the provisioning workflow does, as owner.
func (tn *tenant) provision(t *testing.T, env spec.Environment, owner string) (runtimes.Endpoint, map[string]string) {
	t.Helper()
	require.NoError(t, tn.d.CreateNetwork(tn.ctx, env.Tenant, owner))
	require.NoError(t, tn.d.CreateVolumes(tn.ctx, env.Tenant, owner, env.Volumes))
	ids := map[string]string{}
	for _, s := range env.Services {
		st, err := tn.d.StartService(tn.ctx, env.Tenant, owner, s)
		require.NoError(t, err)
		require.Equal(t, s.Name, st.Service)
		ids[s.Name] = st.ID
	}
	ep, err := tn.d.WaitHealthy(tn.ctx, env, func(string) {})
	require.NoError(t, err)
	return ep, ids
}

// teardown does what compensation and the end of retention do, as owner.
func (tn *tenant) teardown(t *testing.T, owner string) {
	t.Helper()
	require.NoError(t, tn.d.RemoveServices(tn.ctx, tn.name, owner))
	require.NoError(t, tn.d.RemoveVolumes(tn.ctx, tn.name, owner))
	require.NoError(t, tn.d.RemoveNetwork(tn.ctx, tn.name, owner))
}

// inventory is what the runtime holds of the tenant now.
func (tn *tenant) inventory(t *testing.T) Inventory {
	t.Helper()
	inv, err := tn.rt.Inventory(tn.ctx, tn.name)
	require.NoError(t, err)
	return inv.sorted()
}

// await waits until the tenant's inventory satisfies cond and returns it.
func (tn *tenant) await(t *testing.T, what string, cond func(Inventory) error) Inventory {
	t.Helper()
	var inv Inventory
	harness.WaitFor(t, what, settle, func() error {
		var err error
		if inv, err = tn.rt.Inventory(tn.ctx, tn.name); err != nil {
			return err
		}
		inv = inv.sorted()
		if err := cond(inv); err != nil {
			return fmt.Errorf("%w\n%s", err, inv)
		}
		return nil
	})
	return inv
}

// requireComplete checks the inventory of a provisioned environment: one
// network, its volumes, one serving instance of generation 0 per service.
func requireComplete(t *testing.T, env spec.Environment, inv Inventory) {
	t.Helper()
	require.Len(t, inv.Networks, 1, "one network: %s", inv)
	require.ElementsMatch(t, env.Volumes, keys(inv.Volumes), "the environment's volumes: %s", inv)
	require.Len(t, inv.Instances, len(env.Services), "one instance per service: %s", inv)
	for _, s := range env.Services {
		got := inv.serving(s.Name)
		require.Len(t, got, 1, "service %s serves once: %s", s.Name, inv)
		require.Equal(t, s.Generation, got[0].Generation)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// watch samples the tenant's inventory until stopped, as a client of the
// tenant would see it while a release runs.
type watch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples []Inventory
	err     error
}

func (tn *tenant) watch() *watch {
	w := &watch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			inv, err := tn.rt.Inventory(tn.ctx, tn.name)
			w.mu.Lock()
			if err != nil {
				w.err = errors.Join(w.err, err)
			} else {
				w.samples = append(w.samples, inv.sorted())
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return w
}

// Stop ends the watch and returns its samples.
func (w *watch) Stop(t *testing.T) []Inventory {
	t.Helper()
	close(w.stop)
	<-w.done
	require.NoError(t, w.err, "inventory while watching")
	require.NotEmpty(t, w.samples)
	return w.samples
}

// requireOthersCall checks a call naming another owner: refused if the
// runtime refuses it, else a success; never anything done.
func (tn *tenant) requireOthersCall(t *testing.T, method string, err error) {
	t.Helper()
	if slices.Contains(tn.rt.RefusedForOthers, method) {
		harness.RequireNonRetryable(t, err, runtimes.ErrResourceNotOurs)
		return
	}
	require.NoError(t, err, "%s of another owner: nothing to do is success", method)
}

// candidateEnv is the environment a release waits for: its candidate only.
func (tn *tenant) candidateEnv(cand spec.Service, timeout time.Duration) spec.Environment {
	return spec.Environment{Tenant: tn.name, Runtime: tn.env.Runtime, Template: tn.env.Template, Stage: tn.env.Stage,
		Services: []spec.Service{cand}, HealthTimeout: spec.Duration(timeout)}
}
