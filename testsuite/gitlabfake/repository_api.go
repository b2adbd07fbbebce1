package gitlabfake

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
)

// Entities as lib/api/entities/*.rb present them, reduced to the
// attributes that have a meaning in the fake.

// projectEntity is Entities::ProjectWithAccess, less permissions. Callers
// hold s.mu.
func (s *Server) projectEntity(p *Project) map[string]any {
	ns := p.namespace()
	nsName := ns[strings.LastIndex(ns, "/")+1:]
	var defaultBranch any
	if p.defaultBranch != "" {
		defaultBranch = p.defaultBranch
	}
	nsID := p.ID
	for _, o := range s.projects { // the namespace's id: that of its first project's, offset
		if o.namespace() == ns {
			nsID = o.ID
			break
		}
	}
	u, _ := url.Parse(s.URL)
	return map[string]any{
		"id":                  p.ID,
		"description":         "",
		"name":                p.Name(),
		"name_with_namespace": strings.ReplaceAll(ns, "/", " / ") + " / " + p.Name(),
		"path":                p.Name(),
		"path_with_namespace": p.Path,
		"created_at":          p.created.Format(recordTime),
		"default_branch":      defaultBranch,
		"tag_list":            []string{},
		"topics":              []string{},
		"ssh_url_to_repo":     "git@" + u.Hostname() + ":" + p.Path + ".git",
		"http_url_to_repo":    p.webURL() + ".git",
		"web_url":             p.webURL(),
		"readme_url":          nil,
		"avatar_url":          nil,
		"forks_count":         0,
		"star_count":          0,
		"last_activity_at":    p.created.Format(recordTime),
		"namespace": map[string]any{
			"id": nsID + 100, "name": nsName, "path": nsName, "kind": "group", "full_path": ns,
			"parent_id": nil, "avatar_url": nil, "web_url": s.URL + "/groups/" + ns,
		},
		"visibility":     "private",
		"empty_repo":     len(p.commits) == 0,
		"archived":       false,
		"creator_id":     7,
		"import_url":     nil,
		"ci_config_path": nil,
	}
}

// commitEntity is Entities::Commit.
func commitEntity(p *Project, c *commit) map[string]any {
	when := c.when.Format(gitTime)
	parents := append([]string{}, c.parents...)
	return map[string]any{
		"id":                c.sha,
		"short_id":          c.sha[:8],
		"created_at":        when,
		"parent_ids":        parents,
		"title":             c.title(),
		"message":           c.message,
		"author_name":       AuthorName,
		"author_email":      AuthorEmail,
		"authored_date":     when,
		"committer_name":    AuthorName,
		"committer_email":   AuthorEmail,
		"committed_date":    when,
		"trailers":          map[string]string{},
		"extended_trailers": map[string]string{},
		"web_url":           p.webURL() + "/-/commit/" + c.sha,
	}
}

// commitDetailEntity is Entities::CommitDetail (GET .../commits/:sha).
func commitDetailEntity(p *Project, c *commit) map[string]any {
	e := commitEntity(p, c)
	var parent map[string][]byte
	if len(c.parents) > 0 {
		parent = p.commits[c.parents[0]].files
	}
	add, del := diffStat(parent, c.files)
	e["stats"] = map[string]int{"additions": add, "deletions": del, "total": add + del}
	e["status"] = nil
	e["project_id"] = p.ID
	e["last_pipeline"] = nil
	return e
}

func (s *Server) getProject(q *request, p *Project) {
	s.mu.Lock()
	e := s.projectEntity(p)
	s.mu.Unlock()
	writeJSON(q.w, http.StatusOK, e)
}

func (s *Server) getBranch(q *request, p *Project, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := p.branches[name]
	if !ok {
		notFound(q.w, "Branch")
		return
	}
	isDefault := name == p.defaultBranch
	writeJSON(q.w, http.StatusOK, map[string]any{
		"name":                 name,
		"commit":               commitEntity(p, p.commits[sha]),
		"merged":               false,
		"protected":            isDefault, // GitLab protects the default branch
		"developers_can_push":  false,
		"developers_can_merge": false,
		"can_push":             true,
		"default":              isDefault,
		"web_url":              p.webURL() + "/-/tree/" + name,
	})
}

func (s *Server) getTag(q *request, p *Project, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := p.tags[name]
	if !ok {
		notFound(q.w, "Tag")
		return
	}
	writeJSON(q.w, http.StatusOK, map[string]any{
		"name":       name,
		"message":    "",
		"target":     sha, // a lightweight tag targets the commit itself
		"commit":     commitEntity(p, p.commits[sha]),
		"release":    nil,
		"protected":  false,
		"created_at": nil, // lightweight tags have no tagger date
	})
}

func (s *Server) getCommit(q *request, p *Project, rev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := p.resolve(rev)
	if c == nil {
		notFound(q.w, "Commit")
		return
	}
	writeJSON(q.w, http.StatusOK, commitDetailEntity(p, c))
}

// diffStat counts added and deleted lines between two trees, as git's
// --numstat does (a line diff of each changed file).
func diffStat(from, to map[string][]byte) (add, del int) {
	for path, content := range to {
		a, d := lineDiff(from[path], content)
		add += a
		del += d
	}
	for path, content := range from {
		if _, ok := to[path]; !ok {
			_, d := lineDiff(content, nil)
			del += d
		}
	}
	return add, del
}

func lines(b []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

// lineDiff counts the lines only in b (added) and only in a (deleted)
// through a longest common subsequence; large files count as rewritten.
func lineDiff(a, b []byte) (add, del int) {
	la, lb := lines(a), lines(b)
	if len(la)*len(lb) > 4_000_000 {
		return len(lb), len(la)
	}
	prev := make([]int, len(lb)+1)
	cur := make([]int, len(lb)+1)
	for i := 1; i <= len(la); i++ {
		for j := 1; j <= len(lb); j++ {
			switch {
			case bytes.Equal(bytes.TrimSuffix(la[i-1], []byte("\n")), bytes.TrimSuffix(lb[j-1], []byte("\n"))):
				cur[j] = prev[j-1] + 1
			case prev[j] >= cur[j-1]:
				cur[j] = prev[j]
			default:
				cur[j] = cur[j-1]
			}
		}
		prev, cur = cur, prev
	}
	common := prev[len(lb)]
	return len(lb) - common, len(la) - common
}
