package cli

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

const demoImage = "registry.test/tenantflow/demo-app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// acme is a tenant as its workflow reports it.
func acme() tenant.Tenant {
	created := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	return tenant.Tenant{
		Name: "acme", State: tenant.StateActive, Stage: "prod", Template: "default", Plan: "medium", Runtime: "docker",
		Image: demoImage, Release: "r1", URL: "http://acme.tenants.test", MaintenanceWindow: "Sun 02:00-05:00 Europe/Paris",
		Progress:  flow.Progress{Done: 4, Total: 4},
		Services:  []runtimes.ServiceStatus{{Service: "app", ID: "c1", Image: demoImage}, {Service: "db", ID: "c2", Image: "postgres:17"}},
		Placement: &hosts.Placement{Host: "host-a", Reason: "most room"},
		Settings:  map[string]string{"TITLE": "Acme CRM", "LOG_LEVEL": "info"},
		CreatedAt: created, UpdatedAt: created,
	}
}

// tenantList is GET /v1/tenants as the API answers it.
func tenantListAnswer(now time.Time) map[string]any {
	return map[string]any{"tenants": []map[string]any{
		{"name": "acme", "state": "active", "stage": "prod", "image": demoImage, "release": "r1", "workflowId": "tenant:acme",
			"runId": "run-1", "status": "Running", "startTime": now.Add(-5*time.Minute - time.Second)},
		{"name": "globex", "state": "provisioning", "stage": "staging", "workflowId": "tenant:globex", "runId": "run-2",
			"status": "Running", "startTime": now.Add(-3*time.Hour - time.Second)},
	}, "nextPageToken": "bmV4dA"}
}

func TestTenantsLsTable(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants", answer(200, tenantListAnswer(time.Now())))
	r := api.cli(nil, false, "tenants", "ls", "--state", "active", "--stage", "prod")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"NAME    STATE         STAGE    IMAGE                                                  RELEASE  AGE",
		"acme    active        prod     registry.test/tenantflow/demo-app@sha256:0123456789ab  r1       5m",
		"globex  provisioning  staging  -                                                      -        3h",
	}, lines(r.out))
	require.Equal(t, "more: tenantflow tenants ls --page-token bmV4dA\n", r.err)
	require.Equal(t, "stage=prod&state=active", api.requests("")[0].query)
}

// -o json prints the API's answer byte for byte.
func TestTenantsJSONIsTheAPIsAnswer(t *testing.T) {
	api := newFakeAPI(t)
	body := `{"name":"acme","state":"active","unknownToTheCLI":{"x":[1,2]}}`
	api.on("GET /v1/tenants/acme", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
	r := api.cli(nil, false, "tenants", "get", "acme", "-o", "json")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, body+"\n", r.out)

	api.on("GET /v1/tenants", answer(200, tenantListAnswer(time.Now())))
	r = api.cli(nil, false, "tenants", "ls", "-o", "json")
	require.Equal(t, ExitOK, r.code, r.err)
	var list tenantList
	require.NoError(t, json.Unmarshal([]byte(r.out), &list))
	require.Len(t, list.Tenants, 2)
}

func TestTenantsGetShowsTheTenant(t *testing.T) {
	api := newFakeAPI(t)
	st := acme()
	st.Decommission = &tenant.Decommission{Phase: tenant.PhaseAwaitingConfirmation, RequestedBy: "distributor", Reason: "end of contract"}
	api.on("GET /v1/tenants/acme", answer(200, st))
	r := api.cli(nil, false, "tenants", "get", "acme", "--fresh")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "fresh=true", api.requests("")[0].query)
	require.Equal(t, []string{
		"name:                acme",
		"state:               active",
		"stage:               prod",
		"template:            default (plan medium)",
		"url:                 http://acme.tenants.test",
		"image:               " + demoImage,
		"release:             r1",
		"maintenance window:  Sun 02:00-05:00 Europe/Paris",
		"host:                host-a",
		"decommission:        awaiting-confirmation, asked by distributor (end of contract)",
		"services:            app registry.test/tenantflow/demo-app@sha256:0123456789ab, db postgres:17",
		"settings:            LOG_LEVEL=info TITLE=Acme CRM",
		"created:             2026-12-01 09:30:00Z",
	}, lines(r.out))
}

func TestTenantsCreateSendsWhatWasAsked(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/tenants", answer(202, map[string]any{"name": "acme", "workflowId": "tenant:acme", "runId": "run-1", "status": "provisioning"}))
	r := api.cli(nil, false, "tenants", "create", "acme", "--stage", "prod", "--plan", "large", "--window", "Sun 02:00-05:00 UTC",
		"--set", "TITLE=Acme CRM", "--set", "LOG_LEVEL=debug=x")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: provisioning\nfollow it: tenantflow tenants get acme\n", r.out)
	require.Equal(t, map[string]any{"name": "acme", "stage": "prod", "plan": "large", "maintenanceWindow": "Sun 02:00-05:00 UTC",
		"settings": map[string]any{"TITLE": "Acme CRM", "LOG_LEVEL": "debug=x"}}, api.requests("")[0].body)

	r = api.cli(nil, false, "tenants", "create", "acme", "--stage", "prod", "--set", "TITLE")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: --set \"TITLE\": want KEY=VALUE\n", r.err)

	r = api.cli(nil, false, "tenants", "create", "acme")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.err, `error: required flag(s) "stage" not set`)
	require.Len(t, api.requests(""), 1, "nothing sent for a usage error")

	api.on("POST /v1/tenants", answer(400, map[string]string{"error": "stage must be staging or prod", "field": "stage"}))
	r = api.cli(nil, false, "tenants", "create", "acme", "--stage", "qa")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: stage: stage must be staging or prod\n", r.err)
}

// create --wait follows the provisioning: a line per step in a script,
// exit 0 once active, 6 if it failed.
func TestTenantsCreateWait(t *testing.T) {
	step := func(state tenant.State, done int, name, errMsg string) tenant.Tenant {
		st := acme()
		st.State, st.Progress, st.Error = state, flow.Progress{Done: done, Total: 4, Step: name}, errMsg
		return st
	}
	api := newFakeAPI(t)
	api.on("POST /v1/tenants", answer(202, map[string]any{"name": "acme", "status": "provisioning"}))
	api.on("GET /v1/tenants/acme", sequence(
		step(tenant.StateProvisioning, 0, "CreateNetwork", ""),
		step(tenant.StateProvisioning, 0, "CreateNetwork", ""),
		map[string]any{"name": "acme", "state": "provisioning", "stale": true, "staleReason": "its workflow task is running"},
		step(tenant.StateProvisioning, 3, "WaitHealthy", ""),
		step(tenant.StateActive, 4, "", ""),
	))
	r := api.cli(nil, false, "tenants", "create", "acme", "--stage", "prod", "--wait")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"tenant acme: provisioning [0/4]",
		"tenant acme: step 0/4 CreateNetwork",
		"tenant acme: provisioning [3/4]",
		"tenant acme: step 3/4 WaitHealthy",
		"tenant acme: active [4/4]",
		"tenant acme is active: http://acme.tenants.test",
	}, lines(r.out))

	api.on("GET /v1/tenants/acme", sequence(step(tenant.StateProvisioning, 1, "CreateVolumes", ""),
		step(tenant.StateFailed, 2, "", "StartService app: image tenantflow/not-built:never not found")))
	r = api.cli(nil, false, "tenants", "create", "acme", "--stage", "prod", "-w")
	require.Equal(t, ExitUnsuccessful, r.code, r.err)
	require.Equal(t, "tenant acme is failed: StartService app: image tenantflow/not-built:never not found", lines(r.out)[len(lines(r.out))-1])
}

// decommission: ask (DELETE with the reason), then confirm; or confirm or
// cancel a pending request alone.
func TestTenantsDecommission(t *testing.T) {
	api := newFakeAPI(t)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	api.on("DELETE /v1/tenants/acme", answer(202, map[string]any{"name": "acme", "decommission": tenant.Decommission{
		Phase: tenant.PhaseAwaitingConfirmation, RequestedBy: "ops", Reason: "end of contract", RequestedAt: at}}))
	api.on("POST /v1/tenants/acme/decommission/confirm", answer(202, map[string]any{"name": "acme", "decommission": tenant.Decommission{
		Phase: tenant.PhaseConfirmed, RequestedBy: "ops", Reason: "end of contract", ConfirmedBy: "ops", RequestedAt: at}}))
	api.on("POST /v1/tenants/acme/decommission/cancel", answer(202, map[string]any{"name": "acme", "decommission": tenant.Decommission{
		Phase: tenant.PhaseCancelled, RequestedBy: "ops", RequestedAt: at}}))

	r := api.cli(nil, false, "tenants", "decommission", "acme", "--reason", "end of contract")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: decommission awaiting-confirmation, asked by ops (end of contract)\n"+
		"confirm: tenantflow tenants decommission acme --confirm   (or --cancel)\n", r.out)
	require.Equal(t, map[string]any{"reason": "end of contract", "force": false}, api.requests("DELETE /v1/tenants/acme")[0].body)

	r = api.cli(nil, false, "tenants", "decommission", "acme", "--reason", "end of contract", "--confirm")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"tenant acme: decommission awaiting-confirmation, asked by ops (end of contract)",
		"confirm: tenantflow tenants decommission acme --confirm   (or --cancel)",
		"tenant acme: decommission confirmed, asked by ops (end of contract), confirmed by ops",
		"follow it: tenantflow tenants get acme",
	}, lines(r.out))
	require.Len(t, api.requests("DELETE /v1/tenants/acme"), 2)
	require.Len(t, api.requests("POST /v1/tenants/acme/decommission/confirm"), 1)
	require.NotEmpty(t, api.requests("POST /v1/tenants/acme/decommission/confirm")[0].idempotencyKey)

	r = api.cli(nil, false, "tenants", "decommission", "acme", "--confirm")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Len(t, api.requests("DELETE /v1/tenants/acme"), 2, "--confirm alone asks nothing new")

	r = api.cli(nil, false, "tenants", "decommission", "acme", "--cancel")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: decommission cancelled, asked by ops\n", r.out)

	r = api.cli(nil, false, "tenants", "decommission", "acme")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: --reason is required to ask for a decommission (--confirm alone confirms a pending one)\n", r.err)

	api.on("DELETE /v1/tenants/acme", answer(409, map[string]string{"error": "tenant acme: a decommission request is pending"}))
	r = api.cli(nil, false, "tenants", "decommission", "acme", "--reason", "again", "--confirm")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "error: tenant acme: a decommission request is pending\n", r.err)
	require.Len(t, api.requests("POST /v1/tenants/acme/decommission/confirm"), 2, "no confirm after a refused request")
}

func TestTenantsRestore(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/tenants/acme/restore", answer(202, map[string]any{"name": "acme", "decommission": tenant.Decommission{
		Phase: tenant.PhaseRestoreRequested, RequestedBy: "distributor"}}))
	r := api.cli(nil, false, "tenants", "restore", "acme")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: decommission restore-requested, asked by distributor\nfollow it: tenantflow tenants get acme\n", r.out)
	require.Nil(t, api.requests("")[0].body)

	r = api.cli(nil, false, "tenants", "restore", "acme", "--backup", "20261206t101500z-1")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, map[string]any{"backup": "20261206t101500z-1"}, api.requests("")[1].body)
}

// The password comes once, with a warning on stderr; the second time the
// API answers 410 (exit 4).
func TestTenantsCredentials(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants/acme/credentials", sequence(
		tenant.Credentials{Username: "admin", DN: "uid=admin,ou=acme,ou=tenants,dc=test", Password: "s3cret-Pa55", URL: "http://acme.tenants.test"},
		statusAnswer{status: 410, body: map[string]string{"error": "the credentials of acme were fetched already (by ops)"}},
	))
	r := api.cli(nil, false, "tenants", "credentials", "acme")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "warning: this password is shown once: the API will not give it again (410). Store it now.\n", r.err)
	require.Equal(t, []string{
		"username:  admin",
		"dn:        uid=admin,ou=acme,ou=tenants,dc=test",
		"password:  s3cret-Pa55",
		"url:       http://acme.tenants.test",
	}, lines(r.out))

	r = api.cli(nil, false, "tenants", "credentials", "acme")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "error: the credentials of acme were fetched already (by ops)\n", r.err)
	require.Empty(t, r.out)
}
