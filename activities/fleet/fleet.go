// Package fleet acts on the fleet of tenant workflows through Temporal
// itself: it lists tenants from visibility (and, for a release that limits
// its cut-overs per host, asks each where it runs) and asks one tenant's
// entity workflow to apply a release through an Update. A release never
// touches a tenant's containers directly: the tenant's own workflow runs
// the cut-over, one operation at a time, which is what keeps a release from
// ever meeting a provisioning, a decommission or another release on the
// same tenant.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// ErrInvalidSelector is the failure type of a tenant name or stage that
// cannot be a tenant's.
const ErrInvalidSelector = "InvalidTenantSelector"

// ListInput selects tenants: those of Stage (every stage when empty), and
// of Names when it is not empty. Hosts also asks each listed tenant where
// it runs, for a release that limits its cut-overs per host.
type ListInput struct {
	Stage string   `json:"stage,omitempty"`
	Names []string `json:"names,omitempty"`
	Hosts bool     `json:"hosts,omitempty"`
}

// Tenant is a running tenant as visibility shows it, and, when asked for
// (ListInput.Hosts), the fleet host its own state names.
type Tenant struct {
	Name  string `json:"name"`
	Stage string `json:"stage"`
	State string `json:"state"`
	Image string `json:"image,omitempty"`
	// Host is the fleet host the tenant is placed on ("": not placed on
	// the fleet, or not asked for).
	Host string `json:"host,omitempty"`
}

// UpdateInput names the tenant, the Update id (which makes a retried
// activity join the Update it sent before instead of sending another) and
// what to apply.
type UpdateInput struct {
	Tenant   string            `json:"tenant"`
	UpdateID string            `json:"updateId"`
	Apply    tenant.ApplyInput `json:"apply"`
}

// Activities talk to Temporal with the worker's own client.
type Activities struct {
	Client    client.Client
	Namespace string
	// Heartbeat is activity.RecordHeartbeat in the worker; nil in direct
	// calls.
	Heartbeat func(ctx context.Context, details ...any)
	// HeartbeatEvery is how often a waiting UpdateTenant heartbeats (zero:
	// 10 s).
	HeartbeatEvery time.Duration
	Log            *slog.Logger
}

// label tells a name that can be a tenant's or a stage's (and so is safe
// to put in a visibility query).
func label(s string) bool { return spec.IsDNSLabel(s, 63) }

// pageSize is how many tenants one visibility call lists.
const pageSize = 500

// The search attributes the Tenant workflow keeps current.
var (
	stageKey  = searchattr.Stage.GetName()
	tenantKey = searchattr.TenantID.GetName()
	stateKey  = searchattr.TenantState.GetName()
	imageKey  = searchattr.Image.GetName()
)

// ListTenants lists the running tenant workflows of the selection, sorted
// by name. Visibility is eventually consistent: a tenant created a moment
// ago may be missing, which a release reports as skipped.
func (a *Activities) ListTenants(ctx context.Context, in ListInput) ([]Tenant, error) {
	q := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", tenant.WorkflowType)
	if in.Stage != "" {
		if !label(in.Stage) {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("stage %q is not a stage name", in.Stage), ErrInvalidSelector, nil)
		}
		q += fmt.Sprintf(" AND %s = '%s'", stageKey, in.Stage)
	}
	if len(in.Names) > 0 {
		quoted := make([]string, len(in.Names))
		for i, n := range in.Names {
			if !label(n) {
				return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("tenant %q is not a tenant name", n), ErrInvalidSelector, nil)
			}
			quoted[i] = "'" + n + "'"
		}
		q += fmt.Sprintf(" AND %s IN (%s)", tenantKey, strings.Join(quoted, ", "))
	}
	var out []Tenant
	seen := map[string]bool{}
	var token []byte
	for {
		resp, err := a.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: a.Namespace, Query: q, PageSize: pageSize, NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list tenants (%s): %w", q, err)
		}
		for _, e := range resp.Executions {
			sa := e.GetSearchAttributes().GetIndexedFields()
			t := Tenant{Name: keyword(sa[tenantKey]), Stage: keyword(sa[stageKey]), State: keyword(sa[stateKey]), Image: keyword(sa[imageKey])}
			if t.Name == "" {
				t.Name = strings.TrimPrefix(e.GetExecution().GetWorkflowId(), "tenant:")
			}
			if !seen[t.Name] {
				seen[t.Name] = true
				out = append(out, t)
			}
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	slices.SortFunc(out, func(x, y Tenant) int { return strings.Compare(x.Name, y.Name) })
	if in.Hosts {
		if err := a.addHosts(ctx, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// hostQueries is how many tenants' state queries run at once.
const hostQueries = 8

// addHosts fills in each tenant's host from its workflow's state query:
// visibility does not know it, and the tenant's own state is what its
// moves keep current. A tenant that ended since it was listed keeps host
// "" (its cut-over is skipped anyway); any other failed query fails the
// call, to be retried, rather than let a release guess a host.
func (a *Activities) addHosts(ctx context.Context, tenants []Tenant) error {
	sem := make(chan struct{}, hostQueries)
	errs := make([]error, len(tenants))
	var wg sync.WaitGroup
	for i := range tenants {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			tenants[i].Host, errs[i] = a.hostOf(ctx, tenants[i].Name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// hostOf is the fleet host the tenant's state names ("" when unplaced).
func (a *Activities) hostOf(ctx context.Context, name string) (string, error) {
	v, err := a.Client.QueryWorkflow(ctx, tenant.WorkflowID(name), "", tenant.QueryState)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return "", nil
	}
	var st tenant.Tenant
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		return "", fmt.Errorf("ask tenant %s for its host: %w", name, err)
	}
	if st.Placement == nil {
		return "", nil
	}
	return st.Placement.Host, nil
}

// keyword decodes a Keyword search attribute ("" when unset).
func keyword(p *commonpb.Payload) string {
	var s string
	if p == nil || converter.GetDefaultDataConverter().FromPayload(p, &s) != nil {
		return ""
	}
	return s
}

// UpdateTenant asks the tenant's workflow to apply a release and waits for
// its answer, heartbeating meanwhile (the tenant may first finish another
// operation). A tenant that does not exist or refuses (not active) is
// reported as skipped, not as a failure of the activity.
func (a *Activities) UpdateTenant(ctx context.Context, in UpdateInput) (tenant.ApplyResult, error) {
	if !label(in.Tenant) {
		return tenant.ApplyResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("tenant %q is not a tenant name", in.Tenant), ErrInvalidSelector, nil)
	}
	stop := a.heartbeatWhileWaiting(ctx, in.Tenant)
	defer stop()
	handle, err := a.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		UpdateID:     in.UpdateID,
		WorkflowID:   tenant.WorkflowID(in.Tenant),
		UpdateName:   tenant.UpdateApplyRelease,
		Args:         []any{in.Apply},
		WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	var res tenant.ApplyResult
	if err == nil {
		err = handle.Get(ctx, &res)
	}
	var notFound *serviceerror.NotFound
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &notFound):
		return skipped(in.Tenant, "no running tenant workflow: "+notFound.Error()), nil
	case errors.As(err, &appErr):
		// The validator's refusal (not active, being decommissioned).
		return skipped(in.Tenant, appErr.Message()), nil
	default:
		return tenant.ApplyResult{}, fmt.Errorf("apply release %s to tenant %s: %w", in.Apply.Release, in.Tenant, err)
	}
}

// CancelRelease tells the tenant that the release was aborted: a cut-over
// of it under way stops and is rolled back (the old instance keeps
// serving), and one still waiting for its turn never starts. A Signal:
// the tenant acts on it at once, whatever operation it runs, and a tenant
// that is gone has nothing to stop.
func (a *Activities) CancelRelease(ctx context.Context, in tenant.CancelInput) error {
	if !label(in.Tenant) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("tenant %q is not a tenant name", in.Tenant), ErrInvalidSelector, nil)
	}
	err := a.Client.SignalWorkflow(ctx, tenant.WorkflowID(in.Tenant), "", tenant.SignalCancelRelease, in)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cancel release %s on tenant %s: %w", in.Release, in.Tenant, err)
	}
	return nil
}

func skipped(name, why string) tenant.ApplyResult {
	return tenant.ApplyResult{Tenant: name, Outcome: tenant.OutcomeSkipped, Error: why}
}

// heartbeatWhileWaiting keeps the activity alive while the Update waits.
func (a *Activities) heartbeatWhileWaiting(ctx context.Context, tenant string) (stop func()) {
	if a.Heartbeat == nil {
		return func() {}
	}
	every := a.HeartbeatEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.Heartbeat(ctx, "waiting for tenant "+tenant)
			}
		}
	}()
	return func() { cancel(); <-done }
}
