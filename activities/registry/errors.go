package registry

import (
	"encoding/json"
	"fmt"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"io"
	"net/http"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Error types shown in the Web UI for failures a retry cannot fix.
const (
	// ErrDeleteDisabled: the registry answers 405 to DELETE
	// (storage.delete.enabled is false in its config).
	ErrDeleteDisabled = "RegistryDeleteDisabled"
	// ErrInvalidReference: a repository, tag or digest the registry
	// grammar rejects; no retry changes the input.
	ErrInvalidReference = "InvalidImageReference"
	// ErrRejected: any other 4xx answer.
	ErrRejected = "RegistryRequestRejected"
)

// apiErrors is the registry's error body: {"errors":[{"code","message"}]}.
type apiErrors struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// summary reads at most 64 KiB of an error body and returns its registry
// error codes and messages, or the start of the text when it is not JSON.
func summary(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var e apiErrors
	if json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 {
		parts := make([]string, 0, len(e.Errors))
		for _, x := range e.Errors {
			parts = append(parts, strings.TrimSpace(x.Code+": "+x.Message))
		}
		return strings.Join(parts, "; ")
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// statusError turns an unexpected answer into an error Temporal handles
// right: 401/403 and other 4xx are permanent, 408, 429 and 5xx transient.
// It consumes the body.
func (c *Client) statusError(op string, resp *http.Response) error {
	msg := fmt.Sprintf("%s: registry %s answered %s", op, c.base.Host, resp.Status)
	if s := summary(resp.Body); s != "" {
		msg += ": " + s
	}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return c.unauthorized(msg)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("%s", msg)
	case code >= 400:
		return temporal.NewNonRetryableApplicationError(msg, ErrRejected, nil)
	default:
		return fmt.Errorf("%s (unexpected)", msg)
	}
}

// unauthorized names the user (never the password) and the settings to fix.
func (c *Client) unauthorized(msg string) error {
	who := "anonymous access"
	if c.user != "" {
		who = fmt.Sprintf("user %q", c.user)
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s (%s; check %s/%s and the user's rights)", msg, who, EnvUser, EnvPassword), runtimes.ErrRegistryUnauthorized, nil)
}
