package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/tenantflow/tenantflow/workflows/reconcile"
)

// EnsureReconcile starts the drift reconcile (workflows/reconcile) unless
// it runs: at the API's start-up, so a deployment without fleet hosts
// (the shared engine only) has it too, and again with the host registry.
func EnsureReconcile(ctx context.Context, t Temporal, cfg Config) error {
	_, err := t.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: reconcile.WorkflowID, TaskQueue: cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Drift reconcile: engines, routes and records against the tenants",
	}, reconcile.WorkflowType, reconcile.Input{Every: cfg.ReconcileEvery, Grace: cfg.ReconcileGrace})
	if err != nil {
		return fmt.Errorf("start the drift reconcile: %w", err)
	}
	return nil
}

// getReconcile answers the last reconcile round (ops); 404 before the
// first one.
func (s *server) getReconcile(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	v, err := s.temporal.QueryWorkflow(ctx, reconcile.WorkflowID, "", reconcile.QueryReconcile)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, "the drift reconcile is not running")
		return
	case err != nil:
		s.log.WarnContext(ctx, "reconcile query failed", "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("query the drift reconcile: %v", err))
		return
	}
	var rep reconcile.Report
	if err := v.Get(&rep); err != nil {
		respondError(c, http.StatusBadGateway, fmt.Sprintf("decode the reconcile report: %v", err))
		return
	}
	if rep.At.IsZero() {
		respondError(c, http.StatusNotFound, "the drift reconcile has not finished a round yet")
		return
	}
	c.JSON(http.StatusOK, reconcileView{Report: rep, AgeSeconds: int64(s.now().Sub(rep.At) / time.Second)})
}

// reconcileView is GET /v1/reconcile: the last round and how old it is.
type reconcileView struct {
	reconcile.Report
	AgeSeconds int64 `json:"ageSeconds"`
}
