package tenant

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/proxy"
)

// updateAt sends an Update at simulated time at, recording a rejection.
func (s *provisionSuite) updateAt(at time.Duration, update string, arg any, rejected *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(update, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { *rejected = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, arg)
	}, at)
}

// since returns the calls recorded after the first n.
func (s *provisionSuite) since(n int) []string { return s.recorded()[n:] }

// A suspend puts the maintenance page up before anything stops, then
// stops the services (public first), disables the accounts and pauses
// supervision; the tenant keeps its data and takes no release meanwhile.
// A resume starts and waits for the services, enables the accounts,
// resumes supervision and routes back to the services last.
func (s *provisionSuite) TestSuspendThenResume() {
	s.plan = fullPlan
	s.mockRuntime(nil, nil)
	ic := s.mockIntegrations("", "")
	s.mockDecommission(nil)
	s.mockCutover()
	var noReason, first, twice, resumed, resumedTwice error
	var provisioned int
	var suspended, back Tenant
	var release ApplyResult
	s.env.RegisterDelayedCallback(func() { provisioned = len(s.recorded()) }, 5*time.Minute)
	s.updateAt(10*time.Minute, UpdateSuspend, SuspendRequest{By: "ops"}, &noReason)
	s.updateAt(11*time.Minute, UpdateSuspend, SuspendRequest{By: "billing", Reason: "invoice 42 unpaid"}, &first)
	s.updateAt(20*time.Minute, UpdateSuspend, SuspendRequest{By: "billing", Reason: "again"}, &twice)
	s.env.RegisterDelayedCallback(func() {
		suspended = s.queryState()
		s.env.UpdateWorkflow(UpdateApplyRelease, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("release rejected", err) }, OnAccept: func() {},
			OnComplete: func(v any, err error) { s.NoError(err); release = v.(ApplyResult) },
		}, ApplyInput{Release: "r1", Image: "tenantflow/demo-app:v2"})
	}, 25*time.Minute)
	s.updateAt(30*time.Minute, UpdateResume, ResumeRequest{By: "billing", Reason: "paid"}, &resumed)
	s.updateAt(40*time.Minute, UpdateResume, ResumeRequest{By: "billing"}, &resumedTwice)
	s.env.RegisterDelayedCallback(func() { back = s.queryState(); s.env.CancelWorkflow() }, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().Error(noReason, "a suspend says why")
	s.Require().NoError(first)
	s.Require().Error(twice, "suspended already")
	s.Require().NoError(resumed)
	s.Require().Error(resumedTwice, "active again: nothing to resume")

	s.Equal(StateSuspended, suspended.State, suspended.Error)
	s.Require().NotNil(suspended.Suspension)
	s.Equal(SuspendDone, suspended.Suspension.Phase)
	s.Equal("invoice 42 unpaid", suspended.Suspension.Reason)
	s.Equal(DefaultMaintenanceMessage, suspended.Suspension.Message)
	s.Equal(OutcomeSkipped, release.Outcome)
	s.Contains(release.Error, "suspended")

	s.Equal(StateActive, back.State, back.Error)
	s.Equal(ResumeDone, back.Suspension.Phase)
	s.Equal("billing", back.Suspension.ResumedBy)
	s.Equal("http://127.0.0.1:40000", back.Endpoint)

	s.Equal([]string{
		"EnsureRoute", "StopServices app", "StopServices db", "DisableAccounts", "StopSupervision",
		"StartServices", "WaitHealthy", "EnableAccounts", "StartSupervision", "EnsureRoute",
	}, s.since(provisioned))
	routes := ic.routes[len(ic.routes)-2:]
	s.Equal(proxy.RouteInput{Tenant: "acme", Owner: back.ProvisionID, Adopt: true, Maintenance: DefaultMaintenanceMessage}, routes[0])
	s.Equal([]string{"127.0.0.1:40000"}, routes[1].Upstreams)
	s.Empty(routes[1].Maintenance)
}

// A suspend that fails is undone in reverse and the tenant serves as
// before, the failure in its suspension.
func (s *provisionSuite) TestAFailedSuspendIsUndone() {
	s.plan = fullPlan
	s.mockRuntime(nil, nil)
	ic := s.mockIntegrations("", "")
	s.mockDecommission(nil)
	s.failCall = "DisableAccounts"
	var provisioned int
	var rejected error
	var after Tenant
	s.env.RegisterDelayedCallback(func() { provisioned = len(s.recorded()) }, 5*time.Minute)
	s.updateAt(10*time.Minute, UpdateSuspend, SuspendRequest{By: "ops", Reason: "incident 7", Message: "Back soon"}, &rejected)
	s.env.RegisterDelayedCallback(func() { after = s.queryState(); s.env.CancelWorkflow() }, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(rejected)
	s.Equal(StateActive, after.State)
	s.Equal(SuspendFailed, after.Suspension.Phase)
	s.Contains(after.Suspension.Error, "the directory refuses")
	s.Contains(after.Error, "suspend failed")
	s.Equal([]string{
		"EnsureRoute", "StopServices app", "StopServices db", "DisableAccounts",
		"EnableAccounts", "StartServices", "WaitHealthy", "EnsureRoute",
	}, s.since(provisioned), "undone in reverse (the failed step too: it may have half-run): accounts, services, then the route")
	last := ic.routes[len(ic.routes)-1]
	s.Empty(last.Maintenance, "the route serves the tenant again")
	s.Equal("Back soon", ic.routes[len(ic.routes)-2].Maintenance)
}

// A suspended tenant can be decommissioned: its database starts for its
// dump alone (no route to it), and the suspension ends with the tenant.
func (s *provisionSuite) TestDecommissionOfASuspendedTenant() {
	s.plan = fullPlan
	s.plan.Backup, s.plan.Retention = true, testRetention
	s.mockRuntime(nil, nil)
	s.mockIntegrations("", "")
	s.mockDecommission(nil)
	var suspended int
	var rejected error
	var req decomOutcome
	var done Tenant
	s.updateAt(10*time.Minute, UpdateSuspend, SuspendRequest{By: "billing", Reason: "invoice 42 unpaid"}, &rejected)
	s.env.RegisterDelayedCallback(func() { suspended = len(s.recorded()) }, 20*time.Minute)
	s.decomAt(30*time.Minute, UpdateRequestDecommission, DecommissionRequest{By: "ops", Reason: "never paid", Force: true}, &req)
	s.stateAt(2*time.Hour, &done)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(rejected)
	s.Require().NoError(req.err)
	calls := s.since(suspended)
	s.Require().GreaterOrEqual(len(calls), 7, calls)
	id := "decommission-20261124t003000z"
	s.Equal([]string{"RemoveRoute", "StopServices app", "StartServices db", "DumpServices db", "StopServices db",
		"BackupVolumes " + id + " [data] dumps [db]", "VerifyBackup abc123"}, calls[:7],
		"the maintenance page goes with the route; only the db starts, for its dump")
	s.NotContains(calls, "WaitHealthy", "nothing is started to serve")
	s.Equal(StateDecommissioned, done.State, done.Error)
	s.True(done.Decommission.Suspended)
	s.Equal(PhaseRetained, done.Decommission.Phase)
	s.Equal(SuspendEnded, done.Suspension.Phase)
}

// A suspended tenant's decommission that fails leaves it suspended: the
// database its dump started stops again and the maintenance page is back.
func (s *provisionSuite) TestAFailedDecommissionLeavesTheTenantSuspended() {
	s.plan = fullPlan
	s.plan.Backup, s.plan.Retention = true, testRetention
	s.mockRuntime(nil, nil)
	ic := s.mockIntegrations("", "")
	s.mockDecommission(func() error {
		return temporal.NewNonRetryableApplicationError("checksum mismatch", "VerifyFailed", nil)
	})
	var suspended int
	var rejected, resumeErr error
	var req decomOutcome
	var after, resumed Tenant
	s.updateAt(10*time.Minute, UpdateSuspend, SuspendRequest{By: "billing", Reason: "invoice 42 unpaid", Message: "Back soon"}, &rejected)
	s.env.RegisterDelayedCallback(func() { suspended = len(s.recorded()) }, 20*time.Minute)
	s.decomAt(30*time.Minute, UpdateRequestDecommission, DecommissionRequest{By: "ops", Force: true}, &req)
	s.stateAt(2*time.Hour, &after)
	s.updateAt(3*time.Hour, UpdateResume, ResumeRequest{By: "billing", Reason: "paid after all"}, &resumeErr)
	s.stateAt(4*time.Hour, &resumed)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 5*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(req.err)
	s.Equal(StateSuspended, after.State, after.Error)
	s.Equal(PhaseFailed, after.Decommission.Phase)
	s.Contains(after.Decommission.Error, "the tenant stays suspended")
	s.Equal(SuspendDone, after.Suspension.Phase)
	calls := s.since(suspended)
	undo := since(calls, "VerifyBackup abc123")[1:]
	s.Require().GreaterOrEqual(len(undo), 3, calls)
	s.Equal([]string{"RemoveBackup", "StopServices app,db", "EnsureRoute"}, undo[:3], "undone in reverse: the backup, the services stopped again, the page back")
	s.NotContains(calls[:len(calls)-len(undo)+3], "WaitHealthy")
	page, back := ic.routes[len(ic.routes)-2], ic.routes[len(ic.routes)-1]
	s.Equal("Back soon", page.Maintenance, "the undo put the maintenance page back")
	s.Empty(page.Upstreams)
	s.Empty(back.Maintenance, "the resume routes back to the services")

	s.Require().NoError(resumeErr, "still suspended: it can be resumed")
	s.Equal(StateActive, resumed.State, resumed.Error)
}
