package release

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// registerHandlers installs the release's query, its Updates and the
// promote Signal. Validators refuse with a reason a developer or ops can
// act on; the handlers only change state, which the main coroutine acts
// upon.
func (r *rollout) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryRelease, func() (Release, error) {
		return r.state, nil
	}, workflow.QueryHandlerOptions{Description: "The release's phase, per-tenant status and progress"}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QuerySummary, func() (Release, error) {
		return r.summary(), nil
	}, workflow.QueryHandlerOptions{Description: "The release without its tenants, counted by status"}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryTenants, r.page,
		workflow.QueryHandlerOptions{Description: "A page of the release's tenants: offset, limit (at most 500), status"}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdatePromote, r.promoteUpdate, workflow.UpdateHandlerOptions{
		Description: "Promote to prod: start updating the prod tenants (staging must have succeeded)",
		Validator:   r.validatePromote,
	}); err != nil {
		return err
	}
	workflow.Go(ctx, r.receivePromoteSignals)
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateOverrideWindow, r.overrideWindow, workflow.UpdateHandlerOptions{
		Description: "Cut tenants over outside their maintenance windows (an emergency fix): who, why, which tenants (none named: all left)",
		Validator:   r.validateOverrideWindow,
	}); err != nil {
		return err
	}
	for _, c := range []struct {
		name, description string
		refusal           func() string
		apply             func(in ControlInput)
	}{
		{UpdatePause, "Pause: no new tenant cut-overs start (those under way finish)", r.pauseRefusal, r.pause},
		{UpdateResume, "Resume a paused release; the failures so far are accepted", r.resumeRefusal, r.resume},
		{UpdateAbort, "Abort: stop, and put the tenants of the current wave back on their previous image", r.abortRefusal, r.abort},
	} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, c.name, r.control(c.name, c.apply), workflow.UpdateHandlerOptions{
			Description: c.description,
			Validator: func(ctx workflow.Context, in ControlInput) error {
				if why := c.refusal(); why != "" {
					return temporal.NewApplicationError(why, ErrReleaseControlRejected)
				}
				return nil
			},
		}); err != nil {
			return err
		}
	}
	return nil
}

func (r *rollout) promoteUpdate(ctx workflow.Context, in PromoteInput) (Release, error) {
	r.promote(ctx, in)
	return r.summary(), nil
}

func (r *rollout) validatePromote(ctx workflow.Context, in PromoteInput) error {
	if why := r.promoteRefusal(in); why != "" {
		return temporal.NewApplicationError(why, ErrPromoteRejected)
	}
	return nil
}

// receivePromoteSignals takes the same promotion as a Signal, for
// `temporal workflow signal --name promote`: a refused one is logged and
// shown in the state.
func (r *rollout) receivePromoteSignals(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, SignalPromote)
	for {
		var in PromoteInput
		ch.Receive(ctx, &in)
		if why := r.promoteRefusal(in); why != "" {
			r.state.PromoteRejected = why
			r.logger(ctx).Warn("promote signal refused", "by", in.By, "reason", why)
			continue
		}
		if in.By == "" {
			in.By = "signal"
		}
		r.promote(ctx, in)
	}
}

// control is the handler of a control Update: apply, log, show.
func (r *rollout) control(name string, apply func(in ControlInput)) func(ctx workflow.Context, in ControlInput) (Release, error) {
	return func(ctx workflow.Context, in ControlInput) (Release, error) {
		apply(in)
		r.logger(ctx).Info("release "+name, "by", in.By, "reason", in.Reason)
		r.upsertSearchAttributes(ctx)
		return r.summary(), nil
	}
}

func (r *rollout) pauseRefusal() string {
	if r.state.State != StateRunning {
		return fmt.Sprintf("release %s is %s: only a running release can be paused", r.state.ID, r.state.State)
	}
	return ""
}

func (r *rollout) pause(in ControlInput) {
	r.state.moveTo(StatePaused)
	r.state.PauseReason = "paused by " + in.By + reason(in.Reason)
}

func (r *rollout) resumeRefusal() string {
	if r.state.State != StatePaused {
		return fmt.Sprintf("release %s is %s: only a paused release can be resumed", r.state.ID, r.state.State)
	}
	return ""
}

func (r *rollout) resume(ControlInput) {
	r.state.moveTo(StateRunning)
	r.state.PauseReason = ""
	r.cur.FailuresSinceResume = 0
}

func (r *rollout) abortRefusal() string {
	if r.final() || r.cur.Aborting {
		return fmt.Sprintf("release %s is already %s", r.state.ID, r.finalOrAborting())
	}
	return ""
}

func (r *rollout) abort(in ControlInput) {
	r.cur.Aborting = true
	r.state.Error = "aborted by " + in.By + reason(in.Reason)
}

func reason(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func (r *rollout) finalOrAborting() string {
	if r.cur.Aborting && !r.final() {
		return "aborting"
	}
	return string(r.state.State)
}

// promoteRefusal is why a promotion cannot be accepted now ("" if it can).
func (r *rollout) promoteRefusal(in PromoteInput) string {
	s := &r.state
	switch {
	case in.Release != "" && in.Release != s.ID:
		return fmt.Sprintf("this is release %s, not %s: promote the release you mean", s.ID, in.Release)
	case r.cur.Aborting || s.State == StateAborted:
		return fmt.Sprintf("release %s was aborted", s.ID)
	case s.Promotion != nil:
		return fmt.Sprintf("release %s was already promoted by %s at %s", s.ID, s.Promotion.By, s.Promotion.At.UTC().Format(time.RFC3339))
	case s.State == StateNotPromoted || s.State == StateCompleted:
		return fmt.Sprintf("release %s has ended (%s)", s.ID, s.State)
	case s.StagingFailed:
		return fmt.Sprintf("staging failed for release %s (%s): it cannot be promoted; fix the image and release again", s.ID, r.stagingFailures())
	case s.Phase == PhaseStaging && s.State != StateAwaitingPromotion:
		done, total := r.stagingCount()
		return fmt.Sprintf("release %s is still updating staging (%d of %d tenants done, %s)", s.ID, done, total, s.State)
	}
	return ""
}

func (r *rollout) promote(ctx workflow.Context, in PromoteInput) {
	r.state.Promotion = &Promotion{By: in.By, At: workflow.Now(ctx), Reason: in.Reason}
	r.state.PromoteRejected = ""
	r.logger(ctx).Info("release promoted to prod", "by", in.By)
}

func (r *rollout) stagingFailures() string {
	var names []string
	for _, t := range r.state.Tenants {
		if t.Stage == PhaseStaging && (t.Status == TenantRolledBack || t.Status == TenantFailed) {
			names = append(names, t.Name+": "+string(t.Status))
		}
	}
	return strings.Join(names, ", ")
}

func (r *rollout) stagingCount() (done, total int) {
	for _, t := range r.state.Tenants {
		if t.Stage == PhaseStaging {
			total++
			if t.Status != TenantPending && t.Status != TenantUpdating && t.Status != TenantWaitingWindow {
				done++
			}
		}
	}
	return done, total
}
