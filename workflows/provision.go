package workflows

import (
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
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
)

// Short, idempotent runtime calls run as local activities: they cost no
// round trip to the server, which keeps orchestration overhead small. They
// retry for up to 10 minutes (a Docker host restarting, say) before the
// provisioning is given up and compensated.
var localStepOptions = workflow.LocalActivityOptions{
	ScheduleToCloseTimeout: 10 * time.Minute,
	StartToCloseTimeout:    time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    200 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    15 * time.Second,
	},
}

// Waiting for health can take as long as the template's checks allow, so it
// is a regular activity that heartbeats what it waits for (visible in the Web
// UI) and is retried elsewhere if its worker dies. Its timeout follows the
// health budget (see healthWaitOptions).
var waitHealthyOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Minute,
	HeartbeatTimeout:    15 * time.Second,
	WaitForCancellation: true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    5,
	},
}

// healthWaitSlack is what a health wait gets beyond its budget: the
// driver's own last probe and its answer. 10 minutes stays the floor, the
// OpenShift driver's longest rollout of services without a check.
const healthWaitSlack = 2 * time.Minute

// healthWaitOptions are waitHealthyOptions with room for env's health
// budget: an attempt must never be cut off before its budget is spent,
// or a slow start would fail as a timeout after all its retries instead
// of as ServiceUnhealthy once.
func healthWaitOptions(env spec.Environment) workflow.ActivityOptions {
	o := waitHealthyOptions
	o.StartToCloseTimeout = max(o.StartToCloseTimeout, env.HealthBudget()+healthWaitSlack)
	return o
}

// compensation undoes one step of a failed operation.
type compensation struct {
	name string
	run  func(ctx workflow.Context) error
}

// saga collects compensations as steps begin (a step that fails half-way
// may have made something) and runs them in reverse order.
type saga []compensation

func (s *saga) add(name string, run func(ctx workflow.Context) error) {
	*s = append(*s, compensation{name: name, run: run})
}

// compensate runs every compensation, latest first, on a disconnected
// context so that a cancelled workflow still cleans up. It goes on past a
// failing compensation and reports all failures.
func (s saga) compensate(ctx workflow.Context) error {
	ctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	var errs error
	for i := len(s) - 1; i >= 0; i-- {
		if err := s[i].run(ctx); err != nil {
			workflow.GetLogger(ctx).Error("compensation failed", "step", s[i].name, "error", err)
			errs = errors.Join(errs, errors.New(s[i].name+": "+errorMessage(err)))
		}
	}
	return errs
}

// running tracks the steps under way for the progress query; steps run in
// parallel branches, so the current step may be several.
func (t *tenant) begin(step string) {
	if t.state.Progress.Step == "" {
		t.step(step)
	} else {
		t.step(t.state.Progress.Step + ", " + step)
	}
}

func (t *tenant) end(step string) {
	parts := strings.Split(t.state.Progress.Step, ", ")
	kept := parts[:0]
	for _, p := range parts {
		if p != step {
			kept = append(kept, p)
		}
	}
	t.step(strings.Join(kept, ", "))
	t.stepDone()
}

// versionIntegrations gates the integration steps (routing, DNS, LDAP,
// CMDB, supervision): tenants whose provisioning began before they existed
// replay without them.
const versionIntegrations = "provision-integrations"

// provision creates the tenant's environment and registers it everywhere:
//
//	runtime:  network ∥ volumes → services ∥ → wait until healthy → route → supervision
//	parallel: DNS record, LDAP directory, CMDB entry (they need only the name)
//
// On a permanent failure every step that began is undone (after all
// branches have stopped) and the tenant ends as failed, holding nothing.
func (t *tenant) provision(ctx workflow.Context) error {
	log := t.logger(ctx)
	started := workflow.Now(ctx)
	t.state.Progress = Progress{Total: 4}
	t.setState(ctx, StateProvisioning, "")

	if t.secrets == nil {
		// Drawn once and recorded (encrypted by the payload codec), so a
		// replay or a retry reuses the same passwords.
		err := workflow.SideEffect(ctx, func(workflow.Context) any {
			s, err := t.template.GenerateSecrets()
			if err != nil {
				panic(err) // crypto/rand failing: let the workflow task retry
			}
			return s
		}).Get(&t.secrets)
		if err != nil {
			return err
		}
	}
	env, err := t.template.Render(t.spec.Name, t.spec.Stage, t.secrets)
	if err != nil {
		t.setState(ctx, StateFailed, err.Error())
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrProvisioningFailed, err)
	}

	if t.state.ProvisionID == "" {
		t.state.ProvisionID = workflow.GetInfo(ctx).WorkflowExecution.RunID
	}
	var plan integrations.Plan
	if workflow.GetVersion(ctx, versionIntegrations, workflow.DefaultVersion, 1) >= 1 {
		if plan, err = t.planIntegrations(ctx); err != nil {
			t.setState(ctx, StateFailed, errorMessage(err))
			return temporal.NewNonRetryableApplicationError(errorMessage(err), ErrProvisioningFailed, err)
		}
	}

	var undo saga
	wg := workflow.NewWaitGroup(ctx)
	var branchErrs error
	// Side branches run on a context cancelled as soon as the runtime path
	// fails: compensation then need not wait for a branch that is retrying
	// through an outage. (Their activities wait for cancellation, so none
	// is still creating when compensation starts.)
	bctx, cancelBranches := workflow.WithCancel(ctx)
	defer cancelBranches()
	branch := func(step string, fn func(ctx workflow.Context) error) {
		t.state.Progress.Total++
		wg.Add(1)
		workflow.Go(bctx, func(ctx workflow.Context) {
			defer wg.Done()
			t.begin(step)
			branchErrs = errors.Join(branchErrs, fn(ctx))
			t.end(step)
		})
	}
	if plan.DNS {
		branch(StepDNS, func(ctx workflow.Context) error { return t.ensureDNS(ctx, plan, &undo) })
	}
	if plan.Directory {
		branch(StepDirectory, func(ctx workflow.Context) error { return t.ensureDirectory(ctx, plan, &undo) })
	}
	if plan.CMDB {
		branch(StepCMDB, func(ctx workflow.Context) error { return t.registerInCMDB(ctx, plan, env, &undo) })
	}
	if plan.Routing {
		t.state.Progress.Total++
	}
	if plan.Supervision {
		t.state.Progress.Total++
	}

	err = func() error {
		ep, err := t.provisionRuntime(ctx, env, &undo)
		if err != nil {
			return err
		}
		t.state.Endpoint = ep.URL
		t.state.URL = ep.URL
		if plan.Routing {
			if err := t.ensureRoute(ctx, plan, ep, &undo); err != nil {
				return err
			}
			t.state.URL = plan.URL
		}
		if plan.Supervision {
			return t.startSupervision(ctx, plan, ep, &undo)
		}
		return nil
	}()
	if err != nil {
		cancelBranches()
	}
	// Branches must have stopped before anything is undone: a step still
	// running could otherwise create what compensation just removed.
	wg.Wait(ctx)
	err = errors.Join(err, branchErrs)
	if err != nil {
		msg := errorMessage(err)
		log.Error("provisioning failed, compensating", "error", msg)
		t.step("compensate")
		if cerr := undo.compensate(ctx); cerr != nil {
			msg += "; compensation incomplete: " + cerr.Error()
		}
		t.step("")
		t.state.Services, t.state.Resources, t.state.Accounts = nil, nil, nil
		t.state.URL, t.state.Endpoint = "", ""
		t.setState(ctx, StateFailed, msg)
		t.countOperation(ctx, "provision", "failed", started)
		return temporal.NewNonRetryableApplicationError("provision tenant "+t.spec.Name+": "+msg, ErrProvisioningFailed, err)
	}

	if svc, _, ok := env.PublicPort(); ok {
		t.state.Image = svc.Image
	}
	t.step("")
	t.setState(ctx, StateActive, "")
	t.countOperation(ctx, "provision", "succeeded", started)
	log.Info("tenant provisioned", "url", t.state.URL)
	return nil
}

// provisionRuntime makes the containers: network and volumes (in
// parallel), then every service (in parallel), then waits until all are
// healthy, registering their compensations as each step begins.
func (t *tenant) provisionRuntime(ctx workflow.Context, env spec.Environment, undo *saga) (runtimes.Endpoint, error) {
	var a *runtimes.Activities
	owner := t.state.ProvisionID
	ref := t.runtimeRef()
	lctx := workflow.WithLocalActivityOptions(ctx, localStepOptions)
	local := func(fn any, arg any) func(workflow.Context) error {
		return func(ctx workflow.Context) error {
			return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localStepOptions), fn, arg).Get(ctx, nil)
		}
	}

	// Network and volumes do not depend on each other.
	undo.add("remove network", local(a.RemoveNetwork, ref))
	undo.add("remove volumes", local(a.RemoveVolumes, ref))
	t.begin(StepCreateNetwork)
	t.begin(StepCreateVolumes)
	netF := workflow.ExecuteLocalActivity(lctx, a.CreateNetwork, ref)
	volF := workflow.ExecuteLocalActivity(lctx, a.CreateVolumes, runtimes.VolumesInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, Volumes: env.Volumes})
	netErr := netF.Get(ctx, nil)
	t.end(StepCreateNetwork)
	volErr := volF.Get(ctx, nil)
	t.end(StepCreateVolumes)
	if err := errors.Join(netErr, volErr); err != nil {
		return runtimes.Endpoint{}, err
	}

	// Services start together; each finds its peers by name on the tenant
	// network once they are up.
	undo.add("remove services", local(a.RemoveServices, ref))
	t.begin(StepStartServices)
	t.state.Services = make([]runtimes.ServiceStatus, len(env.Services))
	errs := t.startServices(ctx, env, func(spec.Service) bool { return true })
	t.end(StepStartServices)
	if errs != nil {
		return runtimes.Endpoint{}, errs
	}

	t.begin(StepWaitHealthy)
	var ep runtimes.Endpoint
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, healthWaitOptions(env)), a.WaitHealthy, env).Get(ctx, &ep); err != nil {
		return runtimes.Endpoint{}, err
	}
	t.end(StepWaitHealthy)
	return ep, nil
}

// startServices creates and starts, in parallel, the services of env that
// which selects, recording each one's status in t.state.Services (indexed
// as env.Services).
func (t *tenant) startServices(ctx workflow.Context, env spec.Environment, which func(spec.Service) bool) error {
	var a *runtimes.Activities
	lctx := workflow.WithLocalActivityOptions(ctx, localStepOptions)
	var futures []workflow.Future
	var idx []int
	for i, svc := range env.Services {
		if which(svc) {
			futures = append(futures, workflow.ExecuteLocalActivity(lctx, a.StartService,
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
