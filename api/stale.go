package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

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
	rec, done := s.recorded(c, name, s.cfg.QueryTimeout)
	if done {
		return true
	}
	if rec.summary == nil {
		s.log.WarnContext(c.Request.Context(), "no recorded tenant state to answer from", "tenant", name, "query_error", cause)
		return false
	}
	s.answerRecorded(c, name, rec, s.staleReason(cause, s.cfg.QueryTimeout))
	return true
}

// recordedState is what the server holds of a tenant's workflow without
// asking a worker: the summary its memo records (nil: none yet) and
// whether its workflow task is running.
type recordedState struct {
	summary *tenant.Summary
	running bool
	// runID and length are the current run and its history length
	// ("" and 0 when the describe failed): the stateCache's key.
	runID  string
	length int64
	// err is why the describe failed (nil: it answered).
	err error
}

// busyReason is a stale answer's reason while the workflow's task runs.
const busyReason = "the tenant's workflow is busy with a step (its task is running): this is the state it last recorded; ?fresh=true waits for its own answer"

// busy says whether a query would wait behind a running workflow task
// and there is a summary to answer with instead.
func (r recordedState) busy() bool { return r.summary != nil && r.running }

// staleAnswer answers a query nobody answered in time with the recorded
// summary (nil when there is none: the error is answered instead).
func (r recordedState) staleAnswer(s *server, wait time.Duration) staleAnswer {
	if r.summary == nil {
		return nil
	}
	return func(c *gin.Context, name string, cause error) bool {
		s.answerRecorded(c, name, r, s.staleReason(cause, wait))
		return true
	}
}

// recorded describes the tenant's workflow, waiting at most wait. It
// answers the request (done) for an unknown tenant; any other failure
// leaves an empty recordedState, so the query alone decides the answer.
func (s *server) recorded(c *gin.Context, name string, wait time.Duration) (rec recordedState, done bool) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), wait)
	defer cancel()
	resp, err := s.temporal.DescribeWorkflowExecution(ctx, tenant.WorkflowID(name), "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, fmt.Sprintf("tenant %s not found", name))
		return rec, true
	case err != nil:
		s.log.WarnContext(ctx, "describe tenant workflow failed", "tenant", name, "error", err)
		rec.err = err
		return rec, false
	}
	rec.running = resp.GetPendingWorkflowTask().GetState() == enumspb.PENDING_WORKFLOW_TASK_STATE_STARTED
	rec.runID = resp.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	rec.length = resp.GetWorkflowExecutionInfo().GetHistoryLength()
	if sum, err := s.summaryOf(resp); err == nil {
		rec.summary = &sum
	} else {
		s.log.DebugContext(ctx, "no recorded tenant summary", "tenant", name, "error", err)
	}
	return rec, false
}

// answerRecorded answers with rec's summary, marked stale for reason.
func (s *server) answerRecorded(c *gin.Context, name string, rec recordedState, reason string) {
	level := slog.LevelWarn // no worker answered: ops should know
	if reason == busyReason {
		level = slog.LevelDebug // an operation runs: as expected
	}
	s.log.Log(c.Request.Context(), level, "tenant state answered stale from the memo", "tenant", name, "reason", reason)
	c.Header(StaleHeader, "1")
	c.JSON(http.StatusOK, staleTenant{Summary: *rec.summary, Stale: true, StaleReason: reason})
}

// lastSeenTenant is GET /v1/tenants/{name}'s answer when the server did
// not describe the workflow within the read wait: the state this API
// process last had from the workflow, marked stale, and when it had it.
type lastSeenTenant struct {
	tenant.Tenant
	Stale       bool      `json:"stale"`
	StaleReason string    `json:"staleReason"`
	SeenAt      time.Time `json:"seenAt"`
}

// answerLastSeen answers with the tenant's last state in the state cache,
// marked stale, when there is one (false: none, nothing answered). It is
// asked only when the describe failed: a server that cannot describe a
// workflow within the read wait is overloaded or unreachable, and a query
// sent to it would wait its whole timeout (5 s) for the same outcome, so
// the read sheds that load instead. ?fresh=true still waits.
func (s *server) answerLastSeen(c *gin.Context, name string) bool {
	st, at, ok := s.states.last(name)
	if !ok {
		return false
	}
	reason := fmt.Sprintf("the Temporal server did not describe the tenant's workflow within %s: this is the state the workflow answered at %s; ?fresh=true waits for its own answer",
		s.cfg.ReadWait, at.UTC().Format(time.RFC3339))
	s.log.WarnContext(c.Request.Context(), "tenant state answered stale from the API's cache", "tenant", name, "seen_at", at)
	c.Header(StaleHeader, "1")
	c.JSON(http.StatusOK, lastSeenTenant{Tenant: st, Stale: true, StaleReason: reason, SeenAt: at})
	return true
}

// summaryOf is the summary in a tenant workflow's memo (latest run).
func (s *server) summaryOf(resp *workflowservice.DescribeWorkflowExecutionResponse) (tenant.Summary, error) {
	var sum tenant.Summary
	id := resp.GetWorkflowExecutionInfo().GetExecution().GetWorkflowId()
	p := resp.GetWorkflowExecutionInfo().GetMemo().GetFields()[tenant.MemoSummary]
	if p == nil {
		return sum, fmt.Errorf("memo of %s has no %q: the run recorded none yet", id, tenant.MemoSummary)
	}
	if err := s.cfg.DataConverter.FromPayload(p, &sum); err != nil {
		return sum, fmt.Errorf("decode memo %q of %s: %w", tenant.MemoSummary, id, err)
	}
	return sum, nil
}

// staleReason says why the answer is not the workflow's own.
func (s *server) staleReason(cause error, wait time.Duration) string {
	var notReady *serviceerror.WorkflowNotReady
	if errors.As(cause, &notReady) {
		return "the tenant's workflow task is not running (" + notReady.Error() + "): this is the state it last recorded"
	}
	return fmt.Sprintf("no worker answered the state query within %s: this is the state the workflow last recorded", wait)
}
