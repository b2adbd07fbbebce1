package tenant

import (
	"cmp"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/workflows/flow"
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

// listenForCancels receives cancelRelease Signals for the workflow's whole
// run: a cut-over of the release under way is cancelled before its route
// switches (and so rolled back), and one not started yet never starts.
func (t *entity) listenForCancels(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, SignalCancelRelease)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var in CancelInput
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

// svcIndex is the index of the public (released) service in the template.
func (t *entity) svcIndex() int {
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
func (t *entity) resource(kind ResourceKind) (Resource, bool) {
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
func (t *entity) cutover(ctx workflow.Context, in ApplyInput) ApplyResult {
	res := ApplyResult{Tenant: t.spec.Name, From: t.state.Image, To: in.Image, StartedAt: workflow.Now(ctx)}
	if in.RestoreBackup != "" {
		return t.cutoverWithData(ctx, in, res)
	}
	if in.BackupBefore {
		rec, err := t.backUp(ctx, t.newBackup(ctx, ReasonBeforeRelease, in.Release, "before release "+in.Release))
		if err != nil {
			// Nothing changed: the old image serves on.
			res.Outcome, res.Error, res.FinishedAt = OutcomeRolledBack, "backup before the release failed: "+flow.ErrorMessage(err), workflow.Now(ctx)
			return res
		}
		res.Backup = rec.ID
	}
	t.state.Progress = flow.Progress{Total: 5}
	t.setState(ctx, StateUpdating, "")

	env, err := t.template.Render(t.spec.Name, t.spec.Stage, t.secrets)
	if err != nil {
		return t.endCutover(ctx, res, OutcomeRolledBack, err.Error())
	}
	c := t.candidate(in, env)

	// Until the route switched, an abort of the release cancels the
	// cut-over: its steps run on a context of their own, its undo and what
	// follows the switch on the operation's.
	cctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	cut := &runningCutover{key: cancelKey{in.Release, in.Image}, cancel: cancel}
	t.cutting = cut
	var undo flow.Saga
	err = t.switchToCandidate(cctx, c, &undo)
	t.cutting = nil
	if err != nil {
		return t.rollBack(ctx, res, in, cut, err, undo)
	}
	return t.retirePrevious(ctx, res, c)
}

// candidate is the new instance a cut-over starts: the public service on
// the release's image, one generation up.
type candidate struct {
	in             ApplyInput
	env            spec.Environment
	service        spec.Service
	oldGen, newGen int
}

// candidate is the public service of env on in's image, one generation
// up from the running instance.
func (t *entity) candidate(in ApplyInput, env spec.Environment) candidate {
	c := candidate{in: in, env: env, service: env.Services[t.svcIndex()], oldGen: t.state.Generation, newGen: t.state.Generation + 1}
	c.service.Image, c.service.Generation = in.Image, c.newGen
	return c
}

// switchToCandidate pulls the image, starts the candidate beside the
// running instance, waits until it is healthy and points the route at it.
// Each step registers its undo first.
func (t *entity) switchToCandidate(ctx workflow.Context, c candidate, undo *flow.Saga) error {
	t.step(StepEnsureImage)
	if err := t.onHostLocal(ctx, ensureImageOptions(c.in), rt.EnsureImage,
		runtimes.ImageInput{Runtime: t.template.Runtime, Image: c.in.Image}).Get(ctx, nil); err != nil {
		return err
	}
	t.stepDone()

	t.step(StepStartNew)
	undo.Add("remove new instance", func(ctx workflow.Context) error {
		return t.onHostLocal(ctx, localStepOptions, rt.RetireService,
			runtimes.RetireInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Service: c.service.Name, Keep: c.oldGen, StopTimeout: spec.Duration(time.Second)}).Get(ctx, nil)
	})
	var st runtimes.ServiceStatus
	if err := t.onHostLocal(ctx, localStepOptions, rt.StartService,
		runtimes.ServiceInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Service: c.service, ReadyTimeout: c.in.HealthTimeout}).Get(ctx, &st); err != nil {
		return err
	}
	var ep runtimes.Endpoint
	check := spec.Environment{Runtime: c.env.Runtime, Tenant: t.spec.Name, Stage: t.spec.Stage, Template: c.env.Template, Services: []spec.Service{c.service}, HealthTimeout: c.in.HealthTimeout}
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, healthWaitOptions(check))), rt.WaitHealthy, check).Get(ctx, &ep); err != nil {
		return err
	}
	t.stepDone()

	t.step(StepSwitchRoute)
	if err := t.switchTo(ctx, ep, undo); err != nil {
		return err
	}
	t.setService(st)
	t.stepDone()
	return nil
}

// rollBack undoes a cut-over that failed (or was cancelled) before its
// route switched: the old instance keeps serving.
func (t *entity) rollBack(ctx workflow.Context, res ApplyResult, in ApplyInput, cut *runningCutover, err error, undo flow.Saga) ApplyResult {
	msg := flow.ErrorMessage(err)
	if cut.cancelled {
		msg = "cancelled: release " + in.Release + " was aborted"
	}
	t.logger(ctx).Warn("cut-over failed, rolling back", "release", in.Release, "image", in.Image, "error", msg)
	t.step(StepRollBack)
	msg = undo.Undo(ctx, msg, "roll-back")
	return t.endCutover(ctx, res, OutcomeRolledBack, msg)
}

// retirePrevious runs once the route points at the new instance: from
// here on the release stands. In-flight requests finish on the old
// instance before it gets SIGTERM (and then its own grace to drain),
// while the CMDB learns the new image.
func (t *entity) retirePrevious(ctx workflow.Context, res ApplyResult, c candidate) ApplyResult {
	log := t.logger(ctx)
	t.state.Generation = c.newGen
	t.state.PreviousImage, t.state.Image, t.state.Release = t.state.Image, c.in.Image, c.in.Release
	t.step(StepDrain)
	drain := c.in.Drain.D()
	if _, routed := t.resource(KindRoute); !routed {
		drain = 0 // nothing routes to the old instance any more
	}
	cmdbDone := flow.NewGroup(ctx)
	cmdbDone.Go(func(ctx workflow.Context) error { t.recordInCMDB(ctx, c.env, c.service); return nil })
	if drain > 0 {
		if err := workflow.Sleep(ctx, drain); err != nil {
			log.Warn("drain interrupted", "error", err)
		}
	}
	t.stepDone()
	t.step(StepRetireOld)
	msg := ""
	err := t.onHostLocal(ctx, localStepOptions, rt.RetireService, runtimes.RetireInput{
		Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Service: c.service.Name, Keep: c.newGen, StopTimeout: spec.Duration(defaultStopGrace),
	}).Get(ctx, nil)
	if err != nil {
		// The tenant serves the new image; only a stopped-but-left
		// container remains, which ops can see in the message.
		msg = "old instance not removed: " + flow.ErrorMessage(err)
		log.Error("retire old instance failed", "error", msg)
	}
	_ = cmdbDone.Wait(ctx)
	t.stepDone()
	return t.endCutover(ctx, res, OutcomeUpdated, msg)
}

// switchTo points the tenant's route and probes at the new instance. Each
// change registers its undo first, so a failure part-way puts everything
// back on the old instance.
func (t *entity) switchTo(ctx workflow.Context, ep runtimes.Endpoint, undo *flow.Saga) error {
	oldEndpoint := t.state.Endpoint
	if _, ok := t.resource(KindRoute); ok {
		up, err := upstream(ep)
		if err != nil {
			return err
		}
		oldUp, err := upstream(runtimes.Endpoint{URL: oldEndpoint})
		if err != nil {
			return err
		}
		var route proxy.Route
		if err := call(ctx, undo, "restore route", px.EnsureRoute, t.routeTo(oldUp, ""),
			px.EnsureRoute, t.routeTo(up, ""), &route); err != nil {
			return err
		}
		t.setResourceDetail(KindRoute, route.URL+" -> "+up)
	} else {
		t.state.URL = ep.URL // without a proxy the endpoint is the URL
	}
	if r, ok := t.resource(KindSupervision); ok && r.Detail == oldEndpoint {
		// Probes target the instance itself, not the public URL: follow it.
		if err := call(ctx, undo, "restore probe", sv.StartSupervision, supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: oldEndpoint, Owner: t.state.ProvisionID, Adopt: t.adopt()},
			sv.StartSupervision, supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: ep.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}, nil); err != nil {
			return err
		}
		t.setResourceDetail(KindSupervision, ep.URL)
	}
	t.state.Endpoint = ep.URL
	return nil
}

// recordInCMDB updates the images the CMDB shows. The CMDB is for people:
// after its retries a failure is logged, and the release stands.
func (t *entity) recordInCMDB(ctx workflow.Context, env spec.Environment, cand spec.Service) {
	if _, ok := t.resource(KindCMDB); !ok {
		return
	}
	in := cmdb.CMDBInput{Tenant: t.spec.Name, Stage: t.spec.Stage, Template: t.spec.Template, URL: t.state.URL, Owner: t.state.ProvisionID, Adopt: t.adopt()}
	for _, s := range env.Services {
		img := s.Image
		if s.Name == cand.Name {
			img = cand.Image
		}
		in.Services = append(in.Services, cmdb.CMDBService{Name: s.Name, Image: img})
	}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), cm.RegisterInCMDB, in).Get(ctx, nil); err != nil {
		t.logger(ctx).Error("CMDB not updated with the new image", "error", flow.ErrorMessage(err))
	}
}

func (t *entity) setResourceDetail(kind ResourceKind, detail string) {
	for i := range t.state.Resources {
		if t.state.Resources[i].Kind == kind {
			t.state.Resources[i].Detail = detail
		}
	}
}

func (t *entity) setService(st runtimes.ServiceStatus) {
	for i := range t.state.Services {
		if t.state.Services[i].Service == st.Service {
			t.state.Services[i] = st
			return
		}
	}
	t.state.Services = append(t.state.Services, st)
}

// endCutover records the outcome on the tenant and in the answer.
func (t *entity) endCutover(ctx workflow.Context, res ApplyResult, outcome Outcome, msg string) ApplyResult {
	res.Outcome, res.Error, res.FinishedAt = outcome, msg, workflow.Now(ctx)
	t.step("")
	errMsg := ""
	kind := cmp.Or(t.cutoverKind, "release")
	if outcome == OutcomeRolledBack {
		errMsg = kind + " " + res.To + " rolled back: " + msg
	}
	t.setState(ctx, StateActive, errMsg)
	t.countOperation(ctx, kind, strings.ReplaceAll(string(outcome), "-", "_"), res.StartedAt)
	t.logger(ctx).Info("release applied", "outcome", outcome, "from", res.From, "to", res.To, "tookMs", res.FinishedAt.Sub(res.StartedAt).Milliseconds())
	return res
}
