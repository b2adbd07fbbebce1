package tenant

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/workflows/flow"
)

// setup installs the state query, the cancelRelease Signal and every
// Update, each a handler and a validator named below.
func (t *entity) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryState, func() (Tenant, error) {
		return t.state, nil
	}, workflow.QueryHandlerOptions{Description: "The tenant's state, endpoint and progress of the operation under way"}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryExpected, t.expected,
		workflow.QueryHandlerOptions{Description: "What the tenant's runtime should hold: services with their generation, volumes, owner run and host"}); err != nil {
		return err
	}
	t.listenForCancels(ctx)
	t.listenForHosts(ctx)
	for _, u := range []struct {
		name, description  string
		handler, validator any
	}{
		{UpdateFetchCredentials, "Hand out the tenant's first directory account and its password, once",
			t.fetchCredentials, t.validateFetchCredentials},
		{UpdateApplyRelease, "Run a release's image: start it beside the current instance, switch the route once healthy, retire the old one",
			t.applyRelease, t.validateApplyRelease},
		{UpdateRequestDecommission, "Ask for the tenant's decommission (who and why); it runs once confirmed, or at once with force",
			t.requestDecommission, t.validateRequestDecommission},
		{UpdateConfirmDecommission, "Confirm the pending decommission request: the tenant is backed up, verified and removed from every system",
			t.confirmDecommission, t.validateConfirmDecommission},
		{UpdateCancelDecommission, "Withdraw a decommission request that was not confirmed",
			t.cancelDecommission, t.validateCancelDecommission},
		{UpdateRestore, "Bring a decommissioned tenant back from its verified backup, on its URL, during retention",
			t.requestRestore, t.validateRestore},
		{UpdateBackup, "Back the tenant up now: the backup runs as its next operation; the answer names it and says whether it waits",
			t.requestBackup, t.validateRequestBackup},
		{UpdateRestoreBackup, "Put the active tenant's data back as one of its backups took it: a safety backup first, the backup drilled, then restored; a failure puts the safety backup back",
			t.requestRestoreBackup, t.validateRestoreBackup},
		{UpdateMove, "Move the tenant to another Docker host with its data: a live pre-copy, a short stop for the final sync, the route switched once healthy",
			t.requestMove, t.validateMove},
		{UpdateRepair, "Repair what the drift reconcile found missing or stopped: services started again, route and record following; a failure degrades the tenant",
			t.requestRepair, t.validateRepair},
		{UpdateSuspend, "Suspend the active tenant (who and why): the maintenance page on its URL, services stopped, accounts disabled, supervision paused; its data stays",
			t.requestSuspend, t.validateSuspend},
		{UpdateResume, "Resume the suspended tenant: services started and healthy, accounts enabled, supervision resumed, the route back to the services",
			t.requestResume, t.validateResume},
		{UpdateConfigure, "Change the tenant's settings (its maintenance window), at once",
			t.configure, t.validateConfigure},
		{UpdateChangePlan, "Resize the tenant to another of its template's plans: the databases in place, the public service through a cut-over; runs as its next operation",
			t.requestChangePlan, t.validateChangePlan},
		{UpdateChangeSettings, "Change the tenant's env settings its template allows: the public service is cut over with them; runs as its next operation",
			t.requestChangeSettings, t.validateChangeSettings},
		{UpdateAddDomain, "Add a custom domain: answers the TXT record that proves the customer controls it; once found, the route serves it over HTTPS",
			t.addDomain, t.validateAddDomain},
		{UpdateRemoveDomain, "Take a custom domain off the tenant's route",
			t.removeDomain, t.validateRemoveDomain},
	} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler,
			workflow.UpdateHandlerOptions{Description: u.description, Validator: u.validator}); err != nil {
			return fmt.Errorf("register %s: %w", u.name, err)
		}
	}
	return nil
}

// fetchCredentials hands out the first directory account with its
// password, once: the password is then forgotten and who took it kept.
func (t *entity) fetchCredentials(ctx workflow.Context, in FetchCredentialsInput) (Credentials, error) {
	acct := t.state.Accounts[0]
	c := Credentials{Username: acct.Username, DN: acct.DN, Password: t.secrets[adminPasswordSecret], URL: t.state.URL}
	delete(t.secrets, adminPasswordSecret)
	now := workflow.Now(ctx)
	t.state.CredentialsFetchedAt, t.state.CredentialsFetchedBy = &now, in.By
	t.logger(ctx).Info("credentials handed out", "by", in.By, "account", acct.DN)
	return c, nil
}

func (t *entity) validateFetchCredentials(ctx workflow.Context, in FetchCredentialsInput) error {
	switch {
	case t.state.CredentialsFetchedAt != nil:
		return temporal.NewApplicationError(fmt.Sprintf("credentials of %s were already fetched at %s by %s",
			t.state.Name, t.state.CredentialsFetchedAt.UTC().Format(time.RFC3339), t.state.CredentialsFetchedBy), ErrCredentialsAlreadyFetched)
	case t.state.State != StateActive:
		return temporal.NewApplicationError(fmt.Sprintf("tenant %s is %s: credentials are handed out once it is active", t.state.Name, t.state.State), ErrCredentialsUnavailable)
	case len(t.state.Accounts) == 0 || t.secrets[adminPasswordSecret] == "":
		return temporal.NewApplicationError(fmt.Sprintf("tenant %s has no directory accounts (the LDAP integration is off)", t.state.Name), ErrCredentialsUnavailable)
	}
	return nil
}

// applyRelease is the only way a release reaches the tenant. Operations
// run one at a time (t.busy), so a release arriving while the tenant is
// provisioned waits for the end of it, and two releases never cut over
// the same tenant together.
func (t *entity) applyRelease(ctx workflow.Context, in ApplyInput) (ApplyResult, error) {
	if err := workflow.Await(ctx, func() bool { return !t.busy }); err != nil {
		return ApplyResult{}, err
	}
	now := workflow.Now(ctx)
	res := ApplyResult{Tenant: t.spec.Name, From: t.state.Image, To: in.Image, StartedAt: now, FinishedAt: now}
	switch {
	case t.cancelledReleases[cancelKey{in.Release, in.Image}]:
		res.Outcome, res.Error = OutcomeSkipped, "release "+in.Release+" was aborted before its turn came"
		return res, nil
	case t.state.State != StateActive:
		// Provisioning failed while the release waited.
		res.Outcome, res.Error = OutcomeSkipped, fmt.Sprintf("tenant %s is %s", t.spec.Name, t.state.State)
		return res, nil
	case t.state.Image == in.Image:
		res.Outcome = OutcomeUnchanged
		t.state.Release = in.Release
		t.upsertSearchAttributes(ctx)
		return res, nil
	}
	if opens, outside := t.outsideWindow(ctx, in); outside {
		return t.deferToWindow(ctx, res, opens), nil
	}
	_ = t.operate(func() error { res = t.cutover(ctx, in); return nil })
	return res, nil
}

func (t *entity) validateApplyRelease(ctx workflow.Context, in ApplyInput) error {
	switch {
	case in.Image == "" || in.Release == "":
		return temporal.NewApplicationError("applyRelease needs a release and an image", ErrTenantUnavailable)
	case t.state.State == StateFailed || t.state.State == StateDecommissioning || t.state.State == StateDecommissioned || t.state.State == StateRestoring:
		return temporal.NewApplicationError(fmt.Sprintf("tenant %s is %s: it takes no release", t.spec.Name, t.state.State), ErrTenantUnavailable)
	case t.svcIndex() < 0:
		return temporal.NewApplicationError(fmt.Sprintf("tenant %s has no public service to release to", t.spec.Name), ErrTenantUnavailable)
	case in.RestoreBackup != "" && !t.hasBackup(in.RestoreBackup):
		return flow.Refuse(ErrBackupNotFound, "tenant %s has no backup %q to restore with release %s", t.spec.Name, in.RestoreBackup, in.Release)
	}
	return nil
}

// requestDecommission records who asks and why. Decommission is
// two-step: a confirmation (or the request's force flag, for ops) lets it
// run, in the workflow's main loop once no other operation is under way.
func (t *entity) requestDecommission(ctx workflow.Context, in DecommissionRequest) (Decommission, error) {
	now := workflow.Now(ctx)
	d := &Decommission{Phase: flow.Must(phaseNew.To(PhaseAwaitingConfirmation)), RequestedBy: in.By, Reason: in.Reason, RequestedAt: now, Force: in.Force}
	if in.Force {
		d.moveTo(PhaseConfirmed)
		d.ConfirmedBy, d.ConfirmedAt = in.By, timePtr(now)
	}
	t.state.Decommission = d
	t.state.UpdatedAt = now
	t.logger(ctx).Info("decommission requested", "by", in.By, "reason", in.Reason, "force", in.Force)
	return *d, nil
}

func (t *entity) validateRequestDecommission(ctx workflow.Context, in DecommissionRequest) error {
	if in.By == "" {
		return flow.Refuse(ErrDecommissionRefused, "a decommission request needs a requester (by)")
	}
	if d := t.state.Decommission; d != nil && (d.Phase == PhaseAwaitingConfirmation || d.Phase == PhaseConfirmed) {
		return flow.Refuse(ErrDecommissionRefused, "tenant %s: decommission already requested by %s at %s (%s)",
			t.spec.Name, d.RequestedBy, d.RequestedAt.UTC().Format(time.RFC3339), d.Phase)
	}
	if s := t.state.Suspension; t.state.State == StateSuspended && s != nil && (s.Phase == ResumeQueued || s.Phase == ResumeRunning) {
		return flow.Refuse(ErrDecommissionRefused, "tenant %s is being resumed (asked by %s): decommission it once it is active", t.spec.Name, s.ResumedBy)
	}
	if t.state.State != StateActive && t.state.State != StateSuspended {
		// Provisioning, a cut-over or a restore is under way, or there
		// is nothing left to decommission.
		return flow.Refuse(ErrDecommissionRefused, "tenant %s is %s: only an active or suspended tenant can be decommissioned", t.spec.Name, t.state.State)
	}
	return nil
}

func (t *entity) confirmDecommission(ctx workflow.Context, in DecommissionConfirmation) (Decommission, error) {
	d := t.state.Decommission
	d.moveTo(PhaseConfirmed)
	d.ConfirmedBy, d.ConfirmedAt = in.By, timePtr(workflow.Now(ctx))
	t.logger(ctx).Info("decommission confirmed", "by", in.By, "requestedBy", d.RequestedBy)
	return *d, nil
}

func (t *entity) validateConfirmDecommission(ctx workflow.Context, in DecommissionConfirmation) error {
	return t.pendingRequest(in.By, "confirm")
}

func (t *entity) cancelDecommission(ctx workflow.Context, in DecommissionConfirmation) (Decommission, error) {
	d := t.state.Decommission
	d.moveTo(PhaseCancelled)
	d.CancelledBy = in.By
	t.logger(ctx).Info("decommission request cancelled", "by", in.By, "requestedBy", d.RequestedBy)
	return *d, nil
}

func (t *entity) validateCancelDecommission(ctx workflow.Context, in DecommissionConfirmation) error {
	return t.pendingRequest(in.By, "cancel")
}

// pendingRequest refuses a confirmation or cancel without a requester or
// without a request awaiting confirmation.
func (t *entity) pendingRequest(by, verb string) error {
	d := t.state.Decommission
	switch {
	case by == "":
		return flow.Refuse(ErrDecommissionRefused, "%s needs a requester (by)", verb)
	case d == nil || d.Phase != PhaseAwaitingConfirmation:
		phase := "none"
		if d != nil {
			phase = string(d.Phase)
		}
		return flow.Refuse(ErrDecommissionRefused, "tenant %s has no decommission request awaiting confirmation (decommission: %s)", t.spec.Name, phase)
	}
	return nil
}

// requestRestore asks for a decommissioned tenant to be brought back; the
// restore runs in the workflow's main loop.
func (t *entity) requestRestore(ctx workflow.Context, in RestoreRequest) (Decommission, error) {
	d := t.state.Decommission
	d.moveTo(PhaseRestoreRequested)
	d.RestoredBy, d.Error = in.By, ""
	t.logger(ctx).Info("restore requested", "by", in.By)
	return *d, nil
}

func (t *entity) validateRestore(ctx workflow.Context, in RestoreRequest) error {
	d := t.state.Decommission
	switch {
	case in.By == "":
		return flow.Refuse(ErrRestoreRefused, "a restore needs a requester (by)")
	case d == nil || t.state.State != StateDecommissioned && t.state.State != StateRestoring:
		return flow.Refuse(ErrRestoreRefused, "tenant %s is %s: only a decommissioned tenant can be restored", t.spec.Name, t.state.State)
	case d.Phase == PhaseRestoreRequested || d.Phase == PhaseRestoring:
		return flow.Refuse(ErrRestoreRefused, "tenant %s is being restored already (asked by %s)", t.spec.Name, d.RestoredBy)
	case d.Phase != PhaseRetained:
		return flow.Refuse(ErrRestoreRefused, "tenant %s cannot be restored: its decommission is %s", t.spec.Name, d.Phase)
	}
	return nil
}
