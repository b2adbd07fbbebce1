package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// maxDecommissionReasonBytes bounds the reason recorded with a request.
const maxDecommissionReasonBytes = 1024

// decommissionRequest is the optional body of DELETE /v1/tenants/{name};
// force and reason may also be given as query parameters, for clients that
// send no body with DELETE.
type decommissionRequest struct {
	Reason string `json:"reason"`
	Force  bool   `json:"force"`
}

// decommissionResponse answers every decommission and restore call: the
// tenant, its decommission as the workflow now records it, and where to
// follow it.
type decommissionResponse struct {
	Name         string              `json:"name"`
	Decommission tenant.Decommission `json:"decommission"`
}

// requestDecommission asks the tenant's workflow to decommission it. The
// request is recorded (who and why) and waits for a confirmation, unless
// ops force it. Nothing is touched before the workflow accepted it.
func (s *server) requestDecommission(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var req decommissionRequest
	if ferr := decodeOptionalJSONBody(c, s.cfg.MaxBodyBytes, &req); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	force, ferr := boolQuery(c, "force")
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	req.Force = req.Force || force
	if v, ok := c.GetQuery("reason"); ok && req.Reason == "" {
		req.Reason = v
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if len(req.Reason) > maxDecommissionReasonBytes {
		respondFieldError(c, badField("reason", "reason must be at most %d bytes", maxDecommissionReasonBytes))
		return
	}
	role := roleOf(c)
	if req.Force && role != RoleOps {
		c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "only ops may force a decommission without confirmation", "field": "force"})
		return
	}
	// The workflow's validator refuses a tenant that is not active (409):
	// only it can, without a race, and an Idempotency-Key retry of an
	// accepted request then gets its first answer.
	s.decommissionUpdate(c, name, tenant.UpdateRequestDecommission,
		tenant.DecommissionRequest{By: c.GetString(ctxCaller), Reason: noteReason(c, req.Reason), Force: req.Force})
}

// confirmDecommission confirms the pending request: the decommission runs.
func (s *server) confirmDecommission(c *gin.Context) {
	s.decommissionAction(c, tenant.UpdateConfirmDecommission, func(by string) any { return tenant.DecommissionConfirmation{By: by} })
}

// cancelDecommission withdraws a request that was not confirmed.
func (s *server) cancelDecommission(c *gin.Context) {
	s.decommissionAction(c, tenant.UpdateCancelDecommission, func(by string) any { return tenant.DecommissionConfirmation{By: by} })
}

// restoreRequest is the optional body of POST /v1/tenants/{name}/restore:
// with a backup, an active tenant is put back to it; without, a
// decommissioned tenant is brought back from its final backup.
type restoreRequest struct {
	Backup string `json:"backup,omitempty"`
}

// restoreTenant asks for a decommissioned tenant to be brought back from its
// backup, or an active one to be put back to one of its backups; the
// restore runs in the workflow, GET shows its progress.
func (s *server) restoreTenant(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body restoreRequest
	if ferr := decodeOptionalJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	by := c.GetString(ctxCaller)
	if body.Backup == "" {
		s.decommissionUpdate(c, name, tenant.UpdateRestore, tenant.RestoreRequest{By: by})
		return
	}
	if len(body.Backup) > 128 {
		respondFieldError(c, badField("backup", "backup must be a backup id of at most 128 characters"))
		return
	}
	var r tenant.BackupRestore
	if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
		ended:    "has ended (failed provisioning or retention over): nothing to restore",
		refusals: []string{tenant.ErrRestoreRefused, tenant.ErrBackupNotFound}, notFoundType: tenant.ErrBackupNotFound, notFound: "backup"},
		tenant.UpdateRestoreBackup, tenant.RestoreBackupRequest{Backup: noteDetail(c, "backup "+body.Backup, body.Backup), By: by}, &r) {
		return
	}
	s.log.InfoContext(c.Request.Context(), "restore to a backup requested", "tenant", name, "backup", body.Backup, "caller", by)
	c.Header("Location", "/v1/tenants/"+name+"/backups")
	c.JSON(http.StatusAccepted, gin.H{"tenant": name, "restore": r})
}

// decommissionAction checks a body-less action on the tenant and sends its
// Update with the argument arg makes for the caller.
func (s *server) decommissionAction(c *gin.Context, update string, arg func(by string) any) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body struct{}
	if ferr := decodeOptionalJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	s.decommissionUpdate(c, name, update, arg(c.GetString(ctxCaller)))
}

// decommissionUpdate sends one of the tenant's decommission Updates. Their
// handlers only record the request (the work runs in the workflow), so the
// answer comes at once: 202 with the decommission as now recorded, or the
// workflow's refusal as 409.
func (s *server) decommissionUpdate(c *gin.Context, name, update string, arg any) {
	var d tenant.Decommission
	if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
		ended:    "has ended (failed provisioning or retention over): nothing to " + update,
		refusals: []string{tenant.ErrDecommissionRefused, tenant.ErrRestoreRefused}}, update, arg, &d) {
		return
	}
	s.log.InfoContext(c.Request.Context(), "tenant "+update, "tenant", name, "caller", c.GetString(ctxCaller), "phase", d.Phase)
	c.Header("Location", "/v1/tenants/"+name)
	c.JSON(http.StatusAccepted, decommissionResponse{Name: name, Decommission: d})
}
