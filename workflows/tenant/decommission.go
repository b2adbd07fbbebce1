package tenant

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/workflows/flow"
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

func timePtr(t time.Time) *time.Time { return &t }

// decommissionDue: a confirmed request waits to run.
func (t *entity) decommissionDue() bool {
	return t.state.Decommission != nil && t.state.Decommission.Phase == PhaseConfirmed
}

// restoreDue: a restore was asked for.
func (t *entity) restoreDue() bool {
	return t.state.Decommission != nil && t.state.Decommission.Phase == PhaseRestoreRequested
}

// retained: the tenant is decommissioned and its data kept.
func (t *entity) retained() bool {
	return t.state.Decommission != nil && t.state.Decommission.Phase == PhaseRetained
}

// backupRef names the tenant's verified backup, with the services whose
// dumps it holds.
func (t *entity) backupRef() backup.BackupRef {
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
func (t *entity) liveEnv() (spec.Environment, error) {
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
//
// A suspended tenant's services are stopped already: its databases start
// for their dump alone (no route leads to them), and a failure leaves it
// suspended as it was, its maintenance page served and every service
// stopped.
func (t *entity) decommission(ctx workflow.Context) {
	log := t.logger(ctx)
	d := t.state.Decommission
	started := workflow.Now(ctx)
	d.StartedAt, d.Error = &started, ""
	previous := t.state.State
	d.Suspended = previous == StateSuspended
	t.state.Progress = flow.Progress{Total: 5}
	t.setState(ctx, StateDecommissioning, "")

	var undo flow.Saga
	retention, err := t.backUpForDecommission(ctx, d, &undo)
	if err != nil {
		msg := flow.ErrorMessage(err)
		log.Error("decommission stopped before a verified backup, putting the tenant back as it was", "error", msg, "suspended", d.Suspended)
		t.step("compensate")
		msg = undo.Undo(ctx, msg, "putting it back")
		t.step("")
		d.moveTo(PhaseFailed)
		as := "the tenant serves as before"
		if d.Suspended {
			as = "the tenant stays suspended"
		}
		d.Backup, d.Final, d.Error = nil, nil, "decommission stopped, "+as+": "+msg
		t.setState(ctx, previous, d.Error)
		t.countOperation(ctx, "decommission", "failed", started)
		return
	}

	// The data is safe: from here on nothing is undone.
	d.moveTo(PhaseTearingDown)
	t.step(StepTearDown)
	errs := t.tearDown(ctx)
	t.stepDone()
	t.step("")
	now := workflow.Now(ctx)
	d.moveTo(PhaseRetained)
	d.DecommissionedAt = &now
	d.RetentionUntil = timePtr(now.Add(retention))
	msg := ""
	if errs != nil {
		msg = "teardown incomplete: " + errs.Error()
		d.Error = msg
	}
	if d.Suspended {
		t.state.Suspension.moveTo(SuspendEnded)
	}
	if len(t.state.Domains) > 0 {
		// Released with the route: a restore comes back without them.
		t.logger(ctx).Info("custom domains released", "domains", len(t.state.Domains))
		t.state.Domains = nil
	}
	t.setState(ctx, StateDecommissioned, msg)
	t.countOperation(ctx, "decommission", "succeeded", started)
	if d.Final != nil {
		log.Info("tenant decommissioned", "finalBackup", d.Final.ID, "retentionUntil", d.RetentionUntil)
	} else {
		log.Info("tenant decommissioned", "backup", d.Backup.Location, "manifestSha256", d.Backup.ManifestSHA256, "retentionUntil", d.RetentionUntil)
	}
}

// backUpForDecommission runs the steps that are undone on failure, each
// registering its undo before it starts:
//
//	stop traffic → stop services (dumping databases first) → back up →
//	verify the backup
//
// It returns the retention period configured now.
func (t *entity) backUpForDecommission(ctx workflow.Context, d *Decommission, undo *flow.Saga) (time.Duration, error) {
	plan, err := t.plan(ctx)
	if err != nil {
		return 0, err
	}
	if _, ok := t.backupPolicy(); ok {
		// Its restic repository holds the tenant's data for the retention.
		return plan.Retention, t.finalBackup(ctx, d, undo)
	}
	if !plan.Backup {
		return 0, temporal.NewNonRetryableApplicationError("no backup location is configured (TENANTFLOW_BACKUP_DIR): a tenant is never decommissioned without a verified backup", "BackupNotConfigured", nil)
	}
	env, err := t.liveEnv()
	if err != nil {
		return 0, err
	}
	b := decommissionBackup{d: d, env: env, id: "decommission-" + d.StartedAt.UTC().Format("20060102t150405z")}
	d.moveTo(PhaseStopping)
	if err := t.stopTraffic(ctx, undo, d.Suspended); err != nil {
		return 0, err
	}
	dumped, err := t.stopAndDump(ctx, b, undo)
	if err != nil {
		return 0, err
	}
	if err := t.archive(ctx, b, dumped); err != nil {
		return 0, err
	}
	if err := t.verify(ctx, d); err != nil {
		return 0, err
	}
	return plan.Retention, nil
}

// decommissionBackup is the backup a decommission takes: its id and the
// environment it is taken from.
type decommissionBackup struct {
	d   *Decommission
	env spec.Environment
	id  string
}

// stopTraffic removes the tenant's route. Its undo puts the route back
// to wherever the services answer by then (a restarted container
// publishes its port anew), or, for a suspended tenant, to its
// maintenance page.
func (t *entity) stopTraffic(ctx workflow.Context, undo *flow.Saga, suspended bool) error {
	t.step(StepStopTraffic)
	if _, routed := t.resource(KindRoute); !routed {
		t.stepDone()
		return nil
	}
	owner := t.state.ProvisionID
	undo.Add("restore route", func(ctx workflow.Context) error {
		in, err := t.routeNow(suspended)
		if err != nil {
			return err
		}
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), px.EnsureRoute, in).Get(ctx, nil)
	})
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), px.RemoveRoute,
		proxy.RouteRef{Tenant: t.spec.Name, Owner: owner, Adopt: t.adopt()}).Get(ctx, nil); err != nil {
		return err
	}
	t.stepDone()
	return nil
}

// stopAndDump stops the public service first, so nothing half-serves
// while its database stops; then the rest. A database that says how is
// dumped by its own tool while it still runs (nothing writes to it any
// more), then stopped. It returns the dumped services' names.
func (t *entity) stopAndDump(ctx workflow.Context, b decommissionBackup, undo *flow.Saga) ([]string, error) {
	t.step(StepStopServices)
	t.undoStop(undo, b.env, b.d.Suspended)
	undo.Add("remove backup", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, integrationOptions)), bk.RemoveBackup,
			backup.BackupRef{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, ID: b.id}).Get(ctx, nil)
	})
	public, others := t.serviceNames()
	if err := t.stopServices(ctx, public); err != nil {
		return nil, err
	}
	dumped := dumpedServices(b.env)
	var dumpedNames []string
	if len(dumped) > 0 {
		var rest []string
		for _, s := range dumped {
			dumpedNames = append(dumpedNames, s.Name)
		}
		for _, n := range others {
			if !slices.Contains(dumpedNames, n) {
				rest = append(rest, n)
			}
		}
		if err := t.stopServices(ctx, rest); err != nil {
			return nil, err
		}
		if b.d.Suspended {
			if err := t.startForDump(ctx, b.env); err != nil {
				return nil, err
			}
		}
		b.d.moveTo(PhaseBackingUp)
		t.step(StepBackup)
		if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), bk.DumpServices, backup.DumpInput{
			Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, ID: b.id, Services: dumped,
		}).Get(ctx, nil); err != nil {
			return nil, err
		}
		t.step(StepStopServices)
		others = dumpedNames
	}
	if err := t.stopServices(ctx, others); err != nil {
		return nil, err
	}
	t.stepDone()
	return dumpedNames, nil
}

// undoStop registers the undo of stopping the tenant's services: they
// start again and serve, or, for a suspended tenant, they all stop again
// (the databases its dump started).
func (t *entity) undoStop(undo *flow.Saga, env spec.Environment, suspended bool) {
	if !suspended {
		undo.Add("start services", func(ctx workflow.Context) error { return t.restartServices(ctx, env) })
		return
	}
	all := slices.Concat(t.serviceNames())
	undo.Add("stop services again", func(ctx workflow.Context) error { return t.stopServices(ctx, all) })
}

// startForDump starts a suspended tenant's dumped services (its
// databases) for their dump: no route leads to them, and the dump waits
// until each is healthy.
func (t *entity) startForDump(ctx workflow.Context, env spec.Environment) error {
	ref := t.runtimeRef()
	for _, s := range dumpedServices(env) {
		ref.Services = append(ref.Services, s.Name)
	}
	if len(ref.Services) == 0 {
		return nil
	}
	return t.onHostLocal(ctx, localStepOptions, rt.StartServices, ref).Get(ctx, nil)
}

// restartServices is the undo of stopped services: started again, healthy,
// and followed where they now answer.
func (t *entity) restartServices(ctx workflow.Context, env spec.Environment) error {
	if err := t.onHostLocal(ctx, localStepOptions, rt.StartServices,
		t.runtimeRef()).Get(ctx, nil); err != nil {
		return err
	}
	var ep runtimes.Endpoint
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, healthWaitOptions(env))), rt.WaitHealthy, env).Get(ctx, &ep); err != nil {
		return err
	}
	return t.followEndpoint(ctx, ep)
}

// stopServices stops the named services, each given stopGrace to finish.
func (t *entity) stopServices(ctx workflow.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	return t.onHostLocal(ctx, localStepOptions, rt.StopServices, runtimes.StopInput{
		Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Services: names, StopTimeout: spec.Duration(stopGrace),
	}).Get(ctx, nil)
}

// archive backs up the volumes that no dump stands for, beside the dumps.
func (t *entity) archive(ctx workflow.Context, b decommissionBackup, dumped []string) error {
	b.d.moveTo(PhaseBackingUp)
	t.step(StepBackup)
	var bkp backup.Backup
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), bk.BackupVolumes, backup.BackupInput{
		Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, ID: b.id, Volumes: archivedVolumes(b.env), Dumps: dumped,
	}).Get(ctx, &bkp); err != nil {
		return err
	}
	b.d.Backup = &bkp
	t.stepDone()
	return nil
}

// verify restores the backup into scratch volumes and compares checksums.
func (t *entity) verify(ctx workflow.Context, d *Decommission) error {
	d.moveTo(PhaseVerifying)
	t.step(StepVerifyBackup)
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), bk.VerifyBackup, t.backupRef()).Get(ctx, nil); err != nil {
		return err
	}
	d.VerifiedAt = timePtr(workflow.Now(ctx))
	t.stepDone()
	return nil
}

// followEndpoint records where the restarted services answer (Docker
// publishes a restarted container's port anew) and points probes that
// target the instance there; the route follows in its own undo.
func (t *entity) followEndpoint(ctx workflow.Context, ep runtimes.Endpoint) error {
	old := t.state.Endpoint
	t.state.Endpoint = ep.URL
	if _, routed := t.resource(KindRoute); !routed {
		t.state.URL = ep.URL
	}
	if r, ok := t.resource(KindSupervision); ok && r.Detail == old && old != ep.URL {
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), sv.StartSupervision,
			supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: ep.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil); err != nil {
			return err
		}
		t.setResourceDetail(KindSupervision, ep.URL)
	}
	return nil
}

// serviceNames splits the template's services into the public one and
// the others.
func (t *entity) serviceNames() (public, others []string) {
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
func (t *entity) tearDown(ctx workflow.Context) error {
	tctx := workflow.WithActivityOptions(ctx, teardownOptions)
	f := flow.NewGroup(ctx)
	run := f.Run
	var kept []Resource
	for _, r := range t.state.Resources {
		switch r.Kind {
		case KindSupervision:
			run("stop supervision", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(tctx, sv.StopSupervision, supervision.WatchRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
			})
		case KindDNS:
			run("remove DNS record", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(tctx, dn.RemoveDNSRecord, dns.RecordInput{Tenant: t.spec.Name, Name: r.ID, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
			})
		case KindLDAP:
			kept = append(kept, r)
			run("disable LDAP accounts", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(tctx, ld.DisableAccounts, ldap.DirectoryRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
			})
		case KindCMDB:
			kept = append(kept, r)
			run("mark obsolete in CMDB", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(tctx, cm.MarkObsoleteInCMDB, cmdb.CMDBRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}).Get(ctx, nil)
			})
		}
	}
	ref := t.runtimeRef()
	run("remove containers and network", func(ctx workflow.Context) error {
		if err := t.onHostLocal(ctx, teardownLocalOptions, rt.RemoveServices, ref).Get(ctx, nil); err != nil {
			return err
		}
		return t.onHostLocal(ctx, teardownLocalOptions, rt.RemoveNetwork, ref).Get(ctx, nil)
	})
	errs := f.Wait(ctx)
	t.state.Resources, t.state.Services, t.state.Endpoint = kept, nil, ""
	return errs
}

// finalBackup is the decommission of a tenant with a backup policy: its
// last backup goes into its restic repository and is drilled before
// anything is torn down.
//
//	stop traffic → stop the services whose volumes are backed up as files
//	→ final backup (databases dumped while they run) → drill → stop the
//	databases
func (t *entity) finalBackup(ctx workflow.Context, d *Decommission, undo *flow.Saga) error {
	env, err := t.liveEnv()
	if err != nil {
		return err
	}
	d.moveTo(PhaseStopping)
	if err := t.stopTraffic(ctx, undo, d.Suspended); err != nil {
		return err
	}
	t.step(StepStopServices)
	t.undoStop(undo, env, d.Suspended)
	files := t.fileServices(env)
	if err := t.stopServices(ctx, files); err != nil {
		return err
	}
	if d.Suspended {
		if err := t.startForDump(ctx, env); err != nil {
			return err
		}
	}
	d.moveTo(PhaseBackingUp)
	b := t.backups()
	final := t.newBackup(ctx, ReasonFinal, d.ConfirmedBy, "decommission")
	b.Pinned = append(b.Pinned, final.ID) // kept for the whole retention
	rec, err := t.backUp(ctx, final)
	if err != nil {
		return err
	}
	d.moveTo(PhaseVerifying)
	t.step(StepVerifyBackup)
	var drilled restic.Drill
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), rs.DrillBackup,
		restic.DrillInput{Tenant: t.spec.Name, ID: rec.ID, Dumps: dumpedServices(env)}).Get(ctx, &drilled); err != nil {
		b.Pinned = slices.DeleteFunc(b.Pinned, func(id string) bool { return id == rec.ID }) // not final after all
		return err
	}
	now := workflow.Now(ctx)
	d.Final, d.VerifiedAt = &rec, &now
	t.step(StepStopServices)
	var rest []string
	for _, s := range env.Services {
		if !slices.Contains(files, s.Name) {
			rest = append(rest, s.Name)
		}
	}
	return t.stopServices(ctx, rest)
}
