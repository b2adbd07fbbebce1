package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/audit"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
	"github.com/tenantflow/tenantflow/workflows/reconcile"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// TestOpenAPI* keep api/openapi.json (served at /openapi.json) and the
// router in step: the document is a valid OpenAPI 3.1 document; it has
// exactly the router's routes; each route's x-roles are the roles the
// router admits; each request schema has exactly the fields its handler
// decodes; and example requests, sent through the real router over the
// fake Temporal, are valid requests (or invalid ones on purpose) whose
// answers the document describes, status code and body. The generated
// answer schemas are checked in openapi_schema_test.go.
//
// The Web UI's codec endpoint (/codec/*) is not in the document: it is
// mounted beside NewRouter by cmd/tenantflow and belongs to the codec
// package, so TestOpenAPIRoutes never sees it.

// loadOpenAPI loads and validates the embedded document (OpenAPI 3.1:
// kin-openapi validates it, and openapi3filter checks values against it,
// with JSON Schema 2020-12).
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	require.NoError(t, err, "openapi.json does not load")
	require.NoError(t, doc.Validate(context.Background()), "openapi.json is not a valid OpenAPI document")
	return doc
}

// contractEnv is the test router with every optional route: builds
// configured (/metrics comes with newTestEnv's registry).
func contractEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	return newTestEnv(t, append([]envOption{withBuilds(fakeResolver{})}, opts...)...)
}

// openAPIPath writes a gin route ("/v1/tenants/:name") as OpenAPI does
// ("/v1/tenants/{name}").
func openAPIPath(ginPath string) string {
	parts := strings.Split(ginPath, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// probeTarget fills a route's parameters with values its handler takes.
func probeTarget(path string) string {
	return strings.NewReplacer("{name}", "acme", ":name", "acme", "{id}", "r1", ":id", "r1",
		"{host}", "crm.customer.com", ":host", "crm.customer.com").Replace(path)
}

// operations lists the document's operations as "METHOD /path".
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	out := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[method+" "+path] = op
		}
	}
	return out
}

// TestOpenAPIDocument: the document is valid OpenAPI 3.1, served as it
// is at /openapi.json without a token.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	assert.Equal(t, "3.1.0", doc.OpenAPI)
	assert.True(t, doc.IsOpenAPI31OrLater())

	rec := contractEnv(t).do(http.MethodGet, "/openapi.json", "", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, openAPIDocument, rec.Body.Bytes())
}

// TestOpenAPIRoutes: the router's routes are the document's.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	inDoc := operations(doc)
	inRouter := map[string]bool{}
	for _, r := range contractEnv(t).router.Routes() {
		inRouter[r.Method+" "+openAPIPath(r.Path)] = true
	}
	for _, route := range slices.Sorted(maps.Keys(inRouter)) {
		if inDoc[route] == nil {
			t.Errorf("the router serves %s, which openapi.json does not describe", route)
		}
	}
	for _, route := range slices.Sorted(maps.Keys(inDoc)) {
		if !inRouter[route] {
			t.Errorf("openapi.json describes %s, which the router does not serve", route)
		}
	}
}

// xRoles is an operation's x-roles, sorted (nil when it has none).
func xRoles(t *testing.T, op *openapi3.Operation) []string {
	v, ok := op.Extensions["x-roles"]
	if !ok {
		return nil
	}
	data, err := json.Marshal(v)
	require.NoError(t, err)
	var roles []string
	require.NoError(t, json.Unmarshal(data, &roles), "x-roles must be a list of role names: %s", data)
	slices.Sort(roles)
	return roles
}

// securedBy is the operation's security schemes.
func securedBy(op *openapi3.Operation) []string {
	var out []string
	if op.Security != nil {
		for _, req := range *op.Security {
			out = slices.AppendSeq(out, maps.Keys(req))
		}
	}
	slices.Sort(out)
	return out
}

var testTokenOf = map[string]string{RoleOps: opsToken, RoleDistributor: distributorToken, RoleDeveloper: developerToken}

// TestOpenAPIRoles finds, for each route, the roles the router admits by
// asking it: a request without a token that gets the bearer challenge
// (401 with WWW-Authenticate: Bearer) is of a route behind RequireRoles;
// then a request with each role's token, and no body, is refused (403)
// or goes past the role check (any other answer). Those roles must be
// the operation's x-roles, and the route needs the bearer scheme. Every
// answer must be one the document describes.
func TestOpenAPIRoles(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := operations(doc)
	c := newAnswerChecker(t, doc)
	e := contractEnv(t)
	for _, r := range e.router.Routes() {
		route := r.Method + " " + openAPIPath(r.Path)
		op := ops[route]
		if op == nil {
			continue // TestOpenAPIRoutes names it
		}
		target := probeTarget(r.Path)
		anon := c.send(t, e, r.Method, target, "", "")
		bearer := anon.Code == http.StatusUnauthorized && strings.HasPrefix(anon.Header().Get("WWW-Authenticate"), "Bearer")
		var admitted []string
		if bearer {
			for _, role := range knownRoles {
				rec := c.send(t, e, r.Method, target, testTokenOf[role], "")
				require.NotEqual(t, http.StatusInternalServerError, rec.Code, "%s as %s: %s", route, role, rec.Body.String())
				if rec.Code != http.StatusForbidden {
					admitted = append(admitted, role)
				}
			}
		}
		slices.Sort(admitted)
		documented := xRoles(t, op)
		switch {
		case bearer != slices.Contains(securedBy(op), "bearer"):
			t.Errorf("%s: the router %s, openapi.json's security is %v", route,
				map[bool]string{true: "wants a bearer token", false: "answers without a bearer token"}[bearer], securedBy(op))
		case !slices.Equal(admitted, documented):
			t.Errorf("%s: the router admits the roles %v, openapi.json's x-roles are %v", route, admitted, documented)
		}
	}
}

// requestBodies maps each operation with a body to the Go type its
// handler decodes it into. Five handlers decode into a struct declared in
// their own body, which a test cannot reach (move, suspend, resume,
// cordon/uncordon, confirm/cancel): their entries mirror it, and the
// probe of TestOpenAPIRequestFields checks from outside that the handler
// takes each field the document lists and refuses any other.
var requestBodies = map[string]any{
	"POST /v1/tenants":                             createTenantRequest{},
	"PATCH /v1/tenants/{name}":                     patchTenantRequest{},
	"DELETE /v1/tenants/{name}":                    decommissionRequest{},
	"POST /v1/tenants/{name}/decommission/confirm": struct{}{},
	"POST /v1/tenants/{name}/decommission/cancel":  struct{}{},
	"POST /v1/tenants/{name}/restore":              restoreRequest{},
	"POST /v1/tenants/{name}/backups":              backupRequest{},
	"POST /v1/tenants/{name}/domains":              addDomainRequest{},
	"POST /v1/tenants/{name}/move": struct {
		To string `json:"to"`
	}{},
	"POST /v1/tenants/{name}/suspend": struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}{},
	"POST /v1/tenants/{name}/resume": struct {
		Reason string `json:"reason"`
	}{},
	"POST /v1/releases":                      createReleaseRequest{},
	"POST /v1/releases/{id}/promote":         releaseActionRequest{},
	"POST /v1/releases/{id}/pause":           releaseActionRequest{},
	"POST /v1/releases/{id}/resume":          releaseActionRequest{},
	"POST /v1/releases/{id}/abort":           releaseActionRequest{},
	"POST /v1/releases/{id}/override-window": overrideWindowRequest{},
	"POST /v1/hosts":                         registerHostRequest{},
	"POST /v1/hosts/{name}/cordon": struct {
		Reason string `json:"reason"`
	}{},
	"POST /v1/hosts/{name}/uncordon": struct {
		Reason string `json:"reason"`
	}{},
	"POST /v1/hosts/{name}/drain":    drainRequest{},
	"POST /v1/hosts/{name}/evacuate": drainRequest{},
	"POST /v1/builds":                createBuildRequest{},
	"POST /v1/hooks/gitlab":          nil, // GitLab's event, read by GitLab's client library: an open object
}

// TestOpenAPIRequestFields: each request schema has the fields (and JSON
// types, nested objects included) of its handler's Go type, refuses any
// other (additionalProperties: false), and the handler agrees: it takes
// each field the schema lists and refuses an unknown one, at every level.
// A route without a body in the document must not read one.
func TestOpenAPIRequestFields(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := operations(doc)
	for _, route := range slices.Sorted(maps.Keys(ops)) {
		_, mapped := requestBodies[route]
		if rb := ops[route].RequestBody; rb != nil && !mapped {
			t.Errorf("%s has a request body in openapi.json, but requestBodies names no Go type for it", route)
		}
	}
	c := newAnswerChecker(t, doc)
	e := contractEnv(t)
	for _, route := range slices.Sorted(maps.Keys(ops)) {
		roles := xRoles(t, ops[route])
		if _, mapped := requestBodies[route]; mapped || roles == nil {
			continue
		}
		// No body in the document: the handler must not read one.
		method, path, _ := strings.Cut(route, " ")
		rec := c.send(t, e, method, probeTarget(path), testTokenOf[roles[0]], `{"zzUnknown":1}`)
		if rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "unknown field") {
			t.Errorf("%s decodes a request body, which openapi.json does not describe: %s", route, rec.Body.String())
		}
	}
	for _, route := range slices.Sorted(maps.Keys(requestBodies)) {
		op := ops[route]
		if op == nil || op.RequestBody == nil || op.RequestBody.Value.Content.Get("application/json") == nil {
			t.Errorf("%s: requestBodies maps it, but openapi.json gives it no application/json request body", route)
			continue
		}
		body := requestBodies[route]
		if body == nil {
			continue
		}
		schema := op.RequestBody.Value.Content.Get("application/json").Schema.Value
		g := &schemaGen{}
		want := g.schemaOf(reflect.TypeOf(body), nil)
		require.NoError(t, g.err)
		for _, p := range compareFields(route+" body", schema, want) {
			t.Error(p)
		}
		method, path, _ := strings.Cut(route, " ")
		roles := xRoles(t, op)
		require.NotEmpty(t, roles, route)
		for _, p := range probeFields(t, c, e, method, probeTarget(path), testTokenOf[roles[0]], schema, nil) {
			t.Errorf("%s: %s", route, p)
		}
	}
}

// jsonTypes are a schema's types but null.
func jsonTypes(types []string) []string {
	return slices.DeleteFunc(slices.Clone(types), func(s string) bool { return s == "null" })
}

// genTypes are a generated schema's types but null.
func genTypes(s map[string]any) []string {
	switch v := s["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, x.(string))
		}
		return jsonTypes(out)
	}
	return nil
}

// compareFields lists where a request schema and the Go type's generated
// schema differ: field names and JSON types, through nested objects,
// arrays and maps; an object of fixed fields must refuse others.
func compareFields(path string, doc *openapi3.Schema, gen map[string]any) []string {
	var out []string
	docTypes, goTypes := jsonTypes(doc.Type.Slice()), genTypes(gen)
	if !slices.Equal(docTypes, goTypes) {
		return append(out, fmt.Sprintf("%s: openapi.json says type %v, the Go type is %v", path, docTypes, goTypes))
	}
	switch {
	case slices.Equal(goTypes, []string{"array"}):
		return compareFields(path+"[]", doc.Items.Value, gen["items"].(map[string]any))
	case !slices.Equal(goTypes, []string{"object"}):
		return nil
	}
	if props, ok := gen["properties"].(map[string]any); ok {
		for _, name := range slices.Sorted(maps.Keys(doc.Properties)) {
			if props[name] == nil {
				out = append(out, fmt.Sprintf("%s: openapi.json has field %q, which the Go type lacks", path, name))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(props)) {
			if doc.Properties[name] == nil {
				out = append(out, fmt.Sprintf("%s: the Go type has field %q, which openapi.json lacks", path, name))
				continue
			}
			out = append(out, compareFields(path+"."+name, doc.Properties[name].Value, props[name].(map[string]any))...)
		}
		if has := doc.AdditionalProperties.Has; has == nil || *has || doc.AdditionalProperties.Schema != nil {
			out = append(out, fmt.Sprintf("%s: openapi.json must say additionalProperties: false (the API refuses unknown fields)", path))
		}
		return out
	}
	if doc.AdditionalProperties.Schema == nil {
		return append(out, fmt.Sprintf("%s: a map in Go, but openapi.json gives no additionalProperties schema", path))
	}
	return compareFields(path+"{}", doc.AdditionalProperties.Schema.Value, gen["additionalProperties"].(map[string]any))
}

// probeFields sends the handler, at each object of fixed fields of the
// schema (at, nil: the body itself), each field the schema lists, as
// null, and an unknown field: the first must not be refused as unknown,
// the second must (and the document must describe each answer).
func probeFields(t *testing.T, c *answerChecker, e *testEnv, method, target, token string, schema *openapi3.Schema, at []string) []string {
	if len(schema.Properties) == 0 && (schema.AdditionalProperties.Schema != nil || !slices.Contains(schema.Type.Slice(), "object")) {
		return nil // a map, or not an object
	}
	send := func(field string, value any) (int, string) {
		var body any = map[string]any{field: value}
		for i := len(at) - 1; i >= 0; i-- {
			body = map[string]any{at[i]: body}
		}
		data, _ := json.Marshal(body)
		rec := c.send(t, e, method, target, token, string(data))
		var answer struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &answer)
		return rec.Code, answer.Error
	}
	where := strings.Join(append(slices.Clone(at), ""), ".")
	var out []string
	for _, name := range slices.Sorted(maps.Keys(schema.Properties)) {
		if code, msg := send(name, nil); code == http.StatusBadRequest && strings.Contains(msg, "unknown field") {
			out = append(out, fmt.Sprintf("openapi.json lists field %s%s, which the handler refuses: %s", where, name, msg))
		}
		if sub := schema.Properties[name].Value; sub != nil {
			out = append(out, probeFields(t, c, e, method, target, token, sub, append(slices.Clone(at), name))...)
		}
	}
	if code, msg := send("zzUnknown", 1); code != http.StatusBadRequest || !strings.Contains(msg, "unknown field") {
		out = append(out, fmt.Sprintf("the handler takes an unknown field %szzUnknown (answer %d %q): openapi.json's additionalProperties: false is wrong there", where, code, msg))
	}
	return out
}

// contractExample is a request sent through the router and checked
// against the document.
type contractExample struct {
	name   string
	method string
	target string // path and query
	token  string // "" none
	body   string
	header map[string]string
	env    []envOption
	setup  func(t *testing.T, e *testEnv)
	status int
	field  string // the error's field, when it names one
	// invalid: the request breaks the document on purpose (a 401
	// without a token, a 400 the schema foresees), and ValidateRequest
	// must refuse it with an error that says this; "": it must take it.
	invalid string
}

// fullOf is a value of T with every field set (see fullValue).
func fullOf[T any]() T { return fullValue(reflect.TypeFor[T]()).Interface().(T) }

func answerUpdate(v any) func(*testing.T, *testEnv) {
	return func(_ *testing.T, e *testEnv) { e.temporal.updateResult = v }
}

func answerQuery(v any) func(*testing.T, *testEnv) {
	return func(_ *testing.T, e *testEnv) { e.temporal.queryResult = v }
}

func refuseUpdate(errType string) func(*testing.T, *testEnv) {
	return func(_ *testing.T, e *testEnv) {
		e.temporal.updateGetErr = temporal.NewApplicationError("refused by the workflow", errType)
	}
}

func queryNotFound(_ *testing.T, e *testEnv) {
	e.temporal.queryErr = serviceerror.NewNotFound("workflow not found")
}

// hostRegistry answers the hosts query with one host, host-a, in state.
func hostRegistry(state hosts.HostState) func(*testing.T, *testEnv) {
	h := fullOf[hosts.Host]()
	h.Name, h.State = "host-a", state
	return answerQuery([]hosts.Host{h})
}

// withAudit stores the audit trail in a directory, with one entry.
func withAudit(t *testing.T) envOption {
	store, err := audit.OpenFileStore(filepath.Join(t.TempDir(), "audit"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	require.NoError(t, store.Append(context.Background(), audit.Entry{At: time.Now(), Role: RoleOps, Actor: "ops",
		Action: "tenant.suspend", Tenant: "acme", Reason: "invoice 42 unpaid", Outcome: audit.OutcomeAccepted, Status: http.StatusAccepted}))
	return func(c *Config) { c.Audit = store }
}

func contractExamples(t *testing.T) []contractExample {
	jsonTenant := func(state tenant.State) tenant.Tenant {
		return tenant.Tenant{Name: "acme", State: state, Stage: "prod", Template: "light", ProvisionID: "run-7", Runtime: "docker",
			Services: []runtimes.ServiceStatus{{Service: "app"}}}
	}
	logs := &cannedLogs{lines: []runtimes.LogLine{fullOf[runtimes.LogLine](), {Time: time.Now(), Service: "app", Stream: "stderr", Line: "ready"}}}
	tenantWithBackup := fullOf[tenant.Tenant]()
	tenantWithBackup.Backups.List[0].ID = "b1"
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	host := `{"name":"host-b","docker":"tcp://10.0.2.16:2376","address":"10.0.2.16","sync":"http://10.0.2.16:7380","capacity":{"cpus":16,"memory":"64Gi"},"labels":{"zone":"b"}}`
	push := func(ref string) string { return pushEvent("group/app", ref, testSHA) }
	gitlab := map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": testSecret}

	return []contractExample{
		// service
		{name: "health", method: "GET", target: "/healthz", status: 200},
		{name: "health without temporal", method: "GET", target: "/healthz", status: 503,
			setup: func(_ *testing.T, e *testEnv) { e.temporal.healthErr = errors.New("connection refused") }},
		{name: "metrics", method: "GET", target: "/metrics", status: 200},
		{name: "openapi.json", method: "GET", target: "/openapi.json", status: 200},

		// authentication
		{name: "no token", method: "GET", target: "/v1/tenants", status: 401, invalid: "security requirements failed"},
		{name: "unknown token", method: "GET", target: "/v1/tenants", token: "not-a-token-0123456789", status: 401},
		{name: "wrong role", method: "POST", target: "/v1/releases/r1/pause", token: developerToken, status: 403},

		// tenants
		{name: "create", method: "POST", target: "/v1/tenants", token: opsToken, body: `{"name":"acme","template":"default","stage":"prod","plan":"large","settings":{"TITLE":"Acme"},"backups":{"every":"24h","at":"02:00","keep":{"last":3}}}`, status: 202},
		{name: "create: unknown template", method: "POST", target: "/v1/tenants", token: distributorToken, body: `{"name":"acme","template":"nope","stage":"prod"}`, status: 400, field: "template"},
		{name: "create: bad stage", method: "POST", target: "/v1/tenants", token: opsToken, body: `{"name":"acme","stage":"dev"}`, status: 400, field: "stage", invalid: "/stage"},
		{name: "create: unknown field", method: "POST", target: "/v1/tenants", token: opsToken, body: `{"name":"acme","stage":"prod","owner":"x"}`, status: 400, field: "owner", invalid: "owner"},
		{name: "create: exists", method: "POST", target: "/v1/tenants", token: opsToken, body: `{"name":"acme","stage":"prod"}`, status: 409, field: "name",
			setup: func(_ *testing.T, e *testEnv) {
				e.temporal.startErr = serviceerror.NewWorkflowExecutionAlreadyStarted("running", "", "run-0")
			}},
		{name: "create: no host", method: "POST", target: "/v1/tenants", token: opsToken, body: `{"name":"acme","stage":"prod"}`, status: 503,
			env: []envOption{func(c *Config) { c.Placement = true }}, setup: queryNotFound},
		{name: "create: developer", method: "POST", target: "/v1/tenants", token: developerToken, body: `{"name":"acme","stage":"prod"}`, status: 403},
		{name: "list", method: "GET", target: "/v1/tenants?state=active&stage=prod&pageSize=10", token: developerToken, status: 200,
			setup: func(t *testing.T, e *testEnv) {
				e.temporal.listResp = &workflowservice.ListWorkflowExecutionsResponse{NextPageToken: []byte("next"),
					Executions: []*workflowpb.WorkflowExecutionInfo{execution(t, "acme", "run-1", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0,
						map[string]string{"TenantId": "acme", "TenantState": "active", "Stage": "prod", "Image": testImage})}}
			}},
		{name: "list: bad state", method: "GET", target: "/v1/tenants?state=bogus", token: opsToken, status: 400, field: "state", invalid: "parameter \"state\""},
		{name: "list: bad page token", method: "GET", target: "/v1/tenants?pageToken=garbage", token: opsToken, status: 400, field: "pageToken"},
		{name: "get", method: "GET", target: "/v1/tenants/acme", token: developerToken, status: 200, setup: answerQuery(fullOf[tenant.Tenant]())},
		{name: "get: busy, stale", method: "GET", target: "/v1/tenants/acme", token: opsToken, status: 200,
			setup: func(t *testing.T, e *testEnv) { e.temporal.describeResp = busyWith(t, recorded) }},
		{name: "get: unknown", method: "GET", target: "/v1/tenants/acme", token: opsToken, status: 404,
			setup: func(_ *testing.T, e *testEnv) {
				e.temporal.describeErr = serviceerror.NewNotFound("workflow not found")
			}},
		{name: "get: bad fresh", method: "GET", target: "/v1/tenants/acme?fresh=maybe", token: opsToken, status: 400, field: "fresh", invalid: "parameter \"fresh\""},
		{name: "patch window", method: "PATCH", target: "/v1/tenants/acme", token: distributorToken, body: `{"maintenanceWindow":"Sun 02:00-05:00 Europe/Paris"}`, status: 200,
			setup: answerUpdate(fullOf[tenant.Tenant]())},
		{name: "patch plan", method: "PATCH", target: "/v1/tenants/acme", token: opsToken, body: `{"plan":"medium"}`, status: 202, setup: answerUpdate(fullOf[tenant.PlanChange]())},
		{name: "patch settings", method: "PATCH", target: "/v1/tenants/acme", token: opsToken, body: `{"settings":{"TITLE":"Acme CRM","LOG_LEVEL":null}}`, status: 202,
			setup: answerUpdate(fullOf[tenant.SettingsChange]())},
		{name: "patch nothing", method: "PATCH", target: "/v1/tenants/acme", token: opsToken, body: `{}`, status: 400, field: "maintenanceWindow", invalid: "minProperties"},
		{name: "patch refused", method: "PATCH", target: "/v1/tenants/acme", token: opsToken, body: `{"plan":"medium"}`, status: 409, setup: refuseUpdate(tenant.ErrPlanRefused)},
		{name: "decommission", method: "DELETE", target: "/v1/tenants/acme", token: distributorToken, body: `{"reason":"end of contract"}`, status: 202,
			setup: answerUpdate(fullOf[tenant.Decommission]())},
		{name: "decommission: force by distributor", method: "DELETE", target: "/v1/tenants/acme?force=true", token: distributorToken, status: 403, field: "force"},
		{name: "decommission: refused", method: "DELETE", target: "/v1/tenants/acme?reason=unpaid", token: opsToken, status: 409, setup: refuseUpdate(tenant.ErrDecommissionRefused)},
		{name: "decommission confirm", method: "POST", target: "/v1/tenants/acme/decommission/confirm", token: opsToken, status: 202, setup: answerUpdate(fullOf[tenant.Decommission]())},
		{name: "decommission cancel", method: "POST", target: "/v1/tenants/acme/decommission/cancel", token: distributorToken, body: `{}`, status: 202, setup: answerUpdate(fullOf[tenant.Decommission]())},
		{name: "restore after decommission", method: "POST", target: "/v1/tenants/acme/restore", token: opsToken, status: 202, setup: answerUpdate(fullOf[tenant.Decommission]())},
		{name: "restore to a backup", method: "POST", target: "/v1/tenants/acme/restore", token: opsToken, body: `{"backup":"b1"}`, status: 202, setup: answerUpdate(fullOf[tenant.BackupRestore]())},
		{name: "restore: unknown backup", method: "POST", target: "/v1/tenants/acme/restore", token: opsToken, body: `{"backup":"b9"}`, status: 404, field: "backup",
			setup: refuseUpdate(tenant.ErrBackupNotFound)},
		{name: "backup now", method: "POST", target: "/v1/tenants/acme/backups", token: distributorToken, body: `{"reason":"before the migration"}`, status: 202,
			setup: answerUpdate(fullOf[tenant.BackupAccepted]())},
		{name: "backups", method: "GET", target: "/v1/tenants/acme/backups", token: developerToken, status: 200, setup: answerQuery(fullOf[tenant.Tenant]())},
		{name: "backup", method: "GET", target: "/v1/tenants/acme/backups/b1", token: developerToken, status: 200, setup: answerQuery(tenantWithBackup)},
		{name: "backup: unknown", method: "GET", target: "/v1/tenants/acme/backups/b9", token: opsToken, status: 404, field: "backup", setup: answerQuery(tenantWithBackup)},
		{name: "move", method: "POST", target: "/v1/tenants/acme/move", token: opsToken, status: 202, setup: answerUpdate(fullOf[tenant.Move]())},
		{name: "move: unknown host", method: "POST", target: "/v1/tenants/acme/move", token: opsToken, body: `{"to":"host-b"}`, status: 404, field: "to", setup: hostRegistry(hosts.StateActive)},
		{name: "suspend", method: "POST", target: "/v1/tenants/acme/suspend", token: distributorToken, body: `{"reason":"invoice 42 unpaid","message":"Back soon."}`, status: 202,
			setup: answerUpdate(fullOf[tenant.Suspension]())},
		{name: "suspend: no reason", method: "POST", target: "/v1/tenants/acme/suspend", token: opsToken, body: `{}`, status: 400, field: "reason", invalid: "reason"},
		{name: "suspend: refused", method: "POST", target: "/v1/tenants/acme/suspend", token: opsToken, body: `{"reason":"x"}`, status: 409, setup: refuseUpdate(tenant.ErrSuspendRefused)},
		{name: "resume", method: "POST", target: "/v1/tenants/acme/resume", token: opsToken, body: `{"reason":"paid"}`, status: 202, setup: answerUpdate(fullOf[tenant.Suspension]())},
		{name: "add domain", method: "POST", target: "/v1/tenants/acme/domains", token: opsToken, body: `{"host":"crm.customer.com"}`, status: 202, setup: answerUpdate(fullOf[tenant.Domain]())},
		{name: "add domain: bad host", method: "POST", target: "/v1/tenants/acme/domains", token: opsToken, body: `{"host":"https://crm.customer.com"}`, status: 400, field: "host"},
		{name: "remove domain", method: "DELETE", target: "/v1/tenants/acme/domains/crm.customer.com", token: distributorToken, status: 202, setup: answerUpdate(fullOf[tenant.Domain]())},
		{name: "remove domain: unknown", method: "DELETE", target: "/v1/tenants/acme/domains/crm.customer.com", token: opsToken, status: 404, field: "host",
			setup: refuseUpdate(tenant.ErrDomainNotFound)},
		{name: "logs", method: "GET", target: "/v1/tenants/acme/logs?service=app&tail=20", token: opsToken, status: 200,
			env: []envOption{func(c *Config) { c.Logs = logs.source }}, setup: answerQuery(jsonTenant(tenant.StateActive))},
		{name: "logs: bad tail", method: "GET", target: "/v1/tenants/acme/logs?tail=-1", token: opsToken, status: 400, field: "tail", invalid: "parameter \"tail\""},
		{name: "logs: decommissioned", method: "GET", target: "/v1/tenants/acme/logs", token: distributorToken, status: 409,
			env: []envOption{func(c *Config) { c.Logs = logs.source }}, setup: answerQuery(jsonTenant(tenant.StateDecommissioned))},
		{name: "logs: openshift", method: "GET", target: "/v1/tenants/acme/logs", token: opsToken, status: 501,
			env: []envOption{func(c *Config) { c.Logs = logs.source }}, setup: func(_ *testing.T, e *testEnv) {
				st := jsonTenant(tenant.StateActive)
				st.Runtime = spec.OpenShift
				e.temporal.queryResult = st
			}},
		{name: "logs: no engine", method: "GET", target: "/v1/tenants/acme/logs", token: opsToken, status: 503},
		{name: "credentials", method: "GET", target: "/v1/tenants/acme/credentials", token: distributorToken, status: 200, setup: answerUpdate(fullOf[tenant.Credentials]())},
		{name: "credentials: not yet", method: "GET", target: "/v1/tenants/acme/credentials", token: opsToken, status: 409,
			setup: refuseUpdate(tenant.ErrCredentialsUnavailable)},
		{name: "credentials: taken", method: "GET", target: "/v1/tenants/acme/credentials", token: distributorToken, status: 410,
			setup: refuseUpdate(tenant.ErrCredentialsAlreadyFetched)},
		{name: "credentials: bad key", method: "GET", target: "/v1/tenants/acme/credentials", token: opsToken, header: map[string]string{"Idempotency-Key": "short"},
			status: 400, field: "Idempotency-Key", invalid: "parameter \"Idempotency-Key\""},

		// releases
		{name: "release", method: "POST", target: "/v1/releases", token: developerToken, status: 202,
			body: `{"image":"` + testImage + `","tenants":{"all":true},"canary":1,"batchSize":5,"healthTimeout":"2m","analysis":{"period":"10m","maxErrorRate":0.05}}`},
		{name: "release: tagged image", method: "POST", target: "/v1/releases", token: opsToken, body: `{"image":"nginx:latest","tenants":{"all":true}}`, status: 400, field: "image"},
		{name: "release: no tenants", method: "POST", target: "/v1/releases", token: opsToken, body: `{"image":"` + testImage + `"}`, status: 400, field: "tenants", invalid: "tenants"},
		{name: "release: id taken", method: "POST", target: "/v1/releases", token: opsToken, body: `{"id":"r1","image":"` + testImage + `","tenants":{"stage":"staging"}}`,
			status: 409, field: "id", setup: func(_ *testing.T, e *testEnv) {
				e.temporal.startErr = serviceerror.NewWorkflowExecutionAlreadyStarted("running", "", "run-0")
			}},
		{name: "rollback of an unknown release", method: "POST", target: "/v1/releases", token: developerToken, body: `{"rollbackOf":"r0"}`, status: 404, setup: queryNotFound},
		{name: "releases", method: "GET", target: "/v1/releases?pageSize=10", token: developerToken, status: 200,
			setup: func(t *testing.T, e *testEnv) {
				e.temporal.listResp = &workflowservice.ListWorkflowExecutionsResponse{NextPageToken: []byte("next"),
					Executions: []*workflowpb.WorkflowExecutionInfo{releaseExecution(t, "r1", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0, testImage)}}
			}},
		{name: "get release", method: "GET", target: "/v1/releases/r1", token: developerToken, status: 200, setup: answerQuery(fullOf[release.Release]())},
		{name: "get release: bad view", method: "GET", target: "/v1/releases/r1?view=everything", token: opsToken, status: 400, field: "view", invalid: "parameter \"view\""},
		{name: "get release: unknown", method: "GET", target: "/v1/releases/r1?view=summary", token: opsToken, status: 404, setup: queryNotFound},
		{name: "release tenants", method: "GET", target: "/v1/releases/r1/tenants?offset=0&limit=10&status=updated", token: distributorToken, status: 200,
			setup: answerQuery(fullOf[release.TenantPage]())},
		{name: "release tenants: bad limit", method: "GET", target: "/v1/releases/r1/tenants?limit=501", token: opsToken, status: 400, field: "limit", invalid: "parameter \"limit\""},
		{name: "promote", method: "POST", target: "/v1/releases/r1/promote", token: developerToken, body: `{"reason":"QA ok"}`, status: 200, setup: answerUpdate(fullOf[release.Release]())},
		{name: "promote: not shown in time", method: "POST", target: "/v1/releases/r1/promote", token: developerToken, status: 202,
			env: []envOption{func(c *Config) { c.QueryTimeout = 50 * time.Millisecond }}, setup: func(_ *testing.T, e *testEnv) {
				st := fullOf[release.Release]()
				st.State = release.StateAwaitingPromotion
				e.temporal.updateResult, e.temporal.queryResult = st, st
			}},
		{name: "promote: refused", method: "POST", target: "/v1/releases/r1/promote", token: developerToken, status: 409, setup: refuseUpdate(release.ErrPromoteRejected)},
		{name: "pause", method: "POST", target: "/v1/releases/r1/pause", token: opsToken, body: `{"reason":"incident"}`, status: 200, setup: answerUpdate(fullOf[release.Release]())},
		{name: "pause: refused", method: "POST", target: "/v1/releases/r1/pause", token: opsToken, status: 409, setup: refuseUpdate(release.ErrReleaseControlRejected)},
		{name: "resume release", method: "POST", target: "/v1/releases/r1/resume", token: opsToken, status: 200, setup: answerUpdate(fullOf[release.Release]())},
		{name: "abort", method: "POST", target: "/v1/releases/r1/abort", token: opsToken, status: 200, setup: answerUpdate(fullOf[release.Release]())},
		{name: "override window", method: "POST", target: "/v1/releases/r1/override-window", token: opsToken, body: `{"tenants":["acme"],"reason":"CVE-2026-1234"}`, status: 200,
			setup: answerUpdate(fullOf[release.Release]())},
		{name: "override window: no reason", method: "POST", target: "/v1/releases/r1/override-window", token: opsToken, body: `{}`, status: 400, field: "reason", invalid: "reason"},

		// hosts
		{name: "register host", method: "POST", target: "/v1/hosts", token: opsToken, body: host, status: 200, setup: answerUpdate(fullOf[hosts.Host]())},
		{name: "register host: bad memory", method: "POST", target: "/v1/hosts", token: opsToken, body: strings.Replace(host, "64Gi", "lots", 1), status: 400, field: "capacity.memory"},
		{name: "hosts", method: "GET", target: "/v1/hosts", token: opsToken, status: 200, setup: hostRegistry(hosts.StateActive)},
		{name: "host", method: "GET", target: "/v1/hosts/host-a", token: opsToken, status: 200, setup: hostRegistry(hosts.StateActive)},
		{name: "host: unknown", method: "GET", target: "/v1/hosts/host-z", token: opsToken, status: 404, field: "name", setup: hostRegistry(hosts.StateActive)},
		{name: "cordon", method: "POST", target: "/v1/hosts/host-a/cordon", token: opsToken, body: `{"reason":"disk"}`, status: 200, setup: answerUpdate(fullOf[hosts.Host]())},
		{name: "uncordon", method: "POST", target: "/v1/hosts/host-a/uncordon", token: opsToken, status: 200, setup: answerUpdate(fullOf[hosts.Host]())},
		{name: "drain", method: "POST", target: "/v1/hosts/host-a/drain", token: opsToken, body: `{"maxParallel":3,"reason":"kernel upgrade"}`, status: 202, setup: hostRegistry(hosts.StateActive)},
		{name: "drain: lost host", method: "POST", target: "/v1/hosts/host-a/drain", token: opsToken, status: 409, setup: hostRegistry(hosts.StateLost)},
		{name: "drain: too parallel", method: "POST", target: "/v1/hosts/host-a/drain", token: opsToken, body: `{"maxParallel":11}`, status: 400, field: "maxParallel", invalid: "/maxParallel"},
		{name: "drain state", method: "GET", target: "/v1/hosts/host-a/drain", token: opsToken, status: 200, setup: answerQuery(fullOf[hosts.Drain]())},
		{name: "evacuate", method: "POST", target: "/v1/hosts/host-a/evacuate", token: opsToken, status: 202, setup: hostRegistry(hosts.StateLost)},
		{name: "evacuate: not lost", method: "POST", target: "/v1/hosts/host-a/evacuate", token: opsToken, status: 409, setup: hostRegistry(hosts.StateActive)},
		{name: "evacuation", method: "GET", target: "/v1/hosts/host-a/evacuation", token: opsToken, status: 200, setup: answerQuery(fullOf[hosts.Drain]())},
		{name: "evacuation: none", method: "GET", target: "/v1/hosts/host-a/evacuation", token: opsToken, status: 404, field: "name", setup: queryNotFound},
		{name: "reconcile", method: "GET", target: "/v1/reconcile", token: opsToken, status: 200, setup: answerQuery(fullOf[reconcile.Report]())},
		{name: "reconcile: not running", method: "GET", target: "/v1/reconcile", token: opsToken, status: 404, setup: queryNotFound},

		// audit
		{name: "audit", method: "GET", target: "/v1/audit?tenant=acme&since=2020-01-01T00:00:00Z&limit=10", token: opsToken, status: 200, env: []envOption{withAudit(t)}},
		{name: "audit: bad limit", method: "GET", target: "/v1/audit?limit=0", token: opsToken, status: 400, field: "limit", invalid: "parameter \"limit\"", env: []envOption{withAudit(t)}},
		{name: "audit: no store", method: "GET", target: "/v1/audit", token: opsToken, status: 503},

		// builds
		{name: "build", method: "POST", target: "/v1/builds", token: developerToken, body: `{"project":"group/app","ref":"main"}`, status: 202},
		{name: "build: unknown project", method: "POST", target: "/v1/builds", token: opsToken, body: `{"project":"group/other","ref":"main"}`, status: 400, field: "project"},
		{name: "get build", method: "GET", target: "/v1/builds/group~app@" + testSHA, token: developerToken, status: 200, setup: answerQuery(fullOf[imagebuild.Build]())},
		{name: "get build: bad id", method: "GET", target: "/v1/builds/nope", token: developerToken, status: 400, field: "id"},
		{name: "hook: push", method: "POST", target: "/v1/hooks/gitlab", header: gitlab, body: push("refs/heads/main"), status: 202},
		{name: "hook: other branch", method: "POST", target: "/v1/hooks/gitlab", header: gitlab, body: push("refs/heads/dev"), status: 200},
		{name: "hook: no secret", method: "POST", target: "/v1/hooks/gitlab", header: map[string]string{"X-Gitlab-Event": "Push Hook"}, body: push("refs/heads/main"),
			status: 401, invalid: "security requirements failed"},
	}
}

// checkCredentials is the examples' AuthenticationFunc: a scheme is met
// when its header is there (whether the token is good is the router's
// answer to check, against the document's 401).
func checkCredentials(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header
	switch s := in.SecurityScheme; s.Type {
	case "http":
		if bearerToken(h.Get("Authorization")) == "" {
			return in.NewError(errors.New("no bearer token"))
		}
	case "apiKey":
		if h.Get(s.Name) == "" {
			return in.NewError(fmt.Errorf("no %s header", s.Name))
		}
	}
	return nil
}

// decodeNDJSON reads an application/x-ndjson answer: each line must
// match the schema (of one line); the first is returned for
// openapi3filter to check again.
func decodeNDJSON(body io.Reader, _ http.Header, schema *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	var first any
	lines := bufio.NewScanner(body)
	for n := 1; lines.Scan(); n++ {
		var v any
		if err := json.Unmarshal(lines.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if err := schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if n == 1 {
			first = v
		}
	}
	if first == nil {
		return nil, errors.New("no line")
	}
	return first, lines.Err()
}

// request is the example's request.
func (ex contractExample) request() *http.Request {
	req := newRequest(ex.method, ex.target, ex.body)
	if ex.token != "" {
		req.Header.Set("Authorization", "Bearer "+ex.token)
	}
	for k, v := range ex.header {
		req.Header.Set(k, v)
	}
	return req
}

// temporalFaults are the failures the fake Temporal plays.
var temporalFaults = []struct {
	name   string
	inject func(f *fakeTemporal)
}{
	{"temporal unreachable", func(f *fakeTemporal) {
		err := errors.New("dial tcp 127.0.0.1:7233: connection refused")
		f.queryErr, f.listErr, f.startErr, f.updateErr, f.describeErr, f.healthErr = err, err, err, err, err, err
	}},
	{"no such workflow", func(f *fakeTemporal) {
		nf := serviceerror.NewNotFound("workflow not found")
		f.queryErr, f.updateErr, f.describeErr = nf, nf, nf
		f.startErr = serviceerror.NewWorkflowExecutionAlreadyStarted("running", "", "run-0")
	}},
	{"workflow ended", func(f *fakeTemporal) {
		f.updateErr = serviceerror.NewNotFound("workflow execution already completed")
	}},
	{"no worker in time", func(f *fakeTemporal) {
		f.queryErr = serviceerror.NewDeadlineExceeded("context deadline exceeded")
		f.updateGetErr = context.DeadlineExceeded
	}},
	{"unreadable answer", func(f *fakeTemporal) { f.queryResult, f.updateResult = "not a state", "not a state" }},
	{"refused", func(f *fakeTemporal) {
		f.updateGetErr = temporal.NewApplicationError("refused by the workflow", "Refused")
	}},
}

// answerChecker checks requests and answers against the document.
type answerChecker struct {
	router  routers.Router
	options *openapi3filter.Options
}

func newAnswerChecker(t *testing.T, doc *openapi3.T) *answerChecker {
	t.Helper()
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", decodeNDJSON)
	return &answerChecker{router: router,
		options: &openapi3filter.Options{AuthenticationFunc: checkCredentials, IncludeResponseStatus: true, MultiError: true}}
}

// input is the validation input of req: its operation in the document.
func (c *answerChecker) input(req *http.Request) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return nil, fmt.Errorf("openapi.json has no operation for %s %s: %w", req.Method, req.URL, err)
	}
	return &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: c.options}, nil
}

// checkAnswer says whether the document describes the answer to in, its
// status code included.
func (c *answerChecker) checkAnswer(in *openapi3filter.RequestValidationInput, rec *httptest.ResponseRecorder) error {
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(), Options: c.options}
	out.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("openapi.json does not describe the answer to %s %s, %d %s: %w",
			in.Request.Method, in.Request.URL, rec.Code, abbreviate(rec.Body.Bytes()), err)
	}
	return nil
}

// send sends a request through the router (a bearer token unless "")
// and checks its answer against the document.
func (c *answerChecker) send(t *testing.T, e *testEnv, method, target, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	in, err := c.input(newRequest(method, target, ""))
	require.NoError(t, err)
	rec := e.do(method, target, token, body)
	assert.NoError(t, c.checkAnswer(in, rec))
	return rec
}

// TestOpenAPIExamples sends each example through the router and checks
// the request and the answer against the document: ValidateRequest takes
// the request (or refuses it, for an invalid one), the answer has the
// expected status, and ValidateResponse takes it, its status code
// included. Then each accepted example meets each of temporalFaults, and
// the answers must be documented too. Every operation has an example.
func TestOpenAPIExamples(t *testing.T) {
	doc := loadOpenAPI(t)
	c := newAnswerChecker(t, doc)
	answered := map[string][]string{} // operation: the status codes examples got
	examples := contractExamples(t)
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			e := contractEnv(t, ex.env...)
			if ex.setup != nil {
				ex.setup(t, e)
			}
			in, err := c.input(ex.request())
			require.NoError(t, err)
			op := in.Route.Method + " " + in.Route.Path
			reqErr := openapi3filter.ValidateRequest(context.Background(), in)
			if ex.invalid != "" {
				require.Error(t, reqErr, "the request breaks the document on purpose, but ValidateRequest takes it")
				require.Contains(t, reqErr.Error(), ex.invalid, "ValidateRequest refuses the request for another reason")
			} else {
				require.NoError(t, reqErr, "openapi.json refuses the request")
			}

			rec := serve(e, ex.request())
			require.Equal(t, ex.status, rec.Code, "answer: %s", rec.Body.String())
			if ex.field != "" {
				var answer struct{ Field string }
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &answer))
				assert.Equal(t, ex.field, answer.Field, "the error's field")
			}
			require.NoError(t, c.checkAnswer(in, rec))
			answered[op] = append(answered[op], strconv.Itoa(rec.Code))
		})
	}
	// Each accepted example again, with each fault of Temporal's: the
	// answers differ by route (404, 409, 502, 503…), and each must be one
	// the document gives that route.
	for _, ex := range examples {
		if ex.status >= 300 {
			continue
		}
		for _, fault := range temporalFaults {
			t.Run(ex.name+"/"+fault.name, func(t *testing.T) {
				e := contractEnv(t, ex.env...)
				if ex.setup != nil {
					ex.setup(t, e)
				}
				fault.inject(e.temporal)
				in, err := c.input(ex.request())
				require.NoError(t, err)
				rec := serve(e, ex.request())
				require.NoError(t, c.checkAnswer(in, rec))
				op := in.Route.Method + " " + in.Route.Path
				answered[op] = append(answered[op], strconv.Itoa(rec.Code))
			})
		}
	}
	var untried []string
	for op, o := range operations(doc) {
		if answered[op] == nil {
			t.Errorf("no example sends %s", op)
		}
		for code := range o.Responses.Map() {
			// 401 and 403 come from RequireRoles, which TestOpenAPIRoles
			// sends every route to.
			if code != "401" && code != "403" && !slices.Contains(answered[op], code) {
				untried = append(untried, op+" "+code)
			}
		}
	}
	slices.Sort(untried)
	t.Logf("%d documented answers (but 401 and 403) no example produces: %s", len(untried), strings.Join(untried, ", "))
}

func abbreviate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}
