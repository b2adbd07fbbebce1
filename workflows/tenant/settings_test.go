package tenant

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// A settings change cuts the app over to a new instance with the values
// (the template's defaults for the others); a change back to what the
// app sees already makes no cut-over; a setting the template lacks or a
// value it refuses gets an error naming the setting; a failed cut-over
// keeps the old values.
func (s *provisionSuite) TestChangeSettingsCutsTheAppOver() {
	waits := 0
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		if in.Service.Name == "app" {
			s.record("app " + in.Service.Env["TITLE"] + " " + in.Service.Env["LOG_LEVEL"])
		}
		return nil
	}, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		waits++
		if waits == 3 {
			return temporal.NewNonRetryableApplicationError("service app is unhealthy", runtimes.ErrServiceUnhealthy, nil)
		}
		return nil
	})
	s.mockCutover()
	str := func(v string) *string { return &v }
	var unknown, badValue, noBy, empty, title, reset, failed error
	s.updateAt(10*time.Minute, UpdateChangeSettings, ChangeSettingsRequest{Settings: map[string]*string{"COLOR": str("red")}, By: "ops"}, &unknown)
	s.updateAt(10*time.Minute, UpdateChangeSettings, ChangeSettingsRequest{Settings: map[string]*string{"LOG_LEVEL": str("trace"), "TITLE": str("ok")}, By: "ops"}, &badValue)
	s.updateAt(10*time.Minute, UpdateChangeSettings, ChangeSettingsRequest{Settings: map[string]*string{"TITLE": str("x")}}, &noBy)
	s.updateAt(10*time.Minute, UpdateChangeSettings, ChangeSettingsRequest{By: "ops"}, &empty)
	s.updateAt(11*time.Minute, UpdateChangeSettings, ChangeSettingsRequest{Settings: map[string]*string{"TITLE": str("Acme CRM"), "LOG_LEVEL": str("debug")}, By: "distributor"}, &title)
	s.updateAt(20*time.Minute, UpdateChangeSettings, ChangeSettingsRequest{Settings: map[string]*string{"LOG_LEVEL": str("debug")}, By: "ops"}, &reset)
	s.updateAt(30*time.Minute, UpdateChangeSettings, ChangeSettingsRequest{Settings: map[string]*string{"TITLE": nil}, By: "ops"}, &failed)
	var before, afterTitle, afterSame, afterFailed Tenant
	s.stateAt(5*time.Minute, &before)
	s.stateAt(15*time.Minute, &afterTitle)
	s.stateAt(25*time.Minute, &afterSame)
	s.stateAt(35*time.Minute, &afterFailed)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Equal(ErrSettingInvalid, name(unknown))
	s.Equal("settings.COLOR", detail(unknown))
	s.Contains(unknown.Error(), `no setting "COLOR" (settings: TITLE, LOG_LEVEL)`)
	s.Equal("settings.LOG_LEVEL", detail(badValue), "the first bad setting by name")
	s.Contains(badValue.Error(), "LOG_LEVEL must be one of debug, info, warn, error")
	s.Equal(ErrSettingsRefused, name(noBy))
	s.Equal(ErrSettingsRefused, name(empty))
	s.Require().NoError(title)
	s.Require().NoError(reset)
	s.Require().NoError(failed)

	s.Equal(map[string]string{"TITLE": "", "LOG_LEVEL": "info"}, before.Settings, "the defaults")
	s.Equal(map[string]string{"TITLE": "Acme CRM", "LOG_LEVEL": "debug"}, afterTitle.Settings)
	s.Equal(PlanDone, afterTitle.SettingsChange.Phase, afterTitle.SettingsChange.Error)
	s.Equal(1, afterTitle.Generation, "the app was cut over")
	s.Equal(before.Image, afterTitle.Image)
	s.Equal(PlanDone, afterSame.SettingsChange.Phase)
	s.Equal(1, afterSame.Generation, "nothing the app sees changed: no cut-over")
	s.Equal(PlanFailed, afterFailed.SettingsChange.Phase)
	s.Contains(afterFailed.SettingsChange.Error, "cut-over rolled-back")
	s.Contains(afterFailed.Error, "settings change failed")
	s.Equal(map[string]string{"TITLE": "Acme CRM", "LOG_LEVEL": "debug"}, afterFailed.Settings, "the old values stay")
	s.Equal(1, afterFailed.Generation)
	s.Equal([]string{"app  info", "app Acme CRM debug", "app  debug"}, callsOf(s.recorded(), "app "))
}

// detail is the first detail of an application error ("" without).
func detail(err error) string {
	var appErr *temporal.ApplicationError
	var field string
	if !errors.As(err, &appErr) || appErr.Details(&field) != nil {
		return ""
	}
	return field
}
