package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A tenant created with a window carries it in its canonical form; a
// bad one is a 400 naming the field, and nothing starts.
func TestCreateTenantWithAMaintenanceWindow(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"acme","stage":"prod","maintenanceWindow":" sun 02:00–05:00 Europe/Paris "}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	input := e.temporal.startCalls()[0].args[0].(tenant.Input)
	assert.Equal(t, "Sun 02:00-05:00 Europe/Paris", input.Spec.MaintenanceWindow)

	for body, want := range map[string]string{
		`{"name":"acme","stage":"prod","maintenanceWindow":"Sunday 02:00-05:00 UTC"}`:           `day "Sunday"`,
		`{"name":"acme","stage":"prod","maintenanceWindow":"Sun 02:00-05:00 Mars/X"}`:           `time zone "Mars/X" is unknown`,
		`{"name":"acme","stage":"prod","maintenanceWindow":"Sun 02:00-05:00"}`:                  "want \"<days> <HH:MM>-<HH:MM> <time zone>\"",
		`{"name":"acme","stage":"prod","maintenanceWindow":"` + strings.Repeat("x", 101) + `"}`: "at most 100 bytes",
	} {
		e := newTestEnv(t)
		rec := e.do(http.MethodPost, "/v1/tenants", opsToken, body)
		require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
		field, msg := fieldErrorBody(t, rec.Body.Bytes())
		assert.Equal(t, "maintenanceWindow", field)
		assert.Contains(t, msg, want)
		assert.Empty(t, e.temporal.startCalls())
	}
}

func TestPatchTenantSetsTheWindow(t *testing.T) {
	for _, tt := range []struct{ name, body, field, want string }{
		{"no body", "", "body", "empty"},
		{"nothing to change", `{}`, "maintenanceWindow", "the fields are maintenanceWindow, plan and settings"},
		{"no setting", `{"settings":{}}`, "settings", "at least one setting"},
		{"null", `{"maintenanceWindow":null}`, "maintenanceWindow", "must not be null"},
		{"bad window", `{"maintenanceWindow":"Sun 25:00-05:00 UTC"}`, "maintenanceWindow", `time "25:00"`},
		{"unknown setting", `{"maintenanceWindow":"","size":"large"}`, "size", `unknown field "size"`},
		{"bad plan", `{"plan":"Large!"}`, "plan", "not a plan name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPatch, "/v1/tenants/acme", opsToken, tt.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, msg := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tt.field, field)
			assert.Contains(t, msg, tt.want)
			assert.Empty(t, e.temporal.updates, "nothing is sent")
		})
	}

	e := newTestEnv(t)
	rec := e.do(http.MethodPatch, "/v1/tenants/acme", developerToken, `{"maintenanceWindow":""}`)
	require.Equal(t, http.StatusForbidden, rec.Code, "developers do not configure tenants")

	e.temporal.updateResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, MaintenanceWindow: "Mon,Tue,Wed,Thu,Fri 12:00-13:00 UTC"}
	rec = e.do(http.MethodPatch, "/v1/tenants/acme", distributorToken, `{"maintenanceWindow":"Mon-Fri 12:00-13:00 UTC"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"maintenanceWindow":"Mon,Tue,Wed,Thu,Fri 12:00-13:00 UTC"`)
	require.Len(t, e.temporal.updates, 1)
	assert.Equal(t, tenant.UpdateConfigure, e.temporal.updates[0].UpdateName)
	w := "Mon,Tue,Wed,Thu,Fri 12:00-13:00 UTC"
	assert.Equal(t, []any{tenant.ConfigureRequest{By: "distributor", MaintenanceWindow: &w}}, e.temporal.updates[0].Args)

	rec = e.do(http.MethodPatch, "/v1/tenants/acme", opsToken, `{"maintenanceWindow":""}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	empty := ""
	assert.Equal(t, []any{tenant.ConfigureRequest{By: "ops", MaintenanceWindow: &empty}}, e.temporal.updates[1].Args, "\"\" removes the window")

	e.temporal.updateGetErr = temporal.NewApplicationError("tenant acme is decommissioned: its settings no longer change", tenant.ErrConfigureRefused)
	rec = e.do(http.MethodPatch, "/v1/tenants/acme", opsToken, `{"maintenanceWindow":""}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "no longer change")
}

func TestOverrideWindowIsForOpsWithAReason(t *testing.T) {
	for _, tt := range []struct{ name, body, field string }{
		{"no body", "", "body"},
		{"no reason", `{"tenants":["acme"]}`, "reason"},
		{"blank reason", `{"reason":"  "}`, "reason"},
		{"long reason", `{"reason":"` + strings.Repeat("x", 1001) + `"}`, "reason"},
		{"bad tenant", `{"tenants":["Acme"],"reason":"CVE"}`, "tenants"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/releases/r1/override-window", opsToken, tt.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, _ := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tt.field, field)
			assert.Empty(t, e.temporal.updates)
		})
	}
	e := newTestEnv(t)
	for _, tok := range []string{developerToken, distributorToken} {
		rec := e.do(http.MethodPost, "/v1/releases/r1/override-window", tok, `{"reason":"CVE"}`)
		require.Equal(t, http.StatusForbidden, rec.Code)
	}
	e.temporal.updateResult = release.Release{ID: "r1", State: release.StateRunning}
	rec := e.do(http.MethodPost, "/v1/releases/r1/override-window", opsToken, `{"tenants":["acme"],"reason":" CVE-2026-1234 "}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Len(t, e.temporal.updates, 1)
	assert.Equal(t, release.UpdateOverrideWindow, e.temporal.updates[0].UpdateName)
	assert.Equal(t, []any{release.OverrideInput{Tenants: []string{"acme"}, By: "ops", Reason: "CVE-2026-1234"}}, e.temporal.updates[0].Args)

	e.temporal.updateGetErr = temporal.NewApplicationError("tenant acme is updated in release r1: its cut-over is not to come", release.ErrReleaseControlRejected)
	rec = e.do(http.MethodPost, "/v1/releases/r1/override-window", opsToken, `{"tenants":["acme"],"reason":"CVE"}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
}

func TestPatchTenantChangesThePlan(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.updateResult = tenant.PlanChange{From: "small", To: "large", Change: tenant.Change{By: "distributor", Phase: tenant.PlanQueued}}
	rec := e.do(http.MethodPatch, "/v1/tenants/acme", distributorToken, `{"plan":"large"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"planChange":{"from":"small","to":"large","by":"distributor","phase":"queued"`)
	require.Len(t, e.temporal.updates, 1)
	assert.Equal(t, tenant.UpdateChangePlan, e.temporal.updates[0].UpdateName)
	assert.Equal(t, []any{tenant.ChangePlanRequest{Plan: "large", By: "distributor"}}, e.temporal.updates[0].Args)

	e.temporal.updateGetErr = temporal.NewApplicationError("tenant acme is on plan large already", tenant.ErrPlanRefused)
	rec = e.do(http.MethodPatch, "/v1/tenants/acme", opsToken, `{"plan":"large"}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "on plan large already")
}

// A settings change goes to the workflow, which alone knows the tenant's
// template: its refusal of a setting is a 400 naming the setting.
func TestPatchTenantChangesSettings(t *testing.T) {
	e := newTestEnv(t)
	title := "Acme CRM"
	e.temporal.updateResult = tenant.SettingsChange{Settings: map[string]*string{"TITLE": &title, "LOG_LEVEL": nil}, Change: tenant.Change{By: "distributor", Phase: tenant.PlanQueued}}
	rec := e.do(http.MethodPatch, "/v1/tenants/acme", distributorToken, `{"settings":{"TITLE":"Acme CRM","LOG_LEVEL":null}}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"settingsChange":{"settings":{"LOG_LEVEL":null,"TITLE":"Acme CRM"},"by":"distributor","phase":"queued"`)
	require.Len(t, e.temporal.updates, 1)
	assert.Equal(t, tenant.UpdateChangeSettings, e.temporal.updates[0].UpdateName)
	assert.Equal(t, []any{tenant.ChangeSettingsRequest{Settings: map[string]*string{"TITLE": &title, "LOG_LEVEL": nil}, By: "distributor"}}, e.temporal.updates[0].Args)

	e.temporal.updateGetErr = temporal.NewApplicationErrorWithOptions("LOG_LEVEL must be one of debug, info, warn, error", tenant.ErrSettingInvalid,
		temporal.ApplicationErrorOptions{Details: []any{"settings.LOG_LEVEL"}})
	rec = e.do(http.MethodPatch, "/v1/tenants/acme", opsToken, `{"settings":{"LOG_LEVEL":"trace"}}`)
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	field, msg := fieldErrorBody(t, rec.Body.Bytes())
	assert.Equal(t, "settings.LOG_LEVEL", field)
	assert.Contains(t, msg, "one of debug")

	e.temporal.updateGetErr = temporal.NewApplicationError("tenant acme is suspended: only an active tenant changes its settings", tenant.ErrSettingsRefused)
	rec = e.do(http.MethodPatch, "/v1/tenants/acme", opsToken, `{"settings":{"LOG_LEVEL":"debug"}}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
}
