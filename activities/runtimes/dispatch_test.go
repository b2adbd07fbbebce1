package runtimes

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// recorder is a Driver that records which runtime got each call.
type recorder struct {
	name  string
	calls *[]string
}

func (r recorder) rec(what string) error                               { *r.calls = append(*r.calls, r.name+" "+what); return nil }
func (r recorder) CreateNetwork(context.Context, string, string) error { return r.rec("CreateNetwork") }
func (r recorder) CreateVolumes(context.Context, string, string, []string) error {
	return r.rec("CreateVolumes")
}
func (r recorder) StartService(context.Context, string, string, spec.Service) (ServiceStatus, error) {
	return ServiceStatus{}, r.rec("StartService")
}
func (r recorder) WaitHealthy(context.Context, spec.Environment, func(string)) (Endpoint, error) {
	return Endpoint{}, r.rec("WaitHealthy")
}
func (r recorder) RemoveServices(context.Context, string, string) error {
	return r.rec("RemoveServices")
}
func (r recorder) RemoveVolumes(context.Context, string, string) error { return r.rec("RemoveVolumes") }
func (r recorder) RemoveNetwork(context.Context, string, string) error { return r.rec("RemoveNetwork") }
func (r recorder) EnsureImage(context.Context, string) error           { return r.rec("EnsureImage") }
func (r recorder) RetireService(context.Context, RetireInput) error    { return r.rec("RetireService") }
func (r recorder) StopServices(context.Context, StopInput) error       { return r.rec("StopServices") }
func (r recorder) StartServices(context.Context, string, string, ...string) error {
	return r.rec("StartServices")
}

func TestActivitiesUseTheTenantsRuntime(t *testing.T) {
	var calls []string
	a := &Activities{Drivers: map[string]Driver{spec.Docker: recorder{"docker", &calls}, spec.OpenShift: recorder{"openshift", &calls}}}
	ctx := context.Background()
	require.NoError(t, a.CreateNetwork(ctx, TenantRef{Tenant: "a", Runtime: spec.OpenShift}))
	require.NoError(t, a.CreateVolumes(ctx, VolumesInput{Tenant: "a", Runtime: spec.OpenShift}))
	_, err := a.StartService(ctx, ServiceInput{Tenant: "a", Runtime: spec.OpenShift})
	require.NoError(t, err)
	_, err = a.WaitHealthy(ctx, spec.Environment{Tenant: "a", Runtime: spec.OpenShift})
	require.NoError(t, err)
	require.NoError(t, a.EnsureImage(ctx, ImageInput{Runtime: spec.OpenShift}))
	require.NoError(t, a.RetireService(ctx, RetireInput{Runtime: spec.OpenShift}))
	require.NoError(t, a.StopServices(ctx, StopInput{Runtime: spec.OpenShift}))
	require.NoError(t, a.StartServices(ctx, TenantRef{Runtime: spec.OpenShift}))
	require.NoError(t, a.RemoveServices(ctx, TenantRef{Runtime: spec.OpenShift}))
	require.NoError(t, a.RemoveVolumes(ctx, TenantRef{Runtime: spec.OpenShift}))
	require.NoError(t, a.RemoveNetwork(ctx, TenantRef{Runtime: spec.OpenShift}))
	for _, c := range calls {
		require.Regexp(t, "^openshift ", c)
	}
	require.Len(t, calls, 11)

	// Tenants from before runtimes existed name none: they are Docker's.
	calls = nil
	require.NoError(t, a.CreateNetwork(ctx, TenantRef{Tenant: "old"}))
	require.Equal(t, []string{"docker CreateNetwork"}, calls)

	// A runtime this worker lacks is a permanent error naming it.
	a = &Activities{Drivers: map[string]Driver{spec.Docker: recorder{"docker", &calls}}}
	err = a.CreateNetwork(ctx, TenantRef{Tenant: "a", Runtime: spec.OpenShift})
	require.ErrorContains(t, err, `runtime "openshift" is not configured on this worker (see the TENANTFLOW_OPENSHIFT_* settings`)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, ErrRuntimeNotConfigured, appErr.Type())
	require.True(t, appErr.NonRetryable())
}

// silent is a driver whose WaitHealthy reports nothing for a while (its
// probes wait for the engine), then answers.
type silent struct {
	recorder
	quiet time.Duration
}

func (s silent) WaitHealthy(ctx context.Context, _ spec.Environment, _ func(string)) (Endpoint, error) {
	select {
	case <-time.After(s.quiet):
		return Endpoint{URL: "http://x"}, nil
	case <-ctx.Done():
		return Endpoint{}, ctx.Err()
	}
}

// A health wait whose probes say nothing for longer than the heartbeat
// timeout still heartbeats: its worker is alive, only the engine is slow.
func TestWaitHealthyHeartbeatsWhileTheDriverIsSilent(t *testing.T) {
	var (
		mu    sync.Mutex
		beats []any
	)
	var calls []string
	a := &Activities{
		Drivers: map[string]Driver{spec.Docker: silent{recorder{"docker", &calls}, 250 * time.Millisecond}},
		Heartbeat: func(_ context.Context, details ...any) {
			mu.Lock()
			defer mu.Unlock()
			beats = append(beats, details...)
		},
		HeartbeatEvery: 20 * time.Millisecond,
	}
	ep, err := a.WaitHealthy(context.Background(), spec.Environment{Tenant: "a"})
	require.NoError(t, err)
	require.Equal(t, "http://x", ep.URL)
	mu.Lock()
	n := len(beats)
	mu.Unlock()
	require.GreaterOrEqual(t, n, 5, "heartbeats while the driver said nothing")
	require.Equal(t, "waiting for the services' first probe", beats[0])
	time.Sleep(60 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, beats, n, "no heartbeat after the wait returned")
}
