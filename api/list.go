package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/tenantflow/tenantflow/workflows/searchattr"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// tenantSummary is one tenant as visibility knows it: cheap to list, but
// only as fresh as the workflow's last search-attribute upsert.
type tenantSummary struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Stage      string    `json:"stage"`
	Release    string    `json:"release,omitempty"` // the release that set the image
	Image      string    `json:"image,omitempty"`
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Status     string    `json:"status"`
	StartTime  time.Time `json:"startTime"`
}

type listTenantsResponse struct {
	Tenants       []tenantSummary `json:"tenants"`
	NextPageToken string          `json:"nextPageToken,omitempty"`
}

// listQuery is what GET /v1/tenants asks visibility for.
type listQuery struct {
	query     string
	pageSize  int32
	pageToken []byte
}

// parseListQuery validates the query parameters and builds the visibility
// query. Only values checked against fixed lists reach the query string, so
// nothing a client sends can change its meaning.
func parseListQuery(c *gin.Context) (listQuery, *fieldError) {
	clauses := []string{
		fmt.Sprintf("WorkflowType = '%s'", tenant.WorkflowType),
		// Each continue-as-new closes a run; the tenant lives on in the next.
		"ExecutionStatus != 'ContinuedAsNew'",
	}
	if state := c.Query("state"); state != "" {
		if !slices.Contains(tenant.States, tenant.State(state)) {
			return listQuery{}, badField("state", "unknown state %q (one of: %s)", state, tenant.StatesText())
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", searchattr.TenantState.GetName(), state))
	}
	if stage := c.Query("stage"); stage != "" {
		if err := validateStage("stage", stage, false); err != nil {
			return listQuery{}, err
		}
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", searchattr.Stage.GetName(), stage))
	}
	size, token, ferr := parsePage(c)
	if ferr != nil {
		return listQuery{}, ferr
	}
	return listQuery{query: strings.Join(clauses, " AND "), pageSize: size, pageToken: token}, nil
}

// parsePage reads the pageSize and pageToken parameters every list takes.
func parsePage(c *gin.Context) (size int32, token []byte, ferr *fieldError) {
	size = defaultPageSize
	if v := c.Query("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return 0, nil, badField("pageSize", "pageSize must be a whole number from 1 to %d", maxPageSize)
		}
		size = int32(n)
	}
	if v := c.Query("pageToken"); v != "" {
		t, ok := decodePageToken(v)
		if !ok {
			return 0, nil, badField("pageToken", "pageToken is not a token this API returned (use nextPageToken of the previous page, unchanged)")
		}
		token = t
	}
	return size, token, nil
}

// A page token wraps Temporal's opaque token with a CRC-32 of it, so a
// token this API never handed out (a typo, a cut URL, "garbage") is a 400
// at once, not a round trip to visibility that fails slowly.
const pageTokenSumLen = 4

func encodePageToken(t []byte) string {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, pageTokenSumLen+len(t)), crc32.ChecksumIEEE(t))
	return base64.RawURLEncoding.EncodeToString(append(b, t...))
}

func decodePageToken(v string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil || len(b) <= pageTokenSumLen {
		return nil, false
	}
	t := b[pageTokenSumLen:]
	return t, binary.BigEndian.Uint32(b) == crc32.ChecksumIEEE(t)
}

// listWorkflows asks visibility for a page of what (tenants, releases). A
// page token Temporal refuses (InvalidArgument: expired, or from another
// server) is the client's: 400 naming pageToken. On failure the request
// is answered (ok false).
func (s *server) listWorkflows(c *gin.Context, what, query string, size int32, token []byte) (*workflowservice.ListWorkflowExecutionsResponse, bool) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	resp, err := s.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: size, NextPageToken: token, Query: query,
	})
	var invalid *serviceerror.InvalidArgument
	switch {
	case err == nil:
		return resp, true
	case len(token) > 0 && errors.As(err, &invalid):
		s.log.WarnContext(ctx, "list "+what+": page token refused", "error", err)
		respondFieldError(c, badField("pageToken", "pageToken was refused (expired?): list again from the first page"))
	default:
		s.log.ErrorContext(ctx, "list "+what+" failed", "query", query, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("list %s: %v", what, err))
	}
	return nil, false
}

// listTenants lists tenants from Temporal visibility, newest run per name.
func (s *server) listTenants(c *gin.Context) {
	q, ferr := parseListQuery(c)
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	resp, ok := s.listWorkflows(c, "tenants", q.query, q.pageSize, q.pageToken)
	if !ok {
		return
	}
	out := listTenantsResponse{Tenants: summarize(resp.GetExecutions())}
	if t := resp.GetNextPageToken(); len(t) > 0 {
		out.NextPageToken = encodePageToken(t)
	}
	c.JSON(http.StatusOK, out)
}

// summarize turns executions into tenants, keeping only the newest run of
// each name: a tenant re-created after a failed provisioning has two runs.
// Runs of one name on different pages are not merged.
func summarize(execs []*workflowpb.WorkflowExecutionInfo) []tenantSummary {
	out := make([]tenantSummary, 0, len(execs))
	index := map[string]int{}
	for _, e := range execs {
		t := summary(e)
		if i, seen := index[t.Name]; seen {
			if t.StartTime.After(out[i].StartTime) {
				out[i] = t
			}
			continue
		}
		index[t.Name] = len(out)
		out = append(out, t)
	}
	return out
}

func summary(e *workflowpb.WorkflowExecutionInfo) tenantSummary {
	fields := e.GetSearchAttributes().GetIndexedFields()
	t := tenantSummary{
		Name:       keyword(fields, searchattr.TenantID.GetName()),
		State:      keyword(fields, searchattr.TenantState.GetName()),
		Stage:      keyword(fields, searchattr.Stage.GetName()),
		Release:    keyword(fields, searchattr.Release.GetName()),
		Image:      keyword(fields, searchattr.Image.GetName()),
		WorkflowID: e.GetExecution().GetWorkflowId(),
		RunID:      e.GetExecution().GetRunId(),
		Status:     e.GetStatus().String(),
	}
	if ts := e.GetStartTime(); ts != nil {
		t.StartTime = ts.AsTime()
	}
	if t.Name == "" {
		// Started without search attributes (e.g. by hand): the id still
		// names the tenant.
		t.Name = strings.TrimPrefix(t.WorkflowID, tenant.WorkflowID(""))
	}
	return t
}

// keyword decodes a Keyword search attribute; a missing or undecodable one
// is shown as empty rather than failing the whole list.
func keyword(fields map[string]*commonpb.Payload, name string) string {
	p, ok := fields[name]
	if !ok || p == nil {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}
