package portal

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignInChecksTheTokenWithTheAPI(t *testing.T) {
	h := newHarness(t)

	home := h.get("/portal")
	assert.Equal(t, http.StatusSeeOther, home.Status)
	assert.Equal(t, "/portal/signin", home.Location)
	list := h.get("/portal/tenants?state=active")
	assert.Equal(t, "/portal/signin?next=%2Fportal%2Ftenants%3Fstate%3Dactive", list.Location)

	bad := h.post("/portal/signin", url.Values{"token": {"not-the-token-at-all"}})
	assert.Equal(t, http.StatusUnauthorized, bad.Status)
	assert.Contains(t, bad.Body, `aria-invalid="true" aria-describedby="token-error"`)
	assert.Contains(t, bad.Body, `id="token-error">This token is not accepted.`)
	assert.Empty(t, bad.Header.Values("Set-Cookie"))

	ok := h.post("/portal/signin", url.Values{"token": {goodToken}, "next": {"/portal/tenants?state=active"}})
	require.Equal(t, http.StatusSeeOther, ok.Status, ok.Body)
	assert.Equal(t, "/portal/tenants?state=active", ok.Location)
	cookie := ok.Header.Get("Set-Cookie")
	assert.Contains(t, cookie, "Path=/portal")
	assert.Contains(t, cookie, "HttpOnly")
	assert.Contains(t, cookie, "SameSite=Strict")
	assert.NotContains(t, cookie, goodToken, "the token is sealed in the cookie")
	assert.Equal(t, http.StatusOK, h.get("/portal/tenants").Status)

	// A return address outside the portal is not followed.
	h2 := newHarness(t)
	out := h2.post("/portal/signin", url.Values{"token": {goodToken}, "next": {"//evil.example/x"}})
	assert.Equal(t, "/portal/tenants", out.Location)
}

func TestSessionsEndAndCannotBeForged(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	require.Equal(t, http.StatusOK, h.get("/portal/tenants").Status)

	// A cookie sealed with another key is not a session.
	other := newHarness(t)
	other.signIn()
	h.client.Jar.SetCookies(nil, other.client.Jar.Cookies(nil))
	assert.Equal(t, http.StatusSeeOther, h.get("/portal/tenants").Status)

	other.portal.now = func() time.Time { return time.Now().Add(defaultSessionTTL + time.Minute) }
	assert.Equal(t, http.StatusSeeOther, other.get("/portal/tenants").Status, "an ended session")

	// Signing out forgets the cookie.
	h3 := newHarness(t)
	h3.signIn()
	assert.Equal(t, http.StatusSeeOther, h3.post("/portal/signout", url.Values{}).Status)
	assert.Equal(t, http.StatusSeeOther, h3.get("/portal/tenants").Status)
}

func TestFormsNeedTheSessionsCSRFTokenAndOrigin(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	form := url.Values{"name": {"acme"}, "template": {"light"}, "stage": {"prod"}}

	noToken := h.post("/portal/tenants", url.Values{"csrf": {""}, "name": {"acme"}})
	assert.Equal(t, http.StatusForbidden, noToken.Status)
	wrong := h.post("/portal/tenants", url.Values{"csrf": {"forged-token-value"}, "name": {"acme"}})
	assert.Equal(t, http.StatusForbidden, wrong.Status)

	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/portal/tenants", strings.NewReader(form.Encode()+"&csrf="+h.csrf))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	assert.Equal(t, http.StatusForbidden, h.do(req).Status, "a form from another site")

	assert.Empty(t, h.api.sent(http.MethodPost, "/v1/tenants"), "nothing reached the API")
}

func TestCreateSendsTheChosenTemplatesOptions(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("POST /v1/tenants", answerWith(http.StatusAccepted, map[string]any{"name": "acme", "status": "provisioning"}))

	form := h.get("/portal/tenants/new")
	require.Equal(t, http.StatusOK, form.Status)
	// light and default both declare TITLE: each keeps fields of its own.
	assert.Contains(t, form.Body, `name="setting.light.TITLE"`)
	assert.Contains(t, form.Body, `name="setting.default.TITLE"`)
	assert.Contains(t, form.Body, `<label for="name">Name</label>`)

	pg := h.post("/portal/tenants", url.Values{
		"name": {" acme "}, "template": {"default"}, "stage": {"prod"}, "plan.default": {"large"}, "plan.light": {"small"},
		"setting.default.TITLE": {"Acme <Corp>"}, "setting.default.LOG_LEVEL": {""}, "setting.light.TITLE": {"not this one"},
	})
	require.Equal(t, http.StatusSeeOther, pg.Status, pg.Body)
	assert.Equal(t, "/portal/tenants/acme?done=created", pg.Location)
	sent := h.api.sent(http.MethodPost, "/v1/tenants")
	require.Len(t, sent, 1)
	assert.JSONEq(t, `{"name":"acme","template":"default","stage":"prod","plan":"large","settings":{"TITLE":"Acme <Corp>"}}`, sent[0].Body)
}

func TestCreateShowsTheAPIsRefusalNextToItsField(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	for _, tc := range []struct {
		status            int
		answer            map[string]string
		input, errorShown string
	}{
		{http.StatusBadRequest, map[string]string{"error": "name must be a DNS label", "field": "name"}, `id="name"`, `id="name-error">name must be a DNS label`},
		{http.StatusBadRequest, map[string]string{"error": `settings.LOG_LEVEL: "loud" is not one of debug, info`, "field": "settings.LOG_LEVEL"}, `id="setting.default.LOG_LEVEL"`, `id="setting.default.LOG_LEVEL-error">settings.LOG_LEVEL: &#34;loud&#34; is not one of`},
		{http.StatusConflict, map[string]string{"error": "tenant acme already exists", "field": "name"}, `id="name"`, `id="name-error">tenant acme already exists`},
		{http.StatusConflict, map[string]string{"error": "no host has room for plan small"}, ``, `role="alert">no host has room for plan small`},
		{http.StatusBadRequest, map[string]string{"error": "host: no such host", "field": "host"}, ``, `role="alert">host: no such host`},
	} {
		h.api.on("POST /v1/tenants", answerWith(tc.status, tc.answer))
		pg := h.post("/portal/tenants", url.Values{"name": {"acme"}, "template": {"default"}, "stage": {"prod"}, "setting.default.LOG_LEVEL": {"debug"}, "setting.default.TITLE": {"Kept <b>"}})
		assert.Equal(t, tc.status, pg.Status)
		assert.Contains(t, pg.Body, tc.errorShown)
		if tc.input != "" {
			i := strings.Index(pg.Body, tc.input)
			require.GreaterOrEqual(t, i, 0, pg.Body)
			tag := pg.Body[i : i+strings.Index(pg.Body[i:], ">")]
			assert.Contains(t, tag, `aria-invalid="true"`, "the field in error is marked")
		}
		assert.Contains(t, pg.Body, `value="Kept &lt;b&gt;"`, "what was typed is kept, escaped")
	}
}

func TestTenantEventsStreamEachChangeOnce(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	states := []string{
		`{"name":"acme","state":"provisioning","progress":{"done":1,"total":4,"step":"CreateVolumes"}}`,
		`{"name":"acme","state":"provisioning","progress":{"done":1,"total":4,"step":"CreateVolumes"}}`,
		`{"name":"acme","state":"provisioning","progress":{"done":3,"total":4,"step":"WaitHealthy"}}`,
		`{"name":"acme","state":"active","url":"http://acme.example","progress":{"done":4,"total":4}}`,
	}
	var n atomic.Int32
	h.api.on("GET /v1/tenants/acme", func(w http.ResponseWriter, _ *http.Request, _ string) {
		i := min(int(n.Add(1))-1, len(states)-1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(states[i]))
	})
	pg := h.get("/portal/tenants/acme")
	require.Equal(t, http.StatusOK, pg.Status)
	assert.Contains(t, pg.Body, `data-events="/portal/tenants/acme/events"`)
	n.Store(0)

	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/portal/tenants/acme/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := h.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var got []liveState
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && len(got) < 3 {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var s liveState
			require.NoError(t, json.Unmarshal([]byte(data), &s))
			got = append(got, s)
		}
	}
	require.Len(t, got, 3)
	assert.Equal(t, liveState{State: "provisioning", Tag: "busy", Done: 1, Total: 4, Percent: 25, Step: "CreateVolumes"}, got[0])
	assert.Equal(t, 75, got[1].Percent)
	assert.Equal(t, "WaitHealthy", got[1].Step)
	assert.Equal(t, liveState{State: "active", Tag: "ok", Done: 4, Total: 4, Percent: 100, URL: "http://acme.example"}, got[2])
}

func TestTenantEventsEndWhenTheTenantIsGone(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants/gone", answerWith(http.StatusNotFound, map[string]string{"error": "tenant gone not found"}))
	pg := h.get("/portal/tenants/gone/events")
	assert.Equal(t, http.StatusOK, pg.Status)
	assert.Equal(t, "event: end\ndata: {\"reason\":\"tenant gone not found\"}\n\n", pg.Body)
}

func TestTenantPageEscapesWhatTheAPISays(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants/acme", answerWith(http.StatusOK, map[string]any{
		"name": "acme", "state": "failed", "error": `<script>alert(1)</script>`, "progress": map[string]any{"done": 2, "total": 4},
	}))
	pg := h.get("/portal/tenants/acme")
	assert.Contains(t, pg.Body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.NotContains(t, pg.Body, "<script>alert")
	assert.NotContains(t, pg.Body, "data-events", "a failed tenant is not followed")
	assert.Contains(t, pg.Header.Get("Content-Security-Policy"), "script-src 'self'")
}

func TestCredentialsAreShownOnceWithTheFormsKey(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants/acme/credentials", answerWith(http.StatusOK, map[string]string{"username": "admin", "dn": "uid=admin,ou=acme", "password": "s3cret-pass", "url": "http://acme.example"}))

	warn := h.get("/portal/tenants/acme/credentials")
	assert.Contains(t, warn.Body, "The password is shown once.")
	assert.Empty(t, h.api.sent(http.MethodGet, "/v1/tenants/acme/credentials"), "nothing fetched before the person agrees")

	pg := h.post("/portal/tenants/acme/credentials", url.Values{"key": {"form-key-123456789"}})
	require.Equal(t, http.StatusOK, pg.Status, pg.Body)
	assert.Contains(t, pg.Body, `<code id="password">s3cret-pass</code>`)
	assert.Contains(t, pg.Body, "This is the only time the password is shown.")
	assert.Equal(t, "no-store", pg.Header.Get("Cache-Control"))
	sent := h.api.sent(http.MethodGet, "/v1/tenants/acme/credentials")
	require.Len(t, sent, 1)
	assert.Equal(t, "form-key-123456789", sent[0].Key)

	h.api.on("GET /v1/tenants/acme/credentials", answerWith(http.StatusGone, map[string]string{"error": "credentials of acme were already fetched by distributor"}))
	again := h.post("/portal/tenants/acme/credentials", url.Values{"key": {"another-key-1234567"}})
	assert.Equal(t, http.StatusGone, again.Status)
	assert.Contains(t, again.Body, "already fetched by distributor")
	assert.NotContains(t, again.Body, "s3cret-pass")
}

func TestDecommissionIsRequestedWithAReason(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("DELETE /v1/tenants/acme", answerWith(http.StatusAccepted, map[string]any{"name": "acme", "decommission": map[string]string{"phase": "awaiting-confirmation"}}))
	h.api.on("POST /v1/tenants/acme/decommission/confirm", answerWith(http.StatusAccepted, map[string]any{"name": "acme"}))

	empty := h.post("/portal/tenants/acme/decommission", url.Values{"key": {"form-key-123456789"}, "reason": {"  "}})
	assert.Equal(t, http.StatusBadRequest, empty.Status)
	assert.Contains(t, empty.Body, `id="reason-error"`)
	assert.Empty(t, h.api.sent(http.MethodDelete, "/v1/tenants/acme"))

	pg := h.post("/portal/tenants/acme/decommission", url.Values{"key": {"form-key-123456789"}, "reason": {"contract ended"}})
	require.Equal(t, http.StatusSeeOther, pg.Status, pg.Body)
	assert.Equal(t, "/portal/tenants/acme?done=decommission-requested", pg.Location)
	sent := h.api.sent(http.MethodDelete, "/v1/tenants/acme")
	require.Len(t, sent, 1)
	assert.JSONEq(t, `{"reason":"contract ended"}`, sent[0].Body)
	assert.Equal(t, "form-key-123456789", sent[0].Key)

	h.api.on("GET /v1/tenants/acme", answerWith(http.StatusOK, map[string]any{"name": "acme", "state": "active", "decommission": map[string]string{"phase": "awaiting-confirmation", "requestedBy": "distributor"}}))
	shown := h.get("/portal/tenants/acme?done=decommission-requested")
	assert.Contains(t, shown.Body, "Nothing is removed until it is confirmed.")
	assert.Contains(t, shown.Body, `action="/portal/tenants/acme/decommission/confirm"`)

	confirmed := h.post("/portal/tenants/acme/decommission/confirm", url.Values{"key": {"form-key-123456789"}})
	assert.Equal(t, "/portal/tenants/acme?done=decommission-confirmed", confirmed.Location)
	assert.Len(t, h.api.sent(http.MethodPost, "/v1/tenants/acme/decommission/confirm"), 1)
	assert.Equal(t, http.StatusNotFound, h.post("/portal/tenants/acme/decommission/purge", url.Values{}).Status)
}

func TestListPagesAndFilters(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants", func(w http.ResponseWriter, r *http.Request, _ string) {
		answer(w, http.StatusOK, map[string]any{
			"tenants":       []map[string]any{{"name": "acme", "state": "active", "stage": "prod", "startTime": time.Now().Add(-2 * time.Hour)}},
			"nextPageToken": "tok+/=",
		})
	})
	pg := h.get("/portal/tenants?state=active")
	require.Equal(t, http.StatusOK, pg.Status)
	assert.Contains(t, pg.Body, `<a href="/portal/tenants/acme">acme</a>`)
	assert.Contains(t, pg.Body, `<span class="state ok">active</span>`)
	assert.Contains(t, pg.Body, `href="/portal/tenants?page=tok%2B%2F%3D&amp;state=active"`)
	calls := h.api.sent(http.MethodGet, "/v1/tenants")
	assert.Equal(t, "pageSize=100&state=active", calls[len(calls)-1].Query)

	h.get("/portal/tenants?state=active&page=tok%2B%2F%3D")
	calls = h.api.sent(http.MethodGet, "/v1/tenants")
	assert.Equal(t, "pageSize=100&pageToken=tok%2B%2F%3D&state=active", calls[len(calls)-1].Query)

	assert.Equal(t, http.StatusBadRequest, h.get("/portal/tenants?state=bogus").Status)
}

func TestARevokedTokenEndsTheSession(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants", answerWith(http.StatusUnauthorized, map[string]string{"error": "invalid bearer token"}))
	pg := h.get("/portal/tenants")
	assert.Equal(t, http.StatusUnauthorized, pg.Status)
	assert.Contains(t, pg.Body, "Your token is no longer accepted.")
	assert.Contains(t, pg.Header.Get("Set-Cookie"), "Max-Age=0")
}

func TestConfigIsChecked(t *testing.T) {
	ts := testTemplates(t)
	c := &http.Client{}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{BaseURL: "http://api", Templates: ts}, "API client is required"},
		{Config{API: c, BaseURL: "api", Templates: ts}, `BaseURL "api"`},
		{Config{API: c, BaseURL: "http://api"}, "no templates"},
		{Config{API: c, BaseURL: "http://api", Templates: ts, SessionKey: []byte("short")}, "SessionKey has 5 bytes"},
		{Config{API: c, BaseURL: "http://api", Templates: ts, PageSize: 5000}, "PageSize 5000"},
	} {
		_, err := New(tc.cfg, nil)
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestCredentialsAreOfferedOnlyWhenThereIsAnAccount(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants/acme", answerWith(http.StatusOK, map[string]any{"name": "acme", "state": "active"}))
	assert.NotContains(t, h.get("/portal/tenants/acme").Body, "/credentials")
	h.api.on("GET /v1/tenants/acme", answerWith(http.StatusOK, map[string]any{"name": "acme", "state": "active", "accounts": []map[string]any{{"username": "admin"}}}))
	assert.Contains(t, h.get("/portal/tenants/acme").Body, `href="/portal/tenants/acme/credentials"`)
	h.api.on("GET /v1/tenants/acme", answerWith(http.StatusOK, map[string]any{"name": "acme", "state": "active", "accounts": []map[string]any{{"username": "admin"}},
		"credentialsFetchedAt": time.Now().Add(-time.Hour), "credentialsFetchedBy": "distributor"}))
	pg := h.get("/portal/tenants/acme").Body
	assert.NotContains(t, pg, `href="/portal/tenants/acme/credentials"`)
	assert.Contains(t, pg, "handed out 1 h ago by distributor")
}

func TestATenantNotAnsweringYetIsFollowed(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants/acme", answerWith(http.StatusServiceUnavailable, map[string]string{"error": "tenant acme: no worker answered the state query within 5s"}))
	pg := h.get("/portal/tenants/acme?done=created")
	assert.Equal(t, http.StatusOK, pg.Status)
	assert.Contains(t, pg.Body, `data-events="/portal/tenants/acme/events"`)
	assert.Contains(t, pg.Body, "The platform has not answered yet")
}

func TestEventsOutliveTheServersWriteTimeout(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	// A server whose answers must be written within 300 ms, as the API's
	// own are within its write timeout.
	slow := httptest.NewUnstartedServer(h.portal)
	slow.Config.WriteTimeout = 300 * time.Millisecond
	slow.Start()
	t.Cleanup(slow.Close)
	var n atomic.Int32
	h.api.on("GET /v1/tenants/acme", func(w http.ResponseWriter, _ *http.Request, _ string) {
		answer(w, http.StatusOK, map[string]any{"name": "acme", "state": "provisioning", "progress": map[string]any{"done": n.Add(1), "total": 1000000}})
	})
	req, _ := http.NewRequest(http.MethodGet, slow.URL+"/portal/tenants/acme/events", nil)
	for _, c := range h.client.Jar.Cookies(nil) {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	start := time.Now()
	events := 0
	for time.Since(start) < time.Second && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	require.NoError(t, sc.Err())
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "the stream was cut after %d events", events)
}

// A stream ends with its session, not up to streamFor later.
func TestTenantEventsEndWithTheSession(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants/acme", func(w http.ResponseWriter, _ *http.Request, _ string) {
		answer(w, http.StatusOK, map[string]any{"name": "acme", "state": "provisioning", "progress": map[string]any{"done": 1, "total": 4}})
	})
	// The session has two seconds left.
	h.portal.now = func() time.Time { return time.Now().Add(defaultSessionTTL - 2*time.Second) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+"/portal/tenants/acme/events", nil)
	require.NoError(t, err)
	resp, err := h.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "the stream outlived its session: %s", b)
	pg := page{Status: resp.StatusCode, Body: string(b)}
	assert.Contains(t, pg.Body, "event: tenant\n", "followed while the session lasted")
	assert.True(t, strings.HasSuffix(pg.Body, "event: end\ndata: {\"reason\":\""+sessionEnded+"\"}\n\n"), pg.Body)
}

func TestOddNamesAreNoCustomer(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	for _, path := range []string{"/portal/tenants/a%2F..%2Fvictim/credentials", "/portal/tenants/x%3Fy/decommission", "/portal/tenants/AB/events", "/portal/tenants/ab"} {
		pg := h.get(path)
		assert.Equal(t, http.StatusNotFound, pg.Status, path)
		assert.NotContains(t, pg.Body, "victim", path)
	}
	assert.Empty(t, h.api.sent(http.MethodGet, "/v1/tenants/ab"), "nothing asked of the API")
}

func TestDecommissionIsOfferedAsTheWorkflowAllowsIt(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	for _, tc := range []struct {
		state, phase string
		offered      bool
	}{
		{"active", "", true}, {"suspended", "", true}, {"active", "cancelled", true}, {"active", "restored", true},
		{"active", "failed", true}, {"active", "awaiting-confirmation", false}, {"provisioning", "", false}, {"decommissioned", "retained", false},
	} {
		body := map[string]any{"name": "acme", "state": tc.state}
		if tc.phase != "" {
			body["decommission"] = map[string]string{"phase": tc.phase}
		}
		h.api.on("GET /v1/tenants/acme", answerWith(http.StatusOK, body))
		pg := h.get("/portal/tenants/acme")
		assert.Equal(t, tc.offered, strings.Contains(pg.Body, `href="/portal/tenants/acme/decommission"`), "%s/%s", tc.state, tc.phase)
	}
}

func TestAStaleAnswerIsFollowedUntilAFreshOne(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("GET /v1/tenants/acme", answerWith(http.StatusOK, map[string]any{"name": "acme", "state": "active", "stale": true, "staleReason": "its workflow is busy"}))
	pg := h.get("/portal/tenants/acme")
	assert.Contains(t, pg.Body, `data-events="/portal/tenants/acme/events"`)
	assert.Contains(t, pg.Body, `data-stale="true"`)
}

func TestFormsFromTheBrowsersOwnWord(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	h.api.on("POST /v1/tenants", answerWith(http.StatusAccepted, map[string]any{"name": "acme"}))
	send := func(site, origin string) int {
		form := url.Values{"name": {"acme"}, "template": {"light"}, "stage": {"prod"}, "csrf": {h.csrf}}
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/portal/tenants", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return h.do(req).Status
	}
	// Behind a proxy that rewrites Host, Origin differs; the browser says
	// the form is the portal's own.
	assert.Equal(t, http.StatusSeeOther, send("same-origin", "https://portal.example"))
	assert.Equal(t, http.StatusForbidden, send("cross-site", h.srv.URL))
	assert.Equal(t, http.StatusForbidden, send("same-site", h.srv.URL))
	assert.Equal(t, http.StatusSeeOther, send("", h.srv.URL))
	assert.Equal(t, http.StatusForbidden, send("", "https://evil.example"))
}
