package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// InProcess is a transport that hands each request to the API's own
// handler in this process: no socket, but the same router, token check,
// validation, audit and metrics as a request from outside.
func InProcess(api http.Handler) http.RoundTripper {
	return inProcess{api}
}

type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	// A client's request as a server's handler expects it.
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	in.RemoteAddr = "127.0.0.1:0" // in-process; the API decides nothing on it
	rec := &recorder{header: http.Header{}}
	t.h.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

// recorder keeps an in-process answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// apiClient makes the portal's API calls, each with the signed-in
// person's token.
type apiClient struct {
	http *http.Client
	base string
}

// apiError is an answer outside 2xx: the API's {"error","field"}.
type apiError struct {
	Status  int
	Message string
	Field   string
}

func (e *apiError) Error() string { return e.Message }

// callTimeout outlasts the API's own bound on an answer (an Update waits
// at most its query timeout, twice for a DELETE).
const callTimeout = 30 * time.Second

// call sends one request and decodes a 2xx answer into out (nil: ignored).
// Extra headers (an Idempotency-Key) go along.
func (c *apiClient) call(ctx context.Context, token, method, path string, query url.Values, body, out any, header ...string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimSuffix(c.base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &apiError{Status: http.StatusBadGateway, Message: "The platform did not answer. Try again in a moment."}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return &apiError{Status: http.StatusBadGateway, Message: "The platform's answer was cut off. Try again in a moment."}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("read the API's answer to %s %s: %w", method, path, err)
	}
	return nil
}

func answerError(status int, raw []byte) *apiError {
	var body struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	_ = json.Unmarshal(raw, &body)
	e := &apiError{Status: status, Message: body.Error, Field: body.Field}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// tenantItem is one tenant of GET /v1/tenants.
type tenantItem struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Stage     string    `json:"stage"`
	Image     string    `json:"image"`
	StartTime time.Time `json:"startTime"`
}

type tenantPage struct {
	Tenants       []tenantItem `json:"tenants"`
	NextPageToken string       `json:"nextPageToken"`
}

func (c *apiClient) listTenants(ctx context.Context, token, state, pageToken string, pageSize int) (tenantPage, error) {
	q := url.Values{"pageSize": {fmt.Sprint(pageSize)}}
	if state != "" {
		q.Set("state", state)
	}
	if pageToken != "" {
		q.Set("pageToken", pageToken)
	}
	var page tenantPage
	err := c.call(ctx, token, http.MethodGet, "/v1/tenants", q, nil, &page)
	return page, err
}

// tenantView is GET /v1/tenants/{name}: the workflow's own answer, or its
// recorded summary marked stale while no worker answers.
type tenantView struct {
	tenant.Tenant
	Stale       bool   `json:"stale"`
	StaleReason string `json:"staleReason"`
}

func (c *apiClient) getTenant(ctx context.Context, token, name string) (tenantView, error) {
	var t tenantView
	err := c.call(ctx, token, http.MethodGet, "/v1/tenants/"+url.PathEscape(name), nil, nil, &t)
	return t, err
}

// createRequest is POST /v1/tenants's body, as the form fills it.
type createRequest struct {
	Name     string            `json:"name"`
	Template string            `json:"template,omitempty"`
	Stage    string            `json:"stage"`
	Plan     string            `json:"plan,omitempty"`
	Settings map[string]string `json:"settings,omitempty"`
}

func (c *apiClient) createTenant(ctx context.Context, token string, req createRequest) error {
	return c.call(ctx, token, http.MethodPost, "/v1/tenants", nil, req, nil)
}

// credentials fetches the tenant's first account and its password, which
// the platform then forgets; key makes a retried fetch get the same answer.
func (c *apiClient) credentials(ctx context.Context, token, name, key string) (tenant.Credentials, error) {
	var creds tenant.Credentials
	err := c.call(ctx, token, http.MethodGet, "/v1/tenants/"+url.PathEscape(name)+"/credentials", nil, nil, &creds, "Idempotency-Key", key)
	return creds, err
}

func (c *apiClient) requestDecommission(ctx context.Context, token, name, reason, key string) error {
	body := map[string]string{"reason": reason}
	return c.call(ctx, token, http.MethodDelete, "/v1/tenants/"+url.PathEscape(name), nil, body, nil, "Idempotency-Key", key)
}

// decommissionAction confirms or cancels a requested decommission.
func (c *apiClient) decommissionAction(ctx context.Context, token, name, action, key string) error {
	return c.call(ctx, token, http.MethodPost, "/v1/tenants/"+url.PathEscape(name)+"/decommission/"+action, nil, nil, nil, "Idempotency-Key", key)
}
