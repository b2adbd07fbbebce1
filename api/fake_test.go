package api

import (
	"context"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	enumspb "go.temporal.io/api/enums/v1"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Test tokens, one per role (at least 16 characters each).
const (
	opsToken         = "ops-token-0123456789"
	distributorToken = "distributor-token-0123456789"
	developerToken   = "developer-token-0123456789"
)

// startCall records one ExecuteWorkflow call.
type startCall struct {
	opts     client.StartWorkflowOptions
	workflow any
	args     []any
}

// fakeTemporal is an in-memory Temporal: it records what the API asks and
// answers with canned values or errors.
type fakeTemporal struct {
	mu sync.Mutex

	starts   []startCall
	startErr error
	runID    string

	queries     []string // workflow ids queried
	queryTypes  []string
	queryArgs   [][]any
	queryResult any
	queryErr    error
	queryBlock  bool // wait for the context's end, like a query no worker answers
	queryPanic  bool

	listReqs []*workflowservice.ListWorkflowExecutionsRequest
	listResp *workflowservice.ListWorkflowExecutionsResponse
	listErr  error

	healthErr      error
	healthDeadline time.Time

	describes    []string // workflow ids described
	describeResp *workflowservice.DescribeWorkflowExecutionResponse
	describeErr  error

	updates      []client.UpdateWorkflowOptions
	updateResult any
	updateErr    error // returned by UpdateWorkflow
	updateGetErr error // returned by the handle's Get
}

func (f *fakeTemporal) UpdateWorkflow(_ context.Context, opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, opts)
	if f.updateErr != nil {
		return nil, f.updateErr
	}
	return fakeUpdateHandle{id: opts.WorkflowID, result: f.updateResult, err: f.updateGetErr}, nil
}

// fakeUpdateHandle answers Get with a canned result through the real
// default data converter, as the SDK's handle would.
type fakeUpdateHandle struct {
	id     string
	result any
	err    error
}

func (h fakeUpdateHandle) WorkflowID() string { return h.id }
func (h fakeUpdateHandle) RunID() string      { return "run-1" }
func (h fakeUpdateHandle) UpdateID() string   { return "update-1" }
func (h fakeUpdateHandle) Get(_ context.Context, valuePtr any) error {
	if h.err != nil {
		return h.err
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(h.result)
	if err != nil {
		return err
	}
	return converter.GetDefaultDataConverter().FromPayload(p, valuePtr)
}

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, opts client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, startCall{opts: opts, workflow: workflow, args: args})
	if f.startErr != nil {
		return nil, f.startErr
	}
	return fakeRun{id: opts.ID, runID: f.runID}, nil
}

func (f *fakeTemporal) QueryWorkflow(ctx context.Context, workflowID, _ string, queryType string, args ...any) (converter.EncodedValue, error) {
	f.mu.Lock()
	f.queries = append(f.queries, workflowID)
	f.queryTypes = append(f.queryTypes, queryType)
	f.queryArgs = append(f.queryArgs, args)
	block, panics, result, err := f.queryBlock, f.queryPanic, f.queryResult, f.queryErr
	f.mu.Unlock()
	if panics {
		panic("boom")
	}
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	payloads, err := converter.GetDefaultDataConverter().ToPayloads(result)
	if err != nil {
		return nil, err
	}
	return encodedValue{payloads: payloads}, nil
}

func (f *fakeTemporal) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listReqs = append(f.listReqs, req)
	if f.listErr != nil {
		return nil, f.listErr
	}
	if f.listResp == nil {
		return &workflowservice.ListWorkflowExecutionsResponse{}, nil
	}
	return f.listResp, nil
}

func (f *fakeTemporal) CheckHealth(ctx context.Context, _ *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.healthDeadline, _ = ctx.Deadline()
	if f.healthErr != nil {
		return nil, f.healthErr
	}
	return &client.CheckHealthResponse{}, nil
}

// DescribeTaskQueue answers that nobody polls (the API tests have no
// workers); the e2e tests ask a real server.
func (f *fakeTemporal) DescribeTaskQueue(context.Context, string, enumspb.TaskQueueType) (*workflowservice.DescribeTaskQueueResponse, error) {
	return &workflowservice.DescribeTaskQueueResponse{}, nil
}

// DescribeWorkflowExecution answers with the canned description (by
// default one without a memo).
func (f *fakeTemporal) DescribeWorkflowExecution(_ context.Context, workflowID, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.describes = append(f.describes, workflowID)
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	if f.describeResp == nil {
		return &workflowservice.DescribeWorkflowExecutionResponse{}, nil
	}
	return f.describeResp, nil
}

func (f *fakeTemporal) startCalls() []startCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]startCall(nil), f.starts...)
}

func (f *fakeTemporal) listCalls() []*workflowservice.ListWorkflowExecutionsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*workflowservice.ListWorkflowExecutionsRequest(nil), f.listReqs...)
}

// fakeRun is the minimal client.WorkflowRun ExecuteWorkflow returns.
type fakeRun struct{ id, runID string }

func (r fakeRun) GetID() string                  { return r.id }
func (r fakeRun) GetRunID() string               { return r.runID }
func (r fakeRun) GetFirstExecutionRunID() string { return r.runID }
func (r fakeRun) Get(context.Context, any) error { return nil }
func (r fakeRun) GetWithOptions(context.Context, any, client.WorkflowRunGetOptions) error {
	return nil
}

// encodedValue decodes real payloads, so the test goes through the same
// JSON round trip as a query answered by a worker.
type encodedValue struct{ payloads *commonpb.Payloads }

func (v encodedValue) HasValue() bool { return v.payloads != nil && len(v.payloads.Payloads) > 0 }
func (v encodedValue) Get(ptr any) error {
	return converter.GetDefaultDataConverter().FromPayloads(v.payloads, ptr)
}

// testEnv is a router over a fake Temporal with the real templates.
type testEnv struct {
	router    *gin.Engine
	temporal  *fakeTemporal
	templates spec.Templates
	logs      *harness.SyncBuffer
	registry  *prometheus.Registry
}

type envOption func(*Config)

func newTestEnv(t testing.TB, opts ...envOption) *testEnv {
	t.Helper()
	templates, err := spec.LoadTemplates("../deploy/templates")
	require.NoError(t, err)
	tokens, err := ParseTokens([]byte(`{"ops":"` + opsToken + `","distributor":"` + distributorToken + `","developer":"` + developerToken + `"}`))
	require.NoError(t, err)
	cfg := Config{TaskQueue: "tenants", Tokens: tokens}
	for _, o := range opts {
		o(&cfg)
	}
	f := &fakeTemporal{runID: "run-1"}
	logs := &harness.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	r, err := NewRouter(cfg, f, templates, log, reg)
	require.NoError(t, err)
	return &testEnv{router: r, temporal: f, templates: templates, logs: logs, registry: reg}
}

// do sends a request with an optional bearer token ("" for none).
func (e *testEnv) do(method, target, token, body string) *httptest.ResponseRecorder {
	req := newRequest(method, target, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return serve(e, req)
}

func newRequest(method, target, body string) *http.Request {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func serve(e *testEnv, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.router.ServeHTTP(rec, req)
	return rec
}
