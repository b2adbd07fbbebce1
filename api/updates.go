package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/internal/audit"
)

var idempotencyKey = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// idempotentUpdateID derives an Update id from the request's
// Idempotency-Key: Temporal answers a repeated Update id with the stored
// outcome, so a client retrying after a timeout gets the first answer
// instead of acting twice. Without a key the id is "" (every request is
// new). A malformed key is answered 400 here and ok is false.
func idempotentUpdateID(c *gin.Context, update, caller string) (id string, ok bool) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		return "", true
	}
	if !idempotencyKey.MatchString(key) {
		respondFieldError(c, badField("Idempotency-Key", "Idempotency-Key must be 8-64 letters, digits, '-' or '_'"))
		return "", false
	}
	return update + ":" + caller + ":" + key, true
}

// completeUpdate sends an Update to a workflow and waits for its result
// (or its validator's refusal).
func (s *server) completeUpdate(ctx context.Context, workflowID, updateID, update string, arg, result any) error {
	handle, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		UpdateID:     updateID,
		WorkflowID:   workflowID,
		UpdateName:   update,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return handle.Get(ctx, result)
}

// sendUpdate sends a request's Update to a workflow (an Idempotency-Key
// makes its id) and waits, within the query timeout, for its result. When
// it returns false the request is answered already: a malformed key, the
// workflow's refusal or a failure, mapped for target.
func (s *server) sendUpdate(c *gin.Context, workflowID string, target updateTarget, update string, arg, result any) bool {
	updateID, ok := idempotentUpdateID(c, update, c.GetString(ctxCaller))
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	if err := s.completeUpdate(ctx, workflowID, updateID, update, arg, result); err != nil {
		s.respondUpdateFailure(ctx, c, target, update, err)
		return false
	}
	return true
}

// updateTarget names the workflow an Update went to, for the answers.
type updateTarget struct {
	kind  string // "release", "tenant"
	id    string
	ended string // why a closed workflow takes no more Updates
	// refusals are the failure types the workflow's validators use; any
	// other failure is logged.
	refusals []string
	// notFoundType is the refusal that means the request named something
	// the workflow does not have: 404 naming the field notFound.
	notFoundType, notFound string
	// invalidType is the refusal that means a field of the request is
	// wrong: 400 naming the field its details carry.
	invalidType string
}

// respondUpdateFailure maps a refused or failed Update: the workflow's
// refusals are 409 with its reason; the server answers an Update to a
// closed workflow with NotFound "already completed", which is 409 too.
func (s *server) respondUpdateFailure(ctx context.Context, c *gin.Context, t updateTarget, update string, err error) {
	var (
		notFound *serviceerror.NotFound
		appErr   *temporal.ApplicationError
		timeout  *client.WorkflowUpdateServiceTimeoutOrCanceledError
	)
	switch {
	case errors.As(err, &notFound) && strings.Contains(notFound.Error(), "already completed"):
		respondError(c, http.StatusConflict, fmt.Sprintf("%s %s %s", t.kind, t.id, t.ended))
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, fmt.Sprintf("%s %s not found", t.kind, t.id))
	case errors.As(err, &appErr) && t.notFound != "" && appErr.Type() == t.notFoundType:
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": appErr.Message(), "field": t.notFound})
	case errors.As(err, &appErr) && t.invalidType != "" && appErr.Type() == t.invalidType:
		var field string
		_ = appErr.Details(&field) // none: the message alone
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": appErr.Message(), "field": field})
	case errors.As(err, &appErr):
		if !slices.Contains(t.refusals, appErr.Type()) {
			s.log.WarnContext(ctx, t.kind+" update failed in the workflow", t.kind, t.id, "update", update, "type", appErr.Type(), "error", err)
		}
		respondError(c, http.StatusConflict, appErr.Message())
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.log.WarnContext(ctx, t.kind+" update timed out", t.kind, t.id, "update", update, "timeout", s.cfg.QueryTimeout.String(), "error", err)
		// The Update may be in the workflow's history already: only its
		// answer is missing. Say so, and how to learn its outcome, so a
		// client does not take a later 409 for a refusal of its request.
		c.Header("Retry-After", "5")
		noteAudit(c, auditOutcome, audit.OutcomeUnknown)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("%s %s: no worker answered %s within %s; it may still be carried out: "+
			"retry with the same Idempotency-Key to get its outcome, or read the %s before sending it again", t.kind, t.id, update, s.cfg.QueryTimeout, t.kind))
	default:
		s.log.ErrorContext(ctx, t.kind+" update failed", t.kind, t.id, "update", update, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("%s %s: %s: %v", t.kind, t.id, update, err))
	}
}
