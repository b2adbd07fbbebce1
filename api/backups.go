package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// backupRequest is the optional body of POST /v1/tenants/{name}/backups.
type backupRequest struct {
	Reason string `json:"reason,omitempty"`
}

// backupAccepted is the 202 answer: the backup's id, whether it waits for
// another operation of the tenant, and where to follow it.
type backupAccepted struct {
	Tenant string `json:"tenant"`
	tenant.BackupAccepted
	Status string `json:"status"`
}

// backupList is the answer of GET /v1/tenants/{name}/backups.
type backupList struct {
	Tenant string `json:"tenant"`
	// Policy, next backup and drill, newest off-site copy, last drill.
	*tenant.Backups
	// NewestOffsiteAgeSeconds is the age of the newest backup copied
	// off-site, for a portal that shows it without date arithmetic.
	NewestOffsiteAgeSeconds *int64 `json:"newestOffsiteAgeSeconds,omitempty"`
}

// requestBackup asks for an on-demand backup of the tenant (ops,
// distributor). The tenant runs it as its next operation; the answer
// comes at once and says whether it waits for one under way.
func (s *server) requestBackup(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body backupRequest
	if ferr := decodeOptionalJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	if len(body.Reason) > 500 {
		respondFieldError(c, badField("reason", "reason must be at most 500 characters"))
		return
	}
	var out tenant.BackupAccepted
	if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
		ended:    "has ended (failed provisioning or retention over): nothing to back up",
		refusals: []string{tenant.ErrBackupRefused}},
		tenant.UpdateBackup, tenant.BackupRequest{By: c.GetString(ctxCaller), Reason: noteReason(c, body.Reason)}, &out) {
		return
	}
	status := "running"
	if out.Queued {
		status = "queued"
	}
	s.log.InfoContext(c.Request.Context(), "backup requested", "tenant", name, "backup", out.ID, "caller", c.GetString(ctxCaller), "queued", out.Queued)
	c.Header("Location", "/v1/tenants/"+name+"/backups/"+out.ID)
	c.JSON(http.StatusAccepted, backupAccepted{Tenant: name, BackupAccepted: out, Status: status})
}

// listBackups answers with the tenant's backups as its workflow knows
// them: those the retention keeps, newest last, each with its sizes,
// off-site copy and drill, and the policy that made them.
func (s *server) listBackups(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	state, ok := s.queryTenant(c, name)
	if !ok {
		return
	}
	out := backupList{Tenant: name, Backups: state.Backups}
	if out.Backups == nil {
		out.Backups = &tenant.Backups{}
	}
	if at := out.NewestOffsiteAt; at != nil {
		age := int64(s.now().Sub(*at).Seconds())
		out.NewestOffsiteAgeSeconds = &age
	}
	c.JSON(http.StatusOK, out)
}

// getBackup answers with one backup of the tenant: a pending or running
// one by its id too. An unknown id is 404 naming backup.
func (s *server) getBackup(c *gin.Context) {
	name, id := c.Param("name"), c.Param("id")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	state, ok := s.queryTenant(c, name)
	if !ok {
		return
	}
	if b := state.Backups; b != nil {
		for _, r := range b.List {
			if r.ID == id {
				c.JSON(http.StatusOK, gin.H{"tenant": name, "status": "done", "backup": r})
				return
			}
		}
		if b.Running == id {
			c.JSON(http.StatusOK, gin.H{"tenant": name, "status": "running", "backup": gin.H{"id": id}})
			return
		}
		for _, p := range b.Pending {
			if p.ID == id {
				c.JSON(http.StatusOK, gin.H{"tenant": name, "status": "queued", "backup": p})
				return
			}
		}
	}
	c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("tenant %s has no backup %q (unknown, failed or pruned)", name, id), "field": "backup"})
}
