package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/tenantflow/tenantflow/internal/codec"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

var recorded = tenant.Summary{
	Name: "acme", State: tenant.StateActive, Stage: "prod", Template: "light", Image: "app:v2", Release: "r1",
	URL: "https://acme.example", Endpoint: "http://10.0.0.5:8080", Host: "h1", UpdatedAt: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
}

// memoWith is a description whose memo holds sum, encoded by dc.
func memoWith(t *testing.T, dc converter.DataConverter, sum tenant.Summary) *workflowservice.DescribeWorkflowExecutionResponse {
	t.Helper()
	p, err := dc.ToPayload(sum)
	require.NoError(t, err)
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Memo: &commonpb.Memo{Fields: map[string]*commonpb.Payload{tenant.MemoSummary: p}},
	}}
}

func TestGetTenantAnswersStaleFromTheMemoWhenNoWorkerAnswers(t *testing.T) {
	key, err := codec.NewKey("k1")
	require.NoError(t, err)
	keys, err := codec.ParseKeys(key)
	require.NoError(t, err)
	tests := []struct {
		name       string
		timeout    time.Duration
		setup      func(*fakeTemporal)
		wantReason string
	}{
		{
			name: "query times out", timeout: 50 * time.Millisecond,
			setup:      func(f *fakeTemporal) { f.queryBlock = true },
			wantReason: "no worker answered the state query within 50ms: this is the state the workflow last recorded",
		},
		{
			name:       "server deadline",
			setup:      func(f *fakeTemporal) { f.queryErr = serviceerror.NewDeadlineExceeded("context deadline exceeded") },
			wantReason: "no worker answered the state query within 500ms: this is the state the workflow last recorded",
		},
		{
			name: "workflow task not running",
			setup: func(f *fakeTemporal) {
				f.queryErr = serviceerror.NewWorkflowNotReady("Workflow task is not scheduled yet.")
			},
			wantReason: "the tenant's workflow task is not running (Workflow task is not scheduled yet.): this is the state it last recorded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The memo is encrypted like the workers' payloads: the API
			// decodes it with the client's converter.
			e := newTestEnv(t, func(c *Config) { c.QueryTimeout = tt.timeout; c.DataConverter = keys.DataConverter() })
			tt.setup(e.temporal)
			e.temporal.describeResp = memoWith(t, keys.DataConverter(), recorded)

			rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Equal(t, "1", rec.Header().Get(StaleHeader))
			var body staleTenant
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, staleTenant{Summary: recorded, Stale: true, StaleReason: tt.wantReason}, body)
			assert.Equal(t, []string{"tenant:acme"}, e.temporal.describes)
		})
	}
}

func TestGetTenantFallsBackOnlyWhenNoWorkerAnswers(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(*fakeTemporal)
		wantCode     int
		wantBody     string
		wantDescribe bool
	}{
		{
			name:     "a worker answers",
			setup:    func(f *fakeTemporal) { f.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive} },
			wantCode: http.StatusOK, wantDescribe: true,
		},
		{
			name: "a worker answers an idle tenant with a summary",
			setup: func(f *fakeTemporal) {
				f.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive}
				f.describeResp = memoWith(t, converter.GetDefaultDataConverter(), recorded)
			},
			wantCode: http.StatusOK, wantDescribe: true,
		},
		{
			name:     "unknown tenant stays 404",
			setup:    func(f *fakeTemporal) { f.queryErr = serviceerror.NewNotFound("workflow not found for ID: tenant:acme") },
			wantCode: http.StatusNotFound, wantBody: `{"error":"tenant acme not found"}`, wantDescribe: true,
		},
		{
			name:     "other error",
			setup:    func(f *fakeTemporal) { f.queryErr = errors.New("transport is closing") },
			wantCode: http.StatusServiceUnavailable, wantBody: `{"error":"query tenant acme: transport is closing"}`, wantDescribe: true,
		},
		{
			name:     "unknown to the server",
			setup:    func(f *fakeTemporal) { f.describeErr = serviceerror.NewNotFound("workflow not found") },
			wantCode: http.StatusNotFound, wantBody: `{"error":"tenant acme not found"}`, wantDescribe: true,
		},
		{
			name: "no summary recorded (a run from before the memo)",
			setup: func(f *fakeTemporal) {
				f.queryErr = serviceerror.NewDeadlineExceeded("context deadline exceeded")
			},
			wantCode: http.StatusServiceUnavailable, wantBody: `{"error":"tenant acme: no worker answered the state query within 5s"}`, wantDescribe: true,
		},
		{
			name: "describe fails too",
			setup: func(f *fakeTemporal) {
				f.queryErr = serviceerror.NewDeadlineExceeded("context deadline exceeded")
				f.describeErr = serviceerror.NewUnavailable("frontend down")
			},
			wantCode: http.StatusServiceUnavailable, wantBody: `{"error":"tenant acme: no worker answered the state query within 5s"}`, wantDescribe: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			tt.setup(e.temporal)
			rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
			require.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			if tt.wantBody != "" {
				assert.JSONEq(t, tt.wantBody, rec.Body.String())
			}
			assert.Empty(t, rec.Header().Get(StaleHeader))
			assert.NotContains(t, rec.Body.String(), `"stale"`)
			if tt.wantDescribe {
				assert.Equal(t, []string{"tenant:acme"}, e.temporal.describes)
			} else {
				assert.Empty(t, e.temporal.describes)
			}
		})
	}
}

// busyWith is a description whose memo holds sum while the workflow's task
// runs (a query would wait for it).
func busyWith(t *testing.T, sum tenant.Summary) *workflowservice.DescribeWorkflowExecutionResponse {
	d := memoWith(t, converter.GetDefaultDataConverter(), sum)
	d.PendingWorkflowTask = &workflowpb.PendingWorkflowTaskInfo{State: enumspb.PENDING_WORKFLOW_TASK_STATE_STARTED}
	return d
}

func TestGetTenantDoesNotWaitBehindARunningTask(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.queryBlock = true // a query would wait 5 s
	e.temporal.describeResp = busyWith(t, recorded)

	start := time.Now()
	rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, "1", rec.Header().Get(StaleHeader))
	var body staleTenant
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, staleTenant{Summary: recorded, Stale: true, StaleReason: busyReason}, body)
	assert.Empty(t, e.temporal.queries, "no query sent to wait behind the task")
}

func TestGetTenantFreshWaitsForTheWorkflow(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.describeResp = busyWith(t, recorded)
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateUpdating}

	rec := e.do(http.MethodGet, "/v1/tenants/acme?fresh=true", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Empty(t, rec.Header().Get(StaleHeader))
	assert.Contains(t, rec.Body.String(), `"state":"updating"`)
	assert.Equal(t, []string{"tenant:acme"}, e.temporal.queries)
	assert.Empty(t, e.temporal.describes)

	rec = e.do(http.MethodGet, "/v1/tenants/acme?fresh=soon", opsToken, "")
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"field":"fresh"`)
	assert.Len(t, e.temporal.queries, 1, "nothing asked on bad input")
}

func TestGetTenantReadWaitBoundsTheQuery(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.ReadWait = 30 * time.Millisecond })
	e.temporal.queryBlock = true
	e.temporal.describeResp = memoWith(t, converter.GetDefaultDataConverter(), recorded)

	start := time.Now()
	rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Less(t, time.Since(start), time.Second, "ReadWait, not QueryTimeout (5s)")
	assert.Contains(t, rec.Body.String(), `"staleReason":"no worker answered the state query within 30ms`)
}

func TestOnlyGetTenantAnswersStale(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.QueryTimeout = 50 * time.Millisecond })
	e.temporal.queryBlock = true
	e.temporal.describeResp = memoWith(t, converter.GetDefaultDataConverter(), recorded)
	rec := e.do(http.MethodGet, "/v1/tenants/acme/backups", opsToken, "")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Empty(t, e.temporal.describes)
}
