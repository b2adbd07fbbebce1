package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
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
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

const baseQuery = "WorkflowType = 'Tenant' AND ExecutionStatus != 'ContinuedAsNew'"

func TestListTenantsQuery(t *testing.T) {
	tests := []struct {
		name         string
		target       string
		wantQuery    string
		wantSize     int32
		wantToken    []byte
		wantBadField string
	}{
		{name: "no filters", target: "/v1/tenants", wantQuery: baseQuery, wantSize: 100},
		{name: "state filter", target: "/v1/tenants?state=failed", wantQuery: baseQuery + " AND TenantState = 'failed'", wantSize: 100},
		{name: "restoring", target: "/v1/tenants?state=restoring", wantQuery: baseQuery + " AND TenantState = 'restoring'", wantSize: 100},
		{name: "stage filter", target: "/v1/tenants?stage=staging", wantQuery: baseQuery + " AND Stage = 'staging'", wantSize: 100},
		{name: "both filters and paging", target: "/v1/tenants?stage=prod&state=active&pageSize=1000&pageToken=" + encodePageToken([]byte{0xfb, 0xff, 1}),
			wantQuery: baseQuery + " AND TenantState = 'active' AND Stage = 'prod'", wantSize: 1000, wantToken: []byte{0xfb, 0xff, 1}},
		{name: "padded page token", target: "/v1/tenants?pageToken=" + padded(encodePageToken([]byte("ab"))), wantQuery: baseQuery, wantSize: 100, wantToken: []byte("ab")},
		{name: "smallest page", target: "/v1/tenants?pageSize=1", wantQuery: baseQuery, wantSize: 1},
		{name: "unknown state", target: "/v1/tenants?state=broken", wantBadField: "state"},
		{name: "injection in state", target: "/v1/tenants?state=active'%20OR%20'1'='1", wantBadField: "state"},
		{name: "unknown stage", target: "/v1/tenants?stage=dev", wantBadField: "stage"},
		{name: "injection in stage", target: "/v1/tenants?stage=prod'%20OR%20WorkflowType%20!=%20'", wantBadField: "stage"},
		{name: "page size zero", target: "/v1/tenants?pageSize=0", wantBadField: "pageSize"},
		{name: "page size too big", target: "/v1/tenants?pageSize=1001", wantBadField: "pageSize"},
		{name: "page size not a number", target: "/v1/tenants?pageSize=ten", wantBadField: "pageSize"},
		{name: "empty parameters mean no filter", target: "/v1/tenants?state=&stage=&pageSize=&pageToken=", wantQuery: baseQuery, wantSize: 100},
		{name: "bad page token", target: "/v1/tenants?pageToken=***", wantBadField: "pageToken"},
		{name: "garbage page token", target: "/v1/tenants?pageToken=garbage", wantBadField: "pageToken"},
		{name: "page token without its checksum", target: "/v1/tenants?pageToken=" + base64.RawURLEncoding.EncodeToString([]byte(`{"CloseTime":1}`)), wantBadField: "pageToken"},
		{name: "page token with a changed byte", target: "/v1/tenants?pageToken=" + flipLast(encodePageToken([]byte("abc"))), wantBadField: "pageToken"},
		{name: "empty page token", target: "/v1/tenants?pageToken=" + encodePageToken(nil), wantBadField: "pageToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodGet, tt.target, developerToken, "")
			if tt.wantBadField != "" {
				require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
				var body struct{ Error, Field string }
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
				assert.Equal(t, tt.wantBadField, body.Field)
				assert.NotEmpty(t, body.Error)
				assert.Empty(t, e.temporal.listCalls(), "an invalid filter must not reach Temporal")
				return
			}
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			calls := e.temporal.listCalls()
			require.Len(t, calls, 1)
			assert.Equal(t, tt.wantQuery, calls[0].GetQuery())
			assert.Equal(t, tt.wantSize, calls[0].GetPageSize())
			assert.Equal(t, tt.wantToken, calls[0].GetNextPageToken())
			assert.JSONEq(t, `{"tenants":[]}`, rec.Body.String())
		})
	}
}

func TestListTenantsErrorMessages(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodGet, "/v1/tenants?state=broken", opsToken, "")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	assert.JSONEq(t, `{"field":"state","error":"unknown state \"broken\" (one of: provisioning, active, updating, decommissioning, decommissioned, restoring, failed, moving, degraded, suspended)"}`, rec.Body.String())

	rec = e.do(http.MethodGet, "/v1/tenants?stage=dev", opsToken, "")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	assert.JSONEq(t, `{"field":"stage","error":"unknown stage \"dev\" (one of: staging, prod)"}`, rec.Body.String())
}

func TestListTenantsTakesEveryWorkflowState(t *testing.T) {
	for _, state := range tenant.States {
		e := newTestEnv(t)
		rec := e.do(http.MethodGet, "/v1/tenants?state="+string(state), developerToken, "")
		require.Equal(t, http.StatusOK, rec.Code, "state %s: %s", state, rec.Body.String())
		require.Len(t, e.temporal.listCalls(), 1)
		assert.Equal(t, baseQuery+" AND TenantState = '"+string(state)+"'", e.temporal.listCalls()[0].GetQuery())
	}
}

// execution builds a visibility record as the server returns it.
func execution(t *testing.T, name, runID string, status enumspb.WorkflowExecutionStatus, start time.Time, attrs map[string]string) *workflowpb.WorkflowExecutionInfo {
	t.Helper()
	fields := map[string]*commonpb.Payload{}
	for k, v := range attrs {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		require.NoError(t, err)
		fields[k] = p
	}
	return &workflowpb.WorkflowExecutionInfo{
		Execution:        &commonpb.WorkflowExecution{WorkflowId: "tenant:" + name, RunId: runID},
		Type:             &commonpb.WorkflowType{Name: "Tenant"},
		StartTime:        timestamppb.New(start),
		Status:           status,
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: fields},
	}
}

func TestListTenantsResults(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	e := newTestEnv(t)
	e.temporal.listResp = &workflowservice.ListWorkflowExecutionsResponse{
		Executions: []*workflowpb.WorkflowExecutionInfo{
			// acme was re-created after a failed provisioning: newest run wins,
			// whichever order visibility returns them in.
			execution(t, "acme", "run-old", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, t0,
				map[string]string{"TenantId": "acme", "TenantState": "failed", "Stage": "prod"}),
			execution(t, "beta", "run-b", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0.Add(time.Hour),
				map[string]string{"TenantId": "beta", "TenantState": "active", "Stage": "staging", "Release": "r-20261124", "Image": "registry.test/demo-app@sha256:abc"}),
			execution(t, "acme", "run-new", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0.Add(2*time.Hour),
				map[string]string{"TenantId": "acme", "TenantState": "provisioning", "Stage": "prod"}),
			execution(t, "gamma", "run-g", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0.Add(3*time.Hour),
				map[string]string{"TenantId": "gamma", "TenantState": "active", "Stage": "prod"}),
			execution(t, "gamma", "run-g-old", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, t0,
				map[string]string{"TenantId": "gamma", "TenantState": "failed", "Stage": "prod"}),
			// Started by hand without search attributes: the id names it.
			execution(t, "delta", "run-d", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0, nil),
		},
		NextPageToken: []byte{0xfb, 0xff, 0x01},
	}
	rec := e.do(http.MethodGet, "/v1/tenants", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{
		"tenants":[
			{"name":"acme","state":"provisioning","stage":"prod","workflowId":"tenant:acme","runId":"run-new","status":"Running","startTime":"2025-03-01T12:00:00Z"},
			{"name":"beta","state":"active","stage":"staging","release":"r-20261124","image":"registry.test/demo-app@sha256:abc","workflowId":"tenant:beta","runId":"run-b","status":"Running","startTime":"2025-03-01T11:00:00Z"},
			{"name":"gamma","state":"active","stage":"prod","workflowId":"tenant:gamma","runId":"run-g","status":"Running","startTime":"2025-03-01T13:00:00Z"},
			{"name":"delta","state":"","stage":"","workflowId":"tenant:delta","runId":"run-d","status":"Completed","startTime":"2025-03-01T10:00:00Z"}
		],
		"nextPageToken":"`+encodePageToken([]byte{0xfb, 0xff, 0x01})+`"
	}`, rec.Body.String())

	// The token we hand out is accepted back unchanged.
	var page struct{ NextPageToken string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	rec = e.do(http.MethodGet, "/v1/tenants?pageToken="+page.NextPageToken, opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code)
	calls := e.temporal.listCalls()
	require.Len(t, calls, 2)
	assert.Equal(t, []byte{0xfb, 0xff, 0x01}, calls[1].GetNextPageToken())
}

// padded adds the '=' padding base64 would have.
func padded(s string) string { return s + strings.Repeat("=", (4-len(s)%4)%4) }

// flipLast changes the last byte a token encodes.
func flipLast(token string) string {
	b, _ := base64.RawURLEncoding.DecodeString(token)
	b[len(b)-1] ^= 1
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestListRefusedPageTokenIs400(t *testing.T) {
	for _, target := range []string{"/v1/tenants", "/v1/releases"} {
		t.Run(target, func(t *testing.T) {
			e := newTestEnv(t)
			e.temporal.listErr = serviceerror.NewInvalidArgument("unable to deserialize page token: invalid character")
			rec := e.do(http.MethodGet, target+"?pageToken="+encodePageToken([]byte("expired")), opsToken, "")
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, msg := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, "pageToken", field)
			assert.Contains(t, msg, "list again from the first page")

			// Without a token, InvalidArgument is the API's own fault.
			rec = e.do(http.MethodGet, target, opsToken, "")
			require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		})
	}
}

func TestListTenantsTemporalDown(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.listErr = errors.New("visibility unavailable")
	rec := e.do(http.MethodGet, "/v1/tenants", opsToken, "")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"error":"list tenants: visibility unavailable"}`, rec.Body.String())
}
