package tenant

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

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
// move asks for it.
func placedTwice(in hosts.ReserveInput) (hosts.Placement, error) {
	host := "host-a"
	if in.Pin != "" {
		host = in.Pin
	}
	return hosts.Placement{Host: host, Queue: hosts.TaskQueue(host), Reason: "test"}, nil
}

// A move copies the data live, stops the source, syncs what changed,
// starts on the target and only then retires the source.
func (s *provisionSuite) TestMoveCopiesLiveThenSwitchesThenRetiresTheSource() {
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
