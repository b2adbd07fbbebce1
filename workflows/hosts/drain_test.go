package hosts

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// fakeFleet stands in for the drain's activities: the host's tenants (a
// second list for the drain's second look), moves that take a moment of
// real time so they overlap, and failures by tenant.
type fakeFleet struct {
	mu        sync.Mutex
	calls     []string // activity names in call order
	states    []SetStateInput
	lists     [][]string
	moves     []MoveTenantInput
	moving    int
	together  int // moves to hold until they run side by side (waitForOthers)
	total     int // tenants the drain will move
	maxAtOnce int // the most moves seen at once
	stateErr  error
	moveErr   map[string]error
	failed    map[string]string // tenants whose move ends failed, with its error
}

// waitForOthers holds a move until together moves run (or every tenant
// of the first list has started, or a second has passed), so the moves a
// drain runs side by side overlap however slow the machine is; then a
// little longer, for a move beyond the limit to show.
func (f *fakeFleet) waitForOthers() {
	deadline := time.Now().Add(time.Second)
	f.mu.Lock()
	for f.moving < f.together && len(f.moves) < f.total && time.Now().Before(deadline) {
		f.mu.Unlock()
		time.Sleep(time.Millisecond)
		f.mu.Lock()
	}
	f.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
}

func (f *fakeFleet) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *fakeFleet) setHostState(_ context.Context, in SetStateInput) (Host, error) {
	f.record(ActivitySetHostState)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, in)
	return Host{HostSpec: HostSpec{Name: in.Host}, State: in.State}, f.stateErr
}

func (f *fakeFleet) hostTenants(_ context.Context, host string) ([]string, error) {
	f.record(ActivityHostTenants)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lists) == 0 {
		return []string{}, nil
	}
	list := f.lists[0]
	if len(f.lists) > 1 {
		f.lists = f.lists[1:]
	}
	return list, nil
}

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func (f *fakeFleet) moveTenant(_ context.Context, in MoveTenantInput) (TenantMove, error) {
	f.record(ActivityMoveTenant)
	f.mu.Lock()
	f.moves = append(f.moves, in)
	f.moving++
	f.maxAtOnce = max(f.maxAtOnce, f.moving)
	err, why := f.moveErr[in.Tenant], f.failed[in.Tenant]
	f.mu.Unlock()
	f.waitForOthers()
	f.mu.Lock()
	f.moving--
	f.mu.Unlock()
	if err != nil {
		return TenantMove{}, err
	}
	stopped, serving, finished := t0.Add(time.Minute), t0.Add(time.Minute+1500*time.Millisecond), t0.Add(2*time.Minute)
	m := TenantMove{From: in.Host, To: "host-b", By: in.By, Phase: MovePhaseDone, RequestedAt: t0,
		StoppedAt: &stopped, ServingAt: &serving, FinishedAt: &finished}
	if why != "" {
		m.Phase, m.Error, m.StoppedAt, m.ServingAt = "failed", why, nil, nil
	}
	return m, nil
}

// runDrain runs a drain of host-a by ops against f.
func runDrain(t *testing.T, f *fakeFleet, in DrainInput) (Drain, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(DrainWorkflow, workflow.RegisterOptions{Name: DrainWorkflowType})
	env.RegisterActivityWithOptions(f.setHostState, activity.RegisterOptions{Name: ActivitySetHostState})
	env.RegisterActivityWithOptions(f.hostTenants, activity.RegisterOptions{Name: ActivityHostTenants})
	env.RegisterActivityWithOptions(f.moveTenant, activity.RegisterOptions{Name: ActivityMoveTenant})
	env.ExecuteWorkflow(DrainWorkflowType, in)
	require.True(t, env.IsWorkflowCompleted())
	v, err := env.QueryWorkflow(QueryDrain)
	require.NoError(t, err)
	var d Drain
	require.NoError(t, v.Get(&d))
	return d, env.GetWorkflowError()
}

func names(n int) []string {
	var out []string
	for i := range n {
		out = append(out, string(rune('a'+i))+"-tenant")
	}
	return out
}

// The host is set draining before anything else; at most MaxParallel
// moves run at once, and that many do; each move asks for any host (the
// registry chooses) with an Update id of this run and tenant.
func TestDrainMovesAFewAtATime(t *testing.T) {
	for _, parallel := range []int{1, 3} {
		f := &fakeFleet{lists: [][]string{names(7), {}}, together: parallel, total: 7}
		d, err := runDrain(t, f, DrainInput{Host: "host-a", By: "ops", Reason: "kernel update", MaxParallel: parallel})
		require.NoError(t, err)

		assert.Equal(t, parallel, f.maxAtOnce, "moves at once with MaxParallel %d", parallel)
		require.Equal(t, []SetStateInput{{Host: "host-a", State: StateDraining, By: "ops", Reason: "kernel update"}}, f.states)
		assert.Equal(t, ActivitySetHostState, f.calls[0], "the host is set draining first")
		assert.Equal(t, ActivityHostTenants, f.calls[1])
		assert.Equal(t, ActivityHostTenants, f.calls[len(f.calls)-1], "the drain looks again at the end")
		require.Len(t, f.moves, 7)
		var ids []string
		for _, m := range f.moves {
			assert.Equal(t, "drain of host-a by ops", m.By)
			assert.Equal(t, "host-a", m.Host)
			ids = append(ids, m.UpdateID)
		}
		assert.Contains(t, ids, "drain:default-test-run-id:a-tenant")
		slices.Sort(ids)
		assert.Len(t, slices.Compact(ids), 7, "one Update id per tenant")

		assert.Equal(t, DrainDone, d.Phase)
		assert.Equal(t, DrainCounts{Total: 7, Moved: 7}, d.Counts)
		assert.NotNil(t, d.FinishedAt)
		assert.Empty(t, d.Left)
		for _, e := range d.Tenants {
			assert.Equal(t, TenantMoved, e.Outcome, e.Tenant)
			assert.Equal(t, "host-b", e.To)
			require.NotNil(t, e.StartedAt)
			require.NotNil(t, e.FinishedAt)
			require.NotNil(t, e.InterruptionMs)
			assert.Equal(t, int64(1500), *e.InterruptionMs)
		}
	}
}

// A tenant whose move fails (the activity, or the move itself) is
// recorded failed with why, the others still move, and the drain ends
// done listing what the host still holds.
func TestDrainRecordsFailuresAndGoesOn(t *testing.T) {
	f := &fakeFleet{
		lists:    [][]string{{"a-tenant", "b-tenant", "c-tenant", "d-tenant"}, {"b-tenant", "c-tenant"}},
		moveErr:  map[string]error{"b-tenant": temporal.NewNonRetryableApplicationError("tenant b-tenant is releasing: only an active tenant moves", "MoveRefused", nil)},
		failed:   map[string]string{"c-tenant": "no host has room"},
		together: 2, total: 4,
	}
	d, err := runDrain(t, f, DrainInput{Host: "host-a", By: "ops"})
	require.NoError(t, err)

	assert.Equal(t, 2, f.maxAtOnce, "MaxParallel 0 is 2")
	assert.Equal(t, "drain", f.states[0].Reason)
	assert.Equal(t, DrainDone, d.Phase)
	assert.Equal(t, DrainCounts{Total: 4, Moved: 2, Failed: 2}, d.Counts)
	byName := map[string]DrainTenant{}
	for _, e := range d.Tenants {
		byName[e.Tenant] = e
	}
	assert.Equal(t, TenantMoved, byName["a-tenant"].Outcome)
	assert.Equal(t, TenantMoved, byName["d-tenant"].Outcome, "the drain goes on after a failure")
	assert.Equal(t, TenantFailed, byName["b-tenant"].Outcome)
	assert.Contains(t, byName["b-tenant"].Error, "only an active tenant moves")
	assert.Equal(t, TenantFailed, byName["c-tenant"].Outcome)
	assert.Contains(t, byName["c-tenant"].Error, "no host has room")
	assert.Nil(t, byName["c-tenant"].InterruptionMs)
	assert.Len(t, f.moves, 4, "a failed tenant is not tried again")
	assert.Equal(t, []string{"b-tenant", "c-tenant"}, d.Left)
}

// A tenant that landed on the host during the drain (a move towards it
// decided before) is found by the second look and moved too.
func TestDrainMovesLateArrivals(t *testing.T) {
	f := &fakeFleet{lists: [][]string{{"a-tenant"}, {"late-tenant"}}}
	d, err := runDrain(t, f, DrainInput{Host: "host-a", By: "ops", MaxParallel: 4})
	require.NoError(t, err)
	assert.Equal(t, DrainCounts{Total: 2, Moved: 2}, d.Counts)
	assert.Equal(t, "late-tenant", d.Tenants[1].Tenant)
	assert.Empty(t, d.Left)
}

// A host that cannot be set draining (lost, unknown) is not touched
// further: the drain fails saying why.
func TestDrainStopsWhenTheHostCannotDrain(t *testing.T) {
	f := &fakeFleet{lists: [][]string{{"a-tenant"}},
		stateErr: temporal.NewNonRetryableApplicationError("host host-a is lost", ErrConflict, nil)}
	d, err := runDrain(t, f, DrainInput{Host: "host-a", By: "ops"})
	require.Error(t, err)
	assert.Equal(t, ErrDrainFailed, errType(err))
	assert.Equal(t, []string{ActivitySetHostState}, f.calls)
	assert.Equal(t, DrainFailed, d.Phase)
	assert.Contains(t, d.Error, "host host-a is lost")
}

func TestCheckDrain(t *testing.T) {
	tests := []struct {
		in    DrainInput
		field string
	}{
		{DrainInput{Host: "host-a", By: "ops"}, ""},
		{DrainInput{Host: "host-a", By: "ops", MaxParallel: MaxDrainParallel}, ""},
		{DrainInput{Host: "Host_A", By: "ops"}, "host"},
		{DrainInput{Host: "host-a"}, "by"},
		{DrainInput{Host: "host-a", By: "ops", MaxParallel: MaxDrainParallel + 1}, "maxParallel"},
		{DrainInput{Host: "host-a", By: "ops", MaxParallel: -1}, "maxParallel"},
	}
	for _, tt := range tests {
		field, _ := CheckDrain(tt.in)
		assert.Equal(t, tt.field, field, "%+v", tt.in)
	}
}
