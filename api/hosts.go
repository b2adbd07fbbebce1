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
	s := hosts.HostSpec{Name: req.Name, Docker: req.Docker, Address: req.Address, Labels: req.Labels,
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
		in := hosts.SetStateInput{Host: c.Param("name"), State: state, By: c.GetString(ctxCaller), Reason: body.Reason}
		t := hostTarget
		t.notFoundType, t.notFound = hosts.ErrNotFound, "name"
		if !s.sendUpdate(c, hosts.WorkflowID, t, hosts.UpdateSetState, in, &h) {
			return
		}
		c.JSON(http.StatusOK, s.viewHost(c.Request.Context(), h))
	}
}

// moveTenant moves a placed tenant to another host with its data (ops).
// The target must be registered and active; the tenant answers the rest
// (placed, active, not moving already).
func (s *server) moveTenant(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body struct {
		To string `json:"to"`
	}
	if ferr := decodeJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	if !spec.IsDNSLabel(body.To, 40) {
		respondFieldError(c, badField("to", "to %q is not a host name", body.To))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	list, ok := s.queryHosts(ctx, c)
	cancel()
	if !ok {
		return
	}
	i := slices.IndexFunc(list, func(h hosts.Host) bool { return h.Name == body.To })
	switch {
	case i < 0:
		c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": fmt.Sprintf("host %s is not registered", body.To), "field": "to"})
		return
	case list[i].State != hosts.StateActive:
		c.AbortWithStatusJSON(http.StatusConflict, gin.H{"error": fmt.Sprintf("host %s is %s: it takes no tenant", body.To, list[i].State), "field": "to"})
		return
	}
	var out tenant.Move
	if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
		ended: "has ended: nothing to move", refusals: []string{tenant.ErrMoveRefused}},
		tenant.UpdateMove, tenant.MoveRequest{To: body.To, By: c.GetString(ctxCaller)}, &out) {
		return
	}
	s.log.InfoContext(c.Request.Context(), "move requested", "tenant", name, "from", out.From, "to", out.To, "caller", c.GetString(ctxCaller))
	c.Header("Location", "/v1/tenants/"+name)
	c.JSON(http.StatusAccepted, out)
}
