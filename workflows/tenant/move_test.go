package tenant

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/volsync"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// moveAt sends the move Update at simulated time at.
func (s *provisionSuite) moveAt(at time.Duration, to string, out *Move, rejected *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateMove, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { *rejected = err }, OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if m, ok := v.(Move); ok {
					*out = m
				}
			},
		}, MoveRequest{To: to, By: "ops"})
	}, at)
}

// placedTwice places the tenant on host-a, and on any pinned host when a
// move asks for it (host-c when the move lets the registry choose).
func placedTwice(in hosts.ReserveInput) (hosts.Placement, error) {
	host := "host-a"
	switch {
	case in.Pin != "":
		host = in.Pin
	case in.From != "":
		host = "host-c"
	}
	return hosts.Placement{Host: host, Queue: hosts.TaskQueue(host), Reason: "test", Sync: "http://" + host + ":7380"}, nil
}

// mockSync records the copies of volumes to another host; fail may fail
// a pass.
func (s *provisionSuite) mockSync(fail func(in volsync.PushInput) error) {
	var a *runtimes.Activities
	s.env.OnActivity(a.CreateService, mock.Anything, mock.Anything).Return(func(ctx context.Context, in runtimes.ServiceInput) (runtimes.ServiceStatus, error) {
		s.recordOn(ctx, "CreateService "+in.Service.Name)
		return runtimes.ServiceStatus{Service: in.Service.Name, ID: "id-" + in.Service.Name}, nil
	})
	var v *volsync.Activities
	s.env.RegisterActivity((&volsync.Activities{}).PushVolumes)
	s.env.OnActivity(v.PushVolumes, mock.Anything, mock.Anything).Return(func(ctx context.Context, in volsync.PushInput) (volsync.Pushed, error) {
		call := fmt.Sprintf("PushVolumes %v to %s final=%t", in.Volumes, in.To, in.Final)
		s.record(call)
		s.mu.Lock()
		s.queues[call] = activity.GetInfo(ctx).TaskQueue
		s.mu.Unlock()
		if fail != nil {
			if err := fail(in); err != nil {
				return volsync.Pushed{}, err
			}
		}
		return volsync.Pushed{Applied: volsync.Applied{Files: 3, Bytes: 1 << 20}, Verified: in.Final}, nil
	})
}

// directMove provisions a placed tenant, asks at 2 h for a move to to
// (copied host to host, pushes may fail it), and returns the move's
// answer, the tenant's state at 3 h and the move's refusal.
func (s *provisionSuite) directMove(to string, fail func(volsync.PushInput) error, reserve func(hosts.ReserveInput) (hosts.Placement, error)) (Move, Tenant, error) {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockDecommission(nil)
	s.mockSync(fail)
	s.mockPlacement(reserve)
	var moved Move
	var rejected error
	var st Tenant
	s.moveAt(2*time.Hour, to, &moved, &rejected)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, placedInput(s, ""))
	return moved, st, rejected
}

// restic: the moves recorded before moves copied directly.
func (s *provisionSuite) restic() {
	s.env.OnGetVersion(moveDirectCopy, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
}

// A move copies the volumes live from the source host's worker to the
// target's, stops every service, copies what changed (verified), starts
// everything on the target and only then retires the source.
func (s *provisionSuite) TestMoveCopiesHostToHostThenSwitchesThenRetiresTheSource() {
	_, st, rejected := s.directMove("host-b", nil, placedTwice)

	s.Require().NoError(rejected)
	m := st.Move
	s.Require().NotNil(m)
	s.Equal(MoveDone, m.Phase, m.Error)
	s.True(m.Direct)
	s.Len(m.Copies, 2)
	s.Empty(m.Backups, "no backup carries the data")
	calls := withoutCalls(sinceCall(s.recorded(), "ReserveHost host-b"), "ReleaseHost")
	s.Equal([]string{"CreateService app", "CreateService db"}, slices.Sorted(slices.Values(calls[3:5])), "made ahead, not started")
	s.Equal([]string{"StartService app", "StartService db"}, slices.Sorted(slices.Values(calls[8:10])), "every service starts on the target, the database too")
	s.Equal([]string{
		"PushVolumes [data dbdata] to http://host-b:7380 final=false",
		"StopServices app,db",
		"PushVolumes [data dbdata] to http://host-b:7380 final=true",
	}, calls[5:8], "nothing starts on the target before its data is there; the database's files travel stopped")
	s.Equal([]string{"ReserveHost host-b", "CreateNetwork", "CreateVolumes"}, calls[:3])
	s.Equal([]string{"WaitHealthy", "RemoveServices", "RemoveNetwork", "RemoveVolumes"}, calls[10:])
	s.Equal(hosts.TaskQueue("host-b"), s.queues["CreateService db"])
	s.Equal(hosts.TaskQueue("host-a"), s.queues["PushVolumes [data dbdata] to http://host-b:7380 final=true"], "the source's worker sends")
	s.Equal(hosts.TaskQueue("host-b"), s.queues["StartService db"])
	s.Equal(hosts.TaskQueue("host-a"), s.queues["RemoveVolumes"], "the source's volumes go")
	s.Contains(s.recorded(), "ReleaseHost host-a owner "+st.ProvisionID, "the source's room is given back")
	s.Equal("host-b", st.Placement.Host)
	s.Equal(StateActive, st.State)
}

// A move without a target lets the registry choose one, never the
// source; each move is a reservation of its own.
func (s *provisionSuite) TestAMoveWithoutATargetLetsTheRegistryChoose() {
	var asked []hosts.ReserveInput
	moved, st, rejected := s.directMove("", nil, func(in hosts.ReserveInput) (hosts.Placement, error) {
		asked = append(asked, in)
		return placedTwice(in)
	})

	s.Require().NoError(rejected)
	s.Require().Len(asked, 2)
	s.Equal("host-a", asked[1].From)
	s.Empty(asked[1].Pin)
	s.Equal("move@"+moved.RequestedAt.UTC().Format(time.RFC3339Nano), asked[1].Op)
	s.Equal(MoveDone, st.Move.Phase, st.Move.Error)
	s.Equal("host-c", st.Move.To)
	s.Equal("host-c", st.Placement.Host)
}

// A final pass that fails leaves the tenant serving on its source: every
// service starts there again, the target's objects and room go.
func (s *provisionSuite) TestAFailedFinalCopyLeavesTheTenantOnItsSource() {
	_, st, _ := s.directMove("host-b", func(in volsync.PushInput) error {
		if in.Final {
			return temporal.NewNonRetryableApplicationError("the copy differs from the source", "test", nil)
		}
		return nil
	}, placedTwice)

	s.Equal(MoveFailed, st.Move.Phase)
	s.Contains(st.Move.Error, "differs")
	calls := sinceCall(s.recorded(), "PushVolumes [data dbdata] to http://host-b:7380 final=true")
	s.Equal([]string{"StartServices", "WaitHealthy", "RemoveServices", "RemoveVolumes", "RemoveNetwork", "ReleaseHost host-b owner " + st.ProvisionID}, calls[1:])
	s.Equal(hosts.TaskQueue("host-b"), s.queues["RemoveServices"], "only the target's objects go")
	s.Equal("host-a", st.Placement.Host)
	s.Equal(StateActive, st.State)
}

// A target host registered without a sync address fails the move before
// anything stops.
func (s *provisionSuite) TestAMoveOntoAHostWithoutSyncStopsNothing() {
	_, st, _ := s.directMove("host-b", nil, func(in hosts.ReserveInput) (hosts.Placement, error) {
		p, err := placedTwice(in)
		if p.Host == "host-b" {
			p.Sync = ""
		}
		return p, err
	})

	s.Equal(MoveFailed, st.Move.Phase)
	s.Contains(st.Move.Error, "host host-b has no sync address")
	s.Empty(callsOf(s.recorded(), "StopServices"))
	s.Empty(callsOf(s.recorded(), "PushVolumes"))
	s.Equal("host-a", st.Placement.Host)
}

// Before moves copied directly (histories recorded then replay so): the
// data travelled through a backup restored on the target.
func (s *provisionSuite) TestMoveCopiesLiveThenSwitchesThenRetiresTheSource() {
	s.restic()
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	s.mockRestore(nil)
	s.mockPlacement(placedTwice)
	var moved Move
	var rejected, sameHost error
	var st Tenant
	s.moveAt(time.Hour, "host-a", &Move{}, &sameHost)
	s.moveAt(2*time.Hour, "host-b", &moved, &rejected)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, placedInput(s, ""))

	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(sameHost, &appErr), "%v", sameHost)
	s.Equal(ErrMoveRefused, appErr.Type())
	s.Require().NoError(rejected)
	s.Equal(MoveQueued, moved.Phase)
	m := st.Move
	s.Require().NotNil(m)
	s.Equal(MoveDone, m.Phase, m.Error)
	s.Require().Len(m.Backups, 2)
	pre, final := m.Backups[0], m.Backups[1]
	s.Equal([]string{
		"ReserveHost host-b",
		"CreateNetwork", "CreateVolumes", "StartService db",
		"TakeBackup " + pre + " move volumes [data] dumps 1", "RestoreBackup " + pre + " dumps 1",
		"StopServices app",
		"TakeBackup " + final + " move volumes [data] dumps 1", "RestoreBackup " + final + " dumps 1",
		"StartService app", "WaitHealthy",
		"RemoveServices", "RemoveNetwork", "RemoveVolumes",
	}, withoutCalls(sinceCall(s.recorded(), "ReserveHost host-b"), "ReleaseHost"))
	s.Contains(s.recorded(), "ReleaseHost host-a owner "+st.ProvisionID, "the source's room is given back")
	s.Equal(hosts.TaskQueue("host-b"), s.queues["StartService app"], "the app starts on the target")
	s.Equal(hosts.TaskQueue("host-a"), s.queues["RemoveVolumes"], "the source's volumes go")
	s.Equal("host-b", st.Placement.Host)
	s.Equal(StateActive, st.State)
	s.False(m.ServingAt.Before(*m.StoppedAt))
}

// A move whose target never becomes healthy leaves the tenant serving on
// its source: the target's objects and room go, the source starts again.
func (s *provisionSuite) TestFailedMoveLeavesTheTenantOnItsSource() {
	failNext := false
	s.mockRuntime(nil, func() error {
		if failNext {
			failNext = false
			return temporal.NewNonRetryableApplicationError("service app is unhealthy", "ServiceUnhealthy", nil)
		}
		return nil
	})
	s.restic()
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	s.mockRestore(nil)
	s.mockPlacement(placedTwice)
	var moved Move
	var rejected error
	var st Tenant
	s.env.RegisterDelayedCallback(func() { failNext = true }, 90*time.Minute)
	s.moveAt(2*time.Hour, "host-b", &moved, &rejected)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, placedInput(s, ""))

	m := st.Move
	s.Require().NotNil(m)
	s.Equal(MoveFailed, m.Phase)
	s.Contains(m.Error, "unhealthy")
	calls := sinceCall(s.recorded(), "StopServices app")
	s.Require().Greater(len(calls), 3)
	s.Equal([]string{"StartService app", "WaitHealthy", "StartServices", "WaitHealthy", "RemoveServices", "RemoveVolumes", "RemoveNetwork", "ReleaseHost host-b owner " + st.ProvisionID}, calls[3:],
		"the target's app fails its health check: the source starts again, then the target's objects and room go")
	s.Equal(hosts.TaskQueue("host-b"), s.queues["RemoveServices"], "only the target's objects go")
	s.Equal("host-a", st.Placement.Host)
	s.Equal(StateActive, st.State)
}
