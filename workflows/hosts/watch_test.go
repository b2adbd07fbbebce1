package hosts

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
)

// fakeHosts stands in for the watch's activities: host-a's worker and
// engine go down at downAt and come back at upAt (simulated time).
type fakeHosts struct {
	mu           sync.Mutex
	env          *testsuite.TestWorkflowEnvironment
	start        time.Time
	downAt, upAt time.Duration
	state        HostState
	states       []SetStateInput
	notified     []NotifyInput
}

func (f *fakeHosts) down() bool {
	at := f.env.Now().Sub(f.start)
	return at >= f.downAt && at < f.upAt
}

func (f *fakeHosts) listHosts(context.Context) ([]Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []Host{{HostSpec: HostSpec{Name: "host-a", Docker: "unix:///a.sock"}, State: f.state},
		{HostSpec: HostSpec{Name: "host-b", Docker: "unix:///b.sock"}, State: StateActive}}, nil
}

func (f *fakeHosts) pingHost(ctx context.Context) (PingResult, error) {
	if activity.GetInfo(ctx).TaskQueue == TaskQueue("host-a") && f.down() {
		return PingResult{}, errors.New("activity ScheduleToStart timeout")
	}
	return PingResult{Engine: true}, nil
}

func (f *fakeHosts) probeEngine(_ context.Context, in ProbeInput) (string, error) {
	if in.Host == "host-a" && f.down() {
		return "connection refused", nil
	}
	return "", nil
}

func (f *fakeHosts) setHostState(_ context.Context, in SetStateInput) (Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states, f.state = append(f.states, in), in.State
	return Host{}, nil
}

func (f *fakeHosts) notifyTenants(_ context.Context, in NotifyInput) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notified = append(f.notified, in)
	return 1, nil
}

// A host whose worker and engine stay unreachable past LostAfter is set
// lost once and its tenants told; when it answers again they are told
// it is back; a host that answers is never touched.
func TestTheWatchFindsALostHostAndItsReturn(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	g := &gaugeRecorder{values: map[string]float64{}}
	s.SetMetricsHandler(g)
	env := s.NewTestWorkflowEnvironment()
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	f := &fakeHosts{env: env, start: start, downAt: 2 * time.Minute, upAt: 10 * time.Minute, state: StateActive}
	env.RegisterActivityWithOptions(f.listHosts, activity.RegisterOptions{Name: ActivityListHosts})
	env.RegisterActivityWithOptions(f.pingHost, activity.RegisterOptions{Name: ActivityPingHost})
	env.RegisterActivityWithOptions(f.probeEngine, activity.RegisterOptions{Name: ActivityProbeEngine})
	env.RegisterActivityWithOptions(f.setHostState, activity.RegisterOptions{Name: ActivitySetHostState})
	env.RegisterActivityWithOptions(f.notifyTenants, activity.RegisterOptions{Name: ActivityNotifyTenants})
	var during WatchInput
	var gaugesDuring map[string]float64
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryWatch)
		require.NoError(t, err)
		require.NoError(t, v.Get(&during))
		gaugesDuring = g.snapshot()
	}, 5*time.Minute)
	env.RegisterDelayedCallback(env.CancelWorkflow, 15*time.Minute)
	env.ExecuteWorkflow(WatchWorkflow, WatchInput{LostAfter: time.Minute})

	require.Len(t, f.states, 1, "set lost once")
	require.Equal(t, SetStateInput{Host: "host-a", State: StateLost, By: "host watch", Reason: f.states[0].Reason}, f.states[0])
	require.Contains(t, f.states[0].Reason, "worker and engine unreachable since 2026-12-06T10:02")
	require.Len(t, f.notified, 2, "%+v", f.notified)
	lost, back := f.notified[0], f.notified[1]
	require.Equal(t, SignalHostLost, lost.Signal)
	require.Equal(t, "host-a", lost.Host)
	require.WithinDuration(t, start.Add(2*time.Minute), lost.Event.Since, 15*time.Second, "since when it was unreachable")
	require.Equal(t, SignalHostBack, back.Signal)

	a, b := during.Hosts["host-a"], during.Hosts["host-b"]
	require.False(t, a.Worker || a.Engine)
	require.NotNil(t, a.LostAt)
	require.Contains(t, a.Problem, "the engine does not answer: connection refused")
	require.True(t, b.Worker && b.Engine)
	require.Nil(t, b.UnreachableSince)
	require.Equal(t, map[string]float64{
		"tenantflow_host_reachable host-a": 0, "tenantflow_host_lost host-a": 1,
		"tenantflow_host_reachable host-b": 1, "tenantflow_host_lost host-b": 0,
	}, gaugesDuring)
	require.Equal(t, 1.0, g.snapshot()["tenantflow_host_reachable host-a"], "back")
}

// gaugeRecorder keeps the last value of each gauge by name and host.
type gaugeRecorder struct {
	mu     sync.Mutex
	host   string
	values map[string]float64
	root   *gaugeRecorder
}

func (g *gaugeRecorder) WithTags(tags map[string]string) client.MetricsHandler {
	root := g.root
	if root == nil {
		root = g
	}
	return &gaugeRecorder{host: tags["host"], root: root}
}
func (g *gaugeRecorder) Counter(string) client.MetricsCounter {
	return client.MetricsNopHandler.Counter("")
}
func (g *gaugeRecorder) Timer(string) client.MetricsTimer { return client.MetricsNopHandler.Timer("") }
func (g *gaugeRecorder) Gauge(name string) client.MetricsGauge {
	return gaugeFunc(func(v float64) {
		g.root.mu.Lock()
		defer g.root.mu.Unlock()
		g.root.values[name+" "+g.host] = v
	})
}

func (g *gaugeRecorder) snapshot() map[string]float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.values)
}

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

// A worker that does not answer while its engine does is not lost: its
// tenants still serve.
func TestAHostWhoseEngineAnswersIsNotLost(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	f := &fakeHosts{env: env, start: start, downAt: time.Minute, upAt: time.Hour, state: StateActive}
	env.RegisterActivityWithOptions(f.listHosts, activity.RegisterOptions{Name: ActivityListHosts})
	env.RegisterActivityWithOptions(f.pingHost, activity.RegisterOptions{Name: ActivityPingHost})
	env.RegisterActivityWithOptions(func(context.Context, ProbeInput) (string, error) { return "", nil }, activity.RegisterOptions{Name: ActivityProbeEngine})
	env.RegisterActivityWithOptions(f.setHostState, activity.RegisterOptions{Name: ActivitySetHostState})
	env.RegisterActivityWithOptions(f.notifyTenants, activity.RegisterOptions{Name: ActivityNotifyTenants})
	env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Minute)
	env.ExecuteWorkflow(WatchWorkflow, WatchInput{LostAfter: time.Minute})
	require.Empty(t, f.states)
	require.Empty(t, f.notified)
}
