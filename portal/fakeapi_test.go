package portal

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/spec"
)

const goodToken = "distributor-token-0123456789"

// call is one request the fake API received.
type call struct {
	Method, Path, Query, Body, Key string
}

// fakeAPI answers the portal's API calls from a table of handlers by
// "METHOD path", and keeps every request it got. Its token check is the
// API's: anything but goodToken is a 401.
type fakeAPI struct {
	mu     sync.Mutex
	calls  []call
	routes map[string]func(w http.ResponseWriter, r *http.Request, body string)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body), Key: r.Header.Get("Idempotency-Key")})
	h := f.routes[r.Method+" "+r.URL.Path]
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+goodToken {
		answer(w, http.StatusUnauthorized, map[string]string{"error": "invalid bearer token"})
		return
	}
	if h == nil {
		answer(w, http.StatusNotFound, map[string]string{"error": "no route " + r.Method + " " + r.URL.Path})
		return
	}
	h(w, r, string(body))
}

func (f *fakeAPI) on(route string, h func(w http.ResponseWriter, r *http.Request, body string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = h
}

// sent is every call but the sign-in's list, in order.
func (f *fakeAPI) sent(method, path string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func answerWith(status int, v any) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, _ string) { answer(w, status, v) }
}

// testTemplates are two templates with the same setting names, as the
// shipped light and default have.
func testTemplates(t *testing.T) spec.Templates {
	t.Helper()
	ts, err := spec.LoadTemplates("../deploy/templates")
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// harness is a portal on a fake API, served by a real HTTP server (the
// event stream needs one), and a browser-like client that keeps cookies
// and does not follow redirects.
type harness struct {
	t      *testing.T
	api    *fakeAPI
	portal *Portal
	srv    *httptest.Server
	client *http.Client
	csrf   string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	api := &fakeAPI{routes: map[string]func(http.ResponseWriter, *http.Request, string){}}
	api.on("GET /v1/tenants", answerWith(http.StatusOK, map[string]any{"tenants": []any{}}))
	p, err := New(Config{API: &http.Client{Transport: InProcess(api)}, BaseURL: "http://api.internal", Templates: testTemplates(t), PollEvery: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	jar := &cookieJar{}
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &harness{t: t, api: api, portal: p, srv: srv, client: c}
}

// cookieJar keeps cookies whatever their Secure flag or path (the test
// server is plain HTTP on 127.0.0.1).
type cookieJar struct {
	mu      sync.Mutex
	cookies map[string]*http.Cookie
}

func (j *cookieJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cookies == nil {
		j.cookies = map[string]*http.Cookie{}
	}
	for _, c := range cs {
		if c.MaxAge < 0 {
			delete(j.cookies, c.Name)
			continue
		}
		j.cookies[c.Name] = c
	}
}

func (j *cookieJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.cookies {
		out = append(out, c)
	}
	return out
}

// page is an answer with its body read.
type page struct {
	Status   int
	Header   http.Header
	Body     string
	Location string
}

func (h *harness) get(path string) page {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

// post sends a form as a browser on the portal's own page would (Origin
// of the portal), with the session's CSRF token unless form sets one.
func (h *harness) post(path string, form url.Values) page {
	h.t.Helper()
	if _, ok := form["csrf"]; !ok && h.csrf != "" {
		form.Set("csrf", h.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.srv.URL)
	return h.do(req)
}

func (h *harness) do(req *http.Request) page {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(b), Location: resp.Header.Get("Location")}
}

// signIn signs in with the good token and keeps the CSRF token a form of
// the portal carries.
func (h *harness) signIn() {
	h.t.Helper()
	pg := h.post("/portal/signin", url.Values{"token": {goodToken}, "next": {"/portal/tenants"}})
	if pg.Status != http.StatusSeeOther {
		h.t.Fatalf("sign in: %d\n%s", pg.Status, pg.Body)
	}
	list := h.get("/portal/tenants")
	const marker = `name="csrf" value="`
	i := strings.Index(list.Body, marker)
	if i < 0 {
		h.t.Fatalf("no CSRF token in the customers page:\n%s", list.Body)
	}
	rest := list.Body[i+len(marker):]
	h.csrf = rest[:strings.IndexByte(rest, '"')]
}
