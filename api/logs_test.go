package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// cannedLogs answers every read with its lines, recording what it was
// asked and on which engine.
type cannedLogs struct {
	lines     []runtimes.LogLine
	err       error
	asked     []runtimes.LogsInput
	endpoints []string
}

func (l *cannedLogs) source(_ context.Context, endpoint string) (runtimes.LogReader, error) {
	l.endpoints = append(l.endpoints, endpoint)
	return l, nil
}

func (l *cannedLogs) Logs(_ context.Context, in runtimes.LogsInput, emit func(runtimes.LogLine) error) error {
	l.asked = append(l.asked, in)
	for _, line := range l.lines {
		if err := emit(line); err != nil {
			return err
		}
	}
	return l.err
}

func TestTenantLogs(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	logs := &cannedLogs{lines: []runtimes.LogLine{
		{Time: at, Service: "app", Generation: 2, Stream: "stderr", Line: `{"msg":"listening"}`},
		{Time: at.Add(time.Second), Service: "db", Stream: "stdout", Line: "ready"},
	}}
	e := newTestEnv(t, func(c *Config) { c.Logs = logs.source })
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Template: "light", ProvisionID: "run-7",
		Services: []runtimes.ServiceStatus{{Service: "app"}, {Service: "db"}}}

	for q, field := range map[string]string{
		"?tail=-1":        "tail",
		"?tail=10001":     "tail",
		"?since=someday":  "since",
		"?follow=maybe":   "follow",
		"?service=App_1":  "service",
		"?service=worker": "service",
	} {
		rec := e.do(http.MethodGet, "/v1/tenants/acme/logs"+q, opsToken, "")
		require.Equal(t, http.StatusBadRequest, rec.Code, q)
		got, _ := fieldErrorBody(t, rec.Body.Bytes())
		assert.Equal(t, field, got, q)
	}
	assert.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/v1/tenants/acme/logs", developerToken, "").Code, "ops and distributors only")
	require.Empty(t, logs.asked, "nothing read for a bad request")

	rec := e.do(http.MethodGet, "/v1/tenants/acme/logs?service=app&since=10m&tail=5", distributorToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "application/x-ndjson", rec.Header().Get("Content-Type"))
	var got []runtimes.LogLine
	sc := bufio.NewScanner(strings.NewReader(rec.Body.String()))
	for sc.Scan() {
		var l runtimes.LogLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		got = append(got, l)
	}
	assert.Equal(t, logs.lines, got)
	require.Len(t, logs.asked, 1)
	in := logs.asked[0]
	assert.Equal(t, "acme", in.Tenant)
	assert.Equal(t, "run-7", in.Owner, "only the provisioning's own containers")
	assert.Equal(t, "app", in.Service)
	assert.Equal(t, 5, in.Tail)
	assert.WithinDuration(t, time.Now().Add(-10*time.Minute), in.Since, time.Minute)
	assert.Equal(t, []string{""}, logs.endpoints, "an unplaced tenant: the shared engine")

	// A read that fails before any line is a 503; decommissioned tenants
	// say why; no source at all is a 503.
	logs.lines, logs.err = nil, errors.New("engine gone")
	assert.Equal(t, http.StatusServiceUnavailable, e.do(http.MethodGet, "/v1/tenants/acme/logs", opsToken, "").Code)
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateDecommissioned}
	assert.Equal(t, http.StatusConflict, e.do(http.MethodGet, "/v1/tenants/acme/logs", opsToken, "").Code)
	off := newTestEnv(t)
	assert.Equal(t, http.StatusServiceUnavailable, off.do(http.MethodGet, "/v1/tenants/acme/logs", opsToken, "").Code)
}

func TestTenantLogsOpenShift(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	engine := &cannedLogs{lines: []runtimes.LogLine{{Time: at, Service: "app", Stream: "stdout", Line: "from docker"}}}
	cluster := &cannedLogs{lines: []runtimes.LogLine{{Time: at, Service: "app", Generation: 3, Line: "from openshift"}}}
	e := newTestEnv(t, func(c *Config) { c.Logs, c.ClusterLogs = engine.source, cluster })
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Template: "light", ProvisionID: "run-9",
		Runtime: spec.OpenShift, Services: []runtimes.ServiceStatus{{Service: "app"}, {Service: "db"}}}

	rec := e.do(http.MethodGet, "/v1/tenants/acme/logs?service=db&tail=0&follow=true", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "application/x-ndjson", rec.Header().Get("Content-Type"))
	assert.JSONEq(t, `{"time":"2026-12-07T10:00:00Z","service":"app","generation":3,"stream":"","line":"from openshift"}`, rec.Body.String())
	require.Len(t, cluster.asked, 1)
	assert.Equal(t, runtimes.LogsInput{Tenant: "acme", Owner: "run-9", Service: "db", Follow: true}, cluster.asked[0])
	assert.Empty(t, engine.endpoints, "no Docker engine asked for an OpenShift tenant")

	// A Docker tenant still reads its engine through the same source.
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Template: "light", ProvisionID: "run-9"}
	rec = e.do(http.MethodGet, "/v1/tenants/acme/logs", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "from docker")
	assert.Equal(t, []string{""}, engine.endpoints)
	assert.Len(t, cluster.asked, 1)

	// The cluster's read failing is a 503; an API without a cluster
	// answers 501 for OpenShift tenants.
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateActive, Template: "light", Runtime: spec.OpenShift}
	cluster.lines, cluster.err = nil, errors.New("apiserver gone")
	assert.Equal(t, http.StatusServiceUnavailable, e.do(http.MethodGet, "/v1/tenants/acme/logs", opsToken, "").Code)
	none := newTestEnv(t, func(c *Config) { c.Logs = engine.source })
	none.temporal.queryResult = e.temporal.queryResult
	rec = none.do(http.MethodGet, "/v1/tenants/acme/logs", opsToken, "")
	assert.Equal(t, http.StatusNotImplemented, rec.Code)
	assert.Contains(t, rec.Body.String(), "TENANTFLOW_OPENSHIFT_KUBECONFIG")
}
