package gitlabfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Status is one external commit status (a GenericCommitStatus job of an
// external pipeline in GitLab).
type Status struct {
	ID          int64
	SHA         string
	Ref         string
	Name        string
	State       string // created, pending, running, success, failed, canceled, skipped
	TargetURL   string
	Description string
	Coverage    *float64
	PipelineID  int64
	// Retried is set when a newer status of the same name in the same
	// pipeline replaced this one; GitLab lists only the others by default.
	Retried    bool
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// pipeline is the external pipeline statuses hang on, one per SHA and ref.
type pipeline struct {
	id       int64
	sha, ref string
}

// transitions is CommitStatus's state machine (app/models/commit_status.rb):
// for each API state, the event fired and the states it leaves from.
// "running" first fires a soft enqueue (created → pending) then run.
var transitions = map[string]struct {
	event string
	from  []string
	to    string
}{
	"pending":  {"enqueue", []string{"created", "skipped", "manual", "scheduled"}, "pending"},
	"running":  {"run", []string{"pending"}, "running"},
	"success":  {"success", []string{"created", "waiting_for_resource", "preparing", "pending", "running"}, "success"},
	"failed":   {"drop", []string{"created", "waiting_for_resource", "preparing", "pending", "running", "scheduled"}, "failed"},
	"canceled": {"cancel", []string{"created", "waiting_for_resource", "preparing", "pending", "running", "manual", "scheduled"}, "canceled"},
	"skipped":  {"skip", []string{"created", "waiting_for_resource", "preparing", "pending"}, "skipped"},
}

// apiStates are the values POST .../statuses/:sha accepts, in GitLab's order.
var apiStates = []string{"pending", "running", "success", "failed", "canceled", "skipped"}

// postStatus is POST /projects/:id/statuses/:sha as
// Ci::CreateCommitStatusService runs it: find the newest pipeline of the
// SHA (and ref) or create one, find a pending or running status of that
// name and ref in it or build a new one, fire the state's event, and mark
// older statuses of the name retried.
func (s *Server) postStatus(q *request, p *Project, shaParam string) {
	params, err := requestParams(q.r)
	if err != nil {
		writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	state, ok := params["state"]
	switch {
	case !ok:
		writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": "state is missing"})
		return
	case !slices.Contains(apiStates, state):
		writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": "state does not have a valid value"})
		return
	}
	var coverage *float64
	if v, ok := params["coverage"]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": "coverage is invalid"})
			return
		}
		coverage = &f
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c := p.resolve(shaParam)
	if c == nil {
		notFound(q.w, "Commit")
		return
	}
	ref, refGiven := params["ref"]
	var pipe *pipeline
	for i := len(p.pipelines) - 1; i >= 0; i-- { // newest first
		if pl := p.pipelines[i]; pl.sha == c.sha && (!refGiven || pl.ref == ref) {
			pipe = pl
			break
		}
	}
	if !refGiven {
		if pipe != nil {
			ref = pipe.ref
		} else if branches := p.branchesContaining(c.sha); len(branches) > 0 {
			ref = branches[0]
		}
	}
	if ref == "" {
		notFound(q.w, "References for commit")
		return
	}
	if pipe == nil {
		s.nextPipe++
		pipe = &pipeline{id: s.nextPipe, sha: c.sha, ref: ref}
		p.pipelines = append(p.pipelines, pipe)
	}
	name := params["name"]
	if name == "" {
		name = params["context"]
	}
	if name == "" {
		name = "default"
	}

	var existing *Status
	for _, st := range p.statuses {
		if st.PipelineID == pipe.id && st.Ref == ref && st.Name == name && !st.Retried &&
			(st.State == "pending" || st.State == "running") {
			existing = st
		}
	}
	now := time.Now().UTC()
	st := Status{SHA: c.sha, Ref: ref, Name: name, State: "created", PipelineID: pipe.id, CreatedAt: now}
	if existing != nil {
		st = *existing
	}
	if v, ok := params["target_url"]; ok {
		st.TargetURL = v
	}
	if v, ok := params["description"]; ok {
		st.Description = v
	}
	if coverage != nil {
		st.Coverage = coverage
	}
	if msgs := validTargetURL(st.TargetURL); len(msgs) > 0 {
		writeJSON(q.w, http.StatusBadRequest, map[string]any{"message": map[string]any{"target_url": msgs}})
		return
	}

	tr := transitions[state]
	if state == "running" && slices.Contains(transitions["pending"].from, st.State) {
		st.State = "pending" // the soft enqueue
	}
	if !slices.Contains(tr.from, st.State) {
		writeJSON(q.w, http.StatusBadRequest, map[string]any{"message": fmt.Sprintf(
			"Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via \"%s\")",
			tr.event, st.State, tr.event)})
		return
	}
	st.State = tr.to
	switch tr.to {
	case "running":
		st.StartedAt = &now
	case "success", "failed", "canceled":
		st.FinishedAt = &now
	}
	if existing != nil {
		*existing = st
	} else {
		s.nextStatus++
		st.ID = s.nextStatus
		existing = &st
		p.statuses = append(p.statuses, existing)
	}
	for _, other := range p.statuses { // Ci::Processable#update_older_statuses_retried!
		if other.PipelineID == pipe.id && other.Name == name && other.ID != existing.ID {
			other.Retried = true
		}
	}
	writeJSON(q.w, http.StatusCreated, s.statusEntity(existing))
}

// validTargetURL is GenericCommitStatus's target_url validation.
func validTargetURL(v string) []string {
	if v == "" {
		return nil
	}
	var msgs []string
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		msgs = append(msgs, "is blocked: Only allowed schemes are http, https")
	}
	if len([]rune(v)) > 255 {
		msgs = append(msgs, "is too long (maximum is 255 characters)")
	}
	return msgs
}

// listStatuses is GET /projects/:id/repository/commits/:sha/statuses.
// Like GitLab it matches pipelines on the sha parameter as given, so an
// abbreviated SHA lists nothing.
func (s *Server) listStatuses(q *request, p *Project, sha string) {
	params := q.r.URL.Query()
	orderBy, sortDir := "id", "asc"
	if v := params.Get("order_by"); v != "" {
		if v != "id" && v != "pipeline_id" {
			writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": "order_by does not have a valid value"})
			return
		}
		orderBy = v
	}
	if v := params.Get("sort"); v != "" {
		if v != "asc" && v != "desc" {
			writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": "sort does not have a valid value"})
			return
		}
		sortDir = v
	}
	all := false
	if v := params.Get("all"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": "all is invalid"})
			return
		}
		all = b
	}
	var pipelineID int64
	if v := params.Get("pipeline_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": "pipeline_id is invalid"})
			return
		}
		pipelineID = n
	}
	page, perPage, ok := pagination(q, params)
	if !ok {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if p.resolve(sha) == nil {
		notFound(q.w, "Commit")
		return
	}
	var list []*Status
	for _, st := range p.statuses {
		switch {
		case st.SHA != sha,
			!all && st.Retried,
			params.Get("ref") != "" && st.Ref != params.Get("ref"),
			params.Get("name") != "" && st.Name != params.Get("name"),
			params.Get("stage") != "" && params.Get("stage") != "external",
			pipelineID != 0 && st.PipelineID != pipelineID:
			continue
		}
		list = append(list, st)
	}
	slices.SortStableFunc(list, func(a, b *Status) int {
		x, y := a.ID, b.ID
		if orderBy == "pipeline_id" {
			x, y = a.PipelineID, b.PipelineID
		}
		if sortDir == "desc" {
			x, y = y, x
		}
		return int(x - y)
	})
	out := []map[string]any{}
	for _, st := range paginate(q.w, list, page, perPage) {
		out = append(out, s.statusEntity(st))
	}
	writeJSON(q.w, http.StatusOK, out)
}

// statusEntity is Entities::CommitStatus.
func (s *Server) statusEntity(st *Status) map[string]any {
	var coverage any
	if st.Coverage != nil {
		coverage = *st.Coverage
	}
	nilIfEmpty := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	return map[string]any{
		"id":            st.ID,
		"sha":           st.SHA,
		"ref":           st.Ref,
		"status":        st.State,
		"name":          st.Name,
		"target_url":    nilIfEmpty(st.TargetURL),
		"description":   nilIfEmpty(st.Description),
		"created_at":    st.CreatedAt.Format(recordTime),
		"started_at":    timeOrNil(st.StartedAt),
		"finished_at":   timeOrNil(st.FinishedAt),
		"allow_failure": false,
		"coverage":      coverage,
		"pipeline_id":   st.PipelineID,
		"author":        s.user(),
	}
}

// pagination reads GitLab's offset pagination parameters.
func pagination(q *request, params url.Values) (page, perPage int, ok bool) {
	page, perPage = 1, 20
	for _, p := range []struct {
		name string
		v    *int
	}{{"page", &page}, {"per_page", &perPage}} {
		if s := params.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": p.name + " is invalid"})
				return 0, 0, false
			}
			*p.v = n
		}
	}
	page = max(page, 1)
	if perPage < 1 || perPage > 100 {
		perPage = min(max(perPage, 1), 100)
	}
	return page, perPage, true
}

// paginate returns one page and sets GitLab's pagination headers.
func paginate[T any](w http.ResponseWriter, list []T, page, perPage int) []T {
	total := len(list)
	pages := max((total+perPage-1)/perPage, 1)
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Next-Page", "")
	h.Set("X-Prev-Page", "")
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
	}
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
	}
	start := min((page-1)*perPage, total)
	return list[start:min(start+perPage, total)]
}

// requestParams merges, as Grape does, the query string and the body
// (JSON, form or multipart).
func requestParams(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out[k] = v[len(v)-1]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var body map[string]any
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, fmt.Errorf("400 Bad request - invalid JSON body: %w", err)
		}
		for k, v := range body {
			switch v := v.(type) {
			case nil:
			case string:
				out[k] = v
			case json.Number:
				out[k] = v.String()
			case bool:
				out[k] = strconv.FormatBool(v)
			default:
				return nil, fmt.Errorf("%s is invalid", k)
			}
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			return nil, fmt.Errorf("400 Bad request - %w", err)
		}
		for k, v := range r.PostForm {
			out[k] = v[len(v)-1]
		}
	}
	return out, nil
}
