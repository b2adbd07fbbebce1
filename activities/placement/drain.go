package placement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// The drain's activities (hosts.DrainWorkflow): set the host draining,
// list its tenants, move one tenant away through its own workflow.

// Failure types of MoveTenant that are permanent for that tenant.
const (
	ErrTenantNotFound  = "TenantNotFound"  // no tenant workflow of that name
	ErrTenantNotOnHost = "TenantNotOnHost" // its reservation is there, the tenant runs elsewhere
	ErrMoveRefused     = "MoveRefused"     // the tenant refused the move and is not moving
)

// The tenant workflow's contract as MoveTenant uses it. workflows/tenant
// imports this package, so these are copies; drain_test.go sends them
// to a stand-in checked against the originals.
const (
	tenantUpdateMove = "move"
	tenantQueryState = "state"
)

func tenantWorkflowID(name string) string { return "tenant:" + name }

// moveRequest is tenant.MoveRequest: To "" lets the registry choose.
type moveRequest struct {
	To       string `json:"to,omitempty"`
	By       string `json:"by"`
	Evacuate bool   `json:"evacuate,omitempty"`
}

// tenantView is the part of the tenant's state (tenant.Tenant) a move
// needs.
type tenantView struct {
	Placement *hosts.Placement  `json:"placement,omitempty"`
	Move      *hosts.TenantMove `json:"move,omitempty"`
}

// moveProgress is MoveTenant's heartbeat: the move it asked for (a retry
// waits for it instead of asking again) or another it waits out.
type moveProgress struct {
	Mine    *hosts.TenantMove `json:"mine,omitempty"`
	Waiting *hosts.TenantMove `json:"waiting,omitempty"`
	Problem string            `json:"problem,omitempty"`
}

const (
	defaultPollEvery = time.Second
	queryTimeout     = 10 * time.Second
	// moveRounds bounds how often MoveTenant waits out another move
	// before asking for its own.
	moveRounds = 3
	// maxPollFailures is how many failed polls in a row end an attempt.
	maxPollFailures = 30
)

// SetHostState sends the registry's setHostState Update. Its id is the
// calling workflow run's and the activity's, so a retry joins it and a
// later drain is another Update. A refusal is permanent.
func (a *Activities) SetHostState(ctx context.Context, in hosts.SetStateInput) (hosts.Host, error) {
	info := activity.GetInfo(ctx)
	id := fmt.Sprintf("setState:%s:%s:%s:%s", in.Host, in.State, info.WorkflowExecution.RunID, info.ActivityID)
	var h hosts.Host
	err := a.update(ctx, id, hosts.UpdateSetState, in, &h)
	return h, err
}

// HostTenants are the tenants holding a reservation on the host, by
// name. An unregistered host is a permanent failure.
func (a *Activities) HostTenants(ctx context.Context, host string) ([]string, error) {
	list, ok, err := Registered(ctx, a.Client)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, temporal.NewNonRetryableApplicationError("no host is registered (POST /v1/hosts)", ErrNoRegistry, nil)
	}
	i := slices.IndexFunc(list, func(h hosts.Host) bool { return h.Name == host })
	if i < 0 {
		return nil, temporal.NewNonRetryableApplicationError("host "+host+" is not registered", hosts.ErrNotFound, nil)
	}
	names := make([]string, 0, len(list[i].Reservations))
	for t := range list[i].Reservations {
		names = append(names, t)
	}
	slices.Sort(names)
	return names, nil
}

// MoveTenant moves the tenant off in.Host: it sends the tenant's move
// Update (To "": the registry chooses) and polls the tenant's state,
// heartbeating, until the move ends; it returns the move, done or
// failed. A move under way already (another's, or one towards this
// host) is waited out first; a tenant it took elsewhere is not moved
// again.
func (a *Activities) MoveTenant(ctx context.Context, in hosts.MoveTenantInput) (hosts.TenantMove, error) {
	var p moveProgress
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &p) == nil && p.Mine != nil {
		return a.waitMove(ctx, in.Tenant, *p.Mine, true)
	}
	for range moveRounds {
		st, err := a.tenantState(ctx, in.Tenant)
		if err != nil {
			return hosts.TenantMove{}, err
		}
		if moving(st.Move) {
			if _, err := a.waitMove(ctx, in.Tenant, *st.Move, false); err != nil {
				return hosts.TenantMove{}, err
			}
			continue // look again: where did it go?
		}
		if st.Placement == nil || st.Placement.Host != in.Host {
			return movedElsewhere(in, st)
		}
		m, refusal, err := a.requestMove(ctx, in)
		switch {
		case err != nil:
			return hosts.TenantMove{}, err
		case refusal == nil:
			activity.RecordHeartbeat(ctx, moveProgress{Mine: &m})
			return a.waitMove(ctx, in.Tenant, m, true)
		}
		// Refused: moving already (another's move, asked for since we
		// looked) is waited out in the next round; otherwise it stands.
		before := st.Move
		if st, err = a.tenantState(ctx, in.Tenant); err != nil {
			return hosts.TenantMove{}, err
		}
		if !moving(st.Move) && sameMove(before, st.Move) {
			return hosts.TenantMove{}, refusal
		}
	}
	return hosts.TenantMove{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("tenant %s was moved by others %d times while the drain waited: not moved", in.Tenant, moveRounds), ErrMoveRefused, nil)
}

func moving(m *hosts.TenantMove) bool { return m != nil && m.FinishedAt == nil }

func sameMove(a, b *hosts.TenantMove) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && a.RequestedAt.Equal(b.RequestedAt))
}

// movedElsewhere answers for a tenant not (or no longer) on the host: the
// move that took it away, or a permanent failure.
func movedElsewhere(in hosts.MoveTenantInput, st tenantView) (hosts.TenantMove, error) {
	if m := st.Move; m != nil && m.From == in.Host && m.Phase == hosts.MovePhaseDone {
		return *m, nil
	}
	where := "no fleet host"
	if st.Placement != nil {
		where = st.Placement.Host
	}
	return hosts.TenantMove{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("tenant %s runs on %s, not on %s: nothing to move", in.Tenant, where, in.Host), ErrTenantNotOnHost, nil)
}

// requestMove sends the move Update; refusal is the tenant's validator
// saying no (permanent unless it is moving already).
func (a *Activities) requestMove(ctx context.Context, in hosts.MoveTenantInput) (m hosts.TenantMove, refusal, err error) {
	h, err := a.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		UpdateID: in.UpdateID, WorkflowID: tenantWorkflowID(in.Tenant), UpdateName: tenantUpdateMove,
		Args: []any{moveRequest{By: in.By, Evacuate: in.Evacuate}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &m)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return m, nil, nil
	case errors.As(err, &appErr):
		return m, temporal.NewNonRetryableApplicationError(appErr.Message(), ErrMoveRefused, err), nil
	}
	return m, nil, tenantFailure(in.Tenant, "move", err)
}

// waitMove polls the tenant until move m ended, heartbeating; mine says
// whether the drain asked for it (a retry then waits for it again). A
// query failing now and then (a worker restarting) is polled through;
// failing maxPollFailures times in a row, the activity fails and its
// retry goes on waiting.
func (a *Activities) waitMove(ctx context.Context, name string, m hosts.TenantMove, mine bool) (hosts.TenantMove, error) {
	p := moveProgress{Waiting: &m}
	if mine {
		p = moveProgress{Mine: &m}
	}
	failures := 0
	for {
		st, err := a.tenantState(ctx, name)
		var appErr *temporal.ApplicationError
		switch {
		case errors.As(err, &appErr):
			return hosts.TenantMove{}, err
		case err != nil:
			if failures++; failures >= maxPollFailures {
				return hosts.TenantMove{}, err
			}
			p.Problem = err.Error()
		case st.Move == nil || !st.Move.RequestedAt.Equal(m.RequestedAt):
			return hosts.TenantMove{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("tenant %s: the move asked at %s was replaced before the drain saw it end", name, m.RequestedAt.Format(time.RFC3339)), ErrMoveRefused, nil)
		case st.Move.FinishedAt != nil:
			return *st.Move, nil
		default:
			failures, p.Problem = 0, ""
			if mine {
				p.Mine = st.Move
			} else {
				p.Waiting = st.Move
			}
		}
		activity.RecordHeartbeat(ctx, p)
		select {
		case <-ctx.Done():
			return hosts.TenantMove{}, ctx.Err()
		case <-time.After(a.pollEvery()):
		}
	}
}

// tenantState queries the tenant's state; a tenant workflow that does
// not exist is a permanent failure.
func (a *Activities) tenantState(ctx context.Context, name string) (tenantView, error) {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var st tenantView
	v, err := a.Client.QueryWorkflow(qctx, tenantWorkflowID(name), "", tenantQueryState)
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		return tenantView{}, tenantFailure(name, "state query", err)
	}
	return st, nil
}

func tenantFailure(name, what string, err error) error {
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		msg := "tenant " + name + " has no workflow: " + notFound.Error()
		if strings.Contains(notFound.Error(), "already completed") {
			msg = "tenant " + name + "'s workflow has ended"
		}
		return temporal.NewNonRetryableApplicationError(msg, ErrTenantNotFound, err)
	}
	return fmt.Errorf("tenant %s %s: %w", name, what, err)
}

func (a *Activities) pollEvery() time.Duration {
	if a.PollEvery > 0 {
		return a.PollEvery
	}
	return defaultPollEvery
}
