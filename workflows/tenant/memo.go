package tenant

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/internal/textclip"
)

// MemoSummary is the memo key under which the tenant's workflow records a
// Summary of its state each time it upserts its search attributes. The
// API answers GET /v1/tenants/{name} from it, marked stale, when no
// worker answers the state query (a worker outage or restart).
const MemoSummary = "summary"

// versionStateMemo gates the memo's UpsertMemo command: histories recorded
// before it replay without the command.
const versionStateMemo = "tenant-state-memo"

// summaryTextMax bounds each free-text field of a Summary (the error, the
// degraded reason), keeping the memo well under 2 KB.
const summaryTextMax = 400

// Summary is the compact, secret-free state a tenant's memo records: what
// the portal shows of a tenant, readable without a worker. Its fields
// carry the names of Tenant's.
type Summary struct {
	Name     string `json:"name"`
	State    State  `json:"state"`
	Stage    string `json:"stage"`
	Template string `json:"template"`
	Image    string `json:"image,omitempty"`
	Release  string `json:"release,omitempty"`
	URL      string `json:"url,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Host is the fleet host the tenant is placed on ("": not placed).
	Host  string `json:"host,omitempty"`
	Error string `json:"error,omitempty"`
	// Degraded is why the tenant cannot serve as it should ("": nothing
	// known wrong).
	Degraded  string    `json:"degraded,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Summarize is t's summary for the memo, its free text clipped.
func Summarize(t Tenant) Summary {
	s := Summary{
		Name: t.Name, State: t.State, Stage: t.Stage, Template: t.Template, Image: t.Image, Release: t.Release,
		URL: t.URL, Endpoint: t.Endpoint, Error: textclip.Clip(t.Error, summaryTextMax), UpdatedAt: t.UpdatedAt,
	}
	if t.Placement != nil {
		s.Host = t.Placement.Host
	}
	if t.Degraded != nil {
		s.Degraded = textclip.Clip(t.Degraded.Reason, summaryTextMax)
	}
	return s
}

// upsertMemo records the state's summary in the workflow's memo (see
// MemoSummary); runs from before versionStateMemo record none.
func (t *entity) upsertMemo(ctx workflow.Context) {
	if workflow.GetVersion(ctx, versionStateMemo, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoSummary: Summarize(t.state)}); err != nil {
		// The memo is a fallback for reads; it must not fail the tenant.
		t.logger(ctx).Warn("upsert memo failed", "error", err)
	}
}
