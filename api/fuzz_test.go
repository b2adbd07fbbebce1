package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// The fuzz targets below send whatever the fuzzer makes to each route's
// request decoding and validation, over an in-memory Temporal that
// accepts everything (so a 5xx can only be the API's own fault), and check
// what every answer must be: no panic, no 5xx, a 400 with an "error" and
// the "field" to blame, and nothing started or sent to a workflow when the
// answer is a 400 (nor started for any 4xx). Their seeds run with the
// ordinary tests; `go test -fuzz FuzzCreateRelease ./api/` explores more.

// fuzzEnv is a router over a fake Temporal whose calls all succeed, with
// builds configured; Updates return a running release unless a target
// sets its own results.
func fuzzEnv(t *testing.T, opts ...envOption) *testEnv {
	e := newTestEnv(t, append([]envOption{withBuilds(fakeResolver{})}, opts...)...)
	e.temporal.updateResult = release.Release{ID: "r1", State: release.StateRunning}
	return e
}

func endedRelease() release.Release {
	return release.Release{ID: "r1", State: release.StateCompleted,
		Tenants: []release.Tenant{{Name: "acme", Status: release.TenantUpdated, From: oldImageA, To: testImage}}}
}

// checkAnswer asserts the rules every fuzzed request's answer follows.
func checkAnswer(t *testing.T, e *testEnv, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	what := req.Method + " " + req.URL.String()
	if rec.Code < 200 || rec.Code >= 500 {
		t.Fatalf("%s: answered %d (want 2xx or 4xx): %s", what, rec.Code, rec.Body.String())
	}
	if rec.Code < 400 {
		return
	}
	if starts := e.temporal.startCalls(); len(starts) > 0 {
		t.Fatalf("%s: answered %d, but started %s", what, rec.Code, starts[0].opts.ID)
	}
	var body struct {
		Error string  `json:"error"`
		Field *string `json:"field"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: answered %d with a body that is not JSON: %q", what, rec.Code, rec.Body.String())
	}
	if strings.TrimSpace(body.Error) == "" {
		t.Fatalf("%s: answered %d without an error: %s", what, rec.Code, rec.Body.String())
	}
	if rec.Code != http.StatusBadRequest {
		return
	}
	if body.Field == nil || *body.Field == "" {
		t.Fatalf("%s: 400 names no field: %s", what, rec.Body.String())
	}
	e.temporal.mu.Lock()
	defer e.temporal.mu.Unlock()
	if len(e.temporal.updates) > 0 {
		t.Fatalf("%s: 400, but sent Update %s", what, e.temporal.updates[0].UpdateName)
	}
}

// fuzzRequest is a request with a token (for its role) and, when body is
// not empty, a JSON body.
func fuzzRequest(method, target, token, body string) *http.Request {
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	req.URL.Path = target
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func fuzzServe(t *testing.T, e *testEnv, req *http.Request) {
	t.Helper()
	checkAnswer(t, e, req, serve(e, req))
}

func FuzzCreateTenant(f *testing.F) {
	for _, body := range []string{
		`{"name":"acme","template":"default","stage":"prod"}`,
		`{"name":"acme","stage":"staging"}`,
		`{"name":"xn--mnchen-3ya","stage":"prod"}`,
		`{"name":"acme","template":null,"stage":"prod"}`,
		`{"name":"Acme_","stage":"dev"}`,
		`{"name":42}`, `[]`, `null`, `{}`, ``, `{"name":"acme","stage":"prod"} {}`,
		`{"name":"acme","stage":"prod","owner":"x"}`, `{"name":"a\u0000b"}`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := fuzzEnv(t)
		fuzzServe(t, e, fuzzRequest(http.MethodPost, "/v1/tenants", opsToken, body))
	})
}

func FuzzDecommission(f *testing.F) {
	for _, seed := range []struct{ name, query, body string }{
		{"acme", "", `{"reason":"end of contract"}`},
		{"acme", "force=true&reason=unpaid", ""},
		{"acme", "force=maybe", ""},
		{"acme", "", `{"force":"yes"}`},
		{"acme", "", `{"reason":null}`},
		{"acme", "", `{"reason":"` + strings.Repeat("x", 1025) + `"}`},
		{"Acme_", "", ""},
		{"xn--mnchen-3ya", "", `{}`},
		{"acme", "reason=%zz", `{"force":true,"reason":"x"}`},
	} {
		f.Add(seed.name, seed.query, seed.body)
	}
	f.Fuzz(func(t *testing.T, name, query, body string) {
		e := activeTenant(fuzzEnv(t))
		e.temporal.updateResult = tenant.Decommission{Phase: tenant.PhaseAwaitingConfirmation}
		req := fuzzRequest(http.MethodDelete, "/v1/tenants/"+name, opsToken, body)
		req.URL.RawQuery = query
		fuzzServe(t, e, req)
	})
}

func FuzzDecommissionActions(f *testing.F) {
	for _, seed := range []struct{ action, body string }{
		{"decommission/confirm", ""}, {"decommission/cancel", "{}"}, {"restore", `{"x":1}`},
		{"restore", "null"}, {"decommission/confirm", "[1]"}, {"decommission/cancel", "  \n"},
	} {
		f.Add(seed.action, seed.body)
	}
	f.Fuzz(func(t *testing.T, action, body string) {
		e := fuzzEnv(t)
		e.temporal.updateResult = tenant.Decommission{Phase: tenant.PhaseConfirmed}
		fuzzServe(t, e, fuzzRequest(http.MethodPost, "/v1/tenants/acme/"+action, distributorToken, body))
	})
}

func FuzzCreateRelease(f *testing.F) {
	img := `"image":"` + testImage + `"`
	for _, body := range []string{
		`{` + img + `,"tenants":{"all":true}}`,
		`{"id":"r-1.2",` + img + `,"tenants":{"stage":"prod"},"canary":2,"batchSize":10,"maxParallel":3,"healthTimeout":"2m","drain":"0s","failureThreshold":1,"promotionDeadline":"24h"}`,
		`{` + img + `,"tenants":{"names":["acme","beta"]},"canary":0,"healthTimeout":"0s","promotionDeadline":"0s"}`,
		`{` + img + `,"tenants":{"all":true},"batchSize":0}`,
		`{` + img + `,"tenants":{"all":true},"batchSize":null}`,
		`{` + img + `,"tenants":{"all":true,"stage":null}}`,
		`{` + img + `,"tenants":{"all":true},"healthTimeout":120000000000}`,
		`{` + img + `,"tenants":{"all":true},"drain":"-1s","promotionDeadline":"9999999999h"}`,
		`{"image":"app:latest","tenants":{"all":true}}`,
		`{"rollbackOf":"r1"}`, `{"rollbackOf":"r1","batchSize":2}`, `{"rollbackOf":"R_1"}`,
		`{"id":"` + strings.Repeat("a", 64) + `",` + img + `,"tenants":{"all":true}}`,
		`{` + img + `,"tenants":{"names":[]}}`, `{` + img + `,"tenants":{"names":[null]}}`,
		`{"canary":1e400}`, `{"batchSize":-9223372036854775808}`, ``, `[]`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := fuzzEnv(t)
		e.temporal.queryResult = endedRelease()
		fuzzServe(t, e, fuzzRequest(http.MethodPost, "/v1/releases", developerToken, body))
	})
}

func FuzzReleaseAction(f *testing.F) {
	for _, seed := range []struct{ id, action, key, body string }{
		{"r1", "promote", "", `{"reason":"QA ok"}`},
		{"r1", "promote", "ci-pipeline-42", ""},
		{"r1", "pause", "bad key!", ""},
		{"r1", "resume", "", `{"reason":null}`},
		{"r1", "abort", "", `{"reason":"` + strings.Repeat("x", 1001) + `"}`},
		{"R_1", "abort", "", ""},
		{"r1", "promote", "", `{"release":"r2"}`},
	} {
		f.Add(seed.id, seed.action, seed.key, seed.body)
	}
	f.Fuzz(func(t *testing.T, id, action, key, body string) {
		e := fuzzEnv(t)
		e.temporal.queryResult = release.Release{ID: "r1", State: release.StateRunning}
		token := opsToken
		if action == "promote" {
			token = developerToken
		}
		req := fuzzRequest(http.MethodPost, "/v1/releases/"+id+"/"+action, token, body)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		fuzzServe(t, e, req)
	})
}

func FuzzCreateBuild(f *testing.F) {
	for _, body := range []string{
		`{"project":"group/app","ref":"main"}`, `{"project":"group/app","ref":"` + testSHA + `"}`,
		`{"project":"other/app","ref":"main"}`, `{"project":"group/app","ref":"a..b"}`,
		`{"project":"group/app","ref":null}`, `{"ref":"main"}`, `{"project":"group/app","ref":"-x"}`, `{}`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := fuzzEnv(t)
		fuzzServe(t, e, fuzzRequest(http.MethodPost, "/v1/builds", developerToken, body))
	})
}

func FuzzGitLabHook(f *testing.F) {
	tag := strings.Replace(pushEvent("group/app", "refs/tags/v1", testSHA), `"push"`, `"tag_push"`, 2)
	for _, seed := range []struct{ event, body string }{
		{"Push Hook", pushEvent("group/app", "refs/heads/main", testSHA)},
		{"Push Hook", pushEvent("group/app", "refs/heads/main", strings.Repeat("0", 40))},
		{"Push Hook", pushEvent("group/app", "refs/heads/dev", testSHA)},
		{"Push Hook", strings.Replace(pushEvent("group/app", "refs/heads/main", testSHA), `"project_id":42`, `"project_id":7`, 1)},
		{"Push Hook", strings.Replace(pushEvent("group/app", "refs/heads/main", testSHA), `"checkout_sha":"0`, `"checkout_sha":"f`, 1)},
		{"Tag Push Hook", tag},
		{"Issue Hook", `{"object_kind":"issue"}`},
		{"Push Hook", `{"object_kind":"push","project":null}`},
		{"Push Hook", `not json`}, {"", ``},
	} {
		f.Add(seed.event, seed.body)
	}
	f.Fuzz(func(t *testing.T, event, body string) {
		e := fuzzEnv(t)
		req := fuzzRequest(http.MethodPost, "/v1/hooks/gitlab", "", body)
		req.Header.Set("X-Gitlab-Event", event)
		req.Header.Set("X-Gitlab-Token", testSecret)
		fuzzServe(t, e, req)
	})
}

func FuzzListQuery(f *testing.F) {
	for _, seed := range []struct{ path, query string }{
		{"/v1/tenants", "state=restoring&stage=prod&pageSize=10"},
		{"/v1/tenants", "pageToken=garbage"},
		{"/v1/tenants", "pageToken=" + encodePageToken([]byte("tok"))},
		{"/v1/tenants", "state=active'%20OR%20'1'='1"},
		{"/v1/tenants", "pageSize=0&pageSize=1001"},
		{"/v1/releases", "pageSize=2&pageToken=" + url.QueryEscape(padded(encodePageToken([]byte{0xfb})))},
		{"/v1/releases", "pageToken=***"},
		{"/v1/tenants", "%zz=%zz;a"},
	} {
		f.Add(seed.path == "/v1/releases", seed.query)
	}
	f.Fuzz(func(t *testing.T, releases bool, query string) {
		e := fuzzEnv(t)
		path := "/v1/tenants"
		if releases {
			path = "/v1/releases"
		}
		req := fuzzRequest(http.MethodGet, path, opsToken, "")
		req.URL.RawQuery = query
		fuzzServe(t, e, req)
	})
}
