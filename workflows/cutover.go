package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/supervision"
)

// Steps of a cut-over, as the progress query names them.
const (
	StepEnsureImage = "ensure image"
	StepStartNew    = "start new instance"
	StepSwitchRoute = "switch route"
	StepDrain       = "drain old instance"
	StepRetireOld   = "retire old instance"
	StepRollBack    = "roll back"
)

// defaultStopGrace is how long a retired instance may finish in-flight
// requests after SIGTERM.
const defaultStopGrace = 10 * time.Second

// defaultPullBudget bounds an image pull (with its retries through a
// registry outage) when the release sets no larger health timeout: the
// tenant takes no other operation while its cut-over pulls.
const defaultPullBudget = 5 * time.Minute

// ensureImageOptions run the pull as a local activity (idempotent:
// present images are not pulled again) within the release's budget: its
// healthTimeout, or defaultPullBudget if that is longer.
func ensureImageOptions(in ApplyReleaseInput) workflow.LocalActivityOptions {
	budget := max(defaultPullBudget, in.HealthTimeout.D())
	return workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: budget,
		StartToCloseTimeout:    budget,
		RetryPolicy:            localStepOptions.RetryPolicy,
	}
}

// SignalCancelRelease tells the tenant that a release was aborted (see
// fleet.CancelRelease).
const SignalCancelRelease = fleet.SignalCancelRelease

// CancelReleaseInput is the cancelRelease Signal's argument.
type CancelReleaseInput = fleet.CancelInput

// listenForCancels receives cancelRelease Signals for the workflow's whole
// run: a cut-over of the release under way is cancelled before its route
// switches (and so rolled back), and one not started yet never starts.
func (t *tenant) listenForCancels(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, SignalCancelRelease)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var in CancelReleaseInput
			if !ch.Receive(ctx, &in) {
				return
			}
			if t.cancelledReleases == nil {
				t.cancelledReleases = map[cancelKey]bool{}
			}
			t.cancelledReleases[cancelKey{in.Release, in.Image}] = true
			if t.cutting != nil && t.cutting.key == (cancelKey{in.Release, in.Image}) {
				t.logger(ctx).Info("cut-over cancelled", "release", in.Release, "reason", in.Reason)
				t.cutting.cancelled = true
				t.cutting.cancel()
			}
		}
	})
}

// cancelKey names the cut-overs an abort cancels: a release's image (a
// revert of the release, back to the previous image, is another).
type cancelKey struct{ release, image string }

// runningCutover is the cut-over under way, until its route switched.
type runningCutover struct {
	key       cancelKey
	cancel    workflow.CancelFunc
	cancelled bool
}

// registerReleaseUpdate installs applyRelease: the only way a release
// reaches the tenant. Operations run one at a time (t.busy), so a release
// arriving while the tenant is provisioned waits for the end of it, and two
// releases never cut over the same tenant together.
func (t *tenant) registerReleaseUpdate(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateApplyRelease,
		func(ctx workflow.Context, in ApplyReleaseInput) (ApplyReleaseResult, error) {
			if err := workflow.Await(ctx, func() bool { return !t.busy }); err != nil {
				return ApplyReleaseResult{}, err
			}
			now := workflow.Now(ctx)
			res := ApplyReleaseResult{Tenant: t.spec.Name, From: t.state.Image, To: in.Image, StartedAt: now, FinishedAt: now}
			switch {
			case t.cancelledReleases[cancelKey{in.Release, in.Image}]:
				res.Outcome, res.Error = TenantSkipped, "release "+in.Release+" was aborted before its turn came"
				return res, nil
			case t.state.State != StateActive:
				// Provisioning failed while the release waited.
				res.Outcome, res.Error = TenantSkipped, fmt.Sprintf("tenant %s is %s", t.spec.Name, t.state.State)
				return res, nil
			case t.state.Image == in.Image:
				res.Outcome = TenantUnchanged
				t.state.Release = in.Release
				t.upsertSearchAttributes(ctx)
				return res, nil
			}
			t.busy = true
			defer func() { t.busy = false }()
			return t.cutover(ctx, in), nil
		},
		workflow.UpdateHandlerOptions{
			Description: "Run a release's image: start it beside the current instance, switch the route once healthy, retire the old one",
			Validator: func(ctx workflow.Context, in ApplyReleaseInput) error {
				switch {
				case in.Image == "" || in.Release == "":
					return temporal.NewApplicationError("applyRelease needs a release and an image", ErrTenantBusy)
				case t.state.State == StateFailed || t.state.State == StateDecommissioning || t.state.State == StateDecommissioned || t.state.State == StateRestoring:
					return temporal.NewApplicationError(fmt.Sprintf("tenant %s is %s: it takes no release", t.spec.Name, t.state.State), ErrTenantBusy)
				case t.svcIndex() < 0:
					return temporal.NewApplicationError(fmt.Sprintf("tenant %s has no public service to release to", t.spec.Name), ErrTenantBusy)
				}
				return nil
			},
		})
}

// svcIndex is the index of the public (released) service in the template.
func (t *tenant) svcIndex() int {
	for i, s := range t.template.Services {
		for _, p := range s.Ports {
			if p.Public {
				return i
			}
		}
	}
	return -1
}

// resource finds what provisioning registered the tenant with in an outside
// system; a cut-over follows what the tenant has, not the current worker
// settings.
func (t *tenant) resource(kind string) (Resource, bool) {
	for _, r := range t.state.Resources {
		if r.Kind == kind {
			return r, true
		}
	}
	return Resource{}, false
}

// cutover replaces the public service's instance by one running in.Image
// without dropping a request:
//
//	ensure image → start new instance beside the old → wait until healthy →
//	switch the route (one atomic PATCH) → drain → retire the old instance
//
// Until the route switched, any failure removes the new instance and leaves
// the old one serving: the tenant is rolled back, not broken.
func (t *tenant) cutover(ctx workflow.Context, in ApplyReleaseInput) ApplyReleaseResult {
	log := t.logger(ctx)
	started := workflow.Now(ctx)
	res := ApplyReleaseResult{Tenant: t.spec.Name, From: t.state.Image, To: in.Image, StartedAt: started}
	t.state.Progress = Progress{Total: 5}
	t.setState(ctx, StateUpdating, "")

	env, err := t.template.Render(t.spec.Name, t.spec.Stage, t.secrets)
	if err != nil {
		return t.endCutover(ctx, res, TenantRolledBack, err.Error())
	}
	oldGen, newGen := t.state.Generation, t.state.Generation+1
	cand := env.Services[t.svcIndex()]
	cand.Image, cand.Generation = in.Image, newGen
	owner := t.state.ProvisionID
	var a *runtimes.Activities
	lctx := workflow.WithLocalActivityOptions(ctx, localStepOptions)

	// Until the route switched, an abort of the release cancels the
	// cut-over: its steps run on a context of their own, its undo and what
	// follows the switch on the operation's.
	outer := ctx
	ctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	cut := &runningCutover{key: cancelKey{in.Release, in.Image}, cancel: cancel}
	t.cutting = cut
	var undo saga
	err = func() error {
		t.step(StepEnsureImage)
		if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, ensureImageOptions(in)), a.EnsureImage, runtimes.ImageInput{Runtime: t.template.Runtime, Image: in.Image}).Get(ctx, nil); err != nil {
			return err
		}
		t.stepDone()

		t.step(StepStartNew)
		undo.add("remove new instance", func(ctx workflow.Context) error {
			return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localStepOptions), a.RetireService,
				runtimes.RetireInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, Service: cand.Name, Keep: oldGen, StopTimeout: spec.Duration(time.Second)}).Get(ctx, nil)
		})
		var st runtimes.ServiceStatus
		if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localStepOptions), a.StartService, runtimes.ServiceInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, Service: cand, ReadyTimeout: in.HealthTimeout}).Get(ctx, &st); err != nil {
			return err
		}
		var ep runtimes.Endpoint
		check := spec.Environment{Runtime: env.Runtime, Tenant: t.spec.Name, Stage: t.spec.Stage, Template: env.Template, Services: []spec.Service{cand}, HealthTimeout: in.HealthTimeout}
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, healthWaitOptions(check)), a.WaitHealthy, check).Get(ctx, &ep); err != nil {
			return err
		}
		t.stepDone()

		t.step(StepSwitchRoute)
		if err := t.switchTo(ctx, ep, &undo); err != nil {
			return err
		}
		t.setService(st)
		t.stepDone()
		return nil
	}()
	t.cutting = nil
	ctx = outer
	if err != nil {
		msg := errorMessage(err)
		if cut.cancelled {
			msg = "cancelled: release " + in.Release + " was aborted"
		}
		log.Warn("cut-over failed, rolling back", "release", in.Release, "image", in.Image, "error", msg)
		t.step(StepRollBack)
		if cerr := undo.compensate(ctx); cerr != nil {
			msg += "; roll-back incomplete: " + cerr.Error()
		}
		return t.endCutover(ctx, res, TenantRolledBack, msg)
	}

	// The route points at the new instance: from here on the release
	// stands. In-flight requests finish on the old instance before it gets
	// SIGTERM (and then its own grace to drain).
	t.state.Generation = newGen
	t.state.PreviousImage, t.state.Image, t.state.Release = t.state.Image, in.Image, in.Release
	t.step(StepDrain)
	drain := in.Drain.D()
	if _, routed := t.resource("route"); !routed {
		drain = 0 // nothing routes to the old instance any more
	}
	wg := workflow.NewWaitGroup(ctx)
	wg.Add(1)
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer wg.Done()
		t.recordInCMDB(ctx, env, cand)
	})
	if drain > 0 {
		if err := workflow.Sleep(ctx, drain); err != nil {
			log.Warn("drain interrupted", "error", err)
		}
	}
	t.stepDone()
	t.step(StepRetireOld)
	msg := ""
	err = workflow.ExecuteLocalActivity(lctx, a.RetireService, runtimes.RetireInput{
		Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: owner, Service: cand.Name, Keep: newGen, StopTimeout: spec.Duration(defaultStopGrace),
	}).Get(ctx, nil)
	if err != nil {
		// The tenant serves the new image; only a stopped-but-left
		// container remains, which ops can see in the message.
		msg = "old instance not removed: " + errorMessage(err)
		log.Error("retire old instance failed", "error", msg)
	}
	wg.Wait(ctx)
	t.stepDone()
	return t.endCutover(ctx, res, TenantUpdated, msg)
}

// switchTo points the tenant's route and probes at the new instance. Each
// change registers its undo first, so a failure part-way puts everything
// back on the old instance.
func (t *tenant) switchTo(ctx workflow.Context, ep runtimes.Endpoint, undo *saga) error {
	oldEndpoint := t.state.Endpoint
	if _, ok := t.resource("route"); ok {
		up, err := upstream(ep)
		if err != nil {
			return err
		}
		oldUp, err := upstream(runtimes.Endpoint{URL: oldEndpoint})
		if err != nil {
			return err
		}
		var p *proxy.Activities
		var route proxy.Route
		if err := call(ctx, undo, "restore route", p.EnsureRoute, proxy.RouteInput{Tenant: t.spec.Name, Upstreams: []string{oldUp}, Owner: t.state.ProvisionID, Adopt: t.adopt()},
			p.EnsureRoute, proxy.RouteInput{Tenant: t.spec.Name, Upstreams: []string{up}, Owner: t.state.ProvisionID, Adopt: t.adopt()}, &route); err != nil {
			return err
		}
		t.setResourceDetail("route", route.URL+" -> "+up)
	} else {
		t.state.URL = ep.URL // without a proxy the endpoint is the URL
	}
	if r, ok := t.resource("supervision"); ok && r.Detail == oldEndpoint {
		// Probes target the instance itself, not the public URL: follow it.
		var s *supervision.Activities
		if err := call(ctx, undo, "restore probe", s.StartSupervision, supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: oldEndpoint, Owner: t.state.ProvisionID, Adopt: t.adopt()},
			s.StartSupervision, supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: ep.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}, nil); err != nil {
			return err
		}
		t.setResourceDetail("supervision", ep.URL)
	}
	t.state.Endpoint = ep.URL
	return nil
}

// recordInCMDB updates the images the CMDB shows. The CMDB is for people:
// after its retries a failure is logged, and the release stands.
func (t *tenant) recordInCMDB(ctx workflow.Context, env spec.Environment, cand spec.Service) {
	if _, ok := t.resource("cmdb"); !ok {
		return
	}
	var c *cmdb.Activities
	in := cmdb.CMDBInput{Tenant: t.spec.Name, Stage: t.spec.Stage, Template: t.spec.Template, URL: t.state.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}
	for _, s := range env.Services {
		img := s.Image
		if s.Name == cand.Name {
			img = cand.Image
		}
		in.Services = append(in.Services, cmdb.CMDBService{Name: s.Name, Image: img})
	}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), c.RegisterInCMDB, in).Get(ctx, nil); err != nil {
		t.logger(ctx).Error("CMDB not updated with the new image", "error", errorMessage(err))
	}
}

func (t *tenant) setResourceDetail(kind, detail string) {
	for i := range t.state.Resources {
		if t.state.Resources[i].Kind == kind {
			t.state.Resources[i].Detail = detail
		}
	}
}

func (t *tenant) setService(st runtimes.ServiceStatus) {
	for i := range t.state.Services {
		if t.state.Services[i].Service == st.Service {
			t.state.Services[i] = st
			return
		}
	}
	t.state.Services = append(t.state.Services, st)
}

// endCutover records the outcome on the tenant and in the answer.
func (t *tenant) endCutover(ctx workflow.Context, res ApplyReleaseResult, outcome, msg string) ApplyReleaseResult {
	res.Outcome, res.Error, res.FinishedAt = outcome, msg, workflow.Now(ctx)
	t.step("")
	errMsg := ""
	if outcome == TenantRolledBack {
		errMsg = "release " + res.To + " rolled back: " + msg
	}
	t.setState(ctx, StateActive, errMsg)
	t.countOperation(ctx, "release", strings.ReplaceAll(outcome, "-", "_"), res.StartedAt)
	t.logger(ctx).Info("release applied", "outcome", outcome, "from", res.From, "to", res.To, "tookMs", res.FinishedAt.Sub(res.StartedAt).Milliseconds())
	return res
}
