package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// requestTimeout bounds one admin request when the activity's context has
// a longer deadline: Caddy applies a change by loading the new config, which
// takes milliseconds, so a minute means it is stuck.
const requestTimeout = time.Minute

// maxReply caps what is read from Caddy: a whole server's routes for
// thousands of tenants fit in a few MB.
const maxReply = 64 << 20

// admin talks to Caddy's admin API. Caddy answers errors as
// {"error":"…"}; the statuses it uses are kept in reply so each caller
// decides which one is expected (404 for an unknown @id, 412 for a lost
// If-Match race).
type admin struct {
	base *url.URL
	http *http.Client
}

// reply is one admin API answer. ETag is Caddy's hash of the config at the
// requested path (sent as a trailer), usable as If-Match on a later change
// so the change applies only if nobody changed that part meanwhile.
type reply struct {
	status int
	body   []byte
	etag   string
}

// null tells whether the path held nothing: Caddy answers 200 "null" for a
// missing key under an existing object.
func (r reply) null() bool { return bytes.Equal(bytes.TrimSpace(r.body), []byte("null")) }

func newAdmin(base *url.URL) *admin {
	// No keep-alive: Caddy replaces its admin server on every config
	// change, and a request sent on a connection the old one just closed
	// fails with EOF, which Go does not retry for POST/PATCH.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return &admin{base: base, http: &http.Client{Timeout: requestTimeout, Transport: tr}}
}

// sendAttempts is how often one admin request is sent when the connection
// fails. Caddy replaces its admin server on every config change and drops
// connections that arrive meanwhile, so activities of other tenants
// changing the config at the same time cause resets that a resend a moment
// later cures. Every request here may be resent: GETs and DELETE/PATCH by
// @id are idempotent, and creations carry If-Match, so a creation that was
// applied before its answer got lost is answered 412 and looked at again.
const sendAttempts = 3

// do sends one request. A transport failure that persists (Caddy down,
// timeout) is returned as an error; any HTTP answer is returned as a reply.
func (c *admin) do(ctx context.Context, method, path string, body any, ifMatch string) (reply, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		payload = b
	}
	var err error
	for attempt := 1; ; attempt++ {
		var r reply
		r, err = c.send(ctx, method, path, payload, ifMatch)
		if err == nil {
			return r, nil
		}
		if attempt == sendAttempts || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
	return reply{}, fmt.Errorf("caddy admin %s %s: %w", method, path, err)
}

func (c *admin) send(ctx context.Context, method, path string, payload []byte, ifMatch string) (reply, error) {
	u := *c.base
	u.Path = c.base.Path + path
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return reply{}, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json") // Caddy refuses anything else
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return reply{}, fmt.Errorf("read answer: %w", err)
	}
	etag := resp.Trailer.Get("Etag") // trailers are known once the body is read
	if etag == "" {
		etag = resp.Header.Get("Etag")
	}
	return reply{status: resp.StatusCode, body: b, etag: etag}, nil
}

// unexpected turns an answer the caller did not expect into an error: a 4xx
// is Caddy refusing the request, which it will refuse again (rejectedError,
// made non-retryable at the activity boundary); anything else (5xx) is
// returned plain so Temporal retries. Caddy 2.6 answers 500 for some
// refusals too (config that fails to load, "key already exists"), which we
// retry: they come from races or from Caddy's environment, not our input.
func (r reply) unexpected(method, path string) error {
	msg := caddyMessage(r.body)
	if r.status >= 400 && r.status < 500 {
		return &rejectedError{method: method, path: path, status: r.status, msg: msg}
	}
	return fmt.Errorf("caddy admin %s %s answered %d: %s", method, path, r.status, msg)
}

// rejectedError is a 4xx answer of the admin API.
type rejectedError struct {
	method, path string
	status       int
	msg          string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("caddy admin %s %s rejected the request (%d): %s", e.method, e.path, e.status, e.msg)
}

// caddyMessage extracts Caddy's {"error":"…"}, or a short excerpt of a body
// that is not one (a proxy in front of Caddy, a wrong URL).
func caddyMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty answer)"
	}
	return s
}

// sameJSON compares two JSON documents by value, so key order and spacing
// in Caddy's answer do not count as a difference.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
