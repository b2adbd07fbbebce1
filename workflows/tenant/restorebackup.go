package tenant

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// A restore to a backup puts an active tenant's data back as a backup
// took it, never destroying the good copy before the new one is proven:
//
//	safety backup of the tenant as it is (kept whatever the retention) →
//	drills of the safety backup and of the chosen one (each restored into
//	scratch volumes and a scratch database: both must restore before
//	anything is touched) →
//	stop the services whose volumes are restored as files →
//	restore (volumes through scratch volumes, dumps into the running
//	databases) → start, healthy
//
// If the restore fails, the safety backup is restored the same way and
// the tenant serves what it served before; the restore reports why.

// restoreBackupDue: a restore to a backup waits to run.
func (t *entity) restoreBackupDue() bool {
	b := t.state.Backups
	return b != nil && b.Restore != nil && b.Restore.Phase == RestoreQueued && t.state.State == StateActive
}

// requestRestoreBackup queues the restore; it runs as the tenant's next
// operation.
func (t *entity) requestRestoreBackup(ctx workflow.Context, in RestoreBackupRequest) (BackupRestore, error) {
	b := t.backups()
	b.Restore = &BackupRestore{Backup: in.Backup, By: in.By, RequestedAt: workflow.Now(ctx), Phase: RestoreQueued}
	t.logger(ctx).Info("restore to a backup requested", "backup", in.Backup, "by", in.By, "queued behind an operation", t.busy)
	return *b.Restore, nil
}

func (t *entity) validateRestoreBackup(ctx workflow.Context, in RestoreBackupRequest) error {
	b := t.state.Backups
	switch {
	case in.By == "":
		return flow.Refuse(ErrRestoreRefused, "a restore needs a requester (by)")
	case t.state.State != StateActive:
		return flow.Refuse(ErrRestoreRefused, "tenant %s is %s: only an active tenant is put back to a backup", t.spec.Name, t.state.State)
	case b != nil && b.Restore != nil && b.Restore.FinishedAt == nil:
		return flow.Refuse(ErrRestoreRefused, "tenant %s is being restored to backup %s already (asked by %s)", t.spec.Name, b.Restore.Backup, b.Restore.By)
	case !t.hasBackup(in.Backup):
		return flow.Refuse(ErrBackupNotFound, "tenant %s has no backup %q", t.spec.Name, in.Backup)
	}
	return nil
}

// hasBackup reports whether the tenant's list holds the backup.
func (t *entity) hasBackup(id string) bool {
	b := t.state.Backups
	return b != nil && slices.ContainsFunc(b.List, func(r BackupRecord) bool { return r.ID == id })
}

// restoreBackup runs the queued restore (see above).
func (t *entity) restoreBackup(ctx workflow.Context) {
	b, started := t.backups(), workflow.Now(ctx)
	r := b.Restore
	r.StartedAt = timePtr(started)
	t.setState(ctx, StateRestoring, "")
	t.state.Progress = flow.Progress{Step: "safety backup", Total: 4}
	// The chosen backup must survive the safety backup's retention.
	b.Pinned = []string{r.Backup}
	err := t.putBack(ctx, r)
	b.Pinned = slices.DeleteFunc(b.Pinned, func(id string) bool { return id == r.Backup })
	r.FinishedAt = timePtr(workflow.Now(ctx))
	outcome := "succeeded"
	r.Phase = RestoreSucceeded
	if err != nil {
		outcome, r.Phase, r.Error = "failed", RestoreFailed, err.Error()
		t.logger(ctx).Error("restore to a backup failed", "backup", r.Backup, "error", err)
	}
	t.setState(ctx, StateActive, "")
	t.countOperation(ctx, "restore-backup", outcome, started)
}

// putBack takes the safety backup, proves the chosen one and restores it;
// once the tenant was touched, a failure restores the safety backup.
func (t *entity) putBack(ctx workflow.Context, r *BackupRestore) error {
	r.Phase = RestoreSafetyBackup
	env, _ := t.liveEnv() // rendered at provisioning already: cannot fail now
	safety, err := t.safetyBackup(ctx, ReasonBeforeRestore, r.By, "before restoring "+r.Backup)
	if err != nil {
		return err
	}
	r.SafetyBackup = safety
	r.Phase = RestoreProving
	if err := t.prove(ctx, env, safety, r.Backup); err != nil {
		return err
	}

	r.Phase = RestoreRestoring
	t.step("restore")
	if err := t.restoreInto(ctx, env, r.Backup); err != nil {
		r.Phase = RestoreRollingBack
		return t.putSafetyBack(ctx, env, r.Backup, safety, err)
	}
	t.stepDone()
	return nil
}

// safetyBackup backs the tenant up as it is, pinned: it stands for the
// live data while a restore replaces it.
func (t *entity) safetyBackup(ctx workflow.Context, reason, by, note string) (string, error) {
	b := t.backups()
	safety := t.newBackup(ctx, reason, by, note)
	b.Pinned = append(b.Pinned, safety.ID)
	if _, err := t.backUp(ctx, safety); err != nil {
		return "", fmt.Errorf("the safety backup failed, nothing was touched: %s", flow.ErrorMessage(err))
	}
	t.stepDone()
	return safety.ID, nil
}

// prove drills each backup (restored into scratch volumes and a scratch
// database): all must restore before the live data goes. The safety
// backup is proved too: it shares the repository's blobs with older
// backups, so a damaged pack would damage it as well.
func (t *entity) prove(ctx workflow.Context, env spec.Environment, ids ...string) error {
	t.step(StepDrill)
	for _, id := range ids {
		var drilled restic.Drill
		if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), rs.DrillBackup,
			restic.DrillInput{Tenant: t.spec.Name, ID: id, Dumps: dumpedServices(env)}).Get(ctx, &drilled); err != nil {
			return fmt.Errorf("backup %s does not restore, nothing was touched: %s", id, flow.ErrorMessage(err))
		}
	}
	t.stepDone()
	return nil
}

// putSafetyBack restores the safety backup after the restore of id
// failed with err, and says how the tenant was left.
func (t *entity) putSafetyBack(ctx workflow.Context, env spec.Environment, id, safety string, err error) error {
	t.step("put the safety backup back")
	if rerr := t.restoreInto(ctx, env, safety); rerr != nil {
		return fmt.Errorf("restore of %s failed (%s), and so did putting the safety backup %s back: %s; the tenant may be down",
			id, flow.ErrorMessage(err), safety, flow.ErrorMessage(rerr))
	}
	return fmt.Errorf("restore of %s failed, the tenant serves its data as before (safety backup %s put back): %s",
		id, safety, flow.ErrorMessage(err))
}

// restoreInto stops the services whose volumes are restored as files,
// restores the backup and starts them again, healthy. The services are
// started again whatever happened.
func (t *entity) restoreInto(ctx workflow.Context, env spec.Environment, id string) error {
	if err := t.stopServices(ctx, t.fileServices(env)); err != nil {
		return err
	}
	err := t.restoreData(ctx, env, id)
	if serr := t.restartServices(ctx, env); err == nil {
		err = serr
	}
	return err
}

// restoreData restores the backup into the tenant's volumes and its
// running databases; the services of the volumes are stopped.
func (t *entity) restoreData(ctx workflow.Context, env spec.Environment, id string) error {
	var restored restic.Restored
	return workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), rs.RestoreBackup, restic.RestoreInput{
		Tenant: t.spec.Name, Owner: t.state.ProvisionID, Runtime: t.template.Runtime, ID: id, Dumps: dumpedServices(env),
	}).Get(ctx, &restored)
}

// fileServices are the services that mount a volume backed up as files:
// they are stopped while it is replaced. Dumped services keep running,
// their restore command loads the dump.
func (t *entity) fileServices(env spec.Environment) []string {
	files := map[string]bool{}
	for _, v := range archivedVolumes(env) {
		files[v] = true
	}
	var out []string
	for _, s := range env.Services {
		if s.Backup != nil {
			continue
		}
		if slices.ContainsFunc(s.Mounts, func(m spec.Mount) bool { return files[m.Volume] }) {
			out = append(out, s.Name)
		}
	}
	return out
}
