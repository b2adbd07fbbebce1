package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// registerHandlers installs the release's query, its control Updates and
// the promote Signal. Validators refuse with a reason a developer or ops
// can act on; the handlers only change state, which the main coroutine
// acts upon.
func (r *release) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryRelease, func() (ReleaseState, error) {
		return r.state, nil
	}, workflow.QueryHandlerOptions{Description: "The release's phase, per-tenant status and progress"}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdatePromote,
		func(ctx workflow.Context, in PromoteInput) (ReleaseState, error) {
			r.promote(ctx, in)
			return r.state, nil
		},
		workflow.UpdateHandlerOptions{
			Description: "Promote to prod: start updating the prod tenants (staging must have succeeded)",
			Validator: func(ctx workflow.Context, in PromoteInput) error {
				if why := r.promoteRefusal(in); why != "" {
					return temporal.NewApplicationError(why, ErrPromoteRejected)
				}
				return nil
			},
		}); err != nil {
		return err
	}
	// The same promotion as a Signal, for `temporal workflow signal --name
	// promote`: a refused one is logged and shown in the state.
	workflow.Go(ctx, func(ctx workflow.Context) {
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
	})

	controls := []struct {
		name, desc string
		refuse     func() string
		apply      func(ctx workflow.Context, in ControlInput)
	}{
		{UpdatePause, "Pause: no new tenant cut-overs start (those under way finish)", func() string {
			if r.state.State != ReleaseRunning {
				return fmt.Sprintf("release %s is %s: only a running release can be paused", r.state.ID, r.state.State)
			}
			return ""
		}, func(ctx workflow.Context, in ControlInput) {
			r.state.State = ReleasePaused
			r.state.PauseReason = "paused by " + in.By + reason(in.Reason)
		}},
		{UpdateResume, "Resume a paused release; the failures so far are accepted", func() string {
			if r.state.State != ReleasePaused {
				return fmt.Sprintf("release %s is %s: only a paused release can be resumed", r.state.ID, r.state.State)
			}
			return ""
		}, func(ctx workflow.Context, in ControlInput) {
			r.state.State, r.state.PauseReason = ReleaseRunning, ""
			r.cur.FailuresSinceResume = 0
		}},
		{UpdateAbort, "Abort: stop, and put the tenants of the current wave back on their previous image", func() string {
			if r.final() || r.cur.Aborting {
				return fmt.Sprintf("release %s is already %s", r.state.ID, r.finalOrAborting())
			}
			return ""
		}, func(ctx workflow.Context, in ControlInput) {
			r.cur.Aborting = true
			r.state.Error = "aborted by " + in.By + reason(in.Reason)
		}},
	}
	for _, c := range controls {
		err := workflow.SetUpdateHandlerWithOptions(ctx, c.name,
			func(ctx workflow.Context, in ControlInput) (ReleaseState, error) {
				c.apply(ctx, in)
				r.logger(ctx).Info("release "+c.name, "by", in.By, "reason", in.Reason)
				r.upsertSearchAttributes(ctx)
				return r.state, nil
			},
			workflow.UpdateHandlerOptions{
				Description: c.desc,
				Validator: func(ctx workflow.Context, in ControlInput) error {
					if why := c.refuse(); why != "" {
						return temporal.NewApplicationError(why, ErrReleaseControl)
					}
					return nil
				},
			})
		if err != nil {
			return err
		}
	}
	return nil
}

func reason(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func (r *release) finalOrAborting() string {
	if r.cur.Aborting && !r.final() {
		return "aborting"
	}
	return r.state.State
}

// promoteRefusal is why a promotion cannot be accepted now ("" if it can).
func (r *release) promoteRefusal(in PromoteInput) string {
	s := &r.state
	switch {
	case in.Release != "" && in.Release != s.ID:
		return fmt.Sprintf("this is release %s, not %s: promote the release you mean", s.ID, in.Release)
	case r.cur.Aborting || s.State == ReleaseAborted:
		return fmt.Sprintf("release %s was aborted", s.ID)
	case s.Promotion != nil:
		return fmt.Sprintf("release %s was already promoted by %s at %s", s.ID, s.Promotion.By, s.Promotion.At.UTC().Format(time.RFC3339))
	case s.State == ReleaseNotPromoted || s.State == ReleaseCompleted:
		return fmt.Sprintf("release %s has ended (%s)", s.ID, s.State)
	case s.StagingFailed:
		return fmt.Sprintf("staging failed for release %s (%s): it cannot be promoted; fix the image and release again", s.ID, r.stagingFailures())
	case s.Phase == PhaseStaging && s.State != ReleaseAwaitingPromotion:
		done, total := r.stagingCount()
		return fmt.Sprintf("release %s is still updating staging (%d of %d tenants done, %s)", s.ID, done, total, s.State)
	}
	return ""
}

func (r *release) promote(ctx workflow.Context, in PromoteInput) {
	r.state.Promotion = &Promotion{By: in.By, At: workflow.Now(ctx), Reason: in.Reason}
	r.state.PromoteRejected = ""
	r.logger(ctx).Info("release promoted to prod", "by", in.By)
}

func (r *release) stagingFailures() string {
	var names []string
	for _, t := range r.state.Tenants {
		if t.Stage == PhaseStaging && (t.Status == TenantRolledBack || t.Status == TenantFailed) {
			names = append(names, t.Name+": "+t.Status)
		}
	}
	return strings.Join(names, ", ")
}

func (r *release) stagingCount() (done, total int) {
	for _, t := range r.state.Tenants {
		if t.Stage == PhaseStaging {
			total++
			if t.Status != TenantPending && t.Status != TenantUpdating {
				done++
			}
		}
	}
	return done, total
}
