package api

import (
	"net/http"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// maxSuspendTextBytes bounds a suspend's reason and message.
const maxSuspendTextBytes = 1024

// suspendTenant suspends an active tenant (ops, distributor): the
// maintenance page on its URL, its services stopped, its accounts
// disabled; GET shows the suspension's progress.
//
//	POST /v1/tenants/{name}/suspend {"reason": "invoice 42 unpaid", "message": "…"}
func (s *server) suspendTenant(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if ferr := decodeJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	body.Reason, body.Message = strings.TrimSpace(body.Reason), strings.TrimSpace(body.Message)
	if ferr := checkSuspendText("reason", body.Reason, true); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	if ferr := checkSuspendText("message", body.Message, false); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	by := c.GetString(ctxCaller)
	s.suspension(c, name, "suspend", body.Reason, tenant.UpdateSuspend, tenant.SuspendRequest{By: by, Reason: noteReason(c, body.Reason), Message: body.Message})
}

// suspension sends a suspend or resume Update and answers 202 with the
// tenant's suspension.
func (s *server) suspension(c *gin.Context, name, what, reason, update string, arg any) {
	var out tenant.Suspension
	if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
		ended: "has ended: nothing to " + what, refusals: []string{tenant.ErrSuspendRefused}},
		update, arg, &out) {
		return
	}
	s.log.InfoContext(c.Request.Context(), what+" requested", "tenant", name, "reason", reason, "caller", c.GetString(ctxCaller))
	c.Header("Location", "/v1/tenants/"+name)
	c.JSON(http.StatusAccepted, gin.H{"tenant": name, "suspension": out})
}

// resumeTenant brings a suspended tenant back into service.
//
//	POST /v1/tenants/{name}/resume {"reason": "paid"}
func (s *server) resumeTenant(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if ferr := decodeOptionalJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	body.Reason = strings.TrimSpace(body.Reason)
	if ferr := checkSuspendText("reason", body.Reason, false); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	s.suspension(c, name, "resume", body.Reason, tenant.UpdateResume, tenant.ResumeRequest{By: c.GetString(ctxCaller), Reason: noteReason(c, body.Reason)})
}

// checkSuspendText checks a reason or message: present when required,
// bounded, and one printable line or paragraph (no control characters).
func checkSuspendText(field, v string, required bool) *fieldError {
	switch {
	case required && v == "":
		return badField(field, "%s is required: say why the tenant is suspended (kept in its state and the logs, never shown to its users)", field)
	case len(v) > maxSuspendTextBytes:
		return badField(field, "%s must be at most %d bytes", field, maxSuspendTextBytes)
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0:
		return badField(field, "%s must not hold control characters", field)
	}
	return nil
}
