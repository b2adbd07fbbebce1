package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// createTenantRequest is the body of POST /v1/tenants.
type createTenantRequest struct {
	Name     string `json:"name"`
	Template string `json:"template"`
	Stage    string `json:"stage"`
	// Backups overrides fields of the template's backup policy.
	Backups *spec.Backups `json:"backups,omitempty"`
	// Host pins the tenant to a fleet host (and places it on the fleet
	// even when placement is not the default).
	Host string `json:"host,omitempty"`
	// MaintenanceWindow is when releases may cut the tenant over
	// (spec.Window); empty: at any time.
	MaintenanceWindow string `json:"maintenanceWindow,omitempty"`
	// Plan is one of the template's plans (its sizes); empty: the
	// template's default plan.
	Plan string `json:"plan,omitempty"`
	// Settings are values of the template's env settings (the others
	// take their defaults).
	Settings map[string]*string `json:"settings,omitempty"`

	// sized is the template with the plan's sizes and the settings
	// (validate sets it).
	sized *spec.Template
}

// createTenantResponse is the 202 answer: provisioning has been accepted,
// its progress is at Location.
type createTenantResponse struct {
	Name       string `json:"name"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Status     string `json:"status"`
}

const defaultTemplate = "default"

// validate checks the request and fills in defaults; nothing is started
// unless it passes.
func (s *server) validate(req *createTenantRequest) *fieldError {
	if err := validateNewName(req.Name); err != nil {
		return err
	}
	if req.Template == "" {
		req.Template = defaultTemplate
	}
	if s.templates[req.Template] == nil {
		return badField("template", "unknown template %q (known: %s)", req.Template, strings.Join(s.templates.Names(), ", "))
	}
	if err := validateStage("stage", req.Stage, true); err != nil {
		return err
	}
	if req.Host != "" && !spec.IsDNSLabel(req.Host, 40) {
		return badField("host", "host %q is not a host name", req.Host)
	}
	if req.Host != "" && s.templates[req.Template].Runtime == spec.OpenShift {
		return badField("host", "template %s runs on OpenShift: its tenants are not placed on Docker hosts", req.Template)
	}
	w, ferr := checkWindow("maintenanceWindow", req.MaintenanceWindow)
	if ferr != nil {
		return ferr
	}
	req.MaintenanceWindow = w
	sized, plan, err := s.templates[req.Template].WithPlan(req.Plan)
	if err != nil {
		return badField("plan", "%v", err)
	}
	req.sized, req.Plan = sized, plan
	if len(req.Settings) > 0 {
		if ferr := checkSettings(sized, req.Settings); ferr != nil {
			return ferr
		}
		req.sized, _ = sized.WithSettings(req.Settings)
	}
	return validatePolicy(s.templates[req.Template], req.Backups)
}

// placement is the tenant's placement request: nil when it does not go
// on the fleet (placement off, no host named, or an OpenShift template).
func (s *server) placement(req createTenantRequest) *tenant.PlacementRequest {
	if req.Host == "" && (!s.cfg.Placement || s.templates[req.Template].Runtime == spec.OpenShift) {
		return nil
	}
	return &tenant.PlacementRequest{Pin: req.Host}
}

// checkRoom answers 409 (or 503 without any host) when no host can take
// the tenant now, before anything starts. The registry's own placement,
// in the workflow, decides for real; two requests racing for the last
// room get one tenant placed and one failed with the registry's reason.
func (s *server) checkRoom(c *gin.Context, req createTenantRequest, p *tenant.PlacementRequest) bool {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	list, ok := s.queryHosts(ctx, c)
	if !ok {
		return false
	}
	if len(list) == 0 {
		respondError(c, http.StatusServiceUnavailable, "no Docker host is registered (POST /v1/hosts): the tenant has nowhere to run")
		return false
	}
	var limits []spec.Resources
	for _, svc := range req.sized.Services {
		limits = append(limits, svc.Resources)
	}
	need := hosts.Need(limits...)
	if _, err := hosts.Place(list, hosts.ReserveInput{Tenant: req.Name, Owner: "api-check", Need: need, Pin: p.Pin}); err != nil {
		body := gin.H{"error": err.Error()}
		if p.Pin != "" {
			body["field"] = "host"
		}
		c.AbortWithStatusJSON(http.StatusConflict, body)
		return false
	}
	return true
}

// validatePolicy checks the tenant's backup policy: the template's with
// the request's overrides.
func validatePolicy(tpl *spec.Template, override *spec.Backups) *fieldError {
	if override == nil {
		return nil
	}
	var p spec.Backups
	if tpl.Backups != nil {
		p = *tpl.Backups
	}
	var fe *spec.FieldError
	if err := p.Merge(override).Validate("backups"); errors.As(err, &fe) {
		return badField(fe.Field, "%s", err)
	}
	return nil
}

// startOptions are the options of a tenant's entity workflow. The id is the
// tenant's name, so the server itself refuses a second tenant of that name
// while one runs (conflict policy FAIL); a closed run, i.e. a tenant whose
// provisioning failed, may be created again (reuse policy ALLOW_DUPLICATE).
func (s *server) startOptions(req createTenantRequest) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       tenant.WorkflowID(req.Name),
		TaskQueue:                s.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Without this the SDK answers "already started" with a handle on
		// the existing run instead of an error, and we would report 202.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			searchattr.TenantID.ValueSet(req.Name),
			searchattr.TenantState.ValueSet(string(tenant.StateProvisioning)),
			searchattr.Stage.ValueSet(req.Stage),
		),
		StaticSummary:    fmt.Sprintf("Tenant %s · %s · template %s", req.Name, req.Stage, req.Template),
		EnableEagerStart: true,
	}
}

// createTenant starts the tenant's entity workflow, which provisions it.
func (s *server) createTenant(c *gin.Context) {
	var req createTenantRequest
	if err := decodeJSONBody(c, s.cfg.MaxBodyBytes, &req); err != nil {
		respondFieldError(c, err)
		return
	}
	noteAudit(c, auditTenant, req.Name)
	if err := s.validate(&req); err != nil {
		respondFieldError(c, err)
		return
	}
	detail := fmt.Sprintf("template %s stage %s", req.Template, req.Stage)
	if req.Plan != "" {
		detail += " plan " + req.Plan
	}
	noteAudit(c, auditDetail, detail)
	role := roleOf(c)
	place := s.placement(req)
	if place != nil && !s.checkRoom(c, req, place) {
		return
	}
	input := tenant.Input{
		Spec: tenant.Spec{
			Name: req.Name, Template: req.Template, Stage: req.Stage, RequestedBy: role, Backups: req.Backups, Placement: place,
			MaintenanceWindow: req.MaintenanceWindow, Plan: req.Plan,
		},
		Template: *req.sized,
	}
	run, err := s.temporal.ExecuteWorkflow(c.Request.Context(), s.startOptions(req), tenant.WorkflowType, input)
	if err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			c.AbortWithStatusJSON(http.StatusConflict, gin.H{"error": fmt.Sprintf("tenant %s already exists", req.Name), "field": "name"})
			return
		}
		s.log.ErrorContext(c.Request.Context(), "start tenant workflow failed", "tenant", req.Name, "role", role, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("start tenant %s: %v", req.Name, err))
		return
	}
	c.Header("Location", "/v1/tenants/"+req.Name)
	c.JSON(http.StatusAccepted, createTenantResponse{
		Name: req.Name, WorkflowID: run.GetID(), RunID: run.GetRunID(), Status: string(tenant.StateProvisioning),
	})
}

// getTenant answers with the tenant's state as its workflow reports it,
// asking the workflow only when its history moved since the last answer
// (stateCache), and without waiting behind its work: a query waits while the
// workflow's task runs (its local activities, up to seconds), so a tenant
// whose task is running, or whose workflow does not answer within
// ReadWait (no worker), is answered from the summary it last recorded in
// its memo, marked stale (see answerStale). ?fresh=true waits up to
// QueryTimeout for the workflow's own answer instead.
func (s *server) getTenant(c *gin.Context) {
	name := c.Param("name")
	if err := validateName(name); err != nil {
		respondFieldError(c, err)
		return
	}
	fresh, ferr := boolQuery(c, "fresh")
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	if fresh {
		if state, ok := s.queryTenantOr(c, name, s.answerStale); ok {
			c.JSON(http.StatusOK, state)
		}
		return
	}
	rec, done := s.recorded(c, name, s.cfg.ReadWait)
	if done {
		return
	}
	if rec.busy() {
		s.answerRecorded(c, name, rec, busyReason)
		return
	}
	if rec.err != nil && s.answerLastSeen(c, name) {
		return
	}
	if state, ok := s.states.get(name, rec.runID, rec.length); ok {
		c.JSON(http.StatusOK, state)
		return
	}
	wait := s.cfg.QueryTimeout
	if rec.summary != nil {
		wait = s.cfg.ReadWait
	}
	if state, ok := s.queryTenantWithin(c, name, wait, rec.staleAnswer(s, wait)); ok {
		s.states.put(name, rec.runID, rec.length, state)
		c.JSON(http.StatusOK, state)
	}
}

// queryTenant asks the tenant's workflow for its state, within the query
// timeout; on failure it has answered the request (ok false).
func (s *server) queryTenant(c *gin.Context, name string) (state tenant.Tenant, ok bool) {
	return s.queryTenantOr(c, name, nil)
}

// staleAnswer answers a request when no worker answered the state query
// (cause), and says whether it did.
type staleAnswer func(c *gin.Context, name string, cause error) bool

// queryTenantOr is queryTenant where, when no worker answers, stale (if
// not nil) may answer the request instead of an error.
func (s *server) queryTenantOr(c *gin.Context, name string, stale staleAnswer) (state tenant.Tenant, ok bool) {
	return s.queryTenantWithin(c, name, s.cfg.QueryTimeout, stale)
}

// queryTenantWithin is queryTenantOr waiting at most wait for an answer.
func (s *server) queryTenantWithin(c *gin.Context, name string, wait time.Duration, stale staleAnswer) (state tenant.Tenant, ok bool) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), wait)
	defer cancel()
	value, err := s.temporal.QueryWorkflow(ctx, tenant.WorkflowID(name), "", tenant.QueryState)
	if err != nil {
		if stale != nil && noWorkerAnswered(ctx, err) && stale(c, name, err) {
			return state, false
		}
		s.respondQueryError(ctx, c, name, err)
		return state, false
	}
	if value == nil || !value.HasValue() {
		respondError(c, http.StatusBadGateway, fmt.Sprintf("tenant %s: the state query returned no value", name))
		return state, false
	}
	if err := value.Get(&state); err != nil {
		s.log.ErrorContext(ctx, "decode tenant state failed", "tenant", name, "error", err)
		respondError(c, http.StatusBadGateway, fmt.Sprintf("tenant %s: decode state: %v", name, err))
		return state, false
	}
	return state, true
}

// respondQueryError maps a failed state query: an unknown workflow is an
// unknown tenant; a query nobody answers in time means no worker is up.
func (s *server) respondQueryError(ctx context.Context, c *gin.Context, name string, err error) {
	var (
		notFound *serviceerror.NotFound
		deadline *serviceerror.DeadlineExceeded
	)
	switch {
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, fmt.Sprintf("tenant %s not found", name))
	case errors.As(err, &deadline), errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.log.WarnContext(ctx, "tenant state query timed out", "tenant", name, "timeout", s.cfg.QueryTimeout.String(), "error", err)
		respondError(c, http.StatusServiceUnavailable,
			fmt.Sprintf("tenant %s: no worker answered the state query within %s", name, s.cfg.QueryTimeout))
	default:
		s.log.ErrorContext(ctx, "tenant state query failed", "tenant", name, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("query tenant %s: %v", name, err))
	}
}
