package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// at is a description of run at history length n, with a summary.
func at(t *testing.T, run string, n int64) *workflowservice.DescribeWorkflowExecutionResponse {
	d := memoWith(t, converter.GetDefaultDataConverter(), recorded)
	d.WorkflowExecutionInfo.Execution = &commonpb.WorkflowExecution{WorkflowId: "tenant:acme", RunId: run}
	d.WorkflowExecutionInfo.HistoryLength = n
	return d
}

func TestGetTenantAsksTheWorkflowOnlyWhenItsHistoryMoved(t *testing.T) {
	e := newTestEnv(t)
	get := func() string {
		rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Empty(t, rec.Header().Get(StaleHeader))
		return rec.Body.String()
	}
	e.temporal.describeResp = at(t, "run-1", 40)
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Image: "app:v1"}
	assert.Contains(t, get(), `"image":"app:v1"`)
	assert.Len(t, e.temporal.queries, 1)

	// Same run, same length: the workflow has not moved.
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Image: "app:never-asked"}
	assert.Contains(t, get(), `"image":"app:v1"`)
	assert.Len(t, e.temporal.queries, 1, "answered without a query")

	// The history moved: asked again.
	e.temporal.describeResp = at(t, "run-1", 45)
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Image: "app:v2"}
	assert.Contains(t, get(), `"image":"app:v2"`)
	assert.Len(t, e.temporal.queries, 2)

	// A new run (continue-as-new) at the old length is another history.
	e.temporal.describeResp = at(t, "run-2", 45)
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Image: "app:v3"}
	assert.Contains(t, get(), `"image":"app:v3"`)
	assert.Len(t, e.temporal.queries, 3)

	// ?fresh=true always asks.
	rec := e.do(http.MethodGet, "/v1/tenants/acme?fresh=true", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Len(t, e.temporal.queries, 4)
}

func TestGetTenantCachesNothingWithoutAHistoryPoint(t *testing.T) {
	e := newTestEnv(t)
	// A description without a run (the fake's default): every read asks.
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive}
	for range 2 {
		rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
		require.Equal(t, http.StatusOK, rec.Code)
	}
	assert.Len(t, e.temporal.queries, 2)
}

func TestStateCacheIsBounded(t *testing.T) {
	c := newStateCache(2)
	c.put("a", "r", 1, tenant.Tenant{Name: "a"})
	c.put("b", "r", 1, tenant.Tenant{Name: "b"})
	c.put("c", "r", 1, tenant.Tenant{Name: "c"})
	assert.Len(t, c.m, 2)
	got, ok := c.get("c", "r", 1)
	require.True(t, ok)
	assert.Equal(t, "c", got.Name)
	c.put("c", "r", 2, tenant.Tenant{Name: "c2"})
	assert.Len(t, c.m, 2, "replacing an entry drops none")
	_, ok = c.get("c", "r", 1)
	assert.False(t, ok, "an older point misses")

	off := newStateCache(-1)
	off.put("a", "r", 1, tenant.Tenant{})
	assert.Empty(t, off.m)
}

func TestGetTenantAnswersItsLastStateWhenTheServerDoesNotDescribe(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.QueryTimeout = time.Minute })
	e.temporal.describeResp = at(t, "run-1", 40)
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Image: "app:v1"}
	rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	// The server is overloaded: the describe fails within the read wait.
	// The API answers what the workflow last told it, marked stale, and
	// does not queue a query behind the describe (it would wait a minute).
	e.temporal.describeErr = serviceerror.NewUnavailable("server busy")
	e.temporal.queryBlock = true
	rec = e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "1", rec.Header().Get(StaleHeader))
	var body lastSeenTenant
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "app:v1", body.Image)
	assert.True(t, body.Stale)
	assert.Contains(t, body.StaleReason, "did not describe the tenant's workflow within 500ms")
	assert.WithinDuration(t, time.Now(), body.SeenAt, time.Minute)
	assert.Len(t, e.temporal.queries, 1, "no query after the failed describe")

	// ?fresh=true waits for the workflow's own answer.
	e.temporal.queryBlock = false
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Image: "app:v2"}
	rec = e.do(http.MethodGet, "/v1/tenants/acme?fresh=true", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Empty(t, rec.Header().Get(StaleHeader))
	assert.Contains(t, rec.Body.String(), `"image":"app:v2"`)
}

func TestGetTenantAsksWhenTheServerDoesNotDescribeAnUnseenTenant(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.describeErr = serviceerror.NewUnavailable("server busy")
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Image: "app:v1"}
	rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Empty(t, rec.Header().Get(StaleHeader))
	assert.Len(t, e.temporal.queries, 1)
}
