package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tokens of the fake API and the roles they stand for.
const (
	opsToken       = "ops-token-0123456789"
	developerToken = "developer-token-0123456789"
)

// fakeAPI answers like Tenantflow's REST API, route by route as a test
// sets them, with bodies made from the workflows' own types; it checks the
// bearer token and records every request.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc // "GET /v1/tenants/acme"
	log    []recorded
}

// recorded is one request the fake received.
type recorded struct {
	method, path, query, role, idempotencyKey string
	body                                      map[string]any
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, routes: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	role := map[string]string{"Bearer " + opsToken: "ops", "Bearer " + developerToken: "developer"}[r.Header.Get("Authorization")]
	rec := recorded{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, role: role, idempotencyKey: r.Header.Get("Idempotency-Key")}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &rec.body); err != nil {
			f.t.Errorf("%s %s: body is not JSON: %s", r.Method, r.URL, b)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s %s: Content-Type %q", r.Method, r.URL, ct)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(nil))
	f.mu.Lock()
	f.log = append(f.log, rec)
	h := f.routes[r.Method+" "+r.URL.EscapedPath()]
	f.mu.Unlock()
	switch {
	case role == "":
		reply(w, http.StatusUnauthorized, map[string]string{"error": "missing or invalid bearer token"})
	case h == nil:
		reply(w, http.StatusNotFound, map[string]string{"error": "no route " + r.Method + " " + r.URL.Path})
	default:
		h(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
	}
}

type roleKey struct{}

func roleOf(r *http.Request) string { s, _ := r.Context().Value(roleKey{}).(string); return s }

// on sets the handler of "METHOD /path".
func (f *fakeAPI) on(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = h
}

// requests lists what was received on route ("" for all).
func (f *fakeAPI) requests(route string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.log {
		if route == "" || r.method+" "+r.path == route {
			out = append(out, r)
		}
	}
	return out
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// answer always answers status with v.
func answer(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { reply(w, status, v) }
}

// sequence answers each of vs in turn, then the last again and again: an
// operation moving on between polls.
func sequence(vs ...any) http.HandlerFunc {
	var mu sync.Mutex
	i := 0
	return func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		v := vs[min(i, len(vs)-1)]
		i++
		mu.Unlock()
		if s, ok := v.(statusAnswer); ok {
			if s.retryAfter != "" {
				w.Header().Set("Retry-After", s.retryAfter)
			}
			reply(w, s.status, s.body)
			return
		}
		reply(w, http.StatusOK, v)
	}
}

// statusAnswer is an answer other than 200 in a sequence.
type statusAnswer struct {
	status     int
	body       any
	retryAfter string
}

// cliResult is what one run of the CLI did.
type cliResult struct {
	code     int
	out, err string
}

// cli runs the CLI against the fake with the ops token in the
// environment (env adds to or overrides it); tty makes it a terminal.
func (f *fakeAPI) cli(env map[string]string, tty bool, args ...string) cliResult {
	f.t.Helper()
	e := map[string]string{EnvAPIURL: f.srv.URL, EnvToken: opsToken, "HOME": f.t.TempDir(), envDataDir: f.t.TempDir()}
	for k, v := range env {
		e[k] = v
	}
	return runCLI(f.t, e, tty, args...)
}

func runCLI(t *testing.T, env map[string]string, tty bool, args ...string) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	a := newApp(IO{Out: &out, Err: &errOut, TTY: tty, Size: func() (int, int) { return 100, 30 },
		Getenv: func(k string) string { return env[k] }})
	a.pollEvery, a.retryWait = time.Millisecond, time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, a)
	return cliResult{code: code, out: out.String(), err: errOut.String()}
}

// lines splits output into its lines.
func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
