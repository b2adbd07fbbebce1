package hosts

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

type registrySuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
}

func TestRegistry(t *testing.T) { suite.Run(t, new(registrySuite)) }

func (s *registrySuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowType})
}

type outcome struct {
	val any
	err error
}

// update sends an Update at simulated time at and records its outcome.
func (s *registrySuite) update(at time.Duration, name string, arg any, out *outcome) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { out.err = err },
			OnAccept:   func() {},
			OnComplete: func(v any, err error) { out.val, out.err = v, err },
		}, arg)
	}, at)
}

func hostSpec(name, zone string, memMi int64) HostSpec {
	return HostSpec{Name: name, Docker: "unix:///run/" + name + "/docker.sock", Address: "10.0.0.1",
		Capacity: Resources{MilliCPU: 4000, MemoryBytes: memMi << 20}, Labels: map[string]string{ZoneLabel: zone}}
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// Hosts register; tenants are placed one after the other without
// over-committing; a retry keeps its host; only the owner releases; a
// cordoned host takes nobody; bad input and unknown hosts are refused.
func (s *registrySuite) TestPlacementThroughTheRegistry() {
	var a, b, bad, p1, p1again, p2, full, stolen, freed, cordon, p3, lostActive, last outcome
	s.update(time.Second, UpdateRegister, hostSpec("a", "z1", 512), &a)
	s.update(2*time.Second, UpdateRegister, hostSpec("b", "z2", 512), &b)
	s.update(3*time.Second, UpdateRegister, HostSpec{Name: "Bad_Name"}, &bad)
	s.update(4*time.Second, UpdateReserve, ReserveInput{Tenant: "t1", Owner: "r1", Need: need}, &p1)
	s.update(5*time.Second, UpdateReserve, ReserveInput{Tenant: "t1", Owner: "r1", Need: need}, &p1again)
	s.update(6*time.Second, UpdateReserve, ReserveInput{Tenant: "t2", Owner: "r2", Need: need}, &p2)
	s.update(7*time.Second, UpdateReserve, ReserveInput{Tenant: "t3", Owner: "r3", Need: Resources{MilliCPU: 100, MemoryBytes: 300 << 20}}, &full)
	s.update(8*time.Second, UpdateRelease, ReleaseInput{Tenant: "t1", Owner: "someone-else", Host: "a"}, &stolen)
	s.update(9*time.Second, UpdateRelease, ReleaseInput{Tenant: "t1", Owner: "r1", Host: "a"}, &freed)
	s.update(10*time.Second, UpdateSetState, SetStateInput{Host: "a", State: StateCordoned, By: "ops", Reason: "disk"}, &cordon)
	s.update(11*time.Second, UpdateReserve, ReserveInput{Tenant: "t4", Owner: "r4", Need: need}, &p3)
	s.update(12*time.Second, UpdateSetState, SetStateInput{Host: "a", State: StateLost, By: "monitor"}, &outcome{})
	s.update(13*time.Second, UpdateSetState, SetStateInput{Host: "a", State: StateActive, By: "ops"}, &lostActive)
	var hosts []Host
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(QueryHosts)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&hosts))
		s.update(0, UpdateReserve, ReserveInput{Tenant: "t5", Owner: "r5", Need: need, Pin: "a"}, &last)
	}, 14*time.Second)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, Input{})

	s.Require().NoError(a.err)
	s.Require().NoError(b.err)
	s.Equal(ErrInvalid, errType(bad.err))
	s.Contains(bad.err.Error(), "name")
	s.Require().NoError(p1.err)
	s.Equal("a", p1.val.(Placement).Host, "zones and free memory tie: by name")
	s.Equal("a", p1again.val.(Placement).Host, "a retry of the same provisioning keeps its host")
	s.Equal("b", p2.val.(Placement).Host, "zone z2 has fewer tenants now")
	s.Equal(ErrNoHostFit, errType(full.err), "%v", full.err)
	s.Equal(ErrConflict, errType(stolen.err))
	s.Require().NoError(freed.err)
	s.Require().NoError(cordon.err)
	s.Require().NoError(p3.err)
	s.Equal("b", p3.val.(Placement).Host, "a cordoned host takes nobody")
	s.Equal(ErrConflict, errType(lostActive.err), "a lost host comes back cordoned, not active")
	s.Equal(ErrPinned, errType(last.err), "a lost host takes nobody, pinned or not")

	s.Require().Len(hosts, 2)
	s.Equal(StateLost, hosts[0].State)
	s.Equal("lost by monitor:", hosts[0].Reason)
	s.Empty(hosts[0].Reservations, "t1's owner released it")
	s.Contains(hosts[1].Reservations, "t2")
	s.Contains(hosts[1].Reservations, "t4")
}

// A reservation resizes for its owner: it shrinks always, grows only
// with room on an active host, and a refused growth leaves it as it was.
func (s *registrySuite) TestResizeReservation() {
	var grow, tooBig, stolen, nobody, cordon, growCordoned, shrink outcome
	mi := func(n int64) Resources { return Resources{MilliCPU: 500, MemoryBytes: n << 20} }
	s.update(time.Second, UpdateRegister, hostSpec("a", "z1", 512), &outcome{})
	s.update(2*time.Second, UpdateReserve, ReserveInput{Tenant: "t1", Owner: "r1", Need: mi(128)}, &outcome{})
	s.update(3*time.Second, UpdateReserve, ReserveInput{Tenant: "t2", Owner: "r2", Need: mi(128)}, &outcome{})
	s.update(4*time.Second, UpdateResize, ResizeInput{Tenant: "t1", Owner: "r1", Host: "a", Need: mi(384), Op: "p1"}, &grow)
	s.update(5*time.Second, UpdateResize, ResizeInput{Tenant: "t2", Owner: "r2", Host: "a", Need: mi(256), Op: "p2"}, &tooBig)
	s.update(6*time.Second, UpdateResize, ResizeInput{Tenant: "t2", Owner: "r9", Host: "a", Need: mi(64), Op: "p3"}, &stolen)
	s.update(7*time.Second, UpdateResize, ResizeInput{Tenant: "t3", Owner: "r3", Host: "a", Need: mi(64), Op: "p4"}, &nobody)
	s.update(8*time.Second, UpdateSetState, SetStateInput{Host: "a", State: StateCordoned, By: "ops"}, &cordon)
	s.update(9*time.Second, UpdateResize, ResizeInput{Tenant: "t1", Owner: "r1", Host: "a", Need: mi(385), Op: "p5"}, &growCordoned)
	s.update(10*time.Second, UpdateResize, ResizeInput{Tenant: "t1", Owner: "r1", Host: "a", Need: mi(64), Op: "p6"}, &shrink)
	var hosts []Host
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(QueryHosts)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&hosts))
	}, 11*time.Second)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, Input{})

	s.Require().NoError(grow.err, "384 + 128 fit in 512")
	s.Equal(ErrNoRoom, errType(tooBig.err), "%v", tooBig.err)
	s.Contains(tooBig.err.Error(), "move the tenant first")
	s.Equal(ErrConflict, errType(stolen.err))
	s.Equal(ErrNotFound, errType(nobody.err))
	s.Require().NoError(cordon.err)
	s.Equal(ErrNoRoom, errType(growCordoned.err), "a cordoned host takes no more")
	s.Require().NoError(shrink.err, "a cordoned host's reservation may shrink")
	s.Require().Len(hosts, 1)
	s.Equal(mi(64), hosts[0].Reservations["t1"].Need)
	s.Equal(mi(128), hosts[0].Reservations["t2"].Need, "a refused growth leaves it")
}
