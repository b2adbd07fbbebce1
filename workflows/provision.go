package workflows

import (
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/runtime"
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
// UI) and is retried elsewhere if its worker dies.
var waitHealthyOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Minute,
	HeartbeatTimeout:    15 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    5,
	},
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

// provision creates the tenant's environment: network and volumes (in
// parallel), then every service (in parallel), then waits until all are
// healthy. On a permanent failure every step made so far is undone and the
// tenant ends as failed, holding nothing on the runtime.
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

	var a *runtime.Activities
	ref := runtime.TenantRef{Tenant: t.spec.Name}
	lctx := workflow.WithLocalActivityOptions(ctx, localStepOptions)
	var undo saga
	local := func(fn any, arg any) func(workflow.Context) error {
		return func(ctx workflow.Context) error {
			return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localStepOptions), fn, arg).Get(ctx, nil)
		}
	}

	err = func() error {
		// Network and volumes do not depend on each other.
		undo.add("remove network", local(a.RemoveNetwork, ref))
		undo.add("remove volumes", local(a.RemoveVolumes, ref))
		t.begin(StepCreateNetwork)
		t.begin(StepCreateVolumes)
		netF := workflow.ExecuteLocalActivity(lctx, a.CreateNetwork, ref)
		volF := workflow.ExecuteLocalActivity(lctx, a.CreateVolumes, runtime.VolumesInput{Tenant: t.spec.Name, Volumes: env.Volumes})
		netErr := netF.Get(ctx, nil)
		t.end(StepCreateNetwork)
		volErr := volF.Get(ctx, nil)
		t.end(StepCreateVolumes)
		if err := errors.Join(netErr, volErr); err != nil {
			return err
		}

		// Services start together; each finds its peers by name on the
		// tenant network once they are up.
		undo.add("remove services", local(a.RemoveServices, ref))
		t.begin(StepStartServices)
		futures := make([]workflow.Future, len(env.Services))
		for i, svc := range env.Services {
			futures[i] = workflow.ExecuteLocalActivity(lctx, a.StartService, runtime.ServiceInput{Tenant: t.spec.Name, Service: svc})
		}
		var errs error
		t.state.Services = make([]runtime.ServiceStatus, len(env.Services))
		for i, f := range futures {
			errs = errors.Join(errs, f.Get(ctx, &t.state.Services[i]))
		}
		t.end(StepStartServices)
		if errs != nil {
			return errs
		}

		t.begin(StepWaitHealthy)
		var ep runtime.Endpoint
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, waitHealthyOptions), a.WaitHealthy, env).Get(ctx, &ep); err != nil {
			return err
		}
		t.end(StepWaitHealthy)
		t.state.URL = ep.URL
		return nil
	}()
	if err != nil {
		msg := errorMessage(err)
		log.Error("provisioning failed, compensating", "error", msg)
		t.step("compensate")
		if cerr := undo.compensate(ctx); cerr != nil {
			msg += "; compensation incomplete: " + cerr.Error()
		}
		t.step("")
		t.state.Services = nil
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
