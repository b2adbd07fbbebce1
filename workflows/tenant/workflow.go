// Package tenant is the Tenant entity workflow and its contract (its
// type, Update, Query and Signal names, payloads and states), which the
// API and the fleet activities import.
//
// Each tenant has one durable home: the Tenant entity workflow, id
// "tenant:<name>". It owns the tenant's state and runs the operations on that
// tenant (provisioning first; releases and decommission later) one at a time,
// so two operations on one tenant can never overlap: that is a property of
// the design, not a check that could race.
package tenant

import (
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

// entity is the in-memory state of one workflow run.
type entity struct {
	spec     Spec
	template spec.Template
	secrets  map[string]string
	state    Tenant
	// busy is set while an operation (provisioning, a release's
	// cut-over) runs; the next one waits for it to clear.
	busy bool
	// cutting is the release cut-over under way until its route switched;
	// cancelledReleases are the releases aborted while this run lived.
	cutting *runningCutover
	// cutoverKind names what a cut-over serves in its error and metrics
	// ("release" when empty; "plan" for a plan change).
	cutoverKind       string
	cancelledReleases map[cancelKey]bool
}

// Workflow is the tenant's entity workflow (see the package comment):
// provisioning on its first run, then the tenant's life, renewed by
// continue-as-new between operations.
func Workflow(ctx workflow.Context, in Input) (Tenant, error) {
	t := newEntity(ctx, in)
	if err := t.setup(ctx); err != nil {
		return t.state, err
	}
	if in.State == nil {
		if err := t.operate(func() error { return t.provision(ctx) }); err != nil {
			// Releases that queued meanwhile learn that the tenant is
			// failed (skipped) before the workflow ends.
			_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
			return t.state, err
		}
	}
	ended, err := t.live(ctx)
	if err != nil || ended {
		return t.state, err
	}
	return t.state, t.continueAsNew(ctx)
}

// newEntity is the run's tenant: new on the first run, carried over by
// continue-as-new after.
func newEntity(ctx workflow.Context, in Input) *entity {
	t := &entity{spec: in.Spec, template: in.Template, secrets: in.Secrets}
	if in.State != nil {
		t.state = *in.State
		t.state.Settings = t.template.SettingValues() // tenants from before settings
		return t
	}
	now := workflow.Now(ctx)
	t.state = Tenant{
		Name: in.Spec.Name, State: StateProvisioning, Stage: in.Spec.Stage,
		Template: in.Spec.Template, Runtime: in.Template.Runtime, CreatedAt: now, UpdatedAt: now,
		MaintenanceWindow: in.Spec.MaintenanceWindow, Plan: in.Spec.Plan, Settings: in.Template.SettingValues(),
	}
	return t
}

// operate runs one operation on the tenant, marking it busy meanwhile:
// Updates that start another operation wait for it to end.
func (t *entity) operate(op func() error) error {
	t.busy = true
	defer func() { t.busy = false }()
	return op()
}

// live runs what the tenant's life brings once it is provisioned. Later
// operations (releases, decommission, restore) arrive as Updates and run
// one at a time (t.busy). A confirmed decommission runs here, and a
// decommissioned tenant waits here for the end of its retention.
// Meanwhile the tenant just lives. live returns when the history should
// be renewed, or with ended once the tenant's data was purged: its story
// ends and its name may be used again.
func (t *entity) live(ctx workflow.Context) (ended bool, err error) {
	renew := func() bool { return workflow.GetInfo(ctx).GetContinueAsNewSuggested() }
	t.scheduleBackups(ctx)
	for {
		due := func() bool {
			return !t.busy && (t.decommissionDue() || t.restoreDue() || t.retained() || t.restoreBackupDue() || t.degradeDue() || t.repairDue() || t.moveDue() || t.suspendDue() || t.resumeDue() || t.protectionDue(ctx) || t.domainsDue(ctx) || t.planChangeDue() || t.settingsChangeDue() || renew())
		}
		if err := t.awaitUntil(ctx, earliest(t.nextWake(), t.nextDomainCheck()), due); err != nil {
			return false, err
		}
		switch {
		case !due():
			continue // woken by the schedule while another operation runs
		case t.decommissionDue():
			_ = t.operate(func() error { t.decommission(ctx); return nil })
		case t.restoreDue():
			_ = t.operate(func() error { t.restore(ctx); return nil })
		case t.restoreBackupDue():
			_ = t.operate(func() error { t.restoreBackup(ctx); return nil })
		case t.degradeDue():
			t.degrade(ctx)
		case t.repairDue():
			_ = t.operate(func() error { t.repair(ctx); return nil })
		case t.moveDue():
			_ = t.operate(func() error { t.move(ctx); return nil })
		case t.suspendDue():
			_ = t.operate(func() error { t.suspend(ctx); return nil })
		case t.resumeDue():
			_ = t.operate(func() error { t.resume(ctx); return nil })
		case t.protectionDue(ctx):
			_ = t.operate(func() error { t.protect(ctx); return nil })
		case t.domainsDue(ctx):
			_ = t.operate(func() error { t.checkDomains(ctx); return nil })
		case t.planChangeDue():
			_ = t.operate(func() error { t.changePlan(ctx); return nil })
		case t.settingsChangeDue():
			_ = t.operate(func() error { t.changeSettings(ctx); return nil })
		case t.retained() && !renew():
			purged, err := t.retain(ctx)
			if err != nil || purged {
				if purged {
					_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
				}
				return purged, err
			}
		default:
			return false, nil // the Await's last reason: continue-as-new is suggested
		}
	}
}

// earliest is the earlier of two wake times (zero: none).
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// awaitUntil waits for cond, or until wake (zero: no limit) when the
// schedule needs the loop to look again.
func (t *entity) awaitUntil(ctx workflow.Context, wake time.Time, cond func() bool) error {
	if wake.IsZero() {
		return workflow.Await(ctx, cond)
	}
	if d := wake.Sub(workflow.Now(ctx)); d > 0 {
		_, err := workflow.AwaitWithTimeout(ctx, d, cond)
		return err
	}
	return workflow.Await(ctx, cond)
}

// continueAsNew renews the history once every handler finished, carrying
// the tenant over.
func (t *entity) continueAsNew(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	state := t.state
	return workflow.NewContinueAsNewError(ctx, WorkflowType, Input{
		Spec: t.spec, Template: t.template, State: &state, Secrets: t.secrets,
	})
}

// setState records a lifecycle change in the state and the search attributes.
func (t *entity) setState(ctx workflow.Context, state State, errMsg string) {
	t.state.State = flow.Must(t.state.State.To(state))
	t.state.Error = errMsg
	t.state.UpdatedAt = workflow.Now(ctx)
	t.upsertSearchAttributes(ctx)
}

// upsertSearchAttributes publishes the tenant's state to visibility, and
// its summary to the memo for reads without a worker.
func (t *entity) upsertSearchAttributes(ctx workflow.Context) {
	updates := []temporal.SearchAttributeUpdate{
		searchattr.TenantID.ValueSet(t.state.Name),
		searchattr.TenantState.ValueSet(string(t.state.State)),
		searchattr.Stage.ValueSet(t.state.Stage),
	}
	if t.state.Image != "" {
		updates = append(updates, searchattr.Image.ValueSet(t.state.Image))
	}
	if t.state.Release != "" {
		updates = append(updates, searchattr.Release.ValueSet(t.state.Release))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		// Visibility is for people; a failed upsert must not fail the tenant.
		t.logger(ctx).Warn("upsert search attributes failed", "error", err)
	}
	t.upsertMemo(ctx)
}

// logger tags every line with the tenant, so ops can grep one tenant's story
// across workflow and activity logs.
func (t *entity) logger(ctx workflow.Context) log.Logger {
	return log.With(workflow.GetLogger(ctx), "tenant", t.spec.Name)
}

// countOperation records an operation's outcome and duration as metrics
// (tenantflow_operations_total, tenantflow_operation_duration); the SDK
// suppresses them during replay, so each is counted once.
func (t *entity) countOperation(ctx workflow.Context, op, outcome string, started time.Time) {
	m := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{
		"operation": op, "outcome": outcome, "template": t.spec.Template, "stage": t.spec.Stage,
	})
	m.Counter("tenantflow_operations_total").Inc(1)
	m.Timer("tenantflow_operation_duration").Record(workflow.Now(ctx).Sub(started))
}

// step marks the start of a named step for the progress query.
func (t *entity) step(name string) { t.state.Progress.Step = name }

// stepDone counts a finished step.
func (t *entity) stepDone() { t.state.Progress.Done++ }
