package tenant

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

const testRetention = 30 * 24 * time.Hour

// testStart is when decommission tests start: backup ids derive from it.
var testStart = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// mockDecommission mocks what only decommission, restore and purge use;
// verify, when set, decides VerifyBackup's outcome.
func (s *provisionSuite) mockDecommission(verify func() error) {
	b0, l0, c0 := &backup.Activities{}, &ldap.Activities{}, &cmdb.Activities{}
	for _, fn := range []any{b0.BackupVolumes, b0.VerifyBackup, b0.RestoreVolumes, b0.RemoveBackup, b0.DumpServices, b0.LoadDumps,
		l0.DisableAccounts, l0.EnableAccounts, c0.MarkObsoleteInCMDB} {
		s.env.RegisterActivity(fn)
	}
	var a *runtimes.Activities
	s.env.OnActivity(a.StopServices, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.StopInput) error {
		s.record("StopServices " + strings.Join(in.Services, ","))
		return nil
	})
	s.env.OnActivity(a.StartServices, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.TenantRef) error {
		return s.undone(strings.TrimSpace("StartServices " + strings.Join(in.Services, ",")))
	})
	var b *backup.Activities
	s.env.OnActivity(b.BackupVolumes, mock.Anything, mock.Anything).Return(func(_ context.Context, in backup.BackupInput) (backup.Backup, error) {
		s.record(fmt.Sprintf("BackupVolumes %s %v dumps %v", in.ID, in.Volumes, in.Dumps))
		return backup.Backup{ID: in.ID, Location: "/backups/acme/" + in.ID, ManifestSHA256: "abc123", DataBytes: 42, Files: 3}, nil
	})
	s.env.OnActivity(b.VerifyBackup, mock.Anything, mock.Anything).Return(func(_ context.Context, ref backup.BackupRef) (backup.Verification, error) {
		s.record("VerifyBackup " + ref.ManifestSHA256)
		if verify != nil {
			return backup.Verification{}, verify()
		}
		return backup.Verification{Files: 3, DataBytes: 42}, nil
	})
	s.env.OnActivity(b.RestoreVolumes, mock.Anything, mock.Anything).Return(func(_ context.Context, ref backup.BackupRef) (backup.Verification, error) {
		s.record("RestoreVolumes " + ref.ID)
		return backup.Verification{Files: 3, DataBytes: 42}, nil
	})
	s.env.OnActivity(b.DumpServices, mock.Anything, mock.Anything).Return(func(_ context.Context, in backup.DumpInput) error {
		s.record("DumpServices " + in.Services[0].Name)
		return nil
	})
	s.env.OnActivity(b.LoadDumps, mock.Anything, mock.Anything).Return(func(_ context.Context, ref backup.BackupRef) error {
		s.record("LoadDumps " + ref.Dumps[0].Name)
		return nil
	})
	s.env.OnActivity(b.RemoveBackup, mock.Anything, mock.Anything).Return(func(context.Context, backup.BackupRef) error { return s.undone("RemoveBackup") })
	var l *ldap.Activities
	s.env.SetStartTime(testStart)
	s.env.OnActivity(l.DisableAccounts, mock.Anything, mock.Anything).Return(func(_ context.Context, in ldap.DirectoryRef) error {
		if s.failCall == "DisableAccounts" {
			s.record("DisableAccounts")
			return temporal.NewNonRetryableApplicationError("the directory refuses", "Refused", nil)
		}
		return s.undoneBy("DisableAccounts", in.Owner, in.Adopt)
	})
	s.env.OnActivity(l.EnableAccounts, mock.Anything, mock.Anything).Return(func(_ context.Context, in ldap.DirectoryRef) error {
		return s.undoneBy("EnableAccounts", in.Owner, in.Adopt)
	})
	var c *cmdb.Activities
	s.env.OnActivity(c.MarkObsoleteInCMDB, mock.Anything, mock.Anything).Return(func(_ context.Context, in cmdb.CMDBRef) error {
		return s.undoneBy("MarkObsoleteInCMDB", in.Owner, in.Adopt)
	})
}

type decomOutcome struct {
	d        Decommission
	err      error
	rejected bool
}

// updateAt sends one of the decommission Updates at simulated time at.
func (s *provisionSuite) decomAt(at time.Duration, update string, arg any, out *decomOutcome) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(update, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { out.err, out.rejected = err, true },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				out.err = err
				if d, ok := v.(Decommission); ok {
					out.d = d
				}
			},
		}, arg)
	}, at)
}

func (s *provisionSuite) stateAt(at time.Duration, st *Tenant) {
	s.env.RegisterDelayedCallback(func() { *st = s.queryState() }, at)
}

// since returns the calls recorded after the first call named first.
func since(calls []string, first string) []string {
	i := slices.Index(calls, first)
	if i < 0 {
		return nil
	}
	return calls[i:]
}

func (s *provisionSuite) TestDecommissionWaitsForConfirmationThenBacksUpBeforeTearingDown() {
	s.plan = fullPlan
	s.plan.Backup, s.plan.Retention = true, testRetention
	s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockDecommission(nil)
	var req, confirm, again decomOutcome
	var pending, done Tenant
	s.decomAt(time.Hour, UpdateRequestDecommission, DecommissionRequest{By: "distributor", Reason: "end of contract"}, &req)
	s.stateAt(90*time.Minute, &pending)
	s.decomAt(2*time.Hour, UpdateConfirmDecommission, DecommissionConfirmation{By: "ops"}, &confirm)
	s.decomAt(3*time.Hour, UpdateConfirmDecommission, DecommissionConfirmation{By: "ops"}, &again)
	s.stateAt(4*time.Hour, &done)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError(), "the tenant's story ends when retention is over")

	s.NoError(req.err)
	s.Equal(PhaseAwaitingConfirmation, req.d.Phase)
	s.Equal(StateActive, pending.State, "nothing happens before the confirmation")
	s.Equal("end of contract", pending.Decommission.Reason)
	s.NoError(confirm.err)
	s.True(again.rejected, "a second confirmation is refused")

	calls := s.recorded()
	decom := since(calls, "RemoveRoute")
	s.Require().GreaterOrEqual(len(decom), 7, calls)
	id := "decommission-20261124t020000z"
	s.Equal([]string{"RemoveRoute", "StopServices app", "DumpServices db", "StopServices db", "BackupVolumes " + id + " [data] dumps [db]", "VerifyBackup abc123"}, decom[:6],
		"traffic off, app stopped, the db dumped while it runs then stopped, the other volumes archived, all verified before anything is torn down")
	teardown := decom[6:12]
	s.ElementsMatch([]string{"StopSupervision", "RemoveDNSRecord", "DisableAccounts", "MarkObsoleteInCMDB", "RemoveServices", "RemoveNetwork"}, teardown)
	s.NotContains(calls, "RemoveFromCMDB", "the CMDB history is never deleted")
	s.Equal([]string{"RemoveBackup", "RemoveDirectory", "RemoveVolumes"}, sortedTail(decom[12:]), "retention end deletes what was kept")

	s.Equal(StateDecommissioned, done.State, done.Error)
	d := done.Decommission
	s.Require().NotNil(d)
	s.Equal(PhaseRetained, d.Phase)
	s.Equal("distributor", d.RequestedBy)
	s.Equal("ops", d.ConfirmedBy)
	s.Equal("/backups/acme/"+id, d.Backup.Location)
	s.Equal("abc123", d.Backup.ManifestSHA256)
	s.NotNil(d.VerifiedAt)
	s.Equal(d.DecommissionedAt.Add(testRetention), *d.RetentionUntil)
	s.Empty(done.Services)
	kinds := []string{}
	for _, r := range done.Resources {
		kinds = append(kinds, string(r.Kind))
	}
	s.ElementsMatch([]string{"ldap", "cmdb"}, kinds, "only what retention keeps (disabled accounts, obsolete CMDB entry) is listed")

	var final Tenant
	s.Require().NoError(s.env.GetWorkflowResult(&final))
	s.Equal(PhasePurged, final.Decommission.Phase)
	s.Empty(final.Accounts)
	s.Equal(string(StateDecommissioned), s.keyword(searchattr.TenantState))

	// Decommission and purge act on the provisioning run's objects (and
	// may take over the tenant's from before runs were stamped).
	var later []string
	for _, c := range s.requireOwners(5)[5:] {
		later = append(later, c.call)
	}
	s.ElementsMatch([]string{"RemoveRoute", "StopSupervision", "RemoveDNSRecord", "DisableAccounts", "MarkObsoleteInCMDB", "RemoveDirectory"}, later)
}

func sortedTail(calls []string) []string {
	out := slices.Clone(calls)
	slices.Sort(out)
	return out
}

func (s *provisionSuite) TestFailedVerificationPutsTheTenantBackInService() {
	s.plan = fullPlan
	s.plan.Backup, s.plan.Retention = true, testRetention
	s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockDecommission(func() error {
		return temporal.NewNonRetryableApplicationError("volume data: checksum of hits differs", "BackupVerificationFailed", nil)
	})
	var req decomOutcome
	var st Tenant
	s.decomAt(time.Hour, UpdateRequestDecommission, DecommissionRequest{By: "ops", Force: true}, &req)
	s.stateAt(2*time.Hour, &st)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.NoError(req.err)
	s.Equal(PhaseConfirmed, req.d.Phase, "force skips the confirmation")
	calls := since(s.recorded(), "RemoveRoute")
	s.Require().GreaterOrEqual(len(calls), 5, calls)
	s.Equal([]string{"RemoveBackup", "StartServices", "WaitHealthy", "EnsureRoute"}, calls[len(calls)-4:],
		"undone in reverse: partial backup removed, services started and healthy, route back")
	for _, torn := range []string{"StopSupervision", "RemoveDNSRecord", "DisableAccounts", "MarkObsoleteInCMDB", "RemoveServices", "RemoveNetwork"} {
		s.NotContains(calls, torn, "nothing is torn down without a verified backup")
	}
	s.Equal(StateActive, st.State)
	s.Equal(PhaseFailed, st.Decommission.Phase)
	s.Contains(st.Decommission.Error, "checksum of hits differs")
	s.Nil(st.Decommission.Backup)
	s.Len(st.Resources, 5, "the tenant keeps every registration")
	s.Contains(st.Error, "serves as before")
}

func (s *provisionSuite) TestRestoreDuringRetentionBringsTheTenantBack() {
	s.plan = fullPlan
	s.plan.Backup, s.plan.Retention = true, testRetention
	ic := s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockDecommission(nil)
	var req, restore, tooLate decomOutcome
	var st Tenant
	s.decomAt(time.Hour, UpdateRequestDecommission, DecommissionRequest{By: "ops", Force: true}, &req)
	s.env.RegisterDelayedCallback(func() { ic.parallel.Add(2) }, 2*time.Hour) // DNS and CMDB run again
	s.decomAt(24*time.Hour, UpdateRestore, RestoreRequest{By: "distributor"}, &restore)
	s.decomAt(25*time.Hour, UpdateRestore, RestoreRequest{By: "distributor"}, &tooLate)
	s.stateAt(60*24*time.Hour, &st) // long past the retention end
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 61*24*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.NoError(restore.err)
	s.Equal(PhaseRestoreRequested, restore.d.Phase)
	s.True(tooLate.rejected, "an active tenant cannot be restored")
	calls := since(s.recorded(), "RestoreVolumes decommission-20261124t010000z")
	s.Require().NotEmpty(calls)
	s.Equal("CreateVolumes", s.recorded()[len(s.recorded())-len(calls)-1], "volumes exist before they are filled")
	s.Equal([]string{"RestoreVolumes decommission-20261124t010000z", "StartService db", "LoadDumps db", "StartService app"}, calls[:4],
		"the db first, filled from its dump, then the app")
	s.Subset(calls, []string{"StartService app", "StartService db", "WaitHealthy", "EnsureRoute", "EnsureDNSRecord", "EnableAccounts", "RegisterInCMDB", "StartSupervision", "RemoveBackup"})
	s.NotContains(calls, "RemoveVolumes", "a restored tenant's data is not purged at the old retention end")
	var restored []string
	for _, c := range s.requireOwners(5)[5:] {
		restored = append(restored, c.call)
	}
	s.Subset(restored, []string{"EnsureRoute", "EnsureDNSRecord", "EnableAccounts", "RegisterInCMDB", "StartSupervision"},
		"the restore registers the tenant again under its provisioning run")

	s.Equal(StateActive, st.State, st.Error)
	s.Equal(PhaseRestored, st.Decommission.Phase)
	s.Equal("distributor", st.Decommission.RestoredBy)
	s.Nil(st.Decommission.RetentionUntil)
	s.Equal(fullPlan.URL, st.URL, "back on its URL")
	s.Len(st.Services, 2)
	kinds := []string{}
	for _, r := range st.Resources {
		kinds = append(kinds, string(r.Kind))
	}
	s.ElementsMatch([]string{"route", "dns", "ldap", "cmdb", "supervision"}, kinds)
}

func (s *provisionSuite) TestDecommissionRefusals() {
	s.plan = fullPlan
	s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockDecommission(nil)
	var confirmNone, restoreActive, noBy, req, twice, cancel, confirmCancelled, forceNoBackup decomOutcome
	var st Tenant
	s.decomAt(time.Hour, UpdateConfirmDecommission, DecommissionConfirmation{By: "ops"}, &confirmNone)
	s.decomAt(time.Hour+time.Minute, UpdateRestore, RestoreRequest{By: "ops"}, &restoreActive)
	s.decomAt(time.Hour+2*time.Minute, UpdateRequestDecommission, DecommissionRequest{}, &noBy)
	s.decomAt(2*time.Hour, UpdateRequestDecommission, DecommissionRequest{By: "distributor"}, &req)
	s.decomAt(2*time.Hour+time.Minute, UpdateRequestDecommission, DecommissionRequest{By: "ops"}, &twice)
	s.decomAt(3*time.Hour, UpdateCancelDecommission, DecommissionConfirmation{By: "distributor"}, &cancel)
	s.decomAt(3*time.Hour+time.Minute, UpdateConfirmDecommission, DecommissionConfirmation{By: "ops"}, &confirmCancelled)
	// Without a backup location nothing is touched.
	s.decomAt(4*time.Hour, UpdateRequestDecommission, DecommissionRequest{By: "ops", Force: true}, &forceNoBackup)
	s.stateAt(5*time.Hour, &st)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 6*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	for what, o := range map[string]decomOutcome{"confirm without request": confirmNone, "restore an active tenant": restoreActive,
		"request without requester": noBy, "second request": twice, "confirm a cancelled request": confirmCancelled} {
		s.True(o.rejected, what)
	}
	s.Contains(twice.err.Error(), "already requested by distributor")
	s.NoError(req.err)
	s.NoError(cancel.err)
	s.Equal(PhaseCancelled, cancel.d.Phase)
	s.NoError(forceNoBackup.err)
	s.Equal(StateActive, st.State)
	s.Equal(PhaseFailed, st.Decommission.Phase)
	s.Contains(st.Decommission.Error, "TENANTFLOW_BACKUP_DIR")
	s.NotContains(s.recorded(), "RemoveRoute")
	s.NotContains(s.recorded(), "StopServices app")
}

func (s *provisionSuite) TestRetentionSurvivesContinueAsNew() {
	s.plan = fullPlan
	s.plan.Backup, s.plan.Retention = true, testRetention
	s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockDecommission(nil)
	var req decomOutcome
	s.decomAt(time.Hour, UpdateRequestDecommission, DecommissionRequest{By: "ops", Force: true}, &req)
	s.env.RegisterDelayedCallback(func() { s.env.SetContinueAsNewSuggested(true) }, 10*24*time.Hour)
	s.env.RegisterDelayedCallback(func() { _ = s.queryState() }, 10*24*time.Hour+time.Minute) // wakes the workflow
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	var can *workflow.ContinueAsNewError
	s.Require().ErrorAs(s.env.GetWorkflowError(), &can, "a long retention renews its history")
	var next Input
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Require().NotNil(next.State.Decommission)
	d := next.State.Decommission
	s.Equal(PhaseRetained, d.Phase)
	s.Equal(testStart.Add(time.Hour+testRetention), *d.RetentionUntil)
	s.NotContains(s.recorded(), "RemoveVolumes", "nothing purged before the retention end")

	// The next run waits only for what is left of the retention, then purges.
	s.SetupTest()
	s.plan = fullPlan
	s.plan.Backup, s.plan.Retention = true, testRetention
	s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	s.mockDecommission(nil)
	s.env.SetStartTime(testStart.Add(10 * 24 * time.Hour))
	s.env.ExecuteWorkflow(WorkflowType, next)
	s.Require().NoError(s.env.GetWorkflowError())
	var final Tenant
	s.Require().NoError(s.env.GetWorkflowResult(&final))
	s.Equal(PhasePurged, final.Decommission.Phase)
	s.Equal(*d.RetentionUntil, *final.Decommission.PurgedAt, "purged at the original retention end")
	s.ElementsMatch([]string{"RemoveVolumes", "RemoveDirectory", "RemoveBackup"}, s.recorded())
}

// A decommission is asked of an active tenant only: while a cut-over runs
// (updating) the request is refused, as the API documents, and nothing is
// queued behind it.
func (s *provisionSuite) TestDecommissionRefusedWhileUpdating() {
	s.plan = fullPlan
	ic := s.mockIntegrations("", "")
	s.env.RegisterDelayedCallback(func() { ic.parallel.Add(1) }, 30*time.Minute) // the release records its image in the CMDB
	s.mockRuntime(nil, nil)
	s.mockCutover()
	s.mockDecommission(nil)
	var out applyOutcome
	var during decomOutcome
	var mid Tenant
	s.applyAt(time.Hour, ApplyInput{Release: "r1", Image: newImage, Drain: spec.Duration(10 * time.Minute)}, &out)
	s.stateAt(time.Hour+5*time.Minute, &mid)
	s.decomAt(time.Hour+5*time.Minute, UpdateRequestDecommission, DecommissionRequest{By: "distributor"}, &during)
	var st Tenant
	s.stateAt(2*time.Hour, &st)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Equal(StateUpdating, mid.State)
	s.True(during.rejected)
	s.Contains(during.err.Error(), "updating: only an active or suspended tenant can be decommissioned")
	s.Equal(OutcomeUpdated, out.res.Outcome)
	s.Equal(StateActive, st.State)
	s.Nil(st.Decommission, "nothing was queued")
}
