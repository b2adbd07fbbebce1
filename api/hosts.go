package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// registerHostRequest is POST /v1/hosts: a host as people write it
// (capacity in CPUs and a memory quantity such as "16Gi").
type registerHostRequest struct {
	Name     string            `json:"name"`
	Docker   string            `json:"docker"`
	Address  string            `json:"address"`
	Sync     string            `json:"sync"`
	Capacity *hostCapacity     `json:"capacity"`
	Labels   map[string]string `json:"labels"`
}

type hostCapacity struct {
	CPUs   float64 `json:"cpus"`
	Memory string  `json:"memory"`
}

// hostView is a host as GET /v1/hosts shows it.
type hostView struct {
	hosts.Host
	Reserved hostCapacity `json:"reserved"`
	Free     hostCapacity `json:"free"`
	Tenants  []string     `json:"tenants"`
	// Worker is whether the host's worker polls its task queue.
	Worker workerLiveness `json:"worker"`
}

type workerLiveness struct {
	Queue   string `json:"queue"`
	Polling bool   `json:"polling"`
	// LastSeen is the newest poll the server saw (RFC 3339), if any.
	LastSeen string `json:"lastSeen,omitempty"`
}

func capacityView(r hosts.Resources) hostCapacity {
	return hostCapacity{CPUs: float64(r.MilliCPU) / 1000, Memory: fmt.Sprintf("%dMi", r.MemoryBytes>>20)}
}

var labelKey = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,62}$`)

// hostSpec checks the request; every error names its field.
func hostSpec(req registerHostRequest) (hosts.HostSpec, *fieldError) {
	if req.Capacity == nil {
		return hosts.HostSpec{}, badField("capacity", "capacity is required: {\"cpus\": 8, \"memory\": \"16Gi\"}")
	}
	mem := spec.Resources{Memory: req.Capacity.Memory}.MemoryBytes()
	if mem == 0 {
		return hosts.HostSpec{}, badField("capacity.memory", "capacity.memory %q is not a quantity such as \"16Gi\" or \"512Mi\"", req.Capacity.Memory)
	}
	if req.Capacity.CPUs <= 0 || req.Capacity.CPUs > 4096 || math.IsNaN(req.Capacity.CPUs) {
		return hosts.HostSpec{}, badField("capacity.cpus", "capacity.cpus must be more than 0")
	}
	for k, v := range req.Labels {
		if !labelKey.MatchString(k) || len(v) > 63 {
			return hosts.HostSpec{}, badField("labels", "label %q=%q: keys are lowercase words, values at most 63 characters", k, v)
		}
	}
	s := hosts.HostSpec{Name: req.Name, Docker: req.Docker, Address: req.Address, Sync: req.Sync, Labels: req.Labels,
		Capacity: hosts.Resources{MilliCPU: int64(math.Round(req.Capacity.CPUs * 1000)), MemoryBytes: mem}}
	if field, problem := hosts.CheckSpec(s); field != "" {
		return hosts.HostSpec{}, badField(field, "%s: %s", field, problem)
	}
	return s, nil
}

var hostTarget = updateTarget{kind: "host registry", id: hosts.WorkflowID, ended: "has ended",
	refusals: []string{hosts.ErrInvalid, hosts.ErrConflict, hosts.ErrNotFound}}

// registerHost registers a host or changes its registration (ops).
func (s *server) registerHost(c *gin.Context) {
	var req registerHostRequest
	if ferr := decodeJSONBody(c, s.cfg.MaxBodyBytes, &req); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	noteAudit(c, auditHost, req.Name)
	hs, ferr := hostSpec(req)
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	if !s.ensureRegistry(c) {
		return
	}
	var h hosts.Host
	if !s.sendUpdate(c, hosts.WorkflowID, hostTarget, hosts.UpdateRegister, hs, &h) {
		return
	}
	s.log.InfoContext(c.Request.Context(), "host registered", "host", h.Name, "caller", c.GetString(ctxCaller))
	c.JSON(http.StatusOK, s.viewHost(c.Request.Context(), h))
}

// ensureRegistry starts the registry workflow unless it runs.
func (s *server) ensureRegistry(c *gin.Context) bool {
	_, err := s.temporal.ExecuteWorkflow(c.Request.Context(), client.StartWorkflowOptions{
		ID: hosts.WorkflowID, TaskQueue: s.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Registry of the Docker hosts and the tenants placed on them",
	}, hosts.WorkflowType, hosts.Input{})
	if err != nil {
		s.log.ErrorContext(c.Request.Context(), "start host registry failed", "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("start the host registry: %v", err))
		return false
	}
	_, err = s.temporal.ExecuteWorkflow(c.Request.Context(), client.StartWorkflowOptions{
		ID: hosts.WatchWorkflowID, TaskQueue: s.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Watch of the Docker hosts: finds the lost ones",
	}, hosts.WatchWorkflowType, hosts.WatchInput{LostAfter: s.cfg.HostLostAfter})
	if err != nil {
		s.log.ErrorContext(c.Request.Context(), "start host watch failed", "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("start the host watch: %v", err))
		return false
	}
	if err := EnsureReconcile(c.Request.Context(), s.temporal, s.cfg); err != nil {
		s.log.ErrorContext(c.Request.Context(), "start drift reconcile failed", "error", err)
		respondError(c, http.StatusServiceUnavailable, err.Error())
		return false
	}
	return true
}

// listHosts answers every host with its reservations, tenants and
// whether its worker polls.
func (s *server) listHosts(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	list, ok := s.queryHosts(ctx, c)
	if !ok {
		return
	}
	out := make([]hostView, 0, len(list))
	for _, h := range list {
		out = append(out, s.viewHost(ctx, h))
	}
	c.JSON(http.StatusOK, gin.H{"hosts": out})
}

// getHost answers one host (404 naming it when unknown).
func (s *server) getHost(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	list, ok := s.queryHosts(ctx, c)
	if !ok {
		return
	}
	i := slices.IndexFunc(list, func(h hosts.Host) bool { return h.Name == c.Param("name") })
	if i < 0 {
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("host %s is not registered", c.Param("name")), "field": "name"})
		return
	}
	c.JSON(http.StatusOK, s.viewHost(ctx, list[i]))
}

func (s *server) queryHosts(ctx context.Context, c *gin.Context) ([]hosts.Host, bool) {
	value, err := s.temporal.QueryWorkflow(ctx, hosts.WorkflowID, "", hosts.QueryHosts)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return []hosts.Host{}, true // no host registered yet
	case err != nil:
		s.log.WarnContext(ctx, "hosts query failed", "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("query the host registry: %v", err))
		return nil, false
	}
	var list []hosts.Host
	if err := value.Get(&list); err != nil {
		respondError(c, http.StatusBadGateway, fmt.Sprintf("decode the hosts: %v", err))
		return nil, false
	}
	return list, true
}

func (s *server) viewHost(ctx context.Context, h hosts.Host) hostView {
	v := hostView{Host: h, Reserved: capacityView(h.Reserved()), Free: capacityView(h.Free()), Tenants: []string{}}
	for t := range h.Reservations {
		v.Tenants = append(v.Tenants, t)
	}
	slices.Sort(v.Tenants)
	v.Worker = s.workerLiveness(ctx, hosts.TaskQueue(h.Name))
	return v
}

// workerLiveness asks the server who polls the host's queue.
func (s *server) workerLiveness(ctx context.Context, queue string) workerLiveness {
	w := workerLiveness{Queue: queue}
	resp, err := s.temporal.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
	if err != nil {
		s.log.WarnContext(ctx, "describe host queue failed", "queue", queue, "error", err)
		return w
	}
	var last time.Time
	for _, p := range resp.GetPollers() {
		w.Polling = true
		if t := p.GetLastAccessTime().AsTime(); t.After(last) {
			last = t
		}
	}
	if !last.IsZero() {
		w.LastSeen = last.UTC().Format(time.RFC3339)
	}
	return w
}

// setHostState is cordon and uncordon (ops).
func (s *server) setHostState(state hosts.HostState) gin.HandlerFunc {
	return func(c *gin.Context) {
		var body struct {
			Reason string `json:"reason"`
		}
		if c.Request.ContentLength != 0 {
			if ferr := decodeJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
				respondFieldError(c, ferr)
				return
			}
		}
		var h hosts.Host
		in := hosts.SetStateInput{Host: c.Param("name"), State: state, By: c.GetString(ctxCaller), Reason: noteReason(c, body.Reason)}
		t := hostTarget
		t.notFoundType, t.notFound = hosts.ErrNotFound, "name"
		if !s.sendUpdate(c, hosts.WorkflowID, t, hosts.UpdateSetState, in, &h) {
			return
		}
		c.JSON(http.StatusOK, s.viewHost(c.Request.Context(), h))
	}
}

// moveTenant moves a placed tenant to another host with its data (ops).
// A target given must be registered and active; without one the registry
// chooses. The tenant answers the rest (placed, active, not moving
// already).
func (s *server) moveTenant(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body struct {
		To string `json:"to"`
	}
	if ferr := decodeOptionalJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	if body.To != "" && !s.checkMoveTarget(c, body.To) {
		return
	}
	var out tenant.Move
	if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
		ended: "has ended: nothing to move", refusals: []string{tenant.ErrMoveRefused}},
		tenant.UpdateMove, tenant.MoveRequest{To: noteDetail(c, "to "+body.To, body.To), By: c.GetString(ctxCaller)}, &out) {
		return
	}
	s.log.InfoContext(c.Request.Context(), "move requested", "tenant", name, "from", out.From, "to", out.To, "caller", c.GetString(ctxCaller))
	c.Header("Location", "/v1/tenants/"+name)
	c.JSON(http.StatusAccepted, out)
}

// checkMoveTarget answers 400, 404 or 409 naming "to" unless the host
// can take a tenant.
func (s *server) checkMoveTarget(c *gin.Context, to string) bool {
	if !spec.IsDNSLabel(to, 40) {
		respondFieldError(c, badField("to", "to %q is not a host name", to))
		return false
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	list, ok := s.queryHosts(ctx, c)
	cancel()
	if !ok {
		return false
	}
	i := slices.IndexFunc(list, func(h hosts.Host) bool { return h.Name == to })
	switch {
	case i < 0:
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("host %s is not registered", to), "field": "to"})
		return false
	case list[i].State != hosts.StateActive:
		c.AbortWithStatusJSON(http.StatusConflict, gin.H{"error": fmt.Sprintf("host %s is %s: it takes no tenant", to, list[i].State), "field": "to"})
		return false
	}
	return true
}

// drainRequest is the optional body of POST /v1/hosts/{name}/drain.
type drainRequest struct {
	MaxParallel *int   `json:"maxParallel"`
	Reason      string `json:"reason"`
}

// maxDrainReason bounds the reason a drain records on its host.
const maxDrainReason = 200

// drainResponse answers a drain started.
type drainResponse struct {
	Host        string `json:"host"`
	WorkflowID  string `json:"workflowId"`
	RunID       string `json:"runId"`
	MaxParallel int    `json:"maxParallel"`
}

// hostEmptying is a drain, or a lost host's evacuation: the same course
// (hosts.DrainWorkflow), each tenant moved, or brought back elsewhere
// from its off-site backup.
type hostEmptying struct {
	name     string // "drain", "evacuation"
	path     string // the route that follows it
	workflow string
	id       func(host string) string
	evacuate bool
}

var (
	drainOp    = hostEmptying{name: "drain", path: "drain", workflow: hosts.DrainWorkflowType, id: hosts.DrainWorkflowID}
	evacuateOp = hostEmptying{name: "evacuation", path: "evacuation", workflow: hosts.EvacuateWorkflowType, id: hosts.EvacuateWorkflowID, evacuate: true}
)

// drainHost starts the host's drain (ops): it sets the host draining and
// moves its tenants away, a few at a time (hosts.DrainWorkflow). One runs
// per host at a time; GET …/drain follows it.
func (s *server) drainHost(c *gin.Context) { s.emptyHost(c, drainOp) }

// evacuateHost brings back the tenants of a lost host on healthy hosts
// from their newest off-site backups (ops), a few at a time; GET
// …/evacuation follows it and gives each tenant's recovery point.
func (s *server) evacuateHost(c *gin.Context) { s.emptyHost(c, evacuateOp) }

func (s *server) emptyHost(c *gin.Context, op hostEmptying) {
	in, ok := s.drainInput(c)
	if !ok || !s.checkDrainable(c, in.Host, op.evacuate) {
		return
	}
	in.Evacuate = op.evacuate
	run, err := s.temporal.ExecuteWorkflow(c.Request.Context(), drainOptions(in, s.cfg.TaskQueue, op), op.workflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		respondError(c, http.StatusConflict, fmt.Sprintf("a %s of host %s is running already (GET /v1/hosts/%s/%s)", op.name, in.Host, in.Host, op.path))
		return
	case err != nil:
		s.log.ErrorContext(c.Request.Context(), "start "+op.name+" failed", "host", in.Host, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("start the %s of host %s: %v", op.name, in.Host, err))
		return
	}
	s.log.InfoContext(c.Request.Context(), op.name+" started", "host", in.Host, "maxParallel", in.MaxParallel, "caller", in.By)
	c.Header("Location", "/v1/hosts/"+in.Host+"/"+op.path)
	c.JSON(http.StatusAccepted, drainResponse{Host: in.Host, WorkflowID: run.GetID(), RunID: run.GetRunID(), MaxParallel: in.MaxParallel})
}

// drainInput reads the request; every error names its field.
func (s *server) drainInput(c *gin.Context) (hosts.DrainInput, bool) {
	var req drainRequest
	if ferr := decodeOptionalJSONBody(c, s.cfg.MaxBodyBytes, &req); ferr != nil {
		respondFieldError(c, ferr)
		return hosts.DrainInput{}, false
	}
	in := hosts.DrainInput{Host: c.Param("name"), By: c.GetString(ctxCaller), Reason: noteReason(c, req.Reason), MaxParallel: hosts.DefaultDrainParallel}
	var ferr *fieldError
	switch {
	case !spec.IsDNSLabel(in.Host, 40):
		ferr = badField("name", "%q is not a host name", in.Host)
	case req.MaxParallel != nil && (*req.MaxParallel < 1 || *req.MaxParallel > hosts.MaxDrainParallel):
		ferr = badField("maxParallel", "maxParallel must be 1 to %d (default %d)", hosts.MaxDrainParallel, hosts.DefaultDrainParallel)
	case len(req.Reason) > maxDrainReason:
		ferr = badField("reason", "reason must be at most %d bytes", maxDrainReason)
	}
	if ferr != nil {
		respondFieldError(c, ferr)
		return hosts.DrainInput{}, false
	}
	if req.MaxParallel != nil {
		in.MaxParallel = *req.MaxParallel
	}
	return in, true
}

// checkDrainable answers 404 for a host not registered, and 409 for a
// lost one to drain (its tenants are evacuated, not moved) or one not
// lost to evacuate (it is drained).
func (s *server) checkDrainable(c *gin.Context, host string, evacuate bool) bool {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	list, ok := s.queryHosts(ctx, c)
	cancel()
	if !ok {
		return false
	}
	i := slices.IndexFunc(list, func(h hosts.Host) bool { return h.Name == host })
	switch {
	case i < 0:
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("host %s is not registered", host), "field": "name"})
		return false
	case !evacuate && list[i].State == hosts.StateLost:
		respondError(c, http.StatusConflict, fmt.Sprintf("host %s is lost: its tenants cannot be moved off it (POST /v1/hosts/%s/evacuate)", host, host))
		return false
	case evacuate && list[i].State != hosts.StateLost:
		respondError(c, http.StatusConflict, fmt.Sprintf("host %s is %s, not lost: drain it instead (POST /v1/hosts/%s/drain)", host, list[i].State, host))
		return false
	}
	return true
}

// drainOptions start a host's drain: one runs at a time (conflict policy
// FAIL), a new one may follow a finished one (reuse ALLOW_DUPLICATE).
func drainOptions(in hosts.DrainInput, queue string, op hostEmptying) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       op.id(in.Host),
		TaskQueue:                queue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		// Without it the SDK answers a running drain with its handle.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            fmt.Sprintf("%s of host %s by %s, %d at a time", op.name, in.Host, in.By, in.MaxParallel),
	}
}

// getDrain answers the host's drain, running or the last one (its query).
func (s *server) getDrain(c *gin.Context) { s.getEmptying(c, drainOp) }

// getEvacuation answers the host's evacuation, running or the last one.
func (s *server) getEvacuation(c *gin.Context) { s.getEmptying(c, evacuateOp) }

func (s *server) getEmptying(c *gin.Context, op hostEmptying) {
	host := c.Param("name")
	if !spec.IsDNSLabel(host, 40) {
		respondFieldError(c, badField("name", "%q is not a host name", host))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	value, err := s.temporal.QueryWorkflow(ctx, op.id(host), "", hosts.QueryDrain)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("host %s had no %s", host, op.name), "field": "name"})
		return
	case err != nil:
		s.log.WarnContext(ctx, op.name+" query failed", "host", host, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("query the %s of host %s: %v", op.name, host, err))
		return
	}
	var d hosts.Drain
	if err := value.Get(&d); err != nil {
		respondError(c, http.StatusBadGateway, fmt.Sprintf("decode the %s of host %s: %v", op.name, host, err))
		return
	}
	c.JSON(http.StatusOK, d)
}
