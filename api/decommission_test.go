package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// activeTenant makes the fake's state query answer an active tenant.
func activeTenant(e *testEnv) *testEnv {
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive}
	return e
}

func TestDecommissionRequest(t *testing.T) {
	e := activeTenant(newTestEnv(t))
	e.temporal.updateResult = tenant.Decommission{Phase: tenant.PhaseAwaitingConfirmation, RequestedBy: "distributor", Reason: "end of contract"}
	rec := e.do(http.MethodDelete, "/v1/tenants/acme", distributorToken, `{"reason":"  end of contract "}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, "/v1/tenants/acme", rec.Header().Get("Location"))
	assert.JSONEq(t, `{"name":"acme","decommission":{"phase":"awaiting-confirmation","requestedBy":"distributor","reason":"end of contract","requestedAt":"0001-01-01T00:00:00Z"}}`, rec.Body.String())
	require.Len(t, e.temporal.updates, 1)
	u := e.temporal.updates[0]
	assert.Equal(t, "tenant:acme", u.WorkflowID)
	assert.Equal(t, tenant.UpdateRequestDecommission, u.UpdateName)
	assert.Equal(t, client.WorkflowUpdateStageCompleted, u.WaitForStage)
	assert.Equal(t, []any{tenant.DecommissionRequest{By: "distributor", Reason: "end of contract"}}, u.Args)

	// Ops may force, in the body or the query (DELETE often has no body).
	rec = e.do(http.MethodDelete, "/v1/tenants/acme?force=true&reason=unpaid", opsToken, "")
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, []any{tenant.DecommissionRequest{By: "ops", Reason: "unpaid", Force: true}}, e.temporal.updates[1].Args)
}

func TestDecommissionActions(t *testing.T) {
	for path, update := range map[string]string{
		"/v1/tenants/acme/decommission/confirm": tenant.UpdateConfirmDecommission,
		"/v1/tenants/acme/decommission/cancel":  tenant.UpdateCancelDecommission,
		"/v1/tenants/acme/restore":              tenant.UpdateRestore,
	} {
		t.Run(path, func(t *testing.T) {
			e := newTestEnv(t)
			e.temporal.updateResult = tenant.Decommission{Phase: "x"}
			rec := e.do(http.MethodPost, path, opsToken, "")
			require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
			require.Len(t, e.temporal.updates, 1)
			assert.Equal(t, update, e.temporal.updates[0].UpdateName)
			rec = e.do(http.MethodPost, path, developerToken, "")
			assert.Equal(t, http.StatusForbidden, rec.Code, "developers do not decommission")
			rec = e.do(http.MethodPost, path, opsToken, `{"unexpected":1}`)
			assert.Equal(t, http.StatusBadRequest, rec.Code)
			assert.Len(t, e.temporal.updates, 1, "nothing is sent for a bad request")
		})
	}
}

func TestDecommissionBadInputStartsNothing(t *testing.T) {
	tests := []struct {
		name, token, target, body string
		wantCode                  int
		wantField                 string
	}{
		{"distributor may not force", distributorToken, "/v1/tenants/acme?force=true", "", http.StatusForbidden, "force"},
		{"distributor may not force in the body", distributorToken, "/v1/tenants/acme", `{"force":true}`, http.StatusForbidden, "force"},
		{"bad force", opsToken, "/v1/tenants/acme?force=perhaps", "", http.StatusBadRequest, "force"},
		{"long reason", opsToken, "/v1/tenants/acme", `{"reason":"` + strings.Repeat("x", 1025) + `"}`, http.StatusBadRequest, "reason"},
		{"unknown field", opsToken, "/v1/tenants/acme", `{"reasn":"typo"}`, http.StatusBadRequest, "reasn"},
		{"wrong type", opsToken, "/v1/tenants/acme", `{"force":"yes"}`, http.StatusBadRequest, "force"},
		{"bad name", opsToken, "/v1/tenants/Acme_", "", http.StatusBadRequest, "name"},
		{"developer", developerToken, "/v1/tenants/acme", "", http.StatusForbidden, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodDelete, tc.target, tc.token, tc.body)
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			if tc.wantField != "" {
				assert.Contains(t, rec.Body.String(), `"field":"`+tc.wantField+`"`)
			}
			assert.Empty(t, e.temporal.updates)
		})
	}
}

func TestDecommissionErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*fakeTemporal)
		wantCode int
		wantBody string
	}{
		{"unknown tenant", func(f *fakeTemporal) { f.updateErr = serviceerror.NewNotFound("workflow not found") }, http.StatusNotFound, "tenant acme not found"},
		{"ended", func(f *fakeTemporal) { f.updateErr = serviceerror.NewNotFound("workflow execution already completed") }, http.StatusConflict, "has ended"},
		{"refused", func(f *fakeTemporal) {
			f.updateGetErr = temporal.NewApplicationError("tenant acme: decommission already requested by ops", tenant.ErrDecommissionRefused)
		}, http.StatusConflict, "already requested by ops"},
		{"not active", func(f *fakeTemporal) {
			f.updateGetErr = temporal.NewApplicationError("tenant acme is updating: only an active tenant can be decommissioned", tenant.ErrDecommissionRefused)
		}, http.StatusConflict, "tenant acme is updating: only an active tenant can be decommissioned"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			tc.setup(e.temporal)
			rec := e.do(http.MethodDelete, "/v1/tenants/acme", opsToken, "")
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tc.wantBody)
		})
	}
}
