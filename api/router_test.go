package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

func TestHealthz(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantBody string
	}{
		{name: "ok", wantCode: http.StatusOK, wantBody: `{"status":"ok"}`},
		{name: "unavailable", err: errors.New("dial tcp 10.1.2.3:7233: connection refused"), wantCode: http.StatusServiceUnavailable,
			wantBody: `{"status":"unavailable","error":"temporal unreachable"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.temporal.healthErr = tt.err
			before := time.Now()
			rec := e.do(http.MethodGet, "/healthz", "", "") // no token needed
			require.Equal(t, tt.wantCode, rec.Code)
			assert.JSONEq(t, tt.wantBody, rec.Body.String())
			deadline := e.temporal.healthDeadline
			require.False(t, deadline.IsZero(), "the health check must have a deadline")
			assert.WithinDuration(t, before.Add(2*time.Second), deadline, time.Second)
			if tt.err != nil {
				assert.Contains(t, e.logs.String(), "10.1.2.3:7233", "the log keeps what the answer leaves out")
			}
		})
	}
}

func TestNoRoute(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodGet, "/v2/whatever", opsToken, "")
	require.Equal(t, http.StatusNotFound, rec.Code)
	assert.JSONEq(t, `{"error":"no route GET /v2/whatever"}`, rec.Body.String())
}

func TestMetrics(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.queryResult = tenant.Tenant{Name: "acme"}
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "").Code)
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/v1/tenants/beta", "", "").Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/random/path", "", "").Code)

	rec := e.do(http.MethodGet, "/metrics", "", "") // unauthenticated
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	assert.Contains(t, body, `tenantflow_api_requests_total{code="200",method="GET",route="/v1/tenants/:name"} 1`)
	assert.Contains(t, body, `tenantflow_api_requests_total{code="401",method="GET",route="/v1/tenants/:name"} 1`)
	assert.Contains(t, body, `tenantflow_api_requests_total{code="404",method="GET",route="unmatched"} 1`)
	assert.Contains(t, body, `tenantflow_api_request_duration_seconds_count{method="GET",route="/v1/tenants/:name"} 2`)
	assert.NotContains(t, body, "acme", "tenant names must not become label values")
}

func TestMetricsNotServedWithoutRegistry(t *testing.T) {
	templates, err := spec.LoadTemplates("../deploy/templates")
	require.NoError(t, err)
	tokens, err := ParseTokens([]byte(`{"ops":"` + opsToken + `"}`))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	// A wrapping Registerer is not a Gatherer we could serve.
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"instance": "a"}, reg)
	r, err := NewRouter(Config{TaskQueue: "tenants", Tokens: tokens}, &fakeTemporal{}, templates, nil, wrapped)
	require.NoError(t, err)
	e := &testEnv{router: r}
	rec := e.do(http.MethodGet, "/metrics", "", "")
	assert.Equal(t, http.StatusNotFound, rec.Code)

	// The collectors were still registered on the wrapped registry.
	e.do(http.MethodGet, "/healthz", "", "")
	families, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	assert.Contains(t, names, "tenantflow_api_requests_total")
	assert.Contains(t, names, "tenantflow_api_request_duration_seconds")

	// Registering twice on one registry is a start-up error, not a panic.
	_, err = NewRouter(Config{TaskQueue: "tenants", Tokens: tokens}, &fakeTemporal{}, templates, nil, wrapped)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "register metrics")
}

func TestRequestLog(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.queryResult = tenant.Tenant{Name: "acme"}
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/tenants/acme", developerToken, "").Code)
	require.Equal(t, http.StatusAccepted, e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"secret-body-name","stage":"prod"}`).Code)

	lines := logLines(t, e.logs.String())
	require.Len(t, lines, 2)
	get := lines[0]
	assert.Equal(t, "http request", get["msg"])
	assert.Equal(t, "INFO", get["level"])
	assert.Equal(t, "GET", get["method"])
	assert.Equal(t, "/v1/tenants/:name", get["route"])
	assert.Equal(t, 200.0, get["status"])
	assert.Equal(t, "developer", get["role"])
	assert.Equal(t, "acme", get["tenant"])
	assert.Contains(t, get, "latency_ms")

	post := lines[1]
	assert.Equal(t, "POST", post["method"])
	assert.Equal(t, 202.0, post["status"])
	assert.Equal(t, "ops", post["role"])
	assert.NotContains(t, post, "tenant", "POST /v1/tenants has no :name")

	all := e.logs.String()
	for _, secret := range []string{opsToken, developerToken, "Bearer"} {
		assert.NotContains(t, all, secret, "the log must hold no token")
	}
	// Only the audit line names what the body asked for, field by field.
	for _, line := range strings.Split(strings.TrimSpace(all), "\n") {
		if !strings.Contains(line, `"msg":"audit"`) {
			assert.NotContains(t, line, "secret-body-name", "the request log holds no body")
		} else {
			assert.Contains(t, line, `"tenant":"secret-body-name"`)
		}
	}
}

func TestRecoveryTurnsPanicInto500(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.queryPanic = true
	rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	assert.JSONEq(t, `{"error":"internal error"}`, rec.Body.String())
	logs := e.logs.String()
	assert.Contains(t, logs, `"msg":"panic in handler"`)
	assert.Contains(t, logs, `"panic":"boom"`)
	assert.Contains(t, logs, `"status":500`)

	// The router keeps serving.
	e.temporal.queryPanic = false
	e.temporal.queryResult = tenant.Tenant{Name: "acme"}
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "").Code)
}

func TestNewRouterWithoutRegistry(t *testing.T) {
	templates, err := spec.LoadTemplates("../deploy/templates")
	require.NoError(t, err)
	tokens, err := ParseTokens([]byte(`{"ops":"` + opsToken + `"}`))
	require.NoError(t, err)
	var nilRegistry *prometheus.Registry // as a caller without metrics might pass it
	for name, reg := range map[string]prometheus.Registerer{"nil": nil, "typed nil": nilRegistry} {
		t.Run(name, func(t *testing.T) {
			r, err := NewRouter(Config{TaskQueue: "tenants", Tokens: tokens}, &fakeTemporal{}, templates, nil, reg)
			require.NoError(t, err)
			e := &testEnv{router: r}
			assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/healthz", "", "").Code)
			assert.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/metrics", "", "").Code)
		})
	}
}

func TestNewRouterRejectsBadConfig(t *testing.T) {
	templates, err := spec.LoadTemplates("../deploy/templates")
	require.NoError(t, err)
	tokens, err := ParseTokens([]byte(`{"ops":"` + opsToken + `"}`))
	require.NoError(t, err)
	good := Config{TaskQueue: "tenants", Tokens: tokens}
	tests := []struct {
		name      string
		cfg       Config
		temporal  Temporal
		templates spec.Templates
		wantErr   string
	}{
		{name: "no task queue", cfg: Config{Tokens: tokens}, temporal: &fakeTemporal{}, templates: templates, wantErr: "TaskQueue is required"},
		{name: "no tokens", cfg: Config{TaskQueue: "q"}, temporal: &fakeTemporal{}, templates: templates, wantErr: "Tokens is required"},
		{name: "negative body limit", cfg: Config{TaskQueue: "q", Tokens: tokens, MaxBodyBytes: -1}, temporal: &fakeTemporal{}, templates: templates, wantErr: "MaxBodyBytes"},
		{name: "negative timeout", cfg: Config{TaskQueue: "q", Tokens: tokens, QueryTimeout: -time.Second}, temporal: &fakeTemporal{}, templates: templates, wantErr: "QueryTimeout"},
		{name: "no client", cfg: good, templates: templates, wantErr: "Temporal client is required"},
		{name: "no templates", cfg: good, temporal: &fakeTemporal{}, wantErr: "no templates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRouter(tt.cfg, tt.temporal, tt.templates, nil, nil)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func logLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		if m["msg"] == "http request" {
			out = append(out, m)
		}
	}
	return out
}
