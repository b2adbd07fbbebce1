package tenant

import (
	"errors"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// ErrProvisioningFailed is the failure type of a tenant workflow whose
// provisioning failed permanently (after compensation).
const ErrProvisioningFailed = "ProvisioningFailed"

// Steps of provisioning, as the progress query names them.
const (
	StepCreateNetwork = "create network"
	StepCreateVolumes = "create volumes"
	StepStartServices = "start services"
	StepWaitHealthy   = "wait until healthy"
	// StepQueued is shown, with the tenant's place, while its host admits
	// others before it; it is not one of the counted steps.
	StepQueued = "queued for the host"
)

// running tracks the steps under way for the progress query; steps run in
// parallel branches, so the current step may be several.
func (t *entity) begin(step string) {
	if t.state.Progress.Step == "" {
		t.step(step)
	} else {
		t.step(t.state.Progress.Step + ", " + step)
	}
}

func (t *entity) end(step string) {
	t.drop(step)
	t.stepDone()
}

// drop takes a step off the steps under way without counting it done.
func (t *entity) drop(step string) {
	parts := strings.Split(t.state.Progress.Step, ", ")
	t.step(strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == step }), ", "))
}

// versionIntegrations gates the integration steps (routing, DNS, LDAP,
// CMDB, supervision): tenants whose provisioning began before they existed
// replay without them.
const versionIntegrations = "provision-integrations"

// provision creates the tenant's environment and registers it everywhere:
//
//	runtime:  admission → network ∥ volumes → services ∥ → wait until healthy → route → supervision
//	parallel: DNS record, LDAP directory, CMDB entry (they need only the name)
//
// On a permanent failure every step that began is undone (after all
// branches have stopped) and the tenant ends as failed, holding nothing.
func (t *entity) provision(ctx workflow.Context) error {
	started := workflow.Now(ctx)
	t.state.Progress = flow.Progress{Total: 4}
	t.setState(ctx, StateProvisioning, "")
	env, plan, err := t.prepareProvisioning(ctx)
	if err != nil {
		return err
	}
	var undo flow.Saga
	if err := t.buildEnvironment(ctx, env, plan, &undo); err != nil {
		return t.failProvisioning(ctx, err, undo, started)
	}
	if svc, _, ok := env.PublicPort(); ok {
		t.state.Image = svc.Image
	}
	t.step("")
	t.setState(ctx, StateActive, "")
	t.countOperation(ctx, "provision", "succeeded", started)
	t.logger(ctx).Info("tenant provisioned", "url", t.state.URL)
	return nil
}

// prepareProvisioning draws the tenant's secrets, renders its environment
// and plans its integrations. A failure here made nothing: the tenant
// fails at once.
func (t *entity) prepareProvisioning(ctx workflow.Context) (spec.Environment, integrations.Plan, error) {
	var plan integrations.Plan
	if err := t.drawSecrets(ctx); err != nil {
		return spec.Environment{}, plan, err
	}
	env, err := t.template.Render(t.spec.Name, t.spec.Stage, t.secrets)
	if err != nil {
		t.setState(ctx, StateFailed, err.Error())
		return env, plan, temporal.NewNonRetryableApplicationError(err.Error(), ErrProvisioningFailed, err)
	}
	if t.state.ProvisionID == "" {
		t.state.ProvisionID = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	if workflow.GetVersion(ctx, versionIntegrations, workflow.DefaultVersion, 1) >= 1 {
		if plan, err = t.planIntegrations(ctx); err != nil {
			t.setState(ctx, StateFailed, flow.ErrorMessage(err))
			return env, plan, temporal.NewNonRetryableApplicationError(flow.ErrorMessage(err), ErrProvisioningFailed, err)
		}
	}
	return env, plan, nil
}

// drawSecrets draws the template's secrets once and records them
// (encrypted by the payload codec), so a replay or a retry reuses the
// same passwords.
func (t *entity) drawSecrets(ctx workflow.Context) error {
	if t.secrets != nil {
		return nil
	}
	return workflow.SideEffect(ctx, func(workflow.Context) any {
		s, err := t.template.GenerateSecrets()
		if err != nil {
			panic(err) // crypto/rand failing: let the workflow task retry
		}
		return s
	}).Get(&t.secrets)
}

// buildEnvironment runs the runtime path and, beside it, the integrations
// that need only the tenant's name. Side branches run on a context
// cancelled as soon as the runtime path fails: compensation then need not
// wait for a branch that is retrying through an outage. Branches have
// stopped when it returns (their activities wait for cancellation), so
// none is still creating what compensation removes.
func (t *entity) buildEnvironment(ctx workflow.Context, env spec.Environment, plan integrations.Plan, undo *flow.Saga) error {
	bctx, cancelBranches := workflow.WithCancel(ctx)
	defer cancelBranches()
	branches := flow.NewGroup(bctx)
	branch := func(step string, fn func(ctx workflow.Context) error) {
		t.state.Progress.Total++
		branches.Go(func(ctx workflow.Context) error {
			t.begin(step)
			defer t.end(step)
			return fn(ctx)
		})
	}
	if plan.DNS {
		branch(StepDNS, func(ctx workflow.Context) error { return t.ensureDNS(ctx, plan, undo) })
	}
	if plan.Directory {
		branch(StepDirectory, func(ctx workflow.Context) error { return t.ensureDirectory(ctx, plan, undo) })
	}
	if plan.CMDB {
		branch(StepCMDB, func(ctx workflow.Context) error { return t.registerInCMDB(ctx, plan, env, undo) })
	}
	if plan.Routing {
		t.state.Progress.Total++
	}
	if plan.Supervision {
		t.state.Progress.Total++
	}
	err := t.provisionPublicPath(ctx, env, plan, undo)
	if err != nil {
		cancelBranches()
	}
	return errors.Join(err, branches.Wait(ctx))
}

// provisionPublicPath makes the containers, then routes and supervises
// them.
func (t *entity) provisionPublicPath(ctx workflow.Context, env spec.Environment, plan integrations.Plan, undo *flow.Saga) error {
	ep, err := t.provisionRuntime(ctx, env, undo)
	if err != nil {
		return err
	}
	t.state.Endpoint = ep.URL
	t.state.URL = ep.URL
	if plan.Routing {
		if err := t.ensureRoute(ctx, plan, ep, undo); err != nil {
			return err
		}
		t.state.URL = plan.URL
	}
	if plan.Supervision {
		return t.startSupervision(ctx, plan, ep, undo)
	}
	return nil
}

// failProvisioning undoes every step that began and leaves the tenant
// failed, holding nothing.
func (t *entity) failProvisioning(ctx workflow.Context, err error, undo flow.Saga, started time.Time) error {
	msg := flow.ErrorMessage(err)
	t.logger(ctx).Error("provisioning failed, compensating", "error", msg)
	t.step("compensate")
	msg = undo.Undo(ctx, msg, "compensation")
	t.step("")
	t.state.Services, t.state.Resources, t.state.Accounts = nil, nil, nil
	t.state.URL, t.state.Endpoint = "", ""
	t.setState(ctx, StateFailed, msg)
	t.countOperation(ctx, "provision", "failed", started)
	return temporal.NewNonRetryableApplicationError("provision tenant "+t.spec.Name+": "+msg, ErrProvisioningFailed, err)
}

// provisionRuntime makes the containers: network and volumes (in
// parallel), then every service (in parallel), then waits until all are
// healthy, registering their compensations as each step begins.
func (t *entity) provisionRuntime(ctx workflow.Context, env spec.Environment, undo *flow.Saga) (runtimes.Endpoint, error) {
	if err := t.place(ctx, env, undo); err != nil {
		return runtimes.Endpoint{}, err
	}
	owner := t.state.ProvisionID
	ref := t.runtimeRef()
	if workflow.GetVersion(ctx, versionHostAdmission, workflow.DefaultVersion, 1) >= 1 {
		if err := t.admitted(ctx, ref); err != nil {
			return runtimes.Endpoint{}, err
		}
	}
	local := func(fn any, arg any) func(workflow.Context) error {
		return func(ctx workflow.Context) error {
			return t.onHostLocal(ctx, localStepOptions, fn, arg).Get(ctx, nil)
		}
	}

	// Network and volumes do not depend on each other.
	undo.Add("remove network", local(rt.RemoveNetwork, ref))
	undo.Add("remove volumes", local(rt.RemoveVolumes, ref))
	t.begin(StepCreateNetwork)
	t.begin(StepCreateVolumes)
	netF := t.onHostLocal(ctx, localStepOptions, rt.CreateNetwork, ref)
	volF := t.onHostLocal(ctx, localStepOptions, rt.CreateVolumes, runtimes.VolumesInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, Volumes: env.Volumes})
	netErr := netF.Get(ctx, nil)
	t.end(StepCreateNetwork)
	volErr := volF.Get(ctx, nil)
	t.end(StepCreateVolumes)
	if err := errors.Join(netErr, volErr); err != nil {
		return runtimes.Endpoint{}, err
	}

	// Services start together; each finds its peers by name on the tenant
	// network once they are up.
	undo.Add("remove services", local(rt.RemoveServices, ref))
	t.begin(StepStartServices)
	t.state.Services = make([]runtimes.ServiceStatus, len(env.Services))
	errs := t.startServices(ctx, env, func(spec.Service) bool { return true })
	t.end(StepStartServices)
	if errs != nil {
		return runtimes.Endpoint{}, errs
	}

	t.begin(StepWaitHealthy)
	var ep runtimes.Endpoint
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, healthWaitOptions(env))), rt.WaitHealthy, env).Get(ctx, &ep); err != nil {
		return runtimes.Endpoint{}, err
	}
	t.end(StepWaitHealthy)
	return ep, nil
}

// versionHostAdmission gates the wait for the host's admission: tenants
// whose provisioning began before it replay without it.
const versionHostAdmission = "host-admission"

// admitted returns once the tenant's host admits it to start: at once
// when the host has room (a local step), else after waiting its turn in
// the host's queue (a regular activity heartbeating its place, so ops see
// it in the Web UI). Nothing is made before: a queued tenant holds
// nothing on the host, and its health budget has not begun.
func (t *entity) admitted(ctx workflow.Context, ref runtimes.TenantRef) error {
	var st runtimes.Admission
	if err := t.onHostLocal(ctx, localStepOptions, rt.Admit, ref).Get(ctx, &st); err != nil {
		return err
	}
	if st.Admitted {
		return nil
	}
	t.begin(StepQueued)
	err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, admissionOptions)), rt.AwaitAdmission, ref).Get(ctx, &st)
	t.drop(StepQueued)
	return err
}

// startServices creates and starts, in parallel, the services of env that
// which selects, recording each one's status in t.state.Services (indexed
// as env.Services).
func (t *entity) startServices(ctx workflow.Context, env spec.Environment, which func(spec.Service) bool) error {
	return t.startServicesOn(ctx, t.hostQueue(), env, which)
}

// startServicesOn is startServices on a given host's queue.
func (t *entity) startServicesOn(ctx workflow.Context, queue string, env spec.Environment, which func(spec.Service) bool) error {
	var futures []workflow.Future
	var idx []int
	for i, svc := range env.Services {
		if which(svc) {
			futures = append(futures, onHostQueue(ctx, queue, localStepOptions, rt.StartService,
				runtimes.ServiceInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Service: svc}))
			idx = append(idx, i)
		}
	}
	var errs error
	for j, f := range futures {
		errs = errors.Join(errs, f.Get(ctx, &t.state.Services[idx[j]]))
	}
	return errs
}
