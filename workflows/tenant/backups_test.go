package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// mockBackups mocks the restic activities, recording each call with the
// simulated time since start; drill decides DrillBackup's outcome.
func (s *provisionSuite) mockBackups(start time.Time, takeErr func(id string) error, drill func(id string) error) {
	r0 := &restic.Activities{}
	for _, fn := range []any{r0.TakeBackup, r0.CopyOffsite, r0.ApplyRetention, r0.DrillBackup, r0.EraseBackups} {
		s.env.RegisterActivity(fn)
	}
	var r *restic.Activities
	kept := []string{}
	s.env.OnActivity(r.TakeBackup, mock.Anything, mock.Anything).Return(func(ctx context.Context, in restic.BackupInput) (restic.Backup, error) {
		call := fmt.Sprintf("TakeBackup %s %s volumes %v dumps %d", in.ID, in.Reason, in.Volumes, len(in.Dumps))
		if q := in.Quiesce; q != nil {
			call += fmt.Sprintf(" quiesce %s gen %d %v", q.Service.Name, q.Service.Generation, q.Pause)
		}
		s.record(call)
		if takeErr != nil {
			if err := takeErr(in.ID); err != nil {
				return restic.Backup{}, err
			}
		}
		kept = append(kept, in.ID)
		return restic.Backup{ID: in.ID, Tenant: in.Tenant, Reason: in.Reason, CreatedAt: s.env.Now(), Bytes: 1000, Added: 10, RepositoryBytes: 5000}, nil
	})
	s.env.OnActivity(r.CopyOffsite, mock.Anything, mock.Anything).Return(func(_ context.Context, ref restic.Ref) (restic.OffsiteCopy, error) {
		s.record("CopyOffsite " + ref.ID)
		return restic.OffsiteCopy{Copied: 3, CopiedAt: s.env.Now(), Prune: s.pruner}, nil
	})
	s.env.OnActivity(r.ApplyRetention, mock.Anything, mock.Anything).Return(func(_ context.Context, in restic.RetentionInput) (restic.Retention, error) {
		// Keep as many of the newest as the policy could keep.
		var forgotten []string
		if n := len(kept) - in.Keep.Total(); n > 0 {
			forgotten, kept = kept[:n], kept[n:]
		}
		return restic.Retention{Kept: kept, Forgotten: forgotten}, nil
	})
	s.env.OnActivity(r.EraseBackups, mock.Anything, mock.Anything).Return(func(_ context.Context, in restic.EraseInput) error {
		s.record("EraseBackups " + in.Tenant)
		return nil
	})
	s.env.OnActivity(r.DrillBackup, mock.Anything, mock.Anything).Return(func(_ context.Context, in restic.DrillInput) (restic.Drill, error) {
		s.record(fmt.Sprintf("DrillBackup %s offsite=%v dumps %d", in.ID, in.Offsite, len(in.Dumps)))
		if drill != nil {
			if err := drill(in.ID); err != nil {
				return restic.Drill{}, err
			}
		}
		return restic.Drill{ID: in.ID, Offsite: in.Offsite, CheckedAt: s.env.Now()}, nil
	})
}

// mockPruner mocks the off-site pruner; fail decides each call's outcome.
func (s *provisionSuite) mockPruner(fail func(n int) error) {
	s.pruner = restic.DefaultPruneQueue
	var p *restic.Pruner
	s.env.RegisterActivity((&restic.Pruner{}).PruneOffsite)
	n := 0
	s.env.OnActivity(p.PruneOffsite, mock.Anything, mock.Anything).Return(func(_ context.Context, in restic.RetentionInput) (restic.Retention, error) {
		n++
		s.record(fmt.Sprintf("PruneOffsite keep %d pinned %v", in.Keep.Last, in.Pinned))
		if fail != nil {
			if err := fail(n); err != nil {
				return restic.Retention{}, err
			}
		}
		return restic.Retention{Forgotten: []string{fmt.Sprint("off-", n)}}, nil
	})
}

func withPolicy(in Input, p spec.Backups) Input {
	in.Template.Backups = &p
	return in
}

// sinceCall returns the calls from the first that starts with prefix.
func sinceCall(calls []string, prefix string) []string {
	for i, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return calls[i:]
		}
	}
	return nil
}

// callsOf returns the recorded calls that start with prefix.
func callsOf(calls []string, prefix string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// With an off-site pruner, every backup whose local retention forgot
// some prunes the off-site copy too; a failed off-site prune stays due
// and is tried again by the next backup.
func (s *provisionSuite) TestOffsiteCopiesArePrunedByThePruner() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	s.mockPruner(func(n int) error {
		if n == 1 {
			return temporal.NewNonRetryableApplicationError("the off-site server refuses user tf", restic.ErrNotConfigured, nil)
		}
		return nil
	})
	in := withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(time.Hour), Offsite: true, Keep: spec.Keep{Last: 2}})
	var mid, st Tenant
	s.env.RegisterDelayedCallback(func() { mid = s.queryState() }, 3*time.Hour+30*time.Minute)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 4*time.Hour+30*time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, in)

	prunes := callsOf(s.recorded(), "PruneOffsite")
	s.Equal([]string{"PruneOffsite keep 2 pinned []", "PruneOffsite keep 2 pinned []"}, prunes,
		"none before the retention forgets, then after each backup: the third's failed, the fourth's")
	s.Require().NotNil(mid.Backups.OffsitePrune)
	s.True(mid.Backups.OffsitePrune.Due, "a failed prune stays due")
	s.Contains(mid.Backups.OffsitePrune.Error, "refuses user")
	p := st.Backups.OffsitePrune
	s.Require().NotNil(p)
	s.Equal(restic.DefaultPruneQueue, p.Queue)
	s.False(p.Due)
	s.Empty(p.Error)
	s.NotNil(p.PrunedAt)
	s.Equal([]string{"off-2"}, p.Forgotten)
}

// Without a pruner, nothing is asked of one.
func (s *provisionSuite) TestWithoutAPrunerTheOffsiteCopyIsLeftAlone() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	in := withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(time.Hour), Offsite: true, Keep: spec.Keep{Last: 1}})
	var st Tenant
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour+30*time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, in)
	s.Empty(callsOf(s.recorded(), "PruneOffsite"))
	s.Nil(st.Backups.OffsitePrune)
}

func (s *provisionSuite) TestScheduledBackupsFireCopyOffsitePruneAndDrill() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	in := withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(time.Hour), Offsite: true,
		Keep: spec.Keep{Last: 2}, DrillEvery: spec.Duration(2 * time.Hour)})
	var st Tenant
	s.env.RegisterDelayedCallback(func() {
		st = s.queryState()
		s.env.CancelWorkflow()
	}, 3*time.Hour+30*time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, in)

	takes := callsOf(s.recorded(), "TakeBackup")
	s.Len(takes, 3, "one backup per hour: %v", takes)
	for _, c := range takes {
		s.Contains(c, "scheduled volumes [data] dumps 1", "the db's volume is dumped, not copied")
	}
	s.Len(callsOf(s.recorded(), "CopyOffsite"), 3)
	drills := callsOf(s.recorded(), "DrillBackup")
	s.Len(drills, 2, "drilled after the first backup, then two hours later: %v", drills)
	s.Contains(drills[0], "offsite=true dumps 1", "the off-site copy is what is drilled")

	b := st.Backups
	s.Require().NotNil(b)
	s.Len(b.List, 2, "the retention keeps the last two")
	s.Equal(ReasonScheduled, b.List[1].Reason)
	s.NotNil(b.List[1].OffsiteAt)
	s.Equal(DrillPassed, b.LastDrill.Outcome)
	s.Require().NotNil(b.NextAt)
	s.Equal(testStart.Add(4*time.Hour), b.NextAt.UTC(), "slots stay on the hour after the tenant's creation")
	s.NotNil(b.NewestOffsiteAt)
	s.Empty(b.LastError)
	s.Equal(StateActive, st.State)
}

func (s *provisionSuite) TestOnDemandBackupRunsAtOnceOrWaitsItsTurn() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	in := defaultInput(s.T()) // no policy: on demand only
	var first, second BackupAccepted
	var st Tenant
	s.env.RegisterDelayedCallback(func() {
		// Two requests in one go: the second waits for the first.
		s.env.UpdateWorkflow(UpdateBackup, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("rejected", err.Error()) }, OnAccept: func() {},
			OnComplete: func(v any, err error) { s.NoError(err); first = v.(BackupAccepted) },
		}, BackupRequest{By: "ops", Reason: "before migration"})
		s.env.UpdateWorkflow(UpdateBackup, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("rejected", err.Error()) }, OnAccept: func() {},
			OnComplete: func(v any, err error) { s.NoError(err); second = v.(BackupAccepted) },
		}, BackupRequest{By: "distributor"})
	}, time.Hour)
	s.env.RegisterDelayedCallback(func() {
		st = s.queryState()
		s.env.CancelWorkflow()
	}, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.NotEmpty(first.ID)
	s.False(first.Queued)
	s.True(second.Queued)
	s.Contains(second.WaitingFor, "take backup", "the second waits for the first, and says so")
	s.NotEqual(first.ID, second.ID)
	takes := callsOf(s.recorded(), "TakeBackup")
	s.Equal([]string{"TakeBackup " + first.ID + " on-demand volumes [data] dumps 1", "TakeBackup " + second.ID + " on-demand volumes [data] dumps 1"}, takes)
	s.Empty(callsOf(s.recorded(), "CopyOffsite"), "no policy: no off-site copy")
	s.Require().NotNil(st.Backups)
	s.Len(st.Backups.List, 2)
	s.Equal("ops", st.Backups.List[0].By)
	s.Nil(st.Backups.NextAt, "no policy: nothing scheduled")
}

func (s *provisionSuite) TestFailedBackupAndDrillAreRecordedAndTheTenantServesOn() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	failFirst := true
	s.mockBackups(testStart, func(string) error {
		if failFirst {
			failFirst = false
			return temporal.NewNonRetryableApplicationError("restic: repository locked by a running backup", "RepositoryLocked", nil)
		}
		return nil
	}, func(string) error {
		return temporal.NewNonRetryableApplicationError("volume data: file /index.db: ciphertext verification failed", restic.ErrDrillFailed, nil)
	})
	in := withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(time.Hour), DrillEvery: spec.Duration(24 * time.Hour)})
	var afterFirst, afterSecond Tenant
	s.stateAt(time.Hour+30*time.Minute, &afterFirst)
	s.env.RegisterDelayedCallback(func() {
		afterSecond = s.queryState()
		s.env.CancelWorkflow()
	}, 2*time.Hour+30*time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Equal(StateActive, afterFirst.State)
	s.Contains(afterFirst.Backups.LastError, "repository locked")
	s.Empty(afterFirst.Backups.List)
	s.Empty(afterSecond.Backups.LastError, "a success clears the last error")
	s.Require().Len(afterSecond.Backups.List, 1)
	d := afterSecond.Backups.LastDrill
	s.Require().NotNil(d)
	s.Equal(DrillFailed, d.Outcome)
	s.Contains(d.Error, "ciphertext verification failed")
	s.Equal(d, afterSecond.Backups.List[0].Drill)
	s.Equal(StateActive, afterSecond.State)
}

func (s *provisionSuite) TestBackupRefusedUnlessActive() {
	s.mockRuntime(nil, func() error {
		return temporal.NewNonRetryableApplicationError("never healthy", "ServiceUnhealthy", nil)
	})
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateBackup, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { rejected = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, BackupRequest{By: "ops"})
	}, 0)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(rejected, &appErr), "%v", rejected)
	s.Equal(ErrBackupRefused, appErr.Type())
	s.Empty(callsOf(s.recorded(), "TakeBackup"))
}

// mockRestore mocks RestoreBackup (restore decides its outcome per
// backup) and the stop and start of services around it.
func (s *provisionSuite) mockRestore(restore func(id string) error) {
	s.mockDecommission(nil) // StopServices, StartServices
	r0 := &restic.Activities{}
	s.env.RegisterActivity(r0.RestoreBackup)
	var r *restic.Activities
	s.env.OnActivity(r.RestoreBackup, mock.Anything, mock.Anything).Return(func(_ context.Context, in restic.RestoreInput) (restic.Restored, error) {
		call := fmt.Sprintf("RestoreBackup %s dumps %d", in.ID, len(in.Dumps))
		if in.Offsite {
			call += " from off-site"
		}
		s.record(call)
		if restore != nil {
			if err := restore(in.ID); err != nil {
				return restic.Restored{}, err
			}
		}
		return restic.Restored{ID: in.ID}, nil
	})
}

// restoreAt sends the restoreBackup Update at simulated time at.
func (s *provisionSuite) restoreAt(at time.Duration, id string, out *BackupRestore, rejected *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateRestoreBackup, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { *rejected = err }, OnAccept: func() {},
			OnComplete: func(v any, err error) {
				if r, ok := v.(BackupRestore); ok {
					*out = r
				}
			},
		}, RestoreBackupRequest{Backup: id, By: "ops"})
	}, at)
}

// onDemandAt asks for a backup at simulated time at.
func (s *provisionSuite) onDemandAt(at time.Duration, out *BackupAccepted) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateBackup, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("rejected", err.Error()) }, OnAccept: func() {},
			OnComplete: func(v any, _ error) { *out = v.(BackupAccepted) },
		}, BackupRequest{By: "ops"})
	}, at)
}

func (s *provisionSuite) TestRestoreToABackupTakesASafetyBackupDrillsThenRestores() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	s.mockRestore(nil)
	var first BackupAccepted
	var accepted BackupRestore
	var rejected, unknown error
	var st Tenant
	s.onDemandAt(time.Hour, &first)
	s.env.RegisterDelayedCallback(func() {
		s.restoreAt(0, "no-such-backup", &BackupRestore{}, &unknown)
		s.restoreAt(0, first.ID, &accepted, &rejected)
	}, 2*time.Hour)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(24 * time.Hour), Keep: spec.Keep{Last: 1}}))

	s.Require().NoError(rejected)
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(unknown, &appErr), "%v", unknown)
	s.Equal(ErrBackupNotFound, appErr.Type())
	s.Equal(RestoreQueued, accepted.Phase)

	r := st.Backups.Restore
	s.Require().NotNil(r)
	s.Equal(RestoreSucceeded, r.Phase, r.Error)
	s.NotEmpty(r.SafetyBackup)
	// Safety backup, drills of it and of the chosen one, app stopped,
	// restore, all started.
	s.Equal([]string{
		"TakeBackup " + r.SafetyBackup + " before-restore volumes [data] dumps 1",
		"DrillBackup " + r.SafetyBackup + " offsite=false dumps 1",
		"DrillBackup " + first.ID + " offsite=false dumps 1",
		"StopServices app",
		"RestoreBackup " + first.ID + " dumps 1",
		"StartServices",
		"WaitHealthy",
	}, sinceCall(s.recorded(), "TakeBackup "+r.SafetyBackup))
	s.Equal(StateActive, st.State)
	// The retention keeps one backup, but the chosen one survived the
	// safety backup's prune, and the safety backup stays pinned.
	s.Equal([]string{r.SafetyBackup}, st.Backups.Pinned)
}

func (s *provisionSuite) TestFailedRestorePutsTheSafetyBackupBack() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	var first BackupAccepted
	s.mockRestore(func(id string) error {
		if id == first.ID {
			return temporal.NewNonRetryableApplicationError("the dump of db does not load", restic.ErrRestoreFailed, nil)
		}
		return nil
	})
	var accepted BackupRestore
	var rejected error
	var st Tenant
	s.onDemandAt(time.Hour, &first)
	s.env.RegisterDelayedCallback(func() { s.restoreAt(0, first.ID, &accepted, &rejected) }, 2*time.Hour)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	r := st.Backups.Restore
	s.Require().NotNil(r)
	s.Equal(RestoreFailed, r.Phase)
	s.Contains(r.Error, "the tenant serves its data as before")
	s.Equal([]string{
		"RestoreBackup " + first.ID + " dumps 1", "StartServices", "WaitHealthy",
		"StopServices app", "RestoreBackup " + r.SafetyBackup + " dumps 1", "StartServices", "WaitHealthy",
	}, sinceCall(s.recorded(), "RestoreBackup "+first.ID))
	s.Equal(StateActive, st.State)
}

func (s *provisionSuite) TestRestoreOfAnUndrillableBackupTouchesNothing() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	var first BackupAccepted
	s.mockBackups(testStart, nil, func(id string) error {
		return temporal.NewNonRetryableApplicationError("volume data does not restore", restic.ErrDrillFailed, nil)
	})
	s.mockRestore(nil)
	var accepted BackupRestore
	var rejected error
	var st Tenant
	s.onDemandAt(time.Hour, &first)
	s.env.RegisterDelayedCallback(func() { s.restoreAt(0, first.ID, &accepted, &rejected) }, 2*time.Hour)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	r := st.Backups.Restore
	s.Require().NotNil(r)
	s.Equal(RestoreFailed, r.Phase)
	s.Contains(r.Error, "nothing was touched")
	s.Empty(callsOf(s.recorded(), "RestoreBackup"))
	s.Empty(callsOf(s.recorded(), "StopServices"))
	s.Equal(StateActive, st.State)
}

func (s *provisionSuite) TestReleaseWithBackupBeforeBacksUpFirst() {
	s.mockRuntime(nil, nil)
	s.mockCutover()
	s.env.SetStartTime(testStart)
	failing := ""
	s.mockBackups(testStart, func(string) error {
		if failing != "" {
			return temporal.NewNonRetryableApplicationError(failing, restic.ErrRepositoryDamaged, nil)
		}
		return nil
	}, nil)
	var ok, refused applyOutcome
	s.applyAt(time.Hour, ApplyInput{Release: "r1", Image: newImage, BackupBefore: true}, &ok)
	s.env.RegisterDelayedCallback(func() { failing = "ciphertext verification failed" }, 90*time.Minute)
	s.applyAt(2*time.Hour, ApplyInput{Release: "r2", Image: newImage + "2", BackupBefore: true}, &refused)
	var st Tenant
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(ok.err)
	s.Equal(OutcomeUpdated, ok.res.Outcome, ok.res.Error)
	s.NotEmpty(ok.res.Backup)
	calls := s.recorded()
	s.Less(index(calls, "TakeBackup "+ok.res.Backup+" before-release volumes [data] dumps 1", 0), index(calls, "EnsureImage "+newImage, 0),
		"the backup comes before the cut-over")
	s.Equal(OutcomeRolledBack, refused.res.Outcome)
	s.Contains(refused.res.Error, "backup before the release failed")
	s.Equal(-1, index(calls, "EnsureImage "+newImage+"2", 0), "no backup, no cut-over")
	s.Equal(newImage, st.Image, "the tenant serves the image it had")
	s.Equal(StateActive, st.State)
	s.Equal("r1", st.Backups.List[0].By)
}

func (s *provisionSuite) TestQuiesceHookReachesTheBackupWithTheRunningInstance() {
	s.mockRuntime(nil, nil)
	s.mockCutover()
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	var out applyOutcome
	s.applyAt(30*time.Minute, ApplyInput{Release: "r1", Image: newImage}, &out)
	in := withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(time.Hour),
		Quiesce: &spec.Quiesce{Service: "app", Pause: []string{"/demo-app", "pause"}, Resume: []string{"/demo-app", "resume"}}})
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 90*time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, in)
	s.Require().NoError(out.err)
	takes := callsOf(s.recorded(), "TakeBackup")
	s.Require().Len(takes, 1)
	s.Contains(takes[0], "quiesce app gen 1 [/demo-app pause]", "the hook runs in the instance that serves, after the release")
}

// A tenant with a backup policy is decommissioned through its restic
// repository: the final backup is drilled before the teardown, restored
// from during the retention, and erased (its key) at the end of it.
func (s *provisionSuite) TestDecommissionWithAPolicyUsesTheRepository() {
	s.plan = fullPlan
	s.plan.Retention = 3 * time.Hour // no legacy backup location (plan.Backup false)
	s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockBackups(testStart, nil, nil)
	s.mockRestore(nil)
	var req decomOutcome
	var retained, purged Tenant
	s.decomAt(time.Hour, UpdateRequestDecommission, DecommissionRequest{By: "ops", Force: true}, &req)
	s.stateAt(2*time.Hour, &retained)
	s.env.ExecuteWorkflow(WorkflowType, withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(24 * time.Hour), Keep: spec.Keep{Last: 1}}))
	s.Require().NoError(s.env.GetWorkflowResult(&purged), "the tenant's story ends with the retention")

	s.Require().NoError(req.err)
	d := retained.Decommission
	s.Require().NotNil(d)
	s.Equal(PhaseRetained, d.Phase, d.Error)
	s.Require().NotNil(d.Final)
	s.Nil(d.Backup, "no archive: the repository holds the data")
	s.Equal(ReasonFinal, d.Final.Reason)
	s.NotNil(d.VerifiedAt)
	s.Equal([]string{d.Final.ID}, retained.Backups.Pinned, "the final backup survives every prune of the retention")
	calls := s.recorded()
	s.Less(index(calls, "StopServices app", 0), index(calls, "TakeBackup "+d.Final.ID+" final volumes [data] dumps 1", 0))
	s.Less(index(calls, "TakeBackup "+d.Final.ID+" final volumes [data] dumps 1", 0), index(calls, "DrillBackup "+d.Final.ID+" offsite=false dumps 1", 0))
	s.Less(index(calls, "DrillBackup "+d.Final.ID+" offsite=false dumps 1", 0), index(calls, "StopServices db", 0), "the databases stop once their dump is proven")
	s.Less(index(calls, "StopServices db", 0), index(calls, "RemoveDNSRecord", 0), "torn down only after the drill")
	s.Empty(callsOf(calls, "BackupVolumes"), "no legacy archive")

	s.Equal(PhasePurged, purged.Decommission.Phase)
	s.Contains(calls, "EraseBackups acme", "the key goes at the end of the retention")
}

func (s *provisionSuite) TestRestoreDuringRetentionFromTheFinalBackup() {
	s.plan = fullPlan
	s.plan.Retention = 24 * time.Hour
	ic := s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockBackups(testStart, nil, nil)
	s.mockRestore(nil)
	s.env.RegisterDelayedCallback(func() { ic.parallel.Add(2) }, 2*time.Hour) // DNS and CMDB run again
	var req, restore decomOutcome
	var st Tenant
	s.decomAt(time.Hour, UpdateRequestDecommission, DecommissionRequest{By: "ops", Force: true}, &req)
	s.decomAt(3*time.Hour, UpdateRestore, RestoreRequest{By: "ops"}, &restore)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 5*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(24 * time.Hour)}))

	s.Require().NoError(restore.err)
	s.Equal(StateActive, st.State, st.Error)
	s.Equal(PhaseRestored, st.Decommission.Phase)
	final := st.Decommission.Final.ID
	calls := sinceCall(s.recorded(), "DrillBackup "+final) // the restore follows the decommission
	s.Less(index(calls, "StartService db", 0), index(calls, "RestoreBackup "+final+" dumps 1", 0), "the dump loads into the running database")
	s.Less(index(calls, "RestoreBackup "+final+" dumps 1", 0), index(calls, "StartService app", 0), "the app starts on its restored volume")
	s.Empty(callsOf(calls, "RestoreVolumes"), "no legacy archive")
	s.Empty(st.Backups.Pinned, "restored, the final backup is under the retention again")
}

func (s *provisionSuite) TestOpenShiftTenantsAreNotBackedUpByRestic() {
	s.mockRuntime(nil, nil)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	in := withPolicy(defaultInput(s.T()), spec.Backups{Every: spec.Duration(time.Hour)})
	in.Template.Runtime = spec.OpenShift
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateBackup, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { rejected = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, BackupRequest{By: "ops"})
	}, 90*time.Minute)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)
	s.Empty(callsOf(s.recorded(), "TakeBackup"), "no scheduled backup of claims the worker cannot read")
	s.Require().Error(rejected)
	s.Contains(rejected.Error(), "OpenShift")
}
