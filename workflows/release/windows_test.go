package release

import (
	"strings"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

var windowStart = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// windowed makes the named tenants' windows closed until opens (none
// before: open at any time); an override or a revert goes through. The
// Updates the tenants were sent are recorded.
func (s *releaseSuite) windowed(opens map[string]time.Time) {
	s.env.SetStartTime(windowStart)
	s.fleet["staging"] = nil
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(SignalPromote, PromoteInput{By: "alice"}) }, time.Minute)
	s.apply = func(in fleet.UpdateInput) tenant.ApplyResult {
		s.mu.Lock()
		s.updates = append(s.updates, in)
		s.mu.Unlock()
		now := s.env.Now()
		res := tenant.ApplyResult{Tenant: in.Tenant, Outcome: tenant.OutcomeUpdated, From: oldImage, To: in.Apply.Image, StartedAt: now, FinishedAt: now}
		if at, ok := opens[in.Tenant]; ok && now.Before(at) && in.Apply.Override == nil {
			res.Outcome, res.Error, res.WindowOpensAt = tenant.OutcomeOutsideWindow, "outside its maintenance window", &at
		}
		return res
	}
}

func (s *releaseSuite) status(st Release) map[string]TenantStatus {
	out := map[string]TenantStatus{}
	for _, t := range st.Tenants {
		out[t.Name] = t.Status
	}
	return out
}

func (s *releaseSuite) TestTenantsWaitForTheirWindowWhileTheOthersGoOn() {
	opensP2, opensP4 := windowStart.Add(6*time.Hour), windowStart.Add(30*time.Hour)
	s.windowed(map[string]time.Time{"p2": opensP2, "p4": opensP4})
	var waiting, oneLeft Release
	s.env.RegisterDelayedCallback(func() { waiting = s.query() }, time.Hour)
	s.env.RegisterDelayedCallback(func() { oneLeft = s.query() }, 10*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{Canary: 1, BatchSize: 2, MaxParallel: 2}))
	st := s.result()

	s.Equal(map[string]TenantStatus{"p1": TenantUpdated, "p2": TenantWaitingWindow, "p3": TenantUpdated, "p4": TenantWaitingWindow, "p5": TenantUpdated},
		s.status(waiting), "the tenants outside their windows wait; the rest of the fleet does not wait for them")
	s.Equal(StateRunning, waiting.State)
	s.Require().NotNil(waiting.NextWindowAt)
	s.Equal(opensP2, waiting.NextWindowAt.UTC(), "the release shows when the first window opens")
	s.Equal(opensP2, waiting.Tenants[1].WindowOpensAt.UTC(), "and each waiting tenant until when")
	s.Equal(3, waiting.Progress.Done, "a waiting tenant is not done")

	s.Equal(TenantUpdated, s.status(oneLeft)["p2"], "p2 went once its window opened")
	s.Equal(TenantWaitingWindow, s.status(oneLeft)["p4"])
	s.Equal(opensP4, oneLeft.NextWindowAt.UTC())

	s.Equal(StateCompleted, st.State)
	s.Equal(map[string]TenantStatus{"p1": TenantUpdated, "p2": TenantUpdated, "p3": TenantUpdated, "p4": TenantUpdated, "p5": TenantUpdated}, s.status(st))
	s.Equal(5, st.Progress.Done)
	s.Nil(st.NextWindowAt)
	s.Zero(st.Failures, "waiting for a window is not a failure")
	for _, t := range st.Tenants {
		s.Nil(t.WindowOpensAt, t.Name)
		s.Empty(t.Error, t.Name)
		switch t.Name {
		case "p2", "p4":
			s.Equal(1, t.Deferred, t.Name)
			s.Greater(t.Wave, 3, "%s went in a wave of its own after the fleet's", t.Name)
		default:
			s.Zero(t.Deferred, t.Name)
		}
	}
	s.Less(s.env.Now().Sub(opensP4), time.Minute, "the release ended when the last window opened")
	started := s.started()
	s.Contains(started, "p2/window1", "the second attempt is a new Update: the tenant keeps its first answer for the first id")
	s.Contains(started, "p4/window1")
}

func (s *releaseSuite) TestOpsOverrideTheWindowForAnEmergencyFix() {
	s.windowed(map[string]time.Time{"p2": windowStart.Add(7 * 24 * time.Hour), "p3": windowStart.Add(7 * 24 * time.Hour)})
	var unknown, noReason, done, override updateOutcome
	s.updateAt(time.Hour, UpdateOverrideWindow, OverrideInput{Tenants: []string{"p9"}, By: "ops", Reason: "CVE-2026-1234"}, &unknown)
	s.updateAt(time.Hour, UpdateOverrideWindow, OverrideInput{Tenants: []string{"p2"}, By: "ops"}, &noReason)
	s.updateAt(time.Hour, UpdateOverrideWindow, OverrideInput{Tenants: []string{"p1"}, By: "ops", Reason: "CVE-2026-1234"}, &done)
	s.updateAt(2*time.Hour, UpdateOverrideWindow, OverrideInput{Tenants: []string{"p2"}, By: "ops", Reason: "CVE-2026-1234"}, &override)
	var aborted updateOutcome
	s.updateAt(3*time.Hour, UpdateAbort, ControlInput{By: "ops", Reason: "enough"}, &aborted)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 5}))
	st := s.result()

	s.Equal(ErrReleaseControlRejected, name(unknown.err))
	s.Contains(unknown.err.Error(), "tenant p9 is not in release r1")
	s.Contains(noReason.err.Error(), "needs a reason")
	s.Contains(done.err.Error(), "tenant p1 is updated in release r1")
	s.Require().NoError(override.err)

	s.Equal(StateAborted, st.State)
	s.Equal(TenantUpdated, s.status(st)["p2"], "overridden: cut over a week before its window")
	s.Equal("CVE-2026-1234", st.Tenants[1].Override.Reason)
	s.Require().Len(st.Overrides, 1, "the override is recorded in the release")
	s.Equal("ops", st.Overrides[0].By)
	s.Equal([]string{"p2"}, st.Overrides[0].Tenants)
	s.Equal(TenantSkipped, s.status(st)["p3"], "not overridden, and the release was aborted while it waited")
	s.Contains(st.Tenants[2].Error, "aborted while it waited for its maintenance window")
	s.Nil(st.Tenants[2].WindowOpensAt)
	s.Equal(5, st.Progress.Done)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.updates {
		if u.Tenant == "p2" && strings.HasSuffix(u.UpdateID, "/window1") {
			s.Require().NotNil(u.Apply.Override, "the override travels to the tenant")
			s.Equal("ops", u.Apply.Override.By)
		}
	}
}

// An override before the tenants' turn (no tenant named: all left) lets
// every cut-over through without waiting.
func (s *releaseSuite) TestAnOverrideOfEveryTenantLeft() {
	s.windowed(map[string]time.Time{"p1": windowStart.Add(48 * time.Hour), "p5": windowStart.Add(48 * time.Hour)})
	var override updateOutcome
	s.updateAt(0, UpdateOverrideWindow, OverrideInput{By: "ops", Reason: "CVE-2026-1234"}, &override)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 5}))
	st := s.result()
	s.Require().NoError(override.err)
	s.Equal(StateCompleted, st.State)
	for _, t := range st.Tenants {
		s.Equal(TenantUpdated, t.Status, t.Name)
		s.Zero(t.Deferred, t.Name)
		s.NotNil(t.Override, t.Name)
	}
	s.Less(s.env.Now().Sub(windowStart), time.Hour)
}

// The canary goes before the fleet even when its window is closed: prod's
// other waves wait for it. Tenants whose windows open together go in
// waves of BatchSize.
func (s *releaseSuite) TestTheCanaryWaitsForItsWindowAndWindowWavesKeepTheBatchSize() {
	canaryOpens, fleetOpens := windowStart.Add(5*time.Hour), windowStart.Add(24*time.Hour)
	s.windowed(map[string]time.Time{"p1": canaryOpens, "p2": fleetOpens, "p3": fleetOpens, "p4": fleetOpens})
	var held Release
	s.env.RegisterDelayedCallback(func() { held = s.query() }, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{Canary: 1, BatchSize: 2, MaxParallel: 2}))
	st := s.result()

	s.Equal(map[string]TenantStatus{"p1": TenantWaitingWindow, "p2": TenantPending, "p3": TenantPending, "p4": TenantPending, "p5": TenantPending},
		s.status(held), "the fleet waits for the canary's window")
	s.Equal(canaryOpens, held.NextWindowAt.UTC())
	started := s.started()
	s.Equal([]string{"p1", "p1/window1"}, started[:2], "the canary first, in its window")
	s.Equal(StateCompleted, st.State)
	waves := map[string]int{}
	for _, t := range st.Tenants {
		s.Equal(TenantUpdated, t.Status, t.Name)
		waves[t.Name] = t.Wave
	}
	s.True(st.Tenants[0].Canary)
	s.Equal(1, waves["p1"], "the canary keeps its wave")
	s.Equal(waves["p2"], waves["p3"], "opened together: one wave of BatchSize 2")
	s.Equal(waves["p2"]+1, waves["p4"], "the third in the next")
	s.Greater(waves["p2"], waves["p5"])
}

// An override reaches a tenant whose cut-over was under way when it was
// sent: answering that its window is closed, it goes without waiting.
func (s *releaseSuite) TestAnOverrideReachesACutoverUnderWay() {
	s.windowed(map[string]time.Time{"p1": windowStart.Add(7 * 24 * time.Hour)})
	inner := s.apply
	var override updateOutcome
	sent := make(chan struct{})
	s.apply = func(in fleet.UpdateInput) tenant.ApplyResult {
		if in.Tenant == "p1" && in.Apply.Override == nil {
			// The override arrives while p1's first cut-over runs.
			s.env.UpdateWorkflow(UpdateOverrideWindow, "", &testsuite.TestUpdateCallback{
				OnReject: func(err error) { override.err = err; close(sent) }, OnAccept: func() {},
				OnComplete: func(v any, err error) { override.err = err; close(sent) },
			}, OverrideInput{Tenants: []string{"p1"}, By: "ops", Reason: "CVE-2026-1234"})
			select {
			case <-sent:
			case <-time.After(5 * time.Second):
				s.Fail("the override was not handled while the cut-over ran")
			}
		}
		return inner(in)
	}
	s.env.ExecuteWorkflow(WorkflowType, releaseInput(Plan{BatchSize: 5}))
	st := s.result()
	s.Require().NoError(override.err, "a tenant under way may be overridden")
	s.Equal(TenantUpdated, s.status(st)["p1"])
	s.Less(s.env.Now().Sub(windowStart), time.Hour, "it did not wait a week for its window")
	s.Contains(s.started(), "p1/window1")
}
