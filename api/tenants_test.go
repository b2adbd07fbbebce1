package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

func TestCreateTenantStartsWorkflow(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/tenants", distributorToken, `{"name":"acme","template":"default","stage":"prod"}`)

	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, "/v1/tenants/acme", rec.Header().Get("Location"))
	assert.JSONEq(t, `{"name":"acme","workflowId":"tenant:acme","runId":"run-1","status":"provisioning"}`, rec.Body.String())

	starts := e.temporal.startCalls()
	require.Len(t, starts, 1)
	got := starts[0]
	assert.Equal(t, "Tenant", got.workflow)
	o := got.opts
	assert.Equal(t, "tenant:acme", o.ID)
	assert.Equal(t, "tenants", o.TaskQueue)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, o.WorkflowIDConflictPolicy)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, o.WorkflowIDReusePolicy)
	assert.True(t, o.WorkflowExecutionErrorWhenAlreadyStarted, "without it the SDK hides AlreadyStarted")
	assert.True(t, o.EnableEagerStart)
	assert.Equal(t, "Tenant acme · prod · template default", o.StaticSummary)

	sa := o.TypedSearchAttributes
	assert.Equal(t, 3, sa.Size())
	for _, kv := range []struct {
		key  temporal.SearchAttributeKeyKeyword
		want string
	}{{searchattr.TenantID, "acme"}, {searchattr.TenantState, "provisioning"}, {searchattr.Stage, "prod"}} {
		v, ok := sa.GetKeyword(kv.key)
		assert.True(t, ok, kv.key.GetName())
		assert.Equal(t, kv.want, v, kv.key.GetName())
	}

	require.Len(t, got.args, 1)
	input, ok := got.args[0].(tenant.Input)
	require.True(t, ok, "argument is %T", got.args[0])
	assert.Equal(t, tenant.Spec{Name: "acme", Template: "default", Stage: "prod", RequestedBy: RoleDistributor, Plan: "small"}, input.Spec, "the template's default plan")
	sized, _, err := e.templates["default"].WithPlan("small")
	require.NoError(t, err)
	assert.Equal(t, *sized, input.Template, "the template, its services' own sizes kept for later plans")
	require.NotNil(t, input.Template.Services[0].BaseResources)
	assert.Nil(t, input.State)
	assert.Nil(t, input.Secrets)
}

func TestCreateTenantDefaultsTemplate(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"beta-2","stage":"staging"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	starts := e.temporal.startCalls()
	require.Len(t, starts, 1)
	input := starts[0].args[0].(tenant.Input)
	assert.Equal(t, tenant.Spec{Name: "beta-2", Template: "default", Stage: "staging", RequestedBy: RoleOps, Plan: "small"}, input.Spec)
	assert.Equal(t, "default", input.Template.Name)
	assert.Equal(t, "Tenant beta-2 · staging · template default", starts[0].opts.StaticSummary)
	assert.Equal(t, "/v1/tenants/beta-2", rec.Header().Get("Location"))
}

// A plan sizes the tenant: the template it is provisioned with carries
// the plan's resources, the other fields as the template has them.
func TestCreateTenantWithAPlan(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"acme","template":"light","stage":"prod","plan":"large"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	input := e.temporal.startCalls()[0].args[0].(tenant.Input)
	assert.Equal(t, "large", input.Spec.Plan)
	for _, svc := range input.Template.Services {
		assert.Equal(t, "256Mi", svc.Resources.Memory, svc.Name)
		assert.Equal(t, 2.0, svc.Resources.CPUs, svc.Name)
		assert.Equal(t, int64(128), svc.Resources.Pids, svc.Name)
	}
	assert.Equal(t, "64Mi", e.templates["light"].Services[0].Resources.Memory, "the loaded template is not changed")
}

// Settings at creation: the template the tenant is provisioned with
// carries them; a setting the template lacks or a value it refuses is a
// 400 naming the setting, and nothing starts.
func TestCreateTenantWithSettings(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"acme","template":"light","stage":"prod","settings":{"TITLE":"Acme CRM"}}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	input := e.temporal.startCalls()[0].args[0].(tenant.Input)
	assert.Equal(t, map[string]string{"TITLE": "Acme CRM"}, input.Template.Values)
	assert.Equal(t, map[string]string{"TITLE": "Acme CRM", "LOG_LEVEL": "info"}, input.Template.SettingValues())
	assert.Nil(t, e.templates["light"].Values, "the loaded template is not changed")

	for body, want := range map[string]string{
		`{"name":"acme","template":"light","stage":"prod","settings":{"COLOR":"red"}}`:      "settings.COLOR",
		`{"name":"acme","template":"light","stage":"prod","settings":{"LOG_LEVEL":"loud"}}`: "settings.LOG_LEVEL",
		`{"name":"acme","template":"light","stage":"prod","settings":{"TITLE":null}}`:       "settings.TITLE",
	} {
		e := newTestEnv(t)
		rec := e.do(http.MethodPost, "/v1/tenants", opsToken, body)
		require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
		field, _ := fieldErrorBody(t, rec.Body.Bytes())
		assert.Equal(t, want, field)
		assert.Empty(t, e.temporal.startCalls())
	}
}

func TestCreateTenantValidation(t *testing.T) {
	tooBig := `{"name":"acme","stage":"prod","template":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name      string
		body      string
		maxBody   int64
		wantField string
		wantError string // substring of the error message
	}{
		{name: "body over default limit", body: tooBig, wantField: "body", wantError: "larger than 65536 bytes"},
		{name: "body over configured limit", body: `{"name":"acme","stage":"prod","template":"default"}`, maxBody: 20, wantField: "body", wantError: "larger than 20 bytes"},
		{name: "empty body", body: "", wantField: "body", wantError: "empty"},
		{name: "malformed JSON", body: `{"name":`, wantField: "body", wantError: "malformed JSON"},
		{name: "not JSON", body: `name=acme`, wantField: "body", wantError: "malformed JSON"},
		{name: "trailing object", body: `{"name":"acme","stage":"prod"} {}`, wantField: "body", wantError: "unexpected data after the JSON object"},
		{name: "trailing garbage", body: `{"name":"acme","stage":"prod"}x`, wantField: "body", wantError: "unexpected data after the JSON object"},
		{name: "array instead of object", body: `[{"name":"acme"}]`, wantField: "body", wantError: "must be a JSON object"},
		{name: "name wrong type", body: `{"name":42,"stage":"prod"}`, wantField: "name", wantError: "name must be a string, not number"},
		{name: "template wrong type", body: `{"name":"acme","template":true,"stage":"prod"}`, wantField: "template", wantError: "template must be a string"},
		{name: "stage wrong type", body: `{"name":"acme","stage":["prod"]}`, wantField: "stage", wantError: "stage must be a string"},
		{name: "unknown field", body: `{"name":"acme","stage":"prod","owner":"bob"}`, wantField: "owner", wantError: `unknown field "owner"`},
		{name: "name missing", body: `{"stage":"prod"}`, wantField: "name", wantError: "name is required"},
		{name: "name too short", body: `{"name":"ab","stage":"prod"}`, wantField: "name", wantError: "3–40 lowercase letters, digits and hyphens"},
		{name: "name too long", body: `{"name":"` + strings.Repeat("a", 41) + `","stage":"prod"}`, wantField: "name", wantError: "3–40"},
		{name: "name uppercase", body: `{"name":"Acme","stage":"prod"}`, wantField: "name", wantError: "starting and ending with a letter or digit"},
		{name: "name leading hyphen", body: `{"name":"-acme","stage":"prod"}`, wantField: "name", wantError: `name "-acme" is invalid`},
		{name: "name trailing hyphen", body: `{"name":"acme-","stage":"prod"}`, wantField: "name", wantError: `name "acme-" is invalid`},
		{name: "name underscore", body: `{"name":"ac_me","stage":"prod"}`, wantField: "name", wantError: `name "ac_me" is invalid`},
		{name: "name with dot", body: `{"name":"ac.me","stage":"prod"}`, wantField: "name", wantError: `name "ac.me" is invalid`},
		{name: "name with the IDNA prefix", body: `{"name":"xn--mnchen-3ya","stage":"prod"}`, wantField: "name", wantError: `name "xn--mnchen-3ya" is reserved`},
		{name: "name with another reserved prefix", body: `{"name":"ab--cd","stage":"prod"}`, wantField: "name", wantError: "3rd and 4th characters"},
		{name: "unknown template", body: `{"name":"acme","template":"huge","stage":"prod"}`, wantField: "template", wantError: `unknown template "huge" (known: default, light)`},
		{name: "stage missing", body: `{"name":"acme"}`, wantField: "stage", wantError: "stage is required (one of: staging, prod)"},
		{name: "stage unknown", body: `{"name":"acme","stage":"dev"}`, wantField: "stage", wantError: `unknown stage "dev" (one of: staging, prod)`},
		{name: "template null", body: `{"name":"acme","template":null,"stage":"prod"}`, wantField: "template", wantError: "template must not be null: leave it out"},
		{name: "unknown plan", body: `{"name":"acme","stage":"prod","plan":"huge"}`, wantField: "plan", wantError: `template default has no plan "huge" (plans: large, medium, small)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.MaxBodyBytes = tt.maxBody })
			rec := e.do(http.MethodPost, "/v1/tenants", opsToken, tt.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			var body struct{ Error, Field string }
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, tt.wantField, body.Field)
			assert.Contains(t, body.Error, tt.wantError)
			assert.Empty(t, e.temporal.startCalls(), "no workflow may be started for an invalid request")
		})
	}
}

func TestCreateTenantConflict(t *testing.T) {
	for name, err := range map[string]error{
		"plain":   serviceerror.NewWorkflowExecutionAlreadyStarted("workflow execution already started", "req-1", "run-0"),
		"wrapped": fmt.Errorf("start: %w", serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "req-1", "run-0")),
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t)
			e.temporal.startErr = err
			rec := e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"acme","stage":"prod"}`)
			require.Equal(t, http.StatusConflict, rec.Code)
			assert.JSONEq(t, `{"error":"tenant acme already exists","field":"name"}`, rec.Body.String())
			assert.Empty(t, rec.Header().Get("Location"))
		})
	}
}

func TestCreateTenantTemporalDown(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.startErr = serviceerror.NewUnavailable("connection refused")
	rec := e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"acme","stage":"prod"}`)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"error":"start tenant acme: connection refused"}`, rec.Body.String())
	assert.Contains(t, e.logs.String(), `"msg":"start tenant workflow failed"`)
	assert.Contains(t, e.logs.String(), `"error":"connection refused"`)
}

func TestGetTenant(t *testing.T) {
	created := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	state := tenant.Tenant{
		Name: "acme", State: tenant.StateActive, Stage: "prod", Template: "default",
		Image: "tenantflow/demo-app:1.2", URL: "http://acme.localhost:8080",
		Progress:  flow.Progress{Done: 5, Total: 5, Step: "verify"},
		Services:  []runtimes.ServiceStatus{},
		CreatedAt: created, UpdatedAt: created.Add(time.Minute),
	}
	e := newTestEnv(t)
	e.temporal.queryResult = state
	rec := e.do(http.MethodGet, "/v1/tenants/acme", developerToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{
		"name":"acme","state":"active","stage":"prod","template":"default",
		"image":"tenantflow/demo-app:1.2","url":"http://acme.localhost:8080",
		"progress":{"done":5,"total":5,"step":"verify"},
		"createdAt":"2025-03-01T10:00:00Z","updatedAt":"2025-03-01T10:01:00Z"
	}`, rec.Body.String())
	assert.Equal(t, []string{"tenant:acme"}, e.temporal.queries)
	assert.Equal(t, []string{"state"}, e.temporal.queryTypes)
}

func TestGetTenantAlwaysHasProgress(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.queryResult = tenant.Tenant{Name: "acme", State: tenant.StateProvisioning, Stage: "staging", Template: "default"}
	rec := e.do(http.MethodGet, "/v1/tenants/acme", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, map[string]any{"done": 0.0, "total": 0.0, "step": ""}, body["progress"])
	assert.Equal(t, "provisioning", body["state"])
}

func TestGetTenantErrors(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		setup    func(*fakeTemporal)
		timeout  time.Duration
		wantCode int
		wantBody string
		queried  bool
	}{
		{
			name: "not found", path: "/v1/tenants/acme",
			setup:    func(f *fakeTemporal) { f.queryErr = serviceerror.NewNotFound("workflow not found for ID: tenant:acme") },
			wantCode: http.StatusNotFound, wantBody: `{"error":"tenant acme not found"}`, queried: true,
		},
		{
			name: "server deadline", path: "/v1/tenants/acme",
			setup:    func(f *fakeTemporal) { f.queryErr = serviceerror.NewDeadlineExceeded("context deadline exceeded") },
			wantCode: http.StatusServiceUnavailable, wantBody: `{"error":"tenant acme: no worker answered the state query within 5s"}`, queried: true,
		},
		{
			name: "no worker answers before the timeout", path: "/v1/tenants/acme", timeout: 50 * time.Millisecond,
			setup:    func(f *fakeTemporal) { f.queryBlock = true },
			wantCode: http.StatusServiceUnavailable, wantBody: `{"error":"tenant acme: no worker answered the state query within 50ms"}`, queried: true,
		},
		{
			name: "other error", path: "/v1/tenants/acme",
			setup:    func(f *fakeTemporal) { f.queryErr = errors.New("transport is closing") },
			wantCode: http.StatusServiceUnavailable, wantBody: `{"error":"query tenant acme: transport is closing"}`, queried: true,
		},
		{
			name: "invalid name", path: "/v1/tenants/Bad_Name", setup: func(*fakeTemporal) {},
			wantCode: http.StatusBadRequest,
			wantBody: `{"field":"name","error":"name \"Bad_Name\" is invalid: use 3–40 lowercase letters, digits and hyphens, starting and ending with a letter or digit"}`,
		},
		{
			name: "short name", path: "/v1/tenants/ab", setup: func(*fakeTemporal) {},
			wantCode: http.StatusBadRequest,
			wantBody: `{"field":"name","error":"name \"ab\" is invalid: use 3–40 lowercase letters, digits and hyphens, starting and ending with a letter or digit"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.QueryTimeout = tt.timeout })
			tt.setup(e.temporal)
			start := time.Now()
			rec := e.do(http.MethodGet, tt.path, opsToken, "")
			assert.Less(t, time.Since(start), 3*time.Second, "the query timeout must bound the request")
			require.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			assert.JSONEq(t, tt.wantBody, rec.Body.String())
			if tt.queried {
				assert.Equal(t, []string{"tenant:acme"}, e.temporal.queries)
			} else {
				assert.Empty(t, e.temporal.queries)
			}
		})
	}
}

func TestReservedNamePrefixOnlyBarsNewTenants(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/tenants", opsToken, `{"name":"acme--shop","stage":"prod"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, "\"--\" elsewhere is fine: %s", rec.Body.String())

	// A tenant created before the rule stays reachable.
	e.temporal.queryResult = tenant.Tenant{Name: "xn--mnchen-3ya", State: tenant.StateActive}
	rec = e.do(http.MethodGet, "/v1/tenants/xn--mnchen-3ya", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}
