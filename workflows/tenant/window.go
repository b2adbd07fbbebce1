package tenant

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// Maintenance windows. A tenant may have one (spec.Window: "Sun
// 02:00-05:00 Europe/Paris"), set at creation or later by the configure
// Update. A release's cut-over arriving while the window is closed
// changes nothing and answers OutcomeOutsideWindow with when the window
// next opens: the release asks again then. A cut-over that began inside
// the window runs to its end. Ops may override the window for an
// emergency fix; the cut-over then carries who and why, and the tenant
// logs them. A tenant without a window takes a release at any time.

// UpdateConfigure changes the tenant's settings (PATCH
// /v1/tenants/{name}): today its maintenance window, applied at once.
const UpdateConfigure = "configure"

// ErrConfigureRefused is the failure type of a refused configure (HTTP
// 409): the tenant is decommissioned or being decommissioned.
const ErrConfigureRefused = "ConfigureRefused"

// ConfigureRequest says who changes which settings; a nil field stays as
// it is.
type ConfigureRequest struct {
	By string `json:"by"`
	// MaintenanceWindow sets the window (spec.Window); "" removes it.
	MaintenanceWindow *string `json:"maintenanceWindow,omitempty"`
}

// WindowOverride is ops' leave to cut a tenant over outside its
// maintenance window.
type WindowOverride struct {
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

func (t *entity) configure(ctx workflow.Context, in ConfigureRequest) (Tenant, error) {
	if in.MaintenanceWindow != nil {
		// Kept as it came (the validator parsed it; the API sends the
		// canonical form): parsing again here would read tzdata outside a
		// side effect.
		w := strings.TrimSpace(*in.MaintenanceWindow)
		t.logger(ctx).Info("maintenance window set", "by", in.By, "window", w, "was", t.state.MaintenanceWindow)
		t.state.MaintenanceWindow = w
	}
	t.state.UpdatedAt = workflow.Now(ctx)
	t.upsertMemo(ctx)
	return t.state, nil
}

func (t *entity) validateConfigure(ctx workflow.Context, in ConfigureRequest) error {
	switch t.state.State {
	case StateDecommissioning, StateDecommissioned, StateFailed:
		return flow.Refuse(ErrConfigureRefused, "tenant %s is %s: its settings no longer change", t.spec.Name, t.state.State)
	}
	if in.By == "" {
		return flow.Refuse(ErrConfigureRefused, "a configure needs a requester (by)")
	}
	if in.MaintenanceWindow != nil && *in.MaintenanceWindow != "" {
		if _, err := spec.ParseWindow(*in.MaintenanceWindow); err != nil {
			return flow.Refuse(ErrConfigureRefused, "maintenanceWindow: %v", err)
		}
	}
	return nil
}

// outsideWindow tells whether a cut-over must wait for the tenant's
// maintenance window, and when that opens. The answer is a side effect:
// the zone's rules come from tzdata, which may change between a run and
// its replay.
func (t *entity) outsideWindow(ctx workflow.Context, in ApplyInput) (opens time.Time, outside bool) {
	if t.state.MaintenanceWindow == "" {
		return time.Time{}, false
	}
	if o := in.Override; o != nil {
		t.logger(ctx).Warn("maintenance window overridden", "release", in.Release, "window", t.state.MaintenanceWindow, "by", o.By, "reason", o.Reason)
		return time.Time{}, false
	}
	now := workflow.Now(ctx)
	var next *time.Time
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		w, err := spec.ParseWindow(t.state.MaintenanceWindow)
		if err != nil {
			return (*time.Time)(nil) // validated when set: a worker without the zone lets it through
		}
		if open, at, _ := w.At(now); !open {
			return &at
		}
		return (*time.Time)(nil)
	}).Get(&next)
	if err != nil || next == nil {
		return time.Time{}, false
	}
	return *next, true
}

// deferToWindow is the answer to a cut-over that must wait.
func (t *entity) deferToWindow(ctx workflow.Context, res ApplyResult, opens time.Time) ApplyResult {
	res.Outcome = OutcomeOutsideWindow
	res.WindowOpensAt = &opens
	res.Error = fmt.Sprintf("outside its maintenance window (%s): it opens at %s", t.state.MaintenanceWindow, opens.UTC().Format(time.RFC3339))
	t.logger(ctx).Info("cut-over waits for the maintenance window", "window", t.state.MaintenanceWindow, "opens", opens)
	return res
}
