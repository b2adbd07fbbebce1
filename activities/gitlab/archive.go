package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sync"

	gl "gitlab.com/gitlab-org/api/client-go"
)

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Archive streams the tree of commit sha (a full SHA, as ResolveCommit
// returns) of project projectID as GitLab's tar.gz, whose entries sit
// under one top directory "<project path>-<sha>-<sha>/". The body is not
// buffered: the caller reads it as GitLab sends it and must Close it;
// closing early aborts the download. ctx bounds the whole download.
//
// Errors GitLab answers before sending the archive are returned here
// (404: non-retryable UnknownRef; 401/403: GitLabUnauthorized); a
// failure midway surfaces from Read as a plain, retryable error.
func (c *Client) Archive(ctx context.Context, projectID int64, sha string) (io.ReadCloser, error) {
	if projectID <= 0 || !fullSHA.MatchString(sha) {
		return nil, permanent(ErrInvalidInput, nil, "archive: need a project id and a full commit SHA (got %d, %q)", projectID, sha)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	s := &archiveStream{pr: pr, cancel: cancel, done: make(chan struct{})}
	w := &firstWrite{w: pw, started: make(chan struct{})}
	go func() {
		defer close(s.done)
		// client-go checks the status before copying the body into w, so
		// the first Write means GitLab is sending the archive.
		_, err := c.api.Repositories.StreamArchive(projectID, w, &gl.ArchiveOptions{
			Format: gl.Ptr("tar.gz"), SHA: gl.Ptr(sha),
		}, gl.WithContext(ctx))
		s.err = err
		pw.CloseWithError(err) // nil: the reader sees io.EOF
	}()
	select {
	case <-w.started:
		return s, nil
	case <-s.done:
		if s.err == nil { // an empty body
			return s, nil
		}
		cancel()
		what := fmt.Sprintf("download archive of commit %s of project %d", sha, projectID)
		if statusOf(s.err) == http.StatusNotFound {
			return nil, permanent(ErrUnknownRef, s.err, "%s: GitLab has no such project or commit", what)
		}
		return nil, classify(what, s.err)
	}
}

// firstWrite signals when the first bytes of the body arrive.
type firstWrite struct {
	w       io.Writer
	started chan struct{}
	once    sync.Once
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(func() { close(f.started) })
	return f.w.Write(p)
}

// archiveStream is the body being downloaded by the goroutine that runs
// the request.
type archiveStream struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	err    error // the request's outcome, set before done is closed
	closed sync.Once
}

func (s *archiveStream) Read(p []byte) (int, error) {
	n, err := s.pr.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("read GitLab archive: %w", err)
	}
	return n, err
}

// Close stops the download if it is still running and waits for it, so
// no goroutine or connection outlives the caller's use.
func (s *archiveStream) Close() error {
	s.closed.Do(func() {
		s.pr.Close()
		s.cancel()
		<-s.done
	})
	return nil
}
