package gitlabfake

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Webhook request header and its values for the events built here.
const (
	EventHeader  = "X-Gitlab-Event"
	PushHook     = "Push Hook"
	TagPushHook  = "Tag Push Hook"
	pushLimit    = 20 // commits listed in a push event, the newest ones
	privateLevel = 0  // visibility_level of a private project
)

// hookProject is Project#hook_attrs (with the backward-compatible keys).
type hookProject struct {
	ID                int64   `json:"id"`
	Name              string  `json:"name"`
	Description       string  `json:"description"`
	WebURL            string  `json:"web_url"`
	AvatarURL         *string `json:"avatar_url"`
	GitSSHURL         string  `json:"git_ssh_url"`
	GitHTTPURL        string  `json:"git_http_url"`
	Namespace         string  `json:"namespace"`
	VisibilityLevel   int     `json:"visibility_level"`
	PathWithNamespace string  `json:"path_with_namespace"`
	DefaultBranch     *string `json:"default_branch"`
	CIConfigPath      *string `json:"ci_config_path"`
	Homepage          string  `json:"homepage"`
	URL               string  `json:"url"`
	SSHURL            string  `json:"ssh_url"`
	HTTPURL           string  `json:"http_url"`
}

// hookRepository is the deprecated "repository" slice of hook_attrs.
type hookRepository struct {
	Name            string `json:"name"`
	URL             string `json:"url"`
	Description     string `json:"description"`
	Homepage        string `json:"homepage"`
	GitHTTPURL      string `json:"git_http_url"`
	GitSSHURL       string `json:"git_ssh_url"`
	VisibilityLevel int    `json:"visibility_level"`
}

// hookCommit is Commit#hook_attrs(with_changed_files: true).
type hookCommit struct {
	ID        string     `json:"id"`
	Message   string     `json:"message"`
	Title     string     `json:"title"`
	Timestamp string     `json:"timestamp"`
	URL       string     `json:"url"`
	Author    hookAuthor `json:"author"`
	Added     []string   `json:"added"`
	Modified  []string   `json:"modified"`
	Removed   []string   `json:"removed"`
}

type hookAuthor struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// pushData is what Gitlab::DataBuilder::Push.build returns, in its order.
type pushData struct {
	ObjectKind        string         `json:"object_kind"`
	EventName         string         `json:"event_name"`
	Before            string         `json:"before"`
	After             string         `json:"after"`
	Ref               string         `json:"ref"`
	RefProtected      bool           `json:"ref_protected"`
	CheckoutSHA       *string        `json:"checkout_sha"`
	Message           *string        `json:"message"`
	UserID            int64          `json:"user_id"`
	UserName          string         `json:"user_name"`
	UserUsername      string         `json:"user_username"`
	UserEmail         *string        `json:"user_email"`
	UserAvatar        *string        `json:"user_avatar"`
	ProjectID         int64          `json:"project_id"`
	Project           hookProject    `json:"project"`
	Commits           []hookCommit   `json:"commits"`
	TotalCommitsCount int            `json:"total_commits_count"`
	PushOptions       struct{}       `json:"push_options"`
	Repository        hookRepository `json:"repository"`
}

// PushEvent is the payload GitLab posts (header X-Gitlab-Event: Push
// Hook) when branch moves from before to after: before is ZeroSHA (or "")
// for a new branch, after is ZeroSHA for a deleted one. It lists, oldest
// first, the newest 20 of the commits the push brought (for a new branch,
// those the default branch does not have; all of them for the default
// branch itself), with the files each added, modified and removed.
func (s *Server) PushEvent(project *Project, branch, before, after string) []byte {
	p := s.own(project)
	s.mu.Lock()
	defer s.mu.Unlock()
	if before == "" {
		before = ZeroSHA
	}
	var commits []*commit
	total := 0
	if after != ZeroSHA {
		if c := p.resolve(after); c == nil || c.sha != after {
			s.t.Fatalf("gitlabfake: push event: %s is not a commit of %s", after, p.Path)
		}
		from := before
		if before == ZeroSHA && branch != p.defaultBranch {
			from = p.branches[p.defaultBranch]
		}
		commits = p.between(from, after)
		total = len(commits)
	}
	d := p.pushData("refs/heads/"+branch, before, after, commits, total)
	d.RefProtected = branch == p.defaultBranch // GitLab protects the default branch
	if after != ZeroSHA {
		d.CheckoutSHA = &after
	}
	return marshal(d)
}

// TagEvent is the payload GitLab posts (header X-Gitlab-Event: Tag Push
// Hook) when the lightweight tag name is pushed: after and checkout_sha
// are the tagged commit, which is the one commit listed.
func (s *Server) TagEvent(project *Project, tag string) []byte {
	p := s.own(project)
	s.mu.Lock()
	defer s.mu.Unlock()
	sha, ok := p.tags[tag]
	if !ok {
		s.t.Fatalf("gitlabfake: tag event: no tag %s in %s", tag, p.Path)
	}
	d := p.pushData("refs/tags/"+tag, ZeroSHA, sha, []*commit{p.commits[sha]}, 1)
	d.CheckoutSHA = &sha
	empty := ""
	d.Message = &empty // a lightweight tag has no message
	return marshal(d)
}

// own checks project belongs to s.
func (s *Server) own(project *Project) *Project {
	s.t.Helper()
	if project == nil || project.s != s {
		s.t.Fatalf("gitlabfake: project of another server")
	}
	return project
}

func (p *Project) pushData(ref, before, after string, commits []*commit, total int) pushData {
	kind := "push"
	if strings.HasPrefix(ref, "refs/tags/") {
		kind = "tag_push"
	}
	if len(commits) > pushLimit {
		commits = commits[len(commits)-pushLimit:]
	}
	u, _ := url.Parse(p.s.URL)
	ssh := "git@" + u.Hostname() + ":" + p.Path + ".git"
	web := p.webURL()
	var defaultBranch *string
	if p.defaultBranch != "" {
		b := p.defaultBranch
		defaultBranch = &b
	}
	ns := p.namespace()
	d := pushData{
		ObjectKind: kind, EventName: kind, Before: before, After: after, Ref: ref,
		UserID: 7, UserName: "Tenantflow Bot", UserUsername: "tenantflow-bot",
		ProjectID: p.ID,
		Project: hookProject{
			ID: p.ID, Name: p.Name(), WebURL: web, GitSSHURL: ssh, GitHTTPURL: web + ".git",
			Namespace: ns[strings.LastIndex(ns, "/")+1:], VisibilityLevel: privateLevel,
			PathWithNamespace: p.Path, DefaultBranch: defaultBranch,
			Homepage: web, URL: ssh, SSHURL: ssh, HTTPURL: web + ".git",
		},
		Commits:           []hookCommit{},
		TotalCommitsCount: total,
		Repository: hookRepository{
			Name: p.Name(), URL: ssh, Homepage: web, GitHTTPURL: web + ".git", GitSSHURL: ssh,
			VisibilityLevel: privateLevel,
		},
	}
	for _, c := range commits {
		d.Commits = append(d.Commits, hookCommit{
			ID: c.sha, Message: c.message, Title: c.title(), Timestamp: c.when.Format("2006-01-02T15:04:05-07:00"),
			URL: web + "/-/commit/" + c.sha, Author: hookAuthor{Name: AuthorName, Email: AuthorEmail},
			Added: nonNil(c.added), Modified: nonNil(c.modified), Removed: nonNil(c.removed),
		})
	}
	return d
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func marshal(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // plain structs of strings and numbers
	}
	return b
}
