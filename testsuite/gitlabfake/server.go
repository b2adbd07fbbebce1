// Package gitlabfake is an in-memory GitLab REST API (v4) for tests on
// machines where GitLab cannot run: projects with real git commits
// (SHAs are the ones git computes), branches, lightweight tags, repository
// archives (a real tar.gz laid out like GitLab's), external commit
// statuses with GitLab's state machine, and webhook payloads for pushes
// and tags.
//
// It follows GitLab's own code (lib/api/*.rb, Ci::CreateCommitStatusService,
// CommitStatus's state machine, Gitlab::DataBuilder::Push) rather than
// guessing: the same routes and path escaping (":id" is a numeric id or
// the URL-encoded path "group%2Fapp"; a literal slash is another route),
// the same messages ("404 Project Not Found", "Cannot transition status
// via :run from :running (...)"), the same authentication answers (401
// for a bad token, 404 for a private project seen without one, 403
// insufficient_scope for a read-only token that writes).
package gitlabfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// APIPath is where the REST API lives below the server's URL.
const APIPath = "/api/v4"

// Version is what GET /version reports.
const Version = "18.0.0-gitlabfake"

// Server is a fake GitLab. URL is its base URL, what a GitLab client is
// configured with (the API being URL+APIPath).
type Server struct {
	URL string

	t        testing.TB
	srv      *httptest.Server
	token    string
	readOnly map[string]bool

	mu          sync.Mutex
	projects    []*Project // by ID-1
	commitCount int
	nextStatus  int64
	nextPipe    int64
	down        bool
	archiveGate chan struct{}
	calls       []Call
}

// Call is one request the server received, for assertions on what a
// client did (and how often).
type Call struct {
	Method string
	Path   string // escaped, as sent: /api/v4/projects/group%2Fapp
	Query  string
	Status int // the status answered
}

// user is the token's owner, the author of the statuses it posts.
func (s *Server) user() map[string]any {
	return map[string]any{
		"id": 7, "username": "tenantflow-bot", "name": "Tenantflow Bot", "state": "active", "locked": false,
		"avatar_url": nil, "public_email": nil, "bot": true, "web_url": s.URL + "/tenantflow-bot",
	}
}

// New starts a fake GitLab accepting one personal access token with the
// api scope, stopped when the test ends.
func New(t testing.TB, token string) *Server {
	t.Helper()
	s := &Server{t: t, token: token, readOnly: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// AddReadOnlyToken accepts token with the read_api scope only: reads
// work, writes answer 403 insufficient_scope as GitLab does.
func (s *Server) AddReadOnlyToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readOnly[token] = true
}

// AddProject creates an empty private project at path ("group/app" or
// "group/sub/app") and returns it; add commits with Project.Commit.
func (s *Server) AddProject(path string) *Project {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.Contains(path, "/") || !validPath(path) {
		s.t.Fatalf("gitlabfake: project path %q must be namespace/name", path)
	}
	for _, p := range s.projects {
		if strings.EqualFold(p.Path, path) {
			s.t.Fatalf("gitlabfake: project %s exists", path)
		}
	}
	p := &Project{
		ID: int64(len(s.projects) + 1), Path: path, s: s, created: epoch.Add(-time.Hour),
		branches: map[string]string{}, tags: map[string]string{}, commits: map[string]*commit{},
	}
	s.projects = append(s.projects, p)
	return p
}

// SetDown makes the front web server answer 503 with an HTML page, as
// during an outage or an upgrade of GitLab.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// PauseArchives makes archive downloads send their headers and first
// bytes, then wait until resume is called, to prove a client streams.
func (s *Server) PauseArchives() (resume func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate := make(chan struct{})
	s.archiveGate = gate
	var once sync.Once
	return func() {
		once.Do(func() {
			close(gate)
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.archiveGate == gate {
				s.archiveGate = nil
			}
		})
	}
}

// Calls returns the requests received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Statuses returns every commit status posted on sha (a full SHA) of
// project, by id, including those GitLab marks retried (older statuses
// of the same name that a newer one replaced).
func (s *Server) Statuses(project *Project, sha string) []Status {
	s.own(project)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, st := range project.statuses {
		if st.SHA == sha {
			out = append(out, *st)
		}
	}
	return out
}

// recorder remembers the status answered, and lets archives flush.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// request is one API request being served.
type request struct {
	w       *recorder
	r       *http.Request
	segs    []string // decoded path segments below /api/v4
	token   string   // "" when none was sent
	canRead bool
	canPost bool
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Status: rec.status})
		s.mu.Unlock()
	}()
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		rec.Header().Set("Content-Type", "text/html; charset=utf-8")
		rec.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(rec, "<!DOCTYPE html>\n<html><head><title>GitLab is not responding (503)</title></head>"+
			"<body><h1>503</h1><p>GitLab is not responding.</p></body></html>\n")
		return
	}
	raw, ok := strings.CutPrefix(r.URL.EscapedPath(), APIPath+"/")
	if !ok {
		writeJSON(rec, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
		return
	}
	segs := strings.Split(raw, "/")
	for i, seg := range segs {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			writeJSON(rec, http.StatusBadRequest, map[string]any{"error": "400 Bad request - invalid URL encoding"})
			return
		}
		segs[i] = dec
	}
	q := &request{w: rec, r: r, segs: segs, token: requestToken(r)}
	if q.token != "" {
		s.mu.Lock()
		q.canRead = q.token == s.token || s.readOnly[q.token]
		q.canPost = q.token == s.token
		s.mu.Unlock()
		if !q.canRead {
			writeJSON(rec, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
			return
		}
	}
	s.route(q)
}

// requestToken reads a token the ways GitLab accepts one.
func requestToken(r *http.Request) string {
	if t := r.Header.Get("PRIVATE-TOKEN"); t != "" {
		return t
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	if t := r.URL.Query().Get("private_token"); t != "" {
		return t
	}
	return r.URL.Query().Get("access_token")
}

func (s *Server) route(q *request) {
	segs := q.segs
	switch {
	case len(segs) == 1 && segs[0] == "version":
		if q.get() && q.authenticated() {
			writeJSON(q.w, http.StatusOK, map[string]any{"version": Version, "revision": "gitlabfake"})
		}
	case len(segs) == 1 && segs[0] == "user":
		if q.get() && q.authenticated() {
			writeJSON(q.w, http.StatusOK, s.user())
		}
	case len(segs) >= 2 && segs[0] == "projects":
		s.routeProject(q, segs[1], segs[2:])
	default:
		notFoundRoute(q.w)
	}
}

func (s *Server) routeProject(q *request, id string, rest []string) {
	// Which handler, before the project is looked up: GitLab matches the
	// route first (an unknown route is 404 Not Found whatever the id).
	var handle func(*Project)
	method := http.MethodGet
	strict := false // routes whose `before { authenticate! }` answers 401 without a token
	switch {
	case len(rest) == 0:
		handle = func(p *Project) { s.getProject(q, p) }
	case len(rest) == 3 && rest[0] == "repository" && rest[1] == "branches":
		handle = func(p *Project) { s.getBranch(q, p, rest[2]) }
	case len(rest) == 3 && rest[0] == "repository" && rest[1] == "tags":
		handle = func(p *Project) { s.getTag(q, p, rest[2]) }
	case len(rest) == 3 && rest[0] == "repository" && rest[1] == "commits":
		handle = func(p *Project) { s.getCommit(q, p, rest[2]) }
	case len(rest) == 4 && rest[0] == "repository" && rest[1] == "commits" && rest[3] == "statuses":
		strict = true
		handle = func(p *Project) { s.listStatuses(q, p, rest[2]) }
	case len(rest) == 2 && rest[0] == "repository" && (rest[1] == "archive" || strings.HasPrefix(rest[1], "archive.")):
		format := strings.TrimPrefix(strings.TrimPrefix(rest[1], "archive"), ".")
		handle = func(p *Project) { s.archive(q, p, format) }
	case len(rest) == 2 && rest[0] == "statuses":
		method, strict = http.MethodPost, true
		handle = func(p *Project) { s.postStatus(q, p, rest[1]) }
	default:
		notFoundRoute(q.w)
		return
	}
	if q.r.Method != method && (method != http.MethodGet || q.r.Method != http.MethodHead) {
		writeJSON(q.w, http.StatusMethodNotAllowed, map[string]any{"error": "405 Not Allowed"})
		return
	}
	if strict && !q.authenticated() {
		return
	}
	if method == http.MethodPost && !q.canPost {
		writeJSON(q.w, http.StatusForbidden, map[string]any{
			"error":             "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.",
			"scope":             "api",
		})
		return
	}
	s.mu.Lock()
	p := s.project(id)
	s.mu.Unlock()
	// Every project of the fake is private: without a token it is not
	// found, as GitLab hides private projects from anonymous users.
	if p == nil || !q.canRead {
		notFound(q.w, "Project")
		return
	}
	handle(p)
}

// project finds a project by numeric id or full path (case-insensitive,
// as GitLab's routes are). Callers hold s.mu.
func (s *Server) project(id string) *Project {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		if n >= 1 && n <= int64(len(s.projects)) {
			return s.projects[n-1]
		}
		return nil
	}
	for _, p := range s.projects {
		if strings.EqualFold(p.Path, id) {
			return p
		}
	}
	return nil
}

func (q *request) get() bool {
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead {
		writeJSON(q.w, http.StatusMethodNotAllowed, map[string]any{"error": "405 Not Allowed"})
		return false
	}
	return true
}

func (q *request) authenticated() bool {
	if q.token == "" {
		writeJSON(q.w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
		return false
	}
	return true
}

func notFound(w http.ResponseWriter, what string) {
	writeJSON(w, http.StatusNotFound, map[string]any{"message": "404 " + what + " Not Found"})
}

func notFoundRoute(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message":"500 Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// GitLab's timestamp formats: commits carry their offset, records are UTC.
const (
	gitTime    = "2006-01-02T15:04:05.000-07:00"
	recordTime = "2006-01-02T15:04:05.000Z07:00"
)

func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(recordTime)
}
