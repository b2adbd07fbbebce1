package cli

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/internal/audit"
)

// auditAnswer is a page of GET /v1/audit.
func auditAnswer(next string) map[string]any {
	at := time.Date(2026, 12, 7, 9, 15, 0, 0, time.UTC)
	page := map[string]any{"entries": []audit.Entry{
		{ID: "20261207T091500.000000000Z-0a1b2c3d", At: at, Role: "distributor", Actor: "Jane Doe", Action: "tenant.suspend", Tenant: "acme",
			Reason: "invoice 42 unpaid", Outcome: audit.OutcomeAccepted, Status: 202},
		{ID: "20261207T092000.000000000Z-4e5f6a7b", At: at.Add(5 * time.Minute), Role: "ops", Actor: "ops", Action: "tenant.configure", Tenant: "acme",
			Detail: "plan large", Outcome: audit.OutcomeRefused, Status: 409, Error: "tenant acme is suspended"},
	}}
	if next != "" {
		page["next"] = next
	}
	return page
}

func TestAudit(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/audit", answer(200, auditAnswer("20261207T092000.000000000Z-4e5f6a7b")))
	r := api.cli(nil, false, "audit", "--tenant", "acme", "--actor", "Jane Doe", "--since", "1h", "--page-size", "2")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"AT                    ROLE         ACTOR     ACTION            ON    OUTCOME       REASON             DETAIL      ERROR",
		"2026-12-07 09:15:00Z  distributor  Jane Doe  tenant.suspend    acme  accepted 202  invoice 42 unpaid  -           -",
		"2026-12-07 09:20:00Z  ops          ops       tenant.configure  acme  refused 409   -                  plan large  tenant acme is suspended",
	}, lines(r.out))

	// a duration back from now is sent as the time it names, and the
	// next page asks for the same
	q, err := url.ParseQuery(api.requests("")[0].query)
	require.NoError(t, err)
	since, err := time.Parse(time.RFC3339, q.Get("since"))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(-time.Hour), since, time.Minute)
	require.Equal(t, url.Values{"tenant": {"acme"}, "actor": {"Jane Doe"}, "since": {q.Get("since")}, "limit": {"2"}}, q)
	require.Equal(t, "more: tenantflow audit --tenant acme --actor 'Jane Doe' --since "+q.Get("since")+
		" --page-size 2 --page-token 20261207T092000.000000000Z-4e5f6a7b\n", r.err)

	api.on("GET /v1/audit", answer(200, auditAnswer("")))
	r = api.cli(nil, false, "audit", "--action", "tenant.suspend", "--since", "2026-12-01T00:00:00Z", "--page-token", "20261207T092000.000000000Z-4e5f6a7b")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Empty(t, r.err, "the last page")
	require.Equal(t, "action=tenant.suspend&after=20261207T092000.000000000Z-4e5f6a7b&since=2026-12-01T00%3A00%3A00Z", api.requests("")[1].query)

	r = api.cli(nil, false, "audit", "-o", "json")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Contains(t, r.out, `"id":"20261207T091500.000000000Z-0a1b2c3d"`, "the API's answer, ids included")
}

func TestAuditRefused(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/audit", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case roleOf(r) != "ops":
			reply(w, http.StatusForbidden, refusal("role developer may not call GET /v1/audit", ""))
		case r.URL.Query().Get("since") == "yesterday":
			reply(w, http.StatusBadRequest, refusal(`since must be an RFC 3339 time (2026-12-07T10:00:00Z), not "yesterday"`, "since"))
		default:
			reply(w, http.StatusServiceUnavailable, refusal("the audit trail cannot be read now", ""))
		}
	})
	r := api.cli(nil, false, "audit", "--since", "yesterday")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: since: since must be an RFC 3339 time (2026-12-07T10:00:00Z), not \"yesterday\"\n", r.err)

	r = api.cli(map[string]string{EnvToken: developerToken}, false, "audit")
	require.Equal(t, ExitDenied, r.code)
	require.Equal(t, "error: role developer may not call GET /v1/audit\n", r.err)

	r = api.cli(nil, false, "audit")
	require.Equal(t, ExitFailure, r.code)
	require.Equal(t, "error: the audit trail cannot be read now\n", r.err)
}

// The ls commands page with the API's pageSize and pageToken; audit with
// its limit and after (TestAudit).
func TestPagerNames(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants", answer(200, tenantListAnswer(time.Now())))
	r := api.cli(nil, false, "tenants", "ls", "--page-size", "5", "--page-token", "bmV4dA")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "pageSize=5&pageToken=bmV4dA", api.requests("")[0].query)
}
