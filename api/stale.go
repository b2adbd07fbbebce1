package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// StaleHeader marks an answer built from the state the tenant's workflow
// last recorded (its memo) rather than from a worker's answer.
const StaleHeader = "X-Tenantflow-Stale"

// staleTenant is GET /v1/tenants/{name}'s answer while no worker answers:
// the summary the workflow last recorded, marked stale with the reason.
type staleTenant struct {
	tenant.Summary
	Stale       bool   `json:"stale"`
	StaleReason string `json:"staleReason"`
}

// noWorkerAnswered tells a state query that failed for want of a worker
// (none answered in time, or the workflow's task is not running) from one
// a worker or the server refused.
func noWorkerAnswered(ctx context.Context, err error) bool {
	var (
		deadline *serviceerror.DeadlineExceeded
		notReady *serviceerror.WorkflowNotReady
	)
	return errors.As(err, &deadline) || errors.As(err, &notReady) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)
}

// answerStale answers with the summary in the tenant workflow's memo,
// marked stale, so reads go on through a worker outage. It answers 404
// for a tenant the server does not know, and leaves the request
// unanswered (false) when there is no summary to give.
func (s *server) answerStale(c *gin.Context, name string, cause error) bool {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	sum, err := s.recordedSummary(ctx, name)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, fmt.Sprintf("tenant %s not found", name))
		return true
	case err != nil:
		s.log.WarnContext(ctx, "no recorded tenant state to answer from", "tenant", name, "query_error", cause, "error", err)
		return false
	}
	reason := s.staleReason(cause)
	s.log.WarnContext(ctx, "tenant state answered stale from the memo", "tenant", name, "reason", reason)
	c.Header(StaleHeader, "1")
	c.JSON(http.StatusOK, staleTenant{Summary: sum, Stale: true, StaleReason: reason})
	return true
}

// recordedSummary is the summary in the tenant workflow's memo (latest run).
func (s *server) recordedSummary(ctx context.Context, name string) (tenant.Summary, error) {
	var sum tenant.Summary
	resp, err := s.temporal.DescribeWorkflowExecution(ctx, tenant.WorkflowID(name), "")
	if err != nil {
		return sum, err
	}
	p := resp.GetWorkflowExecutionInfo().GetMemo().GetFields()[tenant.MemoSummary]
	if p == nil {
		return sum, fmt.Errorf("memo of %s has no %q: the run recorded none yet", tenant.WorkflowID(name), tenant.MemoSummary)
	}
	if err := s.cfg.DataConverter.FromPayload(p, &sum); err != nil {
		return sum, fmt.Errorf("decode memo %q of %s: %w", tenant.MemoSummary, tenant.WorkflowID(name), err)
	}
	return sum, nil
}

// staleReason says why the answer is not the workflow's own.
func (s *server) staleReason(cause error) string {
	var notReady *serviceerror.WorkflowNotReady
	if errors.As(cause, &notReady) {
		return "the tenant's workflow task is not running (" + notReady.Error() + "): this is the state it last recorded"
	}
	return fmt.Sprintf("no worker answered the state query within %s: this is the state the workflow last recorded", s.cfg.QueryTimeout)
}
