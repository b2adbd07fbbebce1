package cli

import (
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Each answer of the API maps to one exit code, and its {"error","field"}
// is shown as `error: <field>: <message>` on stderr.
func TestAPIAnswersMapToExitCodesAndErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   any
		code   int
		stderr string
	}{
		{"bad input", 400, map[string]string{"error": `name "X" is not a DNS label`, "field": "name"}, ExitUsage, `error: name: name "X" is not a DNS label`},
		{"not found", 404, map[string]string{"error": "tenant ghost not found"}, ExitNotFound, "error: tenant ghost not found"},
		{"conflict", 409, map[string]string{"error": "tenant ghost is decommissioning"}, ExitRefused, "error: tenant ghost is decommissioning"},
		{"gone", 410, map[string]string{"error": "credentials were fetched already"}, ExitRefused, "error: credentials were fetched already"},
		{"forbidden", 403, map[string]string{"error": "role developer may not call this route"}, ExitDenied, "error: role developer may not call this route"},
		{"unavailable", 503, map[string]string{"error": "tenant ghost: no worker answered within 5s"}, ExitFailure, "error: tenant ghost: no worker answered within 5s"},
		{"not JSON", 502, "<html>bad gateway</html>", ExitFailure, `error: HTTP 502: "\u003chtml\u003ebad gateway\u003c/html\u003e"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			api.on("GET /v1/tenants/ghost", answer(tc.status, tc.body))
			r := api.cli(nil, false, "tenants", "get", "ghost")
			require.Equal(t, tc.code, r.code, r.err)
			require.Equal(t, tc.stderr+"\n", r.err)
			require.Empty(t, r.out)
		})
	}
}

// A wrong token is 401: exit 5, and the error says where the token came
// from (never the token itself).
func TestUnauthorizedNamesWhereTheTokenCameFrom(t *testing.T) {
	api := newFakeAPI(t)
	r := api.cli(map[string]string{EnvToken: "wrong-token-value"}, false, "tenants", "ls")
	require.Equal(t, ExitDenied, r.code)
	require.Equal(t, "error: missing or invalid bearer token (token from TENANTFLOW_TOKEN)\n", r.err)
	require.NotContains(t, r.err, "wrong-token-value")
}

// An Update route answered 503 (no worker in time) is sent again with the
// same Idempotency-Key, so it cannot act twice; a read is not retried.
func TestUpdatesRetryWithTheSameIdempotencyKey(t *testing.T) {
	api := newFakeAPI(t)
	busy := statusAnswer{status: 503, retryAfter: "0", body: map[string]string{"error": "release r1: no worker answered pause within 5s"}}
	api.on("POST /v1/releases/r1/pause", sequence(busy, map[string]any{"id": "r1", "state": "paused", "phase": "prod", "counts": map[string]int{"updated": 2}}))
	r := api.cli(nil, false, "releases", "pause", "r1", "--reason", "db maintenance")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Contains(t, r.err, "note: release r1: no worker answered pause within 5s; sending it again with the same Idempotency-Key")
	require.Equal(t, "release r1: paused · phase prod · wave 0\ntenants: updated 2\n", r.out)
	sent := api.requests("POST /v1/releases/r1/pause")
	require.Len(t, sent, 2)
	require.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`), sent[0].idempotencyKey)
	require.Equal(t, sent[0].idempotencyKey, sent[1].idempotencyKey)
	require.Equal(t, "db maintenance", sent[1].body["reason"])

	api.on("GET /v1/tenants/acme", answer(503, map[string]string{"error": "busy"}))
	r = api.cli(nil, false, "tenants", "get", "acme")
	require.Equal(t, ExitFailure, r.code)
	require.Len(t, api.requests("GET /v1/tenants/acme"), 1)
	require.Empty(t, api.requests("GET /v1/tenants/acme")[0].idempotencyKey)
}

// An Update retried up to its limit ends with the API's error.
func TestUpdateRetriesEnd(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/releases/r1/abort", answer(503, map[string]string{"error": "no worker"}))
	r := api.cli(nil, false, "releases", "abort", "r1", "--reason", "bad")
	require.Equal(t, ExitFailure, r.code)
	require.Len(t, api.requests("POST /v1/releases/r1/abort"), 1+updateRetries)
	require.True(t, strings.HasSuffix(r.err, "error: no worker\n"), r.err)
}

// A name the person typed stays one path segment.
func TestNamesAreEscaped(t *testing.T) {
	api := newFakeAPI(t)
	r := api.cli(nil, false, "tenants", "get", "a b?c")
	require.Equal(t, ExitNotFound, r.code)
	require.Equal(t, "/v1/tenants/a%20b%3Fc", api.requests("")[0].path)
	require.Empty(t, api.requests("")[0].query)

	r = api.cli(nil, false, "tenants", "get", "../releases")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.err, `error: NAME "../releases" is not a name`)
	require.Len(t, api.requests(""), 1, "nothing was sent")
}

// No API listening: exit 1, saying which URL was tried.
func TestUnreachableAPI(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	r := runCLI(t, map[string]string{EnvAPIURL: "http://" + addr, EnvToken: opsToken}, false, "tenants", "ls")
	require.Equal(t, ExitFailure, r.code)
	require.Contains(t, r.err, "error: GET http://"+addr+": ")
	require.Contains(t, r.err, "connection refused")
}

func TestBadAPIURLIsAUsageError(t *testing.T) {
	r := runCLI(t, map[string]string{EnvAPIURL: "localhost:8080", EnvToken: opsToken}, false, "tenants", "ls")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: API URL \"localhost:8080\": want http(s)://host[:port] (from TENANTFLOW_API_URL)\n", r.err)
}

func TestExitForStatusCoversEveryClass(t *testing.T) {
	for status, code := range map[int]int{
		http.StatusBadRequest: ExitUsage, http.StatusRequestEntityTooLarge: ExitUsage, http.StatusNotFound: ExitNotFound,
		http.StatusConflict: ExitRefused, http.StatusGone: ExitRefused, http.StatusUnauthorized: ExitDenied,
		http.StatusForbidden: ExitDenied, http.StatusInternalServerError: ExitFailure, http.StatusServiceUnavailable: ExitFailure,
		http.StatusNotImplemented: ExitFailure,
	} {
		require.Equal(t, code, exitForStatus(status), "HTTP %d", status)
	}
}
