package gitlab

import (
	"errors"
	"fmt"
	"net/http"

	gl "gitlab.com/gitlab-org/api/client-go"
	"go.temporal.io/sdk/temporal"
)

// Error types shown in the Web UI for failures a retry cannot fix.
const (
	// ErrUnknownProject: no such project, or the token cannot see it
	// (GitLab answers 404 for both).
	ErrUnknownProject = "UnknownProject"
	// ErrUnknownRef: no branch, tag or commit of that name.
	ErrUnknownRef = "UnknownRef"
	// ErrUnauthorized: the token is invalid, expired, or lacks the scope
	// or role (401, 403).
	ErrUnauthorized = "GitLabUnauthorized"
	// ErrRejected: GitLab refused the request as it stands (other 4xx),
	// e.g. a commit status transition it does not allow.
	ErrRejected = "GitLabRejected"
	// ErrInvalidInput: the activity input cannot make a valid request.
	ErrInvalidInput = "InvalidGitLabInput"
)

func permanent(typ string, cause error, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, cause)
}

// statusOf is the HTTP status of a GitLab error answer, 0 for transport
// failures. client-go reports 404 as the bare ErrNotFound.
func statusOf(err error) int {
	if errors.Is(err, gl.ErrNotFound) {
		return http.StatusNotFound
	}
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// classify turns a failed call into what the activity returns: a
// non-retryable ApplicationError, unwrapped, when GitLab's answer cannot
// change on retry (401, 403 and other 4xx), and a plain wrapped error
// otherwise so Temporal retries (transport failures, timeouts, 5xx, 429
// rate limiting, 409 "another update is in progress"). Callers deal with
// 404 first, since only they know what was not found.
func classify(what string, err error) error {
	code := statusOf(err)
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return permanent(ErrUnauthorized, err, "%s: GitLab refused the token (HTTP %d): check that it is valid, "+
			"not expired, has the api scope and at least the Developer role on the project: %v", what, code, err)
	case code == http.StatusNotFound:
		return permanent(ErrRejected, err, "%s: %v", what, err)
	case code == http.StatusConflict || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return fmt.Errorf("%s: %w", what, err)
	case code >= 400 && code < 500:
		return permanent(ErrRejected, err, "%s: %v", what, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
