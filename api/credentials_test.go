package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

func TestGetCredentialsOnce(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.updateResult = tenant.Credentials{Username: "admin", DN: "uid=admin,ou=acme,dc=x", Password: "p4ssw0rd-long-enough"}
	rec := e.do(http.MethodGet, "/v1/tenants/acme/credentials", distributorToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"username":"admin","dn":"uid=admin,ou=acme,dc=x","password":"p4ssw0rd-long-enough"}`, rec.Body.String())
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	require.Len(t, e.temporal.updates, 1)
	u := e.temporal.updates[0]
	assert.Equal(t, "tenant:acme", u.WorkflowID)
	assert.Empty(t, u.UpdateID, "without a key every request is a new fetch")

	req := newRequest(http.MethodGet, "/v1/tenants/acme/credentials", "")
	req.Header.Set("Authorization", "Bearer "+distributorToken)
	req.Header.Set("Idempotency-Key", "portal-req-0001")
	rec = serve(e, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "fetch-credentials:distributor:portal-req-0001", e.temporal.updates[1].UpdateID)

	req.Header.Set("Idempotency-Key", "bad key!")
	rec = serve(e, req)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), `"field":"Idempotency-Key"`)
	assert.Equal(t, tenant.UpdateFetchCredentials, u.UpdateName)
	assert.Equal(t, client.WorkflowUpdateStageCompleted, u.WaitForStage)
	assert.Equal(t, []any{tenant.FetchCredentialsInput{By: "distributor"}}, u.Args)
}

func TestGetCredentialsErrors(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		path     string
		setup    func(*fakeTemporal)
		wantCode int
		wantBody string
	}{
		{"developer may not", developerToken, "/v1/tenants/acme/credentials", nil, http.StatusForbidden, ""},
		{"bad name", opsToken, "/v1/tenants/A_/credentials", nil, http.StatusBadRequest, `"field":"name"`},
		{"unknown tenant", opsToken, "/v1/tenants/acme/credentials", func(f *fakeTemporal) {
			f.updateErr = serviceerror.NewNotFound("workflow not found")
		}, http.StatusNotFound, "tenant acme not found"},
		{"already fetched", opsToken, "/v1/tenants/acme/credentials", func(f *fakeTemporal) {
			f.updateErr = temporal.NewApplicationError("credentials of acme were already fetched", tenant.ErrCredentialsAlreadyFetched)
		}, http.StatusGone, "already fetched"},
		{"not active", opsToken, "/v1/tenants/acme/credentials", func(f *fakeTemporal) {
			f.updateGetErr = temporal.NewApplicationError("tenant acme is provisioning", tenant.ErrCredentialsUnavailable)
		}, http.StatusConflict, "provisioning"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tc.setup != nil {
				tc.setup(e.temporal)
			}
			rec := e.do(http.MethodGet, tc.path, tc.token, "")
			require.Equal(t, tc.wantCode, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tc.wantBody)
			assert.NotContains(t, rec.Body.String(), "password")
		})
	}
}
