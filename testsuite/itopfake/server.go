// Package itopfake is an in-memory stand-in for iTop's REST/JSON API
// (<itop-root>/webservices/rest.php), for tests on machines where iTop cannot
// run. It follows rest.php and CoreServices as published by Combodo: always
// HTTP 200 with the outcome in {"code", "message", "objects"}, the same
// checks in the same order (credentials, version, json_data, operation), the
// same per-object result shapes ("Class::id" keys, string keys and ids,
// "objects": null when nothing matched), the same key forms (id, OQL,
// criteria object), external keys with their _friendlyname, output_fields
// and iTop's deletion plan (DEL_MANUAL dependants block a delete).
//
// What it does not do is refused loudly (code 100 with a message naming the
// fake) instead of being approximated, e.g. OQL beyond
// "SELECT <Class> WHERE <field> = <literal> [AND ...]".
package itopfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// Result codes of iTop's RestResult.
const (
	codeOK                 = 0
	codeUnauthorized       = 1
	codeMissingVersion     = 2
	codeMissingJSON        = 3
	codeInvalidJSON        = 4
	codeMissingAuthUser    = 5
	codeMissingAuthPwd     = 6
	codeUnsupportedVersion = 10
	codeUnknownOperation   = 11
	codeUnsafe             = 12
	codeInternalError      = 100
)

// RestPath is where iTop serves the REST API below its root URL.
const RestPath = "/webservices/rest.php"

// Server is a fake iTop. URL is its root, what an iTop client is configured
// with (the API is at URL+RestPath).
type Server struct {
	URL string

	t        testing.TB
	srv      *httptest.Server
	user     string
	password string

	mu       sync.Mutex
	classes  map[string]*classDef
	objects  map[string]map[int]map[string]string // class -> id -> writable attribute values
	nextID   map[string]int
	down     bool
	drop     bool
	failNext []injected
	calls    []Call
}

type injected struct {
	code int
	msg  string
}

// Call records one request that reached the API (not those refused while
// down), for assertions on what a client did.
type Call struct {
	Operation string // "" when the request was refused before json_data was read
	Class     string
	Auth      string // "form" (auth_user/auth_pwd), "basic" or "" (none)
	Code      int    // the result code answered
}

// Object is a stored object: its class, id and writable attribute values
// (external keys as ids, "0" when empty).
type Object struct {
	Class  string
	ID     string
	Fields map[string]string
}

// New starts a fake iTop accepting one REST user, stopped when the test ends.
func New(t testing.TB, user, password string) *Server {
	t.Helper()
	s := &Server{
		t:        t,
		user:     user,
		password: password,
		classes:  standardModel(),
		objects:  map[string]map[int]map[string]string{},
		nextID:   map[string]int{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// SetDown makes a fronting web server answer 503 with an HTML page, as
// during an outage or maintenance of iTop behind a proxy.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetDropConnections makes the server close every connection without
// answering, as when the host or the network fails mid-request.
func (s *Server) SetDropConnections(drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = drop
}

// FailNext makes the next request answer HTTP 200 {"code": code,
// "message": msg} without doing anything; several calls queue up.
func (s *Server) FailNext(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, injected{code: code, msg: msg})
}

// Calls returns the requests served so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Objects returns the stored objects of class, by increasing id.
func (s *Server) Objects(class string) []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Object
	for _, id := range s.ids(class) {
		out = append(out, s.export(class, id))
	}
	return out
}

// Object returns one stored object.
func (s *Server) Object(class, id string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := strconv.Atoi(id)
	if err != nil || s.objects[class][n] == nil {
		return Object{}, false
	}
	return s.export(class, n), true
}

// Seed creates an object directly, as someone using the iTop console would
// (fields are given as core/create would receive them, checks included),
// and returns its id. It fails the test if iTop would refuse the object.
func (s *Server) Seed(class string, fields map[string]any) string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := json.Marshal(fields)
	if err != nil {
		s.t.Fatalf("itopfake: seed %s: %v", class, err)
	}
	var f any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil {
		s.t.Fatalf("itopfake: seed %s: %v", class, err)
	}
	id, rerr := s.insert(class, f.(map[string]any))
	if rerr != nil {
		s.t.Fatalf("itopfake: seed %s: %s", class, rerr.msg)
	}
	return strconv.Itoa(id)
}

func (s *Server) export(class string, id int) Object {
	o := Object{Class: class, ID: strconv.Itoa(id), Fields: map[string]string{}}
	for k, v := range s.objects[class][id] {
		o.Fields[k] = v
	}
	return o
}

func (s *Server) ids(class string) []int {
	var ids []int
	for id := range s.objects[class] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != RestPath {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	down, drop := s.down, s.drop
	s.mu.Unlock()
	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if down {
		w.Header().Set("Content-Type", "text/html; charset=iso-8859-1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1></body></html>\n"))
		return
	}
	// rest.php reads its parameters from $_REQUEST: the query string and a
	// form-encoded or multipart body alike.
	if err := r.ParseMultipartForm(32 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		_ = r.ParseForm() // as in PHP: a body that does not parse leaves its parameters out
	}
	result := s.handle(r)
	body, err := json.Marshal(result)
	if err != nil {
		body, _ = json.Marshal(map[string]any{"code": codeInternalError, "message": "json encoding failed with message: " + err.Error()})
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if cb := r.FormValue("callback"); cb != "" {
		w.Header().Set("Content-Type", "application/javascript")
		w.Write([]byte(cb + "("))
		w.Write(body)
		w.Write([]byte(");"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// handle runs rest.php's main block: every failure is an answer, never an
// HTTP error.
func (s *Server) handle(r *http.Request) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{}
	result := s.run(r, &call)
	call.Code, _ = result["code"].(int)
	s.calls = append(s.calls, call)
	return result
}

func errorResult(e *restErr) map[string]any {
	return map[string]any{"code": e.code, "message": "Error: " + e.msg}
}

func (s *Server) run(r *http.Request, call *Call) map[string]any {
	if len(s.failNext) > 0 {
		f := s.failNext[0]
		s.failNext = s.failNext[1:]
		return map[string]any{"code": f.code, "message": f.msg}
	}
	if e := s.login(r, call); e != nil {
		return errorResult(e)
	}
	version := r.FormValue("version")
	if version == "" {
		return errorResult(&restErr{codeMissingVersion, "Missing parameter 'version' (e.g. '1.0')"})
	}
	jsonData := r.FormValue("json_data")
	if jsonData == "" {
		return errorResult(&restErr{codeMissingJSON, "Missing parameter 'json_data'"})
	}
	var data any
	dec := json.NewDecoder(bytes.NewReader([]byte(jsonData)))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil || dec.More() || phpFalsy(data) {
		return errorResult(&restErr{codeInvalidJSON, "Parameter json_data is not a valid JSON structure"})
	}
	if !slices.Contains([]string{"1.0", "1.1", "1.2", "1.3"}, version) {
		return errorResult(&restErr{codeUnsupportedVersion, "There is no service available for version '" + version + "'"})
	}
	params, _ := data.(map[string]any)
	op, ok := params["operation"].(string)
	if !ok {
		return errorResult(internal("Missing parameter 'operation'"))
	}
	call.Operation = op
	call.Class, _ = params["class"].(string)
	result, e := s.exec(version, op, params)
	if e != nil {
		return errorResult(e)
	}
	return result
}

// phpFalsy is what `json_decode(...) == null` is true for in rest.php.
func phpFalsy(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == "" || x == "0"
	case json.Number:
		f, _ := x.Float64()
		return f == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// login checks credentials the way iTop's login modes do for REST: the
// auth_user/auth_pwd parameters, or HTTP Basic authentication.
func (s *Server) login(r *http.Request, call *Call) *restErr {
	user, userSet := r.Form["auth_user"]
	pwd, pwdSet := r.Form["auth_pwd"]
	switch {
	case userSet && user[0] != "":
		call.Auth = "form"
		if !pwdSet {
			return &restErr{codeMissingAuthPwd, "Missing parameter 'auth_pwd'"}
		}
		if user[0] != s.user || pwd[0] != s.password {
			return &restErr{codeUnauthorized, "Invalid login"}
		}
		return nil
	default:
		u, p, ok := r.BasicAuth()
		if !ok {
			return &restErr{codeMissingAuthUser, "Missing parameter 'auth_user'"}
		}
		call.Auth = "basic"
		if u != s.user || p != s.password {
			return &restErr{codeUnauthorized, "Invalid login"}
		}
		return nil
	}
}
