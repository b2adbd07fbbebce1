package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/tenantflow/tenantflow/workflows/reconcile"
)

// GET /v1/reconcile answers the reconcile's last round (ops only): 404
// while it does not run or has not finished a round, the report with
// its age after.
func TestGetReconcile(t *testing.T) {
	at := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	e := newTestEnv(t)
	e.temporal.queryErr = serviceerror.NewNotFound("workflow not found")
	rec := e.do(http.MethodGet, "/v1/reconcile", opsToken, "")
	assert.Equal(t, http.StatusNotFound, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "not running")

	e.temporal.queryErr = nil
	e.temporal.queryResult = reconcile.Report{}
	rec = e.do(http.MethodGet, "/v1/reconcile", opsToken, "")
	assert.Equal(t, http.StatusNotFound, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "not finished a round yet")

	e.temporal.queryResult = reconcile.Report{At: at, Counts: map[reconcile.Kind]int{reconcile.KindOrphan: 1},
		Hosts: []reconcile.HostReport{{Host: "host-a", Scanned: true, Objects: 3, Counts: map[reconcile.Kind]int{reconcile.KindOrphan: 1}}},
		Findings: []reconcile.Finding{{Kind: reconcile.KindOrphan, Object: "container", Name: "tf-gone_app", Host: "host-a", Tenant: "gone",
			Reason: "no tenant gone runs", OwnerFinished: true, FirstSeen: at.Add(-time.Minute), Action: reconcile.ActionReported}}}
	rec = e.do(http.MethodGet, "/v1/reconcile", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got struct {
		reconcile.Report
		AgeSeconds int64 `json:"ageSeconds"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, at, got.At)
	require.Len(t, got.Findings, 1)
	assert.Equal(t, "tf-gone_app", got.Findings[0].Name)
	assert.Equal(t, 1, got.Counts[reconcile.KindOrphan])
	assert.Equal(t, "host-a", got.Hosts[0].Host)
	assert.Equal(t, []string{reconcile.WorkflowID, reconcile.WorkflowID, reconcile.WorkflowID}, e.temporal.queries)
	assert.Equal(t, reconcile.QueryReconcile, e.temporal.queryTypes[2])

	for _, token := range []string{developerToken, distributorToken} {
		rec = e.do(http.MethodGet, "/v1/reconcile", token, "")
		assert.Equal(t, http.StatusForbidden, rec.Code, "ops only")
	}
}

// The reconcile is started with the API (fleet or not) and with the host
// registry, each time joining the one running.
func TestTheReconcileStartsWithTheAPIAndTheRegistry(t *testing.T) {
	e := newTestEnv(t)
	cfg := Config{TaskQueue: "tenants", ReconcileEvery: 2 * time.Second}
	require.NoError(t, EnsureReconcile(context.Background(), e.temporal, cfg))
	rec := e.do(http.MethodPost, "/v1/hosts", opsToken, `{"name":"host-a","docker":"tcp://10.0.0.2:2375","address":"10.0.0.2","capacity":{"cpus":2,"memory":"1Gi"}}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var ids []string
	for _, c := range e.temporal.startCalls() {
		if c.opts.ID == reconcile.WorkflowID {
			ids = append(ids, c.opts.ID)
			assert.Equal(t, reconcile.WorkflowType, c.workflow)
			assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, c.opts.WorkflowIDConflictPolicy)
			assert.Equal(t, "tenants", c.opts.TaskQueue)
		}
	}
	require.Len(t, ids, 2, "at start-up and with the registry")
	assert.Equal(t, reconcile.Input{Every: 2 * time.Second}, e.temporal.startCalls()[0].args[0])
}
