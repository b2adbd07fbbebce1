package cli

import (
	"context"
	"fmt"
	"strings"
)

// maxStepReads bounds how many updating tenants a poll reads the cut-over
// step of (GET /v1/tenants/{name} each): at most a wave's parallel
// cut-overs are under way anyway.
const maxStepReads = 10

// pollRelease reads the release, and the cut-over step of each tenant it
// is updating, and describes them; until says how far the watch goes
// (see watchUntil).
func (a *app) pollRelease(c *Client, id string, until watchUntil) poll {
	return func(ctx context.Context) (frame, error) {
		resp, err := c.Get(ctx, apiPath("v1", "releases", id), nil)
		if err != nil {
			return frame{}, err
		}
		var r releaseView
		if err := resp.Decode(&r); err != nil {
			return frame{}, err
		}
		f := releaseFrame(id, r, a.tenantSteps(ctx, c, r), until)
		f.raw = resp.Body
		return f, nil
	}
}

// tenantSteps reads the progress of the tenants being cut over; a tenant
// that does not answer shows no step (the release's own status stands).
func (a *app) tenantSteps(ctx context.Context, c *Client, r releaseView) map[string]progressView {
	steps := map[string]progressView{}
	for _, t := range r.Tenants {
		if t.Status != "updating" || len(steps) == maxStepReads {
			continue
		}
		resp, err := c.Get(ctx, apiPath("v1", "tenants", t.Name), nil)
		if err != nil {
			continue
		}
		var tv tenantView
		if resp.Decode(&tv) == nil && !tv.Stale && tv.State == "updating" {
			steps[t.Name] = tv.Progress
		}
	}
	return steps
}

// releaseFrame describes a release: its state, phase and wave, its
// tenants counted by status, a line per tenant, and whether the watch
// ends here and how.
func releaseFrame(id string, r releaseView, steps map[string]progressView, until watchUntil) frame {
	f := frame{
		title: fmt.Sprintf("release %s: %s · phase %s · wave %d", id, r.State, r.Phase, r.Wave),
		done:  r.Progress.Done, total: r.Progress.Total,
		summary: "tenants: " + countsOr(r, "none listed yet"),
	}
	if r.Failures > 0 {
		f.summary += fmt.Sprintf(" · %d failure(s)", r.Failures)
	}
	width := 0
	for _, t := range r.Tenants {
		width = max(width, len(t.Name))
	}
	for _, t := range r.Tenants {
		text := fmt.Sprintf("%-*s  %-7s  wave %-2d  %-14s  %s", width, t.Name, t.Stage, t.Wave, t.Status, tenantDetail(t, steps[t.Name]))
		f.items = append(f.items, item{key: "tenant/" + t.Name, text: strings.TrimRight(text, " "), rank: statusRank(t.Status)})
	}
	if r.PauseReason != "" {
		f.items = append(f.items, item{key: "pause", text: "paused: " + r.PauseReason})
	}
	f.end = releaseEnding(id, r, until)
	return f
}

// statusRank orders what a crowded terminal shows first: what moves, then
// what went wrong, then what waits, then what is done.
func statusRank(status string) int {
	switch status {
	case "updating":
		return 0
	case "failed", "rolled-back", "reverted":
		return 1
	case "waiting-window":
		return 2
	case "pending":
		return 3
	default:
		return 4
	}
}

// watchUntil is how far a release watch goes.
type watchUntil int

const (
	// untilStop: until the release ends, pauses or awaits promotion.
	untilStop watchUntil = iota
	// untilProd: after a promote, through "awaiting promotion" (the
	// workflow takes the promote a moment later) until it ends or pauses.
	untilProd
	// untilTheEnd: through promotion and pauses, until it ends.
	untilTheEnd
)

// releaseEnding says whether the watch of a release in r's state ends,
// and whether well: completed without failures, or staging done and
// awaiting promotion, end well; failures, a pause, an abort or a
// promotion that never came do not. nil: watch on.
func releaseEnding(id string, r releaseView, until watchUntil) *ending {
	untilEnd := until == untilTheEnd
	counts := countsOr(r, "no tenants")
	switch r.State {
	case "completed":
		if r.Failures > 0 {
			return &ending{msg: fmt.Sprintf("release %s completed with %d failure(s): %s", id, r.Failures, counts)}
		}
		return &ending{ok: true, msg: fmt.Sprintf("release %s completed: %s", id, counts)}
	case "aborted":
		return &ending{msg: fmt.Sprintf("release %s was aborted: %s", id, joinNonEmpty("; ", r.Error, counts))}
	case "not-promoted":
		return &ending{msg: fmt.Sprintf("release %s was not promoted: %s", id, joinNonEmpty("; ", r.Error, r.PromoteRejected, counts))}
	case "awaiting-promotion":
		switch {
		case untilEnd, until == untilProd && !r.StagingFailed:
			// promoted: its state moves on once the workflow took it
			return nil
		case r.StagingFailed:
			return &ending{msg: fmt.Sprintf("release %s: staging failed (%s); abort it: tenantflow releases abort %s --reason …", id, counts, id)}
		}
		return &ending{ok: true, msg: fmt.Sprintf("release %s: staging done (%s), awaiting promotion: tenantflow releases promote %s --reason …",
			id, countsOr(r, "no staging tenants"), id)}
	case "paused":
		if untilEnd {
			return nil
		}
		return &ending{msg: fmt.Sprintf("release %s paused: %s; then: tenantflow releases resume|abort %s --reason …", id, r.PauseReason, id)}
	}
	return nil
}

// countsOr is countsText, or none when no tenant is listed (a release
// lists prod's tenants once promoted).
func countsOr(r releaseView, none string) string {
	if s := countsText(r); s != "" {
		return s
	}
	return none
}
