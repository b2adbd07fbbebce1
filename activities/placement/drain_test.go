package placement_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/placement"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// fakeClient answers the queries and Updates the drain's activities send:
// the tenant's states one query after the other (the last one repeats),
// with the real tenant types, so the copies of the tenant's contract in
// the placement package are checked against them.
type fakeClient struct {
	client.Client
	mu        sync.Mutex
	states    []tenant.Tenant
	queryErr  error
	hosts     []hosts.Host
	queries   []string // "workflow id/query"
	updates   []client.UpdateWorkflowOptions
	updateErr error
	moveTo    tenant.Move // the accepted move's answer
	accepted  []tenant.Tenant
}

func (f *fakeClient) QueryWorkflow(_ context.Context, id, _ string, query string, _ ...any) (converter.EncodedValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, id+"/"+query)
	if f.queryErr != nil {
		return nil, f.queryErr
	}
	if id == hosts.WorkflowID {
		return encode(f.hosts)
	}
	st := f.states[0]
	if len(f.states) > 1 {
		f.states = f.states[1:]
	}
	return encode(st)
}

// UpdateWorkflow answers the move: refused with updateErr, or accepted,
// after which the tenant's states are accepted.
func (f *fakeClient) UpdateWorkflow(_ context.Context, opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, opts)
	if f.updateErr != nil {
		return nil, f.updateErr
	}
	if opts.WorkflowID == hosts.WorkflowID {
		return updateHandle{result: hosts.Host{}}, nil
	}
	if f.accepted != nil {
		f.states = f.accepted
	}
	return updateHandle{result: f.moveTo}, nil
}

type updateHandle struct {
	client.WorkflowUpdateHandle
	result any
}

func (h updateHandle) Get(_ context.Context, ptr any) error { return roundTrip(h.result, ptr) }

func roundTrip(v, ptr any) error {
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		return err
	}
	return converter.GetDefaultDataConverter().FromPayload(p, ptr)
}

type encodedValue struct{ payloads *commonpb.Payloads }

func (v encodedValue) HasValue() bool { return v.payloads != nil }
func (v encodedValue) Get(ptr any) error {
	return converter.GetDefaultDataConverter().FromPayloads(v.payloads, ptr)
}

func encode(v any) (converter.EncodedValue, error) {
	p, err := converter.GetDefaultDataConverter().ToPayloads(v)
	return encodedValue{payloads: p}, err
}

var (
	t0       = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	stopped  = t0.Add(time.Minute)
	serving  = t0.Add(time.Minute + 2*time.Second)
	finished = t0.Add(2 * time.Minute)
)

func onHost(host string, m *tenant.Move) tenant.Tenant {
	return tenant.Tenant{Name: "t1", State: tenant.StateActive, Placement: &hosts.Placement{Host: host}, Move: m}
}

func move(from, to string, phase tenant.MovePhase, at time.Time) *tenant.Move {
	m := &tenant.Move{From: from, To: to, By: "someone", Phase: phase, RequestedAt: at}
	if phase == tenant.MoveDone || phase == tenant.MoveFailed {
		m.FinishedAt = &finished
	}
	if phase == tenant.MoveDone {
		m.StoppedAt, m.ServingAt = &stopped, &serving
	}
	return m
}

var in = hosts.MoveTenantInput{Tenant: "t1", Host: "host-a", By: "drain of host-a by ops", UpdateID: "drain:run-1:t1"}

func moveTenant(t *testing.T, f *fakeClient, progress any) (hosts.TenantMove, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&placement.Activities{Client: f, PollEvery: time.Millisecond})
	if progress != nil {
		env.SetHeartbeatDetails(progress)
	}
	v, err := env.ExecuteActivity(hosts.ActivityMoveTenant, in)
	if err != nil {
		return hosts.TenantMove{}, err
	}
	var m hosts.TenantMove
	require.NoError(t, v.Get(&m))
	return m, nil
}

func failureType(err error) (string, bool) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type(), appErr.NonRetryable()
	}
	return "", false
}

// The move is the tenant's own Update (To "": the registry chooses), with
// the drain's Update id; the activity polls the tenant's state until the
// move ends and returns it.
func TestMoveTenantAsksAndWaits(t *testing.T) {
	accepted := move("host-a", "", tenant.MoveQueued, t0)
	f := &fakeClient{states: []tenant.Tenant{onHost("host-a", nil)}, moveTo: *accepted,
		accepted: []tenant.Tenant{onHost("host-a", accepted), onHost("host-a", move("host-a", "host-b", tenant.MovePreCopy, t0)),
			onHost("host-b", move("host-a", "host-b", tenant.MoveDone, t0))}}
	m, err := moveTenant(t, f, nil)
	require.NoError(t, err)

	assert.Equal(t, hosts.MovePhaseDone, m.Phase)
	assert.Equal(t, "host-b", m.To)
	assert.Equal(t, 2*time.Second, m.ServingAt.Sub(*m.StoppedAt))
	require.Len(t, f.updates, 1)
	u := f.updates[0]
	assert.Equal(t, tenant.WorkflowID("t1"), u.WorkflowID)
	assert.Equal(t, tenant.UpdateMove, u.UpdateName)
	assert.Equal(t, in.UpdateID, u.UpdateID)
	var req tenant.MoveRequest
	require.NoError(t, roundTrip(u.Args[0], &req))
	assert.Equal(t, tenant.MoveRequest{To: "", By: in.By}, req)
	assert.Contains(t, f.queries, tenant.WorkflowID("t1")+"/"+tenant.QueryState)
	assert.GreaterOrEqual(t, len(f.queries), 4, "polled until the move ended")
}

// A retried activity finds its move in its heartbeat: it waits for it
// and asks for no second one, even when that move failed and left the
// tenant on the host.
func TestMoveTenantRetryJoinsItsMove(t *testing.T) {
	mine := move("host-a", "", tenant.MoveQueued, t0)
	failed := move("host-a", "host-b", tenant.MoveFailed, t0)
	failed.Error = "no host has room"
	f := &fakeClient{states: []tenant.Tenant{onHost("host-a", move("host-a", "host-b", tenant.MoveSyncing, t0)), onHost("host-a", failed)}}
	var progress struct {
		Mine *tenant.Move `json:"mine"`
	}
	progress.Mine = mine
	m, err := moveTenant(t, f, progress)
	require.NoError(t, err)
	assert.Equal(t, string(tenant.MoveFailed), m.Phase)
	assert.Equal(t, "no host has room", m.Error)
	assert.Empty(t, f.updates, "no second move")
}

// A tenant refusing because it is moving already (another's move) is
// waited for; once that move took it away it is not moved again.
func TestMoveTenantWaitsForAMoveUnderWay(t *testing.T) {
	theirs := t0.Add(-time.Minute)
	f := &fakeClient{
		states: []tenant.Tenant{onHost("host-a", nil), onHost("host-a", move("host-a", "host-c", tenant.MoveQueued, theirs)),
			onHost("host-a", move("host-a", "host-c", tenant.MovePreCopy, theirs)), onHost("host-c", move("host-a", "host-c", tenant.MoveDone, theirs))},
		updateErr: temporal.NewApplicationError("tenant t1 is moving to host-c already (asked by someone)", tenant.ErrMoveRefused),
	}
	m, err := moveTenant(t, f, nil)
	require.NoError(t, err)
	assert.Equal(t, "host-c", m.To)
	assert.Equal(t, hosts.MovePhaseDone, m.Phase)
	assert.Len(t, f.updates, 1)
}

// A move towards the drained host, under way when the drain began, is
// waited out; then the tenant is moved away again.
func TestMoveTenantMovesATenantThatLanded(t *testing.T) {
	ours := move("host-a", "", tenant.MoveQueued, t0)
	f := &fakeClient{
		states: []tenant.Tenant{onHost("host-c", move("host-c", "host-a", tenant.MoveStarting, t0.Add(-time.Hour))),
			onHost("host-a", move("host-c", "host-a", tenant.MoveDone, t0.Add(-time.Hour))), onHost("host-a", nil)},
		moveTo:   *ours,
		accepted: []tenant.Tenant{onHost("host-b", move("host-a", "host-b", tenant.MoveDone, t0))},
	}
	m, err := moveTenant(t, f, nil)
	require.NoError(t, err)
	assert.Equal(t, "host-b", m.To)
	assert.Len(t, f.updates, 1)
}

// A refusal while the tenant is not moving (busy, not active), a tenant
// without a workflow and one that runs elsewhere are permanent failures.
func TestMoveTenantPermanentFailures(t *testing.T) {
	tests := []struct {
		name string
		f    *fakeClient
		typ  string
	}{
		{"refused", &fakeClient{states: []tenant.Tenant{onHost("host-a", nil)},
			updateErr: temporal.NewApplicationError("tenant t1 is releasing: only an active tenant moves", tenant.ErrMoveRefused)}, placement.ErrMoveRefused},
		{"no workflow", &fakeClient{queryErr: serviceerror.NewNotFound("workflow not found")}, placement.ErrTenantNotFound},
		{"elsewhere", &fakeClient{states: []tenant.Tenant{onHost("host-c", nil)}}, placement.ErrTenantNotOnHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := moveTenant(t, tt.f, nil)
			require.Error(t, err)
			typ, nonRetryable := failureType(err)
			assert.Equal(t, tt.typ, typ, "%v", err)
			assert.True(t, nonRetryable)
		})
	}
}

// TenantMove copies the fields of tenant.Move the drain reads, with the
// same JSON names and types (workflows/tenant imports placement, so the
// drain cannot use tenant.Move itself).
func TestTenantMoveMatchesTheTenantsMove(t *testing.T) {
	orig := reflect.TypeFor[tenant.Move]()
	copied := reflect.TypeFor[hosts.TenantMove]()
	for i := range copied.NumField() {
		c := copied.Field(i)
		o, ok := orig.FieldByName(c.Name)
		require.True(t, ok, "tenant.Move has no %s", c.Name)
		assert.Equal(t, o.Tag.Get("json"), c.Tag.Get("json"), c.Name)
		assert.Equal(t, o.Type.Kind(), c.Type.Kind(), c.Name)
	}
	assert.Equal(t, string(tenant.MoveDone), hosts.MovePhaseDone)
	full := move("host-a", "host-b", tenant.MoveDone, t0)
	full.StartedAt, full.Error = &t0, "none"
	data, err := json.Marshal(full)
	require.NoError(t, err)
	var m hosts.TenantMove
	require.NoError(t, json.Unmarshal(data, &m))
	assert.Equal(t, hosts.TenantMove{From: "host-a", To: "host-b", By: "someone", Phase: "done", RequestedAt: t0,
		StartedAt: &t0, FinishedAt: &finished, StoppedAt: &stopped, ServingAt: &serving, Error: "none"}, m)
}

// HostTenants lists the host's reservations by name; an unknown host is
// a permanent failure. SetHostState sends the registry's Update.
func TestHostTenantsAndState(t *testing.T) {
	f := &fakeClient{hosts: []hosts.Host{{HostSpec: hosts.HostSpec{Name: "host-a"},
		Reservations: map[string]hosts.Reservation{"zz": {}, "aa": {}, "mm": {}}}}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&placement.Activities{Client: f})

	v, err := env.ExecuteActivity(hosts.ActivityHostTenants, "host-a")
	require.NoError(t, err)
	var names []string
	require.NoError(t, v.Get(&names))
	assert.Equal(t, []string{"aa", "mm", "zz"}, names)

	_, err = env.ExecuteActivity(hosts.ActivityHostTenants, "host-b")
	typ, nonRetryable := failureType(err)
	assert.Equal(t, hosts.ErrNotFound, typ)
	assert.True(t, nonRetryable)

	_, err = env.ExecuteActivity(hosts.ActivitySetHostState, hosts.SetStateInput{Host: "host-a", State: hosts.StateDraining, By: "ops"})
	require.NoError(t, err)
	require.Len(t, f.updates, 1)
	assert.Equal(t, hosts.UpdateSetState, f.updates[0].UpdateName)
	assert.Equal(t, hosts.WorkflowID, f.updates[0].WorkflowID)
	assert.Contains(t, f.updates[0].UpdateID, "setState:host-a:draining:")
}
