package tenant

import (
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// retain waits until the retention ends (then purges and reports true:
// the tenant is gone), a restore takes the tenant back, or the history
// should be renewed.
func (t *entity) retain(ctx workflow.Context) (bool, error) {
	d := t.state.Decommission
	left := d.RetentionUntil.Sub(workflow.Now(ctx))
	if left > 0 {
		woken, err := workflow.AwaitWithTimeout(ctx, left, func() bool {
			return d.Phase != PhaseRetained || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
		})
		if err != nil || woken {
			return false, err
		}
	}
	t.busy = true
	defer func() { t.busy = false }()
	t.purge(ctx)
	return true, nil
}

// purge deletes what retention kept: the volumes, the directory and the
// backup. The CMDB entry stays, obsolete, with its history.
func (t *entity) purge(ctx workflow.Context) {
	d := t.state.Decommission
	started := workflow.Now(ctx)
	d.moveTo(PhasePurging)
	t.step(StepPurge)
	tctx := workflow.WithActivityOptions(ctx, teardownOptions)
	f := flow.NewGroup(ctx)
	run := f.Run
	run("remove volumes", func(ctx workflow.Context) error {
		return t.onHostLocal(ctx, teardownLocalOptions, rt.RemoveVolumes,
			t.runtimeRef()).Get(ctx, nil)
	})
	if _, ok := t.resource(KindLDAP); ok {
		run("remove LDAP accounts", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(tctx, ld.RemoveDirectory, ldap.DirectoryRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
		})
	}
	if d.Backup != nil {
		run("remove backup", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(t.onHost(tctx), bk.RemoveBackup, t.backupRef()).Get(ctx, nil)
		})
	}
	if d.Final != nil || t.state.Backups != nil {
		// Crypto-erasure: without the key no copy of the repository, the
		// append-only off-site one included, can be read.
		run("erase backups", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(t.onHost(tctx), rs.EraseBackups, restic.EraseInput{Tenant: t.spec.Name}).Get(ctx, nil)
		})
	}
	if p := t.state.Placement; p != nil {
		// Its volumes are gone: the host's room is free again.
		run("release host", func(ctx workflow.Context) error {
			return t.releaseHost(tctx, p.Host)
		})
	}
	errs := f.Wait(ctx)
	now := workflow.Now(ctx)
	d.moveTo(PhasePurged)
	d.PurgedAt = &now
	var kept []Resource
	for _, r := range t.state.Resources {
		if r.Kind == KindCMDB {
			kept = append(kept, r)
		}
	}
	t.state.Resources, t.state.Accounts = kept, nil
	msg := ""
	if errs != nil {
		msg = "purge incomplete: " + errs.Error()
		d.Error = msg
	}
	t.step("")
	t.setState(ctx, StateDecommissioned, msg)
	outcome := "succeeded"
	if errs != nil {
		outcome = "failed"
	}
	t.countOperation(ctx, "purge", outcome, started)
	t.logger(ctx).Info("retention ended: tenant data deleted", "errors", msg)
}
