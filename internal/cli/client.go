package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client is a small client of Tenantflow's REST API: the only way the CLI
// acts, so it can do nothing the token's role may not.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// retryWait bounds how long a retry of an idempotent Update waits for
	// the API's Retry-After (tests shorten it).
	retryWait time.Duration
	// notice tells the person about a retry (stderr).
	notice io.Writer
}

// requestTimeout outlasts the API's own answer time (90 s).
const requestTimeout = 100 * time.Second

// NewClient returns a client of the API at baseURL (http or https) that
// sends token as its bearer token.
func NewClient(baseURL, token string, notice io.Writer) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError(fmt.Sprintf("API URL %q: want http(s)://host[:port]", baseURL))
	}
	if notice == nil {
		notice = io.Discard
	}
	return &Client{base: u, token: token, http: &http.Client{Timeout: requestTimeout}, retryWait: 5 * time.Second, notice: notice}, nil
}

// APIError is an answer outside 2xx: the API's {"error","field"}, or the
// HTTP status when the body says nothing readable.
type APIError struct {
	Status  int
	Message string
	Field   string
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Response is a 2xx answer, its body kept as sent (-o json prints it so).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode reads the answer into v.
func (r *Response) Decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("read the API's answer: %w", err)
	}
	return nil
}

// request is one call: an Update route (idempotent) gets an
// Idempotency-Key and is retried with it when the API answers 503 with
// Retry-After (no worker answered in time: the Update may still run, and
// the same key returns its outcome instead of acting twice).
type request struct {
	method     string
	path       string
	query      url.Values
	body       any
	idempotent bool
}

// updateRetries is how many times an Update is sent again after a 503.
const updateRetries = 2

// Get reads path (with query) and returns the 2xx answer.
func (c *Client) Get(ctx context.Context, path string, query url.Values) (*Response, error) {
	return c.do(ctx, request{method: http.MethodGet, path: path, query: query})
}

// Post sends body (nil: none) to path.
func (c *Client) Post(ctx context.Context, path string, body any) (*Response, error) {
	return c.do(ctx, request{method: http.MethodPost, path: path, body: body})
}

// Update sends a request the API turns into a workflow Update (promote,
// pause, confirm…): with an Idempotency-Key, retried after a 503.
func (c *Client) Update(ctx context.Context, method, path string, body any) (*Response, error) {
	return c.do(ctx, request{method: method, path: path, body: body, idempotent: true})
}

func (c *Client) do(ctx context.Context, r request) (*Response, error) {
	var key string
	if r.idempotent {
		key = newIdempotencyKey()
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, r, key)
		var apiErr *APIError
		if !r.idempotent || attempt == updateRetries || !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
			return resp, err
		}
		wait := c.retryAfter(resp)
		printf(c.notice, "note: %s; sending it again with the same Idempotency-Key in %s\n", apiErr.Message, wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// retryAfter is the API's Retry-After, within the client's bound.
func (c *Client) retryAfter(resp *Response) time.Duration {
	wait := c.retryWait
	if resp != nil {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = min(time.Duration(s)*time.Second, c.retryWait)
		}
	}
	return wait
}

// send makes one HTTP exchange. A non-2xx answer is an *APIError, and the
// Response is returned with it (its headers: Retry-After).
func (c *Client) send(ctx context.Context, r request, key string) (*Response, error) {
	req, err := c.newRequest(ctx, r, key)
	if err != nil {
		return nil, err
	}
	hr, err := c.exchange(ctx, c.http, req)
	if err != nil {
		return nil, err
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, err)
	}
	resp := &Response{Status: hr.StatusCode, Header: hr.Header, Body: b}
	if hr.StatusCode/100 != 2 {
		return resp, apiError(hr.StatusCode, b)
	}
	return resp, nil
}

// Stream reads path (with query) as it comes: the 2xx answer's body, which
// the caller closes. A followed answer lasts as long as the API keeps it
// open, so only the wait for its headers is bounded (as a request's).
func (c *Client) Stream(ctx context.Context, path string, query url.Values) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := func() { cancel(nil) }
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: path, query: query}, "")
	if err != nil {
		done()
		return nil, err
	}
	req.Header.Set("Accept", "application/x-ndjson, application/json")
	unbounded := *c.http
	unbounded.Timeout = 0
	headers := time.AfterFunc(requestTimeout, func() { cancel(errNoAnswer) })
	hr, err := c.exchange(ctx, &unbounded, req)
	headers.Stop()
	if err != nil {
		if errors.Is(context.Cause(ctx), errNoAnswer) {
			// not a Ctrl-C, whose exit code context.Canceled would give
			err = fmt.Errorf("GET %s: %w", c.base.Redacted(), errNoAnswer)
		}
		done()
		return nil, err
	}
	if hr.StatusCode/100 != 2 {
		defer done()
		defer hr.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(hr.Body, 1<<20))
		return nil, apiError(hr.StatusCode, b)
	}
	return &streamBody{ReadCloser: hr.Body, cancel: done}, nil
}

var errNoAnswer = fmt.Errorf("no answer within %s", requestTimeout)

// streamBody releases the stream's context with its body.
type streamBody struct {
	io.ReadCloser
	cancel func()
}

func (b *streamBody) Close() error {
	defer b.cancel()
	return b.ReadCloser.Close()
}

// newRequest is r as an HTTP request, with the token, and key as its
// Idempotency-Key (none when "").
func (c *Client) newRequest(ctx context.Context, r request, key string) (*http.Request, error) {
	u := c.base.JoinPath(r.path)
	u.RawQuery = r.query.Encode()
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("encode the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "tenantflow-cli")
	return req, nil
}

// exchange sends req with hc; a failure to reach the API names it (not
// its token), and Ctrl-C is the context's own error.
func (c *Client) exchange(ctx context.Context, hc *http.Client, req *http.Request) (*http.Response, error) {
	hr, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, c.base.Redacted(), unwrapURLError(err))
	}
	return hr, nil
}

// apiError reads the API's {"error","field"} body.
func apiError(status int, body []byte) *APIError {
	var e struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &APIError{Status: status, Message: e.Error, Field: e.Field}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &APIError{Status: status, Message: fmt.Sprintf("HTTP %d: %s", status, msg)}
}

// unwrapURLError drops net/url's "Get \"http://…\":" prefix, which repeats
// what the caller says.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// apiPath joins the route's parts, escaping each (a name the person typed
// stays one path segment).
func apiPath(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// newIdempotencyKey is 32 hex characters (the API takes 8–64 letters,
// digits, '-' or '_').
func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
