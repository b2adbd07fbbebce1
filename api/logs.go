package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// LogSource gives the reader of the container logs on a Docker engine:
// the endpoint of the tenant's fleet host, or "" for the engine the
// unplaced tenants share. OpenShift tenants' logs are Config.ClusterLogs'.
type LogSource func(ctx context.Context, endpoint string) (runtimes.LogReader, error)

// Limits of a logs request.
const (
	defaultLogTail = 100
	maxLogTail     = 10000
	// maxFollow bounds how long one request follows a tenant's logs; a
	// client that wants more asks again with since.
	maxFollow = 30 * time.Minute
)

// tenantLogs streams a tenant's container logs (ops, distributor), one
// JSON object a line: {"time","service","generation","stream","line"}.
// Only the tenant's own containers, of its provisioning, are read.
//
//	GET /v1/tenants/{name}/logs?service=app&since=10m&tail=100&follow=true
func (s *server) tenantLogs(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	in, ferr := logsInput(c)
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	st, ok := s.queryTenant(c, name)
	if !ok {
		return
	}
	if st.State == tenant.StateDecommissioned || st.State == tenant.StateFailed {
		respondError(c, http.StatusConflict, "tenant "+name+" is "+string(st.State)+": it has no containers")
		return
	}
	services := serviceNames(st, s.templates[st.Template])
	if in.Service != "" && !slices.Contains(services, in.Service) {
		respondFieldError(c, badField("service", "tenant %s has no service %q (its services: %v)", name, in.Service, services))
		return
	}
	in.Tenant, in.Owner = name, st.ProvisionID
	reader, ok := s.logReader(c, st)
	if !ok {
		return
	}
	s.streamLogs(c, reader, in)
}

// logReader is the reader of the tenant's logs: its OpenShift cluster's,
// or its Docker engine's (its fleet host's, or the shared one).
func (s *server) logReader(c *gin.Context, st tenant.Tenant) (runtimes.LogReader, bool) {
	if st.Runtime == spec.OpenShift {
		if s.cfg.ClusterLogs == nil {
			respondError(c, http.StatusNotImplemented, "logs of OpenShift tenants are not read here: this API reads no OpenShift cluster (TENANTFLOW_OPENSHIFT_KUBECONFIG or TENANTFLOW_OPENSHIFT_IN_CLUSTER)")
			return nil, false
		}
		return s.cfg.ClusterLogs, true // a cluster that does not answer fails the read: 503
	}
	if s.cfg.Logs == nil {
		respondError(c, http.StatusServiceUnavailable, "this API reads no container logs: it has no Docker engine (TENANTFLOW_LOGS_DOCKER_HOST)")
		return nil, false
	}
	endpoint, ok := s.engineOf(c, st)
	if !ok {
		return nil, false
	}
	reader, err := s.cfg.Logs(c.Request.Context(), endpoint)
	if err != nil {
		s.log.WarnContext(c.Request.Context(), "logs: Docker engine unreachable", "tenant", st.Name, "error", err)
		respondError(c, http.StatusServiceUnavailable, "the tenant's Docker engine does not answer")
		return nil, false
	}
	return reader, true
}

// logsInput reads the query: service, since (an RFC 3339 time, or a
// duration back from now), tail, follow.
func logsInput(c *gin.Context) (runtimes.LogsInput, *fieldError) {
	in := runtimes.LogsInput{Service: c.Query("service"), Tail: defaultLogTail}
	if in.Service != "" && !spec.IsDNSLabel(in.Service, 63) {
		return in, badField("service", "service %q is not a service name", in.Service)
	}
	if v := c.Query("since"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			in.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			in.Since = t
		} else {
			return in, badField("since", "since must be an RFC 3339 time (2026-12-07T10:00:00Z) or a duration back from now (10m), not %q", v)
		}
	}
	if v := c.Query("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxLogTail {
			return in, badField("tail", "tail must be 0 (every line since) to %d", maxLogTail)
		}
		in.Tail = n
	}
	if v := c.Query("follow"); v != "" {
		f, err := strconv.ParseBool(v)
		if err != nil {
			return in, badField("follow", "follow must be true or false")
		}
		in.Follow = f
	}
	return in, nil
}

// serviceNames are the tenant's services: as it runs them, or as its
// template names them.
func serviceNames(st tenant.Tenant, tpl *spec.Template) []string {
	var out []string
	for _, s := range st.Services {
		if s.Service != "" && !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	if len(out) == 0 && tpl != nil {
		for _, s := range tpl.Services {
			out = append(out, s.Name)
		}
	}
	return out
}

// engineOf is the Docker endpoint of the tenant's fleet host ("": the
// shared engine, for a tenant not placed on the fleet).
func (s *server) engineOf(c *gin.Context, st tenant.Tenant) (string, bool) {
	if st.Placement == nil || st.Placement.Host == "" {
		return "", true
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	list, ok := s.queryHosts(ctx, c)
	if !ok {
		return "", false
	}
	if i := slices.IndexFunc(list, func(h hosts.Host) bool { return h.Name == st.Placement.Host }); i >= 0 {
		return list[i].Docker, true
	}
	respondError(c, http.StatusServiceUnavailable, "tenant "+st.Name+"'s host "+st.Placement.Host+" is not in the registry")
	return "", false
}

// streamLogs writes the lines as they come. With follow the HTTP write
// deadline is lifted for this answer (up to maxFollow) and each line is
// flushed at once.
func (s *server) streamLogs(c *gin.Context, reader runtimes.LogReader, in runtimes.LogsInput) {
	ctx := c.Request.Context()
	if in.Follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxFollow)
		defer cancel()
		_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(maxFollow + time.Minute))
	}
	started := false
	start := func() {
		if !started {
			started = true
			c.Header("Content-Type", "application/x-ndjson")
			c.Header("Cache-Control", "no-store")
			c.Header("X-Content-Type-Options", "nosniff")
			c.Status(http.StatusOK)
		}
	}
	if in.Follow {
		// The client learns at once that it follows, before any line.
		start()
		c.Writer.Flush()
	}
	enc := json.NewEncoder(c.Writer)
	err := reader.Logs(ctx, in, func(l runtimes.LogLine) error {
		start()
		if err := enc.Encode(l); err != nil {
			return err // the client went away
		}
		if in.Follow {
			c.Writer.Flush()
		}
		return nil
	})
	switch {
	case err != nil && !started:
		s.log.WarnContext(c.Request.Context(), "logs: read failed", "tenant", in.Tenant, "error", err)
		respondError(c, http.StatusServiceUnavailable, "the tenant's logs cannot be read now")
	case err != nil:
		s.log.InfoContext(c.Request.Context(), "logs: stream ended", "tenant", in.Tenant, "error", err)
	default:
		start()
	}
}
