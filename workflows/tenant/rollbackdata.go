package tenant

import (
	"errors"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/workflows/flow"
)

// A rollback that restores data puts a tenant back on an older image and
// on the data a backup took before the release it rolls back: a new
// version that migrated the database leaves data the older one may not
// read. It is not zero-downtime: the public service stops while its data
// goes back, so no request writes to data about to be replaced, and the
// older image never starts on the newer data:
//
//	safety backup of the tenant as it is (pinned) → drills of it and of
//	the chosen backup (nothing touched until both restore) →
//	stop the public service and those whose volumes are files →
//	restore → start those again (not the public one) →
//	start the older image, healthy → switch the route →
//	retire the stopped newer instance
//
// Until the route switched, a failure removes the older instance, puts
// the safety backup back and starts the newer instance again: the tenant
// serves what it served before, and the release records it rolled back.
// Data written between the backup and the rollback is in the safety
// backup, not in the tenant.

// Steps of a rollback with data, as the progress query names them (and
// StepStopServices, as a decommission's).
const (
	StepRestoreData    = "restore data"
	StepRestartVolumes = "start file services"
)

// cutoverWithData runs the rollback above for in.RestoreBackup.
func (t *entity) cutoverWithData(ctx workflow.Context, in ApplyInput, res ApplyResult) ApplyResult {
	t.state.Progress = flow.Progress{Step: "safety backup", Total: 10}
	t.setState(ctx, StateUpdating, "")
	b := t.backups()
	b.Pinned = append(b.Pinned, in.RestoreBackup)
	defer func() {
		if i := slices.Index(b.Pinned, in.RestoreBackup); i >= 0 {
			b.Pinned = slices.Delete(b.Pinned, i, i+1)
		}
	}()
	env, err := t.template.Render(t.spec.Name, t.spec.Stage, t.secrets)
	if err != nil {
		return t.endCutover(ctx, res, OutcomeRolledBack, err.Error())
	}
	safety, err := t.safetyBackup(ctx, ReasonBeforeRelease, in.Release, "before release "+in.Release+" restores "+in.RestoreBackup)
	if err != nil {
		return t.endCutover(ctx, res, OutcomeRolledBack, err.Error())
	}
	res.Backup = safety
	if err := t.prove(ctx, env, safety, in.RestoreBackup); err != nil {
		return t.endCutover(ctx, res, OutcomeRolledBack, err.Error())
	}

	c := t.candidate(in, env)
	c.in.Drain = 0 // the newer instance is stopped already
	var undo flow.Saga
	if err := t.restoreBeside(ctx, c, &undo); err != nil {
		msg := undo.Undo(ctx, flow.ErrorMessage(err), "roll-back")
		if perr := t.putSafetyBack(ctx, env, in.RestoreBackup, safety, errors.New(msg)); perr != nil {
			msg = perr.Error()
		}
		return t.endCutover(ctx, res, OutcomeRolledBack, msg)
	}
	res.Restored = in.RestoreBackup
	return t.retirePrevious(ctx, res, c)
}

// restoreBeside stops the tenant's writers, restores the backup and
// brings the older image up on it, as far as the route switch. Each
// step that changes more than data registers its undo first; the data
// itself is put back by the caller (the safety backup).
func (t *entity) restoreBeside(ctx workflow.Context, c candidate, undo *flow.Saga) error {
	t.step(StepStopServices)
	files := slices.DeleteFunc(t.fileServices(c.env), func(s string) bool { return s == c.service.Name })
	if err := t.stopServices(ctx, append(slices.Clone(files), c.service.Name)); err != nil {
		return err
	}
	t.stepDone()

	t.step(StepRestoreData)
	if err := t.restoreData(ctx, c.env, c.in.RestoreBackup); err != nil {
		return err
	}
	t.stepDone()

	t.step(StepRestartVolumes)
	if len(files) > 0 {
		ref := t.runtimeRef()
		ref.Services = files
		if err := t.onHostLocal(ctx, localStepOptions, rt.StartServices, ref).Get(ctx, nil); err != nil {
			return err
		}
	}
	t.stepDone()
	return t.switchToCandidate(ctx, c, undo)
}
