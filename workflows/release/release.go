package release

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A release rolls one image out to the fleet:
//
//	staging tenants, in batches → wait for "promote" → prod tenants: the
//	canary wave, then batches of BatchSize, MaxParallel at a time
//
// It never touches a tenant's containers itself: each tenant's own
// workflow runs the cut-over through its applyRelease Update (sent by the
// fleet.UpdateTenant activity), so the release cannot meet another
// operation on that tenant. Failures (tenants rolled back) beyond the
// plan's threshold pause the release until ops resume or abort it; abort
// puts the tenants of the current wave back on their previous image.
//
// The history stays bounded whatever the fleet's size: the release
// continues as new at a wave boundary once the history grows long, and each
// tenant's cut-over lives in the tenant's own history.

// A release continues as new at a wave boundary once its history is
// longer than releaseHistoryLimit events or it ran releaseWavesPerRun
// waves, whichever comes first (tests lower them).
var (
	releaseHistoryLimit = 5000
	releaseWavesPerRun  = 100
)

// Tenants are listed like any outside call: retried through a visibility
// outage for up to 30 minutes.
var listTenantsOptions = flow.OutsideCall

// Listing tenants with their hosts also queries each tenant's workflow,
// which can take minutes for a large fleet.
var listHostsOptions = func() workflow.ActivityOptions {
	o := flow.OutsideCall
	o.StartToCloseTimeout = 5 * time.Minute
	return o
}()

// fl names the fleet activities the release calls (a nil pointer: the
// worker registers the real struct).
var fl *fleet.Activities

// A tenant's cut-over may first wait for another operation on the tenant
// (a provisioning): the activity heartbeats while it waits for the
// Update's answer, and a retry joins the same Update (same id) instead of
// sending a second one.
var updateTenantOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Hour,
	ScheduleToCloseTimeout: 2 * time.Hour,
	HeartbeatTimeout:       time.Minute,
	WaitForCancellation:    true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	},
}

// Cursor is where a release that continued as new resumes.
type Cursor struct {
	StagingListed bool       `json:"stagingListed,omitempty"`
	ProdListed    bool       `json:"prodListed,omitempty"`
	PromoteBy     *time.Time `json:"promoteBy,omitempty"`
	// FailuresSinceResume counts against the threshold; a resume accepts
	// the failures so far.
	FailuresSinceResume int  `json:"failuresSinceResume,omitempty"`
	Aborting            bool `json:"aborting,omitempty"`
}

type rollout struct {
	in      Input
	state   Release
	cur     Cursor
	running int
	onHost  map[string]int // cut-overs under way per fleet host
	waves   int            // waves run by this run
}

// errContinueAsNew and errAborted end the phase loop early.
var (
	errContinueAsNew = errors.New("continue as new")
	errAborted       = errors.New("aborted")
)

// Workflow runs one release (see above).
func Workflow(ctx workflow.Context, in Input) (Release, error) {
	r := &rollout{in: in, onHost: map[string]int{}}
	if in.State != nil {
		r.state = *in.State
		if in.Cursor != nil {
			r.cur = *in.Cursor
		}
		if len(in.PackedTenants) > 0 {
			ts, err := unpackTenants(in.PackedTenants)
			if err != nil {
				return Release{}, err
			}
			r.state.Tenants = ts
		}
		r.in.State, r.in.PackedTenants = nil, nil
	} else {
		r.state = Release{
			ID: in.ID, Image: in.Image, RollbackOf: in.RollbackOf, Plan: withPlanDefaults(in.Plan),
			RequestedBy: in.RequestedBy, State: StateRunning, Phase: PhaseStaging, StartedAt: workflow.Now(ctx),
		}
	}
	if err := r.registerHandlers(ctx); err != nil {
		return r.summary(), err
	}
	r.upsertSearchAttributes(ctx)
	if in.State == nil {
		r.logger(ctx).Info("release started", "image", in.Image, "by", in.RequestedBy, "plan", fmt.Sprintf("%+v", r.state.Plan))
	}

	err := r.run(ctx)
	switch {
	case errors.Is(err, errContinueAsNew):
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return r.state, err
		}
		next, err := r.next()
		if err != nil {
			return r.summary(), err
		}
		return r.summary(), workflow.NewContinueAsNewError(ctx, WorkflowType, next)
	case errors.Is(err, errAborted):
		r.skipWaiting(ctx)
		r.finish(ctx, StateAborted)
	case err != nil:
		return r.summary(), err
	}
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return r.summary(), nil
}

// next is the input of the release's next run: its state without the
// tenants, which travel packed.
func (r *rollout) next() (Input, error) {
	next := r.in
	packed, err := packTenants(r.state.Tenants)
	if err != nil {
		return next, err
	}
	state, cur := r.state, r.cur
	state.Tenants = nil
	next.State, next.PackedTenants, next.Cursor = &state, packed, &cur
	return next, nil
}

func withPlanDefaults(p Plan) Plan {
	if p.BatchSize <= 0 {
		p.BatchSize = DefaultBatchSize
	}
	if p.MaxParallel <= 0 || p.MaxParallel > p.BatchSize {
		p.MaxParallel = p.BatchSize
	}
	if p.Canary < 0 {
		p.Canary = 0
	}
	p.MaxPerHost = min(max(p.MaxPerHost, 0), p.MaxParallel)
	p.Analysis = withAnalysisDefaults(p.Analysis)
	return p
}

// run carries the release from wherever it stands to its end.
func (r *rollout) run(ctx workflow.Context) error {
	if r.cur.Aborting {
		return errAborted
	}
	if !r.cur.StagingListed {
		if err := r.list(ctx, PhaseStaging); err != nil {
			return err
		}
		r.cur.StagingListed = true
	}
	if r.state.Phase == PhaseStaging {
		if err := r.runPhase(ctx, PhaseStaging); err != nil {
			return err
		}
		if r.state.Plan.Tenants.Stage == string(PhaseStaging) {
			r.finish(ctx, StateCompleted) // nothing selected in prod
			return nil
		}
		if err := r.awaitPromotion(ctx); err != nil {
			return err
		}
		if r.state.State == StateNotPromoted {
			return nil
		}
		r.state.Phase = flow.Must(r.state.Phase.To(PhaseProd))
		r.state.moveTo(StateRunning)
		r.upsertSearchAttributes(ctx)
	}
	if !r.cur.ProdListed {
		if err := r.list(ctx, PhaseProd); err != nil {
			return err
		}
		r.cur.ProdListed = true
		r.markMissing()
	}
	if err := r.runPhase(ctx, PhaseProd); err != nil {
		return err
	}
	r.finish(ctx, StateCompleted)
	return nil
}

// list adds the phase's tenants, in waves: staging in batches, prod with
// its canary wave first.
func (r *rollout) list(ctx workflow.Context, phase Phase) error {
	sel := r.state.Plan.Tenants
	if sel.Stage != "" && sel.Stage != string(phase) {
		return nil
	}
	var tenants []fleet.Tenant
	in := fleet.ListInput{Stage: string(phase), Names: sel.Names, Hosts: r.hostLimit(ctx) > 0}
	opts := listTenantsOptions
	if in.Hosts {
		opts = listHostsOptions
	}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), fl.ListTenants, in).Get(ctx, &tenants); err != nil {
		r.state.Error = "list " + string(phase) + " tenants: " + flow.ErrorMessage(err)
		return err
	}
	// Wave n's size: prod's first wave is the canary, the rest are batches.
	size := func(n int) int {
		if n == 0 && phase == PhaseProd && r.state.Plan.Canary > 0 {
			return r.state.Plan.Canary
		}
		return r.state.Plan.BatchSize
	}
	wave, pos := r.lastWave(), 0
	for n := 0; pos < len(tenants); n++ {
		wave++
		end := min(pos+size(n), len(tenants))
		for _, t := range tenants[pos:end] {
			r.state.Tenants = append(r.state.Tenants, Tenant{
				Name: t.Name, Stage: phase, Wave: wave, Status: flow.Must(tenantNew.To(TenantPending)), Host: t.Host, From: t.Image, To: r.imageFor(t.Name),
				Restore: r.in.Restores[t.Name], Canary: n == 0 && phase == PhaseProd && r.state.Plan.Canary > 0,
			})
		}
		pos = end
	}
	r.state.Progress.Total = len(r.state.Tenants)
	r.logger(ctx).Info("tenants listed", "phase", phase, "count", len(tenants))
	return nil
}

// markMissing reports named tenants that neither phase found.
func (r *rollout) markMissing() {
	for _, name := range r.state.Plan.Tenants.Names {
		if !slices.ContainsFunc(r.state.Tenants, func(t Tenant) bool { return t.Name == name }) {
			r.state.Tenants = append(r.state.Tenants, Tenant{Name: name, Status: flow.Must(tenantNew.To(TenantSkipped)), Error: "no running tenant of that name"})
			r.state.Progress.Total++
			r.state.Progress.Done++
		}
	}
}

func (r *rollout) imageFor(tenant string) string {
	if img, ok := r.in.Images[tenant]; ok {
		return img
	}
	return r.in.Image
}

func (r *rollout) lastWave() int {
	w := 0
	for _, t := range r.state.Tenants {
		w = max(w, t.Wave)
	}
	return w
}

// runPhase runs the phase's waves in order, from the first with a tenant
// still pending.
func (r *rollout) runPhase(ctx workflow.Context, phase Phase) error {
	for {
		if r.analysisDue(ctx, phase) {
			// The canaries are cut over: prod goes on once they are
			// judged sound.
			if err := r.analyse(ctx); err != nil {
				return err
			}
			continue
		}
		wave := 0
		for _, t := range r.state.Tenants {
			if t.Stage == phase && t.Status == TenantPending && (wave == 0 || t.Wave < wave) {
				wave = t.Wave
			}
		}
		if held := r.waitingCanary(phase); wave != 0 && len(held) > 0 {
			// The canary is cut over before the fleet: the release
			// waits for its window (or ops' override).
			if _, err := r.windowWave(ctx, held, false); err != nil {
				return err
			}
			continue
		}
		if wave == 0 {
			// Every wave ran: the tenants that wait for their
			// maintenance windows go as these open.
			more, err := r.windowWave(ctx, r.waiting(phase), true)
			if err != nil || !more {
				return err
			}
			continue
		}
		if info := workflow.GetInfo(ctx); info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > releaseHistoryLimit || r.waves >= releaseWavesPerRun {
			return errContinueAsNew
		}
		r.waves++
		if err := r.runWave(ctx, wave); err != nil {
			return err
		}
	}
}

// runWave cuts over the wave's pending tenants, MaxParallel at a time. A
// pause stops new cut-overs (those under way finish); abort also puts the
// wave's updated tenants back.
func (r *rollout) runWave(ctx workflow.Context, wave int) error {
	r.state.Wave = wave
	var idxs []int
	for i, t := range r.state.Tenants {
		if t.Wave == wave {
			idxs = append(idxs, i)
		}
	}
	r.logger(ctx).Info("wave started", "wave", wave, "tenants", len(idxs))
	if err := r.launchWave(ctx, idxs); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return r.running == 0 || r.cur.Aborting }); err != nil {
		return err
	}
	if r.running > 0 {
		// Aborted mid-wave: the cut-overs under way stop and roll back.
		r.cancelInFlight(ctx, idxs)
		if err := workflow.Await(ctx, func() bool { return r.running == 0 }); err != nil {
			return err
		}
	}
	if r.state.State == StatePaused && !r.cur.Aborting {
		// Over the threshold with the wave's last results, or paused by
		// ops: the wave stays current until they decide.
		if err := workflow.Await(ctx, func() bool { return r.cur.Aborting || r.state.State != StatePaused }); err != nil {
			return err
		}
	}
	if r.cur.Aborting {
		r.revertWave(ctx, idxs)
		return errAborted
	}
	if r.hasPending(idxs) {
		return r.runWave(ctx, wave) // resumed mid-wave
	}
	return nil
}

// versionPerHostLimit gates plan.maxPerHost: a run whose history was
// begun by code that ignored it (a worker not yet upgraded) goes on
// cutting over in list order.
const versionPerHostLimit = "release-per-host-limit"

// hostLimit is how many cut-overs may run at once on one fleet host: 0
// (none beyond MaxParallel) unless the plan sets maxPerHost. A plan
// without it records no version marker, so its commands stay today's.
func (r *rollout) hostLimit(ctx workflow.Context) int {
	if r.state.Plan.MaxPerHost <= 0 {
		return 0
	}
	if workflow.GetVersion(ctx, versionPerHostLimit, workflow.DefaultVersion, 1) < 1 {
		return 0
	}
	return r.state.Plan.MaxPerHost
}

// launchWave starts the wave's pending tenants, MaxParallel at a time
// (none while paused, and none more once aborting). With a per-host limit
// they go host by host in turn, and a tenant whose host is full waits
// while the free slots go to tenants of other hosts; without one they go
// in list order.
func (r *rollout) launchWave(ctx workflow.Context, idxs []int) error {
	limit := r.hostLimit(ctx)
	order := idxs
	if limit > 0 {
		order = r.spread(idxs)
	}
	for {
		if err := workflow.Await(ctx, func() bool {
			return r.cur.Aborting || !r.hasPending(order) ||
				(r.state.State != StatePaused && r.running < r.state.Plan.MaxParallel && r.nextFree(order, limit) >= 0)
		}); err != nil {
			return err
		}
		next := r.nextFree(order, limit)
		if r.cur.Aborting || next < 0 {
			return nil
		}
		r.launch(ctx, next)
	}
}

// nextFree is the first pending tenant of order whose host runs fewer
// than limit cut-overs (-1: none). Unplaced tenants (host "") and a
// limit of 0 are not limited per host.
func (r *rollout) nextFree(order []int, limit int) int {
	for _, i := range order {
		if t := r.state.Tenants[i]; t.Status == TenantPending && r.hostFree(t.Host, limit) {
			return i
		}
	}
	return -1
}

func (r *rollout) hostFree(host string, limit int) bool {
	return limit == 0 || host == "" || r.onHost[host] < limit
}

// spread orders the wave's tenants host by host in turn (hosts in the
// order they first appear, unplaced tenants as one more group), so that
// the first cut-overs of a wave land on as many hosts as there are.
func (r *rollout) spread(idxs []int) []int {
	var hosts []string
	byHost := map[string][]int{}
	for _, i := range idxs {
		h := r.state.Tenants[i].Host
		if _, ok := byHost[h]; !ok {
			hosts = append(hosts, h)
		}
		byHost[h] = append(byHost[h], i)
	}
	order := make([]int, 0, len(idxs))
	for round := 0; len(order) < len(idxs); round++ {
		for _, h := range hosts {
			if round < len(byHost[h]) {
				order = append(order, byHost[h][round])
			}
		}
	}
	return order
}

func (r *rollout) hasPending(idxs []int) bool {
	for _, i := range idxs {
		if r.state.Tenants[i].Status == TenantPending {
			return true
		}
	}
	return false
}

// launch starts one tenant's cut-over in its own coroutine.
func (r *rollout) launch(ctx workflow.Context, i int) {
	t := &r.state.Tenants[i]
	r.running++
	r.onHost[t.Host]++
	t.moveTo(TenantUpdating)
	now := workflow.Now(ctx)
	t.StartedAt = &now
	name, to, restore, host, override := t.Name, t.To, t.Restore, t.Host, r.overrideFor(t)
	suffix := ""
	if t.Deferred > 0 {
		// A new Update: the tenant answered the earlier one (outside
		// its window) and keeps that answer for its id.
		suffix = fmt.Sprintf("/window%d", t.Deferred)
	}
	suffix += t.again()
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { r.running--; r.onHost[host]-- }()
		res, err := r.applyTo(ctx, name, to, restore, suffix, override)
		r.record(ctx, i, res, err)
	})
}

// again tells a canary's later cut-overs and reverts (after a failed
// analysis) from its first: their Updates need ids of their own.
func (t *Tenant) again() string {
	if t.Retried == 0 {
		return ""
	}
	return fmt.Sprintf("/again%d", t.Retried)
}

// applyTo sends the tenant the applyRelease Update through the fleet
// activity; restore is the backup its data goes back to (a rollback with
// data), suffix tells a revert's Update, or a later attempt's, from the
// release's first; override lets it cut over outside its window.
func (r *rollout) applyTo(ctx workflow.Context, name, image, restore, suffix string, override *tenant.WindowOverride) (tenant.ApplyResult, error) {
	var res tenant.ApplyResult
	in := fleet.UpdateInput{
		Tenant:   name,
		UpdateID: WorkflowID(r.state.ID) + "/" + name + suffix,
		Apply: tenant.ApplyInput{Release: r.state.ID, Image: image, HealthTimeout: r.state.Plan.HealthTimeout, Drain: r.state.Plan.Drain,
			BackupBefore: r.state.Plan.BackupBefore, RestoreBackup: restore, Override: override},
	}
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, updateTenantOptions), fl.UpdateTenant, in).Get(ctx, &res)
	return res, err
}

// record stores a tenant's outcome and pauses the release when failures
// pass the threshold.
func (r *rollout) record(ctx workflow.Context, i int, res tenant.ApplyResult, err error) {
	t := &r.state.Tenants[i]
	if err == nil && res.Outcome == tenant.OutcomeOutsideWindow {
		r.waitForWindow(ctx, t, res)
		return
	}
	now := workflow.Now(ctx)
	t.FinishedAt = &now
	if err != nil {
		t.moveTo(TenantFailed)
		t.Error = flow.ErrorMessage(err)
	} else {
		t.moveTo(TenantStatus(res.Outcome))
		t.Error = res.Error
		if res.From != "" {
			t.From = res.From
		}
		if !res.StartedAt.IsZero() && !res.FinishedAt.IsZero() {
			t.CutoverMillis = res.FinishedAt.Sub(res.StartedAt).Milliseconds()
		}
		t.Backup = res.Backup
		t.Restored = res.Restored != ""
	}
	r.state.Progress.Done++
	r.logger(ctx).Info("tenant released", "tenant", t.Name, "status", t.Status, "error", t.Error)
	if t.Status != TenantRolledBack && t.Status != TenantFailed {
		return
	}
	r.state.Failures++
	r.cur.FailuresSinceResume++
	if t.Stage == PhaseStaging {
		r.state.StagingFailed = true
	}
	if r.cur.FailuresSinceResume > r.state.Plan.FailureThreshold && r.state.State == StateRunning {
		r.state.moveTo(StatePaused)
		r.state.PauseReason = fmt.Sprintf("%d tenant(s) failed, over the threshold of %d (last: %s: %s)",
			r.cur.FailuresSinceResume, r.state.Plan.FailureThreshold, t.Name, t.Error)
		r.logger(ctx).Warn("release paused", "reason", r.state.PauseReason)
		r.upsertSearchAttributes(ctx)
	}
}

// versionAbortCancels gates the cancelRelease Signals an abort sends:
// releases aborted before they existed let their cut-overs finish.
const versionAbortCancels = "release-abort-cancels-cutovers"

// cancelOptions: a Signal is quick, and an abort must not wait long for it.
var cancelOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: 2 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
	},
}

// cancelInFlight tells the wave's tenants whose cut-over is under way
// that the release was aborted: each stops before its route switches and
// rolls back (its old instance kept serving), or, still waiting for its
// turn, never starts. A cut-over past its switch finishes and is then
// reverted with the wave.
func (r *rollout) cancelInFlight(ctx workflow.Context, idxs []int) {
	if workflow.GetVersion(ctx, versionAbortCancels, workflow.DefaultVersion, 1) < 1 {
		return
	}
	var pending []workflow.Future
	for _, i := range idxs {
		t := r.state.Tenants[i]
		if t.Status != TenantUpdating {
			continue
		}
		in := tenant.CancelInput{Tenant: t.Name, Release: r.state.ID, Image: t.To, Reason: r.state.Error}
		pending = append(pending, workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, cancelOptions), fl.CancelRelease, in))
	}
	for _, p := range pending {
		if err := p.Get(ctx, nil); err != nil {
			// Its cut-over then ends on its own; the wave is reverted.
			r.logger(ctx).Warn("cancel of a cut-over not delivered", "error", flow.ErrorMessage(err))
		}
	}
}

// revertWave puts the wave's updated tenants back on their previous
// image, MaxParallel at a time and, with a per-host limit, host by host
// in turn within it, as they were cut over.
func (r *rollout) revertWave(ctx workflow.Context, idxs []int) {
	var todo []int
	for _, i := range idxs {
		if t := r.state.Tenants[i]; t.Status == TenantUpdated && t.From != "" {
			todo = append(todo, i)
		}
	}
	limit := r.hostLimit(ctx)
	if limit > 0 {
		todo = r.spread(todo)
	}
	free := func(i int) bool { return r.hostFree(r.state.Tenants[i].Host, limit) }
	wg := workflow.NewWaitGroup(ctx)
	sem := 0
	for len(todo) > 0 {
		_ = workflow.Await(ctx, func() bool { return sem < r.state.Plan.MaxParallel && slices.ContainsFunc(todo, free) })
		k := slices.IndexFunc(todo, free)
		if k < 0 {
			break // cancelled while every host left was full
		}
		i := todo[k]
		todo = slices.Delete(todo, k, k+1)
		t := &r.state.Tenants[i]
		host := t.Host
		sem++
		r.onHost[host]++
		wg.Add(1)
		name, from, restore, again := t.Name, t.From, "", t.again()
		if t.Restored {
			// Its data goes back too: to the safety backup taken just
			// before this release restored an older one.
			restore = t.Backup
		}
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			defer func() { sem--; r.onHost[host]-- }()
			// What the tenant ran before goes back at once, its window
			// open or not.
			back := &tenant.WindowOverride{By: "abort", Reason: r.state.Error, At: workflow.Now(ctx)}
			res, err := r.applyTo(ctx, name, from, restore, "/revert"+again, back)
			t := &r.state.Tenants[i]
			switch {
			case err != nil:
				t.Error = "revert failed: " + flow.ErrorMessage(err)
			case res.Outcome == tenant.OutcomeUpdated || res.Outcome == tenant.OutcomeUnchanged:
				t.moveTo(TenantReverted)
			default:
				t.Error = "revert " + string(res.Outcome) + ": " + res.Error
			}
		})
	}
	wg.Wait(ctx)
}

// awaitPromotion waits for promote (Update or Signal), abort, or the
// promotion deadline.
func (r *rollout) awaitPromotion(ctx workflow.Context) error {
	if r.state.Promotion != nil {
		return nil
	}
	r.state.moveTo(StateAwaitingPromotion)
	r.upsertSearchAttributes(ctx)
	r.logger(ctx).Info("staging done, awaiting promotion", "stagingFailed", r.state.StagingFailed)
	done := func() bool { return r.state.Promotion != nil || r.cur.Aborting }
	if d := r.state.Plan.PromotionDeadline.D(); d > 0 {
		if r.cur.PromoteBy == nil {
			by := workflow.Now(ctx).Add(d)
			r.cur.PromoteBy = &by
		}
		ok, err := workflow.AwaitWithTimeout(ctx, r.cur.PromoteBy.Sub(workflow.Now(ctx)), done)
		if err != nil {
			return err
		}
		if !ok {
			r.state.Error = fmt.Sprintf("not promoted within %s", d)
			r.finish(ctx, StateNotPromoted)
			return nil
		}
	} else if err := workflow.Await(ctx, done); err != nil {
		return err
	}
	if r.cur.Aborting {
		return errAborted
	}
	return nil
}

// finish ends the release in a final state.
func (r *rollout) finish(ctx workflow.Context, state State) {
	now := workflow.Now(ctx)
	r.state.moveTo(state)
	r.state.FinishedAt = &now
	r.state.PauseReason = ""
	r.upsertSearchAttributes(ctx)
	m := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"operation": "release", "outcome": strings.ReplaceAll(string(state), "-", "_")})
	m.Counter("tenantflow_operations_total").Inc(1)
	m.Timer("tenantflow_operation_duration").Record(now.Sub(r.state.StartedAt))
	r.logger(ctx).Info("release ended", "state", state, "failures", r.state.Failures)
}

func (r *rollout) final() bool { return r.state.State.Final() }

func (r *rollout) upsertSearchAttributes(ctx workflow.Context) {
	updates := []temporal.SearchAttributeUpdate{searchattr.Release.ValueSet(r.state.ID), searchattr.Stage.ValueSet(string(r.state.Phase))}
	if r.state.Image != "" {
		updates = append(updates, searchattr.Image.ValueSet(r.state.Image))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		r.logger(ctx).Warn("upsert search attributes failed", "error", err)
	}
}

func (r *rollout) logger(ctx workflow.Context) log.Logger {
	return log.With(workflow.GetLogger(ctx), "release", r.state.ID)
}
