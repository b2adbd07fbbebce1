// Package workflows holds Tenantflow's deterministic workflow code: no I/O,
// no clocks, no randomness outside the SDK.
//
// Each tenant has one durable home: the Tenant entity workflow, id
// "tenant:<name>". It owns the tenant's state and runs the operations on that
// tenant (provisioning first; releases and decommission later) one at a time,
// so two operations on one tenant can never overlap: that is a property of
// the design, not a check that could race.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// TenantWorkflowType is the registered workflow type name shown in the Web UI.
const TenantWorkflowType = fleet.TenantWorkflowType

// QueryState is the query that returns a TenantState.
const QueryState = "state"

// TenantWorkflowID is the id of a tenant's entity workflow: starting it a
// second time for the same name is rejected by the server.
func TenantWorkflowID(name string) string { return fleet.TenantWorkflowID(name) }

// Lifecycle states of a tenant, as shown by the API and the TenantState
// search attribute.
const (
	StateProvisioning    = "provisioning"
	StateActive          = "active"
	StateUpdating        = "updating"
	StateDecommissioning = "decommissioning"
	StateDecommissioned  = "decommissioned"
	StateFailed          = "failed"
)

// TenantStates lists every lifecycle state (the values the TenantState
// search attribute takes).
var TenantStates = []string{
	StateProvisioning, StateActive, StateUpdating, StateDecommissioning,
	StateDecommissioned, StateRestoring, StateFailed,
}

// Stages a tenant can be in; releases reach staging first.
var Stages = []string{"staging", "prod"}

// Search attributes kept current on the tenant workflow so ops can filter in
// the Web UI (TenantState="failed", Stage="prod", …). They must be registered
// on the namespace (the dev server does it from the Makefile).
var (
	SATenantID    = temporal.NewSearchAttributeKeyKeyword("TenantId")
	SATenantState = temporal.NewSearchAttributeKeyKeyword("TenantState")
	SAStage       = temporal.NewSearchAttributeKeyKeyword("Stage")
	SARelease     = temporal.NewSearchAttributeKeyKeyword("Release")
	SAImage       = temporal.NewSearchAttributeKeyKeyword("Image")
)

// SearchAttributeKeys lists every search attribute the workflows use, for
// registration and start-up checks.
var SearchAttributeKeys = []temporal.SearchAttributeKey{SATenantID, SATenantState, SAStage, SARelease, SAImage}

// TenantSpec is what a client asks for when creating a tenant.
type TenantSpec struct {
	Name        string `json:"name"`
	Template    string `json:"template"`
	Stage       string `json:"stage"`
	RequestedBy string `json:"requestedBy,omitempty"`
}

// TenantInput starts (or continues as new) a tenant's entity workflow.
type TenantInput struct {
	Spec TenantSpec `json:"spec"`
	// Template is the template as it was when the tenant was created; later
	// edits of the file do not change existing tenants behind their back.
	Template spec.Template `json:"template"`
	// Carried across continue-as-new; empty on the first run.
	State   *TenantState      `json:"state,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
}

// Progress of the operation under way.
type Progress struct {
	Done  int    `json:"done"`
	Total int    `json:"total"`
	Step  string `json:"step"`
}

// TenantState is the tenant as the API shows it. It never holds secrets.
type TenantState struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Stage    string `json:"stage"`
	Template string `json:"template"`
	// Runtime runs the tenant (docker, openshift); empty for tenants from
	// before runtimes were named (Docker).
	Runtime string `json:"runtime,omitempty"`
	// ProvisionID is the run that provisioned the tenant; its runtime
	// objects carry it as their owner.
	ProvisionID string `json:"provisionId,omitempty"`
	// Image is what the public service runs; Release the release that put
	// it there (empty: the template's image since provisioning), and
	// PreviousImage what ran before, for a rollback release.
	Image         string `json:"image,omitempty"`
	Release       string `json:"release,omitempty"`
	PreviousImage string `json:"previousImage,omitempty"`
	// Decommission, once requested: its phase, the verified backup and
	// the end of retention.
	Decommission *Decommission `json:"decommission,omitempty"`
	// Generation of the public service's instance (see spec.Service).
	Generation int                      `json:"generation,omitempty"`
	URL        string                   `json:"url,omitempty"`      // public URL (through the proxy when routing is on)
	Endpoint   string                   `json:"endpoint,omitempty"` // the runtime's own address of the public service
	Progress   Progress                 `json:"progress"`
	Error      string                   `json:"error,omitempty"`
	Services   []runtimes.ServiceStatus `json:"services,omitempty"`
	Resources  []Resource               `json:"resources,omitempty"`
	Accounts   []Account                `json:"accounts,omitempty"`
	// When and by whom the first account's password was handed out; it is
	// handed out once and then forgotten.
	CredentialsFetchedAt *time.Time `json:"credentialsFetchedAt,omitempty"`
	CredentialsFetchedBy string     `json:"credentialsFetchedBy,omitempty"`
	CreatedAt            time.Time  `json:"createdAt"`
	UpdatedAt            time.Time  `json:"updatedAt"`
}

// UpdateFetchCredentials hands out the tenant's first directory account
// with its password, once. It is an Update rather than a query because it
// changes the tenant: the password is forgotten and who took it is recorded.
const UpdateFetchCredentials = "fetchCredentials"

// Failure types of a rejected credentials fetch.
const (
	ErrCredentialsGone        = "CredentialsAlreadyFetched"
	ErrCredentialsUnavailable = "CredentialsUnavailable"
)

// FetchCredentialsInput says who fetches.
type FetchCredentialsInput struct {
	By string `json:"by"`
}

// Credentials are the first account of the tenant's directory.
type Credentials struct {
	Username string `json:"username"`
	DN       string `json:"dn"`
	Password string `json:"password"`
	URL      string `json:"url,omitempty"`
}

// tenant is the in-memory state of one workflow run.
type tenant struct {
	spec     TenantSpec
	template spec.Template
	secrets  map[string]string
	state    TenantState
	// busy is set while an operation (provisioning, a release's
	// cut-over) runs; the next one waits for it to clear.
	busy bool
	// cutting is the release cut-over under way until its route switched;
	// cancelledReleases are the releases aborted while this run lived.
	cutting           *runningCutover
	cancelledReleases map[cancelKey]bool
}

// TenantWorkflow is the tenant's entity workflow (see the package comment).
func TenantWorkflow(ctx workflow.Context, in TenantInput) (TenantState, error) {
	t := &tenant{spec: in.Spec, template: in.Template, secrets: in.Secrets}
	first := in.State == nil
	if first {
		now := workflow.Now(ctx)
		t.state = TenantState{
			Name: in.Spec.Name, State: StateProvisioning, Stage: in.Spec.Stage,
			Template: in.Spec.Template, Runtime: in.Template.Runtime, CreatedAt: now, UpdatedAt: now,
		}
	} else {
		t.state = *in.State
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryState, func() (TenantState, error) {
		return t.state, nil
	}, workflow.QueryHandlerOptions{Description: "The tenant's state, endpoint and progress of the operation under way"}); err != nil {
		return t.state, err
	}

	t.listenForCancels(ctx)
	if err := t.registerCredentialsUpdate(ctx); err != nil {
		return t.state, err
	}
	if err := t.registerReleaseUpdate(ctx); err != nil {
		return t.state, err
	}
	if err := t.registerDecommissionUpdates(ctx); err != nil {
		return t.state, err
	}

	if first {
		t.busy = true
		err := t.provision(ctx)
		t.busy = false
		if err != nil {
			// Releases that queued meanwhile learn that the tenant is
			// failed (skipped) before the workflow ends.
			_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
			return t.state, err
		}
	}

	// Later operations (releases, decommission, restore) arrive as Updates
	// and run one at a time (t.busy). A confirmed decommission runs here,
	// and a decommissioned tenant waits here for the end of its retention.
	// Meanwhile the tenant just lives; its history is renewed when the
	// server suggests it, between operations.
	for {
		if err := workflow.Await(ctx, func() bool {
			return !t.busy && (t.decommissionDue() || t.restoreDue() || t.retained() || workflow.GetInfo(ctx).GetContinueAsNewSuggested())
		}); err != nil {
			return t.state, err
		}
		if t.decommissionDue() {
			t.busy = true
			t.decommission(ctx)
			t.busy = false
			continue
		}
		if t.restoreDue() {
			t.busy = true
			t.restore(ctx)
			t.busy = false
			continue
		}
		if t.retained() && !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			purged, err := t.retain(ctx)
			if err != nil {
				return t.state, err
			}
			if purged {
				// Retention is over and the data deleted: the tenant's
				// story ends here; its name may be used again.
				_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
				return t.state, nil
			}
			continue
		}
		break // the Await's last reason: continue-as-new is suggested
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return t.state, err
	}
	state := t.state
	return t.state, workflow.NewContinueAsNewError(ctx, TenantWorkflowType, TenantInput{
		Spec: t.spec, Template: t.template, State: &state, Secrets: t.secrets,
	})
}

func (t *tenant) registerCredentialsUpdate(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateFetchCredentials,
		func(ctx workflow.Context, in FetchCredentialsInput) (Credentials, error) {
			acct := t.state.Accounts[0]
			c := Credentials{Username: acct.Username, DN: acct.DN, Password: t.secrets[adminPasswordSecret], URL: t.state.URL}
			delete(t.secrets, adminPasswordSecret)
			now := workflow.Now(ctx)
			t.state.CredentialsFetchedAt, t.state.CredentialsFetchedBy = &now, in.By
			t.logger(ctx).Info("credentials handed out", "by", in.By, "account", acct.DN)
			return c, nil
		},
		workflow.UpdateHandlerOptions{
			Description: "Hand out the tenant's first directory account and its password, once",
			Validator: func(ctx workflow.Context, in FetchCredentialsInput) error {
				switch {
				case t.state.CredentialsFetchedAt != nil:
					return temporal.NewApplicationError(fmt.Sprintf("credentials of %s were already fetched at %s by %s",
						t.state.Name, t.state.CredentialsFetchedAt.UTC().Format(time.RFC3339), t.state.CredentialsFetchedBy), ErrCredentialsGone)
				case t.state.State != StateActive:
					return temporal.NewApplicationError(fmt.Sprintf("tenant %s is %s: credentials are handed out once it is active", t.state.Name, t.state.State), ErrCredentialsUnavailable)
				case len(t.state.Accounts) == 0 || t.secrets[adminPasswordSecret] == "":
					return temporal.NewApplicationError(fmt.Sprintf("tenant %s has no directory accounts (the LDAP integration is off)", t.state.Name), ErrCredentialsUnavailable)
				}
				return nil
			},
		})
}

// setState records a lifecycle change in the state and the search attributes.
func (t *tenant) setState(ctx workflow.Context, state, errMsg string) {
	t.state.State = state
	t.state.Error = errMsg
	t.state.UpdatedAt = workflow.Now(ctx)
	t.upsertSearchAttributes(ctx)
}

func (t *tenant) upsertSearchAttributes(ctx workflow.Context) {
	updates := []temporal.SearchAttributeUpdate{
		SATenantID.ValueSet(t.state.Name),
		SATenantState.ValueSet(t.state.State),
		SAStage.ValueSet(t.state.Stage),
	}
	if t.state.Image != "" {
		updates = append(updates, SAImage.ValueSet(t.state.Image))
	}
	if t.state.Release != "" {
		updates = append(updates, SARelease.ValueSet(t.state.Release))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		// Visibility is for people; a failed upsert must not fail the tenant.
		t.logger(ctx).Warn("upsert search attributes failed", "error", err)
	}
}

// logger tags every line with the tenant, so ops can grep one tenant's story
// across workflow and activity logs.
func (t *tenant) logger(ctx workflow.Context) log.Logger {
	return log.With(workflow.GetLogger(ctx), "tenant", t.spec.Name)
}

// countOperation records an operation's outcome and duration as metrics
// (tenantflow_operations_total, tenantflow_operation_duration); the SDK
// suppresses them during replay, so each is counted once.
func (t *tenant) countOperation(ctx workflow.Context, op, outcome string, started time.Time) {
	m := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{
		"operation": op, "outcome": outcome, "template": t.spec.Template, "stage": t.spec.Stage,
	})
	m.Counter("tenantflow_operations_total").Inc(1)
	m.Timer("tenantflow_operation_duration").Record(workflow.Now(ctx).Sub(started))
}

// step marks the start of a named step for the progress query.
func (t *tenant) step(name string) { t.state.Progress.Step = name }

// stepDone counts a finished step.
func (t *tenant) stepDone() { t.state.Progress.Done++ }

// errorMessage turns an activity failure into the readable cause ops need:
// the innermost application error's message and type.
func errorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if appErr.Type() != "" {
			return fmt.Sprintf("%s (%s)", appErr.Message(), appErr.Type())
		}
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out: " + timeoutErr.Error()
	}
	return err.Error()
}
