// Package drift holds the activities of the drift reconcile
// (workflows/reconcile) on the shared queue: what the tenants expect
// (their workflows, from visibility and their queries), what the proxy
// and DNS hold (read-only listings of their clients), and the repair
// Update sent to a tenant. Each engine's objects are listed on the
// engine's own worker (runtimes.Activities.ScanEngine).
package drift

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// Activities read the tenants and the outside systems for the reconcile.
type Activities struct {
	Client    client.Client
	Namespace string
	// Proxy and DNS are nil when their integration is off; Domain is the
	// tenants' DNS domain (integrations.Settings.Domain).
	Proxy  *proxy.Client
	DNS    *dns.Client
	Domain string
}

// TenantView is a running tenant as the reconcile sees it: its state and
// what its runtime should hold (nil when the tenant could not say).
type TenantView struct {
	State    tenant.Tenant    `json:"state"`
	Expected *tenant.Expected `json:"expected,omitempty"`
}

// Routes answers ListRoutes: Enabled is false when the proxy is off.
type Routes struct {
	Enabled bool                `json:"enabled"`
	Routes  []proxy.ListedRoute `json:"routes,omitempty"`
}

// Names answers InspectNames: Enabled is false when DNS is off.
type Names struct {
	Enabled bool            `json:"enabled"`
	Names   []dns.NameState `json:"names,omitempty"`
}

// RepairInput asks a tenant for a repair.
type RepairInput struct {
	Tenant  string               `json:"tenant"`
	Request tenant.RepairRequest `json:"request"`
}

// RepairAnswer is the tenant's answer: accepted (queued), or why not.
type RepairAnswer struct {
	Accepted bool   `json:"accepted"`
	Refused  string `json:"refused,omitempty"`
}

// queries is how many tenants are asked at once.
const queries = 8

// ListTenantStates lists the running tenant workflows (visibility) and
// asks each for its state and what its runtime should hold. A tenant
// that ended since it was listed is left out; another failed query fails
// the call, to be retried, rather than let the reconcile take a live
// tenant's objects for orphans.
func (a *Activities) ListTenantStates(ctx context.Context) ([]TenantView, error) {
	list, err := (&fleet.Activities{Client: a.Client, Namespace: a.Namespace}).ListTenants(ctx, fleet.ListInput{})
	if err != nil {
		return nil, err
	}
	views := make([]*TenantView, len(list))
	errs := make([]error, len(list))
	sem := make(chan struct{}, queries)
	var wg sync.WaitGroup
	for i := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			views[i], errs[i] = a.view(ctx, list[i].Name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := []TenantView{}
	for _, v := range views {
		if v != nil {
			out = append(out, *v)
		}
	}
	return out, nil
}

// view asks one tenant (nil: it ended).
func (a *Activities) view(ctx context.Context, name string) (*TenantView, error) {
	var v TenantView
	gone, err := a.query(ctx, name, tenant.QueryState, &v.State)
	if gone || err != nil {
		return nil, err
	}
	var e tenant.Expected
	if _, err := a.query(ctx, name, tenant.QueryExpected, &e); err == nil {
		v.Expected = &e
	}
	return &v, nil
}

func (a *Activities) query(ctx context.Context, name, query string, into any) (gone bool, err error) {
	val, err := a.Client.QueryWorkflow(ctx, tenant.WorkflowID(name), "", query)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return true, nil
	}
	if err == nil {
		err = val.Get(into)
	}
	if err != nil {
		return false, fmt.Errorf("ask tenant %s (%s): %w", name, query, err)
	}
	return false, nil
}

// ListRoutes lists Tenantflow's routes in the proxy.
func (a *Activities) ListRoutes(ctx context.Context) (Routes, error) {
	if a.Proxy == nil {
		return Routes{}, nil
	}
	rs, err := a.Proxy.Routes(ctx)
	return Routes{Enabled: true, Routes: rs}, err
}

// InspectNames reads the DNS name of each tenant named.
func (a *Activities) InspectNames(ctx context.Context, tenants []string) (Names, error) {
	if a.DNS == nil || a.Domain == "" {
		return Names{}, nil
	}
	out := Names{Enabled: true, Names: []dns.NameState{}}
	for _, t := range tenants {
		st, err := a.DNS.Inspect(ctx, t, t+"."+a.Domain)
		if err != nil {
			return Names{}, err
		}
		out.Names = append(out.Names, st)
	}
	return out, nil
}

// RequestRepair sends the tenant the repair Update and returns once it
// is queued. A tenant that is gone, or refuses (not active), is answered
// as not accepted, not as a failure.
func (a *Activities) RequestRepair(ctx context.Context, in RepairInput) (RepairAnswer, error) {
	h, err := a.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   tenant.WorkflowID(in.Tenant),
		UpdateName:   tenant.UpdateRepair,
		Args:         []any{in.Request},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var notFound *serviceerror.NotFound
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return RepairAnswer{Accepted: true}, nil
	case errors.As(err, &notFound):
		return RepairAnswer{Refused: "no running tenant workflow"}, nil
	case errors.As(err, &appErr):
		return RepairAnswer{Refused: appErr.Message()}, nil
	}
	return RepairAnswer{}, fmt.Errorf("ask tenant %s for a repair: %w", in.Tenant, err)
}
