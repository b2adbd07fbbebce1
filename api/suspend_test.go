package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A suspend says why (400 naming the field otherwise, nothing sent) and
// is sent with the caller; a resume needs no body; a tenant that cannot
// be suspended or resumed is 409; developers may do neither.
func TestSuspendAndResume(t *testing.T) {
	bad := []struct{ name, body, field string }{
		{"no body", "", "body"},
		{"no reason", `{}`, "reason"},
		{"blank reason", `{"reason":"  "}`, "reason"},
		{"long reason", `{"reason":"` + strings.Repeat("x", 1025) + `"}`, "reason"},
		{"control character", `{"reason":"unpaid\u0007"}`, "reason"},
		{"long message", `{"reason":"unpaid","message":"` + strings.Repeat("x", 1025) + `"}`, "message"},
		{"unknown field", `{"reason":"unpaid","why":"x"}`, "why"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/tenants/acme/suspend", opsToken, tt.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, _ := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tt.field, field)
			assert.Empty(t, e.temporal.updates, "nothing is sent")
		})
	}

	e := newTestEnv(t)
	e.temporal.updateResult = tenant.Suspension{Phase: tenant.SuspendQueued, By: "distributor", Reason: "invoice 42 unpaid"}
	rec := e.do(http.MethodPost, "/v1/tenants/acme/suspend", distributorToken, `{"reason":" invoice 42 unpaid ","message":"Back soon"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, "/v1/tenants/acme", rec.Header().Get("Location"))
	assert.Contains(t, rec.Body.String(), `"phase":"suspend-queued"`)
	require.Len(t, e.temporal.updates, 1)
	assert.Equal(t, tenant.UpdateSuspend, e.temporal.updates[0].UpdateName)
	assert.Equal(t, []any{tenant.SuspendRequest{By: "distributor", Reason: "invoice 42 unpaid", Message: "Back soon"}}, e.temporal.updates[0].Args)

	e.temporal.updateGetErr = temporal.NewApplicationError("tenant acme is suspended already", tenant.ErrSuspendRefused)
	rec = e.do(http.MethodPost, "/v1/tenants/acme/suspend", opsToken, `{"reason":"again"}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "suspended already")

	e.temporal.updateGetErr = nil
	e.temporal.updateResult = tenant.Suspension{Phase: tenant.ResumeQueued}
	rec = e.do(http.MethodPost, "/v1/tenants/acme/resume", opsToken, "")
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	last := e.temporal.updates[len(e.temporal.updates)-1]
	assert.Equal(t, tenant.UpdateResume, last.UpdateName)
	assert.Equal(t, []any{tenant.ResumeRequest{By: "ops"}}, last.Args)

	for _, path := range []string{"/v1/tenants/acme/suspend", "/v1/tenants/acme/resume"} {
		rec = e.do(http.MethodPost, path, developerToken, `{"reason":"x"}`)
		assert.Equal(t, http.StatusForbidden, rec.Code, path)
	}
	rec = e.do(http.MethodPost, "/v1/tenants/A_cme/resume", opsToken, "")
	require.Equal(t, http.StatusBadRequest, rec.Code)
}
