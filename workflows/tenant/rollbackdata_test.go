package tenant

import (
	"errors"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/restic"
)

// rollBackWithData takes an on-demand backup at 1 h, then at 2 h applies
// newImage restoring it, as a rollback with restoreData does.
func (s *provisionSuite) rollBackWithData(pull func(string) error, restore func(id string) error) (first BackupAccepted, out applyOutcome, st Tenant) {
	s.mockRuntime(nil, nil)
	s.mockCutoverPulling(pull)
	s.env.SetStartTime(testStart)
	s.mockBackups(testStart, nil, nil)
	s.mockRestore(func(id string) error {
		if id == first.ID && restore != nil {
			return restore(id)
		}
		return nil
	})
	s.onDemandAt(time.Hour, &first)
	s.env.RegisterDelayedCallback(func() {
		s.applyAt(0, ApplyInput{Release: "rb", Image: newImage, RestoreBackup: first.ID}, &out)
	}, 2*time.Hour)
	s.env.RegisterDelayedCallback(func() { st = s.queryState(); s.env.CancelWorkflow() }, 3*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	return first, out, st
}

func (s *provisionSuite) TestRollbackWithDataRestoresBeforeTheOlderImageStarts() {
	first, out, st := s.rollBackWithData(func(string) error { return nil }, nil)

	s.Require().NoError(out.err)
	s.Equal(OutcomeUpdated, out.res.Outcome, out.res.Error)
	s.Equal(first.ID, out.res.Restored)
	safety := out.res.Backup
	s.NotEmpty(safety)
	// The newer instance stops before the data goes back, and the older
	// image starts only on the restored data; the stopped instance is
	// retired once the route points at the older one.
	s.Equal([]string{
		"TakeBackup " + safety + " before-release volumes [data] dumps 1",
		"DrillBackup " + safety + " offsite=false dumps 1",
		"DrillBackup " + first.ID + " offsite=false dumps 1",
		"StopServices app",
		"RestoreBackup " + first.ID + " dumps 1",
		"EnsureImage " + newImage,
		"StartService app",
		"WaitHealthy",
		"RetireService app keep=1",
	}, withoutCalls(sinceCall(s.recorded(), "TakeBackup "+safety), "RegisterInCMDB"))
	s.Equal(newImage, st.Image)
	s.Equal(StateActive, st.State)
	s.Empty(st.Error)
	s.Contains(st.Backups.Pinned, safety, "the safety backup outlives the retention")
	s.NotContains(st.Backups.Pinned, first.ID, "the restored backup is unpinned once done")
}

func (s *provisionSuite) TestRollbackWithDataPutsTheSafetyBackupBackWhenTheOlderImageFails() {
	first, out, st := s.rollBackWithData(func(img string) error {
		if img == newImage {
			return temporal.NewNonRetryableApplicationError("manifest unknown", "ImageNotFound", nil)
		}
		return nil
	}, nil)

	s.Require().NoError(out.err)
	s.Equal(OutcomeRolledBack, out.res.Outcome)
	s.Contains(out.res.Error, "the tenant serves its data as before")
	s.Empty(out.res.Restored)
	safety := out.res.Backup
	s.Equal([]string{
		"RestoreBackup " + first.ID + " dumps 1",
		"EnsureImage " + newImage,
		"StopServices app",
		"RestoreBackup " + safety + " dumps 1",
		"StartServices",
		"WaitHealthy",
	}, sinceCall(s.recorded(), "RestoreBackup "+first.ID))
	s.NotEqual(newImage, st.Image, "the tenant keeps the image it had")
	s.Equal(StateActive, st.State)
}

func (s *provisionSuite) TestRollbackWithDataTouchesNothingWhenTheRestoreFails() {
	first, out, st := s.rollBackWithData(func(string) error { return nil }, func(string) error {
		return temporal.NewNonRetryableApplicationError("the dump of db does not load", restic.ErrRestoreFailed, nil)
	})

	s.Equal(OutcomeRolledBack, out.res.Outcome)
	s.Contains(out.res.Error, "the dump of db does not load")
	s.Equal(-1, index(s.recorded(), "EnsureImage "+newImage, 0), "no older image on data that did not restore")
	s.Equal([]string{
		"RestoreBackup " + first.ID + " dumps 1",
		"StopServices app",
		"RestoreBackup " + out.res.Backup + " dumps 1",
		"StartServices",
		"WaitHealthy",
	}, sinceCall(s.recorded(), "RestoreBackup "+first.ID))
	s.Equal(StateActive, st.State)
}

func (s *provisionSuite) TestRollbackWithAnUnknownBackupIsRefused() {
	s.mockRuntime(nil, nil)
	s.mockCutover()
	s.env.SetStartTime(testStart)
	var out applyOutcome
	s.applyAt(time.Hour, ApplyInput{Release: "rb", Image: newImage, RestoreBackup: "20250101t000000z-1"}, &out)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(out.err, &appErr), "%v", out.err)
	s.Equal(ErrBackupNotFound, appErr.Type())
	s.Equal(-1, index(s.recorded(), "EnsureImage "+newImage, 0))
}

// withoutCalls drops the calls starting with prefix (those that run
// beside the steps, in no fixed order).
func withoutCalls(calls []string, prefix string) []string {
	return slices.DeleteFunc(slices.Clone(calls), func(c string) bool { return strings.HasPrefix(c, prefix) })
}
