package tenant

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/placement"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// mockPlacement answers ReserveHost with reserve and records releases.
func (s *provisionSuite) mockPlacement(reserve func(in hosts.ReserveInput) (hosts.Placement, error)) {
	var p *placement.Activities
	s.env.RegisterActivity((&placement.Activities{}).ReserveHost)
	s.env.RegisterActivity((&placement.Activities{}).ReleaseHost)
	s.env.OnActivity(p.ReserveHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in hosts.ReserveInput) (hosts.Placement, error) {
		s.record("ReserveHost " + in.Pin)
		return reserve(in)
	})
	s.env.OnActivity(p.ReleaseHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in hosts.ReleaseInput) error {
		s.record("ReleaseHost " + in.Host + " owner " + in.Owner)
		return nil
	})
}

// testQueue is the task queue of the SDK test environment's workflows.
const testQueue = "default-test-taskqueue"

func placedOn(host string) func(hosts.ReserveInput) (hosts.Placement, error) {
	return func(in hosts.ReserveInput) (hosts.Placement, error) {
		return hosts.Placement{Host: host, Queue: hosts.TaskQueue(host), Address: "10.231.2.2", Reason: "test"}, nil
	}
}

func placedInput(s *provisionSuite, pin string) Input {
	in := defaultInput(s.T())
	in.Spec.Placement = &PlacementRequest{Pin: pin}
	return in
}

// A tenant placed on a fleet host runs its runtime steps on the host's
// queue, as activities; its placement is in its state.
func (s *provisionSuite) TestPlacedTenantRunsOnItsHostsQueue() {
	s.mockRuntime(nil, nil)
	var need hosts.Resources
	s.mockPlacement(func(in hosts.ReserveInput) (hosts.Placement, error) {
		need = in.Need
		return placedOn("host-b")(in)
	})
	var st Tenant
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, placedInput(s, "host-b"))

	s.Equal(StateActive, st.State, st.Error)
	s.Require().NotNil(st.Placement)
	s.Equal("host-b", st.Placement.Host)
	s.Equal("ReserveHost host-b", s.recorded()[0], "placed before anything is made")
	// The light template's limits: db 0.5 CPU 64Mi, app 0.5 CPU 64Mi.
	s.Equal(hosts.Resources{MilliCPU: 1000, MemoryBytes: 128 << 20}, need)
	for _, call := range []string{"CreateNetwork", "StartService app", "StartService db", "WaitHealthy"} {
		s.Equal(hosts.TaskQueue("host-b"), s.queues[call], call)
	}
}

// An unplaced tenant keeps its runtime steps local (and its histories).
func (s *provisionSuite) TestUnplacedTenantRunsLocally() {
	s.mockRuntime(nil, nil)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Equal(testQueue, s.queues["CreateNetwork"], "a local activity, on the workflow's own queue")
	s.Equal(testQueue, s.queues["WaitHealthy"])
}

// A failed provisioning gives its reservation back; no room anywhere
// fails the tenant before anything is made.
func (s *provisionSuite) TestPlacementIsUndoneAndNoRoomMakesNothing() {
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		return temporal.NewNonRetryableApplicationError("image not found", "ImageNotFound", nil)
	}, nil)
	s.mockPlacement(placedOn("host-a"))
	s.env.ExecuteWorkflow(WorkflowType, placedInput(s, ""))
	s.Error(s.env.GetWorkflowError())
	st := s.queryState()
	s.Equal(StateFailed, st.State)
	s.Nil(st.Placement)
	s.Contains(s.recorded(), "ReleaseHost host-a owner "+st.ProvisionID)
}

func (s *provisionSuite) TestNoHostWithRoomFailsBeforeAnythingIsMade() {
	s.mockRuntime(nil, nil)
	s.mockPlacement(func(hosts.ReserveInput) (hosts.Placement, error) {
		return hosts.Placement{}, temporal.NewNonRetryableApplicationError("no host has room for acme", hosts.ErrNoHostFit, nil)
	})
	s.env.ExecuteWorkflow(WorkflowType, placedInput(s, ""))
	s.Error(s.env.GetWorkflowError())
	st := s.queryState()
	s.Equal(StateFailed, st.State)
	s.Contains(st.Error, "no host has room for acme")
	s.Equal([]string{"ReserveHost "}, s.recorded())
}
