package tenant

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// restore brings the tenant back from its verified backup during
// retention: network, volumes filled from the backup (checksums compared),
// services, health, then route, DNS, accounts, CMDB and supervision as the
// installation is configured now. A failure undoes what the restore made
// and leaves the tenant decommissioned, its data untouched in the backup.
func (t *entity) restore(ctx workflow.Context) {
	d := t.state.Decommission
	started := workflow.Now(ctx)
	d.moveTo(PhaseRestoring)
	d.Error = ""
	t.state.Progress = flow.Progress{Total: 4}
	t.setState(ctx, StateRestoring, "")
	kept := t.state.Resources

	var undo flow.Saga
	if err := t.bringBack(ctx, kept, &undo); err != nil {
		t.failRestore(ctx, err, kept, undo, started)
		return
	}
	// The tenant runs on its restored data; the backup has served.
	if d.Final != nil {
		// It stays in the repository, under the retention again.
		b := t.backups()
		b.Pinned = slices.DeleteFunc(b.Pinned, func(id string) bool { return id == d.Final.ID })
	} else if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, integrationOptions)), bk.RemoveBackup, t.backupRef()).Get(ctx, nil); err != nil {
		t.logger(ctx).Warn("backup of the restored tenant not removed", "location", d.Backup.Location, "error", flow.ErrorMessage(err))
	}
	now := workflow.Now(ctx)
	d.moveTo(PhaseRestored)
	d.RestoredAt, d.RetentionUntil = &now, nil
	t.step("")
	t.setState(ctx, StateActive, "")
	t.countOperation(ctx, "restore", "succeeded", started)
	t.logger(ctx).Info("tenant restored from its backup", "by", d.RestoredBy, "url", t.state.URL)
}

// bringBack restores the runtime, then registers the tenant again.
func (t *entity) bringBack(ctx workflow.Context, kept []Resource, undo *flow.Saga) error {
	plan, err := t.plan(ctx)
	if err != nil {
		return err
	}
	env, err := t.liveEnv()
	if err != nil {
		return err
	}
	ep, err := t.restoreRuntime(ctx, env, undo)
	if err != nil {
		return err
	}
	t.state.Endpoint, t.state.URL = ep.URL, ep.URL
	t.state.Resources = nil
	return t.reregister(ctx, plan, env, ep, kept, undo)
}

// restoreRuntime makes the network and the volumes, fills the volumes
// from the backup, starts the databases and loads their dumps, then the
// other services, and waits until all are healthy.
func (t *entity) restoreRuntime(ctx workflow.Context, env spec.Environment, undo *flow.Saga) (runtimes.Endpoint, error) {
	ref := t.runtimeRef()
	undo.Add("remove network", func(ctx workflow.Context) error {
		return t.onHostLocal(ctx, localStepOptions, rt.RemoveNetwork, ref).Get(ctx, nil)
	})
	t.begin(StepCreateNetwork)
	if err := t.onHostLocal(ctx, localStepOptions, rt.CreateNetwork, ref).Get(ctx, nil); err != nil {
		return runtimes.Endpoint{}, err
	}
	t.end(StepCreateNetwork)
	t.begin(StepRestoreVolumes)
	if err := t.onHostLocal(ctx, localStepOptions, rt.CreateVolumes, runtimes.VolumesInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Volumes: env.Volumes}).Get(ctx, nil); err != nil {
		return runtimes.Endpoint{}, err
	}
	if t.state.Decommission.Final == nil {
		// A final backup in the repository is put back once the
		// databases run (startRestoredServices).
		if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), bk.RestoreVolumes, t.backupRef()).Get(ctx, nil); err != nil {
			return runtimes.Endpoint{}, err
		}
	}
	t.end(StepRestoreVolumes)

	undo.Add("remove services", func(ctx workflow.Context) error {
		return t.onHostLocal(ctx, localStepOptions, rt.RemoveServices, ref).Get(ctx, nil)
	})
	t.begin(StepStartServices)
	if err := t.startRestoredServices(ctx, env); err != nil {
		return runtimes.Endpoint{}, err
	}
	t.end(StepStartServices)
	t.begin(StepWaitHealthy)
	var ep runtimes.Endpoint
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, healthWaitOptions(env))), rt.WaitHealthy, env).Get(ctx, &ep); err != nil {
		return runtimes.Endpoint{}, err
	}
	t.end(StepWaitHealthy)
	return ep, nil
}

// startRestoredServices starts the databases first and fills them from
// their dumps, then the rest.
func (t *entity) startRestoredServices(ctx workflow.Context, env spec.Environment) error {
	t.state.Services = make([]runtimes.ServiceStatus, len(env.Services))
	start := func(dumped bool) error {
		return t.startServices(ctx, env, func(s spec.Service) bool { return (s.Backup != nil) == dumped })
	}
	if final := t.state.Decommission.Final; final != nil {
		// The databases first, then the final backup: volumes through
		// scratch volumes, dumps into the running databases.
		if err := start(true); err != nil {
			return err
		}
		var restored restic.Restored
		if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), rs.RestoreBackup, restic.RestoreInput{
			Tenant: t.spec.Name, Owner: t.state.ProvisionID, Runtime: t.template.Runtime, ID: final.ID, Dumps: dumpedServices(env),
		}).Get(ctx, &restored); err != nil {
			return err
		}
		return start(false)
	}
	if len(dumpedServices(env)) > 0 {
		if err := start(true); err != nil {
			return err
		}
		if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), bk.LoadDumps, t.backupRef()).Get(ctx, nil); err != nil {
			return err
		}
	}
	return start(false)
}

// failRestore undoes what the restore made: the tenant stays
// decommissioned, its data in the backup.
func (t *entity) failRestore(ctx workflow.Context, err error, kept []Resource, undo flow.Saga, started time.Time) {
	d := t.state.Decommission
	msg := flow.ErrorMessage(err)
	t.logger(ctx).Error("restore failed, undoing it", "error", msg)
	t.step("compensate")
	msg = undo.Undo(ctx, msg, "undo")
	t.step("")
	t.state.Resources, t.state.Services, t.state.Endpoint = kept, nil, ""
	d.moveTo(PhaseRetained)
	d.Error = "restore failed, the tenant stays decommissioned: " + msg
	t.setState(ctx, StateDecommissioned, d.Error)
	t.countOperation(ctx, "restore", "failed", started)
}

// reregister puts the restored tenant back in every system: the route
// first (its URL), then DNS, accounts, CMDB and supervision in parallel.
func (t *entity) reregister(ctx workflow.Context, plan integrations.Plan, env spec.Environment, ep runtimes.Endpoint, kept []Resource, undo *flow.Saga) error {
	if plan.Routing {
		if err := t.ensureRoute(ctx, plan, ep, undo); err != nil {
			return err
		}
		t.state.URL = plan.URL
	}
	f := flow.NewGroup(ctx)
	if plan.DNS {
		f.Run("DNS record", func(ctx workflow.Context) error { return t.ensureDNS(ctx, plan, undo) })
	}
	for _, r := range kept {
		if r.Kind == KindLDAP {
			f.Run("enable LDAP accounts", func(ctx workflow.Context) error {
				ref := ldap.DirectoryRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}
				if err := call(ctx, undo, "disable LDAP accounts", ld.DisableAccounts, ref, ld.EnableAccounts, ref, nil); err != nil {
					return err
				}
				t.state.Resources = append(t.state.Resources, r)
				return nil
			})
		}
	}
	if plan.CMDB {
		f.Run("CMDB entry", func(ctx workflow.Context) error {
			in := cmdb.CMDBInput{Tenant: t.spec.Name, Stage: t.spec.Stage, Template: t.spec.Template, URL: t.state.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}
			for _, s := range env.Services {
				in.Services = append(in.Services, cmdb.CMDBService{Name: s.Name, Image: s.Image})
			}
			var rec cmdb.CMDBRecord
			if err := call(ctx, undo, "mark obsolete in CMDB", cm.MarkObsoleteInCMDB, cmdb.CMDBRef{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt()}, cm.RegisterInCMDB, in, &rec); err != nil {
				return err
			}
			t.addResource(KindCMDB, "ApplicationSolution::"+rec.ApplicationSolutionID, "Organization::"+rec.OrganizationID)
			return nil
		})
	}
	if err := f.Wait(ctx); err != nil {
		return err
	}
	if plan.Supervision {
		return t.startSupervision(ctx, plan, ep, undo)
	}
	return nil
}
