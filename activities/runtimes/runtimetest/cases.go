package runtimetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// A retry of every provisioning step finds what the first attempt made: no
// second network, volume or instance, the same endpoint. The teardown
// leaves nothing, and a retried teardown is success.
func idempotentCreate(t *testing.T, tn *tenant) {
	ep, ids := tn.provision(t, tn.env, owner)
	if tn.rt.Fresh != nil {
		tn.rt.Fresh(t, ep)
	}
	inv := tn.inventory(t)
	requireComplete(t, tn.env, inv)

	ep2, ids2 := tn.provision(t, tn.env, owner)
	require.Equal(t, ep, ep2)
	require.Equal(t, ids, ids2, "a retried start finds each service")
	require.Equal(t, inv, tn.inventory(t), "a retry makes nothing twice and replaces nothing")

	tn.teardown(t, "") // an empty owner matches any
	tn.await(t, "nothing left of "+tn.name, func(inv Inventory) error {
		if !inv.empty() {
			return errors.New("the teardown left something")
		}
		return nil
	})
	tn.teardown(t, "")    // removing nothing is not an error
	tn.teardown(t, owner) // nor is it for the owner
}

// A second provisioning of a live tenant is refused at every step, and its
// compensation, which removes only its own objects, takes nothing of the
// live tenant's.
func ownershipRefusal(t *testing.T, tn *tenant) {
	pub, _ := tn.public(t)
	tn.provision(t, tn.env, owner)
	live := tn.inventory(t)
	requireComplete(t, tn.env, live)

	harness.RequireNonRetryable(t, tn.d.CreateNetwork(tn.ctx, tn.name, other), runtimes.ErrResourceNotOurs)
	harness.RequireNonRetryable(t, tn.d.CreateVolumes(tn.ctx, tn.name, other, tn.env.Volumes), runtimes.ErrResourceNotOurs)
	second := tn.rt.Environment(t, tn.name) // new secrets: another spec
	for _, s := range second.Services {
		_, err := tn.d.StartService(tn.ctx, tn.name, other, s)
		harness.RequireNonRetryable(t, err, runtimes.ErrResourceNotOurs)
	}

	tn.requireOthersCall(t, "RetireService", tn.d.RetireService(tn.ctx, runtimes.RetireInput{Tenant: tn.name, Owner: other, Service: pub.Name, Keep: 1}))
	tn.requireOthersCall(t, "StopServices", tn.d.StopServices(tn.ctx, runtimes.StopInput{Tenant: tn.name, Owner: other}))
	tn.requireOthersCall(t, "RemoveServices", tn.d.RemoveServices(tn.ctx, tn.name, other))
	tn.requireOthersCall(t, "RemoveVolumes", tn.d.RemoveVolumes(tn.ctx, tn.name, other))
	tn.requireOthersCall(t, "RemoveNetwork", tn.d.RemoveNetwork(tn.ctx, tn.name, other))
	require.Equal(t, live, tn.inventory(t), "the live tenant keeps everything, running")
}

// A release: the candidate (a new generation with a new image) starts
// while the current generation serves, and retiring the current one
// leaves the candidate alone in service. The service is never without a
// serving instance, the other services and the volumes are untouched.
func cutOverToNewGeneration(t *testing.T, tn *tenant) {
	pub, rest := tn.public(t)
	tn.provision(t, tn.env, owner)
	before := tn.inventory(t)

	cand := tn.rt.Candidate(t, pub, 1, true)
	require.Equal(t, 1, cand.Generation)
	w := tn.watch()
	st, err := tn.d.StartService(tn.ctx, tn.name, owner, cand)
	require.NoError(t, err)
	again, err := tn.d.StartService(tn.ctx, tn.name, owner, cand)
	require.NoError(t, err)
	require.Equal(t, st.ID, again.ID, "a retried start finds the candidate")
	_, err = tn.d.WaitHealthy(tn.ctx, tn.candidateEnv(cand, time.Minute), func(string) {})
	require.NoError(t, err)
	require.NotEmpty(t, generation(tn.inventory(t).serving(pub.Name), 1), "the candidate serves")

	in := runtimes.RetireInput{Tenant: tn.name, Owner: owner, Service: pub.Name, Keep: 1}
	require.NoError(t, tn.d.RetireService(tn.ctx, in))
	samples := w.Stop(t)
	for _, s := range samples {
		require.NotEmpty(t, s.serving(pub.Name), "a moment without a serving instance of %s:\n%s", pub.Name, s)
	}
	t.Logf("%d samples during the cut-over", len(samples))

	after := tn.await(t, "only generation 1 of "+pub.Name, onlyGeneration(pub.Name, 1))
	require.Equal(t, before.ids(rest.Name), after.ids(rest.Name), "the other services are untouched")
	require.Equal(t, before.Volumes, after.Volumes, "the volumes are untouched")
	require.Equal(t, before.Networks, after.Networks)

	require.NoError(t, tn.d.RetireService(tn.ctx, in), "nothing left to retire is success")
	require.Equal(t, after.ids(), tn.inventory(t).ids())
}

// A candidate that never becomes healthy runs beside the current
// generation, which serves throughout; its wait fails within the
// release's health timeout, and retiring it (keeping the current
// generation) rolls the release back to the very instance that served.
func generationsSideBySide(t *testing.T, tn *tenant) {
	pub, rest := tn.public(t)
	tn.provision(t, tn.env, owner)
	before := tn.inventory(t)
	current := before.serving(pub.Name)
	require.Len(t, current, 1)

	cand := tn.rt.Candidate(t, pub, 1, false)
	w := tn.watch()
	_, err := tn.d.StartService(tn.ctx, tn.name, owner, cand)
	require.NoError(t, err)
	const timeout = 3 * time.Second
	start := time.Now()
	_, err = tn.d.WaitHealthy(tn.ctx, tn.candidateEnv(cand, timeout), func(string) {})
	elapsed := time.Since(start)
	harness.RequireNonRetryable(t, err, runtimes.ErrServiceUnhealthy)
	t.Logf("after %s: %v", elapsed.Round(time.Millisecond), err)
	require.GreaterOrEqual(t, elapsed, timeout)
	require.Less(t, elapsed, timeout+5*time.Second)

	both := tn.inventory(t)
	require.NotEmpty(t, generation(both.of(pub.Name), 1), "the candidate runs beside the current generation: %s", both)
	require.Equal(t, current, generation(both.serving(pub.Name), 0), "the current generation serves, unchanged: %s", both)

	// Keeping a generation that does not exist would leave no instance.
	err = tn.d.RetireService(tn.ctx, runtimes.RetireInput{Tenant: tn.name, Owner: owner, Service: pub.Name, Keep: 7})
	harness.RequireNonRetryable(t, err, tn.rt.NoGeneration)
	require.Equal(t, both.ids(), tn.inventory(t).ids(), "a refused retire changes nothing")

	in := runtimes.RetireInput{Tenant: tn.name, Owner: owner, Service: pub.Name, Keep: 0, StopTimeout: spec.Duration(2 * time.Second)}
	require.NoError(t, tn.d.RetireService(tn.ctx, in))
	after := tn.await(t, "only generation 0 of "+pub.Name, onlyGeneration(pub.Name, 0))
	for _, s := range w.Stop(t) {
		require.Equal(t, current, generation(s.serving(pub.Name), 0), "generation 0 served throughout:\n%s", s)
	}
	require.Equal(t, current, after.of(pub.Name), "the instance that served is the one kept")
	require.Equal(t, before.ids(rest.Name), after.ids(rest.Name), "the other services are untouched")
	require.Equal(t, before.Volumes, after.Volumes)

	require.NoError(t, tn.d.RetireService(tn.ctx, in), "a retried rollback is success")
	require.Equal(t, after.ids(), tn.inventory(t).ids())
}

// StopServices stops the named services (all when none is named) and
// keeps them; StartServices starts them again, as they were.
func stopStart(t *testing.T, tn *tenant) {
	pub, rest := tn.public(t)
	_, ids := tn.provision(t, tn.env, owner)
	before := tn.inventory(t)

	stop := runtimes.StopInput{Tenant: tn.name, Owner: owner, Services: []string{pub.Name}, StopTimeout: spec.Duration(2 * time.Second)}
	require.NoError(t, tn.d.StopServices(tn.ctx, stop))
	inv := tn.inventory(t)
	tn.requireStopped(t, before, inv, pub.Name)
	require.Equal(t, before.of(rest.Name), inv.of(rest.Name), "only the named service stops")

	require.NoError(t, tn.d.StopServices(tn.ctx, runtimes.StopInput{Tenant: tn.name, Owner: owner}))
	inv = tn.inventory(t)
	for _, s := range tn.env.Services {
		tn.requireStopped(t, before, inv, s.Name)
	}
	require.NoError(t, tn.d.StopServices(tn.ctx, runtimes.StopInput{Tenant: tn.name, Owner: owner}), "stopping stopped services is fine")

	// Named, only those start: a rollback with data starts the services
	// of restored volumes but not the stopped newer public instance.
	require.NoError(t, tn.d.StartServices(tn.ctx, tn.name, owner, rest.Name))
	inv = tn.inventory(t)
	tn.requireStopped(t, before, inv, pub.Name)
	if tn.rt.StoppedState != "" { // elsewhere its instances appear later
		require.NotEmpty(t, inv.of(rest.Name))
		for _, i := range inv.of(rest.Name) {
			require.NotEqual(t, tn.rt.StoppedState, i.State, "the named service starts")
		}
	}

	require.NoError(t, tn.d.StartServices(tn.ctx, tn.name, owner))
	ep, err := tn.d.WaitHealthy(tn.ctx, tn.env, func(string) {})
	require.NoError(t, err)
	if tn.rt.Serves != nil {
		tn.rt.Serves(t, ep)
	}
	requireComplete(t, tn.env, tn.inventory(t))
	if tn.rt.StoppedState != "" {
		require.Equal(t, before.ids(), tn.inventory(t).ids(), "the same instances, started again")
	}
	_, ids2 := tn.provision(t, tn.env, owner)
	require.Equal(t, ids, ids2, "the same services, started again")
	require.NoError(t, tn.d.StartServices(tn.ctx, tn.name, owner), "starting running services is fine")
}

// requireStopped checks that service has no serving instance: the same
// instances as before in the runtime's stopped state, or none.
func (tn *tenant) requireStopped(t *testing.T, before, now Inventory, service string) {
	t.Helper()
	if tn.rt.StoppedState == "" {
		require.Empty(t, now.of(service), "a stopped %s keeps no instance: %s", service, now)
		return
	}
	var was []string
	for _, i := range before.of(service) {
		was = append(was, i.ID)
	}
	var is []string
	for _, i := range now.of(service) {
		is = append(is, i.ID)
		require.Equal(t, tn.rt.StoppedState, i.State, "stopped %s: %s", service, now)
		require.False(t, i.Serving)
	}
	require.Equal(t, was, is, "stopping %s keeps its instances", service)
}

// Removing the services (a decommission) leaves the volumes and their
// data, also once the network is gone; a restore finds them again.
// RemoveVolumes (the end of retention) removes them.
func volumesKept(t *testing.T, tn *tenant) {
	ep, _ := tn.provision(t, tn.env, owner)
	var data string
	if tn.rt.Data != nil {
		data = tn.rt.Data.Put(t, ep)
	}
	before := tn.inventory(t)

	require.NoError(t, tn.d.RemoveServices(tn.ctx, tn.name, owner))
	inv := tn.await(t, "no instance of "+tn.name, func(inv Inventory) error {
		if len(inv.Instances) > 0 {
			return errors.New("instances left")
		}
		return nil
	})
	require.Equal(t, before.Volumes, inv.Volumes, "the volumes stay with the services gone")
	require.Equal(t, before.Networks, inv.Networks)

	require.NoError(t, tn.d.RemoveNetwork(tn.ctx, tn.name, owner))
	inv = tn.await(t, "no network of "+tn.name, func(inv Inventory) error {
		if len(inv.Networks) > 0 {
			return errors.New("network left")
		}
		return nil
	})
	require.Equal(t, before.Volumes, inv.Volumes, "the volumes stay with the network gone")

	ep, _ = tn.provision(t, tn.env, owner) // a restore
	inv = tn.inventory(t)
	requireComplete(t, tn.env, inv)
	require.Equal(t, before.Volumes, inv.Volumes, "the restore uses the same volumes")
	if tn.rt.Data != nil {
		require.Equal(t, data, tn.rt.Data.Get(t, ep), "the data outlived the services")
	}

	require.NoError(t, tn.d.RemoveServices(tn.ctx, tn.name, owner))
	require.NoError(t, tn.d.RemoveNetwork(tn.ctx, tn.name, owner))
	require.NoError(t, tn.d.RemoveVolumes(tn.ctx, tn.name, owner))
	tn.await(t, "nothing left of "+tn.name, func(inv Inventory) error {
		if !inv.empty() {
			return errors.New("the volumes outlived RemoveVolumes")
		}
		return nil
	})
	require.NoError(t, tn.d.RemoveVolumes(tn.ctx, tn.name, owner), "removing nothing is not an error")
}

// generation keeps the instances of one generation.
func generation(in []Instance, gen int) []Instance {
	var out []Instance
	for _, i := range in {
		if i.Generation == gen {
			out = append(out, i)
		}
	}
	return out
}

// onlyGeneration holds when service has exactly one instance, of gen, and
// it serves.
func onlyGeneration(service string, gen int) func(Inventory) error {
	return func(inv Inventory) error {
		is := inv.of(service)
		if len(is) != 1 || is[0].Generation != gen || !is[0].Serving {
			return fmt.Errorf("want one serving instance of %s generation %d", service, gen)
		}
		return nil
	}
}
