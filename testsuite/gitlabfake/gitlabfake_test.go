package gitlabfake_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/tenantflow/tenantflow/testsuite/gitlabfake"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

const token = "glpat-fake-Tok3n"

var (
	v1 = map[string][]byte{
		"README.md":          []byte("# app\n"),
		"Dockerfile":         []byte("FROM scratch\nCOPY app /app\n"),
		"src/main.go":        []byte("package main\n\nfunc main() {}\n"),
		"src/lib/util.go":    []byte("package lib\n"),
		"src-extra/notes.md": []byte("sorts after src/ in git's tree order\n"),
		"empty":              {},
	}
	// v2 changes README.md, drops src/lib/util.go, adds docs/guide.md.
	v2 = map[string][]byte{
		"README.md":          []byte("# app\n\nNow with docs.\n"),
		"Dockerfile":         v1["Dockerfile"],
		"src/main.go":        v1["src/main.go"],
		"src-extra/notes.md": v1["src-extra/notes.md"],
		"empty":              nil,
		"docs/guide.md":      []byte("guide\n"),
	}
)

// call makes one raw API request and decodes the JSON answer.
func call(t *testing.T, method, rawURL, tok string, body url.Values) (int, map[string]any, []any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, rawURL, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if tok != "" {
		req.Header.Set("PRIVATE-TOKEN", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var obj map[string]any
	var list []any
	if json.Unmarshal(b, &obj) != nil {
		require.NoError(t, json.Unmarshal(b, &list), "body: %s", b)
	}
	return resp.StatusCode, obj, list
}

// gitRepo builds with the git binary the same history as the fake
// project, to compare SHAs and archives with what git itself makes.
func gitRepo(t *testing.T, commits ...map[string][]byte) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		harness.Unavailable(t, "git is not installed: the fake's SHAs and archives are compared with git's own")
	}
	dir := t.TempDir()
	git := func(env []string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	git(nil, "init", "-q", "-b", "main")
	for i, files := range commits {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, e := range entries {
			if e.Name() != ".git" {
				require.NoError(t, os.RemoveAll(filepath.Join(dir, e.Name())))
			}
		}
		for path, content := range files {
			full := filepath.Join(dir, path)
			require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
			require.NoError(t, os.WriteFile(full, content, 0o644))
		}
		date := time.Date(2026, 1, 2, 3, 4+i, 0, 0, time.UTC).Format(time.RFC3339)
		git(nil, "add", "-A")
		git([]string{
			"GIT_AUTHOR_NAME=" + gitlabfake.AuthorName, "GIT_AUTHOR_EMAIL=" + gitlabfake.AuthorEmail, "GIT_AUTHOR_DATE=" + date,
			"GIT_COMMITTER_NAME=" + gitlabfake.AuthorName, "GIT_COMMITTER_EMAIL=" + gitlabfake.AuthorEmail, "GIT_COMMITTER_DATE=" + date,
		}, "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", "commit "+string(rune('A'+i)))
	}
	return dir
}

func gitOutput(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	require.NoError(t, err, "git %v", args)
	return out
}

func TestCommitsAreRealGitCommits(t *testing.T) {
	s := gitlabfake.New(t, token)
	p := s.AddProject("group/app")
	a := p.Commit("main", v1, "commit A")
	b := p.Commit("main", v2, "commit B")
	dir := gitRepo(t, v1, v2)
	require.Equal(t, strings.TrimSpace(string(gitOutput(t, dir, "rev-parse", "HEAD~1"))), a, "same SHA as git")
	require.Equal(t, strings.TrimSpace(string(gitOutput(t, dir, "rev-parse", "HEAD"))), b)
	require.Equal(t, b, p.Head("main"))
	files := p.Files(b)
	require.NotContains(t, files, "src/lib/util.go", "a file left out is deleted")
	require.Equal(t, v2["README.md"], files["README.md"])
	require.Equal(t, []byte{}, files["empty"], "nil is an empty file")
	require.Len(t, files, len(v2))
}

func TestArchiveIsGitArchive(t *testing.T) {
	s := gitlabfake.New(t, token)
	p := s.AddProject("group/app")
	p.Commit("main", v1, "commit A")
	sha := p.Commit("main", v2, "commit B")
	dir := gitRepo(t, v1, v2)

	resp, err := http.Get(s.URL + "/api/v4/projects/group%2Fapp/repository/archive.tar.gz?sha=" + sha + "&private_token=" + token)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	prefix := "app-" + sha + "-" + sha
	require.Equal(t, `attachment; filename="`+prefix+`.tar.gz"`, resp.Header.Get("Content-Disposition"))
	gz, err := gzip.NewReader(resp.Body)
	require.NoError(t, err)
	got := tarEntries(t, gz)
	want := tarEntries(t, bytes.NewReader(gitOutput(t, dir, "archive", "--format=tar", "--prefix="+prefix+"/", sha)))
	require.Equal(t, want, got, "same entries, modes, dates and contents as git archive")
	require.Contains(t, got, "pax_global_header comment="+sha)

	// By branch name, the name is in the prefix; unknown revisions are 404.
	resp2, err := http.Get(s.URL + "/api/v4/projects/1/repository/archive?sha=main&private_token=" + token)
	require.NoError(t, err)
	resp2.Body.Close()
	require.Equal(t, `attachment; filename="app-main-`+sha+`.tar.gz"`, resp2.Header.Get("Content-Disposition"))
	code, obj, _ := call(t, http.MethodGet, s.URL+"/api/v4/projects/1/repository/archive.tar.gz?sha=deadbeef", token, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "404 File Not Found", obj["message"])
}

// tarEntries describes each entry: name, type, mode, date, owner and
// content (or pax global records).
func tarEntries(t *testing.T, r io.Reader) []string {
	t.Helper()
	tr := tar.NewReader(r)
	var out []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if h.Typeflag == tar.TypeXGlobalHeader {
			out = append(out, "pax_global_header comment="+h.PAXRecords["comment"])
			continue
		}
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, strings.Join([]string{
			h.Name, string(h.Typeflag), h.FileInfo().Mode().String(), h.ModTime.UTC().Format(time.RFC3339),
			h.Uname, h.Gname, string(b),
		}, " "))
	}
}

func TestRoutesAndEscaping(t *testing.T) {
	s := gitlabfake.New(t, token)
	p := s.AddProject("my.group/app")
	sha := p.Commit("main", v1, "commit A")
	p.Commit("feature/x", map[string][]byte{"f": []byte("x")}, "on a feature")
	p.Tag("v1.0", sha)
	api := s.URL + "/api/v4/projects/"

	for _, id := range []string{"1", "my.group%2Fapp", "my%2Egroup%2Fapp", "MY.GROUP%2FAPP"} {
		code, obj, _ := call(t, http.MethodGet, api+id, token, nil)
		require.Equal(t, http.StatusOK, code, id)
		require.Equal(t, "my.group/app", obj["path_with_namespace"])
		require.Equal(t, "main", obj["default_branch"])
	}
	code, obj, _ := call(t, http.MethodGet, api+"my.group/app", token, nil)
	require.Equal(t, http.StatusNotFound, code, "a literal slash is another route, as in GitLab")
	require.Equal(t, "404 Not Found", obj["error"])
	code, obj, _ = call(t, http.MethodGet, api+"other%2Fapp", token, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "404 Project Not Found", obj["message"])

	code, obj, _ = call(t, http.MethodGet, api+"1/repository/branches/feature%2Fx", token, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "feature/x", obj["name"])
	require.Equal(t, false, obj["default"])
	code, obj, _ = call(t, http.MethodGet, api+"1/repository/branches/nope", token, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "404 Branch Not Found", obj["message"])

	code, obj, _ = call(t, http.MethodGet, api+"1/repository/tags/v1%2E0", token, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, sha, obj["target"])
	code, obj, _ = call(t, http.MethodGet, api+"1/repository/tags/v2", token, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "404 Tag Not Found", obj["message"])

	for _, rev := range []string{sha, sha[:7], "main", "v1.0"} {
		code, obj, _ = call(t, http.MethodGet, api+"1/repository/commits/"+url.PathEscape(rev), token, nil)
		require.Equal(t, http.StatusOK, code, rev)
		require.Equal(t, "commit A", obj["title"])
	}
	code, obj, _ = call(t, http.MethodGet, api+"1/repository/commits/0123abc", token, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "404 Commit Not Found", obj["message"])
	code, obj, _ = call(t, http.MethodGet, api+"1/repository/nothing", token, nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "404 Not Found", obj["error"])
}

func TestAuthentication(t *testing.T) {
	s := gitlabfake.New(t, token)
	p := s.AddProject("group/app")
	sha := p.Commit("main", v1, "commit A")
	s.AddReadOnlyToken("glpat-read-only")
	api := s.URL + "/api/v4/projects/1"

	code, obj, _ := call(t, http.MethodGet, api, "wrong", nil)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "401 Unauthorized", obj["message"])
	code, obj, _ = call(t, http.MethodGet, api, "", nil)
	require.Equal(t, http.StatusNotFound, code, "a private project is invisible without a token")
	require.Equal(t, "404 Project Not Found", obj["message"])
	code, _, _ = call(t, http.MethodGet, s.URL+"/api/v4/version", "", nil)
	require.Equal(t, http.StatusUnauthorized, code)

	req, _ := http.NewRequest(http.MethodGet, api, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	code, _, _ = call(t, http.MethodGet, api, "glpat-read-only", nil)
	require.Equal(t, http.StatusOK, code)
	code, obj, _ = call(t, http.MethodPost, api+"/statuses/"+sha, "glpat-read-only", url.Values{"state": {"pending"}})
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "insufficient_scope", obj["error"])
	require.Empty(t, s.Statuses(p, sha))
}

func TestStatusStateMachine(t *testing.T) {
	s := gitlabfake.New(t, token)
	p := s.AddProject("group/app")
	sha := p.Commit("main", v1, "commit A")
	post := func(state string) (int, map[string]any) {
		code, obj, _ := call(t, http.MethodPost, s.URL+"/api/v4/projects/group%2Fapp/statuses/"+sha, token,
			url.Values{"state": {state}, "name": {"build"}, "target_url": {"https://ci.example.com/1"}})
		return code, obj
	}
	refused := func(event, from string) string {
		return "Cannot transition status via :" + event + " from :" + from + ` (Reason(s): Status cannot transition via "` + event + `")`
	}

	code, first := post("pending")
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, "pending", first["status"])
	require.Equal(t, "main", first["ref"], "no ref: the first branch holding the commit")
	code, obj := post("pending")
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, refused("enqueue", "pending"), obj["message"])
	code, obj = post("running")
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, first["id"], obj["id"], "the pending status is updated, not duplicated")
	code, obj = post("running")
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, refused("run", "running"), obj["message"])
	code, obj = post("pending")
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, refused("enqueue", "running"), obj["message"])
	code, obj = post("skipped")
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, refused("skip", "running"), obj["message"])
	code, obj = post("success")
	require.Equal(t, http.StatusCreated, code)
	require.Equal(t, first["id"], obj["id"])
	require.NotNil(t, obj["finished_at"])

	// A finished status is never updated: GitLab starts a new one and
	// marks the old one retried.
	code, obj = post("success")
	require.Equal(t, http.StatusCreated, code)
	require.NotEqual(t, first["id"], obj["id"])
	all := s.Statuses(p, sha)
	require.Len(t, all, 2)
	require.True(t, all[0].Retried)
	require.False(t, all[1].Retried)

	code, _, list := call(t, http.MethodGet, s.URL+"/api/v4/projects/1/repository/commits/"+sha+"/statuses?name=build", token, nil)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, list, 1, "latest only by default")
	_, _, list = call(t, http.MethodGet, s.URL+"/api/v4/projects/1/repository/commits/"+sha+"/statuses?all=true", token, nil)
	require.Len(t, list, 2)
	_, _, list = call(t, http.MethodGet, s.URL+"/api/v4/projects/1/repository/commits/"+sha[:8]+"/statuses", token, nil)
	require.Empty(t, list, "GitLab matches pipelines on the sha as given")

	code, obj, _ = call(t, http.MethodPost, s.URL+"/api/v4/projects/1/statuses/"+sha, token, url.Values{"state": {"done"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "state does not have a valid value", obj["error"])
	code, obj, _ = call(t, http.MethodPost, s.URL+"/api/v4/projects/1/statuses/"+sha, token,
		url.Values{"state": {"pending"}, "target_url": {"ftp://x"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, obj["message"], "target_url")
}

func TestStatusesThroughClientGo(t *testing.T) {
	s := gitlabfake.New(t, token)
	p := s.AddProject("group/app")
	sha := p.Commit("main", v1, "commit A")
	c, err := gitlab.NewClient(token, gitlab.WithBaseURL(s.URL), gitlab.WithoutRetries())
	require.NoError(t, err)
	st, _, err := c.Commits.SetCommitStatus("group/app", sha, &gitlab.SetCommitStatusOptions{
		State: gitlab.Running, Name: gitlab.Ptr("build"), Ref: gitlab.Ptr("main"), Description: gitlab.Ptr("building"),
	})
	require.NoError(t, err, "JSON body")
	require.Equal(t, "running", st.Status)
	_, _, err = c.Commits.SetCommitStatus("group/app", sha, &gitlab.SetCommitStatusOptions{State: gitlab.Running, Name: gitlab.Ptr("build"), Ref: gitlab.Ptr("main")})
	var er *gitlab.ErrorResponse
	require.ErrorAs(t, err, &er)
	require.Equal(t, http.StatusBadRequest, er.Response.StatusCode)
	require.Contains(t, er.Message, "Cannot transition status via :run from :running")
	list, _, err := c.Commits.GetCommitStatuses(1, sha, &gitlab.GetCommitStatusesOptions{Name: gitlab.Ptr("build")})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "building", list[0].Description)
	require.Equal(t, "tenantflow-bot", list[0].Author.Username)
}

func TestPushAndTagEventsParse(t *testing.T) {
	s := gitlabfake.New(t, token)
	p := s.AddProject("group/app")
	a := p.Commit("main", v1, "commit A")
	b := p.Commit("main", v2, "commit B\n\nwith a body")
	p.Tag("v1", b)

	ev, err := gitlab.ParseWebhook(gitlab.EventTypePush, s.PushEvent(p, "main", a, b))
	require.NoError(t, err)
	push, ok := ev.(*gitlab.PushEvent)
	require.True(t, ok, "%T", ev)
	require.Equal(t, "push", push.ObjectKind)
	require.Equal(t, "refs/heads/main", push.Ref)
	require.Equal(t, b, push.CheckoutSHA)
	require.Equal(t, a, push.Before)
	require.Equal(t, int64(1), push.ProjectID)
	require.Equal(t, "group/app", push.Project.PathWithNamespace)
	require.Equal(t, s.URL+"/group/app", push.Project.WebURL)
	require.Equal(t, "main", push.Project.DefaultBranch)
	require.EqualValues(t, 1, push.TotalCommitsCount)
	require.Len(t, push.Commits, 1)
	require.Equal(t, b, push.Commits[0].ID)
	require.Equal(t, "commit B", push.Commits[0].Title)
	require.Equal(t, []string{"docs/guide.md"}, push.Commits[0].Added)
	require.Equal(t, []string{"README.md"}, push.Commits[0].Modified)
	require.Equal(t, []string{"src/lib/util.go"}, push.Commits[0].Removed)
	require.Equal(t, gitlabfake.AuthorEmail, push.Commits[0].Author.Email)

	ev, err = gitlab.ParseWebhook(gitlab.EventTypePush, s.PushEvent(p, "main", "", b))
	require.NoError(t, err)
	require.Equal(t, gitlabfake.ZeroSHA, ev.(*gitlab.PushEvent).Before)
	require.Len(t, ev.(*gitlab.PushEvent).Commits, 2, "a new default branch lists all its commits")
	require.Equal(t, a, ev.(*gitlab.PushEvent).Commits[0].ID, "oldest first")

	ev, err = gitlab.ParseWebhook(gitlab.EventTypeTagPush, s.TagEvent(p, "v1"))
	require.NoError(t, err)
	tag, ok := ev.(*gitlab.TagEvent)
	require.True(t, ok, "%T", ev)
	require.Equal(t, "tag_push", tag.ObjectKind)
	require.Equal(t, "refs/tags/v1", tag.Ref)
	require.Equal(t, b, tag.CheckoutSHA)
	require.Equal(t, gitlabfake.ZeroSHA, tag.Before)
	require.Equal(t, "group/app", tag.Project.PathWithNamespace)
}

func TestDownAndCalls(t *testing.T) {
	s := gitlabfake.New(t, token)
	s.AddProject("group/app")
	s.SetDown(true)
	resp, err := http.Get(s.URL + "/api/v4/projects/1?private_token=" + token)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	s.SetDown(false)
	code, _, _ := call(t, http.MethodGet, s.URL+"/api/v4/projects/group%2Fapp", token, nil)
	require.Equal(t, http.StatusOK, code)
	calls := s.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, http.StatusServiceUnavailable, calls[0].Status)
	require.Equal(t, "/api/v4/projects/group%2Fapp", calls[1].Path)
	require.Equal(t, http.StatusOK, calls[1].Status)
}
