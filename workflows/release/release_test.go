package release

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

const newImage = "registry.test/demo-app@sha256:" + "2222222222222222222222222222222222222222222222222222222222222222"
const oldImage = "registry.test/demo-app@sha256:" + "1111111111111111111111111111111111111111111111111111111111111111"

type releaseSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment

	mu      sync.Mutex
	fleet   map[string][]string       // stage → tenant names
	outcome map[string]tenant.Outcome // tenant → outcome its cut-over reports (default updated)
	updates []fleet.UpdateInput       // in the order they started
	running int
	maxSeen int
	// hosts places tenants on fleet hosts (tenant → host; absent:
	// unplaced); onHost and maxOnHost count the cut-overs under way per
	// host; lists records what ListTenants was asked.
	hosts     map[string]string
	onHost    map[string]int
	maxOnHost map[string]int
	lists     []fleet.ListInput
	delay     map[string]time.Duration // how long a tenant's cut-over takes (default 20ms)
	// apply, when set, answers UpdateTenant instead of the default cut-over.
	apply func(in fleet.UpdateInput) tenant.ApplyResult
}

func TestRelease(t *testing.T) { suite.Run(t, new(releaseSuite)) }

func (s *releaseSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowType})
	f := &fleet.Activities{}
	s.env.RegisterActivity(f.ListTenants)
	s.env.RegisterActivity(f.UpdateTenant)
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	s.fleet = map[string][]string{"staging": {"s1", "s2"}, "prod": {"p1", "p2", "p3", "p4", "p5"}}
	s.outcome = map[string]tenant.Outcome{}
	s.updates = nil
	s.running, s.maxSeen = 0, 0
	s.hosts, s.onHost, s.maxOnHost, s.lists = map[string]string{}, map[string]int{}, map[string]int{}, nil
	s.delay = map[string]time.Duration{}
	s.apply = nil
	s.env.OnActivity(f.ListTenants, mock.Anything, mock.Anything).Return(func(_ context.Context, in fleet.ListInput) ([]fleet.Tenant, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lists = append(s.lists, in)
		var out []fleet.Tenant
		for _, n := range s.fleet[in.Stage] {
			if len(in.Names) == 0 || slices.Contains(in.Names, n) {
				t := fleet.Tenant{Name: n, Stage: in.Stage, State: string(tenant.StateActive), Image: oldImage}
				if in.Hosts {
					t.Host = s.hosts[n]
				}
				out = append(out, t)
			}
		}
		return out, nil
	})
	s.env.OnActivity(f.UpdateTenant, mock.Anything, mock.Anything).Return(func(_ context.Context, in fleet.UpdateInput) (tenant.ApplyResult, error) {
		if s.apply != nil {
			return s.apply(in), nil
		}
		s.mu.Lock()
		s.updates = append(s.updates, in)
		s.running++
		s.maxSeen = max(s.maxSeen, s.running)
		host := s.hosts[in.Tenant]
		if host != "" {
			s.onHost[host]++
			s.maxOnHost[host] = max(s.maxOnHost[host], s.onHost[host])
		}
		outcome := s.outcome[in.Tenant]
		delay := cmp.Or(s.delay[in.Tenant], 20*time.Millisecond)
		s.mu.Unlock()
		time.Sleep(delay) // overlap with the wave's other cut-overs
		s.mu.Lock()
		s.running--
		if host != "" {
			s.onHost[host]--
		}
		s.mu.Unlock()
		if outcome == "" || strings.HasSuffix(in.UpdateID, "/revert") {
			outcome = tenant.OutcomeUpdated
		}
		res := tenant.ApplyResult{Tenant: in.Tenant, Outcome: outcome, From: oldImage, To: in.Apply.Image,
			StartedAt: time.Unix(100, 0), FinishedAt: time.Unix(103, 0)}
		if outcome == tenant.OutcomeRolledBack {
			res.Error = "service app is unhealthy"
		}
		return res, nil
	})
}

func releaseInput(plan Plan) Input {
	if plan.Tenants.Stage == "" && !plan.Tenants.All && plan.Tenants.Names == nil {
		plan.Tenants = TenantSelector{All: true}
	}
	return Input{ID: "r1", Image: newImage, Plan: plan, RequestedBy: "dev"}
}

type updateOutcome struct {
	state Release
	err   error
	done  bool
}

// updateAt sends a release Update at simulated time at.
func (s *releaseSuite) updateAt(at time.Duration, name string, arg any, out *updateOutcome) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { out.err, out.done = err, true },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				out.err, out.done = err, true
				if st, ok := v.(Release); ok {
					out.state = st
				}
			},
		}, arg)
	}, at)
}

func (s *releaseSuite) query() Release {
	v, err := s.env.QueryWorkflow(QueryRelease)
	s.Require().NoError(err)
	var st Release
	s.Require().NoError(v.Get(&st))
	return st
}

// result is the ended release with its tenants (the release query); the
// workflow's own result is the summary, which carries none, only counts.
func (s *releaseSuite) result() Release {
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var sum Release
	s.Require().NoError(s.env.GetWorkflowResult(&sum))
	s.Require().Nil(sum.Tenants, "the result does not grow with the fleet")
	st := s.query()
	s.Require().Equal(countByStatus(st.Tenants), sum.Counts)
	v, err := s.env.QueryWorkflow(QuerySummary)
	s.Require().NoError(err)
	var polled Release
	s.Require().NoError(v.Get(&polled))
	s.Require().Equal(sum, polled, "the summary query answers the result's summary")
	return st
}

func (s *releaseSuite) started() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, u := range s.updates {
		names = append(names, u.Tenant+strings.TrimPrefix(u.UpdateID, "release:r1/"+u.Tenant))
	}
	return names
}

func (s *releaseSuite) TestStagingThenPromoteThenCanaryAndBatches() {
	var waiting Release
	s.env.RegisterDelayedCallback(func() { waiting = s.query() }, time.Hour)
	var promoted updateOutcome
	s.updateAt(2*time.Hour, UpdatePromote, PromoteInput{Release: "r1", By: "alice"}, &promoted)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{Canary: 1, BatchSize: 2, MaxParallel: 2}))
	st := s.result()

	s.Equal(StateAwaitingPromotion, waiting.State, "staging done, prod untouched until promoted")
	s.ElementsMatch([]string{"s1", "s2"}, s.started()[:2])
	s.Require().NoError(promoted.err)
	s.Equal("alice", promoted.state.Promotion.By)
	s.Nil(promoted.state.Tenants, "an Update's answer does not grow with the fleet")
	s.Equal(2, promoted.state.Counts[TenantUpdated], "staging's two tenants, counted")

	s.Equal(StateCompleted, st.State)
	s.Equal(PhaseProd, st.Phase)
	started := s.started()
	s.Require().Len(started, 7)
	s.ElementsMatch([]string{"s1", "s2"}, started[:2], "staging first")
	s.Equal("p1", started[2], "the canary before any other prod tenant")
	s.ElementsMatch([]string{"p2", "p3"}, started[3:5], "a wave starts when the previous one ended")
	s.ElementsMatch([]string{"p4", "p5"}, started[5:])
	waves := map[string]int{}
	for _, t := range st.Tenants {
		waves[t.Name] = t.Wave
		s.Equal(TenantUpdated, t.Status, t.Name)
		s.Equal(oldImage, t.From)
		s.Equal(newImage, t.To)
		s.EqualValues(3000, t.CutoverMillis)
	}
	s.Equal(map[string]int{"s1": 1, "s2": 1, "p1": 2, "p2": 3, "p3": 3, "p4": 4, "p5": 4}, waves, "staging in batches; prod: the canary alone, then batches")
	s.Equal(2, s.maxSeen, "MaxParallel cut-overs at a time")
	s.Equal(flow.Progress{Done: 7, Total: 7}, flow.Progress{Done: st.Progress.Done, Total: st.Progress.Total})
	s.Zero(st.Failures)
}

func (s *releaseSuite) TestMaxParallelBelowBatchSize() {
	s.fleet["staging"] = nil
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "cli"}) }, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 5, MaxParallel: 1}))
	st := s.result()
	s.Equal(StateCompleted, st.State)
	s.Equal(1, s.maxSeen)
	s.Equal("cli", st.Promotion.By, "the promote Signal promotes like the Update")
}

// `temporal workflow signal --name promote` without --input sends no
// payload at all.
func (s *releaseSuite) TestPromoteSignalWithoutPayload() {
	s.fleet["staging"] = nil
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, nil) }, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{}))
	st := s.result()
	s.Equal(StateCompleted, st.State)
	s.Equal("signal", st.Promotion.By)
}

func (s *releaseSuite) TestPromoteValidator() {
	s.outcome["s2"] = tenant.OutcomeRolledBack
	var early, wrong updateOutcome
	// Staging's cut-overs take real time in the mock; at simulated 0 the
	// first wave is still running.
	s.updateAt(0, UpdatePromote, PromoteInput{By: "alice"}, &early)
	s.updateAt(time.Hour, UpdatePromote, PromoteInput{Release: "r0", By: "alice"}, &wrong)
	var failed updateOutcome
	s.updateAt(2*time.Hour, UpdatePromote, PromoteInput{Release: "r1", By: "alice"}, &failed)
	var aborted updateOutcome
	s.updateAt(3*time.Hour, UpdateAbort, ControlInput{By: "ops", Reason: "bad image"}, &aborted)
	// Threshold 1: one staging failure does not pause, but bars promotion.
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{FailureThreshold: 1}))
	st := s.result()

	s.Equal(ErrPromoteRejected, name(early.err))
	s.Contains(early.err.Error(), "still updating staging")
	s.Equal(ErrPromoteRejected, name(wrong.err))
	s.Contains(wrong.err.Error(), "this is release r1, not r0")
	s.Equal(ErrPromoteRejected, name(failed.err))
	s.Contains(failed.err.Error(), "staging failed")
	s.Contains(failed.err.Error(), "s2: rolled-back")
	s.Require().NoError(aborted.err)
	s.Equal(StateAborted, st.State)
	s.True(st.StagingFailed)
	s.Equal(1, st.Failures)
	for _, u := range s.started() {
		s.True(strings.HasPrefix(u, "s"), "no prod tenant was touched: %s", u)
	}
}

func (s *releaseSuite) TestThresholdPausesUntilResumed() {
	s.fleet["staging"] = nil
	s.outcome["p2"] = tenant.OutcomeRolledBack
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "alice"}) }, time.Minute)
	var paused Release
	s.env.RegisterDelayedCallback(func() { paused = s.query() }, time.Hour)
	var resumed updateOutcome
	s.updateAt(2*time.Hour, UpdateResume, ControlInput{By: "ops"}, &resumed)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 2, MaxParallel: 2}))
	st := s.result()

	s.Equal(StatePaused, paused.State)
	s.Contains(paused.PauseReason, "over the threshold of 0")
	s.Contains(paused.PauseReason, "p2")
	s.Equal(TenantPending, paused.Tenants[2].Status, "the next wave waits")
	s.Require().NoError(resumed.err)
	s.Equal(StateCompleted, st.State)
	s.Equal(1, st.Failures)
	s.Equal(TenantRolledBack, st.Tenants[1].Status)
	s.Equal(TenantUpdated, st.Tenants[4].Status)
}

func (s *releaseSuite) TestAbortRevertsTheCurrentWave() {
	s.fleet["staging"] = nil
	s.outcome["p3"] = tenant.OutcomeRolledBack
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "alice"}) }, time.Minute)
	var aborted updateOutcome
	s.updateAt(time.Hour, UpdateAbort, ControlInput{By: "ops", Reason: "p3 broke"}, &aborted)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{Canary: 1, BatchSize: 2, MaxParallel: 2}))
	st := s.result()

	s.Require().NoError(aborted.err)
	s.Equal(StateAborted, st.State)
	status := map[string]TenantStatus{}
	for _, t := range st.Tenants {
		status[t.Name] = t.Status
	}
	s.Equal(map[string]TenantStatus{"p1": TenantUpdated, "p2": TenantReverted, "p3": TenantRolledBack, "p4": TenantPending, "p5": TenantPending}, status,
		"the canary (an earlier wave) stays; the current wave's updated tenant goes back")
	s.Contains(s.started(), "p2/revert")
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.updates {
		if strings.HasSuffix(u.UpdateID, "/revert") {
			s.Equal(oldImage, u.Apply.Image, "a revert goes back to the tenant's previous image")
		}
	}
}

func (s *releaseSuite) TestPauseAndResumeAreValidated() {
	var resumeRunning, pause, pauseAgain, resume updateOutcome
	s.fleet["staging"] = nil
	s.updateAt(time.Minute, UpdateResume, ControlInput{By: "ops"}, &resumeRunning)
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "alice"}) }, 2*time.Minute)
	s.updateAt(2*time.Minute, UpdatePause, ControlInput{By: "ops"}, &pause)
	s.updateAt(3*time.Minute, UpdatePause, ControlInput{By: "ops"}, &pauseAgain)
	var paused Release
	s.env.RegisterDelayedCallback(func() { paused = s.query() }, time.Hour)
	s.updateAt(2*time.Hour, UpdateResume, ControlInput{By: "ops"}, &resume)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 1}))
	st := s.result()

	s.Equal(ErrReleaseControlRejected, name(resumeRunning.err), "awaiting promotion is not paused")
	s.Require().NoError(pause.err)
	s.Equal(ErrReleaseControlRejected, name(pauseAgain.err))
	s.Equal(StatePaused, paused.State)
	s.Equal("paused by ops", paused.PauseReason)
	s.Less(paused.Progress.Done, 5, "no cut-over started while paused")
	s.Require().NoError(resume.err)
	s.Equal(StateCompleted, st.State)
}

func (s *releaseSuite) TestPromotionDeadline() {
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{PromotionDeadline: spec.Duration(24 * time.Hour)}))
	st := s.result()
	s.Equal(StateNotPromoted, st.State)
	s.Contains(st.Error, "not promoted within 24h")
	s.ElementsMatch([]string{"s1", "s2"}, s.started())
}

func (s *releaseSuite) TestNamedTenantsAndMissingOnes() {
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "alice"}) }, time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{Tenants: TenantSelector{Names: []string{"s2", "p4", "ghost"}}}))
	st := s.result()
	s.ElementsMatch([]string{"s2", "p4"}, s.started())
	s.Require().Len(st.Tenants, 3)
	s.Equal("ghost", st.Tenants[2].Name)
	s.Equal(TenantSkipped, st.Tenants[2].Status)
}

func (s *releaseSuite) TestRollbackImagesPerTenant() {
	in := releaseInput(Plan{Tenants: TenantSelector{Stage: "staging"}})
	in.Images = map[string]string{"s2": oldImage}
	s.env.ExecuteWorkflow(WorkflowType, in)
	st := s.result()
	s.Equal(StateCompleted, st.State, "a staging-only release needs no promotion")
	s.mu.Lock()
	defer s.mu.Unlock()
	images := map[string]string{}
	for _, u := range s.updates {
		images[u.Tenant] = u.Apply.Image
	}
	s.Equal(map[string]string{"s1": newImage, "s2": oldImage}, images)
}

func (s *releaseSuite) TestContinuesAsNewAtWaveBoundary() {
	old := releaseWavesPerRun
	releaseWavesPerRun = 1
	defer func() { releaseWavesPerRun = old }()
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 1}))
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(err, &can), "got %v", err)
	s.Equal(WorkflowType, can.WorkflowType.Name)
	s.Equal([]string{"s1"}, s.started(), "one wave per run")
	var next Input
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Require().NotNil(next.State)
	s.Nil(next.State.Tenants, "the tenants travel packed")
	ts, err := unpackTenants(next.PackedTenants)
	s.Require().NoError(err)
	s.Equal(s.query().Tenants, ts)
}

func TestContinuedReleaseResumes(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowType})
	f := &fleet.Activities{}
	env.RegisterActivity(f.ListTenants)
	env.RegisterActivity(f.UpdateTenant)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	var got []string
	env.OnActivity(f.UpdateTenant, mock.Anything, mock.Anything).Return(func(_ context.Context, in fleet.UpdateInput) (tenant.ApplyResult, error) {
		got = append(got, in.Tenant)
		return tenant.ApplyResult{Tenant: in.Tenant, Outcome: tenant.OutcomeUpdated}, nil
	})
	// State as a release carries it across continue-as-new: staging's first
	// wave done, its second pending; nothing is listed again.
	state := Release{ID: "r1", Image: newImage, Plan: withPlanDefaults(Plan{Tenants: TenantSelector{Stage: "staging"}, BatchSize: 1}),
		State: StateRunning, Phase: PhaseStaging, Tenants: []Tenant{
			{Name: "s1", Stage: PhaseStaging, Wave: 1, Status: TenantUpdated},
			{Name: "s2", Stage: PhaseStaging, Wave: 2, Status: TenantPending, To: newImage},
		}, Progress: flow.Progress{Done: 1, Total: 2}}
	env.ExecuteWorkflow(WorkflowType, Input{ID: "r1", Image: newImage, Plan: state.Plan, State: &state, Cursor: &Cursor{StagingListed: true}})
	require.NoError(t, env.GetWorkflowError())
	var st Release
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, map[TenantStatus]int{TenantUpdated: 2}, st.Counts)
	require.Equal(t, []string{"s2"}, got)
	require.Equal(t, StateCompleted, st.State)
	require.Equal(t, 2, st.Progress.Done)
}

// Abort while a cut-over is under way: the release tells that tenant at
// once (the cancelRelease Signal), so its cut-over stops and rolls back
// instead of holding the abort until it ends.
func (s *releaseSuite) TestAbortCancelsTheCutoversUnderWay() {
	s.fleet["staging"] = []string{"s1"}
	f := &fleet.Activities{}
	s.env.RegisterActivity(f.CancelRelease)
	cancelled := make(chan tenant.CancelInput, 1)
	s.env.OnActivity(f.CancelRelease, mock.Anything, mock.Anything).Return(func(_ context.Context, in tenant.CancelInput) error {
		cancelled <- in
		return nil
	})
	s.apply = func(in fleet.UpdateInput) tenant.ApplyResult {
		// The pull never ends; ops abort meanwhile.
		s.env.UpdateWorkflow(UpdateAbort, "", &testsuite.TestUpdateCallback{OnReject: func(error) {}, OnAccept: func() {}, OnComplete: func(any, error) {}},
			ControlInput{By: "ops", Reason: "the registry is gone"})
		res := tenant.ApplyResult{Tenant: in.Tenant, From: oldImage, To: in.Apply.Image}
		select {
		case c := <-cancelled:
			s.Equal(tenant.CancelInput{Tenant: "s1", Release: "r1", Image: newImage, Reason: "aborted by ops: the registry is gone"}, c)
			res.Outcome, res.Error = tenant.OutcomeRolledBack, "cancelled: release r1 was aborted"
		case <-time.After(10 * time.Second):
			res.Outcome = tenant.OutcomeUpdated // the pull ended on its own
		}
		return res
	}
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{}))
	st := s.result()
	s.Equal(StateAborted, st.State)
	s.Require().Len(st.Tenants, 1)
	s.Equal(TenantRolledBack, st.Tenants[0].Status, st.Tenants[0].Error)
	s.Contains(st.Tenants[0].Error, "cancelled")
}

// name is the failure type of an application error ("" for another error).
func name(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// backupBefore reaches every tenant's cut-over, and the release lists the
// backup each took.
func (s *releaseSuite) TestBackupBeforeReachesEveryCutover() {
	s.fleet["staging"] = nil
	s.apply = func(in fleet.UpdateInput) tenant.ApplyResult {
		res := tenant.ApplyResult{Tenant: in.Tenant, Outcome: tenant.OutcomeUpdated, To: in.Apply.Image,
			StartedAt: time.Unix(100, 0), FinishedAt: time.Unix(103, 0)}
		if in.Apply.BackupBefore {
			res.Backup = "before-" + in.Tenant
		}
		return res
	}
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "cli"}) }, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BackupBefore: true}))
	st := s.result()
	s.Equal(StateCompleted, st.State)
	s.Require().Len(st.Tenants, 5)
	for _, t := range st.Tenants {
		s.Equal("before-"+t.Name, t.Backup, t.Name)
	}
}

// A rollback with data gives each tenant's cut-over the backup to put
// back and lists what was restored; aborting it puts the wave's data back
// to the safety backups the restores took.
func (s *releaseSuite) TestRollbackWithDataRestoresAndItsRevertPutsTheSafetyBack() {
	s.fleet["staging"] = nil
	var mu sync.Mutex
	var seen []fleet.UpdateInput
	s.apply = func(in fleet.UpdateInput) tenant.ApplyResult {
		mu.Lock()
		seen = append(seen, in)
		mu.Unlock()
		res := tenant.ApplyResult{Tenant: in.Tenant, Outcome: tenant.OutcomeUpdated, From: newImage, To: in.Apply.Image,
			StartedAt: time.Unix(100, 0), FinishedAt: time.Unix(103, 0)}
		if in.Tenant == "p3" && !strings.HasSuffix(in.UpdateID, "/revert") {
			res.Outcome, res.Error = tenant.OutcomeRolledBack, "the dump of db does not load"
			return res
		}
		if in.Apply.RestoreBackup != "" {
			res.Backup, res.Restored = "safety-"+in.Tenant, in.Apply.RestoreBackup
		}
		return res
	}
	in := releaseInput(Plan{Canary: 1, BatchSize: 2, MaxParallel: 2})
	in.Image, in.RollbackOf = oldImage, "r0"
	in.Restores = map[string]string{"p1": "b-p1", "p2": "b-p2", "p3": "b-p3", "p4": "b-p4", "p5": "b-p5"}
	var aborted updateOutcome
	s.updateAt(time.Hour, UpdateAbort, ControlInput{By: "ops", Reason: "p3 broke"}, &aborted)
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "alice"}) }, time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, in)
	st := s.result()

	s.Require().NoError(aborted.err)
	byName := map[string]Tenant{}
	for _, t := range st.Tenants {
		byName[t.Name] = t
	}
	s.Equal("b-p1", byName["p1"].Restore)
	s.True(byName["p1"].Restored)
	s.Equal("safety-p1", byName["p1"].Backup)
	s.False(byName["p3"].Restored, "p3's restore failed")
	s.Equal(TenantReverted, byName["p2"].Status)
	mu.Lock()
	defer mu.Unlock()
	restores := map[string]string{}
	for _, u := range seen {
		restores[strings.TrimPrefix(u.UpdateID, WorkflowID("r1")+"/")] = u.Apply.RestoreBackup
	}
	s.Equal(map[string]string{"p1": "b-p1", "p2": "b-p2", "p3": "b-p3", "p2/revert": "safety-p2"}, restores,
		"each cut-over restores its tenant's backup; the revert restores the safety backup")
}
