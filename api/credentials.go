package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// getCredentials hands the tenant's first directory account and its
// password to the distributor, once: the tenant workflow forgets the
// password and records who took it (an Update, validated by the workflow).
func (s *server) getCredentials(c *gin.Context) {
	name := c.Param("name")
	if err := validateName(name); err != nil {
		respondFieldError(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	by := c.GetString(ctxCaller)
	// An Idempotency-Key makes the Update id: Temporal answers a repeated
	// id with the stored outcome, so a portal whose request timed out after
	// the password was handed out gets it again by retrying with the same
	// key. Without a key every request is new: the second one gets 410.
	updateID, ok := idempotentUpdateID(c, "fetch-credentials", by)
	if !ok {
		return
	}
	var creds tenant.Credentials
	if err := s.completeUpdate(ctx, tenant.WorkflowID(name), updateID, tenant.UpdateFetchCredentials,
		tenant.FetchCredentialsInput{By: by}, &creds); err != nil {
		s.respondUpdateError(c, name, err)
		return
	}
	s.log.InfoContext(c.Request.Context(), "credentials handed out", "tenant", name, "caller", by)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, creds)
}

// respondUpdateError maps a rejected or failed Update: the workflow's own
// reasons (already fetched, not active yet) become 410 and 409.
func (s *server) respondUpdateError(c *gin.Context, name string, err error) {
	var notFound *serviceerror.NotFound
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, fmt.Sprintf("tenant %s not found", name))
	case errors.As(err, &appErr) && appErr.Type() == tenant.ErrCredentialsAlreadyFetched:
		respondError(c, http.StatusGone, appErr.Message())
	case errors.As(err, &appErr) && appErr.Type() == tenant.ErrCredentialsUnavailable:
		respondError(c, http.StatusConflict, appErr.Message())
	case errors.Is(err, context.DeadlineExceeded):
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("tenant %s: no worker answered within %s", name, s.cfg.QueryTimeout))
	default:
		s.log.ErrorContext(c.Request.Context(), "credentials update failed", "tenant", name, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("tenant %s: %v", name, err))
	}
}
