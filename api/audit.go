package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tenantflow/tenantflow/internal/audit"
)

// Audit trail. Every route that changes something (or hands out a
// secret) is wrapped by audited(action): once the request is answered,
// an entry records the action, who asked (the token's role and caller
// name), what about (the route's tenant, release or host, or the one the
// handler names), why (the handler notes the reason), and the outcome:
// its status and, for a refusal or a failure, the error the caller was
// given. A request without a valid token is not recorded: it changed
// nothing and names no one. Each entry goes to the JSON log, and to the
// store (Config.Audit) when there is one.

// Gin context keys the handlers note the audit's detail under.
const (
	auditTenant  = "tenantflow.audit.tenant"
	auditRelease = "tenantflow.audit.release"
	auditHost    = "tenantflow.audit.host"
	auditOutcome = "tenantflow.audit.outcome"
	auditReason  = "tenantflow.audit.reason"
	auditDetail  = "tenantflow.audit.detail"
)

// noteAudit records what the audit entry of this request says beyond the
// route: key is one of the audit* keys.
func noteAudit(c *gin.Context, key, value string) { c.Set(key, value) }

// noteReason notes the request's reason for its audit entry, and
// returns it.
func noteReason(c *gin.Context, reason string) string {
	noteAudit(c, auditReason, reason)
	return reason
}

// noteDetail notes what was asked for the audit entry, and returns v; a
// request that asks several things (PATCH: a window, a plan, settings)
// gets them all, in order.
func noteDetail[T any](c *gin.Context, detail string, v T) T {
	if prev := c.GetString(auditDetail); prev != "" {
		detail = prev + "; " + detail
	}
	noteAudit(c, auditDetail, detail)
	return v
}

// maxAuditError is how much of an error answer is kept.
const maxAuditError = 4 << 10

// capture keeps the start of an error answer's body.
type capture struct {
	gin.ResponseWriter
	body bytes.Buffer
}

func (w *capture) Write(b []byte) (int, error) {
	if w.Status() >= 400 && w.body.Len() < maxAuditError {
		w.body.Write(b[:min(len(b), maxAuditError-w.body.Len())])
	}
	return w.ResponseWriter.Write(b)
}

// audited records the request under action once it is answered. The
// part before the first dot names what the route's parameter is: a
// tenant (:name), a release (:id) or a host (:name).
func (s *server) audited(action string) gin.HandlerFunc {
	kind, _, _ := strings.Cut(action, ".")
	return func(c *gin.Context) {
		w := &capture{ResponseWriter: c.Writer}
		c.Writer = w
		defer func() {
			// A handler that panics after it sent its Update changed
			// something too: recorded as failed, then the panic goes on
			// to the recovery middleware.
			if p := recover(); p != nil {
				s.audit(c, w, kind, action, http.StatusInternalServerError)
				panic(p)
			}
		}()
		c.Next()
		s.audit(c, w, kind, action, c.Writer.Status())
	}
}

// audit records the answered request (see audited).
func (s *server) audit(c *gin.Context, w *capture, kind, action string, status int) {
	role := roleOf(c)
	if role == "" {
		return // no valid token: nothing changed, no one to name
	}
	e := audit.Entry{Role: role, Actor: c.GetString(ctxCaller), Action: action, Status: status,
		Reason: c.GetString(auditReason), Detail: c.GetString(auditDetail),
		Tenant: c.GetString(auditTenant), Release: c.GetString(auditRelease), Host: c.GetString(auditHost)}
	switch kind {
	case "tenant":
		e.Tenant = cmp.Or(e.Tenant, c.Param("name"))
	case "release":
		e.Release = cmp.Or(e.Release, c.Param("id"))
	case "host":
		e.Host = cmp.Or(e.Host, c.Param("name"))
	}
	switch {
	case c.GetString(auditOutcome) != "":
		e.Outcome = c.GetString(auditOutcome)
	case status >= 500:
		e.Outcome = audit.OutcomeFailed
	case status >= 400:
		e.Outcome = audit.OutcomeRefused
	default:
		e.Outcome = audit.OutcomeAccepted
	}
	if status >= 400 {
		var answer struct {
			Error string `json:"error"`
			Field string `json:"field"`
		}
		if json.Unmarshal(w.body.Bytes(), &answer) == nil {
			e.Error = answer.Error
			if answer.Field != "" {
				e.Error = answer.Field + ": " + answer.Error
			}
		}
	}
	s.record(c.Request.Context(), e)
}

// record writes e to the JSON log and the store. A store that fails does
// not undo the change, which happened: the failure is logged and counted
// (tenantflow_audit_write_failures_total), and the log line keeps the
// entry.
func (s *server) record(ctx context.Context, e audit.Entry) {
	e.Normalize(time.Now()) // clipped: a huge bad name makes no huge log line
	s.log.InfoContext(ctx, "audit", "action", e.Action, "role", e.Role, "actor", e.Actor, "tenant", e.Tenant, "release", e.Release,
		"host", e.Host, "reason", e.Reason, "detail", e.Detail, "outcome", e.Outcome, "status", e.Status, "error", e.Error)
	if s.cfg.Audit == nil {
		return
	}
	// The request may be gone (a client that hung up); the entry is not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.QueryTimeout)
	defer cancel()
	if err := s.cfg.Audit.Append(ctx, e); err != nil {
		s.metrics.auditFailures.Inc()
		s.log.ErrorContext(ctx, "audit entry not stored", "action", e.Action, "actor", e.Actor, "error", err)
	}
}

// listAudit pages through the trail (ops).
//
//	GET /v1/audit?tenant=&actor=&action=&since=&until=&limit=&after=
func (s *server) listAudit(c *gin.Context) {
	if s.cfg.Audit == nil {
		respondError(c, http.StatusServiceUnavailable, "the audit trail is not stored here: set TENANTFLOW_AUDIT_DSN (PostgreSQL) or TENANTFLOW_AUDIT_DIR; the entries are in the API's JSON log")
		return
	}
	q := audit.Query{Tenant: c.Query("tenant"), Actor: c.Query("actor"), Action: c.Query("action"), After: c.Query("after"), Limit: 100}
	if q.Tenant != "" {
		if ferr := validateName(q.Tenant); ferr != nil {
			ferr.Field = "tenant"
			respondFieldError(c, ferr)
			return
		}
	}
	for _, p := range []struct {
		field string
		to    *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		v := c.Query(p.field)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			respondFieldError(c, badField(p.field, "%s must be an RFC 3339 time (2026-12-07T10:00:00Z), not %q", p.field, v))
			return
		}
		*p.to = t
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxLimit {
			respondFieldError(c, badField("limit", "limit must be 1 to %d", audit.MaxLimit))
			return
		}
		q.Limit = n
	}
	if len(q.After) > 64 || len(q.Actor) > 200 || len(q.Action) > 64 {
		respondFieldError(c, badField("after", "after, actor and action are too long"))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	entries, more, err := s.cfg.Audit.List(ctx, q)
	switch {
	case errors.Is(err, audit.ErrBadQuery):
		respondFieldError(c, badField("limit", "%s", err))
		return
	case err != nil:
		s.log.ErrorContext(ctx, "audit list failed", "error", err)
		respondError(c, http.StatusServiceUnavailable, "the audit trail cannot be read now")
		return
	}
	out := gin.H{"entries": entries}
	if entries == nil {
		out["entries"] = []audit.Entry{}
	}
	if more {
		out["next"] = entries[len(entries)-1].ID
	}
	c.JSON(http.StatusOK, out)
}
