package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A bad host registration is a 400 naming the field, and nothing reaches
// Temporal; only ops register hosts.
func TestRegisterHostValidation(t *testing.T) {
	good := `"docker":"unix:///run/b/docker.sock","address":"10.0.0.2","capacity":{"cpus":8,"memory":"16Gi"}`
	tests := []struct{ name, body, field string }{
		{"no name", `{` + good + `}`, "name"},
		{"bad name", `{"name":"Host_B",` + good + `}`, "name"},
		{"no capacity", `{"name":"b","docker":"unix:///d.sock","address":"10.0.0.2"}`, "capacity"},
		{"bad memory", `{"name":"b","docker":"unix:///d.sock","address":"10.0.0.2","capacity":{"cpus":8,"memory":"16GB"}}`, "capacity.memory"},
		{"no cpus", `{"name":"b","docker":"unix:///d.sock","address":"10.0.0.2","capacity":{"cpus":0,"memory":"16Gi"}}`, "capacity.cpus"},
		{"tiny memory", `{"name":"b","docker":"unix:///d.sock","address":"10.0.0.2","capacity":{"cpus":1,"memory":"32Mi"}}`, "capacity.memory"},
		{"bad docker", `{"name":"b","docker":"/var/run/docker.sock","address":"10.0.0.2","capacity":{"cpus":1,"memory":"1Gi"}}`, "docker"},
		{"bad address", `{"name":"b","docker":"tcp://10.0.0.2:2375","address":"10.0.0.2:80","capacity":{"cpus":1,"memory":"1Gi"}}`, "address"},
		{"bad label", `{"name":"b",` + good + `,"labels":{"Zone!":"a"}}`, "labels"},
		{"unknown field", `{"name":"b",` + good + `,"zone":"a"}`, "zone"},
		{"null", `{"name":"b",` + good + `,"labels":null}`, "labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/hosts", opsToken, tt.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, _ := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tt.field, field)
			assert.Empty(t, e.temporal.startCalls(), "nothing starts")
			assert.Empty(t, e.temporal.updates, "nothing is sent")
		})
	}
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/hosts", developerToken, `{"name":"b",`+good+`}`)
	assert.Equal(t, http.StatusForbidden, rec.Code)
	rec = e.do(http.MethodGet, "/v1/hosts", developerToken, "")
	assert.Equal(t, http.StatusForbidden, rec.Code)
}

func registered(state hosts.HostState, names ...string) []hosts.Host {
	var out []hosts.Host
	for _, n := range names {
		out = append(out, hosts.Host{HostSpec: hosts.HostSpec{Name: n}, State: state})
	}
	return out
}

// A drain's bad body or host name is a 400 naming the field; an unknown
// host 404, a lost one or a drain running already 409; nothing starts
// for any of them.
func TestDrainHostRefusals(t *testing.T) {
	tests := []struct {
		name, target, body string
		hosts              []hosts.Host
		startErr           error
		status             int
		field              string
	}{
		{"zero at a time", "/v1/hosts/host-a/drain", `{"maxParallel":0}`, nil, nil, http.StatusBadRequest, "maxParallel"},
		{"too many at a time", "/v1/hosts/host-a/drain", `{"maxParallel":11}`, nil, nil, http.StatusBadRequest, "maxParallel"},
		{"not a number", "/v1/hosts/host-a/drain", `{"maxParallel":"two"}`, nil, nil, http.StatusBadRequest, "maxParallel"},
		{"null", "/v1/hosts/host-a/drain", `{"maxParallel":null}`, nil, nil, http.StatusBadRequest, "maxParallel"},
		{"unknown field", "/v1/hosts/host-a/drain", `{"parallel":2}`, nil, nil, http.StatusBadRequest, "parallel"},
		{"long reason", "/v1/hosts/host-a/drain", `{"reason":"` + strings.Repeat("x", 201) + `"}`, nil, nil, http.StatusBadRequest, "reason"},
		{"bad host name", "/v1/hosts/Host_A/drain", "", nil, nil, http.StatusBadRequest, "name"},
		{"unknown host", "/v1/hosts/host-a/drain", "", registered(hosts.StateActive, "host-b"), nil, http.StatusNotFound, "name"},
		{"lost host", "/v1/hosts/host-a/drain", "", registered(hosts.StateLost, "host-a"), nil, http.StatusConflict, ""},
		{"drain running", "/v1/hosts/host-a/drain", "", registered(hosts.StateDraining, "host-a"),
			serviceerror.NewWorkflowExecutionAlreadyStarted("running", "", "run-0"), http.StatusConflict, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.temporal.queryResult, e.temporal.startErr = tt.hosts, tt.startErr
			rec := e.do(http.MethodPost, tt.target, opsToken, tt.body)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			field, msg := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tt.field, field, msg)
			if tt.startErr == nil {
				assert.Empty(t, e.temporal.startCalls(), "nothing starts")
			}
		})
	}
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/hosts/host-a/drain", developerToken, "")
	assert.Equal(t, http.StatusForbidden, rec.Code)
}

// A drain starts as the host's drain workflow, at most one at a time and
// again after one ended, by the caller, with the defaults filled in.
func TestDrainHostStarts(t *testing.T) {
	for _, tt := range []struct {
		body string
		want hosts.DrainInput
	}{
		{"", hosts.DrainInput{Host: "host-a", By: "ops", MaxParallel: hosts.DefaultDrainParallel}},
		{`{"maxParallel":10,"reason":"kernel update"}`, hosts.DrainInput{Host: "host-a", By: "ops", Reason: "kernel update", MaxParallel: 10}},
	} {
		e := newTestEnv(t)
		e.temporal.queryResult = registered(hosts.StateCordoned, "host-a")
		rec := e.do(http.MethodPost, "/v1/hosts/host-a/drain", opsToken, tt.body)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		assert.Equal(t, "/v1/hosts/host-a/drain", rec.Header().Get("Location"))
		require.Len(t, e.temporal.startCalls(), 1)
		call := e.temporal.startCalls()[0]
		assert.Equal(t, hosts.DrainWorkflowType, call.workflow)
		assert.Equal(t, []any{tt.want}, call.args)
		assert.Equal(t, "drain:host-a", call.opts.ID)
		assert.Equal(t, "tenants", call.opts.TaskQueue)
		assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, call.opts.WorkflowIDConflictPolicy)
		assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, call.opts.WorkflowIDReusePolicy)
		assert.True(t, call.opts.WorkflowExecutionErrorWhenAlreadyStarted, "a running drain is a 409, not its handle")
		var body struct {
			WorkflowID  string `json:"workflowId"`
			MaxParallel int    `json:"maxParallel"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		assert.Equal(t, "drain:host-a", body.WorkflowID)
		assert.Equal(t, tt.want.MaxParallel, body.MaxParallel)
	}
}

// GET …/drain answers the drain's query; a host never drained is a 404.
func TestGetDrain(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.queryResult = hosts.Drain{Host: "host-a", Phase: hosts.DrainRunning, Counts: hosts.DrainCounts{Total: 3, Moved: 1, Moving: 2}}
	rec := e.do(http.MethodGet, "/v1/hosts/host-a/drain", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var d hosts.Drain
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
	assert.Equal(t, hosts.DrainRunning, d.Phase)
	assert.Equal(t, 2, d.Counts.Moving)
	assert.Equal(t, []string{"drain:host-a"}, e.temporal.queries)
	assert.Equal(t, []string{hosts.QueryDrain}, e.temporal.queryTypes)

	e = newTestEnv(t)
	e.temporal.queryErr = serviceerror.NewNotFound("workflow not found")
	rec = e.do(http.MethodGet, "/v1/hosts/host-a/drain", opsToken, "")
	require.Equal(t, http.StatusNotFound, rec.Code)
	field, _ := fieldErrorBody(t, rec.Body.Bytes())
	assert.Equal(t, "name", field)
	rec = e.do(http.MethodGet, "/v1/hosts/host-a/drain", developerToken, "")
	assert.Equal(t, http.StatusForbidden, rec.Code)
}

// A move without "to" leaves the target to the registry and checks no
// host; a target given is still checked.
func TestMoveTenantTarget(t *testing.T) {
	tests := []struct {
		name, target, body string
		hosts              []hosts.Host
		status             int
		field, to          string
	}{
		{"no body", "/v1/tenants/acme/move", "", nil, http.StatusAccepted, "", ""},
		{"no to", "/v1/tenants/acme/move", `{}`, nil, http.StatusAccepted, "", ""},
		{"empty to", "/v1/tenants/acme/move", `{"to":""}`, nil, http.StatusAccepted, "", ""},
		{"to", "/v1/tenants/acme/move", `{"to":"host-b"}`, registered(hosts.StateActive, "host-b"), http.StatusAccepted, "", "host-b"},
		{"bad name", "/v1/tenants/A_cme/move", "", nil, http.StatusBadRequest, "name", ""},
		{"bad to", "/v1/tenants/acme/move", `{"to":"Host_B"}`, nil, http.StatusBadRequest, "to", ""},
		{"unknown to", "/v1/tenants/acme/move", `{"to":"host-z"}`, registered(hosts.StateActive, "host-b"), http.StatusNotFound, "to", ""},
		{"cordoned to", "/v1/tenants/acme/move", `{"to":"host-b"}`, registered(hosts.StateCordoned, "host-b"), http.StatusConflict, "to", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.temporal.queryResult = tt.hosts
			e.temporal.updateResult = tenant.Move{From: "host-a", To: tt.to, Phase: tenant.MoveQueued}
			rec := e.do(http.MethodPost, tt.target, opsToken, tt.body)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.status != http.StatusAccepted {
				field, _ := fieldErrorBody(t, rec.Body.Bytes())
				assert.Equal(t, tt.field, field)
				assert.Empty(t, e.temporal.updates, "nothing is sent")
				return
			}
			require.Len(t, e.temporal.updates, 1)
			assert.Equal(t, []any{tenant.MoveRequest{To: tt.to, By: "ops"}}, e.temporal.updates[0].Args)
			if tt.to == "" {
				assert.Empty(t, e.temporal.queries, "the registry chooses: no host to check")
			}
		})
	}
}

// An evacuation is only for a lost host (409 otherwise, nothing starts);
// it starts the host's evacuation workflow with Evacuate set.
func TestEvacuateHost(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.queryResult = registered(hosts.StateCordoned, "host-a")
	rec := e.do(http.MethodPost, "/v1/hosts/host-a/evacuate", opsToken, "")
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "not lost: drain it instead")
	assert.Empty(t, e.temporal.startCalls(), "nothing starts")

	e = newTestEnv(t)
	e.temporal.queryResult = registered(hosts.StateLost, "host-a")
	rec = e.do(http.MethodPost, "/v1/hosts/host-a/evacuate", opsToken, `{"maxParallel":4}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, "/v1/hosts/host-a/evacuation", rec.Header().Get("Location"))
	require.Len(t, e.temporal.startCalls(), 1)
	call := e.temporal.startCalls()[0]
	assert.Equal(t, hosts.EvacuateWorkflowType, call.workflow)
	assert.Equal(t, "evacuate:host-a", call.opts.ID)
	assert.Equal(t, []any{hosts.DrainInput{Host: "host-a", By: "ops", MaxParallel: 4, Evacuate: true}}, call.args)

	rec = newTestEnv(t).do(http.MethodPost, "/v1/hosts/host-a/evacuate", developerToken, "")
	assert.Equal(t, http.StatusForbidden, rec.Code)
}
