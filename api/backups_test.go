package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

func TestRequestBackup(t *testing.T) {
	e := activeTenant(newTestEnv(t))
	e.temporal.updateResult = tenant.BackupAccepted{ID: "20261206t101500z-3", Queued: true, WaitingFor: "the operation under way (cut-over)"}
	rec := e.do(http.MethodPost, "/v1/tenants/acme/backups", distributorToken, `{"reason":"before the migration"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, "/v1/tenants/acme/backups/20261206t101500z-3", rec.Header().Get("Location"))
	assert.JSONEq(t, `{"tenant":"acme","id":"20261206t101500z-3","queued":true,"waitingFor":"the operation under way (cut-over)","status":"queued"}`, rec.Body.String())
	require.Len(t, e.temporal.updates, 1)
	assert.Equal(t, tenant.UpdateBackup, e.temporal.updates[0].UpdateName)
	assert.Equal(t, []any{tenant.BackupRequest{By: "distributor", Reason: "before the migration"}}, e.temporal.updates[0].Args)

	for _, tc := range []struct{ token, body, field string }{
		{developerToken, "", ""},
		{opsToken, `{"reasn":"typo"}`, "reasn"},
		{opsToken, `{"reason":null}`, "reason"},
	} {
		rec := e.do(http.MethodPost, "/v1/tenants/acme/backups", tc.token, tc.body)
		require.NotEqual(t, http.StatusAccepted, rec.Code, tc)
		if tc.field != "" {
			var body map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, tc.field, body["field"], rec.Body.String())
		}
	}
	assert.Len(t, e.temporal.updates, 1, "nothing is sent for a refused request")
}

func TestListAndGetBackups(t *testing.T) {
	e := newTestEnv(t)
	at := time.Now().Add(-time.Hour).UTC()
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Backups: &tenant.Backups{
		Policy:          spec.Backups{Every: spec.Duration(24 * time.Hour), At: "02:00"},
		List:            []tenant.BackupRecord{{ID: "20261206t021700z-1", Reason: "scheduled", CreatedAt: at, Bytes: 100, Added: 3, OffsiteAt: &at}},
		Pending:         []tenant.PendingBackup{{ID: "20261206t031700z-2", Reason: "on-demand", RequestedAt: at}},
		NewestOffsiteAt: &at,
	}}
	rec := e.do(http.MethodGet, "/v1/tenants/acme/backups", developerToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	assert.InDelta(t, 3600, list["newestOffsiteAgeSeconds"], 60)
	assert.Equal(t, "24h0m0s", list["policy"].(map[string]any)["every"])
	assert.Len(t, list["list"], 1)

	for id, status := range map[string]string{"20261206t021700z-1": "done", "20261206t031700z-2": "queued"} {
		rec = e.do(http.MethodGet, "/v1/tenants/acme/backups/"+id, opsToken, "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Contains(t, rec.Body.String(), `"status":"`+status+`"`)
	}
	rec = e.do(http.MethodGet, "/v1/tenants/acme/backups/nope", opsToken, "")
	require.Equal(t, http.StatusNotFound, rec.Code)
	assert.Contains(t, rec.Body.String(), `"field":"backup"`)
}

func TestCreateTenantWithBackupPolicy(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"acme","stage":"prod","backups":{"every":"48h","offsite":true}}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	calls := e.temporal.startCalls()
	require.Len(t, calls, 1)
	in := calls[0].args[0].(tenant.Input)
	require.Equal(t, &spec.Backups{Every: spec.Duration(48 * time.Hour), Offsite: true}, in.Spec.Backups)

	for body, field := range map[string]string{
		`{"name":"acme2","stage":"prod","backups":{"every":"1s"}}`:              "backups.every",
		`{"name":"acme2","stage":"prod","backups":{"every":"daily"}}`:           "backups.every",
		`{"name":"acme2","stage":"prod","backups":{"at":"2am"}}`:                "backups.at",
		`{"name":"acme2","stage":"prod","backups":{"timezone":"Mars/Base"}}`:    "backups.timezone",
		`{"name":"acme2","stage":"prod","backups":{"keep":{"daily":"seven"}}}`:  "backups.keep.daily",
		`{"name":"acme2","stage":"prod","backups":{"schedule":"02:00"}}`:        "backups.schedule",
		`{"name":"acme2","stage":"prod","backups":{"every":"6h","at":"02:00"}}`: "backups.at",
	} {
		rec := e.do(http.MethodPost, "/v1/tenants", opsToken, body)
		require.Equal(t, http.StatusBadRequest, rec.Code, body)
		var got map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		assert.Equal(t, field, got["field"], "%s: %s", body, rec.Body.String())
	}
	assert.Len(t, e.temporal.startCalls(), 1, "nothing starts for a bad policy")
}

func TestRestoreToABackup(t *testing.T) {
	e := activeTenant(newTestEnv(t))
	e.temporal.updateResult = tenant.BackupRestore{Backup: "20261206t021700z-1", By: "ops", Phase: tenant.RestoreQueued}
	rec := e.do(http.MethodPost, "/v1/tenants/acme/restore", opsToken, `{"backup":"20261206t021700z-1"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"phase":"queued"`)
	require.Len(t, e.temporal.updates, 1)
	assert.Equal(t, tenant.UpdateRestoreBackup, e.temporal.updates[0].UpdateName)
	assert.Equal(t, []any{tenant.RestoreBackupRequest{Backup: "20261206t021700z-1", By: "ops"}}, e.temporal.updates[0].Args)

	// An unknown backup is 404 naming backup; a busy or inactive tenant 409.
	e.temporal.updateGetErr = temporal.NewApplicationError("tenant acme has no backup \"nope\"", tenant.ErrBackupNotFound)
	rec = e.do(http.MethodPost, "/v1/tenants/acme/restore", opsToken, `{"backup":"nope"}`)
	require.Equal(t, http.StatusNotFound, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"error":"tenant acme has no backup \"nope\"","field":"backup"}`, rec.Body.String())
	e.temporal.updateGetErr = temporal.NewApplicationError("tenant acme is decommissioned: only an active tenant is put back to a backup", tenant.ErrRestoreRefused)
	rec = e.do(http.MethodPost, "/v1/tenants/acme/restore", opsToken, `{"backup":"20261206t021700z-1"}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())

	// Without a backup it is the restore of a decommissioned tenant.
	e.temporal.updateGetErr = nil
	e.temporal.updateResult = tenant.Decommission{Phase: tenant.PhaseRestoreRequested}
	rec = e.do(http.MethodPost, "/v1/tenants/acme/restore", opsToken, "")
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, tenant.UpdateRestore, e.temporal.updates[len(e.temporal.updates)-1].UpdateName)
}
