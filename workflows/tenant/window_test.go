package tenant

import (
	"time"
)

// Monday 7 December 2026, 10:00 UTC.
var windowTestStart = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// A release arriving outside the tenant's window changes nothing and
// says when the window opens; inside it, or with ops' override, the
// tenant is cut over. The window can be set and removed while it lives.
func (s *provisionSuite) TestCutoverOnlyInsideTheMaintenanceWindow() {
	s.env.SetStartTime(windowTestStart)
	s.mockRuntime(nil, nil)
	s.mockCutover()
	in := defaultInput(s.T())
	in.Spec.MaintenanceWindow = "Sun 02:00-05:00 Europe/Paris"

	var closed, overridden, tuesday applyOutcome
	s.applyAt(time.Hour, ApplyInput{Release: "r1", Image: newImage}, &closed)
	var badWindow, noBy error
	s.updateAt(2*time.Hour, UpdateConfigure, ConfigureRequest{By: "ops", MaintenanceWindow: ptr("Sunday 02:00-05:00 UTC")}, &badWindow)
	s.updateAt(2*time.Hour, UpdateConfigure, ConfigureRequest{MaintenanceWindow: ptr("")}, &noBy)
	var before Tenant
	s.stateAt(2*time.Hour, &before)
	s.applyAt(3*time.Hour, ApplyInput{Release: "r2", Image: newImage, Override: &WindowOverride{By: "ops", Reason: "CVE-2026-1234"}}, &overridden)
	// Tuesday 12:00-13:00 UTC: set on Monday, a release on Tuesday at
	// 12:30 goes.
	var setErr error
	s.updateAt(4*time.Hour, UpdateConfigure, ConfigureRequest{By: "ops", MaintenanceWindow: ptr("tue 12:00-13:00 UTC")}, &setErr)
	var set Tenant
	s.stateAt(5*time.Hour, &set)
	s.applyAt(26*time.Hour+30*time.Minute, ApplyInput{Release: "r3", Image: "registry.test/demo-app@sha256:" + flowHex('3')}, &tuesday)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 30*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)

	s.Require().NoError(closed.err)
	s.Equal(OutcomeOutsideWindow, closed.res.Outcome)
	paris, _ := time.LoadLocation("Europe/Paris")
	s.Require().NotNil(closed.res.WindowOpensAt)
	s.Equal(time.Date(2026, 12, 13, 2, 0, 0, 0, paris), closed.res.WindowOpensAt.In(paris))
	s.Contains(closed.res.Error, "outside its maintenance window (Sun 02:00-05:00 Europe/Paris)")
	s.Equal("Sun 02:00-05:00 Europe/Paris", before.MaintenanceWindow)
	s.Equal("tenantflow/demo-app:dev", before.Image, "nothing changed outside the window")

	s.Equal(ErrConfigureRefused, name(badWindow))
	s.Contains(badWindow.Error(), `maintenanceWindow: day "Sunday"`)
	s.Contains(noBy.Error(), "needs a requester")

	s.Require().NoError(overridden.err)
	s.Equal(OutcomeUpdated, overridden.res.Outcome, "ops overrode the window")

	s.Require().NoError(setErr)
	s.Equal("tue 12:00-13:00 UTC", set.MaintenanceWindow, "kept as sent (the API sends the canonical form)")
	s.Require().NoError(tuesday.err)
	s.Equal(OutcomeUpdated, tuesday.res.Outcome, tuesday.res.Error)
}

func flowHex(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
