package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/internal/audit"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

type auditPage struct {
	Entries []audit.Entry `json:"entries"`
	Next    string        `json:"next"`
}

func (e *testEnv) audit(t *testing.T, query string) auditPage {
	t.Helper()
	rec := e.do(http.MethodGet, "/v1/audit"+query, opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var p auditPage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	return p
}

// Every change is recorded with who, what, why and how it ended, the
// refused ones too; a request without a valid token is not; a handed-out
// password never reaches the trail.
func TestChangesAreAudited(t *testing.T) {
	store, err := audit.OpenFileStore(filepath.Join(t.TempDir(), "audit"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	e := newTestEnv(t, func(c *Config) { c.Audit = store })

	e.temporal.updateResult = tenant.Suspension{Phase: tenant.SuspendQueued}
	require.Equal(t, http.StatusAccepted, e.do(http.MethodPost, "/v1/tenants/acme/suspend", distributorToken, `{"reason":"invoice 42 unpaid"}`).Code)
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodPost, "/v1/tenants/acme/suspend", opsToken, `{}`).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPost, "/v1/tenants/acme/suspend", developerToken, `{"reason":"x"}`).Code)
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodPost, "/v1/tenants/acme/suspend", "", `{"reason":"x"}`).Code)
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodPost, "/v1/tenants/acme/suspend", "not-a-token", `{"reason":"x"}`).Code)

	e.temporal.updateResult = tenant.Credentials{Username: "admin", DN: "uid=admin", Password: "p4ssw0rd-long-enough"}
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/tenants/acme/credentials", distributorToken, "").Code)

	e.temporal.updateResult = nil
	e.temporal.updateGetErr = temporal.NewApplicationError("staging failed for release r1", release.ErrPromoteRejected)
	require.Equal(t, http.StatusConflict, e.do(http.MethodPost, "/v1/releases/r1/promote", developerToken, `{"reason":"ship it"}`).Code)
	e.temporal.updateGetErr = nil
	e.temporal.updateResult = tenant.Tenant{Name: "acme"}
	require.Equal(t, http.StatusOK, e.do(http.MethodPatch, "/v1/tenants/acme", opsToken, `{"maintenanceWindow":"Sun 02:00-05:00 UTC"}`).Code)
	// Reads are not changes.
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/tenants?stage=prod", opsToken, "").Code)

	all := e.audit(t, "")
	require.Len(t, all.Entries, 6, "%+v", all.Entries)
	first := all.Entries[0]
	assert.Equal(t, "tenant.suspend", first.Action)
	assert.Equal(t, "distributor", first.Role)
	assert.Equal(t, "distributor", first.Actor)
	assert.Equal(t, "acme", first.Tenant)
	assert.Equal(t, "invoice 42 unpaid", first.Reason)
	assert.Equal(t, audit.OutcomeAccepted, first.Outcome)
	assert.Equal(t, http.StatusAccepted, first.Status)
	assert.WithinDuration(t, time.Now(), first.At, time.Minute)

	bad := all.Entries[1]
	assert.Equal(t, audit.OutcomeRefused, bad.Outcome)
	assert.Equal(t, http.StatusBadRequest, bad.Status)
	assert.Contains(t, bad.Error, "reason: reason is required")
	forbidden := all.Entries[2]
	assert.Equal(t, "developer", forbidden.Role)
	assert.Equal(t, http.StatusForbidden, forbidden.Status)
	assert.Contains(t, forbidden.Error, "may not call POST")

	creds := all.Entries[3]
	assert.Equal(t, "tenant.credentials", creds.Action)
	assert.Equal(t, audit.OutcomeAccepted, creds.Outcome)
	raw, _ := json.Marshal(all)
	assert.NotContains(t, string(raw), "p4ssw0rd", "a secret never reaches the trail")

	promote := all.Entries[4]
	assert.Equal(t, "release.promote", promote.Action)
	assert.Equal(t, "r1", promote.Release)
	assert.Equal(t, "ship it", promote.Reason)
	assert.Equal(t, "staging failed for release r1", promote.Error)
	assert.Equal(t, `maintenanceWindow "Sun 02:00-05:00 UTC"`, all.Entries[5].Detail)

	// Filters and pages.
	assert.Len(t, e.audit(t, "?actor=developer").Entries, 2, "by role")
	assert.Len(t, e.audit(t, "?action=tenant.suspend&tenant=acme").Entries, 3)
	assert.Empty(t, e.audit(t, "?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)).Entries)
	var paged []audit.Entry
	next := ""
	for {
		p := e.audit(t, "?limit=4"+next)
		paged = append(paged, p.Entries...)
		if p.Next == "" {
			break
		}
		next = "&after=" + p.Next
	}
	assert.Equal(t, all.Entries, paged)

	// Each entry is in the JSON log too.
	assert.Contains(t, e.logs.String(), `"msg":"audit","action":"tenant.suspend"`)
}

func TestAuditQueryErrorsNameTheParameter(t *testing.T) {
	store, err := audit.OpenFileStore(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	e := newTestEnv(t, func(c *Config) { c.Audit = store })
	for q, field := range map[string]string{
		"?since=yesterday":  "since",
		"?until=2026-13-01": "until",
		"?limit=0":          "limit",
		"?limit=1001":       "limit",
		"?tenant=Acme":      "tenant",
	} {
		rec := e.do(http.MethodGet, "/v1/audit"+q, opsToken, "")
		require.Equal(t, http.StatusBadRequest, rec.Code, q)
		got, _ := fieldErrorBody(t, rec.Body.Bytes())
		assert.Equal(t, field, got, q)
	}
	for _, tok := range []string{developerToken, distributorToken} {
		assert.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/v1/audit", tok, "").Code, "ops only")
	}

	off := newTestEnv(t)
	rec := off.do(http.MethodGet, "/v1/audit", opsToken, "")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), "TENANTFLOW_AUDIT_DSN")
}

// An override names its tenants in the trail; an Update no worker
// answered in time is "unknown", not "failed" (it may still happen); a
// handler that panics after acting is recorded too.
func TestAuditOutcomesBeyondTheStatus(t *testing.T) {
	store, err := audit.OpenFileStore(filepath.Join(t.TempDir(), "audit"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	e := newTestEnv(t, func(c *Config) { c.Audit = store; c.QueryTimeout = 200 * time.Millisecond })

	e.temporal.updateResult = release.Release{ID: "r1"}
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/v1/releases/r1/override-window", opsToken, `{"tenants":["acme"],"reason":"CVE"}`).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/v1/releases/r1/override-window", opsToken, `{"reason":"CVE"}`).Code)
	e.temporal.updateGetErr = context.DeadlineExceeded
	require.Equal(t, http.StatusServiceUnavailable, e.do(http.MethodPost, "/v1/tenants/acme/suspend", opsToken, `{"reason":"unpaid"}`).Code)

	got := e.audit(t, "").Entries
	require.Len(t, got, 3)
	assert.Equal(t, "acme", got[0].Tenant)
	assert.Equal(t, "r1", got[0].Release)
	assert.Equal(t, "tenants acme", got[0].Detail)
	assert.Equal(t, "every tenant left", got[1].Detail)
	assert.Equal(t, audit.OutcomeUnknown, got[2].Outcome)
	assert.Contains(t, got[2].Error, "may still be carried out")

	// A panic after the change: recorded as failed, and still a 500.
	s := &server{cfg: Config{Audit: store, QueryTimeout: time.Second}, log: slog.New(slog.DiscardHandler)}
	s.metrics, err = newMetrics(nil)
	require.NoError(t, err)
	tokens, err := ParseTokens([]byte(`{"ops":"` + opsToken + `"}`))
	require.NoError(t, err)
	r := gin.New()
	r.Use(recovery(s.log))
	r.POST("/v1/tenants/:name/move", s.audited("tenant.move"), RequireRoles(tokens, RoleOps), func(*gin.Context) { panic("boom") })
	req := newRequest(http.MethodPost, "/v1/tenants/acme/move", "")
	req.Header.Set("Authorization", "Bearer "+opsToken)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	got = e.audit(t, "?action=tenant.move").Entries
	require.Len(t, got, 1)
	assert.Equal(t, audit.OutcomeFailed, got[0].Outcome)
	assert.Equal(t, "acme", got[0].Tenant)
}

// A PATCH that changes several things records them all.
func TestAuditKeepsEveryChangeOfAPatch(t *testing.T) {
	store, err := audit.OpenFileStore(filepath.Join(t.TempDir(), "audit"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	e := newTestEnv(t, func(c *Config) { c.Audit = store })
	e.temporal.updateResult = tenant.PlanChange{To: "large"}
	rec := e.do(http.MethodPatch, "/v1/tenants/acme", opsToken, `{"maintenanceWindow":"Sun 02:00-05:00 UTC","plan":"large","settings":{"TITLE":"Acme"}}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	got := e.audit(t, "").Entries
	require.Len(t, got, 1)
	assert.Equal(t, `maintenanceWindow "Sun 02:00-05:00 UTC"; plan large; settings TITLE`, got[0].Detail)
}
