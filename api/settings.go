package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// maxWindowBytes bounds a maintenance window as written.
const maxWindowBytes = 100

// checkWindow reads a maintenance window (field) into its canonical form;
// "" stays "" (no window).
func checkWindow(field, v string) (string, *fieldError) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	if len(v) > maxWindowBytes {
		return "", badField(field, "%s must be at most %d bytes", field, maxWindowBytes)
	}
	w, err := spec.ParseWindow(v)
	if err != nil {
		return "", badField(field, "%s", err)
	}
	return w.String(), nil
}

// patchTenantRequest is the body of PATCH /v1/tenants/{name}: the
// settings to change (a field left out stays as it is).
type patchTenantRequest struct {
	// MaintenanceWindow sets the window; "" removes it.
	MaintenanceWindow *string `json:"maintenanceWindow"`
	// Plan resizes the tenant to another of its template's plans, as its
	// next operation.
	Plan *string `json:"plan"`
	// Settings change env settings its template allows (null: back to
	// the default), as its next operation.
	Settings map[string]*string `json:"settings"`
}

// checkSettings says which setting of the request tpl does not allow (nil:
// none).
func checkSettings(tpl *spec.Template, set map[string]*string) *fieldError {
	if len(set) > spec.MaxSettings {
		return badField("settings", "at most %d settings at once", spec.MaxSettings)
	}
	if name, problem := tpl.CheckSettings(set); problem != "" {
		return badField("settings."+name, "%s", problem)
	}
	return nil
}

// patchTenant changes a tenant's settings (ops, distributor) and answers
// with the tenant.
//
//	PATCH /v1/tenants/{name} {"maintenanceWindow": "Sun 02:00-05:00 Europe/Paris"}
func (s *server) patchTenant(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body patchTenantRequest
	if ferr := decodeJSONBody(c, s.cfg.MaxBodyBytes, &body, "settings"); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	if body.MaintenanceWindow == nil && body.Plan == nil && body.Settings == nil {
		respondFieldError(c, badField("maintenanceWindow", "nothing to change: the fields are maintenanceWindow, plan and settings"))
		return
	}
	if body.Settings != nil && len(body.Settings) == 0 {
		respondFieldError(c, badField("settings", "settings names at least one setting to change"))
		return
	}
	if len(body.Settings) > spec.MaxSettings {
		respondFieldError(c, badField("settings", "at most %d settings at once", spec.MaxSettings))
		return
	}
	if body.Plan != nil && !spec.IsDNSLabel(*body.Plan, spec.MaxPlanName) {
		respondFieldError(c, badField("plan", "plan %q is not a plan name (a DNS label of at most %d characters)", *body.Plan, spec.MaxPlanName))
		return
	}
	var out tenant.Tenant
	if body.MaintenanceWindow != nil {
		w, ferr := checkWindow("maintenanceWindow", *body.MaintenanceWindow)
		if ferr != nil {
			respondFieldError(c, ferr)
			return
		}
		if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
			ended: "has ended: nothing to change", refusals: []string{tenant.ErrConfigureRefused}},
			tenant.UpdateConfigure, tenant.ConfigureRequest{By: c.GetString(ctxCaller), MaintenanceWindow: noteDetail(c, "maintenanceWindow "+strconv.Quote(w), &w)}, &out) {
			return
		}
		s.log.InfoContext(c.Request.Context(), "tenant settings changed", "tenant", name, "maintenanceWindow", w, "caller", c.GetString(ctxCaller))
	}
	if body.Plan == nil && body.Settings == nil {
		c.JSON(http.StatusOK, out)
		return
	}
	answer := gin.H{"tenant": name}
	if body.Plan != nil {
		plan := *body.Plan
		noteDetail(c, "plan "+plan, &plan)
		var change tenant.PlanChange
		if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
			ended: "has ended: nothing to change", refusals: []string{tenant.ErrPlanRefused}},
			tenant.UpdateChangePlan, tenant.ChangePlanRequest{Plan: plan, By: c.GetString(ctxCaller)}, &change) {
			return
		}
		s.log.InfoContext(c.Request.Context(), "tenant plan change accepted", "tenant", name, "plan", plan, "caller", c.GetString(ctxCaller))
		answer["planChange"] = change
	}
	if body.Settings != nil {
		names := spec.SortedKeys(body.Settings)
		noteDetail(c, "settings "+strings.Join(names, ","), names)
		var change tenant.SettingsChange
		if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
			ended: "has ended: nothing to change", refusals: []string{tenant.ErrSettingsRefused, tenant.ErrSettingInvalid},
			invalidType: tenant.ErrSettingInvalid},
			tenant.UpdateChangeSettings, tenant.ChangeSettingsRequest{Settings: body.Settings, By: c.GetString(ctxCaller)}, &change) {
			return
		}
		s.log.InfoContext(c.Request.Context(), "tenant settings change accepted", "tenant", name, "settings", names, "caller", c.GetString(ctxCaller))
		answer["settingsChange"] = change
	}
	c.Header("Location", "/v1/tenants/"+name)
	c.JSON(http.StatusAccepted, answer)
}

// overrideWindowRequest is the body of POST
// /v1/releases/{id}/override-window.
type overrideWindowRequest struct {
	Tenants []string `json:"tenants"`
	Reason  string   `json:"reason"`
}

// overrideWindow lets a release cut tenants over outside their
// maintenance windows (ops: an emergency fix); the release records who
// and why.
//
//	POST /v1/releases/{id}/override-window {"tenants": ["acme"], "reason": "CVE-2026-1234"}
func (s *server) overrideWindow(c *gin.Context) {
	id := c.Param("id")
	if ferr := validateReleaseID("id", id); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body overrideWindowRequest
	if ferr := decodeJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	body.Reason = strings.TrimSpace(body.Reason)
	switch {
	case body.Reason == "":
		respondFieldError(c, badField("reason", "reason is required: say which emergency the override fixes (recorded in the release)"))
		return
	case len(body.Reason) > maxReleaseReasonBytes:
		respondFieldError(c, badField("reason", "reason must be at most %d bytes", maxReleaseReasonBytes))
		return
	}
	if len(body.Tenants) > release.MaxOverrideTenants {
		respondFieldError(c, badField("tenants", "tenants names at most %d tenants (leave it out for every tenant left)", release.MaxOverrideTenants))
		return
	}
	for _, n := range body.Tenants {
		if ferr := validateName(n); ferr != nil {
			ferr.Field = "tenants"
			respondFieldError(c, ferr)
			return
		}
	}
	switch len(body.Tenants) {
	case 0:
		noteAudit(c, auditDetail, "every tenant left")
	case 1:
		noteAudit(c, auditTenant, body.Tenants[0])
		noteAudit(c, auditDetail, "tenants "+body.Tenants[0])
	default:
		noteAudit(c, auditDetail, "tenants "+strings.Join(body.Tenants, ","))
	}
	s.updateRelease(c, id, release.UpdateOverrideWindow, release.OverrideInput{Tenants: body.Tenants, By: c.GetString(ctxCaller), Reason: noteReason(c, body.Reason)})
}
