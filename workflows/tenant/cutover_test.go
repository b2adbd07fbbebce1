package tenant

import (
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

const newImage = "registry.test/demo-app@sha256:" + "2222222222222222222222222222222222222222222222222222222222222222"

// mockCutover mocks the runtime activities only a cut-over uses.
func (s *provisionSuite) mockCutover() { s.mockCutoverPulling(func(string) error { return nil }) }

// mockCutoverPulling is mockCutover with pull answering each image's pull.
func (s *provisionSuite) mockCutoverPulling(pull func(image string) error) {
	var a *runtimes.Activities
	s.env.OnActivity(a.EnsureImage, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.ImageInput) error {
		s.record("EnsureImage " + in.Image)
		return pull(in.Image)
	})
	s.env.OnActivity(a.RetireService, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.RetireInput) error {
		s.record(fmt.Sprintf("RetireService %s keep=%d", in.Service, in.Keep))
		return nil
	})
}

type applyOutcome struct {
	res ApplyResult
	err error
}

// applyAt sends the applyRelease Update at simulated time at.
func (s *provisionSuite) applyAt(at time.Duration, in ApplyInput, out *applyOutcome) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateApplyRelease, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { out.err = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				out.err = err
				if r, ok := v.(ApplyResult); ok {
					out.res = r
				}
			},
		}, in)
	}, at)
}

func (s *provisionSuite) TestCutoverSwitchesRouteThenRetiresOld() {
	s.plan = fullPlan
	ic := s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockCutover()
	var out applyOutcome
	s.env.RegisterDelayedCallback(func() { ic.parallel.Add(1) }, 30*time.Minute) // the release records its image in the CMDB
	s.applyAt(time.Hour, ApplyInput{Release: "r1", Image: newImage, Drain: spec.Duration(3 * time.Second)}, &out)
	var st Tenant
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(out.err)
	s.Equal(OutcomeUpdated, out.res.Outcome, out.res.Error)
	s.Equal("tenantflow/demo-app:dev", out.res.From)
	s.Equal(newImage, out.res.To)
	s.GreaterOrEqual(out.res.FinishedAt.Sub(out.res.StartedAt), 3*time.Second, "the old instance drains before it is retired")
	calls := s.recorded()
	s.Equal([]string{"EnsureImage " + newImage, "StartService app", "WaitHealthy", "EnsureRoute", "StartSupervision"},
		after(calls, "EnsureImage "+newImage)[:5])
	s.Contains(calls, "RetireService app keep=1")
	s.Less(index(calls, "EnsureRoute", 1), index(calls, "RetireService app keep=1", 0), "the route leaves the old instance before it stops")
	s.Equal([]string{"127.0.0.1:40001"}, ic.routeIn.Upstreams)
	s.Equal("http://127.0.0.1:40001", ic.watchIn.URL, "probes follow the instance")
	var release []string
	for _, c := range s.requireOwners(5)[5:] {
		release = append(release, c.call)
	}
	s.ElementsMatch([]string{"EnsureRoute", "StartSupervision", "RegisterInCMDB"}, release, "the release acts on the provisioning run's objects")

	s.Equal(StateActive, st.State)
	s.Equal(newImage, st.Image)
	s.Equal("tenantflow/demo-app:dev", st.PreviousImage)
	s.Equal("r1", st.Release)
	s.Equal(1, st.Generation)
	s.Equal("http://127.0.0.1:40001", st.Endpoint)
	s.Equal(fullPlan.URL, st.URL, "the public URL does not change")
	s.Equal(newImage, s.keyword(searchattr.Image))
	s.Equal("r1", s.keyword(searchattr.Release))
}

func (s *provisionSuite) TestUnhealthyCandidateIsRemovedAndOldKeepsServing() {
	s.plan = fullPlan
	s.mockIntegrations("", "")
	healthy := true
	s.mockRuntime(nil, func() error {
		if healthy {
			return nil
		}
		return temporal.NewNonRetryableApplicationError("service app is unhealthy: HTTP 503", "ServiceUnhealthy", nil)
	})
	s.mockCutover()
	s.env.RegisterDelayedCallback(func() { healthy = false }, 30*time.Minute)
	var out applyOutcome
	s.applyAt(time.Hour, ApplyInput{Release: "r1", Image: newImage}, &out)
	var st Tenant
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(out.err)
	s.Equal(OutcomeRolledBack, out.res.Outcome)
	s.Contains(out.res.Error, "unhealthy")
	calls := after(s.recorded(), "EnsureImage "+newImage)
	s.Contains(calls, "RetireService app keep=0", "the candidate is removed")
	s.NotContains(calls, "EnsureRoute", "the route never left the old instance")
	s.NotContains(calls, "RetireService app keep=1")
	s.Equal(StateActive, st.State)
	s.Equal("tenantflow/demo-app:dev", st.Image)
	s.Equal(0, st.Generation)
	s.Equal("http://127.0.0.1:40000", st.Endpoint)
	s.Contains(st.Error, "rolled back")
}

// A release that arrives while the tenant is being provisioned waits for
// the end of it: operations on one tenant never overlap.
func (s *provisionSuite) TestReleaseWaitsForProvisioning() {
	s.plan = fullPlan
	s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockCutover()
	var a *runtimes.Activities
	// Provisioning's health wait takes ten simulated minutes.
	s.env.OnActivity(a.WaitHealthy, mock.Anything, mock.Anything).Return(func(_ context.Context, env spec.Environment) (runtimes.Endpoint, error) {
		gen := env.Services[0].Generation
		for _, svc := range env.Services {
			gen = max(gen, svc.Generation)
		}
		s.record(fmt.Sprintf("WaitHealthy gen=%d", gen))
		return runtimes.Endpoint{URL: fmt.Sprintf("http://127.0.0.1:%d", 40000+gen)}, nil
	}).After(10 * time.Minute)
	var out applyOutcome
	s.applyAt(time.Second, ApplyInput{Release: "r1", Image: newImage}, &out)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(out.err)
	s.Equal(OutcomeUpdated, out.res.Outcome, out.res.Error)
	calls := s.recorded()
	s.Less(index(calls, "StartSupervision", 0), index(calls, "EnsureImage "+newImage, 0), "the cut-over starts after provisioning ended")
}

func (s *provisionSuite) TestSameImageIsUnchanged() {
	s.mockRuntime(nil, nil)
	s.mockCutover()
	var out applyOutcome
	s.applyAt(time.Hour, ApplyInput{Release: "r0", Image: "tenantflow/demo-app:dev"}, &out)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().NoError(out.err)
	s.Equal(OutcomeUnchanged, out.res.Outcome)
	s.NotContains(s.recorded(), "EnsureImage tenantflow/demo-app:dev")
}

// after returns the calls from the first one equal to from.
func after(calls []string, from string) []string {
	if i := index(calls, from, 0); i >= 0 {
		return calls[i:]
	}
	return nil
}

// index is the position of the n-th (0-based) call equal to c, or -1.
func index(calls []string, c string, n int) int {
	for i, x := range calls {
		if x == c {
			if n == 0 {
				return i
			}
			n--
		}
	}
	return -1
}

// An aborted release cancels the tenant's cut-over under way: a pull that
// keeps failing (a registry that does not answer) stops at once, the
// candidate's undo runs and the old instance keeps serving, instead of the
// tenant being held until the pull's budget is spent. A later cut-over of
// the same release never starts; a revert (the previous image) still runs.
func (s *provisionSuite) TestAbortCancelsTheCutoverUnderWay() {
	s.mockRuntime(nil, nil)
	s.mockCutoverPulling(func(image string) error {
		if image == newImage {
			return fmt.Errorf("pull %s: connection refused", image)
		}
		return nil
	})
	var first, again, revert applyOutcome
	s.applyAt(time.Hour, ApplyInput{Release: "r1", Image: newImage}, &first)
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(SignalCancelRelease, CancelInput{Tenant: "acme", Release: "r1", Image: newImage, Reason: "aborted by ops"})
	}, time.Hour+time.Minute)
	s.applyAt(2*time.Hour, ApplyInput{Release: "r1", Image: newImage}, &again)
	s.applyAt(3*time.Hour, ApplyInput{Release: "r1", Image: "tenantflow/demo-app:v0"}, &revert)
	var st Tenant
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 4*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(first.err)
	s.Equal(OutcomeRolledBack, first.res.Outcome)
	s.Contains(first.res.Error, "cancelled: release r1 was aborted")
	s.Less(first.res.FinishedAt.Sub(first.res.StartedAt), 2*time.Minute, "stopped by the abort, not by the pull budget")
	calls := after(s.recorded(), "EnsureImage "+newImage)
	s.NotContains(calls[:index(calls, "EnsureImage tenantflow/demo-app:v0", 0)], "StartService app", "the candidate never started")

	s.Require().NoError(again.err)
	s.Equal(OutcomeSkipped, again.res.Outcome)
	s.Contains(again.res.Error, "aborted")
	s.Require().NoError(revert.err)
	s.Equal(OutcomeUpdated, revert.res.Outcome, revert.res.Error)

	s.Equal(StateActive, st.State)
	s.Equal("tenantflow/demo-app:v0", st.Image)
}

// A pull that keeps failing is bounded by the release's budget, not held
// for a quarter of an hour.
func (s *provisionSuite) TestPullIsBoundedByTheReleaseBudget() {
	s.mockRuntime(nil, nil)
	s.mockCutoverPulling(func(image string) error { return fmt.Errorf("pull %s: connection refused", image) })
	var out applyOutcome
	s.applyAt(time.Hour, ApplyInput{Release: "r1", Image: newImage}, &out)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().NoError(out.err)
	s.Equal(OutcomeRolledBack, out.res.Outcome)
	took := out.res.FinishedAt.Sub(out.res.StartedAt)
	s.GreaterOrEqual(took, defaultPullBudget-time.Minute)
	s.LessOrEqual(took, defaultPullBudget+time.Minute)
}
