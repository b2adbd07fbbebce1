package tenant

import (
	"slices"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// evacuateAt sends an evacuation (the move Update with Evacuate) at
// simulated time at.
func (s *provisionSuite) evacuateAt(at time.Duration, rejected *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateMove, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { *rejected = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, MoveRequest{By: "ops", Evacuate: true})
	}, at)
}

func (s *provisionSuite) signalHost(at time.Duration, name, host string) {
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(name, hosts.HostSignal{Host: host, Since: testStart.Add(at - time.Minute), Reason: "worker and engine unreachable"})
	}, at)
}

// A tenant whose host is lost shows degraded (scheduled backups wait),
// and is active again when the host comes back.
func (s *provisionSuite) TestALostHostDegradesItsTenantsUntilItComesBack() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	s.mockPlacement(placedTwice)
	in := withPolicy(placedInput(s, ""), spec.Backups{Every: spec.Duration(time.Hour), Offsite: true, Keep: spec.Keep{Last: 5}})
	var degraded, other, back Tenant
	s.signalHost(90*time.Minute, hosts.SignalHostLost, "host-z") // not its host
	s.env.RegisterDelayedCallback(func() { other = s.queryState() }, 91*time.Minute)
	s.signalHost(100*time.Minute, hosts.SignalHostLost, "host-a")
	s.env.RegisterDelayedCallback(func() { degraded = s.queryState() }, 4*time.Hour)
	s.signalHost(5*time.Hour, hosts.SignalHostBack, "host-a")
	s.env.RegisterDelayedCallback(func() { back = s.queryState(); s.env.CancelWorkflow() }, 5*time.Hour+time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Equal(StateActive, other.State, "another host's loss changes nothing")
	s.Equal(StateDegraded, degraded.State)
	s.Require().NotNil(degraded.Degraded)
	s.Equal("host-a", degraded.Degraded.Host)
	s.Contains(degraded.Error, "host host-a is lost")
	takes := callsOf(s.recorded(), "TakeBackup")
	s.Require().Len(takes, 2, "no scheduled backup while the host is lost (02:00 to 04:00)")
	s.Contains(takes[0], "t010000z")
	s.Contains(takes[1], "t050000z", "the first one due once it is back")
	s.Equal(StateActive, back.State)
	s.Nil(back.Degraded)
}

// An evacuation brings a degraded tenant up on another host from its
// newest off-site backup, records the recovery point, and gives the lost
// host's room back; nothing is asked of the lost host.
func (s *provisionSuite) TestAnEvacuationRestoresTheNewestOffsiteBackupElsewhere() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	s.mockRestore(nil)
	s.mockSync(nil)
	s.mockPlacement(placedTwice)
	in := withPolicy(placedInput(s, ""), spec.Backups{Every: spec.Duration(time.Hour), Offsite: true, Keep: spec.Keep{Last: 5}})
	var early, rejected error
	var st Tenant
	s.evacuateAt(30*time.Minute, &early)
	s.signalHost(150*time.Minute, hosts.SignalHostLost, "host-a")
	s.evacuateAt(160*time.Minute, &rejected)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 4*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Require().Error(early, "an active tenant is not evacuated")
	s.Contains(early.Error(), "only a tenant whose host is lost")
	s.Require().NoError(rejected)
	m := st.Move
	s.Require().NotNil(m)
	s.Equal(MoveDone, m.Phase, m.Error)
	s.True(m.Evacuation)
	s.Equal("host-c", m.To, "the registry chose, never the lost host")
	newest := st.Backups.List[1] // the newest when the host was lost
	s.Contains(newest.ID, "t020000z")
	s.Equal(newest.ID, m.Backup)
	s.Equal(newest.CreatedAt, *m.RecoveryPoint)
	s.Equal(int64(149*time.Minute-2*time.Hour)/int64(time.Millisecond), m.RecoveryAgeMs, "the lost host may have held 29 minutes more")
	calls := withoutCalls(sinceCall(s.recorded(), "CopyOffsite "+newest.ID), "ReleaseHost")
	s.Equal([]string{"CreateService app", "CreateService db"}, slices.Sorted(slices.Values(calls[4:6])), calls)
	s.Equal([]string{"CopyOffsite " + newest.ID, "ReserveHost ", "CreateNetwork", "CreateVolumes"}, calls[:4], calls)
	s.Equal([]string{"StartService db", "RestoreBackup " + newest.ID + " dumps 1 from off-site", "StartService app", "WaitHealthy"}, calls[6:10],
		"the database starts, the off-site backup is restored, then the rest starts")
	for _, c := range calls {
		s.NotContains(c, "PushVolumes", "nothing is read from the lost host")
	}
	for call, q := range s.queues {
		s.NotEqual(hosts.TaskQueue("host-a"), q, "nothing runs on the lost host after it was lost: %s", call)
	}
	s.Contains(s.recorded(), "ReleaseHost host-a owner "+st.ProvisionID)
	s.Equal("host-c", st.Placement.Host)
	s.Equal(StateActive, st.State)
	s.Nil(st.Degraded)
}
