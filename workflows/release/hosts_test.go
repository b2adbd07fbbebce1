package release

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// placeOnHosts puts prod tenants on fleet hosts: four on host-a, one each
// on host-b and host-c, one not placed on the fleet.
func (s *releaseSuite) placeOnHosts() {
	s.fleet["staging"] = nil
	s.fleet["prod"] = []string{"a1", "a2", "a3", "a4", "b1", "c1", "u1"}
	s.hosts = map[string]string{"a1": "host-a", "a2": "host-a", "a3": "host-a", "a4": "host-a", "b1": "host-b", "c1": "host-c"}
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "alice"}) }, time.Minute)
}

// hostsShown is each tenant's host as the release shows it.
func hostsShown(st Release) map[string]string {
	shown := map[string]string{}
	for _, t := range st.Tenants {
		if t.Host != "" {
			shown[t.Name] = t.Host
		}
	}
	return shown
}

func (s *releaseSuite) requireAllUpdated(st Release) {
	s.Equal(StateCompleted, st.State)
	s.Require().Len(st.Tenants, 7)
	for _, t := range st.Tenants {
		s.Equal(TenantUpdated, t.Status, t.Name)
	}
}

// One cut-over at a time per host: the wave's first slots go to one
// tenant of each host, and while host-a's tenants wait their turn the
// other slots go to tenants of other hosts.
func (s *releaseSuite) TestMaxPerHostSpreadsTheWaveAcrossHosts() {
	s.placeOnHosts()
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 7, MaxParallel: 3, MaxPerHost: 1}))
	st := s.result()

	s.requireAllUpdated(st)
	s.Equal(1, st.Plan.MaxPerHost)
	s.ElementsMatch([]string{"a1", "b1", "c1"}, s.started()[:3], "one tenant per host first")
	s.Equal(1, s.maxOnHost["host-a"], "never two cut-overs at once on host-a")
	s.Equal(3, s.maxSeen, "the other hosts' tenants filled the parallel slots")
	s.Equal(s.hosts, hostsShown(st), "the release shows each tenant's host")
	for _, l := range s.lists {
		s.True(l.Hosts, "hosts asked for with the tenants")
	}
}

// Hosts take turns even when MaxParallel binds before the per-host limit:
// the wave's first three cut-overs land on three groups, not two on
// host-a.
func (s *releaseSuite) TestMaxPerHostTakesHostsInTurn() {
	s.placeOnHosts()
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 7, MaxParallel: 3, MaxPerHost: 2}))
	st := s.result()

	s.requireAllUpdated(st)
	s.ElementsMatch([]string{"a1", "b1", "c1"}, s.started()[:3])
	s.Equal(2, s.maxOnHost["host-a"], "two at once on host-a, never three")
	s.Equal(3, s.maxSeen)
}

// Without maxPerHost a release is today's: no host asked for, no version
// marker, the wave cut over in list order, MaxParallel on one host.
func (s *releaseSuite) TestMaxPerHostZeroChangesNothing() {
	s.placeOnHosts()
	versions := 0
	s.env.OnGetVersion(versionPerHostLimit, workflow.DefaultVersion, 1).Return(func(string, workflow.Version, workflow.Version) workflow.Version {
		versions++
		return 1
	})
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 7, MaxParallel: 3}))
	st := s.result()

	s.requireAllUpdated(st)
	s.Zero(versions, "no version marker")
	s.ElementsMatch([]string{"a1", "a2", "a3"}, s.started()[:3], "list order")
	s.Equal(3, s.maxOnHost["host-a"])
	s.Empty(hostsShown(st))
	for _, l := range s.lists {
		s.False(l.Hosts, "no tenant queried")
	}
}

// A run begun by a worker that ignored maxPerHost (no version marker in
// its history) goes on cutting over in list order.
func (s *releaseSuite) TestMaxPerHostOnARunBegunWithoutIt() {
	s.placeOnHosts()
	s.env.OnGetVersion(versionPerHostLimit, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 7, MaxParallel: 3, MaxPerHost: 1}))
	st := s.result()

	s.requireAllUpdated(st)
	s.ElementsMatch([]string{"a1", "a2", "a3"}, s.started()[:3])
	s.Empty(hostsShown(st))
}

// An abort's reverts keep to the per-host limit too.
func (s *releaseSuite) TestAbortRevertsWithinThePerHostLimit() {
	s.placeOnHosts()
	s.fleet["prod"] = []string{"a1", "a2", "u1"}
	// u1's cut-over outlasts a1's and a2's, then fails: the release pauses
	// with both host-a tenants updated.
	s.outcome["u1"] = tenant.OutcomeRolledBack
	s.delay["u1"] = 150 * time.Millisecond
	var aborted updateOutcome
	s.updateAt(time.Hour, UpdateAbort, ControlInput{By: "ops", Reason: "u1 broke"}, &aborted)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 3, MaxParallel: 3, MaxPerHost: 1}))
	st := s.result()

	s.Require().NoError(aborted.err)
	s.Equal(StateAborted, st.State)
	s.Subset(s.started(), []string{"a1/revert", "a2/revert"})
	s.Equal(1, s.maxOnHost["host-a"], "host-a's reverts one at a time")
}

func TestSpreadTakesHostsInTurn(t *testing.T) {
	r := &rollout{state: Release{Tenants: []Tenant{
		{Name: "a1", Host: "host-a"}, {Name: "a2", Host: "host-a"}, {Name: "a3", Host: "host-a"},
		{Name: "b1", Host: "host-b"}, {Name: "u1"}, {Name: "u2"},
	}}}
	var names []string
	for _, i := range r.spread([]int{0, 1, 2, 3, 4, 5}) {
		names = append(names, r.state.Tenants[i].Name)
	}
	require.Equal(t, []string{"a1", "b1", "u1", "a2", "u2", "a3"}, names)
}

func TestMaxPerHostDefaults(t *testing.T) {
	require.Zero(t, withPlanDefaults(Plan{MaxPerHost: -1}).MaxPerHost)
	require.Equal(t, 2, withPlanDefaults(Plan{BatchSize: 4, MaxParallel: 2, MaxPerHost: 3}).MaxPerHost, "at most MaxParallel")
	require.Equal(t, 1, withPlanDefaults(Plan{MaxPerHost: 1}).MaxPerHost)
}
