package tenant

import (
	"slices"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// repairAt sends the repair Update at simulated time at.
func (s *provisionSuite) repairAt(at time.Duration, in RepairRequest, rejected *error) {
	s.updateAt(at, UpdateRepair, in, rejected)
}

// A repair whose service cannot start leaves the tenant degraded with
// the reason; a later repair that succeeds makes it active again. Each
// repair starts again only what the reconcile named, on the tenant's
// host, and waits until healthy.
func (s *provisionSuite) TestARepairThatFailsDegradesAndALaterOneClearsIt() {
	var failing atomic.Bool
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		if failing.Load() {
			return temporal.NewNonRetryableApplicationError("image gone from the host", runtimes.ErrImageNotFound, nil)
		}
		return nil
	}, nil)
	s.env.SetStartTime(testStart)
	s.mockPlacement(placedTwice)
	var noBy, first, second error
	var expected Expected
	var failed, repaired Tenant
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(QueryExpected)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&expected))
		failing.Store(true)
	}, 20*time.Minute)
	s.repairAt(21*time.Minute, RepairRequest{Missing: []string{"app"}}, &noBy)
	s.repairAt(30*time.Minute, RepairRequest{By: "reconcile", Missing: []string{"app"}}, &first)
	s.env.RegisterDelayedCallback(func() { failed = s.queryState(); failing.Store(false) }, 40*time.Minute)
	s.repairAt(50*time.Minute, RepairRequest{By: "reconcile", Stopped: []string{"db"}}, &second)
	s.env.RegisterDelayedCallback(func() { repaired = s.queryState(); s.env.CancelWorkflow() }, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, placedInput(s, ""))

	s.Require().Error(noBy, "a repair names who asks")
	s.Require().NoError(first)
	s.Require().NoError(second)
	s.Equal("host-a", expected.Host)
	s.ElementsMatch([]ExpectedService{{Name: "app"}, {Name: "db"}}, expected.Services)

	s.Equal(StateDegraded, failed.State)
	s.Require().NotNil(failed.Degraded)
	s.Equal(CauseDrift, failed.Degraded.Cause)
	s.Equal("host-a", failed.Degraded.Host)
	s.Contains(failed.Degraded.Reason, "image gone from the host")
	s.Contains(failed.Error, "repair after drift failed")
	s.Equal(RepairFailed, failed.Repair.Phase)

	s.Equal(StateActive, repaired.State, repaired.Error)
	s.Nil(repaired.Degraded)
	s.Equal(RepairDone, repaired.Repair.Phase)
	s.Empty(repaired.Error)
	starts := callsOf(s.recorded(), "StartService")
	s.Equal([]string{"StartService app", "StartService db"}, slices.Sorted(slices.Values(starts[:2])), "provisioning")
	s.Equal([]string{"StartService app", "StartService db"}, starts[2:], "the first repair's app, the second's db")
	s.Len(callsOf(s.recorded(), "WaitHealthy"), 2, "provisioning and the repair that started")
	s.Equal(hosts.TaskQueue("host-a"), s.queues["StartService db"], "on the tenant's host")
}

// A repair is refused unless the tenant is active (or degraded by an
// earlier repair): a tenant whose host is lost waits for its host or
// its evacuation.
func (s *provisionSuite) TestARepairIsRefusedWhileTheHostIsLost() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockPlacement(placedTwice)
	var refused error
	s.signalHost(20*time.Minute, hosts.SignalHostLost, "host-a")
	s.repairAt(30*time.Minute, RepairRequest{By: "reconcile", Missing: []string{"app"}}, &refused)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, placedInput(s, ""))

	s.Require().Error(refused)
	s.Contains(refused.Error(), "only an active tenant")
	s.Len(callsOf(s.recorded(), "StartService"), 2, "provisioning only")
}
