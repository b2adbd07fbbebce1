package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/supervision"
)

// Steps of a decommission, as the progress query names them.
const (
	StepStopTraffic    = "stop traffic"
	StepStopServices   = "stop services"
	StepBackup         = "back up volumes"
	StepVerifyBackup   = "verify backup"
	StepTearDown       = "tear down"
	StepRestoreVolumes = "restore volumes"
	StepPurge          = "purge"
)

// Backing up and verifying read and write every byte of the tenant's
// volumes: regular activities that heartbeat their progress, so a worker
// that dies mid-way is noticed within the heartbeat timeout and the
// activity resumes on another worker (completed volumes are kept, a
// half-written archive is rewritten).
var backupOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 6 * time.Hour,
	HeartbeatTimeout:    10 * time.Second,
	WaitForCancellation: true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    10,
	},
}

// Once the backup is verified there is no way back: every teardown step
// retries for a day (an outage of the DNS server or the CMDB is waited
// out) and a step that still fails is reported, not undone.
var teardownOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Minute,
	ScheduleToCloseTimeout: 24 * time.Hour,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    5 * time.Minute,
	},
}

var teardownLocalOptions = workflow.LocalActivityOptions{
	ScheduleToCloseTimeout: 24 * time.Hour,
	StartToCloseTimeout:    time.Minute,
	RetryPolicy:            teardownOptions.RetryPolicy,
}

// stopGrace is how long each service may finish its work after SIGTERM
// when a decommission stops it.
const stopGrace = 10 * time.Second

// fanOut runs independent steps side by side and collects their
// failures, each named by its step.
type fanOut struct {
	ctx  workflow.Context
	wg   workflow.WaitGroup
	errs error
}

func newFanOut(ctx workflow.Context) *fanOut {
	return &fanOut{ctx: ctx, wg: workflow.NewWaitGroup(ctx)}
}

func (f *fanOut) run(what string, fn func(ctx workflow.Context) error) {
	f.wg.Add(1)
	workflow.Go(f.ctx, func(ctx workflow.Context) {
		defer f.wg.Done()
		if err := fn(ctx); err != nil {
			f.errs = errors.Join(f.errs, fmt.Errorf("%s: %s", what, errorMessage(err)))
		}
	})
}

// wait returns once every step ended, with their failures.
func (f *fanOut) wait(ctx workflow.Context) error {
	f.wg.Wait(ctx)
	return f.errs
}

func refuse(typ, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), typ)
}

func timePtr(t time.Time) *time.Time { return &t }

// registerDecommissionUpdates installs the Updates that request, confirm
// and cancel a decommission, and restore a decommissioned tenant. The
// decommission itself runs in the workflow's main loop (decommissionDue)
// once confirmed and no other operation is under way.
func (t *tenant) registerDecommissionUpdates(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRequestDecommission,
		func(ctx workflow.Context, in DecommissionRequest) (Decommission, error) {
			now := workflow.Now(ctx)
			d := &Decommission{Phase: PhaseAwaitingConfirmation, RequestedBy: in.By, Reason: in.Reason, RequestedAt: now, Force: in.Force}
			if in.Force {
				d.Phase, d.ConfirmedBy, d.ConfirmedAt = PhaseConfirmed, in.By, timePtr(now)
			}
			t.state.Decommission = d
			t.state.UpdatedAt = now
			t.logger(ctx).Info("decommission requested", "by", in.By, "reason", in.Reason, "force", in.Force)
			return *d, nil
		},
		workflow.UpdateHandlerOptions{
			Description: "Ask for the tenant's decommission (who and why); it runs once confirmed, or at once with force",
			Validator: func(ctx workflow.Context, in DecommissionRequest) error {
				if in.By == "" {
					return refuse(ErrDecommissionRefused, "a decommission request needs a requester (by)")
				}
				if d := t.state.Decommission; d != nil && (d.Phase == PhaseAwaitingConfirmation || d.Phase == PhaseConfirmed) {
					return refuse(ErrDecommissionRefused, "tenant %s: decommission already requested by %s at %s (%s)",
						t.spec.Name, d.RequestedBy, d.RequestedAt.UTC().Format(time.RFC3339), d.Phase)
				}
				if t.state.State != StateActive {
					// Provisioning, a cut-over or a restore is under way,
					// or there is nothing left to decommission.
					return refuse(ErrDecommissionRefused, "tenant %s is %s: only an active tenant can be decommissioned", t.spec.Name, t.state.State)
				}
				return nil
			},
		}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateConfirmDecommission,
		func(ctx workflow.Context, in DecommissionConfirmation) (Decommission, error) {
			d := t.state.Decommission
			d.Phase, d.ConfirmedBy, d.ConfirmedAt = PhaseConfirmed, in.By, timePtr(workflow.Now(ctx))
			t.logger(ctx).Info("decommission confirmed", "by", in.By, "requestedBy", d.RequestedBy)
			return *d, nil
		},
		workflow.UpdateHandlerOptions{
			Description: "Confirm the pending decommission request: the tenant is backed up, verified and removed from every system",
			Validator: func(ctx workflow.Context, in DecommissionConfirmation) error {
				return t.pendingRequest(in.By, "confirm")
			},
		}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCancelDecommission,
		func(ctx workflow.Context, in DecommissionConfirmation) (Decommission, error) {
			d := t.state.Decommission
			d.Phase, d.CancelledBy = PhaseCancelled, in.By
			t.logger(ctx).Info("decommission request cancelled", "by", in.By, "requestedBy", d.RequestedBy)
			return *d, nil
		},
		workflow.UpdateHandlerOptions{
			Description: "Withdraw a decommission request that was not confirmed",
			Validator: func(ctx workflow.Context, in DecommissionConfirmation) error {
				return t.pendingRequest(in.By, "cancel")
			},
		}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRestore,
		func(ctx workflow.Context, in RestoreRequest) (Decommission, error) {
			d := t.state.Decommission
			d.Phase, d.RestoredBy, d.Error = PhaseRestoreRequested, in.By, ""
			t.logger(ctx).Info("restore requested", "by", in.By, "backup", d.Backup.Location)
			return *d, nil
		},
		workflow.UpdateHandlerOptions{
			Description: "Bring a decommissioned tenant back from its verified backup, on its URL, during retention",
			Validator: func(ctx workflow.Context, in RestoreRequest) error {
				d := t.state.Decommission
				switch {
				case in.By == "":
					return refuse(ErrRestoreRefused, "a restore needs a requester (by)")
				case d == nil || t.state.State != StateDecommissioned && t.state.State != StateRestoring:
					return refuse(ErrRestoreRefused, "tenant %s is %s: only a decommissioned tenant can be restored", t.spec.Name, t.state.State)
				case d.Phase == PhaseRestoreRequested || d.Phase == PhaseRestoring:
					return refuse(ErrRestoreRefused, "tenant %s is being restored already (asked by %s)", t.spec.Name, d.RestoredBy)
				case d.Phase != PhaseRetained:
					return refuse(ErrRestoreRefused, "tenant %s cannot be restored: its decommission is %s", t.spec.Name, d.Phase)
				}
				return nil
			},
		})
}

func (t *tenant) pendingRequest(by, verb string) error {
	d := t.state.Decommission
	switch {
	case by == "":
		return refuse(ErrDecommissionRefused, "%s needs a requester (by)", verb)
	case d == nil || d.Phase != PhaseAwaitingConfirmation:
		phase := "none"
		if d != nil {
			phase = d.Phase
		}
		return refuse(ErrDecommissionRefused, "tenant %s has no decommission request awaiting confirmation (decommission: %s)", t.spec.Name, phase)
	}
	return nil
}

// decommissionDue: a confirmed request waits to run.
func (t *tenant) decommissionDue() bool {
	return t.state.Decommission != nil && t.state.Decommission.Phase == PhaseConfirmed
}

// restoreDue: a restore was asked for.
func (t *tenant) restoreDue() bool {
	return t.state.Decommission != nil && t.state.Decommission.Phase == PhaseRestoreRequested
}

// retained: the tenant is decommissioned and its data kept.
func (t *tenant) retained() bool {
	return t.state.Decommission != nil && t.state.Decommission.Phase == PhaseRetained
}

// backupRef names the tenant's verified backup, with the services whose
// dumps it holds.
func (t *tenant) backupRef() backup.BackupRef {
	b := t.state.Decommission.Backup
	env, _ := t.liveEnv() // rendered at provisioning already: cannot fail now
	return backup.BackupRef{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, ID: b.ID, ManifestSHA256: b.ManifestSHA256,
		Dumps: dumpedServices(env), Kept: b.Kept}
}

// dumpedServices are the services backed up by their own dump tool.
func dumpedServices(env spec.Environment) []spec.Service {
	var out []spec.Service
	for _, s := range env.Services {
		if s.Backup != nil {
			out = append(out, s)
		}
	}
	return out
}

// archivedVolumes are the volumes backed up as archives: all but those of
// dumped services, whose dump stands for them.
func archivedVolumes(env spec.Environment) []string {
	dumped := map[string]bool{}
	for _, s := range dumpedServices(env) {
		for _, m := range s.Mounts {
			dumped[m.Volume] = true
		}
	}
	var out []string
	for _, v := range env.Volumes {
		if !dumped[v] {
			out = append(out, v)
		}
	}
	return out
}

// liveEnv is the tenant's environment as it runs now: the public service
// on its released image and generation.
func (t *tenant) liveEnv() (spec.Environment, error) {
	env, err := t.template.Render(t.spec.Name, t.spec.Stage, t.secrets)
	if err != nil {
		return env, err
	}
	if i := t.svcIndex(); i >= 0 {
		if t.state.Image != "" {
			env.Services[i].Image = t.state.Image
		}
		env.Services[i].Generation = t.state.Generation
	}
	return env, nil
}

// decommission takes the tenant out of every system without losing its
// data:
//
//	stop traffic (route removed) → stop services → back up every volume →
//	verify the backup (restored into scratch volumes, checksums compared) →
//	tear down: supervision, DNS, directory accounts (disabled), CMDB
//	(obsolete), containers, network — volumes are kept for retention
//
// Until the backup is verified every step is undone on failure: the tenant
// serves again as it was, and the decommission reports why it stopped.
func (t *tenant) decommission(ctx workflow.Context) {
	log := t.logger(ctx)
	d := t.state.Decommission
	started := workflow.Now(ctx)
	d.StartedAt, d.Error = &started, ""
	previous := t.state.State
	t.state.Progress = Progress{Total: 5}
	t.setState(ctx, StateDecommissioning, "")

	var undo saga
	retention, err := t.backUpForDecommission(ctx, d, &undo)
	if err != nil {
		msg := errorMessage(err)
		log.Error("decommission stopped before a verified backup, putting the tenant back in service", "error", msg)
		t.step("compensate")
		if cerr := undo.compensate(ctx); cerr != nil {
			msg += "; putting it back incomplete: " + cerr.Error()
		}
		t.step("")
		d.Phase, d.Backup, d.Error = PhaseFailed, nil, "decommission stopped, the tenant serves as before: "+msg
		t.setState(ctx, previous, d.Error)
		t.countOperation(ctx, "decommission", "failed", started)
		return
	}

	// The data is safe: from here on nothing is undone.
	d.Phase = PhaseTearingDown
	t.step(StepTearDown)
	errs := t.tearDown(ctx)
	t.stepDone()
	t.step("")
	now := workflow.Now(ctx)
	d.Phase, d.DecommissionedAt = PhaseRetained, &now
	d.RetentionUntil = timePtr(now.Add(retention))
	msg := ""
	if errs != nil {
		msg = "teardown incomplete: " + errs.Error()
		d.Error = msg
	}
	t.setState(ctx, StateDecommissioned, msg)
	t.countOperation(ctx, "decommission", "succeeded", started)
	log.Info("tenant decommissioned", "backup", d.Backup.Location, "manifestSha256", d.Backup.ManifestSHA256, "retentionUntil", d.RetentionUntil)
}

// backUpForDecommission runs the steps that are undone on failure, each
// registering its undo before it starts. It returns the retention period
// configured now.
func (t *tenant) backUpForDecommission(ctx workflow.Context, d *Decommission, undo *saga) (time.Duration, error) {
	lctx := workflow.WithLocalActivityOptions(ctx, localStepOptions)
	plan, err := t.plan(ctx)
	if err != nil {
		return 0, err
	}
	if !plan.Backup {
		return 0, temporal.NewNonRetryableApplicationError("no backup location is configured (TENANTFLOW_BACKUP_DIR): a tenant is never decommissioned without a verified backup", "BackupNotConfigured", nil)
	}
	env, err := t.liveEnv()
	if err != nil {
		return 0, err
	}
	owner := t.state.ProvisionID
	var a *runtimes.Activities

	d.Phase = PhaseStopping
	t.step(StepStopTraffic)
	if _, routed := t.resource("route"); routed {
		var p *proxy.Activities
		// The route comes back to wherever the services answer by then: a
		// restarted container publishes its port anew.
		undo.add("restore route", func(ctx workflow.Context) error {
			up, err := upstream(runtimes.Endpoint{URL: t.state.Endpoint})
			if err != nil {
				return err
			}
			return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), p.EnsureRoute,
				proxy.RouteInput{Tenant: t.spec.Name, Upstreams: []string{up}, Owner: owner, Adopt: t.adopt()}).Get(ctx, nil)
		})
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), p.RemoveRoute,
			proxy.RouteRef{Tenant: t.spec.Name, Owner: owner, Adopt: t.adopt()}).Get(ctx, nil); err != nil {
			return 0, err
		}
	}
	t.stepDone()

	// The public service first, so nothing half-serves while its
	// database stops; then the rest.
	t.step(StepStopServices)
	undo.add("start services", func(ctx workflow.Context) error {
		if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localStepOptions), a.StartServices,
			t.runtimeRef()).Get(ctx, nil); err != nil {
			return err
		}
		var ep runtimes.Endpoint
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, healthWaitOptions(env)), a.WaitHealthy, env).Get(ctx, &ep); err != nil {
			return err
		}
		return t.followEndpoint(ctx, ep)
	})
	stop := func(names []string) error {
		if len(names) == 0 {
			return nil
		}
		return workflow.ExecuteLocalActivity(lctx, a.StopServices, runtimes.StopInput{
			Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, Services: names, StopTimeout: spec.Duration(stopGrace),
		}).Get(ctx, nil)
	}
	var b *backup.Activities
	bctx := workflow.WithActivityOptions(ctx, backupOptions)
	id := "decommission-" + d.StartedAt.UTC().Format("20060102t150405z")
	undo.add("remove backup", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), b.RemoveBackup,
			backup.BackupRef{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, ID: id}).Get(ctx, nil)
	})
	public, others := t.serviceNames()
	if err := stop(public); err != nil {
		return 0, err
	}
	dumped := dumpedServices(env)
	var dumpedNames []string
	if len(dumped) > 0 {
		// A database that says how is dumped by its own tool while it
		// still runs (nothing writes to it any more), then stopped.
		var rest []string
		for _, s := range dumped {
			dumpedNames = append(dumpedNames, s.Name)
		}
		for _, n := range others {
			if !slices.Contains(dumpedNames, n) {
				rest = append(rest, n)
			}
		}
		if err := stop(rest); err != nil {
			return 0, err
		}
		d.Phase = PhaseBackingUp
		t.step(StepBackup)
		if err := workflow.ExecuteActivity(bctx, b.DumpServices, backup.DumpInput{
			Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, ID: id, Services: dumped,
		}).Get(ctx, nil); err != nil {
			return 0, err
		}
		t.step(StepStopServices)
		others = dumpedNames
	}
	if err := stop(others); err != nil {
		return 0, err
	}
	t.stepDone()

	d.Phase = PhaseBackingUp
	t.step(StepBackup)
	var bk backup.Backup
	if err := workflow.ExecuteActivity(bctx, b.BackupVolumes, backup.BackupInput{
		Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, ID: id, Volumes: archivedVolumes(env), Dumps: dumpedNames,
	}).Get(ctx, &bk); err != nil {
		return 0, err
	}
	d.Backup = &bk
	t.stepDone()

	d.Phase = PhaseVerifying
	t.step(StepVerifyBackup)
	if err := workflow.ExecuteActivity(bctx, b.VerifyBackup, t.backupRef()).Get(ctx, nil); err != nil {
		return 0, err
	}
	d.VerifiedAt = timePtr(workflow.Now(ctx))
	t.stepDone()
	return plan.Retention, nil
}

// followEndpoint records where the restarted services answer (Docker
// publishes a restarted container's port anew) and points probes that
// target the instance there; the route follows in its own undo.
func (t *tenant) followEndpoint(ctx workflow.Context, ep runtimes.Endpoint) error {
	old := t.state.Endpoint
	t.state.Endpoint = ep.URL
	if _, routed := t.resource("route"); !routed {
		t.state.URL = ep.URL
	}
	if r, ok := t.resource("supervision"); ok && r.Detail == old && old != ep.URL {
		var s *supervision.Activities
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), s.StartSupervision,
			supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: ep.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil); err != nil {
			return err
		}
		t.setResourceDetail("supervision", ep.URL)
	}
	return nil
}

// serviceNames splits the template's services into the public one and
// the others.
func (t *tenant) serviceNames() (public, others []string) {
	pub := t.svcIndex()
	for i, s := range t.template.Services {
		if i == pub {
			public = append(public, s.Name)
		} else {
			others = append(others, s.Name)
		}
	}
	return public, others
}

// tearDown removes the tenant from every system it is registered in, in
// parallel. Directory accounts are only disabled and the CMDB entry marked
// obsolete (its history stays); volumes stay for the retention period.
func (t *tenant) tearDown(ctx workflow.Context) error {
	tctx := workflow.WithActivityOptions(ctx, teardownOptions)
	lctx := workflow.WithLocalActivityOptions(ctx, teardownLocalOptions)
	f := newFanOut(ctx)
	run := f.run
	var kept []Resource
	for _, r := range t.state.Resources {
		switch r.Kind {
		case "supervision":
			var s *supervision.Activities
			run("stop supervision", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(tctx, s.StopSupervision, supervision.WatchRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
			})
		case "dns":
			var a *dns.Activities
			run("remove DNS record", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(tctx, a.RemoveDNSRecord, dns.RecordInput{Tenant: t.spec.Name, Name: r.ID, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
			})
		case "ldap":
			var a *ldap.Activities
			kept = append(kept, r)
			run("disable LDAP accounts", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(tctx, a.DisableAccounts, ldap.DirectoryRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
			})
		case "cmdb":
			var a *cmdb.Activities
			kept = append(kept, r)
			run("mark obsolete in CMDB", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(tctx, a.MarkObsoleteInCMDB, cmdb.CMDBRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
			})
		}
	}
	var a *runtimes.Activities
	ref := t.runtimeRef()
	run("remove containers and network", func(ctx workflow.Context) error {
		if err := workflow.ExecuteLocalActivity(lctx, a.RemoveServices, ref).Get(ctx, nil); err != nil {
			return err
		}
		return workflow.ExecuteLocalActivity(lctx, a.RemoveNetwork, ref).Get(ctx, nil)
	})
	errs := f.wait(ctx)
	t.state.Resources, t.state.Services, t.state.Endpoint = kept, nil, ""
	return errs
}

// retain waits until the retention ends (then purges and reports true:
// the tenant is gone), a restore takes the tenant back, or the history
// should be renewed.
func (t *tenant) retain(ctx workflow.Context) (bool, error) {
	d := t.state.Decommission
	left := d.RetentionUntil.Sub(workflow.Now(ctx))
	if left > 0 {
		woken, err := workflow.AwaitWithTimeout(ctx, left, func() bool {
			return d.Phase != PhaseRetained || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
		})
		if err != nil || woken {
			return false, err
		}
	}
	t.busy = true
	defer func() { t.busy = false }()
	t.purge(ctx)
	return true, nil
}

// purge deletes what retention kept: the volumes, the directory and the
// backup. The CMDB entry stays, obsolete, with its history.
func (t *tenant) purge(ctx workflow.Context) {
	d := t.state.Decommission
	started := workflow.Now(ctx)
	d.Phase = PhasePurging
	t.step(StepPurge)
	tctx := workflow.WithActivityOptions(ctx, teardownOptions)
	f := newFanOut(ctx)
	run := f.run
	var a *runtimes.Activities
	run("remove volumes", func(ctx workflow.Context) error {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, teardownLocalOptions), a.RemoveVolumes,
			t.runtimeRef()).Get(ctx, nil)
	})
	if _, ok := t.resource("ldap"); ok {
		var l *ldap.Activities
		run("remove LDAP accounts", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(tctx, l.RemoveDirectory, ldap.DirectoryRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
		})
	}
	if d.Backup != nil {
		var b *backup.Activities
		run("remove backup", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(tctx, b.RemoveBackup, t.backupRef()).Get(ctx, nil)
		})
	}
	errs := f.wait(ctx)
	now := workflow.Now(ctx)
	d.Phase, d.PurgedAt = PhasePurged, &now
	var kept []Resource
	for _, r := range t.state.Resources {
		if r.Kind == "cmdb" {
			kept = append(kept, r)
		}
	}
	t.state.Resources, t.state.Accounts = kept, nil
	msg := ""
	if errs != nil {
		msg = "purge incomplete: " + errs.Error()
		d.Error = msg
	}
	t.step("")
	t.setState(ctx, StateDecommissioned, msg)
	outcome := "succeeded"
	if errs != nil {
		outcome = "failed"
	}
	t.countOperation(ctx, "purge", outcome, started)
	t.logger(ctx).Info("retention ended: tenant data deleted", "errors", msg)
}

// restore brings the tenant back from its verified backup during
// retention: network, volumes filled from the backup (checksums compared),
// services, health, then route, DNS, accounts, CMDB and supervision as the
// installation is configured now. A failure undoes what the restore made
// and leaves the tenant decommissioned, its data untouched in the backup.
func (t *tenant) restore(ctx workflow.Context) {
	log := t.logger(ctx)
	d := t.state.Decommission
	started := workflow.Now(ctx)
	d.Phase, d.Error = PhaseRestoring, ""
	t.state.Progress = Progress{Total: 4}
	t.setState(ctx, StateRestoring, "")
	kept := t.state.Resources

	var undo saga
	err := func() error {
		lctx := workflow.WithLocalActivityOptions(ctx, localStepOptions)
		plan, err := t.plan(ctx)
		if err != nil {
			return err
		}
		env, err := t.liveEnv()
		if err != nil {
			return err
		}
		owner := t.state.ProvisionID
		ref := t.runtimeRef()
		var a *runtimes.Activities
		undo.add("remove network", func(ctx workflow.Context) error {
			return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localStepOptions), a.RemoveNetwork, ref).Get(ctx, nil)
		})
		t.begin(StepCreateNetwork)
		if err := workflow.ExecuteLocalActivity(lctx, a.CreateNetwork, ref).Get(ctx, nil); err != nil {
			return err
		}
		t.end(StepCreateNetwork)
		t.begin(StepRestoreVolumes)
		if err := workflow.ExecuteLocalActivity(lctx, a.CreateVolumes, runtimes.VolumesInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, Volumes: env.Volumes}).Get(ctx, nil); err != nil {
			return err
		}
		var b *backup.Activities
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, backupOptions), b.RestoreVolumes, t.backupRef()).Get(ctx, nil); err != nil {
			return err
		}
		t.end(StepRestoreVolumes)

		undo.add("remove services", func(ctx workflow.Context) error {
			return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localStepOptions), a.RemoveServices, ref).Get(ctx, nil)
		})
		t.begin(StepStartServices)
		t.state.Services = make([]runtimes.ServiceStatus, len(env.Services))
		start := func(dumped bool) error {
			return t.startServices(ctx, env, func(s spec.Service) bool { return (s.Backup != nil) == dumped })
		}
		if len(dumpedServices(env)) > 0 {
			// Databases first, filled from their dumps, then the rest.
			if err := start(true); err != nil {
				return err
			}
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, backupOptions), b.LoadDumps, t.backupRef()).Get(ctx, nil); err != nil {
				return err
			}
		}
		if err := start(false); err != nil {
			return err
		}
		t.end(StepStartServices)
		t.begin(StepWaitHealthy)
		var ep runtimes.Endpoint
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, healthWaitOptions(env)), a.WaitHealthy, env).Get(ctx, &ep); err != nil {
			return err
		}
		t.end(StepWaitHealthy)
		t.state.Endpoint, t.state.URL = ep.URL, ep.URL
		t.state.Resources = nil
		return t.reregister(ctx, plan, env, ep, kept, &undo)
	}()
	if err != nil {
		msg := errorMessage(err)
		log.Error("restore failed, undoing it", "error", msg)
		t.step("compensate")
		if cerr := undo.compensate(ctx); cerr != nil {
			msg += "; undo incomplete: " + cerr.Error()
		}
		t.step("")
		t.state.Resources, t.state.Services, t.state.Endpoint = kept, nil, ""
		d.Phase, d.Error = PhaseRetained, "restore failed, the tenant stays decommissioned: "+msg
		t.setState(ctx, StateDecommissioned, d.Error)
		t.countOperation(ctx, "restore", "failed", started)
		return
	}

	// The tenant runs on its restored data; the backup has served.
	var b *backup.Activities
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), b.RemoveBackup, t.backupRef()).Get(ctx, nil); err != nil {
		log.Warn("backup of the restored tenant not removed", "location", d.Backup.Location, "error", errorMessage(err))
	}
	now := workflow.Now(ctx)
	d.Phase, d.RestoredAt, d.RetentionUntil = PhaseRestored, &now, nil
	t.step("")
	t.setState(ctx, StateActive, "")
	t.countOperation(ctx, "restore", "succeeded", started)
	log.Info("tenant restored from its backup", "by", d.RestoredBy, "url", t.state.URL)
}

// reregister puts the restored tenant back in every system: the route
// first (its URL), then DNS, accounts, CMDB and supervision in parallel.
func (t *tenant) reregister(ctx workflow.Context, plan integrations.Plan, env spec.Environment, ep runtimes.Endpoint, kept []Resource, undo *saga) error {
	if plan.Routing {
		if err := t.ensureRoute(ctx, plan, ep, undo); err != nil {
			return err
		}
		t.state.URL = plan.URL
	}
	f := newFanOut(ctx)
	if plan.DNS {
		f.run("DNS record", func(ctx workflow.Context) error { return t.ensureDNS(ctx, plan, undo) })
	}
	for _, r := range kept {
		if r.Kind == "ldap" {
			f.run("enable LDAP accounts", func(ctx workflow.Context) error {
				var l *ldap.Activities
				ref := ldap.DirectoryRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}
				if err := call(ctx, undo, "disable LDAP accounts", l.DisableAccounts, ref, l.EnableAccounts, ref, nil); err != nil {
					return err
				}
				t.state.Resources = append(t.state.Resources, r)
				return nil
			})
		}
	}
	if plan.CMDB {
		f.run("CMDB entry", func(ctx workflow.Context) error {
			var c *cmdb.Activities
			in := cmdb.CMDBInput{Tenant: t.spec.Name, Stage: t.spec.Stage, Template: t.spec.Template, URL: t.state.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}
			for _, s := range env.Services {
				in.Services = append(in.Services, cmdb.CMDBService{Name: s.Name, Image: s.Image})
			}
			var rec cmdb.CMDBRecord
			if err := call(ctx, undo, "mark obsolete in CMDB", c.MarkObsoleteInCMDB, cmdb.CMDBRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}, c.RegisterInCMDB, in, &rec); err != nil {
				return err
			}
			t.addResource("cmdb", "ApplicationSolution::"+rec.ApplicationSolutionID, "Organization::"+rec.OrganizationID)
			return nil
		})
	}
	if err := f.wait(ctx); err != nil {
		return err
	}
	if plan.Supervision {
		return t.startSupervision(ctx, plan, ep, undo)
	}
	return nil
}
