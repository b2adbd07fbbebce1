package cli

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

var askedAt = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// suspended is the 202 of a suspend or a resume.
func suspended(s tenant.Suspension) map[string]any {
	s.By, s.Reason, s.RequestedAt = "ops", "invoice 42 unpaid", askedAt
	return map[string]any{"tenant": "acme", "suspension": s}
}

// refusal is the API's error answer.
func refusal(msg, field string) map[string]string {
	if field == "" {
		return map[string]string{"error": msg}
	}
	return map[string]string{"error": msg, "field": field}
}

// Suspend and resume are Updates (an Idempotency-Key) with their reason;
// resume without one sends no body.
func TestTenantsSuspendAndResume(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/tenants/acme/suspend", answer(202, suspended(tenant.Suspension{Phase: tenant.SuspendQueued})))
	api.on("POST /v1/tenants/acme/resume", answer(202, suspended(tenant.Suspension{Phase: tenant.ResumeQueued, ResumedBy: "distributor", ResumeReason: "paid"})))

	r := api.cli(nil, false, "tenants", "suspend", "acme", "--reason", "invoice 42 unpaid", "--message", "Back soon")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: suspension suspend-queued, asked by ops (invoice 42 unpaid)\nfollow it: tenantflow tenants get acme\n", r.out)
	req := api.requests("POST /v1/tenants/acme/suspend")[0]
	require.Equal(t, map[string]any{"reason": "invoice 42 unpaid", "message": "Back soon"}, req.body)
	require.NotEmpty(t, req.idempotencyKey)

	r = api.cli(nil, false, "tenants", "resume", "acme")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: suspension resume-queued, asked by ops (invoice 42 unpaid), resume asked by distributor (paid)\n"+
		"follow it: tenantflow tenants get acme\n", r.out)
	req = api.requests("POST /v1/tenants/acme/resume")[0]
	require.Nil(t, req.body)
	require.NotEmpty(t, req.idempotencyKey)

	r = api.cli(nil, false, "tenants", "resume", "acme", "--reason", "paid", "-o", "json")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, map[string]any{"reason": "paid"}, api.requests("POST /v1/tenants/acme/resume")[1].body)
	var ans suspensionAnswer
	require.NoError(t, json.Unmarshal([]byte(r.out), &ans))
	require.Equal(t, "resume-queued", ans.Suspension.Phase)

	sent := len(api.requests(""))
	r = api.cli(nil, false, "tenants", "suspend", "acme")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.err, `error: required flag(s) "reason" not set`)
	require.Len(t, api.requests(""), sent, "nothing sent for a usage error")
}

func TestTenantsSuspendRefused(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/tenants/acme/suspend", answer(400, refusal("reason must not hold control characters", "reason")))
	api.on("POST /v1/tenants/ghost/suspend", answer(404, refusal("tenant ghost not found", "")))
	api.on("POST /v1/tenants/acme/resume", answer(409, refusal("tenant acme is not suspended", "")))

	r := api.cli(nil, false, "tenants", "suspend", "acme", "--reason", "x\x07")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: reason: reason must not hold control characters\n", r.err)
	require.Empty(t, r.out)

	r = api.cli(nil, false, "tenants", "suspend", "ghost", "--reason", "unpaid")
	require.Equal(t, ExitNotFound, r.code)
	require.Equal(t, "error: tenant ghost not found\n", r.err)

	r = api.cli(nil, false, "tenants", "resume", "acme", "--wait")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "error: tenant acme is not suspended\n", r.err)
	require.Empty(t, api.requests("GET /v1/tenants/acme"), "nothing to wait for after a refusal")
}

// withSuspension is acme during its suspend.
func withSuspension(state tenant.State, phase tenant.SuspensionPhase, done int, step, errMsg string) tenant.Tenant {
	st := acme()
	st.State, st.Progress = state, flow.Progress{Done: done, Total: 3, Step: step}
	st.Suspension = &tenant.Suspension{Phase: phase, By: "ops", Reason: "unpaid", RequestedAt: askedAt, Error: errMsg}
	return st
}

// suspend --wait follows the suspension in the tenant's state: a line
// per change in a script, exit 0 once suspended, 6 if it failed.
func TestTenantsSuspendWait(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/tenants/acme/suspend", answer(202, suspended(tenant.Suspension{Phase: tenant.SuspendQueued})))
	api.on("GET /v1/tenants/acme", sequence(
		withSuspension(tenant.StateActive, tenant.SuspendQueued, 0, "", ""),
		map[string]any{"name": "acme", "state": "active", "stale": true, "staleReason": "its workflow task is running"},
		withSuspension(tenant.StateActive, tenant.SuspendRunning, 1, tenant.StepMaintenancePage, ""),
		withSuspension(tenant.StateSuspended, tenant.SuspendDone, 3, "", ""),
	))
	r := api.cli(nil, false, "tenants", "suspend", "acme", "--reason", "unpaid", "--wait")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"tenant acme: active [0/3]",
		"tenant acme: suspend: suspend-queued",
		"tenant acme: active [1/3]",
		"tenant acme: step 1/3 serve the maintenance page",
		"tenant acme: suspend: suspending",
		"tenant acme: suspended [3/3]",
		"tenant acme: suspend: suspended",
	}, lines(r.out))

	api.on("GET /v1/tenants/acme", sequence(withSuspension(tenant.StateActive, tenant.SuspendRunning, 1, "", ""),
		withSuspension(tenant.StateActive, tenant.SuspendFailed, 0, "", "stop app: timeout")))
	r = api.cli(nil, false, "tenants", "suspend", "acme", "--reason", "unpaid", "-w")
	require.Equal(t, ExitUnsuccessful, r.code, r.err)
	require.Equal(t, "tenant acme: suspend: suspend-failed: stop app: timeout", lines(r.out)[len(lines(r.out))-1])

	// -o json: the answer's summary on stderr, each new state on stdout
	api.on("GET /v1/tenants/acme", answer(200, withSuspension(tenant.StateSuspended, tenant.SuspendDone, 3, "", "")))
	r = api.cli(nil, false, "tenants", "suspend", "acme", "--reason", "unpaid", "-w", "-o", "json")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: suspension suspend-queued, asked by ops (invoice 42 unpaid)\ntenant acme: suspend: suspended\n", r.err)
	var st tenantView
	require.NoError(t, json.Unmarshal([]byte(r.out), &st))
	require.Equal(t, "suspended", st.Suspension.Phase)
}

func TestTenantsMove(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/tenants/acme/move", func(w http.ResponseWriter, r *http.Request) {
		to := "host-b"
		if r.ContentLength == 0 {
			to = "" // the registry chooses when the move runs
		}
		reply(w, 202, tenant.Move{From: "host-a", To: to, By: "ops", Phase: tenant.MoveQueued, RequestedAt: askedAt})
	})

	r := api.cli(nil, false, "tenants", "move", "acme", "--to", "host-b")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: move queued, host-a → host-b\nfollow it: tenantflow tenants get acme\n", r.out)
	req := api.requests("POST /v1/tenants/acme/move")[0]
	require.Equal(t, map[string]any{"to": "host-b"}, req.body)
	require.NotEmpty(t, req.idempotencyKey)

	r = api.cli(nil, false, "tenants", "move", "acme")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: move queued, host-a → a host the registry chooses\nfollow it: tenantflow tenants get acme\n", r.out)
	require.Nil(t, api.requests("POST /v1/tenants/acme/move")[1].body)

	api.on("POST /v1/tenants/acme/move", answer(400, refusal(`to "Host_B" is not a host name`, "to")))
	r = api.cli(nil, false, "tenants", "move", "acme", "--to", "Host_B")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: to: to \"Host_B\" is not a host name\n", r.err)

	api.on("POST /v1/tenants/acme/move", answer(404, refusal("host host-z is not registered", "to")))
	r = api.cli(nil, false, "tenants", "move", "acme", "--to", "host-z")
	require.Equal(t, ExitNotFound, r.code)
	require.Equal(t, "error: to: host host-z is not registered\n", r.err)

	api.on("POST /v1/tenants/acme/move", answer(409, refusal("tenant acme runs on host-b already", "")))
	r = api.cli(nil, false, "tenants", "move", "acme", "--to", "host-b")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "error: tenant acme runs on host-b already\n", r.err)
}

// move --wait goes through the move's phases to done.
func TestTenantsMoveWait(t *testing.T) {
	moving := func(state tenant.State, phase tenant.MovePhase) tenant.Tenant {
		st := acme()
		st.State, st.Progress = state, flow.Progress{}
		st.Move = &tenant.Move{From: "host-a", To: "host-b", By: "ops", Phase: phase, RequestedAt: askedAt}
		return st
	}
	api := newFakeAPI(t)
	api.on("POST /v1/tenants/acme/move", answer(202, tenant.Move{From: "host-a", To: "host-b", By: "ops", Phase: tenant.MoveQueued}))
	api.on("GET /v1/tenants/acme", sequence(moving(tenant.StateActive, tenant.MoveQueued), moving(tenant.StateMoving, tenant.MovePreCopy),
		moving(tenant.StateActive, tenant.MoveDone)))
	r := api.cli(nil, false, "tenants", "move", "acme", "--to", "host-b", "--wait")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"tenant acme: active",
		"tenant acme: move: queued",
		"tenant acme: moving",
		"tenant acme: move: pre-copy",
		"tenant acme: active",
		"tenant acme: move: done",
	}, lines(r.out))
}

func TestTenantsSet(t *testing.T) {
	api := newFakeAPI(t)
	title, empty := "Acme CRM", ""
	api.on("PATCH /v1/tenants/acme", answer(202, map[string]any{"tenant": "acme",
		"planChange": tenant.PlanChange{From: "medium", To: "large", Change: tenant.Change{By: "ops", Phase: tenant.PlanQueued, RequestedAt: askedAt}},
		"settingsChange": tenant.SettingsChange{Settings: map[string]*string{"TITLE": &title, "FOOTER": &empty, "LOG_LEVEL": nil},
			Change: tenant.Change{By: "ops", Phase: tenant.PlanQueued, RequestedAt: askedAt}},
	}))
	r := api.cli(nil, false, "tenants", "set", "acme", "--plan", "large", "--set", "TITLE=Acme CRM", "--set", "FOOTER=", "--unset", "LOG_LEVEL")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"tenant acme: plan change medium → large, queued",
		"tenant acme: settings change queued: FOOTER= LOG_LEVEL (default) TITLE=Acme CRM",
		"follow it: tenantflow tenants get acme",
	}, lines(r.out))
	req := api.requests("PATCH /v1/tenants/acme")[0]
	require.Equal(t, map[string]any{"plan": "large", "settings": map[string]any{"TITLE": "Acme CRM", "FOOTER": "", "LOG_LEVEL": nil}}, req.body)
	require.NotEmpty(t, req.idempotencyKey)

	// the window alone changes at once: the API answers the tenant
	api.on("PATCH /v1/tenants/acme", answer(200, acme()))
	r = api.cli(nil, false, "tenants", "set", "acme", "--window", "Sun 02:00-05:00 Europe/Paris", "--wait")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: maintenance window Sun 02:00-05:00 Europe/Paris\n", r.out)
	require.Equal(t, map[string]any{"maintenanceWindow": "Sun 02:00-05:00 Europe/Paris"}, api.requests("PATCH /v1/tenants/acme")[1].body)
	require.Empty(t, api.requests("GET /v1/tenants/acme"), "nothing to wait for")

	st := acme()
	st.MaintenanceWindow = ""
	api.on("PATCH /v1/tenants/acme", answer(200, st))
	r = api.cli(nil, false, "tenants", "set", "acme", "--window", "")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "tenant acme: maintenance window none (at any time)\n", r.out)
	require.Equal(t, map[string]any{"maintenanceWindow": ""}, api.requests("PATCH /v1/tenants/acme")[2].body)
}

// set refuses what it cannot send, before sending anything.
func TestTenantsSetUsage(t *testing.T) {
	api := newFakeAPI(t)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, "error: nothing to change: give --plan, --set, --unset or --window\n"},
		{[]string{"--set", "TITLE=a", "--unset", "TITLE"}, "error: TITLE is given both --set and --unset\n"},
		{[]string{"--set", "TITLE=", "--unset", "TITLE"}, "error: TITLE is given both --set and --unset\n"},
		{[]string{"--unset", "TITLE=a"}, "error: --unset \"TITLE=a\": want KEY\n"},
		{[]string{"--set", "TITLE"}, "error: --set \"TITLE\": want KEY=VALUE\n"},
	} {
		r := api.cli(nil, false, append([]string{"tenants", "set", "acme"}, tc.args...)...)
		require.Equal(t, ExitUsage, r.code, tc.args)
		require.Equal(t, tc.err, r.err, tc.args)
	}
	require.Empty(t, api.requests(""), "nothing sent for a usage error")
}

func TestTenantsSetRefused(t *testing.T) {
	api := newFakeAPI(t)
	api.on("PATCH /v1/tenants/acme", answer(400, refusal("TITLE must be at most 80 characters", "settings.TITLE")))
	api.on("PATCH /v1/tenants/ghost", answer(404, refusal("tenant ghost not found", "")))

	r := api.cli(nil, false, "tenants", "set", "acme", "--set", "TITLE=very long")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: settings.TITLE: TITLE must be at most 80 characters\n", r.err)

	r = api.cli(nil, false, "tenants", "set", "ghost", "--plan", "large")
	require.Equal(t, ExitNotFound, r.code)
	require.Equal(t, "error: tenant ghost not found\n", r.err)

	api.on("PATCH /v1/tenants/acme", answer(409, refusal("tenant acme is changing its plan already", "")))
	r = api.cli(nil, false, "tenants", "set", "acme", "--plan", "large")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "error: tenant acme is changing its plan already\n", r.err)

	// several changes: those before the refused one stand, and it says so
	r = api.cli(nil, false, "tenants", "set", "acme", "--plan", "large", "--set", "TITLE=x")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "note: the changes before the refused one (window, plan, settings, in that order) stand: see tenantflow tenants get acme\n"+
		"error: tenant acme is changing its plan already\n", r.err)

	// a settings value the workflow refuses (400) after a plan change it took
	api.on("PATCH /v1/tenants/acme", answer(400, refusal("TITLE must be at most 80 characters", "settings.TITLE")))
	r = api.cli(nil, false, "tenants", "set", "acme", "--plan", "large", "--set", "TITLE=very long")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.err, "note: the changes before the refused one")
}

// set --wait follows the plan and the settings change both, until both
// ended; one failed is exit 6.
func TestTenantsSetWait(t *testing.T) {
	changing := func(plan, settings tenant.PlanPhase, errMsg string) tenant.Tenant {
		st := acme()
		st.Progress = flow.Progress{}
		st.PlanChange = &tenant.PlanChange{From: "medium", To: "large", Change: tenant.Change{By: "ops", Phase: plan, RequestedAt: askedAt}}
		st.SettingsChange = &tenant.SettingsChange{Change: tenant.Change{By: "ops", Phase: settings, RequestedAt: askedAt, Error: errMsg}}
		return st
	}
	api := newFakeAPI(t)
	api.on("PATCH /v1/tenants/acme", answer(202, map[string]any{"tenant": "acme",
		"planChange":     tenant.PlanChange{From: "medium", To: "large", Change: tenant.Change{By: "ops", Phase: tenant.PlanQueued}},
		"settingsChange": tenant.SettingsChange{Change: tenant.Change{By: "ops", Phase: tenant.PlanQueued}},
	}))
	api.on("GET /v1/tenants/acme", sequence(changing(tenant.PlanRunning, tenant.PlanQueued, ""), changing(tenant.PlanDone, tenant.PlanRunning, ""),
		changing(tenant.PlanDone, tenant.PlanDone, "")))
	r := api.cli(nil, false, "tenants", "set", "acme", "--plan", "large", "--unset", "TITLE", "--wait")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"tenant acme: active",
		"tenant acme: plan change: running",
		"tenant acme: settings change: queued",
		"tenant acme: settings change: running",
		"tenant acme: plan change: done; settings change: done",
	}, lines(r.out))

	api.on("GET /v1/tenants/acme", answer(200, changing(tenant.PlanDone, tenant.PlanFailed, "app unhealthy with TITLE unset")))
	r = api.cli(nil, false, "tenants", "set", "acme", "--plan", "large", "--unset", "TITLE", "--wait")
	require.Equal(t, ExitUnsuccessful, r.code, r.err)
	require.Equal(t, "tenant acme: plan change: done; settings change: failed: app unhealthy with TITLE unset", lines(r.out)[len(lines(r.out))-1])
}

// tenants get shows the operations under way or the last, and the
// custom domains.
func TestTenantsGetShowsOperations(t *testing.T) {
	st := acme()
	st.Suspension = &tenant.Suspension{Phase: tenant.ResumeDone, By: "ops", Reason: "unpaid"}
	st.Move = &tenant.Move{From: "host-a", To: "host-b", Phase: tenant.MoveFailed, Error: "no room on host-b"}
	st.PlanChange = &tenant.PlanChange{From: "small", To: "medium", Change: tenant.Change{Phase: tenant.PlanDone}}
	level := "debug"
	st.SettingsChange = &tenant.SettingsChange{Settings: map[string]*string{"LOG_LEVEL": &level, "TITLE": nil}, Change: tenant.Change{Phase: tenant.PlanRunning}}
	st.Domains = []tenant.Domain{{Host: "crm.acme.com", Status: tenant.DomainActive}, {Host: "shop.acme.com", Status: tenant.DomainVerifying}}
	api := newFakeAPI(t)
	api.on("GET /v1/tenants/acme", answer(200, st))
	r := api.cli(nil, false, "tenants", "get", "acme")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Subset(t, lines(r.out), []string{
		"suspension:          resumed · unpaid",
		"move:                failed, host-a → host-b: no room on host-b",
		"plan change:         done, small → medium",
		"settings change:     running, LOG_LEVEL=debug TITLE (default)",
		"domains:             crm.acme.com active, shop.acme.com verifying",
	})
}
