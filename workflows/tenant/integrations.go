package tenant

import (
	"net/url"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// Integration steps, as the progress query names them.
const (
	StepRoute       = "route"
	StepDNS         = "dns record"
	StepDirectory   = "ldap accounts"
	StepCMDB        = "cmdb"
	StepSupervision = "supervision"
)

// adminPasswordSecret is the key of the tenant's first directory account's
// password among the tenant's secrets (it never clashes with a template
// secret: those cannot contain a dot).
const adminPasswordSecret = "tenantflow.admin-password"

func (t *entity) addResource(kind ResourceKind, id, detail string) {
	t.state.Resources = append(t.state.Resources, Resource{Kind: kind, ID: id, Detail: detail})
}

// plan asks the worker's configuration what this tenant's integrations
// are, recording the answer in history.
func (t *entity) plan(ctx workflow.Context) (integrations.Plan, error) {
	var plan integrations.Plan
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localStepOptions), ig.PlanIntegrations,
		integrations.Input{Tenant: t.spec.Name, Runtime: t.template.Runtime}).Get(ctx, &plan)
	return plan, err
}

// adopt says whether the tenant's calls to outside systems may take over its
// objects from before they were stamped with the provisioning run: the
// release, decommission, restore and purge of an existing tenant may, its
// provisioning (and the compensation of it) never does, so a tenant
// requested again can neither take over nor remove a live tenant's objects.
func (t *entity) adopt() bool { return t.state.State != StateProvisioning }

// runtimeRef names the tenant, its runtime and its provisioning to the
// runtime activities.
func (t *entity) runtimeRef() runtimes.TenantRef {
	return runtimes.TenantRef{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID}
}

func (t *entity) planIntegrations(ctx workflow.Context) (integrations.Plan, error) {
	plan, err := t.plan(ctx)
	if err != nil {
		return plan, err
	}
	if plan.Directory && t.secrets[adminPasswordSecret] == "" {
		var pw string
		err := workflow.SideEffect(ctx, func(workflow.Context) any {
			s, err := (&spec.Template{Secrets: []spec.SecretTemplate{{Name: "admin", Length: 24}}}).GenerateSecrets()
			if err != nil {
				panic(err)
			}
			return s["admin"]
		}).Get(&pw)
		if err != nil {
			return plan, err
		}
		t.secrets[adminPasswordSecret] = pw
	}
	return plan, nil
}

// call runs an integration activity and registers its compensation first.
func call(ctx workflow.Context, undo *flow.Saga, undoName string, undoFn, undoArg any, fn, arg, result any) error {
	actx := workflow.WithActivityOptions(ctx, integrationOptions)
	undo.Add(undoName, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), undoFn, undoArg).Get(ctx, nil)
	})
	return workflow.ExecuteActivity(actx, fn, arg).Get(ctx, result)
}

func (t *entity) ensureDNS(ctx workflow.Context, plan integrations.Plan, undo *flow.Saga) error {
	in := dns.RecordInput{Tenant: t.spec.Name, Name: plan.Host, Owner: t.state.ProvisionID, Adopt: t.adopt()}
	var rec dns.Record
	if err := call(ctx, undo, "remove DNS record", dn.RemoveDNSRecord, in, dn.EnsureDNSRecord, in, &rec); err != nil {
		return err
	}
	t.addResource(KindDNS, rec.Name, rec.Type+" "+rec.Target)
	return nil
}

func (t *entity) ensureDirectory(ctx workflow.Context, plan integrations.Plan, undo *flow.Saga) error {
	in := ldap.DirectoryInput{Tenant: t.spec.Name, AdminUser: plan.AdminUser, AdminPassword: t.secrets[adminPasswordSecret], Owner: t.state.ProvisionID, Adopt: t.adopt()}
	var dir ldap.Directory
	ref := ldap.DirectoryRef{Tenant: t.spec.Name, Owner: in.Owner, Adopt: in.Adopt}
	if err := call(ctx, undo, "remove LDAP directory", ld.RemoveDirectory, ref, ld.EnsureDirectory, in, &dir); err != nil {
		return err
	}
	t.addResource(KindLDAP, dir.OU, "group "+dir.Group)
	t.state.Accounts = []Account{{Username: plan.AdminUser, DN: dir.Admin}}
	return nil
}

func (t *entity) registerInCMDB(ctx workflow.Context, plan integrations.Plan, env spec.Environment, undo *flow.Saga) error {
	in := cmdb.CMDBInput{Tenant: t.spec.Name, Stage: t.spec.Stage, Template: t.spec.Template, URL: plan.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}
	for _, s := range env.Services {
		in.Services = append(in.Services, cmdb.CMDBService{Name: s.Name, Image: s.Image})
	}
	var rec cmdb.CMDBRecord
	ref := cmdb.CMDBRef{Tenant: t.spec.Name, Owner: in.Owner, Adopt: in.Adopt}
	if err := call(ctx, undo, "remove from CMDB", cm.RemoveFromCMDB, ref, cm.RegisterInCMDB, in, &rec); err != nil {
		return err
	}
	t.addResource(KindCMDB, "ApplicationSolution::"+rec.ApplicationSolutionID, "Organization::"+rec.OrganizationID)
	return nil
}

// upstream turns the runtime endpoint (http://127.0.0.1:32771) into the
// proxy's dial address.
func upstream(ep runtimes.Endpoint) (string, error) {
	u, err := url.Parse(ep.URL)
	if err != nil || u.Host == "" {
		return "", temporal.NewNonRetryableApplicationError("runtime endpoint "+ep.URL+" is not a URL", "InvalidEndpoint", err)
	}
	return u.Host, nil
}

func (t *entity) ensureRoute(ctx workflow.Context, plan integrations.Plan, ep runtimes.Endpoint, undo *flow.Saga) error {
	t.begin(StepRoute)
	defer t.end(StepRoute)
	up, err := upstream(ep)
	if err != nil {
		return err
	}
	var route proxy.Route
	owner, adopt := t.state.ProvisionID, t.adopt()
	if err := call(ctx, undo, "remove route", px.RemoveRoute, proxy.RouteRef{Tenant: t.spec.Name, Owner: owner, Adopt: adopt},
		px.EnsureRoute, proxy.RouteInput{Tenant: t.spec.Name, Upstreams: []string{up}, Owner: owner, Adopt: adopt}, &route); err != nil {
		return err
	}
	t.addResource(KindRoute, route.ID, route.URL+" -> "+up)
	return nil
}

func (t *entity) startSupervision(ctx workflow.Context, plan integrations.Plan, ep runtimes.Endpoint, undo *flow.Saga) error {
	t.begin(StepSupervision)
	defer t.end(StepSupervision)
	probe := ep.URL
	if plan.ProbePublic {
		probe = plan.URL
	}
	in := supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: probe, Owner: t.state.ProvisionID, Adopt: t.adopt()}
	ref := supervision.WatchRef{Tenant: t.spec.Name, Owner: in.Owner, Adopt: in.Adopt}
	if err := call(ctx, undo, "stop supervision", sv.StopSupervision, ref, sv.StartSupervision, in, nil); err != nil {
		return err
	}
	t.addResource(KindSupervision, "tenantflow-"+t.spec.Name, probe)
	return nil
}
