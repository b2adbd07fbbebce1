package tenant

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// A settings change sets env values of the tenant's public service that
// its template lets a tenant choose (spec.SettingTemplate): the tenant's
// own copy of the template records them, and the public service is cut
// over to a new instance of the same image with them, the old one
// serving until the new one is healthy. A failure keeps the old values.

func (t *entity) validateChangeSettings(ctx workflow.Context, in ChangeSettingsRequest) error {
	c := t.state.SettingsChange
	switch {
	case in.By == "":
		return flow.Refuse(ErrSettingsRefused, "a settings change needs a requester (by)")
	case len(in.Settings) == 0:
		return flow.Refuse(ErrSettingsRefused, "a settings change needs a setting to change")
	case c != nil && c.pending():
		return flow.Refuse(ErrSettingsRefused, "tenant %s is changing its settings already (asked by %s)", t.spec.Name, c.By)
	case t.state.State != StateActive:
		return flow.Refuse(ErrSettingsRefused, "tenant %s is %s: only an active tenant changes its settings", t.spec.Name, t.state.State)
	}
	if name, problem := t.template.CheckSettings(in.Settings); problem != "" {
		return temporal.NewApplicationErrorWithOptions(problem, ErrSettingInvalid, temporal.ApplicationErrorOptions{
			NonRetryable: true, Details: []any{"settings." + name},
		})
	}
	return nil
}

// requestChangeSettings queues the change as the tenant's next operation.
func (t *entity) requestChangeSettings(ctx workflow.Context, in ChangeSettingsRequest) (SettingsChange, error) {
	c := &SettingsChange{Settings: in.Settings, Change: queued(ctx, in.By)}
	t.state.SettingsChange = c
	t.logger(ctx).Info("settings change requested", "settings", spec.SortedKeys(in.Settings), "by", in.By)
	return *c, nil
}

// settingsChangeDue: a queued settings change may run.
func (t *entity) settingsChangeDue() bool {
	c := t.state.SettingsChange
	return c != nil && c.due(t.state)
}

// changeSettings runs the queued settings change (see above).
func (t *entity) changeSettings(ctx workflow.Context) {
	c := t.state.SettingsChange
	c.start(ctx)
	failure := ""
	next, err := t.template.WithSettings(c.Settings)
	switch {
	case err != nil:
		failure = err.Error() // validated when asked: not reached
	case next.SameSettings(&t.template):
		t.template = *next // nothing the app sees changes: no cut-over
	default:
		failure = t.reconfigure(ctx, next, "settings", "settings", c.RequestedAt)
	}
	if failure != "" {
		t.logger(ctx).Warn("settings change failed", "error", failure)
	} else {
		t.state.Settings = t.template.SettingValues()
		t.logger(ctx).Info("settings changed", "by", c.By)
	}
	t.endChange(ctx, &c.Change, "settings change", failure)
}
