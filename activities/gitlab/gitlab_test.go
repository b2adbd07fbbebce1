package gitlab

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite/gitlabfake"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

const token = "glpat-Sup3r-secret-token"

var (
	v1 = map[string][]byte{
		"Dockerfile":       []byte("FROM scratch\nCOPY app /app\n"),
		"README.md":        []byte("# shop\n"),
		"cmd/app/main.go":  []byte("package main\n\nfunc main() {}\n"),
		"config/app.yaml":  []byte("port: 8080\n"),
		"static/empty.txt": {},
	}
	// v2 changes README.md, replaces config/app.yaml by config/new.yaml.
	v2 = map[string][]byte{
		"Dockerfile":       v1["Dockerfile"],
		"README.md":        []byte("# shop\n\nv2\n"),
		"cmd/app/main.go":  v1["cmd/app/main.go"],
		"config/new.yaml":  []byte("port: 9090\n"),
		"static/empty.txt": nil,
	}
)

// logBuffer collects the client's JSON logs (also shown through t.Log)
// and, when the test ends, checks that the token never appears in them.
type logBuffer struct {
	t    *testing.T
	mu   sync.Mutex
	buf  bytes.Buffer
	done bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if !l.done {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	l := &logBuffer{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.done = true
		require.NotContains(t, l.buf.String(), token, "the token never appears in logs")
	})
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fixture is a fake GitLab with one project: main (two commits), a
// feature/login branch and a v1.0 tag on the first commit.
type fixture struct {
	srv    *gitlabfake.Server
	proj   *gitlabfake.Project
	first  string // v1.0
	head   string // main
	client *Client
	act    *Activities
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{srv: gitlabfake.New(t, token)}
	f.proj = f.srv.AddProject("acme/shop")
	f.first = f.proj.Commit("main", v1, "Initial shop")
	f.head = f.proj.Commit("main", v2, "Move config\n\nThe port changes.")
	f.proj.Commit("feature/login", map[string][]byte{"login.go": []byte("package main\n")}, "Add login")
	f.proj.Tag("v1.0", f.first)
	f.client = newClient(t, f.srv.URL, token)
	f.act = NewActivities(f.client)
	return f
}

func newClient(t *testing.T, url, tok string) *Client {
	t.Helper()
	c, err := NewClient(Config{Enabled: true, URL: url, Token: tok, Timeout: 5 * time.Second}, testLogger(t))
	require.NoError(t, err)
	return c
}

// requireNoToken checks an error never quotes the token.
func requireNoToken(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		require.NotContains(t, err.Error(), token)
	}
}

func TestResolveCommit(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	login := f.proj.Head("feature/login")
	require.Equal(t, f.head, f.proj.Head("main"), "as the fake itself reports")

	cases := []struct {
		project, ref       string
		sha, refType, name string
	}{
		{"acme/shop", "main", f.head, RefBranch, "main"},
		{"acme/shop", "feature/login", login, RefBranch, "feature/login"},
		{"acme/shop", "v1.0", f.first, RefTag, "v1.0"},
		{"acme/shop", f.first[:8], f.first, RefCommit, ""},
		{"acme/shop", f.head, f.head, RefCommit, ""},
		{"1", "main", f.head, RefBranch, "main"},
		{"ACME/Shop", "main", f.head, RefBranch, "main"},
	}
	for _, tc := range cases {
		c, err := f.client.ResolveCommit(ctx, tc.project, tc.ref)
		require.NoError(t, err, "%s %s", tc.project, tc.ref)
		require.Equal(t, Commit{
			Project: "acme/shop", ProjectID: f.proj.ID, SHA: tc.sha, Ref: tc.name, RefType: tc.refType,
			Title:  map[string]string{f.head: "Move config", f.first: "Initial shop", login: "Add login"}[tc.sha],
			WebURL: f.srv.URL + "/acme/shop/-/commit/" + tc.sha,
		}, c, "%s %s", tc.project, tc.ref)
	}

	// The branch moves: resolving again follows it.
	moved := f.proj.Commit("main", map[string][]byte{"CHANGELOG": []byte("v3\n")}, "Release")
	c, err := f.client.ResolveCommit(ctx, "acme/shop", "main")
	require.NoError(t, err)
	require.Equal(t, moved, c.SHA)

	_, err = f.client.ResolveCommit(ctx, "acme/shop", "no-such-branch")
	harness.RequireNonRetryable(t, err, ErrUnknownRef)
	_, err = f.client.ResolveCommit(ctx, "acme/shop", "0123456789abcdef")
	harness.RequireNonRetryable(t, err, ErrUnknownRef)
	_, err = f.client.ResolveCommit(ctx, "acme/nope", "main")
	harness.RequireNonRetryable(t, err, ErrUnknownProject)
	_, err = f.client.ResolveCommit(ctx, "acme/shop", "")
	harness.RequireNonRetryable(t, err, ErrInvalidInput)

	bad := newClient(t, f.srv.URL, "glpat-wrong")
	_, err = bad.ResolveCommit(ctx, "acme/shop", "main")
	harness.RequireNonRetryable(t, err, ErrUnauthorized)
	requireNoToken(t, err)

	// Reads only: nothing but GETs reached GitLab.
	for _, call := range f.srv.Calls() {
		require.Equal(t, http.MethodGet, call.Method, call.Path)
	}
}

func TestResolveRefTakesOnlyTheKindAsked(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	// A branch named like the tag v1.0, on another commit.
	branch := f.proj.Commit("v1.0", map[string][]byte{"NOTE": []byte("branch\n")}, "A branch named like a tag")
	c, err := f.client.ResolveCommit(ctx, "acme/shop", "v1.0")
	require.NoError(t, err)
	require.Equal(t, branch, c.SHA, "ResolveCommit prefers the branch")

	c, err = f.client.ResolveRef(ctx, "acme/shop", RefTag, "v1.0")
	require.NoError(t, err)
	require.Equal(t, Commit{Project: "acme/shop", ProjectID: f.proj.ID, SHA: f.first, Ref: "v1.0", RefType: RefTag,
		Title: "Initial shop", WebURL: f.srv.URL + "/acme/shop/-/commit/" + f.first}, c)
	c, err = f.client.ResolveRef(ctx, "acme/shop", RefBranch, "v1.0")
	require.NoError(t, err)
	require.Equal(t, branch, c.SHA)
	c, err = f.client.ResolveRef(ctx, "ACME/Shop", RefBranch, "main")
	require.NoError(t, err)
	require.Equal(t, "acme/shop", c.Project, "GitLab's canonical path")
	require.Equal(t, f.head, c.SHA)

	_, err = f.client.ResolveRef(ctx, "acme/shop", RefTag, "main")
	harness.RequireNonRetryable(t, err, ErrUnknownRef)
	_, err = f.client.ResolveRef(ctx, "acme/shop", RefBranch, f.head)
	harness.RequireNonRetryable(t, err, ErrUnknownRef)
	_, err = f.client.ResolveRef(ctx, "acme/nope", RefBranch, "main")
	harness.RequireNonRetryable(t, err, ErrUnknownProject)
	_, err = f.client.ResolveRef(ctx, "acme/shop", RefCommit, f.head)
	harness.RequireNonRetryable(t, err, ErrInvalidInput)
	_, err = f.client.ResolveRef(ctx, "acme/shop", RefBranch, "")
	harness.RequireNonRetryable(t, err, ErrInvalidInput)
}

func TestArchiveStreamsTheCommit(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	for _, sha := range []string{f.first, f.head} {
		rc, err := f.client.Archive(ctx, f.proj.ID, sha)
		require.NoError(t, err)
		files, top := readArchive(t, rc)
		require.NoError(t, rc.Close())
		require.Equal(t, "shop-"+sha+"-"+sha+"/", top, "GitLab's archive prefix")
		require.Equal(t, f.proj.Files(sha), files, "the tree the server holds")
	}
	rc, err := f.client.Archive(ctx, f.proj.ID, f.head)
	require.NoError(t, err)
	files, _ := readArchive(t, rc)
	rc.Close()
	want := map[string][]byte{
		"Dockerfile": v1["Dockerfile"], "README.md": v2["README.md"], "cmd/app/main.go": v1["cmd/app/main.go"],
		"config/new.yaml": v2["config/new.yaml"], "static/empty.txt": {},
	}
	require.Equal(t, want, files, "the files committed, the deleted one gone")

	_, err = f.client.Archive(ctx, f.proj.ID, strings.Repeat("ab", 20))
	harness.RequireNonRetryable(t, err, ErrUnknownRef)
	_, err = f.client.Archive(ctx, 99, f.head)
	harness.RequireNonRetryable(t, err, ErrUnknownRef)
	_, err = f.client.Archive(ctx, f.proj.ID, f.head[:8])
	harness.RequireNonRetryable(t, err, ErrInvalidInput)
	_, err = newClient(t, f.srv.URL, "glpat-wrong").Archive(ctx, f.proj.ID, f.head)
	harness.RequireNonRetryable(t, err, ErrUnauthorized)
	requireNoToken(t, err)
}

func TestArchiveIsNotBuffered(t *testing.T) {
	f := setup(t)
	resume := f.srv.PauseArchives()
	defer resume()

	// GitLab has sent the start of the archive and holds the rest:
	// Archive must already return a readable stream.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := f.client.Archive(ctx, f.proj.ID, f.head)
	require.NoError(t, err)
	gz, err := gzip.NewReader(rc)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	require.NoError(t, err)
	require.Equal(t, byte(tar.TypeXGlobalHeader), h.Typeflag, "git archive's commit id")
	require.Equal(t, f.head, h.PAXRecords["comment"])
	h, err = tr.Next()
	require.NoError(t, err)
	require.Equal(t, "shop-"+f.head+"-"+f.head+"/", h.Name, "first entry read while the server still holds the rest")

	next := make(chan error, 1)
	go func() {
		_, err := tr.Next()
		next <- err
	}()
	select {
	case err := <-next:
		t.Fatalf("read past what the server sent: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	resume()
	require.NoError(t, <-next)
	require.NoError(t, rc.Close())

	// Closing before the end stops the download promptly.
	paused := f.srv.PauseArchives()
	defer paused()
	rc, err = f.client.Archive(ctx, f.proj.ID, f.head)
	require.NoError(t, err)
	closed := make(chan struct{})
	go func() { rc.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on an unfinished download")
	}
}

// readArchive reads a tar.gz: its files and its one top directory.
func readArchive(t *testing.T, r io.Reader) (map[string][]byte, string) {
	t.Helper()
	gz, err := gzip.NewReader(r)
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	top := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, top
		}
		require.NoError(t, err)
		switch h.Typeflag {
		case tar.TypeXGlobalHeader: // git archive's commit id
		case tar.TypeDir:
			if top == "" {
				top = h.Name
			}
			require.True(t, strings.HasPrefix(h.Name, top), h.Name)
		case tar.TypeReg:
			require.True(t, top != "" && strings.HasPrefix(h.Name, top), h.Name)
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			files[strings.TrimPrefix(h.Name, top)] = b
		default:
			t.Fatalf("unexpected entry %s type %c", h.Name, h.Typeflag)
		}
	}
}

func TestCommitStatusLifecycle(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	in := StatusInput{
		ProjectID: f.proj.ID, SHA: f.head, Name: "tenantflow/build", Ref: "main",
		TargetURL: "https://tenantflow.example.com/builds/42", Description: "building acme/shop",
	}
	set := func(state string) error {
		s := in
		s.State = state
		return f.act.SetCommitStatus(ctx, s)
	}
	onServer := func() []gitlabfake.Status { return f.srv.Statuses(f.proj, f.head) }
	posts := func() int {
		n := 0
		for _, c := range f.srv.Calls() {
			if c.Method == http.MethodPost {
				n++
			}
		}
		return n
	}

	require.NoError(t, set(StatePending))
	st := onServer()
	require.Len(t, st, 1)
	require.Equal(t, "pending", st[0].State)
	require.Equal(t, "main", st[0].Ref)
	require.Equal(t, in.TargetURL, st[0].TargetURL)
	id := st[0].ID

	require.NoError(t, set(StatePending), "a retry of the same state succeeds")
	require.Equal(t, 1, posts(), "and posts nothing")

	require.NoError(t, set(StateRunning))
	require.NoError(t, set(StateRunning))
	st = onServer()
	require.Len(t, st, 1)
	require.Equal(t, id, st[0].ID, "GitLab updates the pending status")
	require.Equal(t, "running", st[0].State)

	require.NoError(t, set(StateSuccess))
	require.NoError(t, set(StateSuccess), "a retry after success")
	st = onServer()
	require.Len(t, st, 1, "no second status: GitLab would have started a new one")
	require.Equal(t, "success", st[0].State)
	require.NotNil(t, st[0].FinishedAt)
	require.Equal(t, 3, posts())

	// GitLab refuses running -> pending: a permanent rejection.
	deploy := StatusInput{ProjectID: f.proj.ID, SHA: f.head, Name: "tenantflow/deploy", State: StatePending}
	require.NoError(t, f.act.SetCommitStatus(ctx, deploy))
	deploy.State = StateRunning
	require.NoError(t, f.act.SetCommitStatus(ctx, deploy))
	deploy.State = StatePending
	err := f.act.SetCommitStatus(ctx, deploy)
	appErr := harness.RequireNonRetryable(t, err, ErrRejected)
	require.Contains(t, appErr.Error(), "Cannot transition status via :enqueue from :running")

	// Same state, new description: GitLab refuses the transition, the
	// status read back is in the state asked for, which is success.
	deploy.State, deploy.Description = StateRunning, "still deploying"
	require.NoError(t, f.act.SetCommitStatus(ctx, deploy))
	var dep []gitlabfake.Status
	for _, s := range onServer() {
		if s.Name == "tenantflow/deploy" {
			dep = append(dep, s)
		}
	}
	require.Len(t, dep, 1)
	require.Equal(t, "running", dep[0].State)
	require.Equal(t, "main", dep[0].Ref, "no ref given: the branch holding the commit")
}

func TestCommitStatusRefusals(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	ok := StatusInput{ProjectID: f.proj.ID, SHA: f.head, Name: "tenantflow/build", State: StatePending}

	bad := ok
	bad.TargetURL = "javascript:alert(1)"
	harness.RequireNonRetryable(t, f.act.SetCommitStatus(ctx, bad), ErrRejected)
	bad = ok
	bad.State = "done"
	harness.RequireNonRetryable(t, f.act.SetCommitStatus(ctx, bad), ErrInvalidInput)
	bad = ok
	bad.SHA = f.head[:8]
	harness.RequireNonRetryable(t, f.act.SetCommitStatus(ctx, bad), ErrInvalidInput)
	bad = ok
	bad.SHA = strings.Repeat("cd", 20)
	harness.RequireNonRetryable(t, f.act.SetCommitStatus(ctx, bad), ErrUnknownRef)

	err := NewActivities(newClient(t, f.srv.URL, "glpat-wrong")).SetCommitStatus(ctx, ok)
	harness.RequireNonRetryable(t, err, ErrUnauthorized)
	requireNoToken(t, err)

	const readOnly = "glpat-read-only"
	f.srv.AddReadOnlyToken(readOnly)
	err = NewActivities(newClient(t, f.srv.URL, readOnly)).SetCommitStatus(ctx, ok)
	harness.RequireNonRetryable(t, err, ErrUnauthorized)
	require.NotContains(t, err.Error(), readOnly)
	require.Empty(t, f.srv.Statuses(f.proj, f.head), "nothing was recorded")
}

func TestOutageIsRetryable(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	status := StatusInput{ProjectID: f.proj.ID, SHA: f.head, Name: "tenantflow/build", State: StateRunning}

	f.srv.SetDown(true)
	err := f.client.Check(ctx)
	harness.RequireRetryable(t, err)
	_, err = f.client.ResolveCommit(ctx, "acme/shop", "main")
	harness.RequireRetryable(t, err)
	err = f.act.SetCommitStatus(ctx, status)
	harness.RequireRetryable(t, err)
	_, err = f.client.Archive(ctx, f.proj.ID, f.head)
	harness.RequireRetryable(t, err)
	requireNoToken(t, err)

	f.srv.SetDown(false)
	require.NoError(t, f.client.Check(ctx))
	c, err := f.client.ResolveCommit(ctx, "acme/shop", "main")
	require.NoError(t, err)
	require.Equal(t, f.head, c.SHA)
	require.NoError(t, f.act.SetCommitStatus(ctx, status))
	require.Equal(t, "running", f.srv.Statuses(f.proj, f.head)[0].State)
	rc, err := f.client.Archive(ctx, f.proj.ID, f.head)
	require.NoError(t, err)
	files, _ := readArchive(t, rc)
	rc.Close()
	require.Equal(t, f.proj.Files(f.head), files)
}

func TestUnreachableIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	c := newClient(t, "http://"+addr, token)
	err = c.Check(context.Background())
	harness.RequireRetryable(t, err)
	requireNoToken(t, err)
	_, err = c.ResolveCommit(context.Background(), "acme/shop", "main")
	harness.RequireRetryable(t, err)
}

func TestCheck(t *testing.T) {
	f := setup(t)
	require.NoError(t, f.client.Check(context.Background()))
	err := newClient(t, f.srv.URL, "glpat-wrong").Check(context.Background())
	harness.RequireNonRetryable(t, err, ErrUnauthorized)
	requireNoToken(t, err)
	for _, call := range f.srv.Calls() {
		require.Equal(t, "/api/v4/version", call.Path)
	}
}
